package edge

import (
	"testing"

	"github.com/stump-dev/stump/build/config"
)

func TestQueryRules(t *testing.T) {
	q, err := NewQueryRules(&config.Edge{Query: []config.EdgeQuery{
		{Path: "search/**", Params: []string{"q", "page"}},
		{Path: "*.json", Params: []string{"v"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ path, raw, want string }{
		{"/", "v=1&utm_source=x", ""},
		{"/search/", "v=1&q=rally", "q=rally"},
		{"/search/", "page=2&x=y&q=a", "page=2&q=a"},
		{"/search/deep/page/", "q=b", "q=b"},
		{"/search", "q=b", ""}, // the glob names the folder's pages
		{"/data/x.json", "v=3&q=1", "v=3"},
		{"/search/", "", ""},
		{"/search/", "qq=1&q", "q"},
	} {
		if got := q.Keep(c.path, c.raw); got != c.want {
			t.Errorf("Keep(%q, %q) = %q, want %q", c.path, c.raw, got, c.want)
		}
	}
	var none *QueryRules
	if got := none.Keep("/search/", "q=1"); got != "" {
		t.Errorf("nil rules kept %q", got)
	}
	if _, err := NewQueryRules(&config.Edge{Query: []config.EdgeQuery{{Path: "a/**", Params: []string{"a b"}}}}); err == nil {
		t.Errorf("a bad parameter name was accepted")
	}
}
