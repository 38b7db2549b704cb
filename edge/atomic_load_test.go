package edge

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/stump-dev/stump/build/config"
	"github.com/stump-dev/stump/internal/testenv"
	"github.com/stump-dev/stump/publish"
)

// atomicPages is the number of content pages of the site under load.
const atomicPages = 12

var (
	markRE  = regexp.MustCompile(`DEPLOY-MARK-(v\d+)`)
	cssRE   = regexp.MustCompile(`<link rel="stylesheet" href="([^"]+)"`)
	cssMark = regexp.MustCompile(`\.deploy-(v\d+)`)
)

// siteVersion is the content of version v of the site: every page carries the marker
// DEPLOY-MARK-<v> once (the description is set so the body text is not repeated in the
// head), and the CSS (fingerprinted by the build, so every page's link changes) carries
// a rule for ".deploy-<v>" (a rule: the minifier drops comments).
func siteVersion(t testing.TB, v string) map[string]string {
	t.Helper()
	css, err := os.ReadFile(filepath.Join("..", "themes", "campaign", "static", "css", "site.css"))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"sites/a/static/css/site.css": string(css) + "\n.deploy-" + v + " { outline: 1px solid red; }\n",
	}
	for i := 1; i <= atomicPages; i++ {
		files[fmt.Sprintf("sites/a/content/p/p%02d.md", i)] = fmt.Sprintf(
			"---\ntitle: Page %d\ndescription: Page number %d\n---\nBody of page %d, DEPLOY-MARK-%s.\n", i, i, i, v)
	}
	return files
}

// observation is one page fetch of the client, and the fetch of the CSS it links.
type observation struct {
	start, end time.Time
	path       string
	status     int
	err        string
	whole      bool   // ends with </html>
	marks      int    // deploy markers in the body
	version    string // the marker's version
	css        string // the stylesheet the page links
	cssStatus  int
	cssVersion string
}

// timeline records which deploys may be served from when on.
type timeline struct {
	mu     sync.Mutex
	at     []time.Time
	allow  [][]string
	labels []string
}

func (tl *timeline) set(label string, allowed ...string) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	tl.at = append(tl.at, time.Now())
	tl.allow = append(tl.allow, allowed)
	tl.labels = append(tl.labels, label)
}

// allowed returns the deploys that may answer a request that ran from start to end:
// those of every phase the request overlapped.
func (tl *timeline) allowed(start, end time.Time) (map[string]bool, string) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	out := map[string]bool{}
	var labels []string
	for i := range tl.at {
		if tl.at[i].After(end) {
			break
		}
		if i+1 < len(tl.at) && !tl.at[i+1].After(start) {
			continue
		}
		for _, v := range tl.allow[i] {
			out[v] = true
		}
		labels = append(labels, tl.labels[i])
	}
	return out, strings.Join(labels, " / ")
}

// TestAtomicUnderLoad publishes an atomic-mode site to versitygw with the CLI, serves it
// through Varnish running the generated VCL, and while a client fetches its pages (and
// the stylesheet each links) continuously: publishes v2, which changes every page; then
// kills a publish of v3 during the copies into its tree (copy:5), and another right
// after its pointer write (commit); then repairs with publish --break-lock. Every
// response must be whole and of one deploy, allowed by the phase it ran in.
func TestAtomicUnderLoad(t *testing.T) {
	env := testenv.S3(t)
	varnishd(t)
	bucket := testenv.NewBucket(t, env)
	testenv.EnableWebsite(t, env, bucket, "")
	proxy := newSwitchProxy(t, env.Website)
	bin := buildStump(t)
	target := cliTarget(env, bucket)
	cenv := cliEnv(env, "STUMP_PURGE_TOKEN="+testPurgeToken)

	ws := t.TempDir()
	siteYAML := "title: A\nbaseURL: https://a.test/\nlanguageCode: en\ntheme: campaign\n" +
		"menus:\n  main:\n    - { name: Home, url: /, weight: 1 }\n" +
		"target: " + target + "\ndeploy: { mode: atomic }\n" +
		"edge:\n  origin: http://" + proxy.addr + "\n  website_domain: " + env.WebsiteDomain + "\n  purgers: [127.0.0.1]\n  host: a.test\n" +
		"  probe: { interval: 1s, timeout: 1s, window: 3, threshold: 2 }\n"
	writeWS(t, ws, map[string]string{"stump.yaml": "output: public\n", "sites/a/site.yaml": siteYAML,
		"sites/a/content/_index.md": "---\ntitle: A\n---\nHome.\n"})
	writeWS(t, ws, siteVersion(t, "v1"))

	loaded, err := config.ReadSite(&config.Workspace{}, "a", filepath.Join(ws, "sites/a/site.yaml"), "sites/a/site.yaml")
	if err != nil {
		t.Fatal(err)
	}
	vcl, err := VCL(&config.Workspace{}, loaded)
	if err != nil {
		t.Fatal(err)
	}

	pub := func(extra ...string) []string {
		return append([]string{"publish", "--site", "a", "--json"}, extra...)
	}
	v1 := deployOf(t, runStump(t, bin, ws, cenv, 2*time.Minute, pub()...))
	v := testenv.VarnishWith(t, string(vcl), testenv.VarnishOptions{Env: []string{"STUMP_PURGE_TOKEN=" + testPurgeToken}})
	defer func() {
		if t.Failed() {
			t.Logf("varnishd folder: %s", v.Dir)
		}
	}()
	// From now on, every publish purges through this Varnish.
	writeWS(t, ws, map[string]string{"sites/a/site.yaml": siteYAML +
		"cdn:\n  - varnish: { endpoints: [\"" + v.URL + "\"], mode: xkey }\n"})

	client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 8},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	fetch := func(path string) (int, string, error) {
		req, err := http.NewRequest("GET", v.URL+path, nil)
		if err != nil {
			return 0, "", err
		}
		req.Host = "a.test"
		resp, err := client.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), err
	}
	observe := func(path string) observation {
		o := observation{path: path, start: time.Now()}
		status, body, err := fetch(path)
		o.status = status
		if err != nil {
			o.err = err.Error()
			o.end = time.Now()
			return o
		}
		o.whole = strings.HasSuffix(strings.TrimSpace(body), "</html>")
		ms := markRE.FindAllStringSubmatch(body, -1)
		o.marks = len(ms)
		if len(ms) > 0 {
			o.version = ms[0][1]
		}
		if m := cssRE.FindStringSubmatch(body); m != nil {
			o.css = m[1]
			cs, cb, err := fetch(m[1])
			o.cssStatus = cs
			if err != nil {
				o.err = "css: " + err.Error()
			}
			if cm := cssMark.FindStringSubmatch(cb); cm != nil {
				o.cssVersion = cm[1]
			}
		}
		o.end = time.Now()
		return o
	}

	tl := &timeline{}
	tl.set("v1 live", "v1")
	first := observe("/p/p01/")
	if first.status != 200 || first.version != "v1" || first.cssStatus != 200 {
		t.Fatalf("v1 through Varnish: %+v", first)
	}

	// The client: a few goroutines fetching every page in turn, and the CSS each links,
	// for the whole test.
	ctx, stop := context.WithCancel(context.Background())
	var (
		mu  sync.Mutex
		obs []observation
		wg  sync.WaitGroup
	)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; ctx.Err() == nil; i++ {
				o := observe(fmt.Sprintf("/p/p%02d/", i%atomicPages+1))
				mu.Lock()
				obs = append(obs, o)
				mu.Unlock()
			}
		}()
	}
	stopClient := func() {
		stop()
		wg.Wait()
	}
	defer stopClient()
	settle := func() { time.Sleep(1500 * time.Millisecond) }
	settle()

	// v2 changes every page (and the CSS, so every page's link).
	writeWS(t, ws, siteVersion(t, "v2"))
	tl.set("publishing v2", "v1", "v2")
	v2 := deployOf(t, runStump(t, bin, ws, cenv, 2*time.Minute, pub()...))
	tl.set("v2 live", "v2")
	settle()
	// A visitor whose browser still holds a page of v1 (max-age=60) asks for its
	// stylesheet: in place, old fingerprinted assets stay until gc; the atomic edge
	// should serve them too.
	if status, _, err := fetch(first.css); err != nil || status != 200 {
		engineIssue(t, "after the switch to v2, v1's stylesheet %s (linked by v1 pages still in browsers for max-age=60) answers %d %v: "+
			"tree %s holds only v2's assets, the edge resolves every path in the live tree, and the purge of a switch that changes most pages is the site key, "+
			"which drops the cached copy", first.css, status, err, v2)
	}

	// v3: killed while copying into its tree, then killed right after its pointer write.
	writeWS(t, ws, siteVersion(t, "v3"))
	killed := runStump(t, bin, ws, append(cenv, "STUMP_FAULT_KILL_AT=copy:5"), 2*time.Minute, pub()...)
	if killed.signal != syscall.SIGKILL {
		t.Fatalf("STUMP_FAULT_KILL_AT=copy:5: want the publish killed: %s", killed)
	}
	settle()
	checkServes(t, "after the kill at copy:5", fetch, "v2")
	if id := readLive(t, env, bucket); id != v2 {
		t.Errorf("after the kill at copy:5, _stump/live names %q, want v2 %s", id, v2)
	}

	killed = runStump(t, bin, ws, append(cenv, "STUMP_FAULT_KILL_AT=commit"), 2*time.Minute, pub("--break-lock")...)
	if killed.signal != syscall.SIGKILL {
		t.Fatalf("STUMP_FAULT_KILL_AT=commit: want the publish killed: %s", killed)
	}
	settle()
	// The pointer names v3 but _stump/live, which the edge reads, still names v2: the
	// edge serves v2 whole until a publish repairs _stump/live.
	checkServes(t, "after the kill at commit", fetch, "v2")
	st := runStump(t, bin, ws, cenv, time.Minute, "status", "--site", "a", "--json")
	var status publish.Status
	if err := json.Unmarshal([]byte(st.stdout), &status); err != nil {
		t.Fatalf("status --json: %v: %s", err, st)
	}
	v3 := status.Pointer.Live
	if v3 == "" || v3 == v2 || v3 == v1 {
		t.Errorf("after the kill at commit, the pointer names %q, want the new deploy (not v1 %s or v2 %s)", v3, v1, v2)
	}
	if id := readLive(t, env, bucket); id != v2 {
		t.Errorf("after the kill at commit, _stump/live names %q, want v2 %s (it is written after the pointer)", id, v2)
	}

	// publish --break-lock finds nothing to upload, rewrites _stump/live and purges the
	// pointer key: v3 goes live.
	tl.set("repairing _stump/live", "v2", "v3")
	repair := runStump(t, bin, ws, cenv, 2*time.Minute, pub("--break-lock")...)
	if repair.code != 0 {
		t.Fatalf("publish --break-lock after the kill at commit: %s", repair)
	}
	// What the design promises is v3, whole, on every page. The engine's repair purges
	// only the pointer key, not the URLs v3 changed, so pages the edge cached from v2's
	// tree (all of them, under this client) stay v2 until their TTL runs out: a site
	// half v2, half v3. Until the engine purges those URLs too, this is logged, not
	// failed; every page must still be whole and link a stylesheet that resolves.
	tl.set("after the repair", "v3")
	if id := readLive(t, env, bucket); id != v3 {
		t.Errorf("after publish --break-lock, _stump/live names %q, want %s", id, v3)
	}
	settle()
	if seen := checkServes(t, "after the repair", fetch, "v2", "v3"); seen["v2"] > 0 {
		engineIssue(t, "after the kill at commit, publish --break-lock rewrote _stump/live to %s and purged %s only; "+
			"pages cached from the old tree are still served: %d of %d pages v2, %d v3", v3, publish.PointerKey("a"), seen["v2"], atomicPages, seen["v3"])
	}
	// A page the edge never cached comes from the new tree.
	if status, body, err := fetch("/p/"); err != nil || status != 200 {
		t.Errorf("after the repair: GET /p/: %d %v", status, err)
	} else if !strings.Contains(body, "Page 1") {
		t.Errorf("after the repair: /p/ does not list the pages")
	}
	stopClient()

	// Every response the client saw.
	bad := 0
	versions := map[string]int{}
	var staleAfterRepair, oldCSS404 int
	var oldCSSSample string
	for _, o := range obs {
		allowed, phases := tl.allowed(o.start, o.end)
		if !allowed[o.version] && o.version == "v2" && phases == "after the repair" {
			staleAfterRepair++ // the known engine issue above
			allowed = map[string]bool{"v2": true}
		}
		newer := false
		for v := range allowed {
			newer = newer || v > o.version
		}
		if o.cssStatus == 404 && o.status == 200 && o.cssVersion == "" && o.version != "" && newer {
			// A page of the old deploy at the switch, whose stylesheet is gone from the
			// edge: the known engine issue about old assets in atomic mode.
			oldCSS404++
			if oldCSSSample == "" {
				oldCSSSample = fmt.Sprintf("GET %s (page of %s) then %s: 404 during %s", o.path, o.version, o.css, phases)
			}
			o.cssStatus, o.cssVersion = 200, o.version
		}
		var why []string
		switch {
		case o.err != "":
			why = append(why, o.err)
		case o.status != 200:
			why = append(why, fmt.Sprintf("status %d", o.status))
		default:
			if !o.whole {
				why = append(why, "body does not end with </html>")
			}
			if o.marks != 1 {
				why = append(why, fmt.Sprintf("%d deploy markers", o.marks))
			}
			if !allowed[o.version] {
				why = append(why, "deploy "+o.version+" served during "+phases)
			}
			if o.css == "" {
				why = append(why, "no stylesheet link")
			} else if o.cssStatus != 200 {
				why = append(why, fmt.Sprintf("page of %s links stylesheet %s: status %d (during %s)", o.version, o.css, o.cssStatus, phases))
			} else if o.cssVersion != o.version {
				why = append(why, fmt.Sprintf("stylesheet %s is of %s", o.css, o.cssVersion))
			}
		}
		versions[o.version]++
		if len(why) > 0 {
			bad++
			if bad <= 20 {
				t.Errorf("GET %s at +%s: %s", o.path, o.start.Sub(tl.at[0]).Round(time.Millisecond), strings.Join(why, "; "))
			}
		}
	}
	if staleAfterRepair > 0 {
		engineIssue(t, "%d client fetches after the repair got a page of v2 (cached from the old tree, not purged)", staleAfterRepair)
	}
	if oldCSS404 > 0 {
		engineIssue(t, "%d client fetches at a switch got a page of the old deploy whose stylesheet the edge answered 404, e.g. %s", oldCSS404, oldCSSSample)
	}
	for i := range tl.at {
		t.Logf("phase %q from +%s", tl.labels[i], tl.at[i].Sub(tl.at[0]).Round(time.Millisecond))
	}
	t.Logf("%d page fetches (each with its stylesheet), by deploy: %v; %d bad; %d origin requests", len(obs), versions, bad, proxy.requests.Load())
	if versions["v1"] == 0 || versions["v2"] == 0 {
		t.Errorf("the client did not see every deploy: %v", versions)
	}
}

// engineIssue fails the test on a defect of the engine this test found once (the
// repair after a kill at commit purging too little; old assets lost on a switch).
func engineIssue(t *testing.T, format string, args ...any) {
	t.Helper()
	t.Errorf("engine: "+format, args...)
}

// checkServes fetches every page (and its CSS) once: each must be whole, of one of the
// deploys want, and link a stylesheet of the same deploy that resolves. It returns the
// pages served by deploy.
func checkServes(t *testing.T, when string, fetch func(string) (int, string, error), want ...string) map[string]int {
	t.Helper()
	seen := map[string]int{}
	for i := 1; i <= atomicPages; i++ {
		p := fmt.Sprintf("/p/p%02d/", i)
		status, body, err := fetch(p)
		ms := markRE.FindAllStringSubmatch(body, -1)
		if err != nil || status != 200 || len(ms) != 1 || !slices.Contains(want, ms[0][1]) || !strings.HasSuffix(strings.TrimSpace(body), "</html>") {
			t.Errorf("%s: GET %s: %d %v, deploy markers %v, want one of %v and a whole page", when, p, status, err, ms, want)
			continue
		}
		seen[ms[0][1]]++
		if c := cssRE.FindStringSubmatch(body); c == nil {
			t.Errorf("%s: %s links no stylesheet", when, p)
		} else if status, css, err := fetch(c[1]); err != nil || status != 200 {
			t.Errorf("%s: %s links %s: %d %v", when, p, c[1], status, err)
		} else if m := cssMark.FindStringSubmatch(css); m == nil || m[1] != ms[0][1] {
			t.Errorf("%s: %s (deploy %s) links %s of deploy %v", when, p, ms[0][1], c[1], m)
		}
	}
	return seen
}

// readLive reads _stump/live from the bucket: the deploy the edge serves.
func readLive(t *testing.T, env testenv.S3Env, bucket string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := env.Client().GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("_stump/live")})
	if err != nil {
		t.Fatalf("read _stump/live: %v", err)
	}
	defer out.Body.Close()
	if id := out.Metadata["deploy"]; id != "" {
		return id
	}
	b, _ := io.ReadAll(out.Body)
	return strings.TrimSpace(string(b))
}
