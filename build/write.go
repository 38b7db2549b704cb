package build

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sync/errgroup"

	"github.com/stump-dev/stump/build/manifest"
)

// finish reads copied files, hashes everything and fills the manifest. It returns the
// files in path order.
func (st *siteState) finish(ctx context.Context) ([]*outFile, *manifest.Manifest, error) {
	files := st.out.sorted()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(st.opts.Workers)
	for _, f := range files {
		if f.data != nil {
			continue
		}
		g.Go(func() error {
			if gctx.Err() != nil {
				return gctx.Err()
			}
			b, err := f.src.read()
			if err != nil {
				return err
			}
			f.data = b
			f.sum = sha256.Sum256(b)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, nil, err
	}
	m := &manifest.Manifest{Version: manifest.Version, Site: st.cfg.Name, BaseURL: st.site.BaseURL, Files: make([]manifest.Entry, 0, len(files))}
	for _, f := range files {
		m.Files = append(m.Files, manifest.Entry{
			Path: f.path, SHA256: hex.EncodeToString(f.sum[:]), Size: int64(len(f.data)),
			ContentType: contentType(f.path), Class: f.class, Keys: st.keysFor(f), Redirect: f.redirect,
		})
	}
	return files, m, nil
}

// writeTree writes files and the manifest into a fresh temporary folder beside dir, then
// swaps it in place of dir in one rename. On any error the temporary folder is removed
// and dir is untouched.
func writeTree(ctx context.Context, dir string, files []*outFile, m *manifest.Manifest, workers int) (err error) {
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("create output folder: %w", err)
	}
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	tmp := filepath.Join(parent, ".stump-tmp-"+filepath.Base(dir)+"-"+hex.EncodeToString(rnd[:]))
	if err := os.Mkdir(tmp, 0o755); err != nil {
		return fmt.Errorf("create temporary output folder: %w", err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	// Create folders first, once each, then write files in parallel.
	dirs := map[string]bool{}
	for _, f := range files {
		d := filepath.Dir(filepath.FromSlash(f.path))
		if d != "." && !dirs[d] {
			if err := os.MkdirAll(filepath.Join(tmp, d), 0o755); err != nil {
				return fmt.Errorf("create %s: %w", d, err)
			}
			for x := d; x != "." && !dirs[x]; x = filepath.Dir(x) {
				dirs[x] = true
			}
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(workers * 2)
	for _, f := range files {
		g.Go(func() error {
			if gctx.Err() != nil {
				return gctx.Err()
			}
			if err := os.WriteFile(filepath.Join(tmp, filepath.FromSlash(f.path)), f.data, 0o644); err != nil {
				return fmt.Errorf("write %s: %w", f.path, err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	mb, err := m.Marshal()
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(tmp, manifest.FileName), mb, 0o644); err != nil {
		return fmt.Errorf("write manifest: %w", err)
	}
	return swap(tmp, dir)
}

// swap puts the folder tmp at dir. When dir exists the two are exchanged atomically
// (renameat2 RENAME_EXCHANGE) and the old tree, now at tmp, is removed; readers never see
// a missing or half-written dir.
func swap(tmp, dir string) error {
	if _, err := os.Lstat(dir); errors.Is(err, os.ErrNotExist) {
		if err := os.Rename(tmp, dir); err != nil {
			return fmt.Errorf("move new output into place: %w", err)
		}
		return nil
	}
	if err := exchange(tmp, dir); err != nil {
		// Filesystems without RENAME_EXCHANGE: move the old tree aside, then the new in.
		old := tmp + "-old"
		if err := os.Rename(dir, old); err != nil {
			return fmt.Errorf("move old output aside: %w", err)
		}
		if err := os.Rename(tmp, dir); err != nil {
			_ = os.Rename(old, dir)
			return fmt.Errorf("move new output into place: %w", err)
		}
		return os.RemoveAll(old)
	}
	return os.RemoveAll(tmp)
}
