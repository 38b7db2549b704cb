package atomicfile

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func TestWriteReplacesOrLeaves(t *testing.T) {
	p := filepath.Join(t.TempDir(), "a", "b.json")
	if err := Write(p, []byte("one")); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	if err := WriteFunc(p, func(w io.Writer) error { w.Write([]byte("half")); return boom }); !errors.Is(err, boom) {
		t.Fatalf("failed write: %v", err)
	}
	if b, _ := os.ReadFile(p); string(b) != "one" {
		t.Fatalf("a failed write changed the file: %q", b)
	}
	if err := Write(p, []byte("two")); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(filepath.Dir(p))
	if b, _ := os.ReadFile(p); string(b) != "two" || len(ents) != 1 {
		t.Fatalf("got %q, %d entries (temporary files left?)", b, len(ents))
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o644 {
		t.Fatalf("mode %v", fi.Mode())
	}
}

// TestWriteTemp: the target keeps its old bytes until Commit; Discard leaves it and
// nothing beside it.
func TestWriteTemp(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c.gob")
	if err := Write(p, []byte("old")); err != nil {
		t.Fatal(err)
	}
	write := func(s string) *Temp {
		t.Helper()
		tmp, err := WriteTemp(p, func(w io.Writer) error { _, err := io.WriteString(w, s); return err })
		if err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(p); string(b) != "old" {
			t.Fatalf("the target changed before Commit: %q", b)
		}
		return tmp
	}
	write("dropped").Discard()
	if ents, _ := os.ReadDir(filepath.Dir(p)); len(ents) != 1 {
		t.Fatalf("%d entries after Discard (temporary file left?)", len(ents))
	}
	if err := write("new").Commit(); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(filepath.Dir(p))
	if b, _ := os.ReadFile(p); string(b) != "new" || len(ents) != 1 {
		t.Fatalf("got %q, %d entries", b, len(ents))
	}
}
