package file

import (
	"bytes"
	"context"
	"testing"

	"github.com/stump-dev/stump/publish/store"
)

// TestUsageCountsLinksOnce: an object copied twice is stored once.
func TestUsageCountsLinksOnce(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	body := bytes.Repeat([]byte("x"), 10000)
	if _, err := s.Put(ctx, "_stump/objects/ab", bytes.NewReader(body), -1, store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, dst := range []string{"a/index.html", "b/index.html"} {
		if err := s.Copy(ctx, "_stump/objects/ab", dst, store.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	u, err := s.Usage()
	if err != nil {
		t.Fatal(err)
	}
	if u.Objects != 3 || u.Links != 2 || u.Bytes != 10000 || u.Disk < 10000 {
		t.Fatalf("usage %+v: want 3 objects, 2 links, 10000 bytes", u)
	}
}
