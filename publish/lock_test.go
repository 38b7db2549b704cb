package publish

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stump-dev/stump/publish/store"
	"github.com/stump-dev/stump/publish/store/mem"
)

// fakeClock is a wall clock a test moves by hand (a pause is a jump).
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// A holder paused past its lease, whose lease another process broke, fails its next
// ensure (so it writes nothing more) and its next pointer compare-and-swap (the
// breaker fenced the pointer).
func TestLeaseBrokenWhilePausedIsFenced(t *testing.T) {
	ctx := context.Background()
	m := mem.New()
	clock := &fakeClock{now: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)}
	opts := LockOptions{TTL: time.Minute, Now: clock.Now}
	if _, err := writeJSON(ctx, m, pointerKey, Pointer{Live: "a", State: StateLive}, store.PutOptions{IfNoneMatch: true}); err != nil {
		t.Fatal(err)
	}
	_, tagA, err := ReadPointer(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	a, err := acquire(ctx, m, opts, "publish", "deploy-a")
	if err != nil {
		t.Fatal(err)
	}
	defer a.release(ctx)
	if err := a.ensure(ctx); err != nil {
		t.Fatalf("a fresh lease does not cover a write: %v", err)
	}

	clock.add(2 * time.Minute) // a is paused past its lease
	optsB := opts
	optsB.Break = true
	b, err := acquire(ctx, m, optsB, "publish", "deploy-b")
	if err != nil {
		t.Fatalf("breaking the stale lease: %v", err)
	}
	defer b.release(ctx)
	if b.broke == nil || b.broke.Deploy != "deploy-a" || b.broke.Op != "publish" {
		t.Errorf("the breaker does not know whose lease it broke: %+v", b.broke)
	}

	// a wakes up.
	if err := a.ensure(ctx); !errors.Is(err, ErrLeaseLost) {
		t.Errorf("ensure after the lease was broken = %v, want ErrLeaseLost", err)
	}
	wrote := false
	err = a.fenced(ctx, func(context.Context) error { wrote = true; return nil })
	if !errors.Is(err, ErrLeaseLost) || wrote {
		t.Errorf("fenced write after the lease was broken: ran %v, err %v", wrote, err)
	}
	d := &Deployer{Store: m, Site: "s"}
	d.init()
	if _, err := d.putPointer(ctx, Pointer{Live: "deploy-a", State: StateLive}, tagA); !errors.Is(err, errPointerMoved) {
		t.Errorf("the paused holder's pointer compare-and-swap = %v, want it refused (the breaker fenced the pointer)", err)
	}
	if err := b.ensure(ctx); err != nil {
		t.Errorf("the new holder's lease: %v", err)
	}
}

// A lease run down by a pause that nobody broke is renewed on the next write, by a
// conditional write, and the write goes on.
func TestLeaseRunDownIsRenewedBeforeAWrite(t *testing.T) {
	ctx := context.Background()
	m := mem.New()
	clock := &fakeClock{now: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)}
	l, err := acquire(ctx, m, LockOptions{TTL: time.Minute, Now: clock.Now}, "publish", "x")
	if err != nil {
		t.Fatal(err)
	}
	defer l.release(ctx)
	clock.add(55 * time.Second) // inside the last quarter of the lease
	if err := l.ensure(ctx); err != nil {
		t.Fatalf("ensure: %v", err)
	}
	held, err := ReadLock(ctx, m)
	if err != nil || held == nil {
		t.Fatal(err)
	}
	if want := clock.Now().Add(time.Minute); !held.Expires.Equal(want) {
		t.Errorf("the lease was not renewed from now: expires %v, want %v", held.Expires, want)
	}
}
