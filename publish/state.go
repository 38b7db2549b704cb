package publish

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/stump-dev/stump/publish/store"
)

// Record is an immutable deploy record: who deployed what, when, and the objects.
type Record struct {
	ID       string    `json:"id"`
	Site     string    `json:"site"`
	Time     time.Time `json:"time"`
	User     string    `json:"user"`
	Host     string    `json:"host,omitempty"`
	Revision string    `json:"revision,omitempty"`
	Message  string    `json:"message,omitempty"`
	// Parent is the deploy that was live when this one was made.
	Parent        string `json:"parent,omitempty"`
	Files         int    `json:"files"`
	Bytes         int64  `json:"bytes"`
	UploadedFiles int    `json:"uploadedFiles"`
	UploadedBytes int64  `json:"uploadedBytes"`
	// Preview marks a deploy made to be looked at, never made live by publish.
	Preview bool `json:"preview,omitempty"`
	// Mode is how the deploy was laid out: "inplace" or "atomic".
	Mode string `json:"mode,omitempty"`
	// Base (atomic mode) is the deploy whose full tree this deploy's tree overlays:
	// this deploy's tree holds only the paths that differ from Base's (and tombstones
	// for Base's paths it removed). "" when its own tree is full.
	Base string `json:"base,omitempty"`
	// Spent (atomic mode) counts the objects written into the trees of the deploys
	// made on Base so far, this one's included: when a layer would push it past the
	// size of the site, the deploy writes a full tree instead (see atomic.go).
	Spent int `json:"spent,omitempty"`
	// Layer (atomic mode) counts the objects in this deploy's own tree.
	Layer int `json:"layer,omitempty"`
	// Content says where the bytes of the deploy's pages and static files are
	// stored: "" (records made before ContentTree) in blobs, _stump/objects/sha256/<hex>;
	// ContentTree only in the deploy's tree, where the tree resolves each path (its
	// layer, else its base's tree), with no blob. Fingerprinted assets are at their
	// own path either way. See contentOf.
	Content string `json:"content,omitempty"`
	// Format is 2 for records stored as chunks (see record.go), 0 for the first
	// format, every object inline.
	Format int `json:"format,omitempty"`
	// Buckets and Chunks (format 2): the objects, split by a hash of their path into
	// Buckets chunks stored at _stump/chunks/<sha256>; "" for an empty bucket.
	Buckets int      `json:"buckets,omitempty"`
	Chunks  []string `json:"chunks,omitempty"`
	Objects []Object `json:"objects,omitempty"`
}

// Pointer is _stump/current.json: which deploy is live, and unfinished work.
type Pointer struct {
	// Live is the live deploy's id ("" before the first deploy).
	Live     string `json:"live"`
	Previous string `json:"previous,omitempty"`
	// State is "live", or "materializing" while Pending is being written over Live.
	State   string    `json:"state"`
	Pending string    `json:"pending,omitempty"`
	Since   time.Time `json:"since"`
	// PendingDeletes are paths a committed deploy removed but did not delete yet.
	PendingDeletes []string `json:"pendingDeletes,omitempty"`
	// PurgeOwed names the deploy that was live before Live when the purge of the
	// switch between them has not run yet (a publish killed between its commit and
	// its purge); the next publish runs it.
	PurgeOwed string `json:"purgeOwed,omitempty"`
	// Mode is the layout of the live deploy: ModeInPlace or ModeAtomic.
	Mode string `json:"mode,omitempty"`
	// PendingPurge is purge work that failed and is to be retried (see package purge).
	PendingPurge json.RawMessage `json:"pendingPurge,omitempty"`
	// Fence is the lease token of the last process that broke a stale lease: writing
	// it changes the pointer's ETag, so the process whose lease was broken fails its
	// next compare-and-swap of the pointer.
	Fence string `json:"fence,omitempty"`
	// RedirectMeta says whether this target's store keeps website redirect metadata
	// (x-amz-website-redirect-location): RedirectKept, RedirectDropped, or "" before
	// the first publish that needed to know. Where it is dropped, aliases are served by
	// their redirect pages alone and deploys do not expect the header.
	RedirectMeta string `json:"redirectMeta,omitempty"`
}

// ContentTree is Record.Content for a deploy whose new content was written straight
// into its tree (atomic mode and previews): no blob holds it.
const ContentTree = "tree"

// Values of Pointer.RedirectMeta.
const (
	RedirectKept    = "kept"
	RedirectDropped = "dropped"
)

// Pointer states.
const (
	StateLive          = "live"
	StateMaterializing = "materializing"
)

// Lease is the content of _stump/lock.
type Lease struct {
	Holder string `json:"holder"`
	Host   string `json:"host"`
	PID    int    `json:"pid"`
	Token  string `json:"token"`
	// Op is what the holder is doing: "publish", "rollback", "gc", "repair", ...
	Op string `json:"op,omitempty"`
	// Deploy is the id of the deploy a publish holding the lease is making: when the
	// holder was killed, that deploy never went live unless the pointer names it.
	Deploy   string    `json:"deploy,omitempty"`
	Acquired time.Time `json:"acquired"`
	Expires  time.Time `json:"expires"`
}

func (l Lease) who() string { return fmt.Sprintf("%s@%s (pid %d)", l.Holder, l.Host, l.PID) }

var (
	pointerKey = path.Join(internalPrefix, "current.json")
	lockKey    = path.Join(internalPrefix, "lock")
)

func recordKey(id string) string { return path.Join(internalPrefix, "deploys", id+".json") }

// ErrLocked is returned when another publish holds the site's lease.
var ErrLocked = errors.New("locked")

// LockedError says who holds the lock.
type LockedError struct {
	Lease Lease
	Stale bool
}

func (e *LockedError) Error() string {
	s := fmt.Sprintf("locked by %s since %s", e.Lease.who(), e.Lease.Acquired.UTC().Format(time.RFC3339))
	switch {
	case e.Stale && holderDead(e.Lease):
		s += fmt.Sprintf("; that process (pid %d on this host) is no longer running, so the lease is stale: break it with --break-lock", e.Lease.PID)
	case e.Stale:
		s += fmt.Sprintf("; the lease expired at %s, so it looks stale: break it with --break-lock if that publish is surely dead", e.Lease.Expires.UTC().Format(time.RFC3339))
	default:
		s += fmt.Sprintf(" (lease until %s); wait for it with --wait", e.Lease.Expires.UTC().Format(time.RFC3339))
	}
	return s
}

func (e *LockedError) Unwrap() error { return ErrLocked }

// readJSON reads a JSON object; ok is false when the key does not exist.
func readJSON(ctx context.Context, s store.Store, key string, v any) (etag string, ok bool, err error) {
	b, info, err := store.GetBytes(ctx, s, key)
	if errors.Is(err, store.ErrNotFound) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("read %s: %w", key, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return "", false, fmt.Errorf("read %s: it is not valid JSON (%v); the target may hold something that is not a stump deploy (stump doctor explains the target's state, and stump doctor --fix rebuilds what it can): %w", key, err, store.ErrPermanent)
	}
	return info.ETag, true, nil
}

func writeJSON(ctx context.Context, s store.Store, key string, v any, opts store.PutOptions) (string, error) {
	var b []byte
	var err error
	if _, big := v.(*Record); big {
		b, err = json.Marshal(v) // records list every object: keep them compact
	} else {
		b, err = json.MarshalIndent(v, "", " ")
	}
	if err != nil {
		return "", err
	}
	opts.ContentType = "application/json"
	opts.CacheControl = "no-store"
	etag, err := store.PutBytes(ctx, s, key, b, opts)
	if err != nil {
		return "", fmt.Errorf("write %s: %w", key, err)
	}
	return etag, nil
}

// ReadPointer returns the pointer and its ETag; a target never deployed to gives a zero
// Pointer and "".
func ReadPointer(ctx context.Context, s store.Store) (Pointer, string, error) {
	var p Pointer
	etag, ok, err := readJSON(ctx, s, pointerKey, &p)
	if err != nil || !ok {
		return Pointer{}, "", err
	}
	return p, etag, nil
}

// ReadRecord reads a deploy record with its objects (of either format).
func ReadRecord(ctx context.Context, s store.Store, id string) (*Record, error) {
	return readRecord(ctx, s, id, true, nil)
}

// ListRecords reads every deploy record, newest first. Objects (and the chunk list)
// are dropped unless full; without full, no chunk is read.
func ListRecords(ctx context.Context, s store.Store, full bool) ([]*Record, error) {
	var ids []string
	err := s.List(ctx, path.Join(internalPrefix, "deploys")+"/", func(i store.Info) error {
		if strings.HasSuffix(i.Key, ".json") {
			ids = append(ids, strings.TrimSuffix(path.Base(i.Key), ".json"))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list deploys: %w", err)
	}
	out := make([]*Record, 0, len(ids))
	cache := &chunkCache{} // deploys share most of their chunks: read each once
	for _, id := range ids {
		r, err := readRecord(ctx, s, id, full, cache)
		if err != nil {
			return nil, err
		}
		if !full {
			r.Objects, r.Chunks = nil, nil
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Time.Equal(out[j].Time) {
			return out[i].Time.After(out[j].Time)
		}
		return out[i].ID > out[j].ID
	})
	return out, nil
}

// newID makes a deploy id that sorts by time and can be a DNS label (lower case, for
// preview hosts <id>.<preview host>): 20261130t094500z-1a2b3c.
func newID(now time.Time) string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return strings.ToLower(now.UTC().Format("20060102T150405Z")) + "-" + hex.EncodeToString(b[:])
}

// whoami names the user and host for records and leases.
func whoami() (string, string) {
	name := os.Getenv("STUMP_USER")
	if name == "" {
		if u, err := user.Current(); err == nil {
			name = u.Username
		}
	}
	if name == "" {
		name = "unknown"
	}
	host, _ := os.Hostname()
	return name, host
}
