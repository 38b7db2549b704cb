package cloudfront

import (
	"sort"
	"strings"
)

// Collapse returns at most budget invalidation paths that cover every path of paths,
// with at most maxWild wildcard paths ("/news/*"). It collapses the fewest entries it
// can: each step picks, among the folders whose wildcard would bring the count within
// budget, the one that covers the fewest entries (the deepest), or else the one that
// saves the most, and replaces what it covers with its wildcard. root ("/" or the base
// path with a trailing slash) bounds the folders; root+"*" is the last resort. Paths
// must start with root; the result is sorted.
func Collapse(paths []string, budget, maxWild int, root string) []string {
	entries := map[string]bool{}
	for _, p := range paths {
		entries[p] = true
	}
	if budget < 1 {
		budget = 1
	}
	all := []string{root + "*"}
	if maxWild < 1 {
		if len(entries) <= budget {
			return sorted(entries)
		}
		return all
	}
	for len(entries) > budget || countWild(keys(entries)) > maxWild {
		// Count the entries under each folder, and the wildcards among them.
		under, wild := map[string]int{}, map[string]int{}
		for e := range entries {
			for _, d := range ancestors(e, root) {
				under[d]++
				if strings.HasSuffix(e, "*") {
					wild[d]++
				}
			}
		}
		w := countWild(keys(entries))
		best, bestFits := "", false
		for d, n := range under {
			if d == root || n < 2 {
				continue // the last resort; or no saving
			}
			w2 := w - wild[d] + 1
			if w2 > maxWild && w2 >= w {
				continue // breaks the wildcard limit and merges nothing
			}
			fits := len(entries)-n+1 <= budget && w2 <= maxWild
			if best == "" || better(d, n, fits, best, under[best], bestFits) {
				best, bestFits = d, fits
			}
		}
		if best == "" {
			return all
		}
		for e := range entries {
			if strings.HasPrefix(e, best) {
				delete(entries, e)
			}
		}
		entries[best+"*"] = true
	}
	return sorted(entries)
}

// better reports whether folder a (covering n entries) is a better collapse than b:
// one that fits the budget beats one that does not; among fitting ones the fewest
// entries (least collateral) win, among others the most; then the deepest, then the
// first in order.
func better(a string, n int, fits bool, b string, m int, bFits bool) bool {
	if fits != bFits {
		return fits
	}
	if n != m {
		if fits {
			return n < m
		}
		return n > m
	}
	if da, db := strings.Count(a, "/"), strings.Count(b, "/"); da != db {
		return da > db
	}
	return a < b
}

// ancestors are the folders ("/a/", "/a/b/") holding p, from root down; a folder
// path's own folder counts ("/a/b/" is under "/a/b/"), a wildcard "/a/b/*" is under
// "/a/b/".
func ancestors(p, root string) []string {
	if !strings.HasPrefix(p, root) {
		return nil
	}
	out := []string{root}
	for i := len(root); i < len(p); i++ {
		if p[i] == '/' {
			out = append(out, p[:i+1])
		}
	}
	return out
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func sorted(m map[string]bool) []string {
	out := keys(m)
	sort.Strings(out)
	return out
}
