package cdns

import (
	"strings"
	"testing"

	"github.com/goccy/go-yaml"

	"github.com/stump-dev/stump/purge"
)

const siteYAML = `
cdn:
  - varnish: { endpoints: ["http://127.0.0.1:6081"], mode: xkey }
  - fastly: { service: SERVICE_ID, token_env: MY_FASTLY, soft: true }
  - cloudfront: { distribution: E123ABC, max_paths: 200 }
  - cloudflare: { zone: ZONE_ID, mode: tags, per_request: 100 }
`

func TestFromConfigAllKinds(t *testing.T) {
	t.Setenv("AWS_CONFIG_FILE", "/dev/null")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	var cfg struct {
		CDN []map[string]any `yaml:"cdn"`
	}
	if err := yaml.Unmarshal([]byte(siteYAML), &cfg); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"MY_FASTLY": "fastly-secret-1", "CLOUDFLARE_API_TOKEN": "cf-secret-2"}
	cdns, err := FromConfig(t.Context(), cfg.CDN, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range cdns {
		names = append(names, c.Name())
		if _, ok := c.(purge.Previewer); !ok {
			t.Errorf("%s cannot preview (--plan)", c.Name())
		}
	}
	if got := strings.Join(names, " "); got != "varnish:127.0.0.1:6081 fastly:SERVICE_ID cloudfront:E123ABC cloudflare:ZONE_ID" {
		t.Errorf("names %q", got)
	}
}

func TestFromConfigErrors(t *testing.T) {
	env := func(k string) string {
		return map[string]string{"FASTLY_API_TOKEN": "fastly-secret-1", "CLOUDFLARE_API_TOKEN": "cf-secret-2"}[k]
	}
	for _, c := range []struct {
		yaml, want string
	}{
		{"- fastly: { soft: true }", "cdn[0].fastly.service is required"},
		{"- varnish: { endpoints: [\"http://a:1\"] }\n- fastly: { service: S, sofft: true }", `cdn[1].fastly: unknown setting "sofft"`},
		{"- cloudflare: { zone: Z, token_env: NOPE }", "cdn[0].cloudflare: the API token is read from the environment variable NOPE, which is empty or unset"},
		{"- cloudfront: {}", "cdn[0].cloudfront.distribution is required"},
		{"- cloudfront: { distribution: E1, max_paths: 9000 }", "cdn[0].cloudfront.max_paths must be between 1 and 3000, not 9000"},
		{"- varnish: { mode: xkey }", "cdn[0].varnish.endpoints is required"},
		{"- varnish: { endpoints: [\"http://a:1\"], mode: shout }", "cdn[0].varnish.mode must be one of"},
		{"- fastly: { service: S }\n- fastly: { service: S }", "cdn[1]: fastly:S is listed twice (also cdn[0])"},
		{"- fastly: yes", "cdn[0].fastly must be a map of settings"},
	} {
		var cdn []map[string]any
		if err := yaml.Unmarshal([]byte(c.yaml), &cdn); err != nil {
			t.Fatal(err)
		}
		_, err := FromConfig(t.Context(), cdn, env)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s:\n got %v\nwant %q", c.yaml, err, c.want)
			continue
		}
		if strings.Contains(err.Error(), "secret") {
			t.Errorf("error shows a token: %v", err)
		}
	}
}
