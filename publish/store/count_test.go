package store_test

import (
	"errors"
	"maps"
	"sync"
	"testing"

	"github.com/stump-dev/stump/publish/store"
	"github.com/stump-dev/stump/publish/store/mem"
)

func TestCount(t *testing.T) {
	ctx := t.Context()
	m := mem.New()
	c := store.Count(m)
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			store.PutBytes(ctx, c, "a", []byte("abc"), store.PutOptions{})
			c.Head(ctx, "a")
		})
	}
	wg.Wait()
	store.GetBytes(ctx, c, "a")
	c.Copy(ctx, "a", "b", store.PutOptions{})
	c.Copy(ctx, "missing", "c", store.PutOptions{}) // failed calls count too
	c.Delete(ctx, "x", "y", "z")
	c.List(ctx, "", func(store.Info) error { return nil })
	want := map[string]int64{
		"Get": 1, "Head": 10, "Put": 10, "PutBytes": 30, "Copy": 2,
		"Delete": 1, "DeleteKeys": 3, "List": 1, "ListKeys": 2,
	}
	if got := c.Counts(); !maps.Equal(got, want) {
		t.Errorf("Counts() = %v\nwant %v", got, want)
	}
	c.Reset()
	for k, n := range c.Counts() {
		if n != 0 {
			t.Errorf("after Reset, %s = %d", k, n)
		}
	}
}

// Inside Retry, Count sees every attempt: the requests really made.
func TestCountInsideRetry(t *testing.T) {
	m := mem.New()
	hook, _ := failFirst(mem.OpHead, 2, errors.New("timeout"))
	m.SetHook(hook)
	c := store.Count(m)
	var sl sleeps
	s := store.Retry(c, store.RetryOptions{Sleep: sl.sleep})
	s.Head(t.Context(), "k")
	if n := c.Counts()["Head"]; n != 3 {
		t.Errorf("Head = %d, want 3 (two failures and the answer)", n)
	}
}
