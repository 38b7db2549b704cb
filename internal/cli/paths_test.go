package cli

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stump-dev/stump/publish"
)

func TestPathLines(t *testing.T) {
	p := &publish.Plan{Changed: []string{"a/index.html"}, Deletes: []string{"old.txt"}}
	for i := range 25 {
		p.Added = append(p.Added, fmt.Sprintf("n%02d/index.html", i))
	}
	got := pathLines("x", p, 20)
	if len(got) != 23 || got[0] != "x:   added   /n00/index.html" || got[20] != "x:   … and 5 more added (all of them with -v or --json)" ||
		got[21] != "x:   changed /a/index.html" || got[22] != "x:   deleted /old.txt" {
		t.Errorf("pathLines with a limit of 20:\n%s", strings.Join(got, "\n"))
	}
	if all := pathLines("x", p, -1); len(all) != 27 {
		t.Errorf("pathLines without a limit gave %d lines, want 27", len(all))
	}
}
