package file

import (
	"errors"
	"testing"

	"github.com/stump-dev/stump/publish/store"
	"github.com/stump-dev/stump/publish/store/storetest"
)

// Where hard links fail (another file system, too many links), Copy copies bytes.
func TestConformanceWithoutLinks(t *testing.T) {
	old := link
	link = func(fsys, string, string) error { return errors.New("links not supported") }
	t.Cleanup(func() { link = old })
	storetest.Config{ManyKeys: -1}.Run(t, func(t *testing.T) store.Store {
		s, err := Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}
