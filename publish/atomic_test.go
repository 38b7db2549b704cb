package publish

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/stump-dev/stump/publish/store"
	"github.com/stump-dev/stump/publish/store/mem"
)

// treeOf reads the live deploy's tree as the edge would: through _stump/live, its
// layer over its base, tombstones answering "not found".
func treeOf(t *testing.T, s store.Store) (string, map[string]string) {
	t.Helper()
	ctx := context.Background()
	id, base, err := readLiveTree(ctx, s)
	if err != nil || id == "" {
		t.Fatalf("_stump/live: %q %v", id, err)
	}
	out := map[string]string{}
	for _, tree := range []string{base, id} {
		prefix := TreeKey(tree, "") + "/"
		err = s.List(ctx, prefix, func(i store.Info) error {
			b, info, err := store.GetBytes(ctx, s, i.Key)
			if IsTombstone(info.Meta) {
				delete(out, strings.TrimPrefix(i.Key, prefix))
			} else {
				out[strings.TrimPrefix(i.Key, prefix)] = string(b)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return id, out
}

func wantTree(t *testing.T, s store.Store, want site) string {
	t.Helper()
	id, got := treeOf(t, s)
	for p, c := range want {
		if got[p] != c {
			t.Errorf("tree %s: %s = %q, want %q", id, p, got[p], c)
		}
	}
	if len(got) != len(want) {
		t.Errorf("tree %s has %d files, want %d", id, len(got), len(want))
	}
	return id
}

func TestAtomicPublishRollbackPreview(t *testing.T) {
	m := mem.New()
	cnt := store.Count(m)
	d := newDeployer(cnt)
	d.Mode = ModeAtomic
	r1, err := publishSite(t, d, v1, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if id := wantTree(t, m, v1); id != r1.Deploy {
		t.Fatalf("live %s, want %s", id, r1.Deploy)
	}
	if _, err := m.Head(context.Background(), "about/index.html"); !errors.Is(err, store.ErrNotFound) {
		t.Error("atomic mode wrote a page at the root")
	}
	if res, err := publishSite(t, d, v1, Options{}); err != nil || !res.Noop {
		t.Fatalf("no-op in atomic mode: %+v %v", res, err)
	}
	r2, err := publishSite(t, d, v2, Options{})
	if err != nil {
		t.Fatal(err)
	}
	wantTree(t, m, v2)
	// The old tree is untouched: a switch back is one pointer write.
	cnt.Reset()
	if _, err := d.Rollback(context.Background(), ""); err != nil {
		t.Fatal(err)
	}
	if c := cnt.Counts(); c["Copy"] != 0 || c["Put"] != 3 { // lock, pointer, _stump/live
		t.Errorf("atomic rollback made requests %v", c)
	}
	wantTree(t, m, v1)
	// A preview makes a tree and changes nothing live.
	v3 := site{"index.html": "preview"}
	p, err := publishSite(t, d, v3, Options{Preview: true, Force: true})
	if err != nil || !p.Preview {
		t.Fatalf("preview: %+v %v", p, err)
	}
	wantTree(t, m, v1)
	if b, _, err := store.GetBytes(context.Background(), m, TreeKey(p.Deploy, "index.html")); err != nil || string(b) != "preview" {
		t.Errorf("preview tree: %q %v", b, err)
	}
	// Promote the preview.
	if _, err := d.Rollback(context.Background(), p.Deploy); err != nil {
		t.Fatal(err)
	}
	wantTree(t, m, v3)
	if probs, err := d.Verify(context.Background()); err != nil || len(probs) != 0 {
		t.Errorf("verify: %v %v", probs, err)
	}
	// gc keeps the newest record (and the live and previous ones); the others' trees go.
	gc, err := d.GC(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if gc.DeletedDeploys == 0 {
		t.Errorf("gc: %+v", gc)
	}
	if _, err := m.Head(context.Background(), TreeKey(r2.Deploy, "index.html")); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("gc left the tree of a dropped deploy: %v", err)
	}
	wantTree(t, m, v3)
}

// TestAtomicKilledMidTree: a deploy stopped while writing its tree changes nothing live.
func TestAtomicKilledMidTree(t *testing.T) {
	m := mem.New()
	d := newDeployer(m)
	d.Mode = ModeAtomic
	if _, err := publishSite(t, d, v1, Options{}); err != nil {
		t.Fatal(err)
	}
	// "put": a changed path written into the tree from the build; "copy": an asset
	// copied into it.
	for _, step := range []string{"put", "copy", "upload", "materialize", "commit"} {
		d.StepHook = func(name string) error {
			if name == step {
				return errKilled
			}
			return nil
		}
		_, err := publishSite(t, d, v2, Options{})
		d.StepHook = nil
		if !errors.Is(err, errKilled) {
			t.Fatalf("%s: %v", step, err)
		}
		if step == "commit" {
			// The pointer was written; _stump/live was not: the next publish repairs it.
			if _, err := publishSite(t, d, v2, Options{}); err != nil {
				t.Fatal(err)
			}
			wantTree(t, m, v2)
			continue
		}
		wantTree(t, m, v1)
	}
}

// _stump/trees.txt lists the deploys that have a tree, newest first, in its body and in
// its "ids" metadata (what the edge reads to refuse unknown preview labels); gc drops
// the ids of the trees it deletes.
func TestTreeIDsForTheEdge(t *testing.T) {
	ctx := context.Background()
	m := mem.New()
	d := newDeployer(m)
	d.Mode = ModeAtomic
	r1, err := publishSite(t, d, v1, Options{})
	if err != nil {
		t.Fatal(err)
	}
	r2, err := publishSite(t, d, v2, Options{Preview: true})
	if err != nil {
		t.Fatal(err)
	}
	ids, err := ReadTreeIDs(ctx, m)
	if err != nil || strings.Join(ids, " ") != r2.Deploy+" "+r1.Deploy {
		t.Fatalf("tree ids = %v (%v), want [%s %s]", ids, err, r2.Deploy, r1.Deploy)
	}
	info, err := m.Head(ctx, TreesKey())
	if err != nil || info.Meta.Metadata["ids"] != r2.Deploy+" "+r1.Deploy {
		t.Fatalf("metadata ids = %q (%v)", info.Meta.Metadata["ids"], err)
	}
	r3, err := publishSite(t, d, v1, Options{Preview: true})
	if err != nil {
		t.Fatal(err)
	}
	// gc keeping one deploy keeps the newest (r3) and the live one (r1), and drops the
	// tree of the preview r2.
	if _, err := d.GC(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if ids, _ := ReadTreeIDs(ctx, m); strings.Join(ids, " ") != r3.Deploy+" "+r1.Deploy {
		t.Errorf("after gc, tree ids = %v, want [%s %s]", ids, r3.Deploy, r1.Deploy)
	}
}
