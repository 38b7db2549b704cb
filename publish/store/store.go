// Package store defines Store, the object storage a deploy is written to, and the
// errors every adapter returns. Adapters: store/file (a local folder, the embedded
// default target), store/s3 (aws-sdk-go-v2, any S3-compatible server), store/mem (tests).
// Decorators in this package add retries (Retry) and request counting (Count).
// store/storetest is the conformance suite every adapter passes.
//
// Keys are slash-separated and never start with "/". Every method takes ctx first and
// stops when it is done. Errors wrap ErrNotFound, ErrPrecondition or ErrPermanent where
// those apply, so callers use errors.Is; anything else may be transient and is retried
// by Retry.
package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// Errors adapters wrap.
var (
	// ErrNotFound: the key (or the bucket/folder itself) does not exist.
	ErrNotFound = errors.New("not found")
	// ErrPrecondition: a conditional write's condition failed (If-None-Match: * on an
	// existing key, If-Match with another ETag). Never retried.
	ErrPrecondition = errors.New("precondition failed")
	// ErrPermanent: retrying cannot help (access denied, bad request, no such bucket,
	// checksum mismatch).
	ErrPermanent = errors.New("permanent error")
)

// Meta is what a stored object carries besides its bytes.
type Meta struct {
	ContentType  string
	CacheControl string
	// Metadata is user metadata (x-amz-meta-*); keys are lower-case.
	Metadata map[string]string
	// RedirectLocation makes website hosting answer with a 301 to it
	// (x-amz-website-redirect-location).
	RedirectLocation string
}

// Info describes a stored object.
type Info struct {
	Key  string
	Size int64
	// ETag is opaque: equal ETags mean equal objects. Used with PutOptions.IfMatch.
	ETag    string
	ModTime time.Time
	Meta    Meta
	// SHA256 is the hex SHA-256 of the object's bytes when the store vouches for it
	// without a read (S3: the checksum it stored with the object, asked for with
	// checksum mode on Head; mem: computed); "" when it does not know. Only Head sets it.
	SHA256 string
}

// PutOptions control a write.
type PutOptions struct {
	Meta
	// SHA256 is the hex SHA-256 of the body: the store verifies it and rejects a body
	// that does not match (ErrPermanent). Empty: not checked.
	SHA256 string
	// IfNoneMatch makes the write succeed only when the key does not exist yet
	// (If-None-Match: *); otherwise ErrPrecondition.
	IfNoneMatch bool
	// IfMatch makes the write succeed only when the key's ETag is this one; otherwise
	// ErrPrecondition (also when the key does not exist).
	IfMatch string
	// Deferred says that the caller makes this write durable with a later conditional
	// write (a deploy's blobs, made durable by the record and the pointer after them):
	// a store that makes each conditional write durable (store/file) may leave this
	// one to the next. The condition itself is checked as always.
	Deferred bool
}

// Store is object storage for deploys.
type Store interface {
	// Get opens an object. The caller closes Body. ErrNotFound when absent.
	Get(ctx context.Context, key string) (io.ReadCloser, Info, error)
	// Head returns an object's info without its body. ErrNotFound when absent.
	Head(ctx context.Context, key string) (Info, error)
	// Put writes an object of size bytes from body (which Retry may rewind with Seek).
	// It returns the new ETag.
	Put(ctx context.Context, key string, body io.ReadSeeker, size int64, opts PutOptions) (string, error)
	// Copy copies src to dst inside the store without moving the bytes through the
	// client, replacing dst's Meta with opts.Meta (SHA256, IfNoneMatch and IfMatch are
	// ignored). ErrNotFound when src is absent.
	Copy(ctx context.Context, src, dst string, opts PutOptions) error
	// Delete removes keys; absent keys are not an error.
	Delete(ctx context.Context, keys ...string) error
	// List calls fn for every key with the prefix, in lexical order; fn's error stops
	// the listing and is returned.
	List(ctx context.Context, prefix string, fn func(Info) error) error
	// String names the store for messages (never with credentials).
	String() string
}

// PutBytes is Put for a byte slice.
func PutBytes(ctx context.Context, s Store, key string, b []byte, opts PutOptions) (string, error) {
	return s.Put(ctx, key, strings.NewReader(string(b)), int64(len(b)), opts)
}

// GetBytes reads a whole object.
func GetBytes(ctx context.Context, s Store, key string) ([]byte, Info, error) {
	rc, info, err := s.Get(ctx, key)
	if err != nil {
		return nil, Info{}, err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return nil, Info{}, fmt.Errorf("read %s: %w", key, err)
	}
	return b, info, nil
}

// Checksum returns the hex SHA-256 of the bytes stored at key, as the store has them
// now: from Head when the store vouches for it (Info.SHA256), otherwise by reading and
// hashing the object (the file store). A blob whose checksum differs from its name
// was corrupted in the store. ErrNotFound when absent.
func Checksum(ctx context.Context, s Store, key string) (string, Info, error) {
	info, err := s.Head(ctx, key)
	if err != nil {
		return "", Info{}, err
	}
	if info.SHA256 != "" {
		return info.SHA256, info, nil
	}
	rc, info, err := s.Get(ctx, key)
	if err != nil {
		return "", Info{}, err
	}
	defer rc.Close()
	h := sha256.New()
	if _, err := io.Copy(h, rc); err != nil {
		return "", Info{}, fmt.Errorf("read %s: %w", key, err)
	}
	return hex.EncodeToString(h.Sum(nil)), info, nil
}

// CheckKey rejects keys a store must never write: empty, absolute, with "." or ".."
// segments, or with backslashes or NUL.
func CheckKey(key string) error {
	if key == "" || strings.HasPrefix(key, "/") || strings.ContainsAny(key, "\\\x00") {
		return fmt.Errorf("invalid key %q: %w", key, ErrPermanent)
	}
	for _, seg := range strings.Split(key, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("invalid key %q: %w", key, ErrPermanent)
		}
	}
	return nil
}

// opError is an error with a plain message that wraps a store sentinel and its cause.
type opError struct {
	msg  string
	errs []error
}

func (e *opError) Error() string   { return e.msg }
func (e *opError) Unwrap() []error { return e.errs }

// Errorf returns an error whose message is the formatted text (the cause is not
// printed, so adapters choose what a person sees) and that wraps kind (ErrNotFound,
// ErrPrecondition, ErrPermanent, or nil for a transient error) and cause (or nil), so
// errors.Is and errors.As still reach both.
func Errorf(kind, cause error, format string, args ...any) error {
	e := &opError{msg: fmt.Sprintf(format, args...)}
	for _, err := range []error{kind, cause} {
		if err != nil {
			e.errs = append(e.errs, err)
		}
	}
	return e
}
