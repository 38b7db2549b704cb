package edge

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/stump-dev/stump/build/config"
)

// QueryRules is the edge's query-string rule in Go, for the servers that preview a site
// (`stump watch`, `stump serve`) to treat query strings as production does: none is
// kept but the parameters edge.query lists for the path, sorted. The zero value (and
// nil) keeps none.
type QueryRules struct {
	rules []queryMatcher
}

type queryMatcher struct {
	re     *regexp.Regexp
	params map[string]bool
}

// NewQueryRules compiles a site's edge.query (e may be nil: no edge section, so no
// query is kept) with the same path globs the VCL uses.
func NewQueryRules(e *config.Edge) (*QueryRules, error) {
	q := &QueryRules{}
	if e == nil {
		return q, nil
	}
	for i, r := range e.Query {
		re, err := globRegex(r.Path)
		if err != nil {
			return nil, fmt.Errorf("edge.query[%d]: path %q: %v", i, r.Path, err)
		}
		c, err := regexp.Compile(re)
		if err != nil {
			return nil, fmt.Errorf("edge.query[%d]: path %q: %v", i, r.Path, err)
		}
		m := queryMatcher{re: c, params: map[string]bool{}}
		for _, p := range r.Params {
			if !paramRE.MatchString(p) {
				return nil, fmt.Errorf("edge.query[%d]: %q is not a query parameter name", i, p)
			}
			m.params[p] = true
		}
		q.rules = append(q.rules, m)
	}
	return q, nil
}

// Keep returns what the edge keeps of rawQuery for a request of urlPath: the
// parameters of the first rule whose glob matches the path, sorted, or "".
func (q *QueryRules) Keep(urlPath, rawQuery string) string {
	if q == nil || rawQuery == "" {
		return ""
	}
	for _, r := range q.rules {
		if !r.re.MatchString(urlPath) {
			continue
		}
		var kept []string
		for _, kv := range strings.Split(rawQuery, "&") {
			name, _, _ := strings.Cut(kv, "=")
			if r.params[name] {
				kept = append(kept, kv)
			}
		}
		sort.Strings(kept)
		return strings.Join(kept, "&")
	}
	return ""
}
