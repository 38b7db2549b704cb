package build

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/stump-dev/stump/build/manifest"
	"github.com/stump-dev/stump/internal/atomicfile"
	"golang.org/x/sync/errgroup"
)

// A build into a folder may be skipped when nothing it reads changed (Options.Version):
// the inputs' fingerprint (Workspace.Fingerprint: the site's folder, its theme,
// stump.yaml), stump's version and the options match those of the last successful
// build into that folder, the clock has not reached the first moment a page is due to
// appear or expire (Result.ValidUntil), and the folder still holds exactly what that
// build wrote (its manifest, byte for byte, and every file it lists with its size and
// not modified since). The record of the last build is .stump/builds/<site>-<hash of
// the folder>.json in the workspace; a missing or unreadable record means "build".

// buildRecord is what a successful build into a folder leaves for the next one.
type buildRecord struct {
	Fingerprint string    `json:"fingerprint"`
	Manifest    string    `json:"manifestSha256"`
	ValidUntil  time.Time `json:"validUntil,omitzero"`
	Pages       int       `json:"pages"`
	Report      Report    `json:"report"`
}

// recordPath is where the record of the last build of site into dir is kept.
func (w *Workspace) recordPath(site, dir string) string {
	abs, err := filepath.Abs(dir)
	if err != nil {
		abs = dir
	}
	sum := sha256.Sum256([]byte(abs))
	return filepath.Join(w.Root, ".stump", "builds", site+"-"+hex.EncodeToString(sum[:6])+".json")
}

// inputsFingerprint is the fingerprint a build with opts reads: the workspace's files
// and every option that changes the output.
// It also returns the Markdown it read (keepForBuild), for the build to use.
func (w *Workspace) inputsFingerprint(site, dir string, opts Options) (string, preread, error) {
	abs, _ := filepath.Abs(dir)
	return w.fingerprint(site, keepForBuild, "stump="+opts.Version, "out="+abs,
		"drafts="+strconv.FormatBool(opts.Drafts), "future="+strconv.FormatBool(opts.Future),
		"expired="+strconv.FormatBool(opts.Expired), "strict="+strconv.FormatBool(opts.Strict))
}

// reuse returns the result of the last build of site into dir when this build can be
// skipped (see above), else nil. fp is the inputs' fingerprint.
func (w *Workspace) reuse(ctx context.Context, site, dir, fp string, now time.Time) *Result {
	b, err := os.ReadFile(w.recordPath(site, dir))
	if err != nil {
		return nil
	}
	var rec buildRecord
	if json.Unmarshal(b, &rec) != nil || rec.Fingerprint != fp || (!rec.ValidUntil.IsZero() && !now.Before(rec.ValidUntil)) {
		return nil
	}
	// The folder: no other build in it meanwhile, no journal of a killed one.
	lock, err := openOutputLock(dir)
	if err != nil {
		return nil
	}
	defer lock.Close()
	if lockFile(lock) != nil {
		return nil
	}
	if _, err := os.Lstat(journalDir(dir)); err == nil {
		return nil
	}
	mpath := filepath.Join(dir, manifest.FileName)
	fi, err := os.Stat(mpath)
	if err != nil {
		return nil
	}
	mb, err := os.ReadFile(mpath)
	if err != nil {
		return nil
	}
	if sum := sha256.Sum256(mb); hex.EncodeToString(sum[:]) != rec.Manifest {
		return nil
	}
	m, err := manifest.Unmarshal(mb)
	if err != nil {
		return nil
	}
	if !filesIntact(ctx, dir, m, fi.ModTime()) {
		return nil
	}
	return &Result{
		Site: site, Dir: dir, Manifest: m, Files: len(m.Files), Bytes: m.TotalBytes(), Pages: rec.Pages,
		Unchanged: len(m.Files), Report: rec.Report, ValidUntil: rec.ValidUntil, Reused: true,
	}
}

// filesIntact reports whether every file of m is in dir with its size and not modified
// after the manifest was written (the writer's own test for "as the build left it").
func filesIntact(ctx context.Context, dir string, m *manifest.Manifest, written time.Time) bool {
	errChanged := errors.New("changed")
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for _, e := range m.Files {
		if gctx.Err() != nil {
			break
		}
		g.Go(func() error {
			fi, err := os.Lstat(filepath.Join(dir, filepath.FromSlash(e.Path)))
			if err != nil || !fi.Mode().IsRegular() || fi.Size() != e.Size || fi.ModTime().After(written) {
				return errChanged
			}
			return nil
		})
	}
	return g.Wait() == nil && ctx.Err() == nil
}

// remember writes the record of a successful build of site into dir (best effort: a
// lost record only costs a build next time).
// manifestSum is the SHA-256 of the manifest bytes the writer wrote (writer.commit).
func (w *Workspace) remember(site, dir, fp, manifestSum string, res *Result) {
	b, err := json.Marshal(buildRecord{Fingerprint: fp, Manifest: manifestSum, ValidUntil: res.ValidUntil, Pages: res.Pages, Report: res.Report})
	if err != nil {
		return
	}
	_ = atomicfile.Write(w.recordPath(site, dir), b)
}

// forget drops the record of site's builds into dir: the folder is about to change.
func (w *Workspace) forget(site, dir string) { os.Remove(w.recordPath(site, dir)) }

// dueAt notes t as a moment the build's output changes by the clock alone (a page
// due to appear or to expire): ValidUntil is the earliest such moment.
func (st *siteState) dueAt(t time.Time) {
	st.dueMu.Lock()
	defer st.dueMu.Unlock()
	if st.due.IsZero() || t.Before(st.due) {
		st.due = t
	}
}
