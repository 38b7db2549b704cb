package store

import (
	"context"
	"io"
	"strings"
)

// WithPrefix scopes s to keys under prefix ("sites/a" makes key "x" into "sites/a/x"),
// so several sites can share one bucket. An empty prefix returns s.
func WithPrefix(s Store, prefix string) Store {
	prefix = strings.Trim(prefix, "/")
	if prefix == "" {
		return s
	}
	return &prefixed{s: s, p: prefix + "/"}
}

type prefixed struct {
	s Store
	p string
}

func (x *prefixed) Get(ctx context.Context, key string) (io.ReadCloser, Info, error) {
	rc, i, err := x.s.Get(ctx, x.p+key)
	i.Key = strings.TrimPrefix(i.Key, x.p)
	return rc, i, err
}

func (x *prefixed) Head(ctx context.Context, key string) (Info, error) {
	i, err := x.s.Head(ctx, x.p+key)
	i.Key = strings.TrimPrefix(i.Key, x.p)
	return i, err
}

func (x *prefixed) Put(ctx context.Context, key string, body io.ReadSeeker, size int64, opts PutOptions) (string, error) {
	return x.s.Put(ctx, x.p+key, body, size, opts)
}

func (x *prefixed) Copy(ctx context.Context, src, dst string, opts PutOptions) error {
	return x.s.Copy(ctx, x.p+src, x.p+dst, opts)
}

func (x *prefixed) Delete(ctx context.Context, keys ...string) error {
	full := make([]string, len(keys))
	for i, k := range keys {
		full[i] = x.p + k
	}
	return x.s.Delete(ctx, full...)
}

func (x *prefixed) List(ctx context.Context, prefix string, fn func(Info) error) error {
	return x.s.List(ctx, x.p+prefix, func(i Info) error {
		i.Key = strings.TrimPrefix(i.Key, x.p)
		return fn(i)
	})
}

func (x *prefixed) String() string { return x.s.String() + "/" + strings.TrimSuffix(x.p, "/") }
