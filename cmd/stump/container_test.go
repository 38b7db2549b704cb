package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stump-dev/stump/internal/testenv"
)

// The Dockerfile makes an image with stump and CA certificates only: FROM scratch, the
// static binary and the bundle that scripts/container puts in dist/container/, a
// non-root user, stump as the entry point. (No container builder runs in the test
// suite: the machines here have none that can build without a registry; see
// docs/install.md.)
func TestDockerfile(t *testing.T) {
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	var from []string
	var copies []string
	var user, entry string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		switch strings.ToUpper(f[0]) {
		case "FROM":
			from = append(from, strings.Join(f[1:], " "))
		case "COPY":
			copies = append(copies, strings.Join(f[1:], " "))
		case "USER":
			user = f[1]
		case "ENTRYPOINT":
			entry = strings.Join(f[1:], " ")
		case "RUN", "ADD":
			t.Errorf("%s in the Dockerfile: the image is built from files alone (no shell, nothing downloaded)", f[0])
		}
	}
	if len(from) != 1 || from[0] != "scratch" {
		t.Errorf("FROM %v, want only scratch", from)
	}
	want := []string{"dist/container/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt", "dist/container/stump /usr/local/bin/stump"}
	if strings.Join(copies, "|") != strings.Join(want, "|") {
		t.Errorf("COPY %q, want %q", copies, want)
	}
	if user == "" || strings.HasPrefix(user, "0") || user == "root" {
		t.Errorf("USER %q, want a non-root numeric user", user)
	}
	if entry != `["/usr/local/bin/stump"]` {
		t.Errorf("ENTRYPOINT %s", entry)
	}
	script, err := os.ReadFile(filepath.Join(root, "scripts", "container"))
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"CGO_ENABLED=0", "dist/container/stump", "dist/container/ca-certificates.crt"} {
		if !strings.Contains(string(script), w) {
			t.Errorf("scripts/container does not make %s, which the Dockerfile copies", w)
		}
	}
}
