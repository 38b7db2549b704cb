package e2e

// Tests for the findings of the publish-correctness issue, each at the level it
// happens: the CLI as a subprocess against versitygw.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/stump-dev/stump/build/manifest"
	"github.com/stump-dev/stump/internal/testenv"
	"github.com/stump-dev/stump/publish"
)

// waitStopped waits until process pid is stopped (SIGSTOP), or fails the test.
func waitStopped(t testing.TB, pid int) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		b, err := os.ReadFile("/proc/" + itoa(pid) + "/stat")
		if err != nil {
			t.Fatalf("process %d: %v (did it exit before the stop point?)", pid, err)
		}
		// pid (comm) STATE ...: the state follows the last ')'.
		s := string(b)
		if i := strings.LastIndexByte(s, ')'); i >= 0 && len(s) > i+2 && s[i+2] == 'T' {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("process %d never stopped", pid)
}

func itoa(n int) string { return jsonNumber(n) }

func jsonNumber(n int) string { b, _ := json.Marshal(n); return string(b) }

// putRaw writes bytes at a key of the bucket directly, as a stray writer or a damaged
// disk would.
func putRaw(t testing.TB, env testenv.S3Env, bucket, key, body string) {
	t.Helper()
	_, err := env.Client().PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: strings.NewReader(body)})
	if err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
}

func deleteRaw(t testing.TB, env testenv.S3Env, bucket, key string) {
	t.Helper()
	if _, err := env.Client().DeleteObject(context.Background(), &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}); err != nil {
		t.Fatalf("delete %s: %v", key, err)
	}
}

func sha(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// builtSum is the SHA-256 of a built file of workspace ws (site k).
func builtSum(t testing.TB, ws, p string) string {
	t.Helper()
	m, err := manifest.Read(filepath.Join(ws, "public", "k", manifest.FileName))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range m.Files {
		if e.Path == p {
			return e.SHA256
		}
	}
	t.Fatalf("%s is not in the build of %s", p, ws)
	return ""
}

// editPage rewrites posts/b.md of workspace ws with text (and builds it).
func editPage(t testing.TB, ws, text string) {
	t.Helper()
	if err := writeFiles(ws, map[string]string{"sites/k/content/posts/b.md": "---\ntitle: Beta\ndate: 2024-02-01\n---\n" + text + "\n"}); err != nil {
		t.Fatal(err)
	}
	if err := runSetup(ws, "build", "--site", "k"); err != nil {
		t.Fatal(err)
	}
}

// Finding 1: two publishes of one site from one workspace. The first is paused after
// it took the lock; the second builds (in the same workspace) and must find the lock
// taken; the first, resumed, must publish its own build intact. Before, the second
// build swapped public/k under the first, which failed reading "built file ...".
func TestTwoPublishesOneWorkspace(t *testing.T) {
	env := testenv.S3(t)
	bucket := testenv.NewBucket(t, env)
	target := targetURL(bucket, env.Endpoint)
	ws := copyWorkspace(t, wsV1)
	cenv := cliEnv(env)
	for round, text := range []string{"round one text", "round two text"} {
		editPage(t, ws, text)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		a, aout, aerr := start(t, ctx, ws, append(cenv, "STUMP_FAULT_STOP_AT=lock"), "publish", "--site", "k", "--target", target, "--json")
		waitStopped(t, a.Process.Pid)
		// The second publish of the same workspace, with other content.
		if err := writeFiles(ws, map[string]string{"sites/k/content/posts/c.md": "---\ntitle: Gamma\ndate: 2024-03-01\n---\nchanged by the second publish " + text + "\n"}); err != nil {
			t.Fatal(err)
		}
		b := stump(t, ws, cenv, "publish", "--site", "k", "--target", target)
		if b.code != 1 || !strings.Contains(b.stderr, "locked by") {
			t.Errorf("round %d: the second publish: want exit 1 and \"locked by\": %s", round, b)
		}
		_ = a.Process.Signal(syscall.SIGCONT)
		ar := wait(t, a, aout, aerr)
		cancel()
		if ar.code != 0 {
			t.Fatalf("round %d: the first publish, resumed, failed (it must publish its own build whatever the other build did): %s", round, ar)
		}
		mustStump(t, ws, cenv, "verify", "--site", "k", "--target", target)
		if page := string(liveBody(t, env, bucket, "posts/b/index.html")); !strings.Contains(page, text) {
			t.Errorf("round %d: the first publish's page is not live: %.200s", round, page)
		}
		// Put c.md back so the next round starts from one change.
		if err := writeFiles(ws, map[string]string{"sites/k/content/posts/c.md": siteV1["sites/k/content/posts/c.md"]}); err != nil {
			t.Fatal(err)
		}
	}
}

// Finding 2: a publish paused past its lease (SIGSTOP) has its lock broken by the next
// publish; when it resumes it must write nothing more and say that its deploy did not
// go live. Before, it went on copying into the live tree (paths of the wrong deploy
// live, status clean, verify failing).
func TestPausedPastLeaseIsFenced(t *testing.T) {
	env := testenv.S3(t)
	bucket := testenv.NewBucket(t, env)
	target := targetURL(bucket, env.Endpoint)
	cenv := cliEnv(env, "STUMP_LOCK_TTL=3s")
	mustStump(t, wsV1, cenv, "publish", "--site", "k", "--target", target, "--no-build")

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	a, aout, aerr := start(t, ctx, wsV2, append(cenv, "STUMP_FAULT_STOP_AT=copy:2"), "publish", "--site", "k", "--target", target, "--no-build")
	waitStopped(t, a.Process.Pid)
	time.Sleep(4 * time.Second) // past the 3 s lease

	ws3 := copyWorkspace(t, wsV1)
	editPage(t, ws3, "version three (v3-page-marker)")
	b := mustStump(t, ws3, cenv, "publish", "--site", "k", "--target", target, "--no-build", "--break-lock", "--json")
	v3 := parsePublish(t, b).Deploy

	_ = a.Process.Signal(syscall.SIGCONT)
	ar := wait(t, a, aout, aerr)
	if ar.code != 1 || !strings.Contains(ar.stderr, "lease") || !strings.Contains(ar.stderr, "did not go live") {
		t.Errorf("the resumed publish: want exit 1, a lost lease and \"did not go live\": %s", ar)
	}
	st := readStatus(t, ws3, cenv, target)
	if st.Pointer.Live != v3 || st.Pointer.State != publish.StateLive {
		t.Errorf("after the resumed publish stopped, the pointer is %+v, want %s live", st.Pointer, v3)
	}
	if r := stump(t, ws3, cenv, "verify", "--site", "k", "--target", target); r.code != 0 {
		t.Errorf("the resumed publish wrote into the live tree after it lost the site: %s", r)
	}
	if page := string(liveBody(t, env, bucket, "posts/b/index.html")); !strings.Contains(page, "v3-page-marker") {
		t.Errorf("posts/b is not v3's: %.300s", page)
	}
	if _, ok := listLiveKeys(t, env, bucket)["new.txt"]; ok {
		t.Errorf("new.txt (only in the paused v2) is live")
	}
}

func listLiveKeys(t testing.TB, env testenv.S3Env, bucket string) map[string]int64 {
	t.Helper()
	keys, err := listLive(context.Background(), env.Client(), bucket)
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// purgeRecorder is a stand-in Varnish for the purge adapter (mode purge): it records
// the paths of PURGE requests.
type purgeRecorder struct {
	*httptest.Server
	mu    sync.Mutex
	paths []string
}

func newPurgeRecorder(t testing.TB) *purgeRecorder {
	r := &purgeRecorder{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.paths = append(r.paths, req.Method+" "+req.URL.Path)
		r.mu.Unlock()
		// What the recommended VCL answers, so the adapter takes the purge as done.
		w.Header().Set("X-Purged", "1")
		w.Header().Set("X-Banned", "1")
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *purgeRecorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.paths
	r.paths = nil
	return p
}

// Finding 3: rollback purges the CDN, in both modes.
func TestRollbackPurges(t *testing.T) {
	env := testenv.S3(t)
	for _, mode := range []string{"inplace", "atomic"} {
		t.Run(mode, func(t *testing.T) {
			bucket := testenv.NewBucket(t, env)
			target := targetURL(bucket, env.Endpoint)
			cenv := cliEnv(env)
			rec := newPurgeRecorder(t)
			extra := "cdn:\n  - varnish: { endpoints: [\"" + rec.URL + "\"], mode: purge }\n"
			if mode == "atomic" {
				extra += "deploy: { mode: atomic }\n"
			}
			w1, w2 := copyWorkspace(t, wsV1), copyWorkspace(t, wsV2)
			for _, ws := range []string{w1, w2} {
				appendFile(t, filepath.Join(ws, "sites/k/site.yaml"), extra)
			}
			mustStump(t, w1, cenv, "publish", "--site", "k", "--target", target, "--no-build")
			mustStump(t, w2, cenv, "publish", "--site", "k", "--target", target, "--no-build")
			rec.take()
			r := mustStump(t, w2, cenv, "rollback", "--site", "k", "--target", target)
			got := strings.Join(rec.take(), "\n")
			if !strings.Contains(got, "PURGE /posts/b/") && !strings.Contains(got, "BAN /") {
				t.Errorf("rollback from v2 to v1 did not purge /posts/b/ (the page it changed); purge requests:\n%s\nrollback: %s", got, r)
			}
			if strings.Contains(got, "PURGE /posts/a/") {
				t.Errorf("rollback purged /posts/a/, which it did not change:\n%s", got)
			}
			// verify --repair purges exactly the paths it rewrote.
			key := "posts/a/index.html"
			if mode == "atomic" {
				key = "_stump/trees/" + readStatus(t, w2, cenv, target).Pointer.Live + "/" + key
			}
			putRaw(t, env, bucket, key, "<html>defaced</html>")
			repair := []string{"verify", "--site", "k", "--target", target, "--repair"}
			if mode == "atomic" {
				// The live tree held the only stored copy of posts/a (atomic deploys
				// store no blob): verify --repair has no build to take it from, changes
				// nothing and names publish --repair, which takes it from the build
				// (w1 is the live deploy's build, so the publish itself is a no-op).
				r := stump(t, w1, cenv, repair...)
				if r.code != 1 || !strings.Contains(r.stderr, "stump publish --repair") {
					t.Errorf("verify --repair of the only copy of posts/a: want exit 1 naming stump publish --repair: %s", r)
				}
				if got := rec.take(); len(got) > 0 {
					t.Errorf("a verify --repair that changed nothing purged: %v", got)
				}
				repair = []string{"publish", "--site", "k", "--target", target, "--no-build", "--repair"}
			}
			mustStump(t, w1, cenv, repair...)
			if got := strings.Join(rec.take(), "\n"); !strings.Contains(got, "PURGE /posts/a/") || strings.Contains(got, "PURGE /posts/b/") {
				t.Errorf("%s --repair of posts/a: want a purge of /posts/a/ only; purge requests:\n%s", repair[0], got)
			}
		})
	}
}

func appendFile(t testing.TB, p, text string) {
	t.Helper()
	f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString("\n" + text); err != nil {
		t.Fatal(err)
	}
}

// Finding 4: a rollback after a publish killed before its commit undoes the killed
// publish (nothing live changes), never the last good deploy. Before, four
// kill-then-rollback rounds walked the site back four good deploys.
func TestRollbackAfterKillKeepsLastGood(t *testing.T) {
	env := testenv.S3(t)
	// In atomic mode "put:2" is half-way through the tree: the changed paths are put
	// into it from the build, one by one (there is no blob, so no copy).
	for _, tc := range []struct{ mode, killAt string }{{"inplace", "upload"}, {"inplace", "record"}, {"atomic", "put:2"}, {"atomic", "materialize"}} {
		t.Run(tc.mode+"/"+strings.ReplaceAll(tc.killAt, ":", ""), func(t *testing.T) {
			bucket := testenv.NewBucket(t, env)
			target := targetURL(bucket, env.Endpoint)
			cenv := cliEnv(env)
			w1, w2, w3 := copyWorkspace(t, wsV1), copyWorkspace(t, wsV2), copyWorkspace(t, wsV2)
			editPage(t, w3, "version three")
			if tc.mode == "atomic" {
				for _, ws := range []string{w1, w2, w3} {
					appendFile(t, filepath.Join(ws, "sites/k/site.yaml"), "deploy: { mode: atomic }\n")
				}
			}
			pub := func(ws string, extra ...string) cliRun {
				return stump(t, ws, append(cenv, extra...), "publish", "--site", "k", "--target", target, "--no-build", "--json")
			}
			v1 := parsePublish(t, pub(w1)).Deploy
			v2 := parsePublish(t, pub(w2)).Deploy
			if k := pub(w3, "STUMP_FAULT_KILL_AT="+tc.killAt); k.signal != syscall.SIGKILL {
				t.Fatalf("want the third publish killed: %s", k)
			}
			r := mustStump(t, w2, cenv, "rollback", "--site", "k", "--target", target, "--break-lock")
			if st := readStatus(t, w2, cenv, target); st.Pointer.Live != v2 {
				t.Fatalf("rollback after a publish killed at %s made %s live, want %s (the last good deploy; v1 is %s): %s", tc.killAt, st.Pointer.Live, v2, v1, r)
			}
			mustStump(t, w2, cenv, "verify", "--site", "k", "--target", target)
			// A second rollback, with nothing killed, goes back to v1.
			mustStump(t, w2, cenv, "rollback", "--site", "k", "--target", target)
			if st := readStatus(t, w2, cenv, target); st.Pointer.Live != v1 {
				t.Fatalf("the next rollback made %s live, want %s", st.Pointer.Live, v1)
			}
		})
	}
}

// Finding 5: publish confirms stored content before making it live, and repairs what
// differs.
func TestCorruptionIsRepaired(t *testing.T) {
	env := testenv.S3(t)
	bucket := testenv.NewBucket(t, env)
	target := targetURL(bucket, env.Endpoint)
	cenv := cliEnv(env)
	pub := func(ws string, extra ...string) cliRun {
		return mustStump(t, ws, cenv, append([]string{"publish", "--site", "k", "--target", target, "--no-build"}, extra...)...)
	}
	pub(wsV1)
	pub(wsV2)
	// A corrupted blob (same key, other bytes) that the next publish needs: v1's page.
	want := builtSum(t, wsV1, "posts/b/index.html")
	putRaw(t, env, bucket, "_stump/objects/sha256/"+want, "<html>corrupted blob</html>")
	r := pub(wsV1)
	if got := sha(liveBody(t, env, bucket, "posts/b/index.html")); got != want {
		t.Errorf("publish copied a corrupted blob to the live site (posts/b/index.html has %s, want %s): %s", got[:12], want[:12], r)
	}
	if !strings.Contains(r.stdout, "uploaded again") {
		t.Errorf("publish does not say it uploaded damaged content again: %s", r)
	}
	mustStump(t, wsV1, cenv, "verify", "--site", "k", "--target", target)

	// A corrupted live object: publish alone says up to date; verify --repair rewrites it.
	wantA := builtSum(t, wsV1, "posts/a/index.html")
	putRaw(t, env, bucket, "posts/a/index.html", "<html>defaced</html>")
	if v := stump(t, wsV1, cenv, "verify", "--site", "k", "--target", target); v.code != 1 || !strings.Contains(v.stdout, "posts/a/index.html") {
		t.Errorf("verify does not report the corrupted live object: %s", v)
	}
	rep := mustStump(t, wsV1, cenv, "verify", "--site", "k", "--target", target, "--repair")
	if !strings.Contains(rep.stdout, "repaired: posts/a/index.html") {
		t.Errorf("verify --repair does not name the path it rewrote: %s", rep)
	}
	if got := sha(liveBody(t, env, bucket, "posts/a/index.html")); got != wantA {
		t.Errorf("after verify --repair posts/a/index.html has %s, want %s", got[:12], wantA[:12])
	}
	mustStump(t, wsV1, cenv, "verify", "--site", "k", "--target", target)

	// publish --repair: the live object and its blob both damaged; the build has it.
	putRaw(t, env, bucket, "posts/a/index.html", "<html>defaced again</html>")
	putRaw(t, env, bucket, "_stump/objects/sha256/"+wantA, "<html>blob damaged too</html>")
	if v := stump(t, wsV1, cenv, "verify", "--site", "k", "--target", target, "--repair"); v.code != 1 || !strings.Contains(v.stderr, "corrupted") {
		t.Errorf("verify --repair with a damaged blob: want exit 1 naming the corrupted content (it has no build to upload from): %s", v)
	}
	pr := pub(wsV1, "--repair")
	if !strings.Contains(pr.stdout, "posts/a/index.html") {
		t.Errorf("publish --repair does not name the path it rewrote: %s", pr)
	}
	if got := sha(liveBody(t, env, bucket, "posts/a/index.html")); got != wantA {
		t.Errorf("after publish --repair posts/a/index.html has %s, want %s", got[:12], wantA[:12])
	}
	mustStump(t, wsV1, cenv, "verify", "--site", "k", "--target", target)
}

// Finding 6: a missing live record or a garbage pointer locked the site with no way
// out; stump doctor explains it and --fix rebuilds it, never deleting anything.
func TestDoctorRebuildsMetadata(t *testing.T) {
	env := testenv.S3(t)
	bucket := testenv.NewBucket(t, env)
	target := targetURL(bucket, env.Endpoint)
	cenv := cliEnv(env)
	pub := func(ws string) string {
		return parsePublish(t, mustStump(t, ws, cenv, "publish", "--site", "k", "--target", target, "--no-build", "--json")).Deploy
	}
	pub(wsV1)
	v2 := pub(wsV2)
	ws := copyWorkspace(t, wsV2)

	deleteRaw(t, env, bucket, "_stump/deploys/"+v2+".json")
	for _, cmd := range [][]string{{"status"}, {"publish", "--no-build"}, {"verify"}} {
		r := stump(t, ws, cenv, append(cmd, "--site", "k", "--target", target)...)
		if r.code != 1 || !strings.Contains(r.stderr, "stump doctor") {
			t.Errorf("with the live record gone, %s: want exit 1 pointing at stump doctor: %s", cmd[0], r)
		}
	}
	d := mustStump(t, ws, cenv, "doctor", "--site", "k", "--target", target)
	if !strings.Contains(d.stdout, "has no record") || !strings.Contains(d.stdout, "would fix") {
		t.Errorf("doctor does not explain the missing record and what --fix would do: %s", d)
	}
	mustStump(t, ws, cenv, "doctor", "--site", "k", "--target", target, "--fix")
	if st := readStatus(t, ws, cenv, target); st.Pointer.Live != v2 {
		t.Errorf("after doctor --fix, live is %q, want %s", st.Pointer.Live, v2)
	}
	mustStump(t, ws, cenv, "verify", "--site", "k", "--target", target)
	if r := mustStump(t, ws, cenv, "publish", "--site", "k", "--target", target, "--no-build"); !strings.Contains(r.stdout, "up to date") {
		t.Errorf("after doctor --fix, publishing the same build is not a no-op: %s", r)
	}

	putRaw(t, env, bucket, "_stump/current.json", "this is not json")
	if r := stump(t, ws, cenv, "status", "--site", "k", "--target", target); r.code != 1 || !strings.Contains(r.stderr, "stump doctor") {
		t.Errorf("with a garbage pointer, status: want exit 1 pointing at stump doctor: %s", r)
	}
	mustStump(t, ws, cenv, "doctor", "--site", "k", "--target", target, "--fix")
	if st := readStatus(t, ws, cenv, target); st.Pointer.Live != v2 {
		t.Errorf("after doctor --fix of a garbage pointer, live is %q, want %s (the newest complete deploy)", st.Pointer.Live, v2)
	}
	mustStump(t, ws, cenv, "verify", "--site", "k", "--target", target)
	kept := false
	for k := range listAllKeys(t, env, bucket) {
		if strings.HasPrefix(k, "_stump/doctor/current-") {
			kept = true
		}
	}
	if !kept {
		t.Errorf("doctor --fix did not keep the pointer it replaced under _stump/doctor/")
	}
}

func listAllKeys(t testing.TB, env testenv.S3Env, bucket string) map[string]bool {
	t.Helper()
	keys, err := listAll(context.Background(), env.Client(), bucket)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, k := range keys {
		out[k] = true
	}
	return out
}

// Finding 7: a store that drops website redirect metadata (seen on MinIO): publish
// detects it with one warning and records redirects as redirect pages, so verify is
// clean. The store here is versitygw behind a proxy that drops the header from every
// answer, as such a store does.
func TestStoreDroppingRedirects(t *testing.T) {
	env := testenv.S3(t)
	bucket := testenv.NewBucket(t, env)
	u, err := url.Parse(env.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ModifyResponse = func(r *http.Response) error {
		r.Header.Del("X-Amz-Website-Redirect-Location")
		return nil
	}
	proxy := httptest.NewServer(rp)
	t.Cleanup(proxy.Close)
	target := targetURL(bucket, proxy.URL)
	cenv := cliEnv(env)
	ws := copyWorkspace(t, wsV1)
	if err := writeFiles(ws, map[string]string{"sites/k/content/about.md": "---\ntitle: About\naliases: [/old-about/]\n---\nAbout [the posts](/posts/).\n"}); err != nil {
		t.Fatal(err)
	}
	if err := runSetup(ws, "build", "--site", "k"); err != nil {
		t.Fatal(err)
	}
	r := mustStump(t, ws, cenv, "publish", "--site", "k", "--target", target, "--no-build")
	if strings.Count(r.stderr, "drops website redirect metadata") != 1 {
		t.Errorf("publish to a store that drops redirects: want one warning: %s", r)
	}
	if v := stump(t, ws, cenv, "verify", "--site", "k", "--target", target); v.code != 0 {
		t.Errorf("verify after publishing to a store that drops redirects: %s", v)
	}
	if page := string(liveBody(t, env, bucket, "old-about/index.html")); !strings.Contains(page, "/about/") {
		t.Errorf("the alias page does not redirect by itself: %.300s", page)
	}
	editPage(t, ws, "an edit after the probe")
	if r := mustStump(t, ws, cenv, "publish", "--site", "k", "--target", target, "--no-build"); strings.Contains(r.stderr, "drops website redirect") {
		t.Errorf("the warning repeats on every publish (the target's answer is recorded once): %s", r)
	}
	mustStump(t, ws, cenv, "verify", "--site", "k", "--target", target)
}
