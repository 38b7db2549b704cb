// Package themes embeds stump's built-in themes into the binary. A workspace that has no
// themes/<name>/ folder of its own uses the embedded theme of that name, so a new site
// builds with no files but its content.
package themes

import (
	"embed"
	"io/fs"
	"sort"
)

//go:embed all:campaign
var embedded embed.FS

// Get returns the embedded theme called name (its root holds layouts/ and static/).
func Get(name string) (fs.FS, bool) {
	sub, err := fs.Sub(embedded, name)
	if err != nil {
		return nil, false
	}
	if _, err := fs.Stat(sub, "layouts"); err != nil {
		return nil, false
	}
	return sub, true
}

// Names lists the embedded themes.
func Names() []string {
	ents, _ := embedded.ReadDir(".")
	var out []string
	for _, e := range ents {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out
}
