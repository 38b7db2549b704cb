package cli

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
)

// TestGithubWorkflow: the workflow is valid YAML with OIDC permissions, a preview job
// on pull requests and a publish matrix of N shards with --changed-since, and its jq
// summaries read what stump publish --json prints.
func TestGithubWorkflow(t *testing.T) {
	text := githubWorkflow(workflowOptions{Dir: "web", Shards: 3, Branch: "trunk", Region: "eu-west-1", Version: "v1.2.3"})
	var wf struct {
		On          map[string]any    `yaml:"on"`
		Permissions map[string]string `yaml:"permissions"`
		Env         map[string]string `yaml:"env"`
		Jobs        map[string]struct {
			If       string `yaml:"if"`
			Strategy struct {
				Matrix struct {
					Shard []int `yaml:"shard"`
				} `yaml:"matrix"`
			} `yaml:"strategy"`
			Steps []struct {
				Uses string            `yaml:"uses"`
				Run  string            `yaml:"run"`
				With map[string]string `yaml:"with"`
			} `yaml:"steps"`
		} `yaml:"jobs"`
	}
	if err := yaml.Unmarshal([]byte(text), &wf); err != nil {
		t.Fatalf("not YAML: %v\n%s", err, text)
	}
	if wf.Permissions["id-token"] != "write" || wf.Env["STUMP_DIR"] != "web" {
		t.Errorf("permissions %v env %v", wf.Permissions, wf.Env)
	}
	if _, ok := wf.On["pull_request"]; !ok || !strings.Contains(text, "branches: [trunk]") {
		t.Errorf("triggers %v", wf.On)
	}
	pub, pre := wf.Jobs["publish"], wf.Jobs["preview"]
	if !slices.Equal(pub.Strategy.Matrix.Shard, []int{1, 2, 3}) {
		t.Errorf("matrix %v", pub.Strategy.Matrix.Shard)
	}
	runs := func(steps []struct {
		Uses string            `yaml:"uses"`
		Run  string            `yaml:"run"`
		With map[string]string `yaml:"with"`
	}) (string, bool) {
		var all []string
		oidc := false
		for _, s := range steps {
			all = append(all, s.Run)
			if strings.HasPrefix(s.Uses, "aws-actions/configure-aws-credentials@") && s.With["role-to-assume"] != "" {
				oidc = true
			}
		}
		return strings.Join(all, "\n"), oidc
	}
	pubRun, pubOIDC := runs(pub.Steps)
	preRun, preOIDC := runs(pre.Steps)
	for _, want := range []string{"--changed-since", "--shard ${{ matrix.shard }}/3", "GITHUB_STEP_SUMMARY", "stump@v1.2.3"} {
		if !strings.Contains(pubRun, want) {
			t.Errorf("publish job lacks %q", want)
		}
	}
	for _, want := range []string{"--preview", "--changed-since", "previewURL", "GITHUB_STEP_SUMMARY"} {
		if !strings.Contains(preRun, want) {
			t.Errorf("preview job lacks %q", want)
		}
	}
	if !pubOIDC || !preOIDC || strings.Contains(text, "AWS_SECRET_ACCESS_KEY") {
		t.Error("credentials are not from OIDC alone")
	}

	// The summaries' jq programs on publish --json output.
	jq, err := exec.LookPath("jq")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("jq is needed to check the workflow's summaries")
		}
		t.Skip("no jq here to check the summaries with")
	}
	sample := `{"ok":false,"sites":[
	 {"site":"a","ok":true,"unchanged":true,"result":{"deploy":"d1","noop":true}},
	 {"site":"b","ok":true,"result":{"deploy":"d2"}},
	 {"site":"c","ok":true,"result":{"deploy":"d3","preview":true},"previewURL":"https://d3.preview.example.org/"},
	 {"site":"d","ok":false,"error":"boom"}]}`
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "out.json"), []byte(sample), 0o644); err != nil {
		t.Fatal(err)
	}
	for job, want := range map[string][]string{
		pubRun: {"- **a**: unchanged", "- **b**: deploy d2 is live", "- **d**: failed: boom"},
		preRun: {"- **c**: https://d3.preview.example.org/", "- **b**: deploy d2 (set edge.preview_host", "- **d**: failed: boom"},
	} {
		i := strings.Index(job, "jq -r '")
		prog := job[i+len("jq -r '"):]
		prog = prog[:strings.Index(prog, "'")]
		out, err := exec.Command(jq, "-r", prog, filepath.Join(dir, "out.json")).CombinedOutput()
		if err != nil {
			t.Fatalf("jq %s: %v\n%s", prog, err, out)
		}
		for _, w := range want {
			if !strings.Contains(string(out), w) {
				t.Errorf("summary lacks %q:\n%s", w, out)
			}
		}
	}
}
