package edge_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stump-dev/stump/edge"
	"github.com/stump-dev/stump/internal/cli"
)

func workspace(t *testing.T, sites map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "stump.yaml"), []byte("output: public\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, text := range sites {
		if err := os.MkdirAll(filepath.Join(dir, "sites", name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "sites", name, "site.yaml"), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func run(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := cli.Main(append([]string{"stump"}, args...), strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

func TestCLI(t *testing.T) {
	if _, err := edge.FindVarnishd(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	good := "baseURL: https://a.example.org/\ntarget: s3://bkt/a\nedge:\n  origin: http://127.0.0.1:9000\n  origin_host: bkt.localhost\n"
	dir := workspace(t, map[string]string{"a": good, "b": "baseURL: https://b.example.org/\n"})

	code, out, errs := run("-C", dir, "edge", "vcl")
	if code != 0 || !strings.HasPrefix(out, "vcl 4.1;") || !strings.Contains(out, `req.http.Host == "a.example.org"`) {
		t.Fatalf("edge vcl: %d %q %q", code, errs, out)
	}
	if code, out, errs = run("-C", dir, "edge", "vcl", "--site", "b"); code != 0 || !strings.Contains(errs, "no site has an edge") {
		t.Errorf("edge vcl --site b: %d %q", code, errs)
	}
	if code, out, errs = run("-C", dir, "edge", "check", "--all"); code != 0 || !strings.Contains(out, "compiles") {
		t.Errorf("edge check: %d %q %q", code, out, errs)
	}

	// A config error: exit 1, the file and the setting, no VCL.
	bad := workspace(t, map[string]string{"a": good + "  trusted_proxies: [10.0.0.1]\n  defenses: { blocked_countries: [Russia] }\n"})
	code, out, errs = run("-C", bad, "edge", "vcl")
	if code != 1 || out != "" || !strings.Contains(errs, "sites/a/site.yaml") || !strings.Contains(errs, `"Russia" is not a two-letter`) {
		t.Errorf("broken config: %d %q %q", code, out, errs)
	}
	// A VCL varnishd refuses (an origin that does not resolve): exit 1 with its message.
	unresolvable := workspace(t, map[string]string{"a": strings.Replace(good, "127.0.0.1", "no-such-origin.invalid", 1)})
	code, _, errs = run("-C", unresolvable, "edge", "check")
	if code != 1 || !strings.Contains(errs, "does not compile") || !strings.Contains(errs, "no-such-origin.invalid") {
		t.Errorf("uncompilable VCL: %d %q", code, errs)
	}
}
