// Package sitegen writes synthetic sites for benchmarks and tests: a stump workspace of N
// Markdown pages, and the same pages as a Hugo site whose layouts mirror stump's campaign
// theme, so that the two builders can be compared on equal work.
//
// Output is deterministic: every choice is drawn from one PCG stream seeded by
// Options.Seed, in a fixed order, so the same options always give the same bytes.
package sitegen

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/stump-dev/stump/themes"
)

// Options says what to generate. Zero values take the documented defaults.
type Options struct {
	// Pages is the number of regular pages.
	Pages int
	// Sections is the number of top-level sections the pages are spread over (default 8).
	Sections int
	// Seed seeds the generator: the same seed and options give the same bytes.
	Seed uint64
	// Tags is the number of distinct tags pages draw from (default 200).
	Tags int
	// Theme is the stump theme named in site.yaml (default "campaign").
	Theme string
	// SiteName is the site's folder under sites/ (default "gen").
	SiteName string
	// Shortcodes ends every page with a figure shortcode. Everything else is the same
	// bytes as without it (it draws nothing from the random stream), so the two corpora
	// measure the cost of shortcodes alone.
	Shortcodes bool
}

// BaseURL is the baseURL of every generated site.
const BaseURL = "https://gen.example.org/"

// siteTitle is the title of every generated site.
const siteTitle = "Generated Campaign"

func (o Options) withDefaults() (Options, error) {
	if o.Sections == 0 {
		o.Sections = 8
	}
	if o.Tags == 0 {
		o.Tags = 200
	}
	if o.Theme == "" {
		o.Theme = "campaign"
	}
	if o.SiteName == "" {
		o.SiteName = "gen"
	}
	switch {
	case o.Pages < 0:
		return o, fmt.Errorf("sitegen: pages must not be negative, not %d", o.Pages)
	case o.Sections < 0:
		return o, fmt.Errorf("sitegen: sections must not be negative, not %d", o.Sections)
	case o.Tags < 0:
		return o, fmt.Errorf("sitegen: tags must not be negative, not %d", o.Tags)
	case o.SiteName != filepath.Base(o.SiteName) || strings.HasPrefix(o.SiteName, "."):
		return o, fmt.Errorf("sitegen: site name %q must be a plain folder name", o.SiteName)
	}
	return o, nil
}

// Generate writes a stump workspace at dir: stump.yaml and sites/<SiteName>/ with
// site.yaml and content/. It writes no theme, so stump uses its embedded theme of that
// name. dir must be empty or not exist yet.
func Generate(dir string, opts Options) error {
	opts, err := opts.withDefaults()
	if err != nil {
		return err
	}
	if err := emptyDir(dir); err != nil {
		return err
	}
	site := filepath.Join(dir, "sites", opts.SiteName)
	files := []file{
		{"stump.yaml", []byte("# stump workspace written by sitegen\noutput: public\n")},
		{"sites/" + opts.SiteName + "/site.yaml", siteConfig(opts, "languageCode: en\ntheme: "+opts.Theme+"\npaginate: 10\n")},
	}
	if err := writeFiles(dir, files); err != nil {
		return err
	}
	return writeFiles(filepath.Join(site, "content"), contentFiles(opts))
}

// GenerateHugo writes the same content as Generate as a Hugo site at dir: hugo.yaml,
// content/, layouts/ that mirror the campaign theme's structure (header, menu, article
// with date and tags, lists paginated by 10, taxonomy and term pages), and the theme's
// static files as Hugo assets. dir must be empty or not exist yet.
func GenerateHugo(dir string, opts Options) error {
	opts, err := opts.withDefaults()
	if err != nil {
		return err
	}
	if err := emptyDir(dir); err != nil {
		return err
	}
	// Settings where Hugo's defaults differ from stump's: term names shown as written, an
	// automatic summary of the first paragraph (summaryLength 1: whole blocks up to one
	// word), feeds of 20 entries, and robots.txt on.
	extra := "locale: en\ncapitalizeListTitles: false\nsummaryLength: 1\npagination:\n  pagerSize: 10\n" +
		"enableRobotsTXT: true\nservices:\n  rss:\n    limit: 20\n"
	files := []file{{"hugo.yaml", siteConfig(opts, extra)}}
	err = fs.WalkDir(hugoFiles, "hugo", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := hugoFiles.ReadFile(p)
		files = append(files, file{strings.TrimPrefix(p, "hugo/"), b})
		return err
	})
	if err != nil {
		return err
	}
	themeStatic, err := themeStaticFiles(opts.Theme)
	if err != nil {
		return err
	}
	for _, f := range themeStatic {
		// assets/ serves resources.Get (the theme's `asset`); static/ is copied as is,
		// as stump copies a theme's static folder.
		files = append(files, file{"assets/" + f.Path, f.Data}, file{"static/" + f.Path, f.Data})
	}
	if err := writeFiles(dir, files); err != nil {
		return err
	}
	return writeFiles(filepath.Join(dir, "content"), contentFiles(opts))
}

//go:embed all:hugo
var hugoFiles embed.FS

// siteConfig is the YAML both site.yaml and hugo.yaml share, followed by extra.
func siteConfig(opts Options, extra string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "title: %q\nbaseURL: %s\n", siteTitle, BaseURL)
	b.WriteString(extra)
	b.WriteString("taxonomies:\n  tag: tags\n  category: categories\nmenus:\n  main:\n")
	for i, s := range sectionList(opts.Sections) {
		fmt.Fprintf(&b, "    - name: %q\n      url: /%s/\n      weight: %d\n", titleCase(strings.ReplaceAll(s, "-", " ")), s, i+1)
	}
	b.WriteString("params:\n  description: \"A generated site for benchmarks.\"\n  mainsection: news\n")
	return []byte(b.String())
}

// themeStaticFiles returns the embedded theme's static/ files (none for an unknown
// theme), with paths relative to static/.
func themeStaticFiles(theme string) ([]file, error) {
	fsys, ok := themes.Get(theme)
	if !ok {
		return nil, nil
	}
	var out []file
	err := fs.WalkDir(fsys, "static", func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) && p == "static" {
			return fs.SkipAll
		}
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(fsys, p)
		out = append(out, file{strings.TrimPrefix(p, "static/"), b})
		return err
	})
	return out, err
}

// emptyDir creates dir, or checks that it is empty, so a generated tree never mixes
// with old files.
func emptyDir(dir string) error {
	ents, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return os.MkdirAll(dir, 0o755)
	case err != nil:
		return err
	case len(ents) > 0:
		return fmt.Errorf("sitegen: %s is not empty; generate into a new or empty folder", dir)
	}
	return nil
}

// writeFiles writes files under root, creating folders as needed.
func writeFiles(root string, files []file) error {
	made := map[string]bool{}
	for _, f := range files {
		p := filepath.Join(root, filepath.FromSlash(f.Path))
		if d := path.Dir(f.Path); !made[d] {
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
			made[d] = true
		}
		if err := os.WriteFile(p, f.Data, 0o644); err != nil {
			return err
		}
	}
	return nil
}
