package publish

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stump-dev/stump/publish/store"
	"github.com/stump-dev/stump/publish/store/mem"
)

// bigSite is a site of n pages (and a stylesheet every page names), with page k's
// text changed by edits[k].
func bigSite(n int, edits map[int]string) site {
	s := site{"assets/s.1.css": "body{}", "img/logo.png": "png", "index.html": `<link href="/assets/s.1.css">home`}
	for k := range n {
		s[fmt.Sprintf("p%d/index.html", k)] = fmt.Sprintf(`<link href="/assets/s.1.css">page %d%s`, k, edits[k])
	}
	return s
}

// TestAtomicLayersCostTheChange: in atomic mode a deploy after the first writes only
// what changed (one copy per changed path, one tombstone per removed one), the live
// site is the new deploy whole, rollback is a pointer write to a layered deploy, and
// the layers are compacted into a full tree once they have cost the site's size. Before
// layers, every deploy copied every object (here 203 copies for a one-page change).
func TestAtomicLayersCostTheChange(t *testing.T) {
	m := mem.New()
	cnt := store.Count(m)
	d := newDeployer(cnt)
	d.Mode = ModeAtomic
	const n = 200
	v1 := bigSite(n, nil)
	r1, err := publishSite(t, d, v1, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r1.Base != "" || r1.Layer != len(v1) {
		t.Fatalf("first deploy: base %q layer %d, want a full tree of %d", r1.Base, r1.Layer, len(v1))
	}
	wantTree(t, m, v1)

	// One page edited, one removed: two paths written (the page, a tombstone).
	v2 := bigSite(n, map[int]string{3: " edited"})
	delete(v2, "p7/index.html")
	cnt.Reset()
	r2, err := publishSite(t, d, v2, Options{})
	if err != nil {
		t.Fatal(err)
	}
	c := cnt.Counts()
	// The edited page is put into the layer from the build (one request, no blob):
	// no copy.
	if r2.Base != r1.Deploy || r2.Layer != 2 || c["Copy"] != 0 {
		t.Errorf("one-page deploy: base %q layer %d, %d copies (%v); want a layer of 2 over %s and no copy", r2.Base, r2.Layer, c["Copy"], c, r1.Deploy)
	}
	wantTree(t, m, v2)
	if probs, err := d.Verify(context.Background()); err != nil || len(probs) != 0 {
		t.Errorf("verify: %v %v", probs, err)
	}

	// The next deploy's layer holds every change since the base: the edit (copied
	// from the live layer), the tombstone and the new edit (put from the build).
	v3 := bigSite(n, map[int]string{3: " edited", 4: " edited"})
	delete(v3, "p7/index.html")
	cnt.Reset()
	r3, err := publishSite(t, d, v3, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r3.Base != r1.Deploy || r3.Layer != 3 || cnt.Counts()["Copy"] != 1 {
		t.Errorf("second layered deploy: base %q layer %d copies %d", r3.Base, r3.Layer, cnt.Counts()["Copy"])
	}
	wantTree(t, m, v3)

	// Rollback to the layered v2: one pointer write and _stump/live.
	cnt.Reset()
	if _, err := d.Rollback(context.Background(), r2.Deploy); err != nil {
		t.Fatal(err)
	}
	if c := cnt.Counts(); c["Copy"] != 0 || c["Put"] != 3 {
		t.Errorf("rollback to a layer made requests %v", c)
	}
	wantTree(t, m, v2)
	if probs, err := d.Verify(context.Background()); err != nil || len(probs) != 0 {
		t.Errorf("verify after rollback: %v %v", probs, err)
	}

	// A change to most pages: a full tree at once.
	edits := map[int]string{}
	for k := range n {
		edits[k] = " v4"
	}
	v4 := bigSite(n, edits)
	r4, err := publishSite(t, d, v4, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r4.Base != "" {
		t.Errorf("a deploy changing every page made a layer over %s", r4.Base)
	}
	wantTree(t, m, v4)

	// Small changes pile up in the layers until they have cost the site's size, then
	// a full tree: never more than the site per deploy.
	full := 0
	for i := range 40 {
		edits[i] = " v5"
		v := bigSite(n, edits)
		cnt.Reset()
		r, err := publishSite(t, d, v, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if r.Base == "" {
			full++
		}
		if copies := cnt.Counts()["Copy"]; copies > int64(len(v)) {
			t.Errorf("deploy %d copied %d objects, more than the site (%d)", i, copies, len(v))
		}
		wantTree(t, m, v)
	}
	if full == 0 {
		t.Error("40 deploys on one base never compacted the layers")
	}
	if probs, err := d.Verify(context.Background()); err != nil || len(probs) != 0 {
		t.Errorf("verify: %v %v", probs, err)
	}

	// gc keeps the bases of kept deploys.
	if _, err := d.GC(context.Background(), 2); err != nil {
		t.Fatal(err)
	}
	wantTree(t, m, bigSite(n, edits))
	if _, err := d.Rollback(context.Background(), ""); err != nil {
		t.Fatalf("rollback after gc: %v", err)
	}
	if probs, err := d.Verify(context.Background()); err != nil || len(probs) != 0 {
		t.Errorf("verify after gc and rollback: %v %v", probs, err)
	}
}

// TestAtomicRepairTombstone: a tombstone deleted from the live layer lets the base's
// copy of a removed page through; verify finds it and repair writes it again.
func TestAtomicRepairTombstone(t *testing.T) {
	m := mem.New()
	d := newDeployer(m)
	d.Mode = ModeAtomic
	v1 := bigSite(20, nil)
	if _, err := publishSite(t, d, v1, Options{}); err != nil {
		t.Fatal(err)
	}
	v2 := bigSite(20, nil)
	delete(v2, "p7/index.html")
	r2, err := publishSite(t, d, v2, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Delete(context.Background(), TreeKey(r2.Deploy, "p7/index.html")); err != nil {
		t.Fatal(err)
	}
	probs, err := d.Verify(context.Background())
	if err != nil || len(probs) != 1 || !strings.Contains(probs[0].What, "tombstone") {
		t.Fatalf("verify: %v %v", probs, err)
	}
	if _, err := d.Repair(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	wantTree(t, m, v2)
	if probs, err := d.Verify(context.Background()); err != nil || len(probs) != 0 {
		t.Errorf("verify after repair: %v %v", probs, err)
	}
}

// TestLeanRecords: a record is a small header plus chunks shared with its parent, so a
// no-op publish reads the pointer and the header only, and a one-page publish reads
// and writes a chunk or two, not the whole list of objects. Before, the record held
// every object and a no-op read all of it.
func TestLeanRecords(t *testing.T) {
	m := mem.New()
	cnt := store.Count(m)
	d := newDeployer(cnt)
	const n = 2000
	v1 := bigSite(n, nil)
	if _, err := publishSite(t, d, v1, Options{}); err != nil {
		t.Fatal(err)
	}
	ptr, _, _ := ReadPointer(context.Background(), m)
	hdr, _, err := store.GetBytes(context.Background(), m, recordKey(ptr.Live))
	if err != nil {
		t.Fatal(err)
	}
	full, _ := json.Marshal(v1) // far less than the objects' JSON, which adds headers and keys
	if len(hdr) > len(full)/10 {
		t.Errorf("record header is %d bytes for %d objects", len(hdr), n)
	}

	cnt.Reset()
	res, err := publishSite(t, d, v1, Options{})
	if err != nil || !res.Noop {
		t.Fatalf("no-op: %+v %v", res, err)
	}
	if c := cnt.Counts(); c["Get"] != 2 {
		t.Errorf("no-op made %v; want 2 reads (pointer, record header)", c)
	}

	cnt.Reset()
	res, err = publishSite(t, d, bigSite(n, map[int]string{5: " edited"}), Options{})
	if err != nil {
		t.Fatal(err)
	}
	// Reads: pointer, header, the one changed chunk, the pointer again (after the
	// lock), the lock (release).
	if c := cnt.Counts(); c["Get"] > 5 || res.RecordChunks != 1 {
		t.Errorf("one-page publish: %v, %d record chunks written; want 1 chunk read and written", c, res.RecordChunks)
	}
	// Another deployer (no cache, another process) reads the whole record.
	rec, err := ReadRecord(context.Background(), m, res.Deploy)
	if err != nil || len(rec.Objects) != len(v1) {
		t.Fatalf("read record: %d objects, %v", len(rec.Objects), err)
	}
	recs, err := ListRecords(context.Background(), m, true)
	if err != nil || len(recs) != 2 || len(recs[0].Objects) != len(v1) {
		t.Fatalf("list records: %v", err)
	}

	// gc drops the chunks only dropped records name.
	if _, err := d.GC(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadRecord(context.Background(), m, res.Deploy); err != nil {
		t.Errorf("gc broke the live record: %v", err)
	}
	chunks := 0
	_ = m.List(context.Background(), "_stump/chunks/", func(store.Info) error { chunks++; return nil })
	// The live record and the previous one stay; they share all chunks but one.
	live, _ := ReadRecord(context.Background(), m, res.Deploy)
	if want := countNonEmpty(live.Chunks) + 1; chunks != want {
		t.Errorf("after gc: %d chunks stored, want the live and previous records' %d", chunks, want)
	}
	if _, err := d.GC(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
}

func countNonEmpty(s []string) int {
	n := 0
	for _, x := range s {
		if x != "" {
			n++
		}
	}
	return n
}

// TestOldRecordsStillRead: a target whose records have every object inline (the first
// format) publishes, rolls back and verifies as before.
func TestOldRecordsStillRead(t *testing.T) {
	m := mem.New()
	d := newDeployer(m)
	if _, err := publishSite(t, d, v1, Options{}); err != nil {
		t.Fatal(err)
	}
	// Rewrite the live record in the first format.
	ptr, _, _ := ReadPointer(context.Background(), m)
	rec, err := ReadRecord(context.Background(), m, ptr.Live)
	if err != nil {
		t.Fatal(err)
	}
	rec.Format, rec.Buckets, rec.Chunks = 0, 0, nil
	if _, err := writeJSON(context.Background(), m, recordKey(rec.ID), rec, store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if res, err := publishSite(t, d, v1, Options{}); err != nil || !res.Noop {
		t.Fatalf("no-op over an old record: %+v %v", res, err)
	}
	if _, err := publishSite(t, d, v2, Options{}); err != nil {
		t.Fatal(err)
	}
	wantLive(t, m, v2)
	if _, err := d.Rollback(context.Background(), ""); err != nil {
		t.Fatal(err)
	}
	wantLive(t, m, v1)
	if probs, err := d.Verify(context.Background()); err != nil || len(probs) != 0 {
		t.Errorf("verify: %v %v", probs, err)
	}
}

// TestCorruptChunkIsAnError: a chunk whose bytes do not match its name fails the read
// with a message naming stump doctor; it is never taken as the record.
func TestCorruptChunkIsAnError(t *testing.T) {
	m := mem.New()
	d := newDeployer(m)
	if _, err := publishSite(t, d, v1, Options{}); err != nil {
		t.Fatal(err)
	}
	ptr, _, _ := ReadPointer(context.Background(), m)
	hdr, err := readRecord(context.Background(), m, ptr.Live, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range hdr.Chunks {
		if c != "" {
			if _, err := store.PutBytes(context.Background(), m, chunkKey(c), []byte("garbage"), store.PutOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := ReadRecord(context.Background(), m, ptr.Live); err == nil || !strings.Contains(err.Error(), "doctor") {
		t.Errorf("read a corrupted record: %v", err)
	}
}

// TestLayerOverATreeWithoutMarker: a full tree made before trees had markers (its
// record in the first format) becomes the base of the next deploy's layer, and a
// rollback to that layer later finds its base.
func TestLayerOverATreeWithoutMarker(t *testing.T) {
	m := mem.New()
	d := newDeployer(m)
	d.Mode = ModeAtomic
	v1 := bigSite(20, nil)
	r1, err := publishSite(t, d, v1, Options{})
	if err != nil {
		t.Fatal(err)
	}
	// As the code before markers left it: a first-format record, no marker.
	rec, err := ReadRecord(context.Background(), m, r1.Deploy)
	if err != nil {
		t.Fatal(err)
	}
	rec.Format, rec.Buckets, rec.Chunks, rec.Layer = 0, 0, nil, 0
	if _, err := writeJSON(context.Background(), m, recordKey(rec.ID), rec, store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := m.Delete(context.Background(), layersKey(r1.Deploy)); err != nil {
		t.Fatal(err)
	}
	v2 := bigSite(20, map[int]string{1: " edited"})
	r2, err := publishSite(t, d, v2, Options{})
	if err != nil || r2.Base != r1.Deploy {
		t.Fatalf("layer over the old tree: %+v %v", r2, err)
	}
	if _, err := publishSite(t, d, bigSite(20, map[int]string{1: " edited", 2: " edited"}), Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Rollback(context.Background(), r2.Deploy); err != nil {
		t.Fatalf("rollback to the layer over the old tree: %v", err)
	}
	wantTree(t, m, v2)
}

// TestAtomicPreviewIsALayer: a preview over an atomic live deploy costs its change
// (a layer over the live base), changes nothing live, and made live by rollback --to
// serves whole.
func TestAtomicPreviewIsALayer(t *testing.T) {
	m := mem.New()
	cnt := store.Count(m)
	d := newDeployer(cnt)
	d.Mode = ModeAtomic
	v1 := bigSite(100, nil)
	r1, err := publishSite(t, d, v1, Options{})
	if err != nil {
		t.Fatal(err)
	}
	v2 := bigSite(100, map[int]string{9: " previewed"})
	cnt.Reset()
	p, err := publishSite(t, d, v2, Options{Preview: true})
	if err != nil {
		t.Fatal(err)
	}
	if p.Base != r1.Deploy || p.Layer != 1 || cnt.Counts()["Copy"] != 0 {
		t.Errorf("preview: base %q, layer %d, %d copies; want a layer of one page (put from the build, no copy) over %s", p.Base, p.Layer, cnt.Counts()["Copy"], r1.Deploy)
	}
	wantTree(t, m, v1)
	if _, err := d.Rollback(context.Background(), p.Deploy); err != nil {
		t.Fatal(err)
	}
	wantTree(t, m, v2)
	if probs, err := d.Verify(context.Background()); err != nil || len(probs) != 0 {
		t.Errorf("verify: %v %v", probs, err)
	}
}

// TestEdgeStampGatesLayers: with NeedEdgeStamp (a site whose edge is the generated
// Fastly VCL), deploys write full trees until the target's edge stamp says the edge
// reads layers, and a rollback to a layer is refused while it does not.
func TestEdgeStampGatesLayers(t *testing.T) {
	ctx := context.Background()
	m := mem.New()
	fresh := func() *Deployer { return stampedDeployer(m) }
	if _, err := publishSite(t, fresh(), bigSite(20, nil), Options{}); err != nil {
		t.Fatal(err)
	}
	v2 := bigSite(20, map[int]string{3: " edited"})
	r2, err := publishSite(t, fresh(), v2, Options{})
	if err != nil || r2.Base != "" || r2.Layer != len(v2) {
		t.Fatalf("no stamp: %+v %v; want a full tree", r2, err)
	}
	wantTree(t, m, v2)
	if err := WriteEdgeStamp(ctx, m, EdgeStamp{Layers: true, By: "test"}); err != nil {
		t.Fatal(err)
	}
	v3 := bigSite(20, map[int]string{3: " edited", 4: " edited"})
	r3, err := publishSite(t, fresh(), v3, Options{})
	if err != nil || r3.Base != r2.Deploy || r3.Layer != 1 {
		t.Fatalf("stamped: %+v %v; want a layer of one page over %s", r3, err, r2.Deploy)
	}
	wantTree(t, m, v3)
	if _, err := fresh().Rollback(ctx, r2.Deploy); err != nil {
		t.Fatal(err)
	}
	if err := DeleteEdgeStamp(ctx, m); err != nil {
		t.Fatal(err)
	}
	if _, err := fresh().Rollback(ctx, r3.Deploy); err == nil || !strings.Contains(err.Error(), "has not said it reads layers") {
		t.Fatalf("rollback to a layer without the stamp: %v", err)
	}
	if st, _ := fresh().ReadStatus(ctx); st.Pointer.Live != r2.Deploy {
		t.Errorf("the refused rollback moved the site to %s", st.Pointer.Live)
	}
}

// TestPinsAndFullPreviewTrees: a pinned path is in every layer that has it, changed
// or not; with FullPreviewTrees a preview is a full tree while live deploys are layers.
func TestPinsAndFullPreviewTrees(t *testing.T) {
	ctx := context.Background()
	m := mem.New()
	d := newDeployer(m)
	d.Mode, d.FullPreviewTrees, d.Pins = ModeAtomic, true, []string{"index.html", "nowhere.html"}
	if _, err := publishSite(t, d, bigSite(20, nil), Options{}); err != nil {
		t.Fatal(err)
	}
	v2 := bigSite(20, map[int]string{3: " edited"})
	r2, err := publishSite(t, d, v2, Options{})
	if err != nil || r2.Base == "" || r2.Layer != 2 {
		t.Fatalf("%+v %v; want a layer of the page and the pinned index.html", r2, err)
	}
	for _, p := range []string{"index.html", "p3/index.html"} {
		if _, err := m.Head(ctx, TreeKey(r2.Deploy, p)); err != nil {
			t.Errorf("%s is not in the layer: %v", p, err)
		}
	}
	if _, err := m.Head(ctx, TreeKey(r2.Deploy, "p4/index.html")); err == nil {
		t.Error("an unchanged, unpinned page is in the layer")
	}
	wantTree(t, m, v2)
	v3 := bigSite(20, map[int]string{5: " edited"})
	p, err := publishSite(t, d, v3, Options{Preview: true})
	if err != nil || p.Base != "" || p.Layer != len(v3) {
		t.Fatalf("preview: %+v %v; want a full tree", p, err)
	}
	// The edge may show the full trees as previews, not the layer (it cannot read it);
	// the list still names every tree.
	info, err := m.Head(ctx, TreesKey())
	if err != nil {
		t.Fatal(err)
	}
	ids, _ := ReadTreeIDs(ctx, m)
	if got, want := info.Meta.Metadata["ids"], p.Deploy+" "+ids[2]; got != want || len(ids) != 3 || ids[1] != r2.Deploy {
		t.Errorf("trees.txt: ids %q, metadata ids %q; want all three listed and %q for the edge", ids, got, want)
	}
}

// TestDropEdgeLayers: readying a target for an edge that cannot read layers refuses
// while a layer is live (unless forced), and otherwise deletes the edge stamp and holds
// the site's lock until released, so no publish makes a layer live meanwhile.
func TestDropEdgeLayers(t *testing.T) {
	ctx := context.Background()
	m := mem.New()
	fresh := func() *Deployer { return stampedDeployer(m) }
	if err := WriteEdgeStamp(ctx, m, EdgeStamp{Layers: true, By: "test"}); err != nil {
		t.Fatal(err)
	}
	r1, err := publishSite(t, fresh(), bigSite(20, nil), Options{})
	if err != nil {
		t.Fatal(err)
	}
	r2, err := publishSite(t, fresh(), bigSite(20, map[int]string{3: " edited"}), Options{})
	if err != nil || r2.Base != r1.Deploy {
		t.Fatalf("%+v %v: want a layer", r2, err)
	}
	var live *LayerLiveError
	if _, err := fresh().DropEdgeLayers(ctx, false, false); !errors.As(err, &live) || live.Deploy != r2.Deploy {
		t.Fatalf("with a layer live: %v", err)
	}
	if _, ok, _ := ReadEdgeStamp(ctx, m); !ok {
		t.Fatal("the refusal deleted the stamp")
	}
	if _, err := fresh().Rollback(ctx, r1.Deploy); err != nil {
		t.Fatal(err)
	}
	release, err := fresh().DropEdgeLayers(ctx, false, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := ReadEdgeStamp(ctx, m); ok {
		t.Error("the stamp is still there")
	}
	var locked *LockedError
	if _, err := publishSite(t, fresh(), bigSite(20, map[int]string{4: " edited"}), Options{}); !errors.As(err, &locked) {
		t.Errorf("a publish while the edge changes: %v, want the lock refused", err)
	}
	release()
	r3, err := publishSite(t, fresh(), bigSite(20, map[int]string{4: " edited"}), Options{})
	if err != nil || r3.Base != "" {
		t.Errorf("after: %+v %v, want a full tree", r3, err)
	}
}

// stampedDeployer is a new atomic Deployer on s whose edge reads layers only where the
// edge stamp says so, as for a site on Fastly.
func stampedDeployer(s store.Store) *Deployer {
	d := newDeployer(s)
	d.Mode, d.NeedEdgeStamp = ModeAtomic, true
	return d
}
