package publish

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/stump-dev/stump/publish/store"
)

// LockOptions control taking the lease.
type LockOptions struct {
	// TTL is how long a lease lasts without renewal (default 2 minutes); a running
	// publish renews it every TTL/3.
	TTL time.Duration
	// Wait keeps trying until the lock is free or ctx is done.
	Wait bool
	// Break removes a lease that has expired (only then) before taking it.
	Break bool
	Now   func() time.Time
}

// ErrLeaseLost is wrapped by the error of an operation that stopped because its lease
// was broken by another process (or could not be confirmed before a write): the
// operation was paused or cut off for longer than the lease, and someone else may now
// be writing the site. It made no write after it found out.
var ErrLeaseLost = errors.New("the lease on the site's lock was lost")

// lock is a held lease. Every write that changes what visitors see (the live tree,
// _stump/live, the pointer) is made only after ensure confirms the lease: that is the
// fencing that keeps a publish paused past its lease from writing over the one that
// broke it.
type lock struct {
	s     store.Store
	lease Lease
	etag  string
	ttl   time.Duration
	now   func() time.Time
	// broke is the stale lease this lock replaced (--break-lock), if any: a publish
	// killed while it held the site.
	broke *Lease
	mu    sync.Mutex
	lost  chan struct{}
	once  sync.Once
	stop  chan struct{}
	done  chan struct{}
}

// wall drops the monotonic reading, so lease times compare by the wall clock: the
// monotonic clock stops while a machine sleeps (a laptop lid), the lease does not.
func wall(t time.Time) time.Time { return t.Round(0) }

// acquire takes the site's lease for op (and, for a publish, the deploy id it makes):
// _stump/lock created with If-None-Match: *, so of two processes exactly one gets it.
// A held, unexpired lease gives *LockedError (or waits). Breaking a stale lease also
// rewrites the pointer (fence), so the process that held it fails its next
// compare-and-swap of the pointer even if it wakes up before its next lease check.
func acquire(ctx context.Context, s store.Store, opts LockOptions, op, deploy string) (*lock, error) {
	if opts.TTL <= 0 {
		opts.TTL = 2 * time.Minute
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	user, host := whoami()
	var tok [8]byte
	_, _ = rand.Read(tok[:])
	delay := 250 * time.Millisecond
	newLock := func(lease Lease, etag string) *lock {
		l := &lock{s: s, lease: lease, etag: etag, ttl: opts.TTL, now: opts.Now, lost: make(chan struct{}), stop: make(chan struct{}), done: make(chan struct{})}
		go l.renew(ctx)
		return l
	}
	for {
		now := wall(opts.Now())
		lease := Lease{Holder: user, Host: host, PID: os.Getpid(), Token: hex.EncodeToString(tok[:]), Op: op, Deploy: deploy, Acquired: now, Expires: now.Add(opts.TTL)}
		etag, err := writeJSON(ctx, s, lockKey, lease, store.PutOptions{IfNoneMatch: true})
		if err == nil {
			return newLock(lease, etag), nil
		}
		if !errors.Is(err, store.ErrPrecondition) {
			return nil, fmt.Errorf("take the lock: %w", err)
		}
		var held Lease
		heldTag, ok, rerr := readJSON(ctx, s, lockKey, &held)
		if rerr != nil {
			return nil, fmt.Errorf("read the lock: %w", rerr)
		}
		if !ok {
			continue // released meanwhile
		}
		if held.Token == lease.Token {
			// Our own write went through but its answer was lost (a retried create
			// then saw it): the lease is ours.
			return newLock(held, heldTag), nil
		}
		stale := now.After(wall(held.Expires)) || holderDead(held)
		if stale && opts.Break {
			// Replace the stale lease only if it is still the one we read.
			etag, err := writeJSON(ctx, s, lockKey, lease, store.PutOptions{IfMatch: heldTag})
			if err == nil {
				l := newLock(lease, etag)
				l.broke = &held
				if err := fencePointer(ctx, s, lease.Token); err != nil {
					_ = l.release(context.WithoutCancel(ctx))
					return nil, err
				}
				return l, nil
			}
			if !errors.Is(err, store.ErrPrecondition) {
				return nil, fmt.Errorf("break the stale lock: %w", err)
			}
			continue
		}
		if !opts.Wait {
			return nil, &LockedError{Lease: held, Stale: stale}
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for the lock (%w): %w", &LockedError{Lease: held, Stale: stale}, ctx.Err())
		case <-time.After(delay):
		}
		delay = min(delay*2, 5*time.Second)
	}
}

// fencePointer rewrites the pointer (creating an empty one on a target never deployed
// to) with the new holder's token, changing its ETag: a process whose lease was just
// broken holds the old ETag, so its next pointer write fails.
func fencePointer(ctx context.Context, s store.Store, token string) error {
	for range 5 {
		ptr, tag, err := ReadPointer(ctx, s)
		if err != nil {
			return fmt.Errorf("fence the pointer after breaking the lock: %w", err)
		}
		if ptr.State == "" {
			ptr.State = StateLive
		}
		ptr.Fence = token
		opts := store.PutOptions{IfMatch: tag}
		if tag == "" {
			opts = store.PutOptions{IfNoneMatch: true}
		}
		if _, err = writeJSON(ctx, s, pointerKey, ptr, opts); err == nil {
			return nil
		}
		if !errors.Is(err, store.ErrPrecondition) {
			return fmt.Errorf("fence the pointer after breaking the lock: %w", err)
		}
		// The old holder (or our own lost answer) moved it meanwhile: read it again.
		var now Pointer
		if _, ok, rerr := readJSON(ctx, s, pointerKey, &now); rerr == nil && ok && now.Fence == token {
			return nil
		}
	}
	return fmt.Errorf("fence the pointer after breaking the lock: it kept changing under us (is another publish still running?)")
}

// renew extends the lease every ttl/3 until released. If the lease was taken from us
// (broken as stale), lost is closed so every later ensure fails.
func (l *lock) renew(ctx context.Context) {
	defer close(l.done)
	t := time.NewTicker(l.ttl / 3)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-ctx.Done():
			return
		case <-t.C:
		}
		l.mu.Lock()
		err := l.renewLocked(ctx)
		l.mu.Unlock()
		if errors.Is(err, ErrLeaseLost) {
			return
		}
	}
}

// renewLocked extends the lease by one TTL from now with a conditional write on the
// lease's ETag. It returns an error wrapping ErrLeaseLost (and closes lost) when the
// lease is no longer ours. l.mu is held.
func (l *lock) renewLocked(ctx context.Context) error {
	select {
	case <-l.lost:
		return l.lostError()
	default:
	}
	next := l.lease
	next.Expires = wall(l.now()).Add(l.ttl)
	etag, err := writeJSON(ctx, l.s, lockKey, next, store.PutOptions{IfMatch: l.etag})
	if err == nil {
		l.lease, l.etag = next, etag
		return nil
	}
	if errors.Is(err, store.ErrPrecondition) {
		// Our renewal may have gone through with its answer lost: then the lock holds
		// exactly what we wrote.
		var held Lease
		if tag, ok, rerr := readJSON(ctx, l.s, lockKey, &held); rerr == nil && ok && held.Token == next.Token && held.Expires.Equal(next.Expires) {
			l.lease, l.etag = next, tag
			return nil
		}
		l.once.Do(func() { close(l.lost) })
		return l.lostError()
	}
	return err
}

func (l *lock) lostError() error {
	return fmt.Errorf("%w: another process broke it as stale (this one was paused or cut off for longer than its %s lease)", ErrLeaseLost, l.ttl)
}

// margin is how long before its expiry a lease stops covering writes without a
// renewal first: room for clock skew between machines and for a request in flight.
func (l *lock) margin() time.Duration { return l.ttl / 4 }

// ensure returns nil when the lease still covers a write made now. When it is close
// to or past its expiry (the renewals did not run: the process was paused), it renews
// it first, conditionally; it fails with ErrLeaseLost when the lease was broken, and
// with the renewal's error when the lease cannot be confirmed before it runs out.
func (l *lock) ensure(ctx context.Context) error {
	select {
	case <-l.lost:
		return l.lostError()
	default:
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if wall(l.now()).Before(wall(l.lease.Expires).Add(-l.margin())) {
		return nil
	}
	if err := l.renewLocked(ctx); err != nil {
		if errors.Is(err, ErrLeaseLost) {
			return err
		}
		return fmt.Errorf("%w: it could not be renewed before it ran out: %w", ErrLeaseLost, err)
	}
	return nil
}

// fenced runs write, a request that changes what visitors see, under the lease: it
// ensures the lease first and gives write a context whose deadline is the end of what
// the lease covers, so a request that was about to be sent when the process froze is
// not sent after the lease ran out (net/http refuses a request whose context is done).
// When that deadline, not the caller's ctx, ended the request, it ensures the lease
// again and repeats the write (writes here are idempotent), so a slow store does not
// fail a deploy that still holds its lease. A nil lock runs write unfenced.
func (l *lock) fenced(ctx context.Context, write func(ctx context.Context) error) error {
	if l == nil {
		return write(ctx)
	}
	for attempt := 0; ; attempt++ {
		if err := l.ensure(ctx); err != nil {
			return err
		}
		l.mu.Lock()
		until := wall(l.lease.Expires).Add(-l.margin())
		l.mu.Unlock()
		wctx, cancel := context.WithDeadline(ctx, until)
		err := write(wctx)
		expired := wctx.Err() == context.DeadlineExceeded && ctx.Err() == nil
		cancel()
		if err == nil || !expired || attempt >= 5 {
			return err
		}
	}
}

// release stops renewal and deletes the lease if it is still ours.
func (l *lock) release(ctx context.Context) error {
	select {
	case <-l.stop:
		return nil // released already
	default:
	}
	close(l.stop)
	<-l.done
	l.mu.Lock()
	defer l.mu.Unlock()
	var held Lease
	if _, ok, err := readJSON(ctx, l.s, lockKey, &held); err != nil || !ok || held.Token != l.lease.Token {
		return err
	}
	if err := l.s.Delete(ctx, lockKey); err != nil {
		return fmt.Errorf("release the lock: %w", err)
	}
	return nil
}

// holderDead reports a lease whose holder ran on this host and is no longer running:
// such a lease is stale before it expires.
func holderDead(l Lease) bool {
	host, _ := os.Hostname()
	if l.Host != host || l.PID <= 0 || l.PID == os.Getpid() {
		return false
	}
	return processGone(l.PID)
}

// ReadLock returns the current lease, if any.
func ReadLock(ctx context.Context, s store.Store) (*Lease, error) {
	var l Lease
	_, ok, err := readJSON(ctx, s, lockKey, &l)
	if err != nil || !ok {
		return nil, err
	}
	return &l, nil
}
