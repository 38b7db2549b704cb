package edge

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stump-dev/stump/build/config"
)

// loadSite reads a site.yaml written from text, as stump would.
func loadSite(t testing.TB, ws *config.Workspace, name, text string) *config.Loaded {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, "site.yaml")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if ws == nil {
		ws = &config.Workspace{}
	}
	l, err := config.ReadSite(ws, name, p, "sites/"+name+"/site.yaml")
	if err != nil {
		t.Fatalf("site %s: %v", name, err)
	}
	return l
}

// fullSite turns every option on.
func fullSite(t testing.TB) *config.Loaded {
	return loadSite(t, nil, "full", `
baseURL: https://www.example.org/
target: s3://sites-bucket/full?region=eu-west-1
deploy: { mode: atomic }
headers:
  - path: "*.pdf"
    values: { Content-Disposition: attachment, Cache-Control: "max-age=60" }
  - path: "downloads/**"
    values: { X-Robots-Tag: noindex }
  - path: "/news/*/index.html"
    values: { X-Frame-Options: "" }
redirects:
  - { from: /old/, to: /new/ }
  - { from: /gone, to: "https://elsewhere.example.com/x?a=1", status: 308 }
edge:
  origin: http://10.0.0.7:8080
  website_domain: s3-website-eu-west-1.amazonaws.com
  aliases: [example.org, WWW.Example.COM]
  preview_host: preview.example.org
  grace: 12h
  purgers: ["10.1.0.0/16", "192.0.2.4"]
  trusted_proxies: ["10.2.0.0/16", "2001:db8::/32"]
  purge_token_env: FULL_PURGE_TOKEN
  purge_listener: purge
  preview_auth_env: FULL_PREVIEW_AUTH
  not_found_ttl: 30s
  query:
    - { path: "search/**", params: [q, page] }
  headers:
    Content-Security-Policy: "default-src 'self'; img-src 'self' data:"
    X-Extra: "a \"quoted\" value"
  probe: { interval: 3s, timeout: 1s, window: 4, threshold: 2 }
  defenses:
    wordpress: true
    geo_header: CF-IPCountry
    blocked_countries: [ru, KP]
    rate_limit: { requests: 100, per: 10s }
    blocked_status: 429
    blocked_body: "Slow down.\n"
`)
}

// varnishd finds varnishd; it skips the test without one (fails it under CI=true).
func varnishd(t testing.TB) string {
	t.Helper()
	bin, err := FindVarnishd()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	return bin
}

// compile runs varnishd -C on vcl and fails the test with the compiler's message.
func compile(t testing.TB, vcl []byte) {
	t.Helper()
	bin := varnishd(t)
	if err := Compile(bin, vcl, t.TempDir()); err != nil {
		if strings.Contains(err.Error(), "VMOD") && os.Getenv("CI") != "true" {
			t.Skip(err)
		}
		t.Fatalf("%v\n--- VCL ---\n%s", err, numbered(vcl))
	}
}

func numbered(b []byte) string {
	var out strings.Builder
	for i, l := range strings.Split(string(b), "\n") {
		fmt.Fprintf(&out, "%4d: %s\n", i+1, l)
	}
	return out.String()
}

func writeTemp(t testing.TB, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "site.yaml")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
