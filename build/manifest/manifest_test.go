package manifest

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func TestRoundTripAndLookup(t *testing.T) {
	m := &Manifest{Version: Version, Site: "s", Files: []Entry{
		{Path: "b/index.html", SHA256: "bb", Size: 2, ContentType: "text/html", Class: Page, Keys: []string{"s"}},
		{Path: "a.css", SHA256: "aa", Size: 1, Class: Immutable},
	}}
	b1, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	b2, _ := m.Marshal()
	if !bytes.Equal(b1, b2) || m.Files[0].Path != "a.css" {
		t.Fatal("marshal is not deterministic or not sorted")
	}
	p := filepath.Join(t.TempDir(), FileName)
	os.WriteFile(p, b1, 0o644)
	got, err := Read(p)
	if err != nil {
		t.Fatal(err)
	}
	if e, ok := got.Lookup("b/index.html"); !ok || e.SHA256 != "bb" || got.TotalBytes() != 3 {
		t.Errorf("lookup %+v %v total %d", e, ok, got.TotalBytes())
	}
	if _, ok := got.Lookup("missing"); ok {
		t.Error("found a missing path")
	}
	if _, err := Unmarshal([]byte(`{"version": 99}`)); err == nil {
		t.Error("an unknown version was accepted")
	}
}
