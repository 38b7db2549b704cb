package purge

import (
	"strings"
	"testing"
)

func TestSettings(t *testing.T) {
	env := map[string]string{"MY_TOKEN": " t0k "}
	s := NewSettings("cdn[2].fastly", map[string]any{
		"service": "SVC", "soft": true, "n": uint64(40), "f": 3.0, "list": []any{"a", "b"}, "typo": 1, "token_env": "MY_TOKEN",
	}, func(k string) string { return env[k] })
	if v, err := s.String("service", true); v != "SVC" || err != nil {
		t.Errorf("service = %q, %v", v, err)
	}
	if _, err := s.String("missing", true); err == nil || err.Error() != "cdn[2].fastly.missing is required" {
		t.Errorf("missing: %v", err)
	}
	if v, err := s.Bool("soft"); !v || err != nil {
		t.Errorf("soft = %v, %v", v, err)
	}
	if v, err := s.Int("n", 1, 1, 100); v != 40 || err != nil {
		t.Errorf("n = %d, %v", v, err)
	}
	if _, err := s.Int("f", 1, 5, 10); err == nil || !strings.Contains(err.Error(), "cdn[2].fastly.f must be between 5 and 10, not 3") {
		t.Errorf("f: %v", err)
	}
	if v, err := s.Strings("list", true); len(v) != 2 || err != nil {
		t.Errorf("list = %q, %v", v, err)
	}
	if _, err := s.Bool("service"); err == nil || !strings.Contains(err.Error(), `must be true or false, not "SVC"`) {
		t.Errorf("bool of a string: %v", err)
	}
	tok, err := s.Token("token_env", "DEFAULT_TOKEN")
	if err != nil || string(tok) != "t0k" {
		t.Errorf("token: %v", err)
	}
	if err := s.Done(); err == nil || !strings.Contains(err.Error(), `cdn[2].fastly: unknown setting "typo"`) {
		t.Errorf("done: %v", err)
	}

	s2 := NewSettings("cdn[0].cloudflare", map[string]any{}, func(string) string { return "" })
	if _, err := s2.Token("token_env", "CLOUDFLARE_API_TOKEN"); err == nil || err.Error() != "cdn[0].cloudflare: the API token is read from the environment variable CLOUDFLARE_API_TOKEN, which is empty or unset" {
		t.Errorf("missing token: %v", err)
	}
	s3 := NewSettings("cdn[0].fastly", map[string]any{"token_env": "abc def"}, nil)
	if _, err := s3.Token("token_env", "X"); err == nil || strings.Contains(err.Error(), "abc def") {
		t.Errorf("a token pasted into token_env must be refused without echoing it: %v", err)
	}
	if m, err := NewSettings("p", map[string]any{"mode": "tagz"}, nil).OneOf("mode", "files", "tags"); err == nil || m != "" {
		t.Errorf("OneOf accepted %q", m)
	}
}

func TestFromConfigErrors(t *testing.T) {
	for _, c := range []struct {
		cdn  []map[string]any
		want string
	}{
		{[]map[string]any{{}}, "cdn[0] must name one CDN"},
		{[]map[string]any{{"akamai": map[string]any{}}}, `cdn[0]: "akamai" is not a CDN stump knows`},
		{[]map[string]any{{"fastly": map[string]any{}}}, "cdn[0]: the fastly adapter is not linked into this program"},
	} {
		_, err := FromConfig(t.Context(), c.cdn, nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: err %v, want %q", c.cdn, err, c.want)
		}
	}
}
