package publish

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
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

// lock is a held lease.
type lock struct {
	s     store.Store
	lease Lease
	etag  string
	ttl   time.Duration
	now   func() time.Time
	mu    sync.Mutex
	lost  chan struct{}
	stop  chan struct{}
	done  chan struct{}
}

// acquire takes the site's lease: _stump/lock created with If-None-Match: *, so of two
// publishes exactly one gets it. A held, unexpired lease gives *LockedError (or waits).
func acquire(ctx context.Context, s store.Store, opts LockOptions) (*lock, error) {
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
	for {
		now := opts.Now()
		lease := Lease{Holder: user, Host: host, PID: os.Getpid(), Token: hex.EncodeToString(tok[:]), Acquired: now, Expires: now.Add(opts.TTL)}
		etag, err := writeJSON(ctx, s, lockKey, lease, store.PutOptions{IfNoneMatch: true})
		if err == nil {
			l := &lock{s: s, lease: lease, etag: etag, ttl: opts.TTL, now: opts.Now, lost: make(chan struct{}), stop: make(chan struct{}), done: make(chan struct{})}
			go l.renew(ctx)
			return l, nil
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
			l := &lock{s: s, lease: held, etag: heldTag, ttl: opts.TTL, now: opts.Now, lost: make(chan struct{}), stop: make(chan struct{}), done: make(chan struct{})}
			go l.renew(ctx)
			return l, nil
		}
		stale := opts.Now().After(held.Expires) || holderDead(held)
		if stale && opts.Break {
			// Replace the stale lease only if it is still the one we read.
			etag, err := writeJSON(ctx, s, lockKey, lease, store.PutOptions{IfMatch: heldTag})
			if err == nil {
				l := &lock{s: s, lease: lease, etag: etag, ttl: opts.TTL, now: opts.Now, lost: make(chan struct{}), stop: make(chan struct{}), done: make(chan struct{})}
				go l.renew(ctx)
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

// renew extends the lease every ttl/3 until released. If the lease was taken from us
// (broken as stale), lost is closed so the publish stops before it commits.
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
		next := l.lease
		next.Expires = l.now().Add(l.ttl)
		etag, err := writeJSON(ctx, l.s, lockKey, next, store.PutOptions{IfMatch: l.etag})
		if err == nil {
			l.lease, l.etag = next, etag
		}
		l.mu.Unlock()
		if errors.Is(err, store.ErrPrecondition) {
			close(l.lost)
			return
		}
	}
}

// check fails when the lease was lost.
func (l *lock) check() error {
	select {
	case <-l.lost:
		return errors.New("the lock was taken by another publish (this one's lease was broken); stopping before anything goes live")
	default:
		return nil
	}
}

// release stops renewal and deletes the lease if it is still ours.
func (l *lock) release(ctx context.Context) error {
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
	return errors.Is(syscall.Kill(l.PID, 0), syscall.ESRCH)
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
