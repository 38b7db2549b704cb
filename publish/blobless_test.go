package publish

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/stump-dev/stump/publish/store"
	"github.com/stump-dev/stump/publish/store/mem"
)

// writeLog is a Store that records every write (Put and Copy) by destination key.
type writeLog struct {
	store.Store
	mu       sync.Mutex
	puts     map[string]int
	copies   map[string]int
	deferred map[string]bool // the last Put of the key had PutOptions.Deferred
}

func newWriteLog(s store.Store) *writeLog {
	return &writeLog{Store: s, puts: map[string]int{}, copies: map[string]int{}, deferred: map[string]bool{}}
}

func (w *writeLog) Put(ctx context.Context, key string, body io.ReadSeeker, size int64, opts store.PutOptions) (string, error) {
	w.mu.Lock()
	w.puts[key]++
	w.deferred[key] = opts.Deferred
	w.mu.Unlock()
	return w.Store.Put(ctx, key, body, size, opts)
}

func (w *writeLog) Copy(ctx context.Context, src, dst string, opts store.PutOptions) error {
	w.mu.Lock()
	w.copies[dst]++
	w.mu.Unlock()
	return w.Store.Copy(ctx, src, dst, opts)
}

func (w *writeLog) reset() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.puts, w.copies = map[string]int{}, map[string]int{}
}

// under counts the puts and copies to keys with prefix.
func (w *writeLog) under(prefix string) (puts, copies int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for k, n := range w.puts {
		if strings.HasPrefix(k, prefix) {
			puts += n
		}
	}
	for k, n := range w.copies {
		if strings.HasPrefix(k, prefix) {
			copies += n
		}
	}
	return puts, copies
}

// warnings is a slog handler that keeps the messages of warnings.
type warnings struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warnings) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (w *warnings) Handle(_ context.Context, r slog.Record) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.msgs = append(w.msgs, r.Message)
	return nil
}
func (w *warnings) WithAttrs([]slog.Attr) slog.Handler { return w }
func (w *warnings) WithGroup(string) slog.Handler      { return w }

func (w *warnings) all() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.msgs...)
}

// TestAtomicDeployOneWritePerFile: an atomic deploy writes each new file once, straight
// into its tree from the build (a PUT with its headers and SHA-256), and stores no
// blob; a new fingerprinted asset is put at its own path and copied into the tree. A
// deploy that changes every page (a stylesheet edit) puts every page once. Before,
// each new file was a blob PUT and then a COPY into the tree: two writes per file.
func TestAtomicDeployOneWritePerFile(t *testing.T) {
	ctx := context.Background()
	m := mem.New()
	w := newWriteLog(m)
	d := newDeployer(w)
	d.Mode = ModeAtomic
	const n = 60
	v1 := bigSite(n, nil)
	r1, err := publishSite(t, d, v1, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !r1.Plan.Tree || !strings.Contains(r1.Plan.Summary(), "new contents for the tree") {
		t.Errorf("an atomic plan says %q (tree %v), want its new contents put into the tree", r1.Plan.Summary(), r1.Plan.Tree)
	}
	tree := TreeKey(r1.Deploy, "") + "/"
	for p := range v1 {
		key := TreeKey(r1.Deploy, p)
		puts, copies := w.puts[key], w.copies[key]
		if strings.HasPrefix(p, "assets/") {
			// The asset: one put at its own path, one copy into the tree.
			if w.puts[p] != 1 || puts != 0 || copies != 1 {
				t.Errorf("asset %s: %d puts at its path, %d puts and %d copies into the tree; want 1, 0, 1", p, w.puts[p], puts, copies)
			}
			continue
		}
		if puts != 1 || copies != 0 {
			t.Errorf("%s: %d puts and %d copies into the tree, want one put", p, puts, copies)
		}
	}
	if puts, copies := w.under(tree); puts+copies != len(v1) {
		t.Errorf("first deploy: %d puts and %d copies into its tree, want %d writes (one per file)", puts, copies, len(v1))
	}
	if puts, copies := w.under(blobKey("")); puts+copies != 0 {
		t.Errorf("first deploy wrote %d blobs (%d puts, %d copies), want none", puts+copies, puts, copies)
	}
	if rec, err := ReadRecord(ctx, m, r1.Deploy); err != nil || rec.UploadedFiles != len(v1) {
		t.Errorf("the first deploy's record says it uploaded %d files (%v), want %d", rec.UploadedFiles, err, len(v1))
	}
	wantTree(t, m, v1)

	// Every page changes (a new stylesheet they all name): a full tree, each page put
	// once, the unchanged image copied from the live tree.
	v2 := site{"assets/s.2.css": "body{color:blue}", "img/logo.png": "png", "index.html": `<link href="/assets/s.2.css">home`}
	for k := range n {
		p := "p" + strings.Repeat("x", k%3) + string(rune('a'+k%26)) + "/index.html"
		v2[p] = `<link href="/assets/s.2.css">` + p
	}
	w.reset()
	r2, err := publishSite(t, d, v2, Options{Force: true})
	if err != nil {
		t.Fatal(err)
	}
	if r2.Base != "" {
		t.Fatalf("a deploy that changes every page made a layer over %s", r2.Base)
	}
	puts, copies := w.under(TreeKey(r2.Deploy, "") + "/")
	if puts != len(v2)-2 || copies != 2 { // the asset and the image are copied
		t.Errorf("stylesheet deploy: %d puts and %d copies into its tree, want %d puts and 2 copies", puts, copies, len(v2)-2)
	}
	if puts, copies := w.under(blobKey("")); puts+copies != 0 {
		t.Errorf("stylesheet deploy wrote %d blobs, want none", puts+copies)
	}
	wantTree(t, m, v2)
	if probs, err := d.Verify(ctx); err != nil || len(probs) != 0 {
		t.Errorf("verify: %v %v", probs, err)
	}
	// The record says where its content is; doctor finds nothing missing.
	rec, err := ReadRecord(ctx, m, r2.Deploy)
	if err != nil || rec.Content != ContentTree {
		t.Fatalf("record of %s: content %q (%v), want %q", r2.Deploy, rec.Content, err, ContentTree)
	}
	dg, err := d.Doctor(ctx, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, rs := range dg.Records {
		if rs.Problem != "" {
			t.Errorf("doctor: deploy %s: %s", rs.ID, rs.Problem)
		}
	}
	if !dg.Healthy {
		t.Errorf("doctor calls an atomic target with no blobs unhealthy: %v", dg.Findings)
	}
}

// TestSwitchAtomicToInPlace: a site deployed in atomic mode (content in trees, no
// blobs) and then published in place gets its whole live tree written at the root from
// the build, with no warning about missing content; a rollback in place to the atomic
// deploy copies from its tree; gc keeps what the kept deploys need. Before, the switch
// wrote only the paths that differed from the atomic deploy (the root missed the rest)
// and looked for blobs the atomic deploys never wrote.
func TestSwitchAtomicToInPlace(t *testing.T) {
	ctx := context.Background()
	m := mem.New()
	warn := &warnings{}
	d := newDeployer(m)
	d.Log = slog.New(warn)
	d.Mode = ModeAtomic
	if _, err := publishSite(t, d, v1, Options{}); err != nil {
		t.Fatal(err)
	}
	ra, err := publishSite(t, d, v2, Options{})
	if err != nil {
		t.Fatal(err)
	}
	d.Mode = ModeInPlace
	r, err := publishSite(t, d, v2, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Noop || r.RepairedBlobs != 0 {
		t.Errorf("switch to in place: noop %v, %d contents uploaded again as damaged; want a deploy with none", r.Noop, r.RepairedBlobs)
	}
	wantLive(t, m, v2)
	if probs, err := d.Verify(ctx); err != nil || len(probs) != 0 {
		t.Errorf("verify after the switch: %v %v", probs, err)
	}
	// Back to the atomic deploy's content, in place: copied from its tree.
	if _, err := d.Rollback(ctx, ra.Deploy); err != nil {
		t.Fatalf("rollback in place to an atomic deploy: %v", err)
	}
	wantLive(t, m, v2)
	if _, err := publishSite(t, d, v1, Options{Force: true}); err != nil {
		t.Fatal(err)
	}
	wantLive(t, m, v1)
	if _, err := d.GC(ctx, 2); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Rollback(ctx, ra.Deploy); err != nil {
		t.Fatalf("rollback after gc to a kept atomic deploy: %v", err)
	}
	wantLive(t, m, v2)
	if probs, err := d.Verify(ctx); err != nil || len(probs) != 0 {
		t.Errorf("verify: %v %v", probs, err)
	}
	if w := warn.all(); len(w) > 0 {
		t.Errorf("warnings: %q", w)
	}
}

// TestAtomicRepairWithoutBlobs: a corrupted object of the live tree is rewritten by
// verify --repair from another stored copy of the same bytes (the same path in another
// deploy's tree); one whose only copy was the damaged one cannot be repaired without a
// build (a clear error, nothing changed), and publish --repair puts it from the build.
// The first atomic deploy after in-place ones copies unchanged pages from their blobs,
// confirmed first: a damaged blob is put from the build instead.
func TestAtomicRepairWithoutBlobs(t *testing.T) {
	ctx := context.Background()
	m := mem.New()
	d := stampedDeployer(m) // no edge stamp: full trees
	s1 := bigSite(10, nil)
	if _, err := publishSite(t, d, s1, Options{}); err != nil {
		t.Fatal(err)
	}
	s2 := bigSite(10, map[int]string{4: " edited"})
	r2, err := publishSite(t, d, s2, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if n := countUnder(t, m, blobKey("")); n != 0 {
		t.Fatalf("atomic deploys stored %d blobs, want none", n)
	}
	deface := func(p string) {
		t.Helper()
		if _, err := store.PutBytes(ctx, m, TreeKey(r2.Deploy, p), []byte("defaced"), store.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// p1 is the same in both trees: repaired from the first deploy's tree.
	deface("p1/index.html")
	rep, err := d.Repair(ctx, nil)
	if err != nil {
		t.Fatalf("repair from another tree: %v", err)
	}
	if len(rep.Paths) != 1 || rep.Paths[0] != "p1/index.html" || rep.Blobs != 0 {
		t.Errorf("repair: %+v, want p1/index.html rewritten from a stored copy", rep)
	}
	wantTree(t, m, s2)

	// Only the headers of p4 (changed in the live deploy: its tree holds the only
	// copy) damaged: rewritten in place from its own, right, bytes.
	objs2, _ := s2.objects(t)
	for _, o := range objs2 {
		if o.Path == "p4/index.html" {
			if err := m.Copy(ctx, TreeKey(r2.Deploy, o.Path), TreeKey(r2.Deploy, o.Path), store.PutOptions{Meta: store.Meta{ContentType: "text/plain"}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if rep, err := d.Repair(ctx, nil); err != nil || len(rep.Paths) != 1 || rep.Paths[0] != "p4/index.html" {
		t.Fatalf("repair of p4's headers: %+v %v", rep, err)
	}
	if probs, err := d.Verify(ctx); err != nil || len(probs) != 0 {
		t.Errorf("verify after repairing headers: %v %v", probs, err)
	}

	// p4's bytes damaged: its tree held the only copy.
	deface("p4/index.html")
	_, err = d.Repair(ctx, nil)
	if err == nil || !strings.Contains(err.Error(), "stump publish --repair") || !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("repair with no other copy and no build: %v, want an error naming stump publish --repair", err)
	}
	if b, _, _ := store.GetBytes(ctx, m, TreeKey(r2.Deploy, "p4/index.html")); string(b) != "defaced" {
		t.Errorf("a failed repair wrote %q", b)
	}
	res, err := publishSite(t, d, s2, Options{Repair: true})
	if err != nil {
		t.Fatalf("publish --repair: %v", err)
	}
	if len(res.RepairedPaths) != 1 || res.RepairedPaths[0] != "p4/index.html" || res.RepairedBlobs != 1 {
		t.Errorf("publish --repair: paths %v, %d uploaded from the build; want p4/index.html, 1", res.RepairedPaths, res.RepairedBlobs)
	}
	wantTree(t, m, s2)
	if probs, err := d.Verify(ctx); err != nil || len(probs) != 0 {
		t.Errorf("verify: %v %v", probs, err)
	}

	// In place, then atomic again: unchanged pages come from their (confirmed) blobs,
	// and a damaged blob is put from the build.
	m2 := mem.New()
	d2 := newDeployer(m2)
	if _, err := publishSite(t, d2, s1, Options{}); err != nil {
		t.Fatal(err)
	}
	objs, _ := s1.objects(t)
	var p2 Object
	for _, o := range objs {
		if o.Path == "p2/index.html" {
			p2 = o
		}
	}
	if _, err := store.PutBytes(ctx, m2, blobKey(p2.SHA256), []byte("rot"), store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	d2.Mode = ModeAtomic
	ra, err := publishSite(t, d2, s2, Options{})
	if err != nil {
		t.Fatalf("first atomic deploy over a damaged blob: %v", err)
	}
	if ra.RepairedBlobs != 1 {
		t.Errorf("first atomic deploy: %d contents put again from the build, want 1", ra.RepairedBlobs)
	}
	wantTree(t, m2, s2)
}

func countUnder(t *testing.T, s store.Store, prefix string) int {
	t.Helper()
	n := 0
	if err := s.List(context.Background(), prefix, func(store.Info) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestInPlacePreviewMadeLive: a preview made in place has its content in its tree only
// (no blob); making it live in place (rollback --to) copies each path from that tree,
// after confirming it, and rolling back from it copies the earlier deploy from its
// blobs again.
func TestInPlacePreviewMadeLive(t *testing.T) {
	ctx := context.Background()
	m := mem.New()
	w := newWriteLog(m)
	d := newDeployer(w)
	r1, err := publishSite(t, d, v1, Options{})
	if err != nil {
		t.Fatal(err)
	}
	w.reset()
	p, err := publishSite(t, d, v2, Options{Preview: true, Force: true})
	if err != nil {
		t.Fatal(err)
	}
	if puts, copies := w.under(blobKey("")); puts+copies != 0 {
		t.Errorf("an in-place preview wrote %d blobs, want none", puts+copies)
	}
	wantLive(t, m, v1)
	if _, err := d.Rollback(ctx, p.Deploy); err != nil {
		t.Fatalf("make the preview live in place: %v", err)
	}
	wantLive(t, m, v2)
	if probs, err := d.Verify(ctx); err != nil || len(probs) != 0 {
		t.Errorf("verify: %v %v", probs, err)
	}
	// Its tree damaged: making it live again refuses before changing anything.
	if _, err := d.Rollback(ctx, r1.Deploy); err != nil {
		t.Fatal(err)
	}
	if _, err := store.PutBytes(ctx, m, TreeKey(p.Deploy, "about/index.html"), []byte("rot"), store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Rollback(ctx, p.Deploy); err == nil || !errors.Is(err, store.ErrNotFound) {
		t.Errorf("rollback to a preview whose tree is damaged: %v, want a refusal", err)
	}
	wantLive(t, m, v1)
}

// TestBlobsDeferDurability: a deploy's blobs and assets are create-only writes whose
// durability the record and the pointer after them give (a file target flushed the
// whole file system for every blob); the record, lock and pointer writes are not
// deferred.
func TestBlobsDeferDurability(t *testing.T) {
	w := newWriteLog(mem.New())
	d := newDeployer(w)
	if _, err := publishSite(t, d, v1, Options{}); err != nil {
		t.Fatal(err)
	}
	var blobs int
	for key, deferred := range w.deferred {
		content := strings.HasPrefix(key, blobKey("")) || strings.HasPrefix(key, "assets/")
		if content {
			blobs++
		}
		if deferred != content {
			t.Errorf("Put %s: Deferred %v", key, deferred)
		}
	}
	if blobs == 0 {
		t.Fatal("no blob or asset was put")
	}
}
