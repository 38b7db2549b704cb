// Package mem is an in-memory store.Store for tests. A hook called before every
// operation makes it fail on demand, at any step of a deploy:
//
//	s := mem.New()
//	s.FailAfter("Copy", 3, errors.New("boom")) // the 4th Copy and all after fail
package mem

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/stump-dev/stump/publish/store"
)

// Operation names given to a Hook.
const (
	OpGet    = "Get"
	OpHead   = "Head"
	OpPut    = "Put"
	OpCopy   = "Copy"
	OpDelete = "Delete"
	OpList   = "List"
)

// A Hook is called before every operation with its name (OpGet, ...) and key: the
// destination for Copy, each key in turn for Delete, the prefix for List. An error
// it returns is the operation's error (for Delete: keys before it are deleted).
type Hook func(op, key string) error

// Store is an in-memory store.Store. Its methods are safe for concurrent use. ETags
// are the quoted SHA-256 of the bytes and the Meta, as in store/file.
type Store struct {
	mu      sync.Mutex
	objects map[string]object
	hook    Hook
}

type object struct {
	data []byte
	info store.Info
}

var _ store.Store = (*Store)(nil)

// New returns an empty store.
func New() *Store { return &Store{objects: map[string]object{}} }

// String names the store.
func (s *Store) String() string { return "mem:" }

// SetHook installs h (nil removes it).
func (s *Store) SetHook(h Hook) {
	s.mu.Lock()
	s.hook = h
	s.mu.Unlock()
}

// FailAfter installs a hook under which the first n calls of op succeed and every
// later one fails with err. op "" counts operations of every kind, so a test can fail
// a deploy at its step n+1. (Each key of a Delete counts as one call.)
func (s *Store) FailAfter(op string, n int, err error) {
	var mu sync.Mutex
	calls := 0
	s.SetHook(func(o, key string) error {
		if op != "" && o != op {
			return nil
		}
		mu.Lock()
		defer mu.Unlock()
		calls++
		if calls > n {
			return fmt.Errorf("%s %s: %w", o, key, err)
		}
		return nil
	})
}

func (s *Store) before(ctx context.Context, op, key string, checkKey bool) error {
	if checkKey {
		if err := store.CheckKey(key); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s %s: %w", op, key, err)
	}
	s.mu.Lock()
	h := s.hook
	s.mu.Unlock()
	if h != nil {
		return h(op, key)
	}
	return nil
}

func notFound(op, key string) error {
	return fmt.Errorf("%s %s: %w", op, key, store.ErrNotFound)
}

// Get returns a copy of an object's bytes.
func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, store.Info, error) {
	if err := s.before(ctx, OpGet, key, true); err != nil {
		return nil, store.Info{}, err
	}
	s.mu.Lock()
	o, ok := s.objects[key]
	s.mu.Unlock()
	if !ok {
		return nil, store.Info{}, notFound("get", key)
	}
	return io.NopCloser(bytes.NewReader(o.data)), clone(o.info), nil
}

// Head returns an object's Info.
func (s *Store) Head(ctx context.Context, key string) (store.Info, error) {
	if err := s.before(ctx, OpHead, key, true); err != nil {
		return store.Info{}, err
	}
	s.mu.Lock()
	o, ok := s.objects[key]
	s.mu.Unlock()
	if !ok {
		return store.Info{}, notFound("head", key)
	}
	info := clone(o.info)
	sum := sha256.Sum256(o.data)
	info.SHA256 = hex.EncodeToString(sum[:])
	return info, nil
}

// Corrupt replaces the bytes stored at key with data, keeping its metadata and ETag,
// as a disk or a stray writer might: tests use it to check that a deploy confirms
// what it copies. It panics when key is absent.
func (s *Store) Corrupt(key string, data []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.objects[key]
	if !ok {
		panic("mem: Corrupt of absent key " + key)
	}
	o.data = append([]byte(nil), data...)
	o.info.Size = int64(len(data))
	s.objects[key] = o
}

// Put writes an object. A size < 0 is not checked.
func (s *Store) Put(ctx context.Context, key string, body io.ReadSeeker, size int64, opts store.PutOptions) (string, error) {
	if err := s.before(ctx, OpPut, key, true); err != nil {
		return "", err
	}
	if opts.IfNoneMatch && opts.IfMatch != "" {
		return "", fmt.Errorf("put %s: IfNoneMatch and IfMatch together: %w", key, store.ErrPermanent)
	}
	data, err := io.ReadAll(body)
	if err != nil {
		return "", fmt.Errorf("put %s: read body: %w", key, err)
	}
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("put %s: %w", key, err)
	}
	if size >= 0 && int64(len(data)) != size {
		return "", fmt.Errorf("put %s: the body has %d bytes, not the %d announced: %w", key, len(data), size, store.ErrPermanent)
	}
	sum := sha256.Sum256(data)
	if opts.SHA256 != "" && !strings.EqualFold(hex.EncodeToString(sum[:]), opts.SHA256) {
		return "", fmt.Errorf("put %s: checksum mismatch: the body's SHA-256 is %x, expected %s: %w", key, sum, opts.SHA256, store.ErrPermanent)
	}
	o := newObject(key, data, sum, opts.Meta)

	s.mu.Lock()
	defer s.mu.Unlock()
	cur, exists := s.objects[key]
	switch {
	case opts.IfNoneMatch && exists:
		return "", fmt.Errorf("put %s: the object exists already: %w", key, store.ErrPrecondition)
	case opts.IfMatch != "" && !exists:
		return "", fmt.Errorf("put %s: no such object to replace: %w", key, store.ErrPrecondition)
	case opts.IfMatch != "" && strings.Trim(cur.info.ETag, `"`) != strings.Trim(opts.IfMatch, `"`):
		return "", fmt.Errorf("put %s: the object changed (ETag %s, not %s): %w", key, cur.info.ETag, opts.IfMatch, store.ErrPrecondition)
	}
	s.objects[key] = o
	return o.info.ETag, nil
}

func newObject(key string, data []byte, sum [32]byte, m store.Meta) object {
	if len(m.Metadata) == 0 {
		m.Metadata = nil
	} else {
		md := make(map[string]string, len(m.Metadata))
		for k, v := range m.Metadata {
			md[strings.ToLower(k)] = v
		}
		m.Metadata = md
	}
	mb, _ := json.Marshal(m)
	mh := sha256.Sum256(mb)
	return object{data: data, info: store.Info{
		Key:     key,
		Size:    int64(len(data)),
		ETag:    fmt.Sprintf(`"%x-%x"`, sum, mh[:4]),
		ModTime: time.Now(),
		Meta:    m,
	}}
}

// clone copies info's metadata map, so a caller cannot change a stored object.
func clone(info store.Info) store.Info {
	if info.Meta.Metadata != nil {
		info.Meta.Metadata = maps.Clone(info.Meta.Metadata)
	}
	return info
}

// Copy copies src to dst with opts.Meta.
func (s *Store) Copy(ctx context.Context, src, dst string, opts store.PutOptions) error {
	if err := store.CheckKey(src); err != nil {
		return err
	}
	if err := s.before(ctx, OpCopy, dst, true); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.objects[src]
	if !ok {
		return fmt.Errorf("copy %s to %s: %w", src, dst, store.ErrNotFound)
	}
	s.objects[dst] = newObject(dst, o.data, sha256.Sum256(o.data), opts.Meta)
	return nil
}

// Delete removes keys.
func (s *Store) Delete(ctx context.Context, keys ...string) error {
	for _, key := range keys {
		if err := store.CheckKey(key); err != nil {
			return err
		}
	}
	for _, key := range keys {
		if err := s.before(ctx, OpDelete, key, false); err != nil {
			return err
		}
		s.mu.Lock()
		delete(s.objects, key)
		s.mu.Unlock()
	}
	return nil
}

// List calls fn for every key with the prefix, in lexical order, from a snapshot
// taken when it starts (so fn may use the store).
func (s *Store) List(ctx context.Context, prefix string, fn func(store.Info) error) error {
	if err := s.before(ctx, OpList, prefix, false); err != nil {
		return err
	}
	s.mu.Lock()
	var infos []store.Info
	for k, o := range s.objects {
		if strings.HasPrefix(k, prefix) {
			infos = append(infos, clone(o.info))
		}
	}
	s.mu.Unlock()
	slices.SortFunc(infos, func(a, b store.Info) int { return strings.Compare(a.Key, b.Key) })
	for _, info := range infos {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("list %s: %w", prefix, err)
		}
		if err := fn(info); err != nil {
			return err
		}
	}
	return nil
}
