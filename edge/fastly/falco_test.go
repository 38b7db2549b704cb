package fastly

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stump-dev/stump/build/config"
	"github.com/stump-dev/stump/edge"
	"github.com/stump-dev/stump/internal/testenv"
)

// unitSites are the sites testdata/stump.test.vcl tests.
func unitSites(t testing.TB) []*config.Loaded {
	edgeYAML := "edge:\n  origin: http://127.0.0.1:9000\n  website_domain: s3-website-eu-west-1.amazonaws.com\n  fastly: { service_id: SU1Z0isxPaozGVKXdv0eY }\n"
	return []*config.Loaded{
		loadSite(t, "a", "baseURL: https://a.test/\ntarget: s3://bkt/a\n"+
			"redirects:\n  - { from: /old/, to: /new/ }\nheaders:\n  - { path: '*.pdf', values: { Content-Disposition: attachment } }\n"+
			edgeYAML+"  aliases: [www.a.test]\n  grace: 12h\n  not_found_ttl: 30s\n  query:\n    - { path: 'search/**', params: [q, page] }\n"+
			"  defenses: { blocked_countries: [RU], rate_limit: { requests: 3, per: 10s, count: all } }\n"),
		loadSite(t, "d", "baseURL: https://d.test/\ntarget: s3://bkt/d\ndeploy: { mode: atomic }\n"+edgeYAML+
			"  preview_host: preview.d.test\n  preview_auth_env: D_PREVIEW_AUTH\n"+
			"  defenses: { wordpress: false, blocked_status: 404, blocked_body: \"gone\\n\", rate_limit: { requests: 100, per: 1m } }\n"),
	}
}

// writeVCL writes Preamble + VCL of sites into a new folder and returns the file.
func writeVCL(t *testing.T, secrets map[string]string, sites ...*config.Loaded) (string, *edge.Plan) {
	t.Helper()
	plan, err := edge.NewPlan(nil, sites...)
	if err != nil {
		t.Fatal(err)
	}
	vcl, err := VCL(plan)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "main.vcl")
	if err := os.WriteFile(p, append(Preamble(plan, secrets), vcl...), 0o644); err != nil {
		t.Fatal(err)
	}
	return p, plan
}

var passedRE = regexp.MustCompile(`(\d+) passed`)

// TestFalcoUnit lints the generated VCL and runs the VCL unit tests of
// testdata/stump.test.vcl with falco.
func TestFalcoUnit(t *testing.T) {
	bin := testenv.Falco(t)
	main, _ := writeVCL(t, map[string]string{PreviewAuthKey("d"): "Basic cHJldmlldzpzM2NyZXQ="}, unitSites(t)...)
	ctx := context.Background()
	if out, err := Lint(ctx, bin, main); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	tests, err := os.ReadFile(filepath.Join("testdata", "stump.test.vcl"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "stump.test.vcl"), tests, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := Test(ctx, bin, main, dir)
	// falco runs every subroutine of a test file, the mocks too.
	want := len(regexp.MustCompile(`(?m)^sub `).FindAllIndex(tests, -1))
	m := passedRE.FindStringSubmatch(out)
	if err != nil || m == nil || m[1] != strconv.Itoa(want) || !strings.Contains(out, " 0 failed") {
		t.Fatalf("falco test: %v (want %d passed)\n%s", err, want, out)
	}
	t.Logf("falco test: %s", m[0])
}

// Each option on its own lints clean: the VCL declares every subroutine it calls,
// whatever the sites turn on.
func TestLintOptions(t *testing.T) {
	bin := testenv.Falco(t)
	min := "baseURL: https://a.example.org/\ntarget: s3://bkt/a\nedge:\n  origin: http://127.0.0.1:9000\n  origin_host: bkt.localhost\n"
	cases := map[string]string{
		"minimal":       min,
		"nothing on":    min + "  defenses: { wordpress: false }\n",
		"atomic":        min + "  preview_host: preview.example.org\ndeploy: { mode: atomic }\n",
		"in place":      min + "  preview_host: preview.example.org\n",
		"no probe":      min + "  probe: { disabled: true }\n",
		"rate all":      min + "  defenses: { wordpress: false, rate_limit: { requests: 5, per: 1s, count: all } }\n",
		"rate misses":   min + "  defenses: { rate_limit: { requests: 500, per: 5m } }\n",
		"countries":     min + "  defenses: { wordpress: false, blocked_countries: [RU, cn] }\n",
		"headers":       min + "  headers: { X-Frame-Options: '', Content-Security-Policy: \"default-src 'self' https://cdn.example.org\" }\nheaders:\n  - { path: 'a/[a-c]?/b*', values: { X-A: '1' } }\n",
		"query":         min + "  query:\n    - { path: '*.html', params: ['a[]', b.c] }\n",
		"preview auth":  min + "  preview_host: preview.example.org\n  preview_auth_env: X\ndeploy: { mode: atomic }\n",
		"blocked":       min + "  defenses: { blocked_status: 429, blocked_body: \"<p>Nothing \\\"here\\\"</p>\\n\" }\n",
		"odd site name": min,
	}
	for name, text := range cases {
		t.Run(name, func(t *testing.T) {
			site := "s"
			if name == "odd site name" {
				site = "my.site-2"
			}
			main, _ := writeVCL(t, map[string]string{PreviewAuthKey(site): "Basic eDp5"}, loadSite(t, site, text))
			if out, err := Lint(context.Background(), bin, main); err != nil {
				b, _ := os.ReadFile(main)
				t.Fatalf("%v\n%s\n--- VCL ---\n%s", err, out, b)
			}
		})
	}
	// No site at all: still a VCL (every host is a 404).
	main, _ := writeVCL(t, nil)
	if out, err := Lint(context.Background(), bin, main); err != nil {
		t.Fatalf("no sites: %v\n%s", err, out)
	}
}
