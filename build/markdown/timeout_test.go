package markdown

import (
	"strings"
	"testing"
	"time"

	"github.com/dlclark/regexp2/v2"
)

// TestRegexpMatchesAreNotCutOff checks disableMatchTimeouts (run by this package's
// init): a regexp2 match, as chroma runs one for every lexer rule, is never cut off by
// its MatchTimeout, however small. With regexp2's default clock, a 1ns timeout cuts off
// any match that is running when the clock advances (every 100ms), so half a second of
// back-to-back matches meets about five such cuts.
func TestRegexpMatchesAreNotCutOff(t *testing.T) {
	re := regexp2.MustCompile(`^(?:a|b)*c`, regexp2.None)
	re.MatchTimeout = time.Nanosecond
	input := strings.Repeat("ab", 10000) // no c: every match backtracks through it all
	n := 0
	for start := time.Now(); time.Since(start) < 500*time.Millisecond; n++ {
		ok, err := re.MatchString(input)
		if err != nil {
			t.Fatalf("match %d: %.60s…", n, err)
		}
		if ok {
			t.Fatalf("match %d: matched", n)
		}
	}
	t.Logf("%d matches", n)
}
