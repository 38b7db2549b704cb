package sitegen

import (
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"

	"github.com/stump-dev/stump/themes"
)

// ManySiteName is the folder name of site i (from 0) of GenerateMany: s001, s002, ...
func ManySiteName(i int) string { return fmt.Sprintf("s%03d", i+1) }

// GenerateMany writes a workspace of n sites that share one theme, the shape of a
// campaign repository: stump.yaml, themes/<Theme>/ (a copy of the built-in theme, so
// that editing it touches every site), and sites/s001 ... with opts.Pages pages each.
// Site i draws its content from seed opts.Seed+i, so the sites differ. dir must be
// empty or not exist yet.
func GenerateMany(dir string, n int, opts Options) error {
	if n <= 0 {
		return fmt.Errorf("sitegen: the number of sites must be positive, not %d", n)
	}
	opts, err := opts.withDefaults()
	if err != nil {
		return err
	}
	if err := emptyDir(dir); err != nil {
		return err
	}
	fsys, ok := themes.Get(opts.Theme)
	if !ok {
		return fmt.Errorf("sitegen: no built-in theme %q to copy", opts.Theme)
	}
	files := []file{{"stump.yaml", []byte("# stump workspace written by sitegen (many sites)\noutput: public\n")}}
	err = fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(fsys, p)
		files = append(files, file{"themes/" + opts.Theme + "/" + p, b})
		return err
	})
	if err != nil {
		return err
	}
	if err := writeFiles(dir, files); err != nil {
		return err
	}
	for i := range n {
		o := opts
		o.Seed = opts.Seed + uint64(i)
		o.SiteName = ManySiteName(i)
		cfg := siteConfig(o, "languageCode: en\ntheme: "+o.Theme+"\npaginate: 10\n")
		cfg = []byte(strings.Replace(string(cfg), BaseURL, strings.Replace(BaseURL, "gen.", o.SiteName+".", 1), 1))
		site := filepath.Join(dir, "sites", o.SiteName)
		if err := writeFiles(site, []file{{"site.yaml", cfg}}); err != nil {
			return err
		}
		if err := writeFiles(filepath.Join(site, "content"), contentFiles(o)); err != nil {
			return err
		}
	}
	return nil
}
