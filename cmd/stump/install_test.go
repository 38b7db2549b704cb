package main

import (
	"archive/zip"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stump-dev/stump/internal/testenv"
)

// `go install ./cmd/stump` from a clone puts a working stump into an empty GOBIN (the
// README's install line), and it answers --version.
func TestGoInstall(t *testing.T) {
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	gobin := t.TempDir()
	cmd := exec.Command("go", "install", "./cmd/stump")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOBIN="+gobin)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go install ./cmd/stump: %v\n%s", err, out)
	}
	out, err := exec.Command(filepath.Join(gobin, "stump"), "--version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "stump ") {
		t.Fatalf("the installed stump --version: %v: %s", err, out)
	}
}

// scripts/release builds an archive per target with the version stamped in, and
// SHA256SUMS that match the archives. Two targets here (the native one, run, and a
// Windows one, unpacked); the script builds all six by default.
func TestReleaseScript(t *testing.T) {
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dist := t.TempDir()
	cmd := exec.Command("./scripts/release", "v9.9.9-test")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "DIST="+dist, "TARGETS=linux/amd64 windows/arm64")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("scripts/release: %v\n%s", err, out)
	}
	sums, err := os.ReadFile(filepath.Join(dist, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(sums)), "\n")
	if len(lines) != 2 {
		t.Fatalf("SHA256SUMS has %d lines, want 2:\n%s", len(lines), sums)
	}
	for _, l := range lines {
		sum, name, ok := strings.Cut(l, "  ")
		if !ok {
			t.Fatalf("bad SHA256SUMS line %q", l)
		}
		b, err := os.ReadFile(filepath.Join(dist, name))
		if err != nil {
			t.Fatal(err)
		}
		if got := sha256.Sum256(b); hex.EncodeToString(got[:]) != sum {
			t.Errorf("%s: SHA256SUMS says %s, the file hashes to %x", name, sum, got)
		}
	}
	zr, err := zip.OpenReader(filepath.Join(dist, "stump_v9.9.9-test_windows_arm64.zip"))
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	found := false
	for _, f := range zr.File {
		found = found || strings.HasSuffix(f.Name, "/stump.exe")
	}
	if !found {
		t.Errorf("the Windows archive holds no stump.exe")
	}
	if testing.Short() {
		return
	}
	x := exec.Command("tar", "-xzf", filepath.Join(dist, "stump_v9.9.9-test_linux_amd64.tar.gz"), "-C", dist)
	if out, err := x.CombinedOutput(); err != nil {
		t.Fatalf("unpack: %v\n%s", err, out)
	}
	out, err := exec.Command(filepath.Join(dist, "stump_v9.9.9-test_linux_amd64", "stump"), "--version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "v9.9.9-test") {
		t.Errorf("the released stump --version does not name the version: %v: %s", err, out)
	}
}
