package mem_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/stump-dev/stump/publish/store"
	"github.com/stump-dev/stump/publish/store/mem"
	"github.com/stump-dev/stump/publish/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return mem.New() })
}

func TestFailAfter(t *testing.T) {
	ctx := t.Context()
	s := mem.New()
	boom := errors.New("boom")
	s.FailAfter(mem.OpPut, 2, boom)
	for i, want := range []error{nil, nil, boom, boom} {
		_, err := store.PutBytes(ctx, s, "k", []byte("x"), store.PutOptions{})
		if !errors.Is(err, want) || (want == nil) != (err == nil) {
			t.Errorf("Put %d: %v, want %v", i+1, err, want)
		}
	}
	// Other operations are not counted and still work.
	if _, err := s.Head(ctx, "k"); err != nil {
		t.Errorf("Head: %v", err)
	}

	// "" counts every operation: step 3 of put, head, copy, delete fails.
	s = mem.New()
	s.FailAfter("", 2, boom)
	if _, err := store.PutBytes(ctx, s, "a", []byte("x"), store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Head(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if err := s.Copy(ctx, "a", "b", store.PutOptions{}); !errors.Is(err, boom) {
		t.Errorf("Copy at step 3: %v, want boom", err)
	}
	s.SetHook(nil)
	if _, err := s.Head(ctx, "b"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the failed Copy wrote b: %v", err)
	}
}

func TestHook(t *testing.T) {
	ctx := t.Context()
	s := mem.New()
	var calls []string
	s.SetHook(func(op, key string) error {
		calls = append(calls, op+" "+key)
		if op == mem.OpDelete && key == "b" {
			return errors.New("no")
		}
		return nil
	})
	store.PutBytes(ctx, s, "a", nil, store.PutOptions{})
	store.PutBytes(ctx, s, "c", nil, store.PutOptions{})
	s.Copy(ctx, "a", "b", store.PutOptions{})
	s.List(ctx, "", func(store.Info) error { return nil })
	if err := s.Delete(ctx, "a", "b", "c"); err == nil {
		t.Error("Delete: no error from the hook")
	}
	want := "Put a|Put c|Copy b|List |Delete a|Delete b"
	if got := strings.Join(calls, "|"); got != want {
		t.Errorf("hook calls:\n%s\nwant\n%s", got, want)
	}
	// Keys before the failing one are deleted, after it not.
	if _, err := s.Head(ctx, "a"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a not deleted: %v", err)
	}
	if _, err := s.Head(ctx, "c"); err != nil {
		t.Errorf("c deleted: %v", err)
	}
}
