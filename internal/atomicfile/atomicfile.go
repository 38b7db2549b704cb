// Package atomicfile writes files so that readers see the old content or the new, never
// a part: the bytes go to a temporary file in the same folder, which is then renamed
// over the target. Not synced to disk: it guards against crashes of the writer, not
// power loss.
package atomicfile

import (
	"bufio"
	"io"
	"os"
	"path/filepath"
)

// Write writes data to p (mode 0644), creating p's folder when missing.
func Write(p string, data []byte) error {
	return WriteFunc(p, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// WriteFunc writes what fn writes to p (mode 0644, buffered), creating p's folder when
// missing. When fn fails, p is left as it was.
func WriteFunc(p string, fn func(io.Writer) error) error {
	t, err := WriteTemp(p, fn)
	if err != nil {
		return err
	}
	return t.Commit()
}

// Temp is a file written beside its target and not yet in its place.
type Temp struct {
	target, name string
}

// WriteTemp writes what fn writes (buffered) to a temporary file (mode 0644) in p's
// folder, creating the folder when missing, for Commit to put at p or Discard to drop.
// When fn fails, nothing is left behind.
func WriteTemp(p string, fn func(io.Writer) error) (*Temp, error) {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(filepath.Dir(p), ".tmp-*")
	if err != nil {
		return nil, err
	}
	bw := bufio.NewWriterSize(f, 256<<10)
	err = fn(bw)
	if err == nil {
		err = bw.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), 0o644)
	}
	if err != nil {
		os.Remove(f.Name())
		return nil, err
	}
	return &Temp{target: p, name: f.Name()}, nil
}

// Commit renames the file over its target. On failure the file is removed.
func (t *Temp) Commit() error {
	err := os.Rename(t.name, t.target)
	if err != nil {
		os.Remove(t.name)
	}
	return err
}

// Discard removes the file.
func (t *Temp) Discard() { os.Remove(t.name) }
