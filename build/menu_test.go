package build

import (
	"context"
	"strings"
	"testing"
)

// A page that joins a menu without a weight sorts after the entries that have one (as
// in Hugo): `stump new page` with `menu: main` does not jump ahead of the scaffolded
// Home (weight 1). Entries of equal weight sort by name.
func TestMenuUnweightedAfterWeighted(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"stump.yaml":                "output: public\n",
		"sites/m/site.yaml":         "title: M\nbaseURL: https://m.example.org/\nmenus:\n  main:\n    - { name: Home, url: /, weight: 1 }\n    - { name: Zeta, url: /zeta/, weight: 2 }\n",
		"sites/m/content/_index.md": "---\ntitle: M\n---\n",
		"sites/m/content/zeta.md":   "---\ntitle: Zeta\n---\n",
		"sites/m/content/alpha.md":  "---\ntitle: Alpha\nmenu: main\n---\n",
		"sites/m/content/beta.md":   "---\ntitle: Beta\nmenu: main\n---\n",
	})
	ws, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	res, err := ws.Build(context.Background(), "m", Options{NoWrite: true})
	if err != nil {
		t.Fatal(err)
	}
	page := string(res.Tree["index.html"])
	order := []int{}
	for _, name := range []string{">Home<", ">Zeta<", ">Alpha<", ">Beta<"} {
		order = append(order, strings.Index(page, name))
	}
	for i := 1; i < len(order); i++ {
		if order[i-1] < 0 || order[i] < order[i-1] {
			t.Fatalf("menu order: want Home, Zeta (weighted), then Alpha, Beta (no weight); positions %v in\n%s", order, page)
		}
	}
}
