package store

import (
	"context"
	"io"
	"sync/atomic"
)

// Counter is a Store that counts the calls made through it, failed ones included.
// Put it inside Retry (Retry(Count(s), ...)) to count every attempt, that is every
// request; outside to count operations.
type Counter struct {
	Store
	get, head, put, putBytes, copy, del, delKeys, list, listKeys atomic.Int64
}

// Count returns a Counter over s.
func Count(s Store) *Counter { return &Counter{Store: s} }

// Counts returns the counts by name: "Get", "Head", "Put", "Copy", "Delete" (calls),
// "List" (calls), and "PutBytes" (the sizes given to Put), "DeleteKeys" (the keys
// given to Delete), "ListKeys" (the objects List handed to fn; an S3 listing costs one
// request per 1000 of them).
func (c *Counter) Counts() map[string]int64 {
	return map[string]int64{
		"Get":        c.get.Load(),
		"Head":       c.head.Load(),
		"Put":        c.put.Load(),
		"PutBytes":   c.putBytes.Load(),
		"Copy":       c.copy.Load(),
		"Delete":     c.del.Load(),
		"DeleteKeys": c.delKeys.Load(),
		"List":       c.list.Load(),
		"ListKeys":   c.listKeys.Load(),
	}
}

// Reset sets every count to zero.
func (c *Counter) Reset() {
	for _, n := range []*atomic.Int64{&c.get, &c.head, &c.put, &c.putBytes, &c.copy, &c.del, &c.delKeys, &c.list, &c.listKeys} {
		n.Store(0)
	}
}

// Get counts a Get.
func (c *Counter) Get(ctx context.Context, key string) (io.ReadCloser, Info, error) {
	c.get.Add(1)
	return c.Store.Get(ctx, key)
}

// Head counts a Head.
func (c *Counter) Head(ctx context.Context, key string) (Info, error) {
	c.head.Add(1)
	return c.Store.Head(ctx, key)
}

// Put counts a Put and its size.
func (c *Counter) Put(ctx context.Context, key string, body io.ReadSeeker, size int64, opts PutOptions) (string, error) {
	c.put.Add(1)
	c.putBytes.Add(max(size, 0))
	return c.Store.Put(ctx, key, body, size, opts)
}

// Copy counts a Copy.
func (c *Counter) Copy(ctx context.Context, src, dst string, opts PutOptions) error {
	c.copy.Add(1)
	return c.Store.Copy(ctx, src, dst, opts)
}

// Delete counts a Delete and its keys.
func (c *Counter) Delete(ctx context.Context, keys ...string) error {
	c.del.Add(1)
	c.delKeys.Add(int64(len(keys)))
	return c.Store.Delete(ctx, keys...)
}

// List counts a List and the objects it hands to fn.
func (c *Counter) List(ctx context.Context, prefix string, fn func(Info) error) error {
	c.list.Add(1)
	return c.Store.List(ctx, prefix, func(info Info) error {
		c.listKeys.Add(1)
		return fn(info)
	})
}
