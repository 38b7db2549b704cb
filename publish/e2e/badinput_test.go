package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/stump-dev/stump/internal/testenv"
)

// noise is what a clear message must not hold: SDK chains, HTTP internals, Go panics.
var noise = regexp.MustCompile(`operation error|RequestID|request id|StatusCode|https? response error|api error|deserialization failed|goroutine \d|panic:|\. [A-Z]`)

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// bucketState is every key of a bucket with its ETag, _stump/ included.
func bucketState(t testing.TB, env testenv.S3Env, bucket string) map[string]string {
	t.Helper()
	out := map[string]string{}
	p := s3.NewListObjectsV2Paginator(env.Client(), &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page.Contents {
			out[aws.ToString(o.Key)] = aws.ToString(o.ETag)
		}
	}
	return out
}

func bucketExists(env testenv.S3Env, bucket string) bool {
	_, err := env.Client().HeadBucket(context.Background(), &s3.HeadBucketInput{Bucket: aws.String(bucket)})
	return err == nil
}

// TestBadTargets runs publish and status with wrong credentials, a missing bucket and
// bad target URLs: each prints one clear sentence on stderr and exits 1, writes nothing
// (the bucket unchanged, no folder made in the workspace), and never shows a secret,
// not even with --verbose.
func TestBadTargets(t *testing.T) {
	env := testenv.S3(t)
	bucket := testenv.NewBucket(t, env)
	good := targetURL(bucket, env.Endpoint)
	mustStump(t, wsV1, cliEnv(env), "publish", "--site", "k", "--target", good, "--no-build")
	before := bucketState(t, env, bucket)

	wrongSecret := "e2e-wrong-secret-" + randomHex(12)
	urlSecret := "e2e-url-secret-" + randomHex(12)
	missing := "stump-e2e-missing-" + randomHex(6)
	creds := func(id, secret string) []string {
		return append(baseEnv(), "AWS_ACCESS_KEY_ID="+id, "AWS_SECRET_ACCESS_KEY="+secret)
	}
	cases := []struct {
		name   string
		target string
		env    []string
		want   string // in the message
	}{
		{"wrong-secret", good, creds(env.AccessKey, wrongSecret), "credentials were refused"},
		{"unknown-access-key", good, creds("AKIDE2EUNKNOWN", wrongSecret), "credentials were refused"},
		{"no-credentials", good, baseEnv(), "no AWS credentials"},
		{"missing-bucket", targetURL(missing, env.Endpoint), cliEnv(env), "does not exist"},
		{"unreachable-endpoint", targetURL(bucket, "http://127.0.0.1:1"), cliEnv(env), "cannot reach"},
		{"no-bucket", "s3://", cliEnv(env), "names no bucket"},
		{"bad-scheme", "ftp://example.org/x", cliEnv(env), "the scheme must be s3 or file"},
		{"no-scheme", "relative/dir", cliEnv(env), "the scheme must be s3 or file"},
		{"unknown-parameter", "s3://" + bucket + "?regoin=eu-west-1", cliEnv(env), "unknown parameter"},
		{"bad-endpoint", "s3://" + bucket + "?endpoint=notaurl", cliEnv(env), "endpoint must be an http(s) URL"},
		{"bad-path-style", "s3://" + bucket + "?path_style=maybe", cliEnv(env), "path_style"},
		{"empty-file", "file://", cliEnv(env), "names no folder"},
		{"credentials-in-target", "s3://AKIDE2E:" + urlSecret + "@" + bucket, cliEnv(env), "credentials may not be written in a target"},
		{"credentials-in-endpoint", "s3://" + bucket + "?path_style=true&endpoint=" + strings.Replace(env.Endpoint, "://", "://AKIDE2E:"+urlSecret+"@", 1), cliEnv(env), "may not hold credentials"},
	}
	secrets := []string{env.SecretKey, wrongSecret, urlSecret}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ws := copyWorkspace(t, wsV1)
			// Drop what the build of wsV1 wrote (its output, its caches): the
			// failed commands must not make them again.
			for _, d := range []string{"public", ".stump"} {
				if err := os.RemoveAll(filepath.Join(ws, d)); err != nil {
					t.Fatal(err)
				}
			}
			runs := []cliRun{
				stump(t, ws, tc.env, "publish", "--site", "k", "--target", tc.target),
				stump(t, ws, tc.env, "status", "--site", "k", "--target", tc.target),
				stump(t, ws, tc.env, "--verbose", "publish", "--site", "k", "--target", tc.target),
				stump(t, ws, tc.env, "--verbose", "rollback", "--site", "k", "--target", tc.target),
			}
			for i, r := range runs {
				verbose := i >= 2
				// A bad target is a failed operation, not bad usage of the command
				// line: exit 1 for every kind of bad target alike.
				if r.code != 1 {
					t.Errorf("want exit 1: %s", r)
				}
				for _, s := range secrets {
					if strings.Contains(r.stdout+r.stderr, s) {
						t.Errorf("a secret (%.20s...) appears in the output: %s", s, r)
					}
				}
				if verbose {
					continue
				}
				msg := strings.TrimSpace(r.stderr)
				if strings.Count(msg, "\n") != 0 || msg == "" || noise.MatchString(msg) || !strings.Contains(msg, tc.want) {
					t.Errorf("want one clear sentence saying %q on stderr: %s", tc.want, r)
				}
				if strings.TrimSpace(r.stdout) != "" {
					t.Errorf("want nothing on stdout: %s", r)
				}
			}
			for _, d := range []string{"public", ".stump"} {
				if _, err := os.Stat(filepath.Join(ws, d)); err == nil {
					t.Errorf("the failed commands made %s in the workspace", d)
				}
			}
		})
	}
	t.Cleanup(func() {
		after := bucketState(t, env, bucket)
		if len(after) != len(before) {
			t.Errorf("the bucket changed: %d keys before, %d after", len(before), len(after))
		}
		for k, e := range before {
			if after[k] != e {
				t.Errorf("the bucket changed: %s", k)
			}
		}
		if bucketExists(env, missing) {
			t.Errorf("bucket %s was created", missing)
		}
	})
}

// TestConcurrentPublishes starts two stump publish processes of site k at once, from
// two workspaces with different content, to one target. A proxy slows blob uploads and
// copies so that whoever takes the lock holds it while the other tries. Exactly one
// commits; the other exits 1 saying who holds the lock since when, and writes nothing.
func TestConcurrentPublishes(t *testing.T) {
	env := testenv.S3(t)
	bucket := testenv.NewBucket(t, env)
	proxy := newFaultProxy(t, env.Endpoint)
	proxy.set(nil, func(r request) time.Duration {
		switch r.Op {
		case "PutBlob", "PutObject", "CopyObject":
			return 150 * time.Millisecond
		}
		return 0
	})
	target := targetURL(bucket, proxy.URL)
	cenv := cliEnv(env)
	wsA, wsB := copyWorkspace(t, wsV1), copyWorkspace(t, wsV2)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	startTime := time.Now().Add(-time.Second)
	cmdA, outA, errA := start(t, ctx, wsA, cenv, "publish", "--site", "k", "--target", target)
	cmdB, outB, errB := start(t, ctx, wsB, cenv, "publish", "--site", "k", "--target", target)
	a, b := wait(t, cmdA, outA, errA), wait(t, cmdB, outB, errB)
	t.Logf("A: %s\nB: %s\n%s", a, b, proxy.summary())

	var win, lose cliRun
	winV2 := false
	switch {
	case a.code == 0 && b.code == 1:
		win, lose = a, b
	case b.code == 0 && a.code == 1:
		win, lose, winV2 = b, a, true
	default:
		t.Fatalf("want exactly one publish to succeed and the other to exit 1:\nA: %s\nB: %s", a, b)
	}
	m := regexp.MustCompile(`locked by e2e@\S+ \(pid (\d+)\) since (\S+?)[ ;(]`).FindStringSubmatch(lose.stderr)
	if m == nil || strings.Count(strings.TrimSpace(lose.stderr), "\n") != 0 {
		t.Fatalf("the losing publish does not say, in one line, who holds the lock since when: %s", lose)
	}
	if m[1] != strconv.Itoa(win.pid) {
		t.Errorf("the message names pid %s, the winner was pid %d", m[1], win.pid)
	}
	since, err := time.Parse(time.RFC3339, m[2])
	if err != nil || since.Before(startTime) || since.After(time.Now().Add(time.Second)) {
		t.Errorf("the lock is held 'since %s', not a time during this test (%v)", m[2], err)
	}

	// The winner's deploy is the only one, live and verified; the lock is free.
	direct := targetURL(bucket, env.Endpoint)
	idRE := regexp.MustCompile(`deploy (\S+) is live`)
	wm := idRE.FindStringSubmatch(win.stdout)
	if wm == nil {
		t.Fatalf("the winner names no deploy: %s", win)
	}
	st := readStatus(t, wsA, cenv, direct)
	if st.Pointer.Live != wm[1] || st.Lock != nil || st.Interrupted != "" {
		t.Errorf("want %s live, the lock free and nothing pending: %+v (lock %+v)", wm[1], st.Pointer, st.Lock)
	}
	deploys := mustStump(t, wsA, cenv, "deploys", "--site", "k", "--target", direct, "--json")
	if n := strings.Count(deploys.stdout, `"files"`); n != 1 {
		t.Errorf("want one deploy record (the loser writes none), got %d: %s", n, deploys.stdout)
	}
	mustStump(t, wsA, cenv, "verify", "--site", "k", "--target", direct)
	if got := strings.Contains(string(liveBody(t, env, bucket, "posts/b/index.html")), "v2-page-marker"); got != winV2 {
		t.Errorf("the live page is v2: %v, want %v (the winner's content)", got, winV2)
	}
	checkLive(t, env, bucket, "after the concurrent publishes")
}

// TestDotfilesNeverUploaded publishes a site holding dotfiles, keys and editor backups
// (each with a unique marker in its content) and checks that no key of the bucket names
// one and no object of the bucket (blobs and deploy records included) holds a marker.
func TestDotfilesNeverUploaded(t *testing.T) {
	env := testenv.S3(t)
	bucket := testenv.NewBucket(t, env)
	ws := copyWorkspace(t, wsV1)
	if err := os.RemoveAll(filepath.Join(ws, "public")); err != nil {
		t.Fatal(err)
	}
	secret := map[string]string{
		".env":                            "",
		"sites/k/.env":                    "",
		"sites/k/.git/config":             "",
		"sites/k/static/.secret":          "",
		"sites/k/static/key.pem":          "",
		"sites/k/static/server.key":       "",
		"sites/k/static/id_rsa":           "",
		"sites/k/static/notes.txt~":       "",
		"sites/k/static/notes.txt.swp":    "",
		"sites/k/static/backup.bak":       "",
		"sites/k/static/.git/HEAD":        "",
		"sites/k/static/sub/.hidden/x.js": "",
		"sites/k/static/.DS_Store":        "",
		"sites/k/content/.draft.md":       "---\ntitle: Hidden\n---\n",
		"sites/k/content/posts/.b.md.swp": "",
		"sites/k/content/#autosave#":      "",
	}
	markers := map[string]string{}
	files := map[string]string{}
	for name, prefix := range secret {
		m := "E2E-MARKER-" + randomHex(8)
		markers[m] = name
		files[name] = prefix + "SECRET=" + m + "\n"
	}
	if err := writeFiles(ws, files); err != nil {
		t.Fatal(err)
	}
	r := mustStump(t, ws, cliEnv(env), "publish", "--site", "k", "--target", targetURL(bucket, env.Endpoint))
	t.Logf("%s", strings.TrimSpace(r.stdout))

	ctx := context.Background()
	c := env.Client()
	keys, err := listAll(ctx, c, bucket)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) < 10 {
		t.Fatalf("the publish wrote only %d keys: %v", len(keys), keys)
	}
	banned := regexp.MustCompile(`(^|/)[.#]|~$|\.(pem|key|swp|bak)$|(^|/)id_rsa$`)
	for _, k := range keys {
		if banned.MatchString(k) {
			t.Errorf("the bucket holds %s", k)
		}
		b, _, err := getObject(ctx, c, bucket, k)
		if err != nil {
			t.Fatalf("get %s: %v", k, err)
		}
		for m, name := range markers {
			if strings.Contains(string(b), m) {
				t.Errorf("%s in the bucket holds the content of %s", k, name)
			}
		}
	}
}

// With no credentials anywhere, the SDK looks for them in the instance metadata service
// and logs "WARN falling back to IMDSv1" when that answers oddly: the person running
// stump must see only stump's one sentence. The metadata service here is a loopback
// server that answers 404, as a host without one might.
func TestNoCredentialsOneSentence(t *testing.T) {
	env := testenv.S3(t)
	imds := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.NotFound(w, r)
	}))
	t.Cleanup(imds.Close)
	var cenv []string
	for _, kv := range baseEnv() {
		if !strings.HasPrefix(kv, "AWS_EC2_METADATA_DISABLED=") {
			cenv = append(cenv, kv)
		}
	}
	cenv = append(cenv, "AWS_EC2_METADATA_SERVICE_ENDPOINT="+imds.URL)
	r := stump(t, wsV1, cenv, "publish", "--site", "k", "--target", targetURL("no-such-bucket", env.Endpoint), "--no-build")
	if r.code != 1 || !strings.Contains(r.stderr, "no AWS credentials found") {
		t.Fatalf("want exit 1 and the no-credentials sentence: %s", r)
	}
	if lines := strings.Split(strings.TrimSpace(r.stderr), "\n"); len(lines) != 1 {
		t.Errorf("stderr has %d lines, want stump's one sentence (SDK messages leaked?):\n%s", len(lines), r.stderr)
	}
}
