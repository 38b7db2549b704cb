package cli

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestShardCoversEverySiteOnce: for any N, the N shares hold every site exactly once,
// and differ in size by at most one.
func TestShardCoversEverySiteOnce(t *testing.T) {
	var sites []string
	for i := range 151 {
		sites = append(sites, fmt.Sprintf("site-%03d", (i*37)%151)) // not sorted
	}
	for n := 1; n <= 12; n++ {
		seen := map[string]int{}
		lo, hi := len(sites), 0
		for i := 1; i <= n; i++ {
			part := shard(sites, i, n)
			lo, hi = min(lo, len(part)), max(hi, len(part))
			for _, s := range part {
				seen[s]++
			}
			if !slices.Equal(part, shard(sites, i, n)) {
				t.Fatalf("%d/%d is not deterministic", i, n)
			}
		}
		for _, s := range sites {
			if seen[s] != 1 {
				t.Fatalf("N=%d: %s in %d shares", n, s, seen[s])
			}
		}
		if hi-lo > 1 {
			t.Errorf("N=%d: shares of %d to %d sites", n, lo, hi)
		}
	}
	for _, bad := range []string{"0/2", "3/2", "1", "a/b", "1/0", "-1/2"} {
		if _, _, err := parseShard(bad); err == nil {
			t.Errorf("parseShard(%q) accepted", bad)
		}
	}
}

// TestScheduledPageIsNotSkipped: publish --all and build skip a site whose inputs did
// not change, but not once the clock passes a page's publishDate: the page scheduled
// for then must go out with no other change (election-night posts).
func TestScheduledPageIsNotSkipped(t *testing.T) {
	dir := t.TempDir()
	due := time.Now().Add(3 * time.Second).UTC()
	files := map[string]string{
		"stump.yaml":                 "output: public\n",
		"sites/x/site.yaml":          "title: X\nbaseURL: https://x.example.org/\n",
		"sites/x/content/_index.md":  "---\ntitle: Home\n---\nHi.\n",
		"sites/x/content/a.md":       "---\ntitle: A\n---\nOne.\n",
		"sites/x/content/results.md": "---\ntitle: Results\npublishDate: " + due.Format(time.RFC3339Nano) + "\n---\nWe won.\n",
		"sites/y/site.yaml":          "title: Y\nbaseURL: https://y.example.org/\n",
		"sites/y/content/_index.md":  "---\ntitle: Home\n---\nHi.\n",
	}
	for p, c := range files {
		os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755)
		os.WriteFile(filepath.Join(dir, p), []byte(c), 0o644)
	}
	live := filepath.Join(dir, ".stump", "targets", "x", "results", "index.html")
	built := filepath.Join(dir, "public", "x", "results", "index.html")
	step := func(what string, args ...string) string {
		t.Helper()
		code, out, errs := run(t, dir, args...)
		if code != 0 {
			t.Fatalf("%s: exit %d\n%s\n%s", what, code, out, errs)
		}
		return out
	}
	step("first publish", "publish", "--all")
	step("first build", "build", "--all")
	if out := step("publish, nothing changed", "publish", "--all"); strings.Count(out, "unchanged since") != 2 {
		t.Fatalf("before the page is due, both sites should be unchanged:\n%s", out)
	}
	if out := step("build, nothing changed", "build", "--all"); strings.Count(out, "unchanged since") != 2 {
		t.Fatalf("before the page is due, both builds should be skipped:\n%s", out)
	}
	if _, err := os.Stat(live); err == nil {
		t.Fatal("the scheduled page is live before its publishDate")
	}
	time.Sleep(time.Until(due) + 100*time.Millisecond)
	out := step("publish after the page is due", "publish", "--all")
	if !strings.Contains(out, "x: deploy") || !strings.Contains(out, "y: unchanged since") {
		t.Fatalf("after the publishDate x must be published again, y not:\n%s", out)
	}
	if _, err := os.Stat(live); err != nil {
		t.Fatalf("the scheduled page is not live after its publishDate: %v", err)
	}
	if out := step("build after the page is due", "build", "--all"); !strings.Contains(out, "x: ") || strings.Contains(out, "x: unchanged") {
		t.Fatalf("after the publishDate x must be built again:\n%s", out)
	}
	if _, err := os.Stat(built); err != nil {
		t.Fatalf("the scheduled page is not in the build after its publishDate: %v", err)
	}
}

// TestPublishAllAsksGitOnce: every deploy of publish --all records the workspace's
// revision, worked out once per run: `git status` reads every tracked file of the
// workspace, and running it once per site cost 15 s of CPU over 150 sites.
func TestPublishAllAsksGitOnce(t *testing.T) {
	realGit, err := exec.LookPath("git")
	if err != nil {
		t.Skip("git is not installed")
	}
	dir := t.TempDir()
	files := map[string]string{"stump.yaml": "output: public\n", ".gitignore": "public/\n.stump/\n"}
	for _, s := range []string{"a", "b", "c"} {
		files["sites/"+s+"/site.yaml"] = "title: " + s + "\nbaseURL: https://" + s + ".example.org/\n"
		files["sites/"+s+"/content/_index.md"] = "---\ntitle: Home\n---\nHi.\n"
	}
	for p, c := range files {
		os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755)
		os.WriteFile(filepath.Join(dir, p), []byte(c), 0o644)
	}
	for _, args := range [][]string{{"init", "-q"}, {"add", "."}, {"-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-qm", "sites"}} {
		if out, err := exec.Command("git", append([]string{"-C", dir}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	head, err := exec.Command("git", "-C", dir, "rev-parse", "--short=12", "HEAD").Output()
	if err != nil {
		t.Fatal(err)
	}
	// A git on PATH that logs its arguments, then runs the real one.
	bin, calls := t.TempDir(), filepath.Join(t.TempDir(), "calls")
	script := "#!/bin/sh\necho \"$@\" >>" + calls + "\nexec " + realGit + " \"$@\"\n"
	if err := os.WriteFile(filepath.Join(bin, "git"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))

	check := func(want string, sites ...string) {
		t.Helper()
		os.Remove(calls)
		if code, out, errs := run(t, dir, "publish", "--all"); code != 0 {
			t.Fatalf("publish --all: exit %d\n%s\n%s", code, out, errs)
		}
		log, _ := os.ReadFile(calls)
		if n := strings.Count(string(log), " status "); n != 1 {
			t.Errorf("git status ran %d times for %d sites, want once:\n%s", n, len(sites), log)
		}
		for _, s := range sites {
			code, out, errs := run(t, dir, "deploys", "--site", s, "--json")
			if code != 0 {
				t.Fatalf("deploys: exit %d\n%s", code, errs)
			}
			if first, _, _ := strings.Cut(out, "}"); !strings.Contains(first, `"revision": "`+want+`"`) {
				t.Errorf("%s: the last deploy does not record revision %q:\n%s", s, want, out)
			}
		}
	}
	check(strings.TrimSpace(string(head)), "a", "b", "c")
	os.WriteFile(filepath.Join(dir, "sites/b/content/_index.md"), []byte("---\ntitle: Home\n---\nEdited.\n"), 0o644)
	check(strings.TrimSpace(string(head))+"-dirty", "b")
}
