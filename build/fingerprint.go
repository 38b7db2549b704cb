package build

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/stump-dev/stump/build/config"
)

// Fingerprint is a digest of everything a build of site reads from the workspace: the
// site's folder (config, content, layouts, data, static files), the theme it names (its
// workspace folder, or the name of a built-in theme, whose files are part of stump's
// version) and stump.yaml, followed by extra (the caller's: stump's version, build
// options). Equal fingerprints mean a build would read the same bytes; file names,
// sizes and contents count, modification times do not, so a fresh checkout of the same
// commit has the same fingerprint.
//
// Theme digests are computed once per Workspace and reused: call Forget after the
// theme's files changed in a long-lived process.
func (w *Workspace) Fingerprint(site string, extra ...string) (string, error) {
	fp, _, err := w.fingerprint(site, nil, extra...)
	return fp, err
}

// preread holds the bytes of files a fingerprint read, by slash path in the site's
// folder, for the build that follows to use instead of reading them again: the build
// then renders exactly the bytes the fingerprint describes. Read-only once made.
type preread map[string][]byte

// keepForBuild says which files' bytes a fingerprint hands to the build: Markdown
// content, which a build reads whole and keeps anyway (a page holds its source for
// link-check positions), up to 1 MiB each; never static files, which the writer copies
// when their turn comes.
func keepForBuild(rel string, size int64) bool {
	return size <= 1<<20 && strings.HasPrefix(rel, "content/") && strings.HasSuffix(rel, ".md")
}

// fingerprint is Fingerprint; with keep, it also returns the bytes of the site's files
// keep accepts.
func (w *Workspace) fingerprint(site string, keep func(rel string, size int64) bool, extra ...string) (string, preread, error) {
	cfg, err := w.LoadSiteConfig(site)
	if err != nil {
		return "", nil, err
	}
	h := sha256.New()
	fmt.Fprintf(h, "stump-fingerprint-1\x00")
	for _, e := range extra {
		fmt.Fprintf(h, "extra\x00%s\x00", e)
	}
	wsFile := filepath.Join(w.Root, config.WorkspaceFile)
	if err := hashFile(h, config.WorkspaceFile, wsFile); err != nil {
		return "", nil, err
	}
	theme, err := w.themeDigest(cfg.Theme)
	if err != nil {
		return "", nil, err
	}
	fmt.Fprintf(h, "theme\x00%s\x00%s\x00", cfg.Theme, theme)
	pre, err := hashTree(h, w.SiteDir(site), keep)
	if err != nil {
		return "", nil, err
	}
	return hex.EncodeToString(h.Sum(nil)), pre, nil
}

// ThemeDir is the workspace folder of a theme, or "" when the name is a built-in theme.
func (w *Workspace) ThemeDir(name string) string {
	if name == "" {
		return ""
	}
	d := filepath.Join(w.Root, "themes", name)
	if isDir(d) {
		return d
	}
	return ""
}

var themeDigests sync.Map // Workspace root + theme name → digest

// Forget drops the theme digests Fingerprint remembers for this workspace.
func (w *Workspace) Forget() {
	themeDigests.Range(func(k, _ any) bool {
		if s, ok := k.(string); ok && len(s) > len(w.Root) && s[:len(w.Root)+1] == w.Root+"\x00" {
			themeDigests.Delete(k)
		}
		return true
	})
}

func (w *Workspace) themeDigest(name string) (string, error) {
	dir := w.ThemeDir(name)
	if dir == "" {
		return "builtin", nil
	}
	key := w.Root + "\x00" + name
	if d, ok := themeDigests.Load(key); ok {
		return d.(string), nil
	}
	h := sha256.New()
	if _, err := hashTree(h, dir, nil); err != nil {
		return "", err
	}
	d := hex.EncodeToString(h.Sum(nil))
	themeDigests.Store(key, d)
	return d, nil
}

// hashTree adds every file under dir (path, size, bytes; symlink targets) in path order.
// Files are read and hashed by one worker per CPU; their digests go into h in order.
// It returns the bytes of the regular files keep accepts (nil keep: none).
func hashTree(h hash.Hash, dir string, keep func(rel string, size int64) bool) (preread, error) {
	var paths []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			paths = append(paths, p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("fingerprint %s: %w", dir, err)
	}
	sort.Strings(paths)
	entries := make([]string, len(paths))
	kept := make([][]byte, len(paths))
	rels := make([]string, len(paths))
	var g errgroup.Group
	g.SetLimit(runtime.GOMAXPROCS(0))
	for i, p := range paths {
		g.Go(func() error {
			rel, _ := filepath.Rel(dir, p)
			rels[i] = filepath.ToSlash(rel)
			e, b, err := fileEntry(rels[i], p, keep)
			entries[i], kept[i] = e, b
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	var pre preread
	for i, e := range entries {
		io.WriteString(h, e)
		if kept[i] != nil {
			if pre == nil {
				pre = preread{}
			}
			pre[rels[i]] = kept[i]
		}
	}
	return pre, nil
}

func hashFile(h hash.Hash, name, p string) error {
	e, _, err := fileEntry(name, p, nil)
	if err != nil {
		return err
	}
	_, err = io.WriteString(h, e)
	return err
}

// fileEntry is what a fingerprint adds for the file at p, shown as name: its size and
// SHA-256, or a symlink's target; "" for anything else. A regular file that keep (if
// any) takes by its name and size is read whole and its bytes returned; any other is
// hashed as it is read.
func fileEntry(name, p string, keep func(rel string, size int64) bool) (string, []byte, error) {
	fi, err := os.Lstat(p)
	if err != nil {
		return "", nil, fmt.Errorf("fingerprint %s: %w", name, err)
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		target, err := os.Readlink(p)
		if err != nil {
			return "", nil, fmt.Errorf("fingerprint %s: %w", name, err)
		}
		return fmt.Sprintf("link\x00%s\x00%s\x00", name, target), nil, nil
	}
	if !fi.Mode().IsRegular() {
		return "", nil, nil
	}
	entry := func(size int64, sum []byte) string {
		return fmt.Sprintf("file\x00%s\x00%s\x00%x\x00", name, strconv.FormatInt(size, 10), sum)
	}
	if keep != nil && keep(name, fi.Size()) {
		b, err := os.ReadFile(p)
		if err != nil {
			return "", nil, fmt.Errorf("fingerprint %s: %w", name, err)
		}
		sum := sha256.Sum256(b)
		return entry(int64(len(b)), sum[:]), b, nil
	}
	f, err := os.Open(p)
	if err != nil {
		return "", nil, fmt.Errorf("fingerprint %s: %w", name, err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", nil, fmt.Errorf("fingerprint %s: %w", name, err)
	}
	return entry(n, h.Sum(nil)), nil, nil
}
