package edge

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// varnishdPaths are where Debian's package puts varnishd, for a PATH without sbin.
var varnishdPaths = []string{"/usr/sbin/varnishd", "/usr/local/sbin/varnishd"}

// FindVarnishd returns the varnishd binary: on PATH, else in the usual sbin folders.
func FindVarnishd() (string, error) {
	if p, err := exec.LookPath("varnishd"); err == nil {
		return p, nil
	}
	for _, p := range varnishdPaths {
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", errors.New("varnishd is neither on PATH nor in " + strings.Join(varnishdPaths, ", ") +
		": install Varnish 7 and varnish-modules (apt-get install varnish varnish-modules)")
}

// Compile compiles vcl with `varnishd -C` (which loads the VMODs it imports) in a
// scratch folder under dir, and returns the compiler's message when it fails.
func Compile(bin string, vcl []byte, dir string) error {
	work, err := os.MkdirTemp(dir, "vcc-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	f := filepath.Join(work, "stump.vcl")
	if err := os.WriteFile(f, vcl, 0o644); err != nil {
		return err
	}
	cmd := exec.Command(bin, "-C", "-j", "none", "-n", filepath.Join(work, "n"), "-f", f)
	var stderr bytes.Buffer
	cmd.Stdout = nil // the generated C
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if i := strings.Index(msg, "Message from VCC-compiler:"); i >= 0 {
			msg = msg[i:]
		}
		if len(msg) > 4000 {
			msg = msg[:4000] + "\n..."
		}
		if msg == "" {
			msg = err.Error()
		}
		return fmt.Errorf("varnishd -C: the VCL does not compile:\n%s", msg)
	}
	return nil
}
