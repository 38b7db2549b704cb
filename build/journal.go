package build

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// journal records an in-place update of an output folder so that it can be undone. It
// is a folder beside the output (.stump-journal-<name>) holding a log of operations and
// hard links to the files the update replaced or deleted. Each operation is appended to
// the log before it is done, so undoing the log (newest first) restores the previous
// tree whatever the point the update stopped at. Safe for concurrent use.
type journal struct {
	dir string // the journal folder
	mu  sync.Mutex
	log *os.File
	n   atomic.Int64
	mk  sync.Mutex // serializes folder creation
}

// journalDir is where the journal of output folder out lives.
func journalDir(out string) string {
	return filepath.Join(filepath.Dir(out), ".stump-journal-"+filepath.Base(out))
}

// openJournal starts a journal for out. A journal left by an earlier build must have
// been recovered first.
func openJournal(out string) (*journal, error) {
	jd := journalDir(out)
	if err := os.Mkdir(jd, 0o755); err != nil {
		return nil, fmt.Errorf("start the output journal: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(jd, "log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		_ = os.RemoveAll(jd)
		return nil, fmt.Errorf("start the output journal: %w", err)
	}
	return &journal{dir: jd, log: f}, nil
}

// record appends one operation to the log: op, a number (or -1) and a path.
func (j *journal) record(op byte, n int64, rel string) error {
	line := string(op) + " " + strconv.FormatInt(n, 10) + " " + strconv.Quote(rel) + "\n"
	j.mu.Lock()
	defer j.mu.Unlock()
	if _, err := j.log.WriteString(line); err != nil {
		return fmt.Errorf("write the output journal: %w", err)
	}
	return nil
}

// mkdirs creates the folders of rel's parent under out that are missing, recording each.
func (j *journal) mkdirs(out, relDir string) error {
	if relDir == "." || relDir == "" {
		return nil
	}
	j.mk.Lock()
	defer j.mk.Unlock()
	var missing []string
	for d := relDir; d != "." && d != ""; d = path.Dir(d) {
		fi, err := os.Lstat(filepath.Join(out, filepath.FromSlash(d)))
		if err == nil {
			if !fi.IsDir() {
				return fmt.Errorf("create %s: %s is a file", relDir, d)
			}
			break
		}
		missing = append(missing, d)
	}
	for i := len(missing) - 1; i >= 0; i-- {
		if err := j.record('D', -1, missing[i]); err != nil {
			return err
		}
		if err := os.Mkdir(filepath.Join(out, filepath.FromSlash(missing[i])), 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("create %s: %w", missing[i], err)
		}
	}
	return nil
}

// backup records that rel is about to be replaced or deleted and keeps its file.
func (j *journal) backup(p, rel string) error {
	n := j.n.Add(1)
	if err := j.record('B', n, rel); err != nil {
		return err
	}
	b := filepath.Join(j.dir, "b"+strconv.FormatInt(n, 10))
	if err := os.Link(p, b); err != nil {
		// No hard links here: keep a copy instead.
		data, rerr := os.ReadFile(p)
		if rerr != nil {
			return fmt.Errorf("keep %s in the output journal: %w", rel, err)
		}
		if err := os.WriteFile(b, data, 0o644); err != nil {
			return fmt.Errorf("keep %s in the output journal: %w", rel, err)
		}
	}
	return nil
}

// journalFault, in tests, runs before each replace and can make it fail.
var journalFault func(rel string) error

// replace writes data at rel under out: into the journal folder first, then renamed
// over the path, so a reader never sees a half-written file.
func (j *journal) replace(out, rel string, data []byte) error {
	if journalFault != nil {
		if err := journalFault(rel); err != nil {
			return err
		}
	}
	p := filepath.Join(out, filepath.FromSlash(rel))
	if err := j.mkdirs(out, path.Dir(rel)); err != nil {
		return err
	}
	tmp := filepath.Join(j.dir, "t"+strconv.FormatInt(j.n.Add(1), 10))
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", rel, err)
	}
	fi, err := os.Lstat(p)
	switch {
	case err == nil && fi.IsDir():
		return fmt.Errorf("write %s: a folder is in the way", rel)
	case err == nil:
		if err := j.backup(p, rel); err != nil {
			return err
		}
	default:
		if err := j.record('N', -1, rel); err != nil {
			return err
		}
	}
	if err := os.Rename(tmp, p); err != nil {
		return fmt.Errorf("write %s: %w", rel, err)
	}
	return nil
}

// remove deletes rel under out, and the folders that leaves empty.
func (j *journal) remove(out, rel string) error {
	p := filepath.Join(out, filepath.FromSlash(rel))
	fi, err := os.Lstat(p)
	if err != nil || fi.IsDir() {
		return nil // already gone (or not ours to remove)
	}
	if err := j.backup(p, rel); err != nil {
		return err
	}
	if err := os.Remove(p); err != nil {
		return fmt.Errorf("delete %s: %w", rel, err)
	}
	for d := path.Dir(rel); d != "." && d != ""; d = path.Dir(d) {
		dp := filepath.Join(out, filepath.FromSlash(d))
		if ents, err := os.ReadDir(dp); err != nil || len(ents) > 0 {
			break
		}
		if err := j.record('E', -1, d); err != nil {
			return err
		}
		if err := os.Remove(dp); err != nil {
			break
		}
	}
	return nil
}

// close ends a successful update: the journal is dropped.
func (j *journal) close() error {
	_ = j.log.Close()
	if err := os.RemoveAll(j.dir); err != nil {
		return fmt.Errorf("remove the output journal: %w", err)
	}
	return nil
}

// rollback undoes the update and drops the journal.
func (j *journal) rollback() error {
	_ = j.log.Close()
	return undoJournal(j.dir, filepath.Join(filepath.Dir(j.dir), strings.TrimPrefix(filepath.Base(j.dir), ".stump-journal-")))
}

// recoverJournal undoes the update a killed build left in out's journal, if any.
func recoverJournal(out string) error {
	jd := journalDir(out)
	if _, err := os.Lstat(jd); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err := undoJournal(jd, out); err != nil {
		return fmt.Errorf("undo the unfinished build of %s: %w", out, err)
	}
	return nil
}

type journalOp struct {
	op  byte
	n   int64
	rel string
}

// undoJournal reads the log of journal folder jd and undoes it on out, newest first,
// then removes jd. A torn last line (a process killed while appending) is an
// operation that never started, and is skipped.
func undoJournal(jd, out string) error {
	var ops []journalOp
	if f, err := os.Open(filepath.Join(jd, "log")); err == nil {
		r := bufio.NewReader(f)
		for {
			line, err := r.ReadBytes('\n')
			if err != nil {
				if !errors.Is(err, io.EOF) {
					f.Close()
					return err
				}
				break // a line without its newline was torn
			}
			if op, ok := parseJournalLine(bytes.TrimSuffix(line, []byte("\n"))); ok {
				ops = append(ops, op)
			}
		}
		f.Close()
	}
	var errs []error
	for i := len(ops) - 1; i >= 0; i-- {
		op := ops[i]
		p := filepath.Join(out, filepath.FromSlash(op.rel))
		switch op.op {
		case 'N':
			if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, err)
			}
		case 'B':
			b := filepath.Join(jd, "b"+strconv.FormatInt(op.n, 10))
			if _, err := os.Lstat(b); err != nil {
				continue // killed before the link: the file was not touched
			}
			_ = os.MkdirAll(filepath.Dir(p), 0o755)
			if err := os.Rename(b, p); err != nil {
				errs = append(errs, err)
			}
		case 'D':
			_ = os.Remove(p) // only when empty
		case 'E':
			if err := os.MkdirAll(p, 0o755); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err // keep the journal: the backups are still needed
	}
	return os.RemoveAll(jd)
}

func parseJournalLine(line []byte) (journalOp, bool) {
	s := string(line)
	if len(s) < 5 || s[1] != ' ' {
		return journalOp{}, false
	}
	op := s[0]
	rest := s[2:]
	num, q, ok := strings.Cut(rest, " ")
	if !ok {
		return journalOp{}, false
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil {
		return journalOp{}, false
	}
	rel, err := strconv.Unquote(q)
	if err != nil || rel == "" || strings.HasPrefix(rel, "/") || strings.Contains("/"+rel+"/", "/../") {
		return journalOp{}, false
	}
	return journalOp{op: op, n: n, rel: rel}, true
}
