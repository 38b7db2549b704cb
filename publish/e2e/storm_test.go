package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/stump-dev/stump/internal/testenv"
	"github.com/stump-dev/stump/publish"
)

const (
	stormRounds  = 30 // commands per mode, kills and recoveries included
	stormPerSect = 8  // pages per section
	stormHost    = "storm.test"
	stormSite    = "s"
	// stormMaxFailures stops a mode's storm early once this many checks have failed:
	// the report is long enough by then.
	stormMaxFailures = 20
)

var stormSections = []string{"news", "events", "docs"}

// The markers the checks look for: each page's revision, the stylesheet's revision.
var (
	stormPageRE = regexp.MustCompile(`storm-([a-z]+)-(\d+)-rev-(\d+)-end`)
	stormCSSRE  = regexp.MustCompile(`storm-css-rev-(\d+)`)
	stormLinkRE = regexp.MustCompile(`<link rel="stylesheet" href="([^"]+)"`)
)

// stormKillSteps are the STUMP_FAULT_KILL_AT steps (see killAt in internal/cli); put
// and copy take a random N. A step a publish does not reach (nothing to upload, a step
// of the other mode) lets it finish: that round is then a clean publish.
var stormKillSteps = []string{"lock", "put", "upload", "record", "mark", "copy", "materialize", "commit", "purge", "clean"}

// TestKillStorm is issue 13's acceptance test. In each mode (in place, atomic), a site
// of 29 pages (three sections, a fingerprinted stylesheet every page links) is published
// again and again from a workspace whose pages and stylesheet change between rounds,
// while a crawler reads it through a real Varnish running the VCL `stump edge vcl`
// generates, which publish purges (xkey, hard purges: a purged URL is fresh at once).
// Each round is one of: a publish SIGKILLed at a random protocol step
// (STUMP_FAULT_KILL_AT), a publish SIGKILLed after a random delay, a publish stopped
// (SIGSTOP) while it holds the lock, whose lease then expires and is broken by another
// publish before it resumes (finding 2), a clean publish, a rollback; the command after a
// kill recovers with --break-lock, by a publish or a rollback. It checks:
//
//   - no broken page, ever: every page and every asset a page links answers 200 through
//     Varnish (the crawler, for the whole storm);
//   - no stale page after a command that succeeded: every URL of the live deploy serves,
//     through Varnish, the bytes the live deploy's record names (sha256 per path).
//     Publish exit 3 (purge pending) allows stale pages until the next publish that
//     exits 0; the test logs when it skips the check for that reason. After a stale
//     page, the whole site is banned from Varnish and checked again, which tells a stale
//     edge from a wrong live tree, and keeps one defect from being reported twice;
//   - a successful publish made the workspace's current content live (every page shows
//     its latest edit, the stylesheet its latest rule);
//   - a rollback makes live the deploy it should: after a killed publish that left a
//     trace (its lease, an interrupted pointer, its commit), the deploy that was live
//     before it (issue 13: "a rollback of a killed publish undoes the killed one, never
//     a committed one"), else the live deploy's parent;
//   - after each recovery, `stump verify` exits 0, the killed publish's lease is gone and
//     the pointer is clean; after a stopped publish resumes, the deploy that broke its
//     lease is still live, whole, and served;
//   - at the end, `stump verify` exits 0.
//
// Failures name the round, the command (with $TARGET for the target URL, logged once),
// the URL, what was served (status, size, sha256, X-Cache, Age, and which deploy those
// bytes belong to) and what was expected, and the finding of issue 13 they match. The
// seed of the random choices is logged; STUMP_STORM_SEED=N replays the same choices
// (kills after a delay and pauses still depend on timing).
func TestKillStorm(t *testing.T) {
	env := testenv.S3(t)
	if env.Website == "" {
		unavailable := "the S3 test server has no website endpoint (scripts/services.sh starts one)"
		if os.Getenv("CI") == "true" {
			t.Fatal(unavailable)
		}
		t.Skip(unavailable)
	}
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("STUMP_STORM_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("STUMP_STORM_SEED=%q: %v", v, err)
		}
		seed = n
	}
	t.Logf("kill storm seed %d (replay the same choices with STUMP_STORM_SEED=%d)", seed, seed)
	for i, mode := range []string{publish.ModeInPlace, publish.ModeAtomic} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			newStorm(t, env, mode, rand.New(rand.NewPCG(seed, uint64(i)))).run()
		})
	}
}

// storm is one mode's run.
type storm struct {
	t      *testing.T
	env    testenv.S3Env
	mode   string
	rng    *rand.Rand
	ws     string
	bucket string
	target string
	cenv   []string
	edge   *http.Client // sends every request to Varnish

	baseCSS string
	revs    map[string]int // "news/3" -> the page's revision in the workspace
	cssRev  int
	records map[string]*publish.Record
	// deployIDs lists the target's deploy records for whose (nil: not listed yet).
	deployIDs []string
	// purgeOwed: a publish exited 3; stale pages are allowed until a publish exits 0.
	purgeOwed bool
	pubTimes  []time.Duration // clean publishes, for the delays of random kills
	lockTimes []time.Duration // from lock to exit, for the pauses
	phase     atomic.Pointer[string]
	failures  int
	damaged   string // the check that found the live tree wrong, until a verify passes
	stats     map[string]int
}

func newStorm(t *testing.T, env testenv.S3Env, mode string, rng *rand.Rand) *storm {
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	css, err := os.ReadFile(filepath.Join(root, "themes", "campaign", "static", "css", "site.css"))
	if err != nil {
		t.Fatal(err)
	}
	s := &storm{t: t, env: env, mode: mode, rng: rng, ws: filepath.Join(t.TempDir(), "ws"), baseCSS: string(css),
		revs: map[string]int{}, records: map[string]*publish.Record{}, stats: map[string]int{}}
	s.bucket = testenv.NewBucket(t, env)
	testenv.EnableWebsite(t, env, s.bucket, "")
	s.target = targetURL(s.bucket, env.Endpoint)
	s.cenv = cliEnv(env, "STUMP_PURGE_TOKEN="+stormPurgeToken)
	t.Logf("[%s] TARGET=%s", mode, s.target)
	return s
}

// siteYAML is the site's config; cdn is the Varnish to purge ("" for none yet).
// stormPurgeToken is the purge token varnishd and stump share in the storm.
const stormPurgeToken = "storm-purge-token-0123456789"

func (s *storm) siteYAML(varnishURL string) string {
	y := "title: Storm\nbaseURL: https://" + stormHost + "/\nlanguageCode: en\ntheme: campaign\n" +
		"menus:\n  main:\n    - { name: Home, url: /, weight: 1 }\n"
	for i, sec := range stormSections {
		y += fmt.Sprintf("    - { name: %s, url: /%s/, weight: %d }\n", sec, sec, i+2)
	}
	y += "target: " + s.target + "\ndeploy: { mode: " + s.mode + " }\n" +
		"edge:\n  origin: " + s.env.Website + "\n  website_domain: " + s.env.WebsiteDomain + "\n  host: " + stormHost + "\n" +
		"  probe: { interval: 1s, timeout: 1s, window: 3, threshold: 2 }\n" +
		"  purgers: [127.0.0.1]\n"
	if varnishURL != "" {
		// Hard purges: a purged URL is fetched again at once, never served stale by grace.
		y += "cdn:\n  - varnish: { endpoints: [\"" + varnishURL + "\"], mode: xkey }\n"
	}
	return y
}

func (s *storm) pageFile(name string) (string, string) {
	sec, n, _ := strings.Cut(name, "/")
	body := fmt.Sprintf("---\ntitle: %s %s\ndate: 2024-01-%02s\ndescription: Page %s of %s\n---\nBody of %s %s: storm-%s-%s-rev-%d-end.\n",
		sec, n, n, n, sec, sec, n, sec, n, s.revs[name])
	return "sites/" + stormSite + "/content/" + sec + "/p" + n + ".md", body
}

func (s *storm) cssFile() (string, string) {
	return "sites/" + stormSite + "/static/css/site.css",
		s.baseCSS + fmt.Sprintf("\n.storm-css-rev-%d { outline: 1px solid red; }\n", s.cssRev)
}

func (s *storm) write(files map[string]string) {
	s.t.Helper()
	if err := writeFiles(s.ws, files); err != nil {
		s.t.Fatal(err)
	}
}

// setUp writes the workspace, starts Varnish with the generated VCL and publishes the
// first deploy.
func (s *storm) setUp() {
	t := s.t
	files := map[string]string{
		"stump.yaml":                                "output: public\n",
		"sites/" + stormSite + "/site.yaml":         s.siteYAML(""),
		"sites/" + stormSite + "/content/_index.md": "---\ntitle: Storm\n---\nThe storm site.\n",
	}
	for _, sec := range stormSections {
		files["sites/"+stormSite+"/content/"+sec+"/_index.md"] = "---\ntitle: " + sec + "\n---\nThe " + sec + " section.\n"
		for i := 1; i <= stormPerSect; i++ {
			name := fmt.Sprintf("%s/%d", sec, i)
			s.revs[name] = 0
			p, b := s.pageFile(name)
			files[p] = b
		}
	}
	p, b := s.cssFile()
	files[p] = b
	s.write(files)

	vcl := mustStump(t, s.ws, s.cenv, "edge", "vcl", "--site", stormSite).stdout
	// The edge's VCL takes purges only from the purgers ACL with the shared token.
	v := testenv.VarnishWith(t, vcl, testenv.VarnishOptions{Env: []string{"STUMP_PURGE_TOKEN=" + stormPurgeToken}})
	s.edge = v.Client()
	s.write(map[string]string{"sites/" + stormSite + "/site.yaml": s.siteYAML(v.URL)})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("varnishd folder: %s (varnishlog -n %s -d)", v.Dir, v.Dir)
		}
	})
}

func (s *storm) run() {
	t := s.t
	s.setUp()
	first := s.exec(stormCmd{kind: "publish", args: s.publishArgs(false)})
	if first.code != 0 {
		t.Fatalf("the first publish: want exit 0: %s", first)
	}
	// The VCL's health probe marks the origin healthy after its first good probes; until
	// then Varnish answers 503. Nothing is asked of Varnish before the first deploy: the
	// 404 it would cache (for the path and for /404.html, tagged with their URL keys
	// only) outlives the first deploy's purge, which is by the site's key.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		status, _, _, err := s.get("/")
		if err == nil && status != http.StatusServiceUnavailable {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Varnish still answers %d %v after 30s: its probe finds the origin %s sick", status, err, s.env.Website)
		}
	}
	st := s.status()
	if !s.checkFresh("["+s.mode+"] the first publish", "", st, true, false) {
		t.Fatal("the edge does not serve the first deploy: the harness or the setup is wrong")
	}

	label := "the first deploy"
	s.phase.Store(&label)
	pages := s.pageURLs()
	w := &webCrawl{client: s.edge, url: func(p string) string { return "http://" + stormHost + p }, strict: true,
		seed: func(context.Context) ([]string, error) { return pages, nil }}
	cr := runCrawler(func(ctx context.Context) (int, []string, error) {
		before := *s.phase.Load()
		n, broken, err := w.crawl(ctx)
		during := before
		if after := *s.phase.Load(); after != before {
			during += " … " + after
		}
		for i := range broken {
			broken[i] = "[" + s.mode + "] during " + during + ": " + broken[i]
		}
		if err != nil {
			err = fmt.Errorf("[%s] during %s: %w", s.mode, during, err)
		}
		return n, broken, err
	})
	crawling := true
	defer func() {
		if crawling {
			cr.stop(t)
		}
	}()

	var killed *stormKill // the previous command was killed: this one recovers
	needBreak := false    // a command failed and may have left its lease
	// The storm does not end on a kill: a last round recovers from it.
	for round := 1; (round <= stormRounds || killed != nil) && s.failures < stormMaxFailures; round++ {
		before := st
		c := s.choose(killed, before)
		if c.kind == "publish" {
			s.edit()
		}
		if killed != nil || needBreak {
			c.args = append(c.args, "--break-lock")
		}
		c.target = s.target
		c.label = fmt.Sprintf("round %d: %s", round, c.describe())
		s.phase.Store(&c.label)
		if c.pause > 0 || c.twice {
			var ok bool
			if c.twice {
				st, ok = s.raceRound(c, before)
			} else {
				st, ok = s.pauseRound(round, c, before)
			}
			killed, needBreak = nil, !ok
			continue
		}
		r := s.exec(c)
		st = s.status()
		s.stats[c.kind+" commands"]++
		s.t.Logf("[%s] %s: %s; live %s → %s (state %s)", s.mode, c.label, r.how(), before.Pointer.Live, st.Pointer.Live, st.Pointer.State)

		if r.signal == syscall.SIGKILL && c.killed() {
			s.stats["kills"]++
			killed = &stormKill{label: c.label, before: before.Pointer.Live, pid: r.pid,
				committed: st.Pointer.Live != before.Pointer.Live,
				trace: st.Pointer.Live != before.Pointer.Live || st.Pointer.State != publish.StateLive ||
					(st.Lock != nil && st.Lock.PID == r.pid)}
			if !killed.trace {
				s.stats["kills that left no trace (during the build)"]++
			}
			needBreak = false
			continue
		}
		if r.code != 0 && r.code != exitPurgePending {
			s.fail("%s [%s]: want exit 0 (or 3): %s", c.label, s.mode, r)
			killed, needBreak = nil, true
			continue
		}
		if c.killed() {
			s.stats["kills that did not happen (the publish finished first or never reached the step)"]++
		}
		recovered := killed
		killed, needBreak = nil, false
		s.checkSuccess(c, r, before, st, recovered)
	}

	crawling = false
	s.phase.Store(ptr("the end"))
	cr.stop(t)
	s.verify("["+s.mode+"] at the end of the storm", "")
	keys := make([]string, 0, len(s.stats))
	for k := range s.stats {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var sum []string
	for _, k := range keys {
		sum = append(sum, fmt.Sprintf("%s %d", k, s.stats[k]))
	}
	t.Logf("[%s] storm: %s", s.mode, strings.Join(sum, ", "))
	if s.failures >= stormMaxFailures {
		t.Errorf("[%s] stopped the storm after %d failed checks", s.mode, s.failures)
	}
}

func ptr(s string) *string { return &s }

// exitPurgePending is publish's exit code for "published, but the purge is pending"
// (cli.ExitPurgePending).
const exitPurgePending = 3

// stormKill is a publish the storm killed.
type stormKill struct {
	label     string
	before    string // the deploy live before it
	pid       int
	committed bool // its pointer write happened: its deploy is live
	// trace: it left something a later command can see (its lease, an interrupted
	// pointer, its commit). A publish killed while building leaves nothing: a rollback
	// after it is an ordinary rollback.
	trace bool
}

// stormCmd is one command of the storm.
type stormCmd struct {
	kind      string // "publish" or "rollback"
	args      []string
	killAt    string        // STUMP_FAULT_KILL_AT
	killAfter time.Duration // SIGKILL after this delay
	// pause: SIGSTOP the publish after this fraction of the time publishes hold the lock
	// (see pauseRound).
	pause float64
	// pauseAtMark: SIGSTOP it as soon as the pointer says it is materializing instead.
	pauseAtMark bool
	// twice: two of it at once, from the same workspace (see raceRound).
	twice    bool
	label    string
	target   string // shown as $TARGET
	recovery bool
	// want is the deploy a rollback must make live, and why.
	want, wantWhy string
}

func (c stormCmd) killed() bool { return c.killAt != "" || c.killAfter > 0 }

func (c stormCmd) describe() string {
	var b strings.Builder
	b.WriteString("stump " + strings.Join(c.args, " "))
	if c.target != "" {
		s := strings.ReplaceAll(b.String(), c.target, "$TARGET")
		b.Reset()
		b.WriteString(s)
	}
	switch {
	case c.killAt != "":
		fmt.Fprintf(&b, " with STUMP_FAULT_KILL_AT=%s", c.killAt)
	case c.killAfter > 0:
		fmt.Fprintf(&b, " killed after %s", c.killAfter.Round(time.Millisecond))
	case c.twice:
		b.WriteString(", twice at once from the same workspace")
	case c.pauseAtMark:
		b.WriteString(" stopped (SIGSTOP) as soon as the pointer says it is materializing")
	case c.pause > 0:
		fmt.Fprintf(&b, " stopped (SIGSTOP) at %.0f%% of its time holding the lock", 100*c.pause)
	}
	if c.recovery {
		b.WriteString(" (recovering from the kill)")
	}
	return b.String()
}

func (s *storm) publishArgs(breakLock bool) []string {
	a := []string{"publish", "--site", stormSite, "--target", s.target}
	if breakLock {
		a = append(a, "--break-lock")
	}
	return a
}

// choose picks the next command. After a kill: a publish or a rollback (which must undo
// the killed publish). Otherwise: a publish killed at a step, a publish killed after a
// delay, a clean publish, or a rollback.
func (s *storm) choose(killed *stormKill, before *publish.Status) stormCmd {
	parent := ""
	if before.Live != nil {
		parent = before.Live.Parent
	}
	rollback := func() stormCmd {
		c := stormCmd{kind: "rollback", args: []string{"rollback", "--site", stormSite, "--target", s.target}}
		switch {
		case killed != nil && killed.trace:
			c.want = killed.before
			c.wantWhy = "the deploy live before the killed publish (" + killed.label + "): a rollback after a killed publish undoes the killed one, never a committed one"
		default:
			c.want = parent
			c.wantWhy = "the parent of the live deploy " + before.Pointer.Live
		}
		return c
	}
	if killed != nil {
		if s.rng.IntN(100) < 45 && (killed.trace || parent != "") {
			c := rollback()
			c.recovery = true
			return c
		}
		return stormCmd{kind: "publish", args: s.publishArgs(false), recovery: true}
	}
	switch n := s.rng.IntN(100); {
	case n < 8:
		return stormCmd{kind: "publish", args: s.publishArgs(false), twice: true}
	case n < 38:
		step := stormKillSteps[s.rng.IntN(len(stormKillSteps))]
		switch step {
		case "put":
			step += ":" + strconv.Itoa(1+s.rng.IntN(3))
		case "copy":
			step += ":" + strconv.Itoa(1+s.rng.IntN(8))
		}
		return stormCmd{kind: "publish", args: s.publishArgs(false), killAt: step}
	case n < 55:
		return stormCmd{kind: "publish", args: s.publishArgs(false), killAfter: s.killDelay()}
	case n < 70:
		c := stormCmd{kind: "publish", args: s.publishArgs(false), pause: 0.05 + 0.75*s.rng.Float64()}
		// In place, half the pauses wait for the pointer to say "materializing": the
		// stopped publish is then in the middle of its copies into the live tree.
		c.pauseAtMark = s.mode == publish.ModeInPlace && s.rng.IntN(2) == 0
		return c
	case n < 84 || parent == "":
		return stormCmd{kind: "publish", args: s.publishArgs(false)}
	default:
		return rollback()
	}
}

// pauseRound plays issue 13's finding 2 (no fencing) in the storm: publish A is stopped
// (SIGSTOP) a while after it took the lock, as a laptop lid or a stalled CI runner
// stops it; it runs with a two-second lease (STUMP_LOCK_TTL) so that the test can wait
// for it to run out for real, and publish B, with new edits, breaks it with
// --break-lock and commits. Then A is resumed. A must not change anything live after
// its lease was broken: once A has ended (however), B's deploy is live, verify passes,
// the lock is free and the edge serves B. It returns the status after the round and
// whether every check passed. A that ends before it could be stopped makes the round an
// ordinary publish.
func (s *storm) pauseRound(round int, a stormCmd, before *publish.Status) (*publish.Status, bool) {
	t := s.t
	t.Helper()
	failed := s.failures
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd, out, errb := start(t, ctx, s.ws, append(append([]string(nil), s.cenv...), "STUMP_LOCK_TTL=2s"), a.args...)
	waited := make(chan error, 1)
	var endedAt atomic.Int64 // unix nanoseconds
	go func() {
		err := cmd.Wait()
		endedAt.Store(time.Now().UnixNano())
		waited <- err
	}()
	finish := func() cliRun {
		t.Helper()
		r, err := ended(cmd, out, errb, <-waited)
		if err != nil {
			t.Fatal(err)
		}
		if ctx.Err() != nil {
			t.Fatalf("%s: timed out: %s", a.label, r)
		}
		return r
	}
	ordinary := func(why string) (*publish.Status, bool) {
		t.Helper()
		r := finish()
		st := s.status()
		s.stats["pauses that did not happen ("+why+")"]++
		s.t.Logf("[%s] %s: %s: %s; live %s → %s", s.mode, a.label, why, r.how(), before.Pointer.Live, st.Pointer.Live)
		if r.code != 0 && r.code != exitPurgePending {
			s.fail("%s [%s]: want exit 0 (or 3): %s", a.label, s.mode, r)
			return st, false
		}
		s.checkSuccess(a, r, before, st, nil)
		return st, s.failures == failed
	}

	// Wait until A holds the lock, then let it run a while.
	pid := cmd.Process.Pid
	var locked time.Time
	stopped := false
	defer func() {
		if at := endedAt.Load(); at > 0 && !locked.IsZero() && !stopped {
			s.lockTimes = append(s.lockTimes, time.Unix(0, at).Sub(locked))
		}
	}()
	for {
		if l := s.readLease(); l != nil && l.PID == pid {
			locked = time.Now()
			break
		}
		select {
		case err := <-waited:
			waited <- err
			return ordinary("it ended before it took the lock")
		case <-time.After(2 * time.Millisecond):
		}
	}
	if a.pauseAtMark {
		for p := s.readPointer(); p.State != publish.StateMaterializing || p.Pending == before.Pointer.Pending; p = s.readPointer() {
			select {
			case err := <-waited:
				waited <- err
				return ordinary("it ended before the pointer said materializing")
			default:
			}
		}
	} else {
		time.Sleep(time.Duration(a.pause * float64(s.lockTime())))
	}
	if err := cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		return ordinary("it ended before it was stopped")
	}
	resumed := false
	resume := func() {
		if !resumed {
			resumed = true
			_ = cmd.Process.Signal(syscall.SIGCONT)
		}
	}
	defer resume()
	lease := s.readLease()
	if lease == nil || lease.PID != pid {
		resume()
		return ordinary("it released the lock before it was stopped")
	}
	s.stats["publishes stopped past their lease"]++
	stopped = true
	s.waitLeaseExpired()

	// B: new edits, published over A's broken lease.
	s.edit()
	b := stormCmd{kind: "publish", args: s.publishArgs(true), target: s.target}
	b.label = fmt.Sprintf("round %d: %s (while the round's first publish, pid %d, is stopped and its lease has expired)", round, b.describe(), pid)
	s.phase.Store(&b.label)
	r := s.exec(b)
	stB := s.status()
	s.t.Logf("[%s] %s: %s; live %s → %s", s.mode, b.label, r.how(), before.Pointer.Live, stB.Pointer.Live)
	if r.code != 0 && r.code != exitPurgePending {
		s.fail("%s [%s]: want exit 0 (or 3): %s", b.label, s.mode, r)
		resume()
		finish()
		return s.status(), false
	}
	s.checkSuccess(b, r, before, stB, nil)

	// A resumes; whatever it does, it must not touch what B made live.
	label := fmt.Sprintf("round %d: the first publish (pid %d), resumed (SIGCONT) after %s committed %s", round, pid, "the second", stB.Pointer.Live)
	s.phase.Store(&label)
	resume()
	ra := finish()
	st := s.status()
	s.t.Logf("[%s] %s: %s; live %s; its stderr: %s", s.mode, label, ra.how(), st.Pointer.Live, strings.TrimSpace(ra.stderr))
	what := fmt.Sprintf("%s [%s] (%s; live %s → %s)", label, s.mode, ra.how(), stB.Pointer.Live, st.Pointer.Live)
	const finding2 = "issue 13 finding 2: no fencing: a publish whose lease was broken goes on writing"
	if st.Pointer.Live != stB.Pointer.Live {
		s.fail("%s: %s is live, want %s, which the second publish committed after breaking the first one's lease (%s)\nthe first publish: %s", what, st.Pointer.Live, stB.Pointer.Live, finding2, ra)
	}
	if !s.verify(what, finding2) {
		t.Logf("%s: the first publish: %s", what, ra)
	}
	if st.Lock != nil {
		s.fail("%s: the lock is still held by %s@%s (pid %d)", what, st.Lock.Holder, st.Lock.Host, st.Lock.PID)
	}
	if st.Pointer.Live == stB.Pointer.Live {
		s.checkFresh(what, finding2, st, true, false)
	}
	return st, s.failures == failed
}

// raceRound plays issue 13's finding 1: two publishes of the site started at once from
// the same workspace, as CI does when two merges land close together. Each must either
// succeed (exit 0 or 3) or be refused by the lock ("locked by", exit 1), at least one
// must succeed, and then the live deploy is the workspace's content, served fresh, and
// verify passes. It returns the status after the round and whether every check passed.
func (s *storm) raceRound(c stormCmd, before *publish.Status) (*publish.Status, bool) {
	t := s.t
	t.Helper()
	failed := s.failures
	s.stats["publishes run twice at once"]++
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var runs [2]cliRun
	var cmds [2]*exec.Cmd
	var outs, errs [2]*bytes.Buffer
	for i := range cmds {
		cmds[i], outs[i], errs[i] = start(t, ctx, s.ws, s.cenv, c.args...)
	}
	for i := range cmds {
		runs[i] = wait(t, cmds[i], outs[i], errs[i])
	}
	if ctx.Err() != nil {
		t.Fatalf("%s: timed out:\n%s\n%s", c.label, runs[0], runs[1])
	}
	st := s.status()
	s.t.Logf("[%s] %s: %s and %s; live %s → %s", s.mode, c.label, runs[0].how(), runs[1].how(), before.Pointer.Live, st.Pointer.Live)
	const finding1 = "issue 13 finding 1: publish builds into the shared public/<site> before it takes the lock, so one publish's build changes the tree the other uploads from"
	succeeded := -1
	for i, r := range runs {
		switch {
		case r.code == 0 || r.code == exitPurgePending:
			succeeded = i
		case r.code == 1 && strings.Contains(r.stderr, "locked by"):
		default:
			s.fail("%s [%s]: publish %d of 2: want exit 0 (or 3), or exit 1 refused by the lock (\"locked by\") (%s): %s", c.label, s.mode, i+1, finding1, r)
		}
	}
	if succeeded < 0 {
		s.fail("%s [%s]: neither publish succeeded", c.label, s.mode)
		return st, false
	}
	s.verify(c.label+" ["+s.mode+"]", finding1)
	s.checkSuccess(c, runs[succeeded], before, st, nil)
	return st, s.failures == failed
}

// lockTime is how long a publish holds the lock, as the pause rounds measured it (the
// median; 100 ms before any measure).
func (s *storm) lockTime() time.Duration {
	if len(s.lockTimes) == 0 {
		return 100 * time.Millisecond
	}
	sorted := append([]time.Duration(nil), s.lockTimes...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	return sorted[len(sorted)/2]
}

// verify runs stump verify, which must exit 0; hint names the finding a failure shows.
// A live tree found wrong stays noted until a verify passes again, so that later
// failures say since when (publish does not repair what it believes unchanged).
func (s *storm) verify(what, hint string) bool {
	s.t.Helper()
	v := stump(s.t, s.ws, s.cenv, "verify", "--site", stormSite, "--target", s.target)
	if v.code == 0 {
		s.damaged = ""
		return true
	}
	if hint != "" {
		hint = " (" + hint + ")"
	}
	s.fail("%s: stump verify: want exit 0%s%s: %s", what, hint, s.damageNote(), v)
	if s.damaged == "" {
		s.damaged = what
	}
	return false
}

// damageNote says since when the live tree is known wrong, or "".
func (s *storm) damageNote() string {
	if s.damaged == "" {
		return ""
	}
	return "; note: the live tree has been wrong since " + s.damaged + ", and no command since repaired it (issue 13 finding 5: publish trusts the live tree)"
}

// readPointer reads _stump/current.json (a zero Pointer when it cannot).
func (s *storm) readPointer() publish.Pointer {
	var p publish.Pointer
	if b, _, err := getObject(context.Background(), s.env.Client(), s.bucket, "_stump/current.json"); err == nil {
		_ = json.Unmarshal(b, &p)
	}
	return p
}

// readLease reads _stump/lock (nil when there is none or it cannot be read).
func (s *storm) readLease() *publish.Lease {
	b, _, err := getObject(context.Background(), s.env.Client(), s.bucket, "_stump/lock")
	if err != nil {
		return nil
	}
	var l publish.Lease
	if json.Unmarshal(b, &l) != nil {
		return nil
	}
	return &l
}

// waitLeaseExpired waits until the lease in _stump/lock (of a stopped holder, which
// cannot renew it) has run out by the wall clock, with a little to spare.
func (s *storm) waitLeaseExpired() {
	s.t.Helper()
	l := s.readLease()
	if l == nil {
		s.t.Fatal("waitLeaseExpired: no lease")
	}
	time.Sleep(time.Until(l.Expires) + 300*time.Millisecond)
}

// killDelay is a random moment within about one clean publish.
func (s *storm) killDelay() time.Duration {
	d := time.Second
	if n := len(s.pubTimes); n > 0 {
		sorted := append([]time.Duration(nil), s.pubTimes...)
		sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
		d = sorted[n/2] * 5 / 4
	}
	return time.Duration(1 + s.rng.Int64N(int64(d)))
}

// edit changes some pages (so their bytes change) and sometimes the stylesheet (so its
// fingerprinted name changes, and the link on every page).
func (s *storm) edit() {
	if s.rng.IntN(100) < 15 {
		return // publish what is there
	}
	files := map[string]string{}
	names := make([]string, 0, len(s.revs))
	for n := range s.revs {
		names = append(names, n)
	}
	sort.Strings(names)
	for k := 1 + s.rng.IntN(4); k > 0; k-- {
		n := names[s.rng.IntN(len(names))]
		s.revs[n]++
		p, b := s.pageFile(n)
		files[p] = b
	}
	if s.rng.IntN(100) < 30 {
		s.cssRev++
		p, b := s.cssFile()
		files[p] = b
	}
	s.write(files)
}

// exec runs a command of the storm, killing it as it says.
func (s *storm) exec(c stormCmd) cliRun {
	s.t.Helper()
	env := s.cenv
	if c.killAt != "" {
		env = append(append([]string(nil), env...), "STUMP_FAULT_KILL_AT="+c.killAt)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	begin := time.Now()
	cmd, out, errb := start(s.t, ctx, s.ws, env, c.args...)
	if c.killAfter > 0 {
		timer := time.AfterFunc(c.killAfter, func() { _ = cmd.Process.Signal(syscall.SIGKILL) })
		defer timer.Stop()
	}
	r := wait(s.t, cmd, out, errb)
	if ctx.Err() != nil {
		s.t.Fatalf("%s: timed out: %s", c.label, r)
	}
	if c.kind == "publish" && !c.killed() && r.code == 0 {
		s.pubTimes = append(s.pubTimes, time.Since(begin))
	}
	return r
}

func (s *storm) status() *publish.Status {
	return readStatusOf(s.t, s.ws, s.cenv, stormSite, s.target)
}

func (s *storm) fail(format string, args ...any) {
	s.t.Helper()
	s.failures++
	s.t.Errorf(format, args...)
}

// checkSuccess checks the state after a command that exited 0 or 3.
func (s *storm) checkSuccess(c stormCmd, r cliRun, before, st *publish.Status, recovered *stormKill) {
	s.t.Helper()
	what := fmt.Sprintf("%s [%s] (exit %d; live %s → %s)", c.label, s.mode, r.code, before.Pointer.Live, st.Pointer.Live)
	if recovered != nil {
		s.stats["recoveries"]++
		s.verify(what+", after the kill of "+recovered.label, "")
		if st.Lock != nil {
			s.fail("%s, after the kill of %s (pid %d): the lock is still held by %s@%s (pid %d)", what, recovered.label, recovered.pid, st.Lock.Holder, st.Lock.Host, st.Lock.PID)
		}
	}
	if st.Pointer.State != publish.StateLive || st.Interrupted != "" {
		s.fail("%s: the pointer is not clean: state %q, interrupted %q, pending %q", what, st.Pointer.State, st.Interrupted, st.Pointer.Pending)
	}
	if c.kind == "rollback" && st.Pointer.Live != c.want {
		hint := ""
		if recovered != nil && !recovered.committed {
			hint = " (issue 13 finding 4: a rollback after a publish killed before its commit does not undo that publish; it switches away from the last good deploy)"
		}
		s.fail("%s: the rollback made %s live, want %s, %s%s", what, st.Pointer.Live, c.want, c.wantWhy, hint)
	}
	if r.code == exitPurgePending {
		s.purgeOwed = true
		s.stats["publishes with a purge pending (exit 3)"]++
	} else if c.kind == "publish" {
		s.purgeOwed = false
	}
	if s.purgeOwed {
		s.t.Logf("%s: a purge is pending (publish exited 3): stale pages are allowed until a publish exits 0; not checking what the edge serves", what)
		return
	}
	hint := "a publish purges every URL it changes: an old copy served after it is either not purged or cached again " +
		"after the purge by a fetch of the old deploy that was in flight (in atomic mode: one that read the old pointer before its purge)"
	if c.kind == "rollback" {
		hint = "issue 13 finding 3: rollback does not purge the CDN"
	}
	s.checkFresh(what, hint, st, c.kind == "publish", false)
}

// checkFresh fetches every URL of the live deploy through Varnish and compares the bytes
// with the deploy's record; after a publish, also that the pages show the workspace's
// latest edits. It reports every mismatch and returns whether all was right.
//
// When some URL is stale, the whole site is banned from Varnish and checked once more:
// so one defect is reported once (the next commands have no reason to purge what this
// one left stale), and the second check tells whether the origin itself is right.
func (s *storm) checkFresh(what, hint string, st *publish.Status, published, banned bool) bool {
	s.t.Helper()
	live := st.Pointer.Live
	rec := s.record(live)
	if rec == nil {
		s.fail("%s: deploy %s has no readable record", what, live)
		return false
	}
	var stale []string
	var content []string
	s.deployIDs = nil // list them again if needed: deploys were made since
	objs := append([]publish.Object(nil), rec.Objects...)
	sort.Slice(objs, func(i, j int) bool { return objs[i].Path < objs[j].Path })
	for _, o := range objs {
		if o.Redirect != "" {
			continue
		}
		u := "/" + o.Path
		if o.Path == "index.html" || strings.HasSuffix(o.Path, "/index.html") {
			u = strings.TrimSuffix(u, "index.html")
		}
		status, h, body, err := s.get(u)
		if err != nil {
			stale = append(stale, fmt.Sprintf("GET http://%s%s: %v", stormHost, u, err))
			continue
		}
		sum := sha256.Sum256(body)
		got := hex.EncodeToString(sum[:])
		if status != http.StatusOK || got != o.SHA256 {
			stale = append(stale, fmt.Sprintf("GET http://%s%s: served HTTP %d, %d bytes, sha256 %s (X-Cache %s, Age %s) = %s; want %s's %s (%d bytes)",
				stormHost, u, status, len(body), got[:12], h.Get("X-Cache"), h.Get("Age"), s.whose(o.Path, got), live, o.SHA256[:12], o.Size))
			continue
		}
		if published {
			content = append(content, s.checkContent(u, body)...)
		}
	}
	ok := true
	if len(stale) > 0 {
		ok = false
		switch {
		case banned:
			hint = " even from the origin (after a BAN of the whole site): the live tree is not the live deploy" + s.damageNote()
		case hint != "":
			hint = " (" + hint + ")"
		}
		max := min(len(stale), 6)
		s.fail("%s: %d of %d URLs of the live deploy %s are stale or wrong through Varnish%s:\n  %s%s",
			what, len(stale), len(objs), live, hint, strings.Join(stale[:max], "\n  "), more(len(stale)-max))
		if !banned {
			s.stats["commands followed by stale pages"]++
			s.banAll(what)
			s.checkFresh(what, "", st, published, true)
			return false
		}
	}
	if len(content) > 0 {
		ok = false
		max := min(len(content), 6)
		s.fail("%s: the live deploy %s is not the workspace's content:\n  %s%s", what, live, strings.Join(content[:max], "\n  "), more(len(content)-max))
	}
	return ok
}

func more(n int) string {
	if n <= 0 {
		return ""
	}
	return fmt.Sprintf("\n  … and %d more", n)
}

// checkContent checks that a page served after a publish shows its latest revision and
// links the latest stylesheet.
func (s *storm) checkContent(u string, body []byte) []string {
	var out []string
	if m := regexp.MustCompile(`^/([a-z]+)/p(\d+)/$`).FindStringSubmatch(u); m != nil {
		name := m[1] + "/" + m[2]
		want := fmt.Sprintf("storm-%s-%s-rev-%d-end", m[1], m[2], s.revs[name])
		if !strings.Contains(string(body), want) {
			got := "no revision marker"
			if pm := stormPageRE.FindStringSubmatch(string(body)); pm != nil {
				got = pm[0]
			}
			out = append(out, fmt.Sprintf("%s shows %s, want %s", u, got, want))
		}
	}
	if !strings.HasSuffix(u, "/") {
		return out
	}
	link := stormLinkRE.FindStringSubmatch(string(body))
	if link == nil {
		return append(out, u+" links no stylesheet")
	}
	status, _, css, err := s.get(link[1])
	if err != nil || status != http.StatusOK {
		return append(out, fmt.Sprintf("%s links %s: HTTP %d %v", u, link[1], status, err))
	}
	if m := stormCSSRE.FindStringSubmatch(string(css)); m == nil || m[1] != strconv.Itoa(s.cssRev) {
		out = append(out, fmt.Sprintf("%s links %s, of stylesheet revision %v, want %d", u, link[1], m, s.cssRev))
	}
	return out
}

// banAll drops the whole site from Varnish's cache (a BAN the generated VCL accepts from
// loopback), so that a stale page reported once is not reported again after the next
// commands, which have no reason to purge it.
func (s *storm) banAll(what string) {
	s.t.Helper()
	req, err := http.NewRequest("BAN", "http://"+stormHost+"/", nil)
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("X-Ban-Url", ".")
	resp, err := s.edge.Do(req)
	if err != nil {
		s.t.Fatalf("%s: resetting the edge with a BAN: %v", what, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		s.t.Fatalf("%s: resetting the edge with a BAN: %s", what, resp.Status)
	}
}

// get fetches a URL path of the site through Varnish.
func (s *storm) get(p string) (int, http.Header, []byte, error) {
	req, err := http.NewRequest(http.MethodGet, "http://"+stormHost+p, nil)
	if err != nil {
		return 0, nil, nil, err
	}
	resp, err := s.edge.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b, err
}

// pageURLs are the URL paths of the pages of the first deploy (every storm deploy has
// the same pages).
func (s *storm) pageURLs() []string {
	s.t.Helper()
	st := s.status()
	rec := s.record(st.Pointer.Live)
	if rec == nil {
		s.t.Fatalf("deploy %s has no readable record", st.Pointer.Live)
	}
	var out []string
	for _, o := range rec.Objects {
		if o.Path == "index.html" || strings.HasSuffix(o.Path, "/index.html") {
			out = append(out, "/"+strings.TrimSuffix(o.Path, "index.html"))
		}
	}
	sort.Strings(out)
	return out
}

// record reads a deploy record from the bucket (nil when it cannot), once.
func (s *storm) record(id string) *publish.Record {
	if r, ok := s.records[id]; ok {
		return r
	}
	// Through the publish package: records are a header and chunks of objects.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := publish.ReadRecord(ctx, openStore(s.t, s.env, s.bucket, s.env.Endpoint, 20*time.Second, nil), id)
	if err != nil {
		s.t.Logf("read the record of %s: %v", id, err)
		return nil
	}
	s.records[id] = r
	return r
}

// whose names the deploys whose record has sum at path, to tell what a stale answer is.
func (s *storm) whose(path, sum string) string {
	if s.deployIDs == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		p := s3.NewListObjectsV2Paginator(s.env.Client(), &s3.ListObjectsV2Input{Bucket: aws.String(s.bucket), Prefix: aws.String("_stump/deploys/")})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				return "(cannot list the deploys: " + err.Error() + ")"
			}
			for _, o := range page.Contents {
				if id, ok := strings.CutSuffix(strings.TrimPrefix(aws.ToString(o.Key), "_stump/deploys/"), ".json"); ok {
					s.deployIDs = append(s.deployIDs, id)
				}
			}
		}
	}
	var ids []string
	for _, id := range s.deployIDs {
		if r := s.record(id); r != nil {
			for _, o := range r.Objects {
				if o.Path == path && o.SHA256 == sum {
					ids = append(ids, id)
					break
				}
			}
		}
	}
	if len(ids) == 0 {
		return "the bytes of no deploy"
	}
	return "the bytes of deploy " + strings.Join(ids, ", ")
}
