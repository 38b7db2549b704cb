package build

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/stump-dev/stump/build/diag"
	"github.com/stump-dev/stump/themes"
)

// srcFile is one file found under a source folder.
type srcFile struct {
	Rel   string // slash path relative to the folder walked (content/, static/, ...)
	Shown string // path shown in messages, relative to the workspace
	fsys  fs.FS
	full  string  // path inside fsys
	pre   preread // bytes read already, by full path (the tree's)
}

func (f srcFile) read() ([]byte, error) {
	if b, ok := f.pre[f.full]; ok {
		return b, nil
	}
	b, err := fs.ReadFile(f.fsys, f.full)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", f.Shown, err)
	}
	return b, nil
}

// tree is a folder of source files read through an fs.FS that cannot leave it.
type tree struct {
	fsys  fs.FS
	shown string // folder as shown in messages ("sites/x", "themes/campaign")
	close func() error
	// pre: the bytes of some of its files, read by the build's fingerprint (nil: none).
	// Only the site's folder has them; a file's are used instead of reading it.
	pre preread
}

// openTree opens dir through os.Root so that symlinks cannot escape it.
func openTree(dir, shown string) (*tree, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", shown, err)
	}
	return &tree{fsys: root.FS(), shown: shown, close: root.Close}, nil
}

// ignoredName reports whether a file or folder name is never part of a site: dotfiles
// (.env, .git, .DS_Store), editor backups and temp files, and key material.
func ignoredName(name string) bool {
	if strings.HasPrefix(name, ".") || strings.HasPrefix(name, "#") || strings.HasSuffix(name, "~") ||
		strings.HasSuffix(name, ".swp") || strings.HasSuffix(name, ".swx") || strings.HasSuffix(name, ".tmp") ||
		strings.HasSuffix(name, ".bak") || strings.HasSuffix(name, ".orig") {
		return true
	}
	switch strings.ToLower(path.Ext(name)) {
	case ".pem", ".key", ".p12", ".pfx", ".crt":
		return true
	}
	switch name {
	case "Thumbs.db", "id_rsa", "id_ed25519", "id_ecdsa", "4913":
		return true
	}
	return false
}

// walk lists the regular files under dir of t, sorted, skipping ignored names. A missing
// dir gives no files. A symlink pointing outside the tree is a positioned error.
func (t *tree) walk(dir string, ignore []string) ([]srcFile, error) {
	if _, err := fs.Stat(t.fsys, dir); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, linkError(t, dir, err)
	}
	var out []srcFile
	err := fs.WalkDir(t.fsys, dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return linkError(t, p, err)
		}
		if p != dir && ignoredName(d.Name()) {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		rel := strings.TrimPrefix(strings.TrimPrefix(p, dir), "/")
		for _, g := range ignore {
			if ok, _ := path.Match(g, rel); ok {
				if d.IsDir() {
					return fs.SkipDir
				}
				return nil
			}
		}
		if d.Type()&fs.ModeSymlink != 0 {
			fi, err := fs.Stat(t.fsys, p)
			if err != nil {
				return linkError(t, p, err)
			}
			if fi.IsDir() {
				return diag.New(t.shown+"/"+p, 0, 0, "is a symlink to a folder; stump does not follow folder symlinks (copy the folder or link its files)")
			}
		} else if d.IsDir() || !d.Type().IsRegular() {
			return nil
		}
		out = append(out, srcFile{Rel: rel, Shown: t.shown + "/" + p, fsys: t.fsys, full: p, pre: t.pre})
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Rel < out[j].Rel })
	return out, nil
}

func linkError(t *tree, p string, err error) error {
	var d *diag.Error
	if errors.As(err, &d) {
		return err
	}
	if strings.Contains(err.Error(), "escapes") || strings.Contains(err.Error(), "outside") {
		return &diag.Error{File: t.shown + "/" + p, Msg: "is a symlink that points outside the site folder; stump reads only files inside it", Err: err}
	}
	if errors.Is(err, fs.ErrNotExist) {
		return &diag.Error{File: t.shown + "/" + p, Msg: "is a broken symlink", Err: err}
	}
	return fmt.Errorf("read %s/%s: %w", t.shown, p, err)
}

// openTheme opens the theme called name: the workspace's themes/<name>/ when it exists,
// else the built-in theme of that name.
func (w *Workspace) openTheme(name string) (*tree, error) {
	dir := filepath.Join(w.Root, "themes", name)
	if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
		return openTree(dir, "themes/"+name)
	}
	if fsys, ok := themes.Get(name); ok {
		return &tree{fsys: fsys, shown: "themes/" + name + " (built in)", close: func() error { return nil }}, nil
	}
	return nil, errNoTheme
}

var errNoTheme = errors.New("no such theme")
