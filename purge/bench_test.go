package purge_test

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stump-dev/stump/build"
	"github.com/stump-dev/stump/build/manifest"
	"github.com/stump-dev/stump/internal/sitegen"
	"github.com/stump-dev/stump/publish"
	"github.com/stump-dev/stump/purge"
	"github.com/stump-dev/stump/purge/cdntest"
	"github.com/stump-dev/stump/purge/cloudflare"
	"github.com/stump-dev/stump/purge/cloudfront"
	"github.com/stump-dev/stump/purge/fastly"
	"github.com/stump-dev/stump/themes"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awscf "github.com/aws/aws-sdk-go-v2/service/cloudfront"
)

// TestPurgeBenchmark measures what each adapter sends for three deploys of a generated
// site, against a naive purge of one API call per changed URL:
//
//   - one page's Markdown edited;
//   - a taxonomy change: one page gets a tag it did not have (the page, that tag's
//     term pages and pagers, the taxonomy list, feeds and lists that show tags);
//   - a theme change (the stylesheet) that touches every page.
//
// It builds a site of STUMP_PURGE_BENCH pages (10000 when the variable is "1") and
// prints a Markdown table; without the variable it runs on 150 pages as a check.
func TestPurgeBenchmark(t *testing.T) {
	n, big := 150, false
	if v := os.Getenv("STUMP_PURGE_BENCH"); v != "" {
		big = true
		n = 10000
		if x, err := strconv.Atoi(v); err == nil && x > 1 {
			n = x
		}
	}
	if testing.Short() && !big {
		t.Skip("builds a site")
	}
	scen := buildScenarios(t, n)
	var rows []string
	for _, sc := range scen {
		rows = append(rows, measure(t, sc)...)
	}
	table := "| scenario | plan | CDN | API calls | paths / keys sent |\n|---|---|---|---:|---|\n" + strings.Join(rows, "\n")
	t.Logf("purge benchmark, %d content pages:\n%s", n, table)
	if big {
		fmt.Printf("\n### Purge benchmark: %d content pages\n\n%s\n\n", n, table)
	}
}

type scenario struct {
	name string
	// targeted turns the whole-site fallback off (to show the adapters' batching).
	targeted bool
	from, to []publish.Object
	pages    int // page objects of the site
}

const benchBase = sitegen.BaseURL

// buildScenarios generates a site of n pages, builds it, then applies the three edits in
// turn, building after each.
func buildScenarios(t *testing.T, n int) []scenario {
	t.Helper()
	root := t.TempDir()
	ws := filepath.Join(root, "ws")
	if err := sitegen.Generate(ws, sitegen.Options{Pages: n, Seed: 3}); err != nil {
		t.Fatal(err)
	}
	// The campaign theme, copied in so that its stylesheet can be edited.
	th, ok := themes.Get("campaign")
	if !ok {
		t.Fatal("no built-in campaign theme")
	}
	if err := os.CopyFS(filepath.Join(ws, "themes", "campaign"), th); err != nil {
		t.Fatal(err)
	}
	w, err := build.Open(ws)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	objects := func(name string) []publish.Object {
		start := time.Now()
		res, err := w.Build(context.Background(), "gen", build.Options{Now: now, NoWrite: true})
		if err != nil {
			t.Fatalf("build %s: %v", name, err)
		}
		objs, err := publish.Objects(res.Manifest, publish.DefaultCache, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("built %s: %d pages, %d files in %s", name, res.Pages, res.Files, time.Since(start).Round(time.Millisecond))
		return objs
	}
	base := objects("base")

	var pages []string
	content := filepath.Join(ws, "sites", "gen", "content")
	err = filepath.WalkDir(content, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".md") && d.Name() != "_index.md" {
			pages = append(pages, p)
		}
		return err
	})
	if err != nil || len(pages) < 3 {
		t.Fatalf("no content pages (%v)", err)
	}
	sort.Strings(pages)

	// One page edited.
	appendTo(t, pages[0], "\nThis paragraph was added by the purge benchmark.\n")
	onePage := objects("page")

	// One page gets a tag another page has and it has not.
	tagsRe := regexp.MustCompile(`(?m)^tags: \[(.*)\]$`)
	read := func(p string) string {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	target := read(pages[1])
	m := tagsRe.FindStringSubmatch(target)
	if m == nil {
		t.Fatal("no tags line")
	}
	have := map[string]bool{}
	for _, s := range strings.Split(m[1], ", ") {
		have[s] = true
	}
	var tag string
	for _, p := range pages[2:] {
		if mm := tagsRe.FindStringSubmatch(read(p)); mm != nil {
			for _, s := range strings.Split(mm[1], ", ") {
				if s != "" && !have[s] {
					tag = s
					break
				}
			}
		}
		if tag != "" {
			break
		}
	}
	newTags := tag
	if m[1] != "" {
		newTags = m[1] + ", " + tag
	}
	if err := os.WriteFile(pages[1], []byte(strings.Replace(target, m[0], "tags: ["+newTags+"]", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	taxonomy := objects("taxonomy")

	// The theme's stylesheet (every page links it by its fingerprinted name).
	appendTo(t, filepath.Join(ws, "themes", "campaign", "static", "css", "site.css"), "\n.stump-purge-bench { color: #123456; }\n")
	themed := objects("theme")

	pageCount := 0
	for _, o := range base {
		if o.Class == manifest.Page {
			pageCount++
		}
	}
	return []scenario{
		{name: "one page edited", from: base, to: onePage, pages: pageCount},
		{name: "taxonomy: a page gets tag " + tag, from: onePage, to: taxonomy, pages: pageCount},
		{name: "theme CSS edited", from: taxonomy, to: themed, pages: pageCount},
		{name: "theme CSS edited, fallback off", targeted: true, from: taxonomy, to: themed, pages: pageCount},
	}
}

func appendTo(t *testing.T, name, text string) {
	t.Helper()
	f, err := os.OpenFile(name, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
}

// measure runs every adapter against its fake for one scenario.
func measure(t *testing.T, sc scenario) []string {
	t.Helper()
	ctx := t.Context()
	targeted := purge.Plan("gen", benchBase, sc.from, sc.to, purge.PlanOptions{FullThreshold: -1})
	plan := purge.Plan("gen", benchBase, sc.from, sc.to, purge.PlanOptions{})
	if sc.targeted {
		plan = targeted
	}
	changedPages := 0
	old := map[string]publish.Object{}
	for _, o := range sc.from {
		old[o.Path] = o
	}
	for _, o := range sc.to {
		if p, ok := old[o.Path]; o.Class == manifest.Page && (!ok || p.SHA256 != o.SHA256) {
			changedPages++
		}
	}
	what := fmt.Sprintf("%d URLs, %d keys", len(plan.Paths), len(plan.Keys))
	if plan.All {
		what = "All: " + plan.Reason
	}
	head := fmt.Sprintf("%s (%d of %d pages changed)", sc.name, changedPages, sc.pages)
	var rows []string
	row := func(cdn string, calls int, sent string) {
		rows = append(rows, fmt.Sprintf("| %s | %s | %s | %d | %s |", head, what, cdn, calls, sent))
		head, what = "", ""
	}
	row("naive: one call per changed URL", len(targeted.Paths), fmt.Sprintf("%d URLs", len(targeted.Paths)))

	noSleep := purge.Backoff{Sleep: func(context.Context, time.Duration) error { return nil }}

	// Fastly: keys in bulk (URL purges for added paths).
	ff := cdntest.NewFastly(t, "SVC", "tok")
	fc, err := fastly.New(fastly.Config{Service: "SVC", Token: "tok", API: ff.URL, Backoff: noSleep, Soft: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fc.Purge(ctx, plan); err != nil {
		t.Fatal(err)
	}
	row("Fastly (bulk keys, soft)", ff.Requests(), fmt.Sprintf("%d keys, %d URLs", len(ff.Keys()), len(ff.URLs())))

	// CloudFront through the SDK.
	cff := cdntest.NewCloudFront(t, "E1", "AKIDBENCH")
	awsCfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("AKIDBENCH", "secret", "")}
	cfc, err := cloudfront.NewFromAWS(cloudfront.Config{Distribution: "E1", Backoff: noSleep}, awsCfg, func(o *awscf.Options) { o.BaseEndpoint = aws.String(cff.URL) })
	if err != nil {
		t.Fatal(err)
	}
	rep, err := cfc.Purge(ctx, plan)
	if err != nil {
		t.Fatal(err)
	}
	wild := 0
	for _, p := range cff.Paths() {
		if strings.HasSuffix(p, "*") {
			wild++
		}
	}
	ops := cff.Ops()
	row("CloudFront (max_paths 100)", cff.Requests(), fmt.Sprintf("%d paths (%d wildcards) in %d invalidation; %s", len(cff.Paths()), wild, ops["CreateInvalidation"], rep.Mode))

	for _, mode := range []struct {
		mode string
		per  int
	}{{cloudflare.Files, 30}, {cloudflare.Files, 100}, {cloudflare.Tags, 30}} {
		cl := cdntest.NewCloudflare(t, "Z", "tok")
		cl.Limit = mode.per
		cc, err := cloudflare.New(cloudflare.Config{Zone: "Z", Token: "tok", API: cl.API(), Mode: mode.mode, PerRequest: mode.per, Backoff: noSleep})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cc.Purge(ctx, plan); err != nil {
			t.Fatal(err)
		}
		var files, tags, prefixes int
		for _, c := range cl.Calls() {
			files, tags, prefixes = files+len(c.Files), tags+len(c.Tags), prefixes+len(c.Prefixes)
		}
		sent := fmt.Sprintf("%d files", files)
		if tags > 0 {
			sent = fmt.Sprintf("%d tags, %d files", tags, files)
		}
		if prefixes > 0 {
			sent += fmt.Sprintf(", %d prefixes", prefixes)
		}
		row(fmt.Sprintf("Cloudflare (%s, %d a call)", mode.mode, mode.per), cl.Requests(), sent)
	}

	// Sanity: a targeted plan never purges more calls than the naive purge.
	if len(targeted.Paths) > 0 && ff.Requests() > len(targeted.Paths) {
		t.Errorf("%s: Fastly used %d calls, naive %d", sc.name, ff.Requests(), len(targeted.Paths))
	}
	return rows
}
