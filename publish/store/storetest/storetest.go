// Package storetest is the conformance suite of store.Store: every adapter (file,
// mem, s3) and decorator runs it, so they all keep one contract.
//
//	func TestStore(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store { return newStore(t) })
//	}
//
// The suite assumes nothing of an adapter beyond the contract of store.Store. Its
// subtests run in parallel, each with a store of its own from newStore (so newStore
// must be safe to call concurrently; it may hand out one shared store, since every
// subtest writes under a random prefix of its own). Run returns when all of them are
// done.
package storetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/stump-dev/stump/publish/store"
)

// Config tunes the suite for an adapter. The zero Config is the default.
type Config struct {
	// ManyKeys is how many objects the listing test writes, to cross S3's page of
	// 1000 keys (default 1100; negative skips the test).
	ManyKeys int
	// Workers is how many goroutines write those objects (default 16).
	Workers int
}

// Run runs the suite with the default Config.
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	Config{}.Run(t, newStore)
}

// Run runs the suite.
func (c Config) Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	if c.ManyKeys == 0 {
		c.ManyKeys = 1100
	}
	if c.Workers <= 0 {
		c.Workers = 16
	}
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store, p string)
	}{
		{"RoundTrip", testRoundTrip},
		{"Empty", testEmpty},
		{"Overwrite", testOverwrite},
		{"NotFound", testNotFound},
		{"IfNoneMatch", testIfNoneMatch},
		{"IfMatch", testIfMatch},
		{"IfMatchMissing", testIfMatchMissing},
		{"ConcurrentCreate", testConcurrentCreate},
		{"ConcurrentSwap", testConcurrentSwap},
		{"SHA256", testSHA256},
		{"SHA256Mismatch", testSHA256Mismatch},
		{"Checksum", testChecksum},
		{"Large", testLarge},
		{"Copy", testCopy},
		{"CopyIndependent", testCopyIndependent},
		{"CopyOverwrite", testCopyOverwrite},
		{"CopySelf", testCopySelf},
		{"Delete", testDelete},
		{"List", testList},
		{"ListStop", testListStop},
		{"ManyKeys", c.testManyKeys},
		{"InvalidKeys", testInvalidKeys},
		{"Canceled", testCanceled},
	}
	t.Run("storetest", func(t *testing.T) {
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				s := newStore(t)
				tc.fn(t, s, prefix())
			})
		}
	})
}

// prefix is a fresh random key prefix, "st-<hex>/".
func prefix() string {
	var b [6]byte
	rand.Read(b[:])
	return "st-" + hex.EncodeToString(b[:]) + "/"
}

// ---- helpers

func put(t *testing.T, s store.Store, key, body string, opts store.PutOptions) string {
	t.Helper()
	etag, err := store.PutBytes(t.Context(), s, key, []byte(body), opts)
	if err != nil {
		t.Fatalf("Put %s: %v", key, err)
	}
	if etag == "" {
		t.Fatalf("Put %s: empty ETag", key)
	}
	return etag
}

func get(t *testing.T, s store.Store, key string) (string, store.Info) {
	t.Helper()
	b, info, err := store.GetBytes(t.Context(), s, key)
	if err != nil {
		t.Fatalf("Get %s: %v", key, err)
	}
	return string(b), info
}

func head(t *testing.T, s store.Store, key string) store.Info {
	t.Helper()
	info, err := s.Head(t.Context(), key)
	if err != nil {
		t.Fatalf("Head %s: %v", key, err)
	}
	return info
}

func wantContent(t *testing.T, s store.Store, key, want string) {
	t.Helper()
	if got, _ := get(t, s, key); got != want {
		t.Errorf("Get %s = %q, want %q", key, abbrev(got), abbrev(want))
	}
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: error %v, want one wrapping %q", what, err, want)
	}
}

func wantNotFound(t *testing.T, s store.Store, key string) {
	t.Helper()
	_, err := s.Head(t.Context(), key)
	wantErr(t, "Head "+key, err, store.ErrNotFound)
}

func abbrev(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

func sum(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// list returns the Infos List gives for prefix.
func list(t *testing.T, s store.Store, prefix string) []store.Info {
	t.Helper()
	var infos []store.Info
	err := s.List(t.Context(), prefix, func(info store.Info) error {
		infos = append(infos, info)
		return nil
	})
	if err != nil {
		t.Fatalf("List %q: %v", prefix, err)
	}
	return infos
}

func keys(infos []store.Info) []string {
	var ks []string
	for _, info := range infos {
		ks = append(ks, info.Key)
	}
	return ks
}

var fullMeta = store.Meta{
	ContentType:      "text/html; charset=utf-8",
	CacheControl:     "public, max-age=60",
	Metadata:         map[string]string{"Sha256": "abc", "stump-deploy": "d1"},
	RedirectLocation: "/new/",
}

// wantMeta checks that got carries what was put with want. An adapter may add a
// default content type when none was given; user metadata keys come back lower-case.
func wantMeta(t *testing.T, what string, got, want store.Meta) {
	t.Helper()
	if want.ContentType != "" && got.ContentType != want.ContentType {
		t.Errorf("%s: ContentType %q, want %q", what, got.ContentType, want.ContentType)
	}
	if got.CacheControl != want.CacheControl {
		t.Errorf("%s: CacheControl %q, want %q", what, got.CacheControl, want.CacheControl)
	}
	if got.RedirectLocation != want.RedirectLocation {
		t.Errorf("%s: RedirectLocation %q, want %q", what, got.RedirectLocation, want.RedirectLocation)
	}
	wantMD := map[string]string{}
	for k, v := range want.Metadata {
		wantMD[strings.ToLower(k)] = v
	}
	gotMD := got.Metadata
	if gotMD == nil {
		gotMD = map[string]string{}
	}
	if fmt.Sprint(gotMD) != fmt.Sprint(wantMD) {
		t.Errorf("%s: Metadata %v, want %v", what, gotMD, wantMD)
	}
}

// ---- tests

func testRoundTrip(t *testing.T, s store.Store, p string) {
	for _, key := range []string{p + "index.html", p + "news/rally/index.html", p + "a b/ünï+code (1).html"} {
		body := "<h1>" + key + "</h1>"
		etag := put(t, s, key, body, store.PutOptions{Meta: fullMeta})
		got, info := get(t, s, key)
		if got != body {
			t.Errorf("Get %s = %q, want %q", key, got, body)
		}
		if info.Key != key {
			t.Errorf("Get %s: Info.Key %q", key, info.Key)
		}
		if info.Size != int64(len(body)) {
			t.Errorf("Get %s: Size %d, want %d", key, info.Size, len(body))
		}
		if info.ETag != etag {
			t.Errorf("Get %s: ETag %s, Put returned %s", key, info.ETag, etag)
		}
		if info.ModTime.IsZero() {
			t.Errorf("Get %s: zero ModTime", key)
		}
		wantMeta(t, "Get "+key, info.Meta, fullMeta)

		h := head(t, s, key)
		if h.Key != key || h.Size != info.Size || h.ETag != etag {
			t.Errorf("Head %s = %+v, Get said %+v", key, h, info)
		}
		wantMeta(t, "Head "+key, h.Meta, fullMeta)
	}
}

func testEmpty(t *testing.T, s store.Store, p string) {
	key := p + "empty"
	put(t, s, key, "", store.PutOptions{SHA256: sum("")})
	got, info := get(t, s, key)
	if got != "" || info.Size != 0 {
		t.Errorf("Get %s = %q (Size %d), want empty", key, got, info.Size)
	}
	wantMeta(t, "Get "+key, info.Meta, store.Meta{})
	// A redirect object: no bytes, a location.
	key = p + "old/index.html"
	put(t, s, key, "", store.PutOptions{Meta: store.Meta{RedirectLocation: "/new/"}})
	if h := head(t, s, key); h.Meta.RedirectLocation != "/new/" {
		t.Errorf("Head %s: RedirectLocation %q, want /new/", key, h.Meta.RedirectLocation)
	}
}

func testOverwrite(t *testing.T, s store.Store, p string) {
	key := p + "page.html"
	e1 := put(t, s, key, "one", store.PutOptions{Meta: fullMeta})
	e2 := put(t, s, key, "two", store.PutOptions{Meta: store.Meta{ContentType: "text/plain"}})
	if e1 == e2 {
		t.Errorf("ETag unchanged (%s) by a write of other bytes", e1)
	}
	got, info := get(t, s, key)
	if got != "two" || info.ETag != e2 {
		t.Errorf("Get %s = %q, %s; want %q, %s", key, got, info.ETag, "two", e2)
	}
	// Meta is replaced, not merged.
	wantMeta(t, "Get "+key, info.Meta, store.Meta{ContentType: "text/plain"})
}

func testNotFound(t *testing.T, s store.Store, p string) {
	ctx := t.Context()
	key := p + "missing.html"
	_, _, err := s.Get(ctx, key)
	wantErr(t, "Get", err, store.ErrNotFound)
	_, err = s.Head(ctx, key)
	wantErr(t, "Head", err, store.ErrNotFound)
	err = s.Copy(ctx, key, p+"dst.html", store.PutOptions{})
	wantErr(t, "Copy", err, store.ErrNotFound)
	wantNotFound(t, s, p+"dst.html")
	// A folder-like prefix of an existing key is no object.
	put(t, s, p+"dir/file", "x", store.PutOptions{})
	_, err = s.Head(ctx, p+"dir")
	wantErr(t, "Head of a folder", err, store.ErrNotFound)
	if got := list(t, s, p+"nothing/"); len(got) != 0 {
		t.Errorf("List of an empty prefix: %v", keys(got))
	}
}

func testIfNoneMatch(t *testing.T, s store.Store, p string) {
	key := p + "_stump/lock"
	etag := put(t, s, key, "first", store.PutOptions{IfNoneMatch: true})
	_, err := store.PutBytes(t.Context(), s, key, []byte("second"), store.PutOptions{IfNoneMatch: true})
	wantErr(t, "second IfNoneMatch Put", err, store.ErrPrecondition)
	got, info := get(t, s, key)
	if got != "first" || info.ETag != etag {
		t.Errorf("after a failed IfNoneMatch: %q (%s), want %q (%s)", got, info.ETag, "first", etag)
	}
	// Deleted, the key can be created again.
	if err := s.Delete(t.Context(), key); err != nil {
		t.Fatal(err)
	}
	put(t, s, key, "third", store.PutOptions{IfNoneMatch: true})
	wantContent(t, s, key, "third")
}

func testIfMatch(t *testing.T, s store.Store, p string) {
	ctx := t.Context()
	key := p + "_stump/current.json"
	e1 := put(t, s, key, `{"deploy":"1"}`, store.PutOptions{})
	e2, err := store.PutBytes(ctx, s, key, []byte(`{"deploy":"2"}`), store.PutOptions{IfMatch: e1, Meta: store.Meta{ContentType: "application/json"}})
	if err != nil {
		t.Fatalf("IfMatch with the current ETag: %v", err)
	}
	if e2 == "" || e2 == e1 {
		t.Errorf("IfMatch Put returned ETag %q (was %q)", e2, e1)
	}
	if h := head(t, s, key); h.ETag != e2 {
		t.Errorf("Head ETag %s, Put returned %s", h.ETag, e2)
	}
	// e1 is stale now.
	_, err = store.PutBytes(ctx, s, key, []byte(`{"deploy":"3"}`), store.PutOptions{IfMatch: e1})
	wantErr(t, "IfMatch with a stale ETag", err, store.ErrPrecondition)
	got, info := get(t, s, key)
	if got != `{"deploy":"2"}` || info.ETag != e2 {
		t.Errorf("after a failed IfMatch: %s (%s)", got, info.ETag)
	}
	wantMeta(t, "Get", info.Meta, store.Meta{ContentType: "application/json"})
}

func testIfMatchMissing(t *testing.T, s store.Store, p string) {
	key := p + "_stump/current.json"
	e := put(t, s, p+"other", "x", store.PutOptions{})
	_, err := store.PutBytes(t.Context(), s, key, []byte("x"), store.PutOptions{IfMatch: e})
	wantErr(t, "IfMatch on a missing key", err, store.ErrPrecondition)
	wantNotFound(t, s, key)
}

// race runs fn(i) on n goroutines at once and returns their errors.
func race(n int, fn func(i int) error) []error {
	errs := make([]error, n)
	var start, done sync.WaitGroup
	start.Add(1)
	for i := range n {
		done.Go(func() {
			start.Wait()
			errs[i] = fn(i)
		})
	}
	start.Done()
	done.Wait()
	return errs
}

func testConcurrentCreate(t *testing.T, s store.Store, p string) {
	key := p + "_stump/lock"
	errs := race(8, func(i int) error {
		_, err := store.PutBytes(t.Context(), s, key, fmt.Appendf(nil, "lease %d", i), store.PutOptions{IfNoneMatch: true})
		return err
	})
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Errorf("goroutines %d and %d both created %s", winner, i, key)
		case err == nil:
			winner = i
		default:
			wantErr(t, fmt.Sprintf("goroutine %d", i), err, store.ErrPrecondition)
		}
	}
	if winner < 0 {
		t.Fatalf("no goroutine created %s", key)
	}
	wantContent(t, s, key, fmt.Sprintf("lease %d", winner))
}

func testConcurrentSwap(t *testing.T, s store.Store, p string) {
	key := p + "_stump/current.json"
	e0 := put(t, s, key, "deploy 0", store.PutOptions{})
	errs := race(8, func(i int) error {
		_, err := store.PutBytes(t.Context(), s, key, fmt.Appendf(nil, "deploy %d", i+1), store.PutOptions{IfMatch: e0})
		return err
	})
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Errorf("goroutines %d and %d both swapped %s", winner, i, key)
		case err == nil:
			winner = i
		default:
			wantErr(t, fmt.Sprintf("goroutine %d", i), err, store.ErrPrecondition)
		}
	}
	if winner < 0 {
		t.Fatalf("no goroutine swapped %s", key)
	}
	wantContent(t, s, key, fmt.Sprintf("deploy %d", winner+1))
}

func testSHA256(t *testing.T, s store.Store, p string) {
	body := "<p>checked</p>"
	key := p + "_stump/objects/sha256/" + sum(body)
	put(t, s, key, body, store.PutOptions{SHA256: sum(body)})
	wantContent(t, s, key, body)
}

// testChecksum: store.Checksum gives the SHA-256 of the bytes stored now, whether they
// were written with a checksum or not, and after an overwrite with other bytes; a
// checksum Head offers is never a stale one.
func testChecksum(t *testing.T, s store.Store, p string) {
	ctx := t.Context()
	key := p + "sum/blob"
	put(t, s, key, "first bytes", store.PutOptions{SHA256: sum("first bytes")})
	if got, _, err := store.Checksum(ctx, s, key); err != nil || got != sum("first bytes") {
		t.Errorf("Checksum after a Put with SHA256 = %q, %v; want %s", got, err, sum("first bytes"))
	}
	// Other bytes under the same key, written without a checksum (a stray writer).
	put(t, s, key, "other bytes!", store.PutOptions{})
	if got, _, err := store.Checksum(ctx, s, key); err != nil || got != sum("other bytes!") {
		t.Errorf("Checksum after an overwrite = %q, %v; want %s (the bytes stored now)", got, err, sum("other bytes!"))
	}
	if h := head(t, s, key); h.SHA256 != "" && h.SHA256 != sum("other bytes!") {
		t.Errorf("Head SHA256 = %s after an overwrite with other bytes: a stale checksum", h.SHA256)
	}
	if _, _, err := store.Checksum(ctx, s, p+"sum/missing"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Checksum of a missing key: %v, want ErrNotFound", err)
	}
}

func testSHA256Mismatch(t *testing.T, s store.Store, p string) {
	ctx := t.Context()
	key := p + "_stump/objects/sha256/" + sum("right")
	_, err := store.PutBytes(ctx, s, key, []byte("wrong"), store.PutOptions{SHA256: sum("right")})
	wantErr(t, "Put with a wrong SHA256", err, store.ErrPermanent)
	wantNotFound(t, s, key)
	if got := list(t, s, p); len(got) != 0 {
		t.Errorf("List after a rejected Put: %v", keys(got))
	}
	// An existing object stays as it was.
	key = p + "page.html"
	etag := put(t, s, key, "old", store.PutOptions{})
	_, err = store.PutBytes(ctx, s, key, []byte("new"), store.PutOptions{SHA256: sum("other")})
	wantErr(t, "Put with a wrong SHA256", err, store.ErrPermanent)
	got, info := get(t, s, key)
	if got != "old" || info.ETag != etag {
		t.Errorf("after a rejected Put: %q (%s), want %q (%s)", got, info.ETag, "old", etag)
	}
}

func testLarge(t *testing.T, s store.Store, p string) {
	b := make([]byte, 3<<20+17)
	rand.Read(b)
	h := sha256.Sum256(b)
	key := p + "big.bin"
	etag, err := s.Put(t.Context(), key, bytes.NewReader(b), int64(len(b)), store.PutOptions{SHA256: hex.EncodeToString(h[:])})
	if err != nil {
		t.Fatal(err)
	}
	got, info, err := store.GetBytes(t.Context(), s, key)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, b) || info.Size != int64(len(b)) || info.ETag != etag {
		t.Errorf("Get %s: %d bytes (equal: %v), Size %d, ETag %s (Put: %s)", key, len(got), bytes.Equal(got, b), info.Size, info.ETag, etag)
	}
}

func testCopy(t *testing.T, s store.Store, p string) {
	src := p + "_stump/objects/sha256/" + sum("<p>page</p>")
	dst := p + "news/index.html"
	srcMeta := store.Meta{ContentType: "application/octet-stream", Metadata: map[string]string{"Origin": "blob"}}
	srcETag := put(t, s, src, "<p>page</p>", store.PutOptions{Meta: srcMeta})
	dstMeta := store.Meta{ContentType: "text/html", CacheControl: "max-age=300", Metadata: map[string]string{"Surrogate-Key": "news"}, RedirectLocation: "/news/"}
	// SHA256, IfNoneMatch and IfMatch are ignored by Copy.
	err := s.Copy(t.Context(), src, dst, store.PutOptions{Meta: dstMeta, SHA256: sum("nonsense"), IfMatch: `"nonsense"`})
	if err != nil {
		t.Fatalf("Copy: %v", err)
	}
	got, info := get(t, s, dst)
	if got != "<p>page</p>" || info.Size != int64(len(got)) {
		t.Errorf("Get %s = %q (Size %d)", dst, got, info.Size)
	}
	wantMeta(t, "copy", info.Meta, dstMeta)
	if head(t, s, dst).ETag == "" {
		t.Errorf("copy has no ETag")
	}
	got, info = get(t, s, src)
	if got != "<p>page</p>" || info.ETag != srcETag {
		t.Errorf("source after Copy: %q (%s), want unchanged (%s)", got, info.ETag, srcETag)
	}
	wantMeta(t, "source after Copy", info.Meta, srcMeta)
}

func testCopyIndependent(t *testing.T, s store.Store, p string) {
	ctx := t.Context()
	src, dst := p+"src.html", p+"dst.html"
	put(t, s, src, "version 1", store.PutOptions{})
	if err := s.Copy(ctx, src, dst, store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	dstETag := head(t, s, dst).ETag
	put(t, s, src, "version 2, longer", store.PutOptions{})
	wantContent(t, s, dst, "version 1")
	if e := head(t, s, dst).ETag; e != dstETag {
		t.Errorf("copy's ETag changed from %s to %s by a Put of its source", dstETag, e)
	}
	if err := s.Delete(ctx, src); err != nil {
		t.Fatal(err)
	}
	wantContent(t, s, dst, "version 1")
}

func testCopyOverwrite(t *testing.T, s store.Store, p string) {
	src, dst := p+"a/src", p+"b/dst"
	put(t, s, src, "new", store.PutOptions{})
	old := put(t, s, dst, "old", store.PutOptions{Meta: fullMeta})
	if err := s.Copy(t.Context(), src, dst, store.PutOptions{Meta: store.Meta{ContentType: "text/css"}}); err != nil {
		t.Fatal(err)
	}
	got, info := get(t, s, dst)
	if got != "new" || info.ETag == old {
		t.Errorf("Get %s = %q (%s), want %q and a new ETag", dst, got, info.ETag, "new")
	}
	wantMeta(t, "copy", info.Meta, store.Meta{ContentType: "text/css"})
	// Copied twice, the result is the same.
	if err := s.Copy(t.Context(), src, dst, store.PutOptions{Meta: store.Meta{ContentType: "text/css"}}); err != nil {
		t.Fatal(err)
	}
	wantContent(t, s, dst, "new")
	if got := keys(list(t, s, p)); !slices.Equal(got, []string{src, dst}) {
		t.Errorf("List = %v", got)
	}
}

func testCopySelf(t *testing.T, s store.Store, p string) {
	key := p + "style.css"
	put(t, s, key, "body{}", store.PutOptions{Meta: store.Meta{ContentType: "text/plain"}})
	m := store.Meta{ContentType: "text/css", CacheControl: "max-age=31536000, immutable"}
	if err := s.Copy(t.Context(), key, key, store.PutOptions{Meta: m}); err != nil {
		t.Fatalf("Copy onto itself: %v", err)
	}
	got, info := get(t, s, key)
	if got != "body{}" {
		t.Errorf("Get %s = %q", key, got)
	}
	wantMeta(t, "Copy onto itself", info.Meta, m)
	if got := keys(list(t, s, p)); !slices.Equal(got, []string{key}) {
		t.Errorf("List = %v", got)
	}
}

func testDelete(t *testing.T, s store.Store, p string) {
	ctx := t.Context()
	for _, k := range []string{"a.html", "b/c.html", "b/d.html", "keep.html"} {
		put(t, s, p+k, k, store.PutOptions{})
	}
	if err := s.Delete(ctx, p+"a.html", p+"b/c.html", p+"absent.html", p+"b/d.html", p+"no/such/folder"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	for _, k := range []string{"a.html", "b/c.html", "b/d.html"} {
		wantNotFound(t, s, p+k)
	}
	wantContent(t, s, p+"keep.html", "keep.html")
	if got := keys(list(t, s, p)); !slices.Equal(got, []string{p + "keep.html"}) {
		t.Errorf("List after Delete = %v", got)
	}
	if err := s.Delete(ctx); err != nil {
		t.Errorf("Delete of no keys: %v", err)
	}
	if err := s.Delete(ctx, p+"a.html"); err != nil {
		t.Errorf("Delete of an absent key: %v", err)
	}
	// A deleted folder's key can be an object now.
	put(t, s, p+"b", "b", store.PutOptions{})
	wantContent(t, s, p+"b", "b")
}

func testList(t *testing.T, s store.Store, p string) {
	// Lexical order of the keys, not of the folders: '-' < '.' < '/' < '0' < 'B' < 'a'.
	ks := []string{"a-x", "a.b", "a/b", "a/c/d", "a0", "B", "b.c/e", "b/c.d/e", "z"}
	etags := map[string]string{}
	for i, k := range ks {
		etags[p+k] = put(t, s, p+k, strings.Repeat("x", i), store.PutOptions{Meta: store.Meta{ContentType: "text/plain"}})
	}
	put(t, s, strings.TrimSuffix(p, "/")+"-sibling", "not under the prefix", store.PutOptions{})
	want := make([]string, len(ks))
	for i, k := range ks {
		want[i] = p + k
	}
	slices.Sort(want)

	infos := list(t, s, p)
	if got := keys(infos); !slices.Equal(got, want) {
		t.Fatalf("List(%q) =\n%v\nwant\n%v", p, got, want)
	}
	for _, info := range infos {
		i := slices.Index(ks, strings.TrimPrefix(info.Key, p))
		if info.Size != int64(i) {
			t.Errorf("List: %s has Size %d, want %d", info.Key, info.Size, i)
		}
		if info.ETag != etags[info.Key] {
			t.Errorf("List: %s has ETag %s, Put returned %s", info.Key, info.ETag, etags[info.Key])
		}
		if info.ModTime.IsZero() {
			t.Errorf("List: %s has a zero ModTime", info.Key)
		}
	}
	for _, tc := range []struct{ prefix, want string }{
		{"a", "a-x a.b a/b a/c/d a0"},
		{"a/", "a/b a/c/d"},
		{"a/c", "a/c/d"},
		{"a/c/d", "a/c/d"},
		{"a/c/d/", ""},
		{"b", "b.c/e b/c.d/e"},
		{"b/c.", "b/c.d/e"},
		{"B", "B"},
		{"y", ""},
	} {
		var want []string
		for _, k := range strings.Fields(tc.want) {
			want = append(want, p+k)
		}
		if got := keys(list(t, s, p+tc.prefix)); !slices.Equal(got, want) {
			t.Errorf("List(%q) = %v, want %v", p+tc.prefix, got, want)
		}
	}
}

func testListStop(t *testing.T, s store.Store, p string) {
	for _, k := range []string{"1", "2", "3"} {
		put(t, s, p+k, k, store.PutOptions{})
	}
	stop := errors.New("stop here")
	var seen []string
	err := s.List(t.Context(), p, func(info store.Info) error {
		seen = append(seen, info.Key)
		if len(seen) == 2 {
			return stop
		}
		return nil
	})
	wantErr(t, "List whose fn fails", err, stop)
	if len(seen) != 2 {
		t.Errorf("List went on after fn failed: %v", seen)
	}
}

func (c Config) testManyKeys(t *testing.T, s store.Store, p string) {
	if c.ManyKeys < 0 {
		t.Skip("ManyKeys < 0")
	}
	n := c.ManyKeys
	want := make([]string, n)
	for i := range want {
		// Mixed folders, so that lexical order is not the order of writing.
		want[i] = fmt.Sprintf("%s%d/k%05d", p, i%7, i)
	}
	jobs := make(chan string)
	errs := make(chan error, c.Workers)
	var wg sync.WaitGroup
	for range c.Workers {
		wg.Go(func() {
			for k := range jobs {
				if _, err := store.PutBytes(t.Context(), s, k, []byte(k), store.PutOptions{}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
feed:
	for _, k := range want {
		select {
		case jobs <- k:
		case err := <-errs:
			t.Error(err)
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}
	slices.Sort(want)
	infos := list(t, s, p)
	if got := keys(infos); !slices.Equal(got, want) {
		t.Fatalf("List gave %d keys (in order: %v), want %d", len(got), slices.IsSorted(got), len(want))
	}
	for _, info := range infos {
		if info.Size != int64(len(info.Key)) || info.ETag == "" {
			t.Fatalf("List: %+v", info)
		}
	}
	// One Delete of them all (S3 deletes 1000 keys a request).
	if err := s.Delete(t.Context(), want...); err != nil {
		t.Fatalf("Delete of %d keys: %v", len(want), err)
	}
	if got := list(t, s, p); len(got) != 0 {
		t.Errorf("List after deleting all: %d keys", len(got))
	}
}

func testInvalidKeys(t *testing.T, s store.Store, p string) {
	ctx := t.Context()
	valid := p + "valid"
	put(t, s, valid, "x", store.PutOptions{})
	for _, key := range []string{"", "/abs", p + "a//b", p + "a/./b", p + "../x", p + "a/..", p + "trailing/", p + `back\slash`, p + "nul\x00"} {
		_, err := store.PutBytes(ctx, s, key, []byte("x"), store.PutOptions{})
		wantErr(t, fmt.Sprintf("Put %q", key), err, store.ErrPermanent)
		_, _, err = s.Get(ctx, key)
		wantErr(t, fmt.Sprintf("Get %q", key), err, store.ErrPermanent)
		_, err = s.Head(ctx, key)
		wantErr(t, fmt.Sprintf("Head %q", key), err, store.ErrPermanent)
		err = s.Copy(ctx, valid, key, store.PutOptions{})
		wantErr(t, fmt.Sprintf("Copy to %q", key), err, store.ErrPermanent)
		err = s.Copy(ctx, key, p+"dst", store.PutOptions{})
		wantErr(t, fmt.Sprintf("Copy from %q", key), err, store.ErrPermanent)
		err = s.Delete(ctx, valid, key)
		wantErr(t, fmt.Sprintf("Delete %q", key), err, store.ErrPermanent)
	}
	// A Delete with an invalid key deletes nothing.
	wantContent(t, s, valid, "x")
	if got := keys(list(t, s, p)); !slices.Equal(got, []string{valid}) {
		t.Errorf("List = %v, want only %s", got, valid)
	}
}

func testCanceled(t *testing.T, s store.Store, p string) {
	key := p + "page.html"
	put(t, s, key, "x", store.PutOptions{})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := store.PutBytes(ctx, s, p+"other.html", []byte("y"), store.PutOptions{})
	wantErr(t, "Put with a canceled context", err, context.Canceled)
	_, _, err = s.Get(ctx, key)
	wantErr(t, "Get with a canceled context", err, context.Canceled)
	_, err = s.Head(ctx, key)
	wantErr(t, "Head with a canceled context", err, context.Canceled)
	err = s.List(ctx, p, func(store.Info) error { return nil })
	wantErr(t, "List with a canceled context", err, context.Canceled)
	err = s.Delete(ctx, key)
	wantErr(t, "Delete with a canceled context", err, context.Canceled)
	wantContent(t, s, key, "x")
}
