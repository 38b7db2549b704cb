package publish

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math/bits"
	"path"
	"sort"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/stump-dev/stump/publish/store"
)

// Deploy records are lean (format 2): _stump/deploys/<id>.json holds the record's
// fields and, instead of the objects, the SHA-256 of each of Buckets chunks; the
// objects are split into the chunks by a hash of their path, and each chunk is stored
// once, gzip-compressed, at _stump/chunks/<sha256 of its JSON>. A deploy shares every
// chunk its change did not touch with its parent, so:
//
//   - a publish reads the live record's header (a few KiB) and only the chunks whose
//     hash differs from the same chunk of its own build (a no-op reads none);
//   - it writes the header and only the chunks that are new (a one-page change writes
//     the few chunks that hold the paths it changed).
//
// Records of format 1 (every object inline) are still read. Chunks are checked
// against their hash when read.

// recordFormat is the format publish writes.
const recordFormat = 2

// objectsPerChunk is the chunk size publish aims for when it picks a bucket count.
const objectsPerChunk = 128

func chunkKey(sum string) string { return path.Join(internalPrefix, "chunks", sum) }

// bucketsFor picks the bucket count for n objects: the live record's (prev) while its
// chunks stay between 16 and 1024 objects, so a deploy shares chunks with its parent,
// else a power of two near n/objectsPerChunk.
func bucketsFor(n, prev int) int {
	if prev > 0 && (prev == 1 || n >= prev*16) && n <= prev*1024 {
		return prev
	}
	want := (n + objectsPerChunk - 1) / objectsPerChunk
	if want <= 1 {
		return 1
	}
	return 1 << bits.Len(uint(want-1))
}

func bucketOf(p string, n int) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(p))
	return int(h.Sum32() % uint32(n))
}

// chunk is one bucket of objects: their canonical JSON (sorted by path) and its hash.
type chunk struct {
	sum     string
	raw     []byte
	objects []Object
}

// chunkObjects splits objects into n chunks. An empty bucket has sum "".
func chunkObjects(objects []Object, n int) ([]chunk, error) {
	groups := make([][]Object, n)
	for _, o := range objects {
		b := bucketOf(o.Path, n)
		groups[b] = append(groups[b], o)
	}
	out := make([]chunk, n)
	for i, g := range groups {
		if len(g) == 0 {
			continue
		}
		sort.Slice(g, func(a, b int) bool { return g[a].Path < g[b].Path })
		raw, err := json.Marshal(g)
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(raw)
		out[i] = chunk{sum: hex.EncodeToString(sum[:]), raw: raw, objects: g}
	}
	return out, nil
}

// chunkCache holds chunks by hash: the ones a publish computed from its build (so the
// live record's identical chunks are not downloaded) and the ones read.
type chunkCache struct {
	mu sync.Mutex
	m  map[string][]Object
}

func (c *chunkCache) get(sum string) ([]Object, bool) {
	if c == nil {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	o, ok := c.m[sum]
	return o, ok
}

func (c *chunkCache) put(sum string, objs []Object) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string][]Object{}
	}
	c.m[sum] = objs
}

func (c *chunkCache) add(chunks []chunk) {
	for _, ch := range chunks {
		if ch.sum != "" {
			c.put(ch.sum, ch.objects)
		}
	}
}

// readChunk reads one chunk and checks its hash.
func readChunk(ctx context.Context, s store.Store, sum string) ([]Object, error) {
	b, _, err := store.GetBytes(ctx, s, chunkKey(sum))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", chunkKey(sum), err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("read %s: not gzip (%v): %w", chunkKey(sum), err, store.ErrPermanent)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("read %s: %v: %w", chunkKey(sum), err, store.ErrPermanent)
	}
	if got := sha256.Sum256(raw); hex.EncodeToString(got[:]) != sum {
		return nil, fmt.Errorf("read %s: its content does not match its name (corrupted): %w", chunkKey(sum), store.ErrPermanent)
	}
	var objs []Object
	if err := json.Unmarshal(raw, &objs); err != nil {
		return nil, fmt.Errorf("read %s: %v: %w", chunkKey(sum), err, store.ErrPermanent)
	}
	return objs, nil
}

// readRecord reads a record's header and, when objects, its objects (format 2: from
// its chunks, taking those cache holds from there and caching those it reads).
func readRecord(ctx context.Context, s store.Store, id string, objects bool, cache *chunkCache) (*Record, error) {
	var r Record
	_, ok, err := readJSON(ctx, s, recordKey(id), &r)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("deploy %s has no record in %s (stump doctor explains the target's state, and stump doctor --fix rebuilds what it can): %w", id, s, store.ErrNotFound)
	}
	if !objects || r.Format < 2 {
		return &r, nil
	}
	return loadObjects(ctx, s, &r, cache)
}

// loadObjects reads the objects of a format-2 record header r from its chunks (those
// cache holds from there) into a copy of r.
func loadObjects(ctx context.Context, s store.Store, hdr *Record, cache *chunkCache) (*Record, error) {
	r := *hdr
	id := r.ID
	parts := make([][]Object, len(r.Chunks))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for i, sum := range r.Chunks {
		if sum == "" {
			continue
		}
		if objs, ok := cache.get(sum); ok {
			parts[i] = objs
			continue
		}
		g.Go(func() error {
			objs, err := readChunk(gctx, s, sum)
			if err != nil {
				return err
			}
			cache.put(sum, objs)
			parts[i] = objs
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("the record of deploy %s is incomplete (stump doctor --fix rebuilds the live deploy's record): %w", id, err)
	}
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	r.Objects = make([]Object, 0, n)
	for _, p := range parts {
		r.Objects = append(r.Objects, p...)
	}
	sort.Slice(r.Objects, func(i, j int) bool { return r.Objects[i].Path < r.Objects[j].Path })
	return &r, nil
}

// writeRecord writes rec in format 2: the chunks that are not in have (the chunk
// hashes of a record already stored, whose chunks are there), create-only, then the
// header, create-only unless overwrite (stump doctor --fix replacing an unreadable
// record). It returns the chunks written and the bytes sent.
func writeRecord(ctx context.Context, s store.Store, rec *Record, chunks []chunk, have []string, workers int, overwrite bool) (int, int64, error) {
	stored := map[string]bool{}
	for _, h := range have {
		stored[h] = true
	}
	hdr := *rec
	hdr.Format = recordFormat
	hdr.Buckets = len(chunks)
	hdr.Chunks = make([]string, len(chunks))
	hdr.Objects = nil
	var written int
	var sent int64
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(1, workers))
	for i, ch := range chunks {
		hdr.Chunks[i] = ch.sum
		if ch.sum == "" || stored[ch.sum] {
			continue
		}
		stored[ch.sum] = true
		g.Go(func() error {
			var buf bytes.Buffer
			zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
			_, _ = zw.Write(ch.raw)
			if err := zw.Close(); err != nil {
				return err
			}
			_, err := store.PutBytes(gctx, s, chunkKey(ch.sum), buf.Bytes(), store.PutOptions{IfNoneMatch: true, Meta: store.Meta{ContentType: "application/json", CacheControl: "no-store", Metadata: map[string]string{"content-encoding": "gzip"}}})
			if errors.Is(err, store.ErrPrecondition) {
				return nil // content-addressed: stored by an earlier deploy
			}
			if err != nil {
				return fmt.Errorf("write %s: %w", chunkKey(ch.sum), err)
			}
			mu.Lock()
			written++
			sent += int64(buf.Len())
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return 0, 0, err
	}
	b, err := json.Marshal(&hdr)
	if err != nil {
		return 0, 0, err
	}
	rec.Format, rec.Buckets, rec.Chunks = hdr.Format, hdr.Buckets, hdr.Chunks
	if _, err := store.PutBytes(ctx, s, recordKey(rec.ID), b, store.PutOptions{IfNoneMatch: !overwrite, Meta: store.Meta{ContentType: "application/json", CacheControl: "no-store"}}); err != nil {
		return written, sent, fmt.Errorf("write %s: %w", recordKey(rec.ID), err)
	}
	return written, sent + int64(len(b)), nil
}

// recordChunks are the chunks of objects for a record whose parent has prev buckets.
func recordChunks(objects []Object, prev int) ([]chunk, error) {
	return chunkObjects(objects, bucketsFor(len(objects), prev))
}
