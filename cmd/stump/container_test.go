package main

import (
	"archive/tar"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stump-dev/stump/internal/testenv"
)

// The Dockerfile makes an image with stump and CA certificates only: FROM scratch, the
// static binary and the bundle that scripts/container puts in dist/container/, a
// non-root user, stump as the entry point. TestContainerImage builds it.
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

// TestContainerImage builds the image with scripts/container (podman, which
// scripts/test installs) and checks what it holds: exactly the stump binary and the CA
// bundle, a binary that runs (taken out of the image's layers: this sandbox lets
// podman build images but not run containers), and the entry point and non-root user
// in the image's config. Without podman it is skipped, except under CI=true.
func TestContainerImage(t *testing.T) {
	podman, err := exec.LookPath("podman")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("podman is not installed (scripts/test installs it): the container image cannot be built")
		}
		t.Skip("podman is not installed")
	}
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	image := fmt.Sprintf("localhost/stump-test:%d", time.Now().UnixNano())
	cmd := exec.Command("./scripts/container")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "IMAGE="+image)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("scripts/container: %v\n%s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command(podman, "rmi", "-f", image).Run() })
	dir := t.TempDir()
	archive := filepath.Join(dir, "image.tar")
	if out, err := exec.Command(podman, "save", "--format", "docker-archive", "-o", archive, image).CombinedOutput(); err != nil {
		t.Fatalf("podman save: %v\n%s", err, out)
	}
	files := readTar(t, archive)
	var manifest []struct {
		Config string
		Layers []string
	}
	if err := json.Unmarshal(files["manifest.json"], &manifest); err != nil || len(manifest) != 1 {
		t.Fatalf("image manifest: %v: %s", err, files["manifest.json"])
	}
	var config struct {
		Config struct {
			Entrypoint []string
			User       string
		} `json:"config"`
	}
	if err := json.Unmarshal(files[manifest[0].Config], &config); err != nil {
		t.Fatal(err)
	}
	if strings.Join(config.Config.Entrypoint, " ") != "/usr/local/bin/stump" || config.Config.User != "65532:65532" {
		t.Errorf("image config: entrypoint %q, user %q", config.Config.Entrypoint, config.Config.User)
	}
	content := map[string][]byte{}
	for _, l := range manifest[0].Layers {
		lf := filepath.Join(dir, "layer.tar")
		if err := os.WriteFile(lf, files[l], 0o644); err != nil {
			t.Fatal(err)
		}
		for name, b := range readTar(t, lf) {
			content[name] = b
		}
	}
	var names []string
	for n := range content {
		names = append(names, n)
	}
	sort.Strings(names)
	if strings.Join(names, " ") != "etc/ssl/certs/ca-certificates.crt usr/local/bin/stump" {
		t.Errorf("the image holds %v, want only the CA bundle and stump", names)
	}
	if !strings.Contains(string(content["etc/ssl/certs/ca-certificates.crt"]), "BEGIN CERTIFICATE") {
		t.Errorf("the CA bundle holds no certificate")
	}
	bin := filepath.Join(dir, "stump")
	if err := os.WriteFile(bin, content["usr/local/bin/stump"], 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "--version").CombinedOutput(); err != nil || !strings.HasPrefix(string(out), "stump ") {
		t.Errorf("the image's stump --version: %v: %s", err, out)
	}
}

// readTar reads the regular files of a tar archive by name.
func readTar(t *testing.T, path string) map[string][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string][]byte{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out[strings.TrimPrefix(h.Name, "./")] = b
	}
}
