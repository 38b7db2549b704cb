// Command sitegen writes a synthetic stump workspace of N pages, and optionally the same
// content as a Hugo site, for benchmarks:
//
//	go run ./cmd/sitegen -pages 10000 -out /tmp/gen [-hugo /tmp/gen-hugo]
//	go run ./cmd/sitegen -sites 150 -pages 200 -out /tmp/many   # many sites, one theme
//
// The same flags always give the same bytes. Output folders must be new or empty.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/stump-dev/stump/internal/sitegen"
)

func main() {
	var opts sitegen.Options
	flag.IntVar(&opts.Pages, "pages", 1000, "number of regular pages")
	flag.IntVar(&opts.Sections, "sections", 8, "number of sections")
	flag.IntVar(&opts.Tags, "tags", 200, "number of distinct tags")
	flag.Uint64Var(&opts.Seed, "seed", 1, "random seed")
	flag.StringVar(&opts.Theme, "theme", "campaign", "stump theme named in site.yaml")
	flag.StringVar(&opts.SiteName, "site", "gen", "site folder name under sites/")
	flag.BoolVar(&opts.Shortcodes, "shortcodes", false, "end every page with a figure shortcode")
	out := flag.String("out", "", "folder for the stump workspace (required)")
	hugo := flag.String("hugo", "", "folder for the same content as a Hugo site (optional)")
	sites := flag.Int("sites", 0, "write this many sites (s001, s002, ...) sharing a copy of the theme in themes/")
	flag.Parse()
	if *out == "" || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: sitegen -pages N -out DIR [-hugo DIR] [-seed N] [-sections N] [-tags N]")
		os.Exit(2)
	}
	if *sites > 0 {
		if err := sitegen.GenerateMany(*out, *sites, opts); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Printf("stump workspace: %s (%d sites of %d pages, theme themes/%s)\n", *out, *sites, opts.Pages, opts.Theme)
		return
	}
	if err := sitegen.Generate(*out, opts); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("stump workspace: %s (%d pages, site %q)\n", *out, opts.Pages, opts.SiteName)
	if *hugo != "" {
		if err := sitegen.GenerateHugo(*hugo, opts); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Printf("hugo site: %s\n", *hugo)
	}
}
