package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stump-dev/stump/purge/cdntest"
)

func run(t *testing.T, dir string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(append([]string{"stump", "-C", dir}, args...), strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

// TestPublishPurgesAndKeepsPending publishes to the local target with a (fake) Fastly
// in front: a purge after each deploy; when Fastly fails, the publish exits 3, status
// shows the pending purge, and `stump purge --pending` retries it once Fastly is back.
func TestPublishPurgesAndKeepsPending(t *testing.T) {
	f := cdntest.NewFastly(t, "SVC", "tok-secret-123")
	t.Setenv("FASTLY_API_TOKEN", "tok-secret-123")
	dir := t.TempDir()
	files := map[string]string{
		"stump.yaml":                "output: public\n",
		"sites/x/site.yaml":         "title: X\nbaseURL: https://x.example.org/\ncdn:\n  - fastly: {service: SVC, api: " + f.URL + "}\n",
		"sites/x/content/_index.md": "---\ntitle: Home\n---\nHi.\n",
		"sites/x/content/a.md":      "---\ntitle: A\n---\nOne.\n",
	}
	for p, c := range files {
		os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755)
		os.WriteFile(filepath.Join(dir, p), []byte(c), 0o644)
	}
	if code, out, errs := run(t, dir, "publish", "--site", "x"); code != 0 || !strings.Contains(out, "purged fastly") {
		t.Fatalf("first publish: %d\n%s\n%s", code, out, errs)
	}
	os.WriteFile(filepath.Join(dir, "sites/x/content/a.md"), []byte("---\ntitle: A\n---\nTwo.\n"), 0o644)
	f.FailAlways(&cdntest.Failure{Status: 503})
	code, out, errs := run(t, dir, "publish", "--site", "x")
	if code != ExitPurgePending || !strings.Contains(out, "purge failed and is pending") {
		t.Fatalf("publish with Fastly down: %d\n%s\n%s", code, out, errs)
	}
	if strings.Contains(out+errs, "tok-secret-123") {
		t.Fatal("the token was printed")
	}
	if code, out, _ := run(t, dir, "status", "--site", "x"); code != 0 || !strings.Contains(out, "pending: CDN purge") {
		t.Fatalf("status: %d\n%s", code, out)
	}
	f.FailAlways(nil)
	if code, out, errs := run(t, dir, "purge", "--site", "x", "--pending"); code != 0 || !strings.Contains(out, "no purge work pending") {
		t.Fatalf("purge --pending: %d\n%s\n%s", code, out, errs)
	}
	if code, out, _ := run(t, dir, "status", "--site", "x"); code != 0 || strings.Contains(out, "pending: CDN purge") {
		t.Fatalf("status after retry: %d\n%s", code, out)
	}
	if code, out, errs := run(t, dir, "purge", "--site", "x", "--plan"); code != 0 || !strings.Contains(out, "purge plan of deploy") {
		t.Fatalf("purge --plan: %d\n%s\n%s", code, out, errs)
	}
	if code, _, errs := run(t, dir, "purge", "--site", "x", "--urls", "/a/"); code != 0 {
		t.Fatalf("purge --urls: %d %s", code, errs)
	}
	if v := f.Violations(); len(v) > 0 {
		t.Errorf("requests broke the Fastly API contract: %v", v)
	}
}
