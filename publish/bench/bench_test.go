package bench

import (
	"context"
	"fmt"
	"io/fs"
	"maps"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go/middleware"
	"golang.org/x/sync/errgroup"

	"github.com/stump-dev/stump/build"
	"github.com/stump-dev/stump/build/manifest"
	"github.com/stump-dev/stump/internal/sitegen"
	"github.com/stump-dev/stump/internal/testenv"
	"github.com/stump-dev/stump/publish"
	"github.com/stump-dev/stump/publish/store"
	s3store "github.com/stump-dev/stump/publish/store/s3"
	"github.com/stump-dev/stump/themes"
)

// TestMain shares one versitygw among the tests (when scripts/services.sh started none)
// and points the AWS default chain at the test server's credentials only, as the S3
// store's own tests do: s3store.Open takes credentials from nowhere else.
func TestMain(m *testing.M) {
	testenv.IsolateAWS()
	testenv.Main(m)
}

// site is the name sitegen gives the generated site.
const site = "gen"

// Scenario names, in the order a run measures them.
const (
	scFirst = "first deploy (empty bucket)"
	scNoop  = "redeploy, nothing changed"
	scNaive = "naive sync check: list bucket + HEAD every live object"
	scPage  = "redeploy, one page's Markdown edited"
	scCSS   = "redeploy, theme CSS edited"
)

var scenarioOrder = []string{scFirst, scNoop, scNaive, scPage, scCSS}

// builds are the three built trees a run deploys in turn.
type builds struct {
	base, page, css string // output folders
	editedPage      string // the content file edited for page (relative to the workspace)
	files           int
	bytes           int64
	pages           int // HTML pages the build rendered
}

// prepare generates a workspace of n pages at root with the campaign theme copied into
// themes/campaign/, and builds it three times: as generated (base), with one page's
// Markdown edited (page), and then also with the theme's CSS edited (css). Each build
// goes to its own folder, so nothing is rebuilt while deploys are timed.
func prepare(t testing.TB, root string, n int, seed uint64) builds {
	t.Helper()
	ws := filepath.Join(root, "ws")
	if err := sitegen.Generate(ws, sitegen.Options{Pages: n, Seed: seed}); err != nil {
		t.Fatal(err)
	}
	theme, ok := themes.Get("campaign")
	if !ok {
		t.Fatal("no built-in campaign theme")
	}
	if err := os.CopyFS(filepath.Join(ws, "themes", "campaign"), theme); err != nil {
		t.Fatalf("copy the campaign theme into the workspace: %v", err)
	}
	w, err := build.Open(ws)
	if err != nil {
		t.Fatal(err)
	}
	// One clock for every build, so the only differences are the edits.
	now := time.Now()
	var b builds
	do := func(name string) string {
		out := filepath.Join(root, "out-"+name)
		start := time.Now()
		res, err := w.Build(context.Background(), site, build.Options{Now: now, OutDir: out})
		if err != nil {
			t.Fatalf("build %s: %v", name, err)
		}
		t.Logf("built %s: %d pages, %d files, %.1f MiB in %s", name, res.Pages, res.Files, float64(res.Bytes)/(1<<20), time.Since(start).Round(time.Millisecond))
		if name == "base" {
			b.files, b.bytes, b.pages = res.Files, res.Bytes, res.Pages
		}
		return out
	}
	b.base = do("base")

	// One page: the first regular page in path order gets a paragraph at its end.
	var pages []string
	err = filepath.WalkDir(filepath.Join(ws, "sites", site, "content"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".md") && d.Name() != "_index.md" {
			pages = append(pages, p)
		}
		return err
	})
	if err != nil || len(pages) == 0 {
		t.Fatalf("no content page to edit (%v)", err)
	}
	sort.Strings(pages)
	appendFile(t, pages[0], "\nThis paragraph was added by the publish benchmark.\n")
	b.editedPage, _ = filepath.Rel(ws, pages[0])
	b.page = do("page")

	// The theme's stylesheet: every page links it by its fingerprinted name.
	appendFile(t, filepath.Join(ws, "themes", "campaign", "static", "css", "site.css"), "\n.stump-bench-edit { color: #123456; }\n")
	b.css = do("css")
	return b
}

func appendFile(t testing.TB, name, text string) {
	t.Helper()
	f, err := os.OpenFile(name, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// Deploy modes the benchmark measures (publish.ModeInPlace, publish.ModeAtomic).
var modes = []string{publish.ModeInPlace, publish.ModeAtomic}

// modeFastly is atomic mode as stump publish runs it for a site on Fastly: layers once
// the target's edge stamp says the edge reads them (written before the first deploy),
// the 404 page in every layer.
const modeFastly = "atomic-fastly"

// deployer is the Deployer of a publish in mode.
func deployer(s store.Store, mode string, workers int) *publish.Deployer {
	d := &publish.Deployer{Store: s, Site: site, Mode: mode, Workers: workers}
	if mode == modeFastly {
		d.Mode, d.NeedEdgeStamp, d.FullPreviewTrees, d.Pins = publish.ModeAtomic, true, true, []string{"404.html"}
	}
	return d
}

// target is one bucket opened as the CLI opens a target (Retry over Count over the S3
// store), with the three request counters.
type target struct {
	mode    string // publish.ModeInPlace or publish.ModeAtomic
	workers int    // Deployer.Workers (0: the default)
	bucket  string
	wire    *Transport     // HTTP requests sent, by S3 operation
	ops     *Ops           // SDK operation attempts
	calls   *store.Counter // Store method calls (inside Retry: every attempt)
	store   store.Store
}

func openTarget(t testing.TB, env testenv.S3Env, bucket string) *target {
	t.Helper()
	// The transport the CLI's store uses (s3store.NewHTTPClient), counted.
	tr := &Transport{Base: s3store.NewHTTPClient().GetTransport(), PathStyle: true}
	ops := &Ops{}
	s, err := s3store.Open(context.Background(), s3store.Config{
		Bucket: bucket, Region: env.Region, Endpoint: env.Endpoint, PathStyle: true,
		HTTPClient: &http.Client{Transport: tr},
		Middleware: []func(*middleware.Stack) error{ops.Middleware},
	})
	if err != nil {
		t.Fatalf("open bucket %s: %v", bucket, err)
	}
	calls := store.Count(s)
	tg := &target{bucket: bucket, wire: tr, ops: ops, calls: calls, store: store.Retry(calls, store.RetryOptions{})}
	tg.reset()
	return tg
}

func (tg *target) reset() {
	tg.wire.Reset()
	tg.ops.Reset()
	tg.calls.Reset()
}

// sample is one measured operation.
type sample struct {
	wall  time.Duration
	cpu   time.Duration // the client process's CPU time (see cpuTime)
	wire  Counts
	ops   Counts
	calls map[string]int64
	plan  *publish.Plan
	res   *publish.Result
	note  string
}

// deploy times what `stump publish --no-build` does after opening the target: read the
// build's manifest, make the objects with their headers, and run Deployer.Publish.
func (tg *target) deploy(t testing.TB, dir, message string) sample {
	t.Helper()
	tg.reset()
	start, cpu0 := time.Now(), cpuTime()
	m, err := manifest.Read(filepath.Join(dir, manifest.FileName))
	if err != nil {
		t.Fatal(err)
	}
	objs, err := publish.Objects(m, publish.DefaultCache, nil)
	if err != nil {
		t.Fatal(err)
	}
	src, err := publish.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	d := deployer(tg.store, tg.mode, tg.workers)
	res, err := d.Publish(context.Background(), objs, src, publish.Options{Message: message})
	wall, cpu := time.Since(start), cpuTime()-cpu0
	if err != nil {
		t.Fatalf("publish %s to %s: %v", filepath.Base(dir), tg.bucket, err)
	}
	s := tg.sample(wall, res.Plan)
	s.cpu = cpu
	s.res = res
	return s
}

func (tg *target) sample(wall time.Duration, plan *publish.Plan) sample {
	return sample{wall: wall, wire: tg.wire.Counts(), ops: tg.ops.Counts(), calls: tg.calls.Counts(), plan: plan}
}

// naiveCheck is what a sync tool without a manifest does to find out that nothing
// changed: list the bucket and HEAD every live object for its checksum metadata (16 in
// parallel, like the deployer). The bucket also holds _stump/, which is listed too.
func (tg *target) naiveCheck(t testing.TB) sample {
	t.Helper()
	tg.reset()
	ctx := context.Background()
	start := time.Now()
	var keys []string
	if err := tg.store.List(ctx, "", func(i store.Info) error {
		if !strings.HasPrefix(i.Key, "_stump/") {
			keys = append(keys, i.Key)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for _, k := range keys {
		g.Go(func() error {
			_, err := tg.store.Head(gctx, k)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	s := tg.sample(time.Since(start), nil)
	s.note = fmt.Sprintf("%d live objects", len(keys))
	return s
}

// dropLater deletes a bucket and everything in it when the test ends (not timed), so
// that runs do not fill the disk. Not before: versitygw keeps each object as a file,
// and after a bulk delete ext4 creates files more slowly for minutes (bench/README.md),
// which would slow whichever deploy, stump's or hugo's, came next.
func dropLater(t testing.TB, env testenv.S3Env, bucket string) {
	t.Helper()
	t.Cleanup(func() { dropBucket(t, env, bucket) })
}

func dropBucket(t testing.TB, env testenv.S3Env, bucket string) {
	ctx := context.Background()
	c := env.Client()
	p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Logf("drop bucket %s: %v", bucket, err)
			return
		}
		if len(page.Contents) == 0 {
			continue
		}
		ids := make([]types.ObjectIdentifier, len(page.Contents))
		for i, o := range page.Contents {
			ids[i] = types.ObjectIdentifier{Key: o.Key}
		}
		if _, err := c.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String(bucket), Delete: &types.Delete{Objects: ids, Quiet: aws.Bool(true)}}); err != nil {
			t.Logf("drop bucket %s: %v", bucket, err)
			return
		}
	}
	if _, err := c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Logf("drop bucket %s: %v", bucket, err)
	}
}

// runOnce measures every scenario once in mode on a fresh bucket and drops the
// bucket. The naive check is measured in place only (in atomic mode the bucket's root
// holds no live tree).
func runOnce(t testing.TB, env testenv.S3Env, b builds, run int, mode string) map[string]sample {
	t.Helper()
	bucket := testenv.NewBucket(t, env)
	dropLater(t, env, bucket)
	tg := openTarget(t, env, bucket)
	tg.mode = mode
	if mode == modeFastly {
		if err := publish.WriteEdgeStamp(context.Background(), tg.store, publish.EdgeStamp{Layers: true, By: "benchmark"}); err != nil {
			t.Fatal(err)
		}
	}
	out := map[string]sample{}
	out[scFirst] = tg.deploy(t, b.base, "base")
	out[scNoop] = tg.deploy(t, b.base, "again")
	if mode == publish.ModeInPlace {
		out[scNaive] = tg.naiveCheck(t)
	}
	out[scPage] = tg.deploy(t, b.page, "one page")
	out[scCSS] = tg.deploy(t, b.css, "css")
	for _, sc := range scenarioOrder {
		if s, ok := out[sc]; ok {
			t.Logf("run %d, %s: %-58s %8s (client CPU %s)  %6d requests  %s", run, mode, sc, s.wall.Round(time.Millisecond), s.cpu.Round(time.Millisecond), s.wire.Total(), compact(s.wire))
		}
	}
	return out
}

// TestPublishCosts is a small, always-run version of the benchmark that checks the
// request costs the design promises, on a real S3 server, in both modes: a no-op
// redeploy reads the pointer and the live record's header and nothing else (in atomic
// mode also _stump/live; no listing); a deploy writes the record's new chunks and adds
// a fixed handful of requests (lock, record, pointer) on top; in place it uploads each
// new blob once with a create-only PUT and copies each changed path once; in atomic
// mode it writes each path of its tree's layer once: a changed path is one PUT from
// the build (no blob), an unchanged one a copy from the live tree, a removed one a
// tombstone (a one-page edit: a few requests, not the site); a one-page edit changes
// few paths.
func TestPublishCosts(t *testing.T) {
	env := testenv.S3(t)
	b := prepare(t, t.TempDir(), 60, 1)
	for _, mode := range append(modes, modeFastly) {
		t.Run(mode, func(t *testing.T) {
			res := runOnce(t, env, b, 1, mode)
			checkCosts(t, b, mode, res)
			t.Log("\n" + report(b, 60, 1, mode, []map[string]sample{res}, loadAvg(), loadAvg()))
		})
	}
}

func checkCosts(t *testing.T, b builds, mode string, res map[string]sample) {
	atomicMode := mode == publish.ModeAtomic || mode == modeFastly
	noop := res[scNoop]
	wantNoop := int64(2) // the pointer and the live record's header
	if atomicMode {
		wantNoop = 3 // and _stump/live, behind the pointer after a kill
	}
	if got := noop.wire.Total(); got != wantNoop || noop.wire["GetObject"].Requests != wantNoop {
		t.Errorf("no-op redeploy: %d requests (%s), want %d GetObject", got, compact(noop.wire), wantNoop)
	}
	if _, in := noop.wire.Bytes(); in > 16<<10 {
		t.Errorf("no-op redeploy read %s, want a few KiB (the record's header, not its objects)", mib(in))
	}
	for _, sc := range []string{scFirst, scNoop, scPage, scCSS} {
		s := res[sc]
		if n := s.wire["ListObjectsV2"].Requests; n != 0 {
			t.Errorf("%s: %d ListObjectsV2 requests, want none (the plan comes from the live record)", sc, n)
		}
		if mismatch := compare(s.wire, s.ops); mismatch != "" {
			t.Errorf("%s: HTTP and SDK counts differ: %s", sc, mismatch)
		}
		if sc == scNoop {
			continue
		}
		p, r := s.plan, s.res
		uploads := int64(p.NewBlobs + p.AssetCount)
		copies := int64(p.WriteCount)
		tombstones := int64(0)
		if atomicMode {
			// Every path of the tree's layer is one write: a PUT from the build (a
			// changed path), a copy (an unchanged path, or a new asset from its own
			// key), or a tombstone (a PUT).
			uploads = int64(r.Uploaded)
			copies = s.wire["CopyObject"].Requests
			tombstones = int64(r.Layer) - (uploads - int64(p.AssetCount)) - copies
			if tombstones < 0 {
				t.Errorf("%s: %d PUTs into the tree and %d CopyObject, more than the %d paths of the deploy's tree", sc, uploads-int64(p.AssetCount), copies, r.Layer)
			}
			if sc == scFirst && (copies != int64(p.AssetCount) || uploads != int64(p.Total)) {
				t.Errorf("%s: %d files put and %d CopyObject for %d files (%d assets); want one PUT per file and one copy per asset (from its own key), no blob", sc, uploads, copies, p.Total, p.AssetCount)
			}
		} else if got := s.wire["CopyObject"].Requests; got != copies {
			t.Errorf("%s: %d CopyObject, want one per path written (%d)", sc, got, copies)
		}
		// The first deploy of a site with redirects learns whether the store keeps
		// website redirects: one probe PUT and one HEAD, once per target.
		probe := int64(0)
		if sc == scFirst {
			probe = 1
		}
		// Uploads are create-only PUTs (If-None-Match: *): no HEAD before them.
		if got := s.wire["HeadObject"].Requests; got != probe {
			t.Errorf("%s: %d HeadObject, want %d (uploads are create-only PUTs; only the redirect probe of a first deploy reads back)", sc, got, probe)
		}
		// In place: lock, record, pointer marked, committed, cleaned. Atomic: lock,
		// record, the tree's marker, the list of trees (_stump/trees.txt), pointer,
		// _stump/live. No renewal in a deploy this short. Plus the record's new chunks.
		fixed := int64(5)
		if atomicMode {
			fixed = 6
		}
		want := uploads + fixed + probe + int64(r.RecordChunks) + tombstones
		if got := s.wire["PutObject"].Requests; got != want {
			t.Errorf("%s: %d PutObject, want %d: one per upload from the build (%d), %d (lock, record, pointer, marker and list writes), %d record chunks, %d tombstones, %d probe", sc, got, want, uploads, fixed, r.RecordChunks, tombstones, probe)
		}
	}
	page := res[scPage]
	if page.plan.NewBlobs == 0 || page.plan.AssetCount != 0 || page.plan.WriteCount > page.plan.Total/4 {
		t.Errorf("one-page edit: %s; want a few new blobs and writes, no new assets", page.plan.Summary())
	}
	if page.res.RecordChunks > 4 {
		t.Errorf("one-page edit wrote %d record chunks, want the few that hold the paths it changed", page.res.RecordChunks)
	}
	if atomicMode {
		if page.res.Base == "" || page.res.Uploaded > page.plan.WriteCount {
			t.Errorf("one-page edit in atomic mode: base %q, %d files put for %d changed paths; want a layer over the first deploy's tree", page.res.Base, page.res.Uploaded, page.plan.WriteCount)
		}
		if n := page.wire.Total(); n >= 50 {
			t.Errorf("one-page edit in atomic mode: %d requests, want under 50", n)
		}
		// On Fastly the layer also holds the unchanged 404 page: one copy more.
		pin := int64(0)
		if mode == modeFastly {
			pin = 1
		}
		if got := page.wire["CopyObject"].Requests; got != pin || int64(page.res.Layer) != int64(page.plan.WriteCount)+pin {
			t.Errorf("one-page edit, %s: %d CopyObject, a layer of %d paths for %d changed; want %d copies and the changed paths plus %d", mode, got, page.res.Layer, page.plan.WriteCount, pin, pin)
		}
	}
	css := res[scCSS]
	if css.plan.AssetCount != 1 || css.plan.WriteCount < b.pages {
		t.Errorf("CSS edit: %s; want one new asset (the stylesheet) and every page (%d) rewritten", css.plan.Summary(), b.pages)
	}
}

// TestClassify checks the HTTP request classifier on the requests the SDK sends.
func TestClassify(t *testing.T) {
	seen := map[string]string{}
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen[r.Method+" "+r.URL.RequestURI()] = Classify(r, true)
		mu.Unlock()
		switch {
		case r.Method == http.MethodGet && r.URL.Query().Get("list-type") == "2":
			w.Header().Set("Content-Type", "application/xml")
			fmt.Fprint(w, `<ListBucketResult><Name>b</Name><KeyCount>0</KeyCount><IsTruncated>false</IsTruncated></ListBucketResult>`)
		case r.Method == http.MethodPost:
			fmt.Fprint(w, `<DeleteResult></DeleteResult>`)
		case r.Header.Get("X-Amz-Copy-Source") != "":
			fmt.Fprint(w, `<CopyObjectResult><ETag>"x"</ETag></CopyObjectResult>`)
		default:
			w.Header().Set("ETag", `"x"`)
			fmt.Fprint(w, "")
		}
	}))
	defer srv.Close()
	tr := &Transport{PathStyle: true}
	ops := &Ops{}
	s, err := s3store.Open(t.Context(), s3store.Config{
		Bucket: "b", Endpoint: srv.URL, PathStyle: true,
		HTTPClient: &http.Client{Transport: tr},
		Middleware: []func(*middleware.Stack) error{ops.Middleware},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if _, err := store.PutBytes(ctx, s, "a/b c.html", []byte("hi"), store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := s.Copy(ctx, "a/b c.html", "d", store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	_, _ = s.Head(ctx, "d")
	if _, _, err := store.GetBytes(ctx, s, "d"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "d", "e"); err != nil {
		t.Fatal(err)
	}
	if err := s.List(ctx, "a/", func(store.Info) error { return nil }); err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{"HeadBucket": 1, "PutObject": 1, "CopyObject": 1, "HeadObject": 1, "GetObject": 1, "DeleteObjects": 1, "ListObjectsV2": 1}
	got := tr.Counts()
	for op, n := range want {
		if got[op].Requests != n {
			t.Errorf("%s: %d requests, want %d", op, got[op].Requests, n)
		}
	}
	if got.Total() != int64(len(want)) {
		t.Errorf("counted %s, want one of each of %v; requests seen: %v", compact(got), want, seen)
	}
	if got["PutObject"].BytesOut != 2 || got["GetObject"].BytesIn != 0 {
		t.Errorf("bytes: PutObject sent %d (want 2), GetObject received %d (want 0)", got["PutObject"].BytesOut, got["GetObject"].BytesIn)
	}
	if m := compare(got, ops.Counts()); m != "" {
		t.Errorf("HTTP and SDK counts differ: %s", m)
	}
	// Virtual-host addressing: the path is the key.
	for _, c := range []struct{ method, url, want string }{
		{"GET", "http://b.s3.example/?list-type=2&prefix=x", "ListObjectsV2"},
		{"GET", "http://b.s3.example/k/x.html?x-id=GetObject", "GetObject"},
		{"HEAD", "http://b.s3.example/", "HeadBucket"},
		{"GET", "http://b.s3.example/?location", "GET bucket?location"},
		{"PUT", "http://b.s3.example/k?tagging", "PUT key?tagging"},
	} {
		r := httptest.NewRequest(c.method, c.url, nil)
		if got := Classify(r, false); got != c.want {
			t.Errorf("Classify(%s %s) = %q, want %q", c.method, c.url, got, c.want)
		}
	}
}

// compare lists the operations whose HTTP and SDK counts differ ("" when none do).
func compare(wire, ops Counts) string {
	names := map[string]bool{}
	for k := range wire {
		names[k] = true
	}
	for k := range ops {
		names[k] = true
	}
	var diffs []string
	for _, k := range slices.Sorted(maps.Keys(names)) {
		if wire[k].Requests != ops[k].Requests {
			diffs = append(diffs, fmt.Sprintf("%s HTTP %d, SDK %d", k, wire[k].Requests, ops[k].Requests))
		}
	}
	return strings.Join(diffs, "; ")
}

// compact is "PutObject 3, GetObject 2" in a fixed order.
func compact(c Counts) string {
	var parts []string
	for _, k := range c.Names() {
		if c[k].Requests > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", k, c[k].Requests))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// The operations the table has a column for, in order; others go to "other".
var columns = []string{"PutObject", "CopyObject", "GetObject", "HeadObject", "ListObjectsV2", "DeleteObjects"}

// report formats the results as Markdown: one row per scenario with the median wall
// time, the plan, and the requests by operation of the median run.
func report(b builds, pages, runs int, mode string, all []map[string]sample, loadBefore, loadAfter string) string {
	var w strings.Builder
	fmt.Fprintf(&w, "stump publish benchmark, %s mode — %s, %d cores, %s, versitygw %s (posix backend, loopback), %d generated pages → %d files (%d HTML pages, %.1f MiB); %d run(s), each on a fresh bucket; load average before %s, after %s\n\n",
		mode, time.Now().UTC().Format("2006-01-02"), runtime.NumCPU(), runtime.Version(), versitygwVersion(), pages, b.files, b.pages, float64(b.bytes)/(1<<20), runs, loadBefore, loadAfter)
	fmt.Fprintf(&w, "| scenario | median wall (min–max) | client CPU | plan: new blobs / assets / copies / deletes | %s | other | total requests | sent / received |\n", strings.Join(columns, " | "))
	fmt.Fprintf(&w, "| --- | ---: | ---: | ---: |%s ---: | ---: | ---: |\n", strings.Repeat(" ---: |", len(columns)))
	var notes []string
	for _, sc := range scenarioOrder {
		if _, ok := all[0][sc]; !ok {
			continue
		}
		var walls, cpus []time.Duration
		for _, r := range all {
			walls = append(walls, r[sc].wall)
			cpus = append(cpus, r[sc].cpu)
		}
		med := medianRun(all, sc)
		s := med
		plan := "—"
		if s.plan != nil {
			p := s.plan
			plan = fmt.Sprintf("%d (%s) / %d / %d / %d", p.NewBlobs, mib(p.BlobBytes), p.AssetCount, p.WriteCount, p.DeleteCount)
		}
		cells := make([]string, 0, len(columns))
		known := map[string]bool{}
		for _, op := range columns {
			known[op] = true
			cells = append(cells, cell(s.wire[op]))
		}
		var other []string
		for _, op := range s.wire.Names() {
			if !known[op] && s.wire[op].Requests > 0 {
				other = append(other, op+" "+cell(s.wire[op]))
			}
		}
		if len(other) == 0 {
			other = []string{"0"}
		}
		out, in := s.wire.Bytes()
		label := sc
		if sc == scPage {
			label += " (`" + filepath.ToSlash(b.editedPage) + "`)"
		}
		fmt.Fprintf(&w, "| %s | %s (%s–%s) | %s | %s | %s | %s | %d | %s / %s |\n", label, secs(median(walls)), secs(slices.Min(walls)), secs(slices.Max(walls)),
			secs(median(cpus)), plan, strings.Join(cells, " | "), strings.Join(other, ", "), s.wire.Total(), mib(out), mib(in))
		if v := variation(all, sc); v != "" {
			notes = append(notes, fmt.Sprintf("%s: request counts varied across runs: %s.", sc, v))
		}
		for _, r := range all {
			if m := compare(r[sc].wire, r[sc].ops); m != "" {
				notes = append(notes, fmt.Sprintf("%s: the HTTP and SDK counts differ: %s.", sc, m))
				break
			}
		}
		if retried := retries(s); retried != "" {
			notes = append(notes, fmt.Sprintf("%s: requests beyond store calls (SDK or store retries): %s.", sc, retried))
		}
	}
	fmt.Fprintf(&w, "\nWall time is the median of %d run(s); client CPU is the median CPU time (user and system) the publishing process used during the deploy (the S3 server is another process). Request counts are HTTP requests on the wire, by S3 operation, of the median run; \"(n ≥300)\" counts answers with status 300 or more (HEAD 404 = blob not stored yet). A deploy is timed from reading the build manifest to Deployer.Publish returning (plan, lock, upload, record, materialize, commit, clean); building and opening the store (one HeadBucket) are not timed. Copies are server-side CopyObject to the live path; fingerprinted assets are PUT at their live path directly.\n", runs)
	if len(notes) > 0 {
		w.WriteString("\n")
		for _, n := range notes {
			w.WriteString("- " + n + "\n")
		}
	}
	if _, ok := all[0][scNaive]; ok {
		noop, naive := medianRun(all, scNoop), medianRun(all, scNaive)
		fmt.Fprintf(&w, "\nNo-op redeploy vs naive sync check: %d requests in %s vs %d requests in %s (%s).\n",
			noop.wire.Total(), secs(noop.wall), naive.wire.Total(), secs(naive.wall), naive.note)
	}
	return w.String()
}

func cell(c OpCount) string {
	if c.Failed > 0 {
		return fmt.Sprintf("%d (%d ≥300)", c.Requests, c.Failed)
	}
	return strconv.FormatInt(c.Requests, 10)
}

// medianRun is the sample of scenario sc whose wall time is the median (the lower
// middle one for an even count).
func medianRun(all []map[string]sample, sc string) sample {
	ss := make([]sample, len(all))
	for i, r := range all {
		ss[i] = r[sc]
	}
	sort.Slice(ss, func(i, j int) bool { return ss[i].wall < ss[j].wall })
	return ss[(len(ss)-1)/2]
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// variation names the operations whose counts differed between runs, with their range.
func variation(all []map[string]sample, sc string) string {
	ops := map[string]bool{}
	for _, r := range all {
		for k := range r[sc].wire {
			ops[k] = true
		}
	}
	var parts []string
	for _, op := range slices.Sorted(maps.Keys(ops)) {
		lo, hi := int64(math.MaxInt64), int64(0)
		for _, r := range all {
			n := r[sc].wire[op].Requests
			lo, hi = min(lo, n), max(hi, n)
		}
		if lo != hi {
			parts = append(parts, fmt.Sprintf("%s %d–%d", op, lo, hi))
		}
	}
	return strings.Join(parts, ", ")
}

// retries compares HTTP requests with Store calls; more requests than calls are retries.
func retries(s sample) string {
	pairs := []struct{ call, op string }{{"Put", "PutObject"}, {"Copy", "CopyObject"}, {"Get", "GetObject"}, {"Head", "HeadObject"}}
	var parts []string
	for _, p := range pairs {
		if n := s.wire[p.op].Requests - s.calls[p.call]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s +%d", p.op, n))
		}
	}
	return strings.Join(parts, ", ")
}

func secs(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }

func mib(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func envInt(t testing.TB, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a positive whole number", name, v)
	}
	return n
}

// loadAvg is the 1, 5 and 15 minute load averages, or "unknown".
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// versitygwVersion is the version scripts/services.sh installs.
func versitygwVersion() string {
	if v := os.Getenv("STUMP_BENCH_VERSITYGW"); v != "" {
		return v
	}
	return "v1.8.0"
}
