package purge

import (
	"fmt"
	"math/rand/v2"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/stump-dev/stump/build/manifest"
	"github.com/stump-dev/stump/publish"
)

const site = "example"

// obj is an object as publish writes it, with build's surrogate keys.
func obj(p, class, sum string, extra ...string) publish.Object {
	keys := []string{site, site + ":" + class, site + ":url:" + (&url.URL{Path: "/" + strings.TrimSuffix(p, "index.html")}).EscapedPath()}
	keys = append(keys, extra...)
	slices.Sort(keys)
	o := publish.Object{Entry: manifest.Entry{Path: p, SHA256: sum, Class: class, ContentType: "text/html", Keys: keys}}
	o.CacheControl = "public, max-age=60, s-maxage=3600"
	o.Metadata = map[string]string{"sha256": sum, "surrogate-key": strings.Join(keys, " ")}
	return o
}

func site1() []publish.Object {
	return []publish.Object{
		obj("index.html", manifest.Page, "h1"),
		obj("news/index.html", manifest.Page, "n1", site+":section:news"),
		obj("news/rally/index.html", manifest.Page, "r1", site+":section:news", site+":tags:climate"),
		obj("news/vote/index.html", manifest.Page, "v1", site+":section:news"),
		obj("news/index.xml", manifest.Page, "x1"),
		obj("tags/climate/index.html", manifest.Page, "c1", site+":tags:climate"),
		obj("about/index.html", manifest.Page, "a1"),
		obj("img/logo.png", manifest.Static, "l1"),
		obj("css/site.abc123.css", manifest.Immutable, "s1"),
	}
}

func replace(objs []publish.Object, p, sum string) []publish.Object {
	out := slices.Clone(objs)
	for i, o := range out {
		if o.Path == p {
			out[i] = obj(o.Path, o.Class, sum)
			for _, k := range o.Keys {
				if strings.Contains(k, ":section:") || strings.Contains(k, ":tags:") {
					out[i] = obj(o.Path, o.Class, sum, k)
				}
			}
		}
	}
	return out
}

func TestPlanOnePageEdit(t *testing.T) {
	from := site1()
	to := replace(from, "news/rally/index.html", "r2")
	r := Plan(site, "https://www.example.org/", from, to, PlanOptions{})
	if r.All {
		t.Fatalf("one page edit fell back to All: %s", r.Reason)
	}
	if want := []string{"/news/rally/", "/news/rally/index.html"}; !slices.Equal(r.Paths, want) {
		t.Errorf("paths = %q, want %q", r.Paths, want)
	}
	if want := []string{site + ":url:/news/rally/"}; !slices.Equal(r.Keys, want) {
		t.Errorf("keys = %q, want %q", r.Keys, want)
	}
	if len(r.Added) != 0 {
		t.Errorf("added = %q, want none", r.Added)
	}
	if !strings.Contains(r.Reason, "1 changed") {
		t.Errorf("reason %q", r.Reason)
	}
}

func TestPlanForms(t *testing.T) {
	from := site1()
	to := replace(replace(replace(from, "index.html", "h2"), "news/index.xml", "x2"), "img/logo.png", "l2")
	r := Plan(site, "https://www.example.org/campaign/", from, to, PlanOptions{})
	want := []string{"/campaign/", "/campaign/img/logo.png", "/campaign/index.html", "/campaign/news/index.xml"}
	if !slices.Equal(r.Paths, want) {
		t.Errorf("paths = %q, want %q", r.Paths, want)
	}
	wantKeys := []string{site + ":url:/", site + ":url:/img/logo.png", site + ":url:/news/index.xml"}
	if !slices.Equal(r.Keys, wantKeys) {
		t.Errorf("keys = %q, want %q", r.Keys, wantKeys)
	}
	r = Plan(site, "https://www.example.org/campaign/", from, to, PlanOptions{PrettyOnly: true})
	want = []string{"/campaign/", "/campaign/img/logo.png", "/campaign/news/index.xml"}
	if !slices.Equal(r.Paths, want) {
		t.Errorf("pretty only: paths = %q, want %q", r.Paths, want)
	}
}

func TestPlanAddedDeletedAndAssets(t *testing.T) {
	from := site1()
	var to []publish.Object
	for _, o := range from {
		switch o.Path {
		case "about/index.html":
			continue // deleted
		case "css/site.abc123.css":
			to = append(to, obj("css/site.def456.css", manifest.Immutable, "s2")) // new asset name
			continue
		}
		to = append(to, o)
	}
	to = append(to, obj("news/new page/index.html", manifest.Page, "p1"))
	r := Plan(site, "https://www.example.org", from, to, PlanOptions{})
	want := []string{"/about/", "/about/index.html", "/news/new%20page/", "/news/new%20page/index.html"}
	if !slices.Equal(r.Paths, want) {
		t.Errorf("paths = %q, want %q", r.Paths, want)
	}
	if wantAdded := want[2:]; !slices.Equal(r.Added, wantAdded) {
		t.Errorf("added = %q, want %q", r.Added, wantAdded)
	}
	wantKeys := []string{site + ":url:/about/", site + ":url:/news/new%20page/"}
	if !slices.Equal(r.Keys, wantKeys) {
		t.Errorf("keys = %q, want %q", r.Keys, wantKeys)
	}
	for _, p := range r.Paths {
		if strings.Contains(p, ".css") {
			t.Errorf("fingerprinted asset %s purged", p)
		}
	}
}

func TestPlanHeaderOnlyChange(t *testing.T) {
	from := site1()
	to := slices.Clone(from)
	o := to[6] // about
	o.CacheControl = "public, max-age=600"
	to[6] = o
	r := Plan(site, "https://www.example.org/", from, to, PlanOptions{})
	if want := []string{"/about/", "/about/index.html"}; !slices.Equal(r.Paths, want) {
		t.Errorf("paths = %q, want %q", r.Paths, want)
	}
}

func TestPlanNothingChanged(t *testing.T) {
	r := Plan(site, "https://www.example.org/", site1(), site1(), PlanOptions{})
	if !r.Empty() || r.All {
		t.Errorf("no change planned %+v", r)
	}
}

func TestPlanFallback(t *testing.T) {
	from := site1()
	to := from
	for _, p := range []string{"index.html", "news/index.html", "news/rally/index.html", "news/vote/index.html"} {
		to = replace(to, p, "changed")
	}
	r := Plan(site, "https://www.example.org/", from, to, PlanOptions{})
	if !r.All || len(r.Paths) != 0 || len(r.Keys) != 0 {
		t.Fatalf("4 of 7 pages changed: want All, got %+v", r)
	}
	if r.Reason != "4 of 7 pages changed: purging the whole site by its site key" {
		t.Errorf("reason %q", r.Reason)
	}
	r = Plan(site, "https://www.example.org/", from, to, PlanOptions{FullThreshold: -1})
	if r.All || len(r.Paths) != 8 {
		t.Errorf("fallback disabled: %+v", r)
	}
	r = Plan(site, "https://www.example.org/", from, to, PlanOptions{FullThreshold: 0.6})
	if r.All {
		t.Errorf("4 of 7 is under 0.6: %+v", r)
	}
	// A first deploy purges the whole site (cached 404s anywhere).
	r = Plan(site, "https://www.example.org/", nil, from, PlanOptions{})
	if !r.All {
		t.Errorf("first deploy: %+v", r)
	}
}

func TestPlanDerivesMissingKeys(t *testing.T) {
	from := site1()
	for i := range from {
		from[i].Metadata = map[string]string{"sha256": from[i].SHA256}
		from[i].Keys = nil
	}
	to := slices.Clone(from)
	to[2].SHA256, to[2].Metadata = "r2", map[string]string{"sha256": "r2"}
	r := Plan(site, "https://www.example.org/", from, to, PlanOptions{})
	if want := []string{site + ":url:/news/rally/"}; !slices.Equal(r.Keys, want) {
		t.Errorf("keys = %q, want %q", r.Keys, want)
	}
}

func TestURLsAndAll(t *testing.T) {
	r, err := URLs(site, "https://www.example.org/c/", []string{"/news/", "/", "/feed.xml"}, PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"/c/", "/c/feed.xml", "/c/index.html", "/c/news/", "/c/news/index.html"}; !slices.Equal(r.Paths, want) {
		t.Errorf("paths = %q, want %q", r.Paths, want)
	}
	if want := []string{site + ":url:/", site + ":url:/feed.xml", site + ":url:/news/"}; !slices.Equal(r.Keys, want) {
		t.Errorf("keys = %q, want %q", r.Keys, want)
	}
	for _, bad := range []string{"news/", "https://x.org/a", "/a?b=c"} {
		if _, err := URLs(site, "https://www.example.org/", []string{bad}, PlanOptions{}); err == nil {
			t.Errorf("URLs(%q) accepted", bad)
		}
	}
	if a := All(site, "https://www.example.org/", ""); !a.All || a.Empty() {
		t.Errorf("All = %+v", a)
	}
}

// randomSite makes n objects of mixed classes at random paths.
func randomSite(rng *rand.Rand, n int) []publish.Object {
	seen := map[string]bool{}
	var out []publish.Object
	sections := []string{"news", "events", "tags/a", "tags/b", "about", "ünïcode dir"}
	for len(out) < n {
		s := sections[rng.IntN(len(sections))]
		var p, class string
		switch rng.IntN(6) {
		case 0:
			p, class = fmt.Sprintf("%s/img-%d.png", s, rng.IntN(50)), manifest.Static
		case 1:
			p, class = fmt.Sprintf("assets/app.%08x.js", rng.Uint32()), manifest.Immutable
		case 2:
			p, class = s+"/index.xml", manifest.Page
		case 3:
			p, class = "index.html", manifest.Page
		default:
			p, class = fmt.Sprintf("%s/page-%d/index.html", s, rng.IntN(80)), manifest.Page
		}
		if seen[p] {
			continue
		}
		seen[p] = true
		out = append(out, obj(p, class, fmt.Sprintf("%x", rng.Uint64())))
	}
	return out
}

// mutate changes, deletes and adds a few objects.
func mutate(rng *rand.Rand, from []publish.Object) []publish.Object {
	var to []publish.Object
	for _, o := range from {
		switch rng.IntN(10) {
		case 0: // deleted
		case 1:
			to = append(to, obj(o.Path, o.Class, fmt.Sprintf("%x", rng.Uint64())))
		case 2:
			c := o
			c.Metadata = map[string]string{"sha256": o.SHA256, "surrogate-key": o.Metadata["surrogate-key"], "header-x-frame-options": "DENY"}
			to = append(to, c)
		default:
			to = append(to, o)
		}
	}
	extra := randomSite(rng, 5)
	have := map[string]bool{}
	for _, o := range to {
		have[o.Path] = true
	}
	for _, o := range from {
		have[o.Path] = true // an added path is one from never had
	}
	for _, o := range extra {
		if !have[o.Path] {
			to = append(to, o)
		}
	}
	return to
}

// TestPlanProperties: for random deploys, every changed, added or deleted URL is
// covered (path and key), no unchanged URL is, nothing of an immutable asset is, and
// the plan does not depend on the order of the objects.
func TestPlanProperties(t *testing.T) {
	for seed := range uint64(300) {
		rng := rand.New(rand.NewPCG(seed, 7))
		from := randomSite(rng, 5+rng.IntN(60))
		to := mutate(rng, from)
		base := []string{"https://www.example.org/", "https://www.example.org/sub/", "http://localhost:8080"}[seed%3]
		opts := PlanOptions{FullThreshold: -1, PrettyOnly: seed%5 == 0}
		r := Plan(site, base, from, to, opts)
		prefix := basePath(base)
		paths, keys := set(r.Paths), set(r.Keys)
		old := map[string]publish.Object{}
		for _, o := range from {
			old[o.Path] = o
		}
		inTo := map[string]bool{}
		check := func(o publish.Object, want bool, why string) {
			for _, u := range urlForms(prefix, o.Path, opts.PrettyOnly) {
				if paths[u] != want {
					t.Fatalf("seed %d: %s %s: path %s in plan = %v", seed, why, o.Path, u, paths[u])
				}
			}
			if k := urlKey(site, o); keys[k] != want {
				t.Fatalf("seed %d: %s %s: key %s in plan = %v", seed, why, o.Path, k, keys[k])
			}
		}
		for _, o := range to {
			inTo[o.Path] = true
			prev, ok := old[o.Path]
			switch {
			case o.Class == manifest.Immutable:
				check(o, false, "asset")
			case !ok:
				check(o, true, "added")
			case !same(prev, o):
				check(o, true, "changed")
			default:
				check(o, false, "unchanged")
			}
		}
		for _, o := range from {
			if !inTo[o.Path] && o.Class != manifest.Immutable {
				check(o, true, "deleted")
			}
		}
		if !slices.IsSorted(r.Paths) || !slices.IsSorted(r.Keys) || !slices.IsSorted(r.Added) {
			t.Fatalf("seed %d: plan not sorted", seed)
		}
		for _, a := range r.Added {
			if !paths[a] {
				t.Fatalf("seed %d: added %s not among paths", seed, a)
			}
		}
		// Stable under any order of the inputs.
		f2, t2 := slices.Clone(from), slices.Clone(to)
		rng.Shuffle(len(f2), func(i, j int) { f2[i], f2[j] = f2[j], f2[i] })
		rng.Shuffle(len(t2), func(i, j int) { t2[i], t2[j] = t2[j], t2[i] })
		r2 := Plan(site, base, f2, t2, opts)
		if !slices.Equal(r.Paths, r2.Paths) || !slices.Equal(r.Keys, r2.Keys) || !slices.Equal(r.Added, r2.Added) || r.Reason != r2.Reason {
			t.Fatalf("seed %d: plan depends on input order", seed)
		}
		// With the fallback on, All is set exactly when more than half the pages changed.
		ra := Plan(site, base, from, to, PlanOptions{PrettyOnly: opts.PrettyOnly})
		if ra.All && (len(ra.Paths) > 0 || len(ra.Keys) > 0) {
			t.Fatalf("seed %d: All with paths", seed)
		}
		if !ra.All && !slices.Equal(ra.Paths, r.Paths) {
			t.Fatalf("seed %d: fallback changed a targeted plan", seed)
		}
	}
}

func set(s []string) map[string]bool {
	m := map[string]bool{}
	for _, x := range s {
		m[x] = true
	}
	return m
}
