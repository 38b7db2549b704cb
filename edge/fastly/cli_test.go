package fastly_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stump-dev/stump/edge/fastly"
	"github.com/stump-dev/stump/internal/cli"
	"github.com/stump-dev/stump/internal/testenv"
	"github.com/stump-dev/stump/purge/cdntest"
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

const (
	cliService = "SU1Z0isxPaozGVKXdv0eY"
	cliToken   = "cli-token-never-printed-0123456789"
)

func cliWorkspace(t *testing.T) string {
	edge := "edge:\n  origin: http://203.0.113.9:80\n  website_domain: s3-website-eu-west-1.amazonaws.com\n  fastly: { service_id: " + cliService + " }\n"
	return workspace(t, map[string]string{
		"candidate": "baseURL: https://candidate.test/\ntarget: s3://bkt/c\ndeploy: { mode: atomic }\n" + edge +
			"  preview_host: preview.candidate.test\n  preview_auth_env: CANDIDATE_PREVIEW\n  defenses: { blocked_countries: [RU] }\n",
		"party":   "baseURL: https://party.test/\ntarget: s3://bkt/p\n" + edge,
		"varnish": "baseURL: https://v.test/\ntarget: s3://bkt/v\nedge:\n  origin: http://203.0.113.9:80\n  origin_host: v.example\n",
	})
}

func TestCLIVCLAndCheck(t *testing.T) {
	dir := cliWorkspace(t)
	code, out, errs := run("-C", dir, "edge", "vcl", "--fastly", "--site", "candidate")
	if code != 0 || !strings.Contains(out, "#FASTLY recv") || !strings.Contains(out, `"party.test"`) || strings.Contains(out, "v.test") {
		t.Fatalf("edge vcl --fastly: %d %q\n%s", code, errs, out)
	}
	if code, _, errs := run("-C", dir, "edge", "vcl", "--fastly", "--site", "varnish"); code == 0 || !strings.Contains(errs, "edge.fastly.service_id") {
		t.Errorf("a site without Fastly: %d %q", code, errs)
	}
	// The CLI finds falco in the workspace's .stump/bin or on PATH: this workspace is a
	// temporary folder, so put the test tooling's falco on PATH.
	bin := testenv.Falco(t)
	t.Setenv("PATH", filepath.Dir(bin)+string(os.PathListSeparator)+os.Getenv("PATH"))
	code, out, errs = run("-C", dir, "edge", "check", "--fastly")
	if code != 0 || !strings.Contains(out, "passes falco lint and its tests") {
		t.Errorf("edge check --fastly: %d %q %q", code, out, errs)
	}
}

// Without falco, check --fastly fails and says how to install it.
func TestCLICheckNoFalco(t *testing.T) {
	dir := cliWorkspace(t)
	t.Setenv("PATH", t.TempDir())
	code, _, errs := run("-C", dir, "edge", "check", "--fastly")
	if code != 1 || !strings.Contains(errs, "falco is not installed") {
		t.Errorf("without falco: %d %q", code, errs)
	}
}

func TestCLIDeploy(t *testing.T) {
	dir := cliWorkspace(t)
	f := cdntest.NewFastlyAPI(t, cliService, cliToken)
	t.Setenv("CANDIDATE_PREVIEW", "team:s3cret")
	t.Setenv(fastly.TokenEnv, "")
	if code, _, errs := run("-C", dir, "edge", "deploy", "--fastly", "--site", "candidate", "--fastly-api", f.URL); code != 2 || !strings.Contains(errs, "FASTLY_API_TOKEN is not set") {
		t.Errorf("without a token: %d %q", code, errs)
	}
	t.Setenv(fastly.TokenEnv, cliToken)
	if code, out, errs := run("-C", dir, "edge", "deploy", "--fastly", "--site", "candidate", "--fastly-api", f.URL, "--dry-run"); code != 0 || !strings.Contains(out, "dry run") || f.Latest() != 1 {
		t.Errorf("dry run: %d %q %q", code, out, errs)
	}
	code, out, errs := run("-C", dir, "edge", "deploy", "--fastly", "--site", "candidate", "--fastly-api", f.URL)
	if code != 0 || !strings.Contains(out, "activated version 2 (was 1)") || f.Active() != 2 {
		t.Fatalf("deploy: %d %q %q", code, out, errs)
	}
	if got := f.Items(fastly.SecretsDict)[fastly.PreviewAuthKey("candidate")]; got != "Basic dGVhbTpzM2NyZXQ=" {
		t.Errorf("preview credentials in the dictionary: %q", got)
	}
	if strings.Contains(out+errs, cliToken) || strings.Contains(out+errs, "s3cret") || strings.Contains(out+errs, "dGVhbTpzM2NyZXQ=") {
		t.Errorf("a secret was printed:\n%s%s", out, errs)
	}
	// A failing API: exit 1, the token not in the message.
	f.FailAlways(&cdntest.Failure{Status: 401})
	code, out, errs = run("-C", dir, "edge", "rollback", "--fastly", "--site", "party", "--fastly-api", f.URL)
	if code != 1 || strings.Contains(out+errs, cliToken) {
		t.Errorf("rollback against a failing API: %d %q %q", code, out, errs)
	}
	f.FailAlways(nil)
	code, out, errs = run("-C", dir, "edge", "rollback", "--fastly", "--site", "party", "--fastly-api", f.URL)
	if code != 0 || !strings.Contains(out, "activated version 1 (was 2)") || f.Active() != 1 {
		t.Errorf("rollback: %d %q %q", code, out, errs)
	}
	if code, _, errs := run("-C", dir, "edge", "deploy", "--site", "candidate"); code != 2 || !strings.Contains(errs, "--fastly") {
		t.Errorf("deploy without --fastly: %d %q", code, errs)
	}
}
