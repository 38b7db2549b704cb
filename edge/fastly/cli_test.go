package fastly_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stump-dev/stump/edge/fastly"
	"github.com/stump-dev/stump/internal/cli"
	"github.com/stump-dev/stump/internal/testenv"
	"github.com/stump-dev/stump/publish"
	"github.com/stump-dev/stump/publish/store/file"
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

// cliWorkspace has two sites on one Fastly service and one on Varnish; their targets
// are folders in tgt (tgt/c, tgt/p, tgt/v).
func cliWorkspace(t *testing.T) (dir, tgt string) {
	tgt = t.TempDir()
	edge := "edge:\n  origin: http://203.0.113.9:80\n  origin_host: bkt.s3-website-eu-west-1.amazonaws.com\n  fastly: { service_id: " + cliService + " }\n"
	return workspace(t, map[string]string{
		"candidate": "baseURL: https://candidate.test/\ntarget: file://" + tgt + "/c\ndeploy: { mode: atomic }\n" + edge +
			"  preview_host: preview.candidate.test\n  preview_auth_env: CANDIDATE_PREVIEW\n  defenses: { blocked_countries: [RU] }\n",
		"party":   "baseURL: https://party.test/\ntarget: file://" + tgt + "/p\n" + edge,
		"varnish": "baseURL: https://v.test/\ntarget: file://" + tgt + "/v\nedge:\n  origin: http://203.0.113.9:80\n  origin_host: v.example\n",
	}), tgt
}

func TestCLIVCLAndCheck(t *testing.T) {
	dir, _ := cliWorkspace(t)
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
	dir, _ := cliWorkspace(t)
	t.Setenv("PATH", t.TempDir())
	code, _, errs := run("-C", dir, "edge", "check", "--fastly")
	if code != 1 || !strings.Contains(errs, "falco is not installed") {
		t.Errorf("without falco: %d %q", code, errs)
	}
}

func TestCLIDeploy(t *testing.T) {
	dir, tgt := cliWorkspace(t)
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
	// Both sites of the service are told their edge reads layered deploys; the site on
	// Varnish is not.
	for site, want := range map[string]bool{"c": true, "p": true, "v": false} {
		if got := stamped(t, tgt, site); got != want {
			t.Errorf("target %s stamped: %v, want %v", site, got, want)
		}
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
	// Version 1 cannot read layers, and no layer was live: the stamps are gone.
	for _, site := range []string{"c", "p"} {
		if stamped(t, tgt, site) {
			t.Errorf("target %s still stamped after a rollback to a version without layers", site)
		}
	}
	if code, _, errs := run("-C", dir, "edge", "deploy", "--site", "candidate"); code != 2 || !strings.Contains(errs, "--fastly") {
		t.Errorf("deploy without --fastly: %d %q", code, errs)
	}
}

// stamped reports whether the target folder tgt/site holds an edge stamp that says
// its edge reads layers.
func stamped(t *testing.T, tgt, site string) bool {
	t.Helper()
	s, err := file.Open(filepath.Join(tgt, site))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	st, ok, err := publish.ReadEdgeStamp(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	return ok && st.Layers
}

// TestCLIEdgeLayers: a site on Fastly writes full trees until stump edge deploy
// --fastly stamps its target, then layers; an edge rollback to a version that cannot
// read layers is refused while a layer is live, and --force goes through.
func TestCLIEdgeLayers(t *testing.T) {
	dir, tgt := cliWorkspace(t)
	f := cdntest.NewFastlyAPI(t, cliService, cliToken)
	t.Setenv(fastly.TokenEnv, cliToken)
	t.Setenv("CANDIDATE_PREVIEW", "team:s3cret")
	page := filepath.Join(dir, "sites", "candidate", "content", "_index.md")
	if err := os.MkdirAll(filepath.Dir(page), 0o755); err != nil {
		t.Fatal(err)
	}
	publishText := func(text string) map[string]any {
		t.Helper()
		if err := os.WriteFile(page, []byte("---\ntitle: Home\n---\n"+text+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		code, out, errs := run("-C", dir, "publish", "--site", "candidate", "--json")
		if code != 0 {
			t.Fatalf("publish: %d %q %q", code, out, errs)
		}
		var r struct {
			Sites []struct {
				Result map[string]any `json:"result"`
			} `json:"sites"`
		}
		if err := json.Unmarshal([]byte(out), &r); err != nil || len(r.Sites) != 1 || r.Sites[0].Result == nil {
			t.Fatalf("publish --json: %v\n%s", err, out)
		}
		return r.Sites[0].Result
	}
	publishText("one")
	if r := publishText("two"); r["base"] != nil {
		t.Fatalf("before the edge is deployed: a layer over %v", r["base"])
	}
	if code, out, errs := run("-C", dir, "edge", "deploy", "--fastly", "--site", "candidate", "--fastly-api", f.URL); code != 0 || !strings.Contains(out, "site candidate: the edge reads layered deploys") {
		t.Fatalf("deploy: %d %q %q", code, out, errs)
	}
	// A new version takes a while to reach every POP: not a layer yet.
	if r := publishText("three"); r["base"] != nil {
		t.Fatalf("right after the edge is deployed: a layer over %v", r["base"])
	}
	// As if deployed earlier (publish.EdgeSettle ago).
	s, err := file.Open(filepath.Join(tgt, "c"))
	if err != nil {
		t.Fatal(err)
	}
	st, _, err := publish.ReadEdgeStamp(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	st.Time = st.Time.Add(-publish.EdgeSettle)
	if err := publish.WriteEdgeStamp(context.Background(), s, st); err != nil {
		t.Fatal(err)
	}
	s.Close()
	// A layer: the changed page, and the 404 page the VCL reads from the layer.
	if r := publishText("four"); r["base"] == nil || r["layer"] != 2.0 {
		t.Fatalf("after the edge is deployed: %v, want a layer of the page and the 404 page", r)
	}
	code, out, errs := run("-C", dir, "edge", "rollback", "--fastly", "--site", "candidate", "--fastly-api", f.URL)
	if code != 1 || !strings.Contains(errs, "candidate (deploy") || f.Active() != 2 || !stamped(t, tgt, "c") {
		t.Fatalf("rollback with a layer live: %d %q %q (active %d)", code, out, errs, f.Active())
	}
	code, out, errs = run("-C", dir, "edge", "rollback", "--fastly", "--site", "candidate", "--fastly-api", f.URL, "--force")
	if code != 0 || f.Active() != 1 || stamped(t, tgt, "c") {
		t.Fatalf("rollback --force: %d %q %q (active %d)", code, out, errs, f.Active())
	}
	if r := publishText("five"); r["base"] != nil {
		t.Errorf("after the edge rollback: a layer over %v", r["base"])
	}
}
