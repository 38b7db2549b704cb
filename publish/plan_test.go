package publish

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stump-dev/stump/build/manifest"
)

func obj(p, sum, class string) Object {
	return Object{Entry: manifest.Entry{Path: p, SHA256: sum, Size: int64(len(sum)), ContentType: "text/html", Class: class}, CacheControl: "c"}
}

func sum(c byte) string {
	b := make([]byte, 64)
	for i := range b {
		b[i] = c
	}
	return string(b)
}

func TestDiffFirstDeploy(t *testing.T) {
	next := []Object{
		obj("index.html", sum('a'), manifest.Page),
		obj("about/index.html", sum('a'), manifest.Page), // same content: one blob
		obj("img/x.png", sum('b'), manifest.Static),
		obj("css/s.ccc.css", sum('c'), manifest.Immutable),
	}
	p := Diff(nil, next, nil)
	if p.NewBlobs != 2 || p.AssetCount != 1 || p.WriteCount != 3 || p.DeleteCount != 0 || p.Unchanged != 0 {
		t.Fatalf("plan %+v", p)
	}
	if p.Writes[0].Path != "img/x.png" {
		t.Errorf("static files must be written before pages: %v", p.Writes[0].Path)
	}
}

func TestDiffNoop(t *testing.T) {
	live := []Object{obj("index.html", sum('a'), manifest.Page), obj("css/s.css", sum('c'), manifest.Immutable)}
	p := Diff(live, live, nil)
	if !p.Empty() || p.Unchanged != 2 || p.NewBlobs != 0 {
		t.Fatalf("no-op plan %+v", p)
	}
}

func TestDiffChanges(t *testing.T) {
	live := []Object{
		obj("index.html", sum('a'), manifest.Page),
		obj("old/index.html", sum('b'), manifest.Page),
		obj("css/s.1.css", sum('c'), manifest.Immutable),
		obj("same/index.html", sum('d'), manifest.Page),
	}
	changedHeaders := obj("same/index.html", sum('d'), manifest.Page)
	changedHeaders.CacheControl = "other"
	next := []Object{
		obj("index.html", sum('e'), manifest.Page),
		obj("css/s.2.css", sum('f'), manifest.Immutable),
		obj("moved/index.html", sum('b'), manifest.Page), // content already stored as a blob
		changedHeaders,
	}
	p := Diff(live, next, nil)
	if p.NewBlobs != 1 || p.Blobs[sum('e')].Path != "index.html" {
		t.Errorf("blobs %v", p.Blobs)
	}
	if p.WriteCount != 3 || p.AssetCount != 1 {
		t.Errorf("writes %d assets %d", p.WriteCount, p.AssetCount)
	}
	if len(p.Deletes) != 1 || p.Deletes[0] != "old/index.html" {
		t.Errorf("deletes %v (assets are never deleted by a deploy)", p.Deletes)
	}
}

func TestDiffUnknownPathsRewritten(t *testing.T) {
	live := []Object{obj("a/index.html", sum('a'), manifest.Page)}
	unknown := map[string]bool{"a/index.html": true, "ghost/index.html": true}
	p := Diff(live, live, unknown)
	if p.WriteCount != 1 || len(p.Deletes) != 1 || p.Deletes[0] != "ghost/index.html" {
		t.Fatalf("plan %+v deletes %v", p, p.Deletes)
	}
}

// TestDiffProperties checks on random site pairs: every path of next is either unchanged
// (same content and headers as live) or written; every live non-asset path missing from
// next is deleted; nothing else is touched; every write has its blob either live or
// planned.
func TestDiffProperties(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	classes := []string{manifest.Page, manifest.Static, manifest.Immutable}
	gen := func(n int) []Object {
		var out []Object
		for i := range n {
			if r.IntN(4) == 0 {
				continue
			}
			out = append(out, obj(fmt.Sprintf("p%d/index.html", i), sum(byte('a'+r.IntN(6))), classes[r.IntN(3)]))
		}
		return out
	}
	for range 200 {
		live, next := gen(40), gen(40)
		p := Diff(live, next, nil)
		old := map[string]Object{}
		liveBlobs := map[string]bool{}
		for _, o := range live {
			old[o.Path] = o
			if o.Class != manifest.Immutable {
				liveBlobs[o.SHA256] = true
			}
		}
		written := map[string]bool{}
		for _, o := range append(append([]Object{}, p.Writes...), p.Assets...) {
			written[o.Path] = true
			if prev, ok := old[o.Path]; ok && same(prev, o) {
				t.Fatalf("unchanged path %s written", o.Path)
			}
			if o.Class != manifest.Immutable && !liveBlobs[o.SHA256] {
				if _, ok := p.Blobs[o.SHA256]; !ok {
					t.Fatalf("%s written without its blob", o.Path)
				}
			}
		}
		inNext := map[string]bool{}
		for _, o := range next {
			inNext[o.Path] = true
			if prev, ok := old[o.Path]; (!ok || !same(prev, o)) && !written[o.Path] {
				t.Fatalf("changed path %s not written", o.Path)
			}
		}
		deleted := map[string]bool{}
		for _, d := range p.Deletes {
			deleted[d] = true
			if inNext[d] {
				t.Fatalf("deleting %s, which the new deploy has", d)
			}
		}
		for _, o := range live {
			if !inNext[o.Path] && o.Class != manifest.Immutable && !deleted[o.Path] {
				t.Fatalf("%s removed but not deleted", o.Path)
			}
		}
		if p.Unchanged+p.WriteCount+p.AssetCount != len(next) {
			t.Fatalf("counts do not add up: %+v", p)
		}
	}
}

func TestMatch(t *testing.T) {
	cases := []struct {
		glob, path string
		want       bool
	}{
		{"*.pdf", "docs/a.pdf", true},
		{"*.pdf", "a.pdf.txt", false},
		{"docs/*", "docs/a.pdf", true},
		{"docs/*", "docs/x/a.pdf", false},
		{"docs/**", "docs/x/a.pdf", true},
		{"**/index.html", "index.html", true},
		{"**/index.html", "a/b/index.html", true},
		{"/news/**", "news/a/index.html", true},
	}
	for _, c := range cases {
		if got := Match(c.glob, c.path); got != c.want {
			t.Errorf("Match(%q, %q) = %v", c.glob, c.path, got)
		}
	}
}

func TestCheckPath(t *testing.T) {
	for _, bad := range []string{".env", "a/.git/config", "../x", "/abs", "a//b", "x~", "k.pem", "id_rsa", "_stump/current.json", "a\\b", "#x#"} {
		if CheckPath(bad) == nil {
			t.Errorf("CheckPath(%q) accepted", bad)
		}
	}
	for _, good := range []string{"index.html", "a/b/c.css", "_stumpy/x", "well-known/x"} {
		if err := CheckPath(good); err != nil {
			t.Errorf("CheckPath(%q): %v", good, err)
		}
	}
}

func TestObjectsHeaders(t *testing.T) {
	m := &manifest.Manifest{Files: []manifest.Entry{
		{Path: "index.html", SHA256: sum('a'), Class: manifest.Page, ContentType: "text/html", Keys: []string{"s", "s:url:/"}},
		{Path: "css/s.1.css", SHA256: sum('b'), Class: manifest.Immutable, ContentType: "text/css"},
		{Path: "files/a.pdf", SHA256: sum('c'), Class: manifest.Static, ContentType: "application/pdf"},
	}}
	objs, err := Objects(m, DefaultCache, []HeaderRule{{Path: "*.pdf", Values: map[string]string{"Cache-Control": "no-cache", "Content-Disposition": "attachment"}}})
	if err != nil {
		t.Fatal(err)
	}
	if objs[0].CacheControl != "public, max-age=60, s-maxage=3600" || objs[0].Metadata["surrogate-key"] != "s s:url:/" {
		t.Errorf("page: %+v", objs[0])
	}
	if objs[1].CacheControl != Immutable {
		t.Errorf("asset: %q", objs[1].CacheControl)
	}
	if objs[2].CacheControl != "no-cache" || objs[2].Metadata["header-content-disposition"] != "attachment" {
		t.Errorf("rule not applied: %+v", objs[2])
	}
	m.Files = append(m.Files, manifest.Entry{Path: ".env", SHA256: sum('d')})
	if _, err := Objects(m, DefaultCache, nil); err == nil {
		t.Error("a dotfile in the manifest was accepted")
	}
}
