// Package scaffold creates new sites and pages (stump new). It never overwrites a file.
package scaffold

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"
	"unicode"

	"github.com/stump-dev/stump/build"
	"github.com/stump-dev/stump/build/config"
)

// Site creates sites/<name>/ (site.yaml and content/_index.md) in the workspace found
// from dir upwards, creating stump.yaml in dir when there is none and a .gitignore
// (public/, .stump/) at the workspace's root when it has none. It returns the files it
// created, in order.
func Site(dir, name string) ([]string, error) {
	if !validName(name) {
		return nil, fmt.Errorf("%q is not a site name: use letters, digits, '-' and '_'", name)
	}
	var created []string
	write := func(p, content string) error {
		if err := writeNew(p, content); err != nil {
			return err
		}
		created = append(created, p)
		return nil
	}
	root, err := build.Find(dir)
	if errors.Is(err, build.ErrNoWorkspace) {
		root = dir
		if err := os.MkdirAll(root, 0o755); err != nil {
			return nil, err
		}
		ws := "# stump workspace: see docs/config.md\noutput: public\n"
		if err := write(filepath.Join(root, config.WorkspaceFile), ws); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, err
	}
	// Build output and the embedded targets are not sources: keep them out of git.
	if _, err := os.Lstat(filepath.Join(root, ".gitignore")); errors.Is(err, os.ErrNotExist) {
		if err := write(filepath.Join(root, ".gitignore"), "# stump: build output and local targets (re-made by stump build / publish)\npublic/\n.stump/\n"); err != nil {
			return nil, err
		}
	}
	site := filepath.Join(root, "sites", name)
	if _, err := os.Stat(site); err == nil {
		return nil, fmt.Errorf("site %q already exists at %s", name, site)
	}
	cfg := fmt.Sprintf("title: %s\nbaseURL: https://%s.example.org/\nlanguageCode: en\ntheme: campaign\n"+
		"# Internal links to pages that do not exist: warning (with --strict, an error), error, or off.\ncheckLinks: warning\n"+
		"menus:\n  main:\n    - { name: Home, url: /, weight: 1 }\n", title(name), name)
	if err := write(filepath.Join(site, config.SiteFile), cfg); err != nil {
		return nil, err
	}
	home := fmt.Sprintf("---\ntitle: %s\n---\n\nWelcome to %s. Edit `content/_index.md` to change this page.\n", title(name), title(name))
	if err := write(filepath.Join(site, "content", "_index.md"), home); err != nil {
		return nil, err
	}
	for _, d := range []string{"static", "layouts", "data"} {
		if err := os.MkdirAll(filepath.Join(site, d), 0o755); err != nil {
			return nil, err
		}
	}
	return created, nil
}

// Page creates sites/<site>/content/<rel> as a draft dated now. rel must end in .md and
// stay inside content/.
func Page(root, site, rel string, now time.Time) (string, error) {
	if !validName(site) {
		return "", fmt.Errorf("%q is not a site name", site)
	}
	if _, err := os.Stat(filepath.Join(root, "sites", site, config.SiteFile)); err != nil {
		return "", fmt.Errorf("site %q does not exist (stump new site %s)", site, site)
	}
	clean := path.Clean("/" + filepath.ToSlash(rel))
	if strings.Contains(filepath.ToSlash(rel), "..") || clean == "/" {
		return "", fmt.Errorf("page path %q must stay inside content/ (no '..')", rel)
	}
	if path.Ext(clean) != ".md" {
		return "", fmt.Errorf("page path %q must end in .md", rel)
	}
	p := filepath.Join(root, "sites", site, "content", filepath.FromSlash(clean[1:]))
	base := strings.TrimSuffix(path.Base(clean), ".md")
	if base == "index" || base == "_index" {
		base = path.Base(path.Dir(clean))
	}
	body := fmt.Sprintf("---\ntitle: %q\ndate: %s\ndraft: true\ntags: []\n---\n\nWrite here.\n", title(base), now.Format(time.RFC3339))
	if err := writeNew(p, body); err != nil {
		return "", err
	}
	return p, nil
}

func writeNew(p, content string) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("%s already exists; stump new never overwrites", p)
		}
		return err
	}
	if _, err := f.WriteString(content); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func validName(s string) bool {
	if s == "" || strings.HasPrefix(s, ".") || strings.HasPrefix(s, "-") {
		return false
	}
	for _, r := range s {
		if !(r == '-' || r == '_' || unicode.IsLetter(r) && r < 128 || unicode.IsDigit(r) && r < 128) {
			return false
		}
	}
	return true
}

// title turns "first-post" into "First post".
func title(s string) string {
	s = strings.NewReplacer("-", " ", "_", " ").Replace(s)
	r := []rune(s)
	if len(r) > 0 {
		r[0] = unicode.ToUpper(r[0])
	}
	return string(r)
}
