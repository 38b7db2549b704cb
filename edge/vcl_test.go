package edge

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/stump-dev/stump/build"
	"github.com/stump-dev/stump/build/config"
)

// The example workspace's sites have no edge: section: the VCL routes nothing but
// compiles; with an edge added to each, it routes them all.
func TestCompileExampleWorkspace(t *testing.T) {
	ws, err := build.Open(filepath.Join("..", "."))
	if err != nil {
		t.Fatal(err)
	}
	names, err := ws.Sites()
	if err != nil || len(names) == 0 {
		t.Fatalf("sites: %v %v", names, err)
	}
	var sites []*config.Loaded
	for _, n := range names {
		cfg, err := ws.LoadSiteConfig(n)
		if err != nil {
			t.Fatal(err)
		}
		sites = append(sites, cfg)
	}
	vcl, err := VCL(ws.Config, sites...)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(vcl), "backend default none;") {
		t.Errorf("sites without edge: should give a VCL without backends")
	}
	compile(t, vcl)

	for i, cfg := range sites {
		c := *cfg
		c.Edge = &config.Edge{Origin: "http://127.0.0.1:9000", OriginHost: names[i] + ".localhost"}
		sites[i] = &c
	}
	vcl, err = VCL(ws.Config, sites...)
	if err != nil {
		t.Fatal(err)
	}
	for _, cfg := range sites {
		if !strings.Contains(string(vcl), `req.http.Host == "`+cfg.Base.Hostname()+`"`) {
			t.Errorf("no route for %s (%s)", cfg.Name, cfg.Base.Hostname())
		}
	}
	compile(t, vcl)
}

const minimal = `
baseURL: https://a.example.org/
target: s3://bucket/a
edge:
  origin: http://127.0.0.1:9000
  origin_host: bucket.localhost
`

// Each option on its own, and all of them at once, compile.
func TestCompileOptions(t *testing.T) {
	cases := map[string]string{
		"minimal":        minimal,
		"atomic":         minimal + "  preview_host: preview.example.org\ndeploy: { mode: atomic }\n",
		"inplace-prev":   minimal + "  preview_host: preview.example.org\n",
		"aliases":        minimal + "  aliases: [example.org, old.example.org]\n",
		"no-probe":       minimal + "  probe: { disabled: true }\n",
		"probe":          minimal + "  probe: { url: /health.txt, interval: 500ms, timeout: 200ms, window: 8, threshold: 5 }\n",
		"grace":          minimal + "  grace: 1h\n  not_found: /errors/404/index.html\n",
		"headers":        minimal + "  headers: { Content-Security-Policy: \"default-src 'self' https://cdn.example.org\", X-Frame-Options: '' }\nheaders:\n  - { path: '**/*.pdf', values: { X-Robots-Tag: noindex } }\n  - { path: 'a/[a-c]?/b*', values: { X-A: '1' } }\n",
		"redirects":      minimal + "redirects:\n  - { from: /a/, to: /b/ }\n  - { from: /c, to: 'https://x.example.org/', status: 302 }\n",
		"wordpress-off":  minimal + "  defenses: { wordpress: false }\n",
		"geo":            minimal + "  trusted_proxies: [10.0.0.1]\n  defenses: { blocked_countries: [RU, cn] }\n",
		"geo-header":     minimal + "  trusted_proxies: [10.0.0.1]\n  defenses: { geo_header: CF-IPCountry, blocked_countries: [RU] }\n",
		"rate":           minimal + "  defenses: { rate_limit: { requests: 100, per: 10s } }\n",
		"rate-proxies":   minimal + "  trusted_proxies: [10.0.0.0/8, '2001:db8::/32']\n  defenses: { rate_limit: { requests: 5, per: 1m, count: all } }\n",
		"query":          minimal + "  query:\n    - { path: 'search/**', params: [q, page] }\n    - { path: '*.html', params: ['a[]'] }\n",
		"purge":          minimal + "  purge_token_env: MY_TOKEN\n  purge_listener: purge\n  not_found_ttl: 5m\n",
		"preview-auth":   minimal + "  preview_host: preview.example.org\n  preview_auth_env: PREVIEW_AUTH\ndeploy: { mode: atomic }\n",
		"blocked":        minimal + "  defenses: { blocked_status: 404, blocked_body: \"<p>Nothing \\\"here\\\"</p>\\n\" }\n",
		"purgers":        minimal + "  purgers: [10.0.0.0/8, '2001:db8::/32', 192.0.2.1]\n",
		"website-domain": "target: s3://bkt/p?region=eu-west-1\nedge:\n  host: x.example.org\n  origin: http://localhost:9000\n  website_domain: localhost\n",
	}
	for name, text := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			vcl, err := VCL(nil, loadSite(t, nil, "s", text))
			if err != nil {
				t.Fatal(err)
			}
			compile(t, vcl)
		})
	}
	t.Run("full", func(t *testing.T) {
		other := loadSite(t, nil, "other", strings.Replace(minimal, "a.example.org", "b.example.org", 1))
		vcl, err := VCL(nil, fullSite(t), other)
		if err != nil {
			t.Fatal(err)
		}
		compile(t, vcl)
		for _, want := range []string{"vcl 4.1;", "import vsthrottle;", "xkey.purge", "std.querysort",
			"beresp.grace = 43200s", `"10.1.0.0"/16`, "_stump/trees/", "_stump/live", "CF-IPCountry",
			`vsthrottle.is_denied("full:"`, "set resp.status = 429", `resp.http.X-Extra = {"a "quoted" value"}`} {
			if !strings.Contains(string(vcl), want) {
				t.Errorf("the VCL lacks %q", want)
			}
		}
	})
}

// A broken config is an error that names the file and the setting, and no VCL.
func TestBrokenConfig(t *testing.T) {
	cases := map[string]struct{ text, want string }{
		"country":       {minimal + "  trusted_proxies: [10.0.0.1]\n  defenses: { blocked_countries: [USA] }\n", `blocked_countries: "USA" is not a two-letter`},
		"country2":      {minimal + "  trusted_proxies: [10.0.0.1]\n  defenses: { blocked_countries: [\"1x\"] }\n", `"1x" is not a two-letter`},
		"geo-untrusted": {minimal + "  defenses: { blocked_countries: [RU] }\n", "blocked_countries needs edge.trusted_proxies"},
		"trust-xff":     {minimal + "  defenses: { trust_xff: true }\n", "trust_xff is gone"},
		"rate-count":    {minimal + "  defenses: { rate_limit: { requests: 5, per: 1m, count: hits } }\n", "rate_limit.count"},
		"query-params":  {minimal + "  query: [{ path: 'a/**' }]\n", "edge.query[0]: no params"},
		"query-name":    {minimal + "  query: [{ path: 'a/**', params: ['a b'] }]\n", `"a b" is not a query parameter`},
		"token-env":     {minimal + "  purge_token_env: 'BAD-NAME'\n", "edge.purge_token_env"},
		"trusted":       {minimal + "  trusted_proxies: [lb]\n", "edge.trusted_proxies"},
		"nf-ttl":        {minimal + "  not_found_ttl: 10ms\n", "not_found_ttl"},
		"preview-auth":  {minimal + "  preview_auth_env: X\n", "preview_host is not"},
		"glob":          {minimal + "headers:\n  - { path: 'a//b.txt', values: { X-A: '1' } }\n", `headers[0]: path "a//b.txt": an empty path segment`},
		"origin-https":  {strings.Replace(minimal, "http://127", "https://127", 1), "is not http://host:port"},
		"origin-ip":     {"baseURL: https://a.example.org/\nedge:\n  origin: http://127.0.0.1:9000\n", "set edge.origin_host"},
		"rate":          {minimal + "  defenses: { rate_limit: { requests: 0, per: 10s } }\n", "rate_limit.requests"},
		"rate-per":      {minimal + "  defenses: { rate_limit: { requests: 10, per: soon } }\n", "rate_limit.per"},
		"status":        {minimal + "  defenses: { blocked_status: 301 }\n", "blocked_status"},
		"header-name":   {minimal + "  headers: { 'X Bad': v }\n", `"X Bad" is not a header name`},
		"host":          {minimal + "  host: 'bad host'\n", "edge.host"},
		"purgers":       {minimal + "  purgers: [everyone]\n", "edge.purgers"},
		"grace":         {minimal + "  grace: forever\n", "edge.grace"},
		"probe":         {minimal + "  probe: { window: 3, threshold: 4 }\n", "edge.probe"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			vcl, err := VCL(nil, loadSite(t, nil, "s", c.text))
			if err == nil {
				t.Fatalf("no error; VCL:\n%s", vcl)
			}
			if vcl != nil {
				t.Errorf("a VCL came with the error")
			}
			if !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "sites/s/site.yaml") {
				t.Errorf("error %q should name sites/s/site.yaml and say %q", err, c.want)
			}
		})
	}
	t.Run("missing-origin", func(t *testing.T) {
		ws := &config.Workspace{}
		_, err := config.ReadSite(ws, "s", writeTemp(t, "edge:\n  host: a.example.org\n"), "sites/s/site.yaml")
		if err == nil || !strings.Contains(err.Error(), "edge needs origin") {
			t.Errorf("got %v", err)
		}
	})
	t.Run("duplicate-host", func(t *testing.T) {
		_, err := VCL(nil, loadSite(t, nil, "a", minimal), loadSite(t, nil, "b", minimal))
		if err == nil || !strings.Contains(err.Error(), "already the host of site a") {
			t.Errorf("got %v", err)
		}
	})
	t.Run("deploy-mode", func(t *testing.T) {
		_, err := config.ReadSite(&config.Workspace{}, "s", writeTemp(t, "deploy: { mode: swap }\n"), "sites/s/site.yaml")
		if err == nil || !strings.Contains(err.Error(), "deploy.mode must be inplace or atomic") {
			t.Errorf("got %v", err)
		}
	})
}

func TestGlobRegex(t *testing.T) {
	for _, c := range []struct{ glob, want string }{
		{"*.pdf", `/[^/]*\.pdf$`},
		{"/downloads/**", `^/downloads/.*$`},
		{"a/**/b.txt", `^/a/([^/]+/)*b\.txt$`},
		{"news/?/[!a]x", `^/news/[^/]/[\!a]x$`},
		{"x/[^a-c]", `^/x/[^/a-c]$`},
	} {
		got, err := globRegex(c.glob)
		if err != nil || got != c.want {
			t.Errorf("globRegex(%q) = %q, %v; want %q", c.glob, got, err, c.want)
		}
	}
}
