package build

import (
	"fmt"
	"math/rand/v2"
	"regexp"
	"slices"
	"sort"
	"testing"
)

// linkOracle is the link check's former regular expression: linkTable.add must find
// what it found.
var linkOracle = regexp.MustCompile(`(?:href|src)="([^"#?]*)[^"]*"`)

func oracleLinks(page []byte) []string {
	var out []string
	for _, m := range linkOracle.FindAllSubmatch(page, -1) {
		if !slices.Contains(out, string(m[1])) {
			out = append(out, string(m[1]))
		}
	}
	return out
}

func TestPageLinksMatchesTheRegexp(t *testing.T) {
	cases := []string{
		``,
		`<a href="/a/">x</a><img src="/i.png"><a href="/a/">again</a>`,
		`<a href="/q/?x=1#f">`,
		`<a href="#top">`,
		`<img data-src="/lazy.png">`,
		`<a title="href=" href="/t/">`,
		`<a href="/unterminated`,
		`<a href="">empty</a><link rel=stylesheet href="/css/x.css">`,
		`src="a"src="b"href="c"`,
		`<a href="/x/" src="/y/">`,
	}
	// And random soup of the pieces that matter.
	pieces := []string{`href`, `src`, `="`, `"`, `#`, `?`, `/p/`, ` `, `=`, `a`, `<a `, `>`}
	r := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		var b []byte
		for range r.IntN(30) {
			b = append(b, pieces[r.IntN(len(pieces))]...)
		}
		cases = append(cases, string(b))
	}
	// One table for every case, as for the pages of a build.
	var tab linkTable
	for _, c := range cases {
		var got []string
		for _, id := range tab.add([]byte(c)) {
			got = append(got, tab.list[id])
		}
		if want := oracleLinks([]byte(c)); !slices.Equal(got, want) {
			t.Fatalf("links of %q: %q, the regexp finds %q", c, got, want)
		}
	}
}

// The former regular expressions of rebaseLinks and plainify, as oracles.
var (
	relLinkOracle = regexp.MustCompile(`(\s(?:src|href)=")([^"]*)"`)
	tagOracle     = regexp.MustCompile(`<[^>]*>`)
)

func soup(r *rand.Rand, pieces []string) string {
	var b []byte
	for range r.IntN(30) {
		b = append(b, pieces[r.IntN(len(pieces))]...)
	}
	return string(b)
}

func TestScanAttrsSpacedMatchesTheRegexp(t *testing.T) {
	pieces := []string{`href`, `src`, `="`, `"`, ` `, "\n", "\t", `=`, `a`, `<a `, `>`, `x/`}
	r := rand.New(rand.NewPCG(3, 4))
	cases := []string{`<a href="x/">`, `<img src="i.png" data-src="j.png">`, "<a\nhref=\"y\">", `<a href="`}
	for range 3000 {
		cases = append(cases, soup(r, pieces))
	}
	for _, c := range cases {
		var got [][2]int
		scanAttrs(c, true, func(s, e int) { got = append(got, [2]int{s, e}) })
		var want [][2]int
		for _, m := range relLinkOracle.FindAllStringSubmatchIndex(c, -1) {
			want = append(want, [2]int{m[4], m[5]})
		}
		if !slices.Equal(got, want) {
			t.Fatalf("scanAttrs(%q) = %v, the regexp finds %v", c, got, want)
		}
	}
}

func TestStripTagsMatchesTheRegexp(t *testing.T) {
	pieces := []string{`<`, `>`, `p`, ` `, `&amp;`, `<b>`, `</b>`, `x`}
	r := rand.New(rand.NewPCG(5, 6))
	for range 3000 {
		c := soup(r, pieces)
		if got, want := stripTags(c), tagOracle.ReplaceAllString(c, ""); got != want {
			t.Fatalf("stripTags(%q) = %q, the regexp gives %q", c, got, want)
		}
	}
}

// TestFeedItemsSelectionMatchesSort: the one-pass selection of the newest pages gives
// what the stable sort gives, ties (same date, even same path) included.
func TestFeedItemsSelectionMatchesSort(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	base := now
	for round := range 200 {
		n := 1 + r.IntN(300)
		pages := make([]*Page, n)
		for i := range pages {
			kind := KindPage
			if r.IntN(10) == 0 {
				kind = KindSection
			}
			pages[i] = &Page{Kind: kind, Date: base.AddDate(0, 0, r.IntN(20)), urlPath: fmt.Sprintf("/p/%d/", r.IntN(n))}
		}
		limit := 1 + r.IntN(30)
		var want []*Page
		for _, p := range pages {
			if p.Kind == KindPage {
				want = append(want, p)
			}
		}
		sort.SliceStable(want, func(i, j int) bool {
			if !want[i].Date.Equal(want[j].Date) {
				return want[i].Date.After(want[j].Date)
			}
			return want[i].urlPath < want[j].urlPath
		})
		want = want[:min(limit, len(want))]
		if got := feedItems(pages, limit); !slices.Equal(got, want) {
			t.Fatalf("round %d: %d pages, limit %d: selection differs from the sort", round, n, limit)
		}
	}
}
