package cli

import (
	"fmt"
	"slices"
	"testing"
)

// TestShardCoversEverySiteOnce: for any N, the N shares hold every site exactly once,
// and differ in size by at most one.
func TestShardCoversEverySiteOnce(t *testing.T) {
	var sites []string
	for i := range 151 {
		sites = append(sites, fmt.Sprintf("site-%03d", (i*37)%151)) // not sorted
	}
	for n := 1; n <= 12; n++ {
		seen := map[string]int{}
		lo, hi := len(sites), 0
		for i := 1; i <= n; i++ {
			part := shard(sites, i, n)
			lo, hi = min(lo, len(part)), max(hi, len(part))
			for _, s := range part {
				seen[s]++
			}
			if !slices.Equal(part, shard(sites, i, n)) {
				t.Fatalf("%d/%d is not deterministic", i, n)
			}
		}
		for _, s := range sites {
			if seen[s] != 1 {
				t.Fatalf("N=%d: %s in %d shares", n, s, seen[s])
			}
		}
		if hi-lo > 1 {
			t.Errorf("N=%d: shares of %d to %d sites", n, lo, hi)
		}
	}
	for _, bad := range []string{"0/2", "3/2", "1", "a/b", "1/0", "-1/2"} {
		if _, _, err := parseShard(bad); err == nil {
			t.Errorf("parseShard(%q) accepted", bad)
		}
	}
}
