package file

import "testing"

func TestOpenFSUsesOpenat2(t *testing.T) {
	s := openT(t, t.TempDir())
	if _, ok := s.root.(*beneath); !ok {
		t.Errorf("the store uses %T on Linux, want *beneath", s.root)
	}
}
