package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var camel = regexp.MustCompile(`^[a-z][A-Za-z0-9]*$`)

// checkKeys reports object keys that are not lower camel case, below path. Maps whose
// keys are data (object metadata, purge documents) are not walked.
func checkKeys(t *testing.T, what, path string, v any) {
	t.Helper()
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if !camel.MatchString(k) {
				t.Errorf("%s: key %q at %s is not lower camel case", what, k, path)
			}
			if k == "metadata" || k == "pendingPurge" {
				continue
			}
			checkKeys(t, what, path+"."+k, e)
		}
	case []any:
		for _, e := range x {
			checkKeys(t, what, path+"[]", e)
		}
	}
}

// TestJSONEverywhere runs every command that takes --json, once to succeed and once to
// fail, and checks the document docs/json.md describes: one object on stdout with
// "version": 1, "ok", "error" when ok is false, and lower-camel-case keys.
func TestJSONEverywhere(t *testing.T) {
	ws := t.TempDir()
	files := map[string]string{
		"stump.yaml":                  "output: public\n",
		"sites/x/site.yaml":           "title: X\nbaseURL: https://x.example.org/\n",
		"sites/x/content/_index.md":   "---\ntitle: Home\n---\nHello.\n",
		"sites/x/content/about.md":    "---\ntitle: About\n---\nAbout.\n",
		"sites/bad/site.yaml":         "title: Bad\nbaseURL: https://bad.example.org/\n",
		"sites/bad/content/_index.md": "---\ntitle: [unclosed\n---\n",
	}
	for name, body := range files {
		p := filepath.Join(ws, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("STUMP_USER", "tester")
	run := func(args ...string) (int, map[string]any) {
		t.Helper()
		var out, errb bytes.Buffer
		code := Main(append([]string{"stump", "-C", ws}, args...), strings.NewReader(""), &out, &errb)
		var doc map[string]any
		dec := json.NewDecoder(bytes.NewReader(out.Bytes()))
		if err := dec.Decode(&doc); err != nil {
			t.Fatalf("stump %s: stdout is not a JSON object (%v):\n%s\nstderr:\n%s", strings.Join(args, " "), err, out.String(), errb.String())
		}
		if dec.More() {
			t.Errorf("stump %s: more than one JSON document on stdout:\n%s", strings.Join(args, " "), out.String())
		}
		return code, doc
	}
	bad := "file://" + filepath.Join(ws, "nonexistent-parent", "t")
	cases := []struct {
		name   string
		args   []string
		wantOK bool
	}{
		{"build ok", []string{"build", "--site", "x", "--json"}, true},
		{"build failed", []string{"build", "--site", "bad", "--json"}, false},
		{"build no site", []string{"build", "--site", "ghost", "--json"}, false},
		{"publish ok", []string{"publish", "--site", "x", "--json"}, true},
		{"publish failed", []string{"publish", "--site", "bad", "--json"}, false},
		{"publish again", []string{"publish", "--site", "x", "--json", "-m", "second"}, true},
		{"deploys ok", []string{"deploys", "--site", "x", "--json"}, true},
		{"deploys failed", []string{"deploys", "--site", "x", "--target", bad, "--json"}, false},
		{"status ok", []string{"status", "--site", "x", "--json"}, true},
		{"status failed", []string{"status", "--site", "x", "--target", bad, "--json"}, false},
		{"verify ok", []string{"verify", "--site", "x", "--json"}, true},
		{"verify failed", []string{"verify", "--site", "x", "--target", bad, "--json"}, false},
		{"rollback failed", []string{"rollback", "--site", "x", "--json"}, false},
		{"gc ok", []string{"gc", "--site", "x", "--json"}, true},
		{"gc failed", []string{"gc", "--site", "x", "--target", bad, "--json"}, false},
		{"doctor ok", []string{"doctor", "--site", "x", "--json"}, true},
		{"doctor failed", []string{"doctor", "--site", "x", "--target", bad, "--json"}, false},
	}
	for _, tc := range cases {
		code, doc := run(tc.args...)
		what := tc.name + " (stump " + strings.Join(tc.args, " ") + ")"
		if v, _ := doc["version"].(float64); v != JSONVersion {
			t.Errorf("%s: version %v, want %d", what, doc["version"], JSONVersion)
		}
		ok, isBool := doc["ok"].(bool)
		if !isBool || ok != tc.wantOK {
			t.Errorf("%s: ok %v, want %v", what, doc["ok"], tc.wantOK)
		}
		if e, _ := doc["error"].(string); !ok && e == "" {
			t.Errorf("%s: ok is false but there is no error: %v", what, doc)
		}
		if (code == 0) != tc.wantOK {
			t.Errorf("%s: exit %d", what, code)
		}
		checkKeys(t, what, "", doc)
	}
}
