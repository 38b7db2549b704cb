package sitegen

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

// file is one generated file: Path is relative to content/ and uses "/".
type file struct {
	Path string
	Data []byte
}

// page is the front matter of one regular page.
type page struct {
	Section  string
	Slug     string
	Title    string
	Date     time.Time
	Tags     []string
	Category string
	Summary  string // empty: none in front matter
}

// URL is the page's root-relative pretty URL, the same in stump and Hugo.
func (p *page) URL() string { return "/" + p.Section + "/" + p.Slug + "/" }

// epoch is the earliest page date; dates spread over the three years after it.
var epoch = time.Date(2022, 1, 1, 0, 0, 0, 0, time.UTC)

const dateSpanMinutes = 3 * 365 * 24 * 60

// generator draws every random choice from one PCG stream, in a fixed order.
type generator struct {
	r        *rand.Rand
	tags     []string
	sections []string
	pages    []page
	opts     Options
}

func newGenerator(opts Options) *generator {
	g := &generator{r: rand.New(rand.NewPCG(opts.Seed, 0x73747570_73697465)), opts: opts}
	g.sections = sectionList(opts.Sections)
	g.tags = g.tagPool(opts.Tags)
	g.pages = make([]page, opts.Pages)
	for i := range g.pages {
		g.pages[i] = g.frontMatter(i)
	}
	return g
}

// contentFiles returns the content/ tree: the home's and each section's _index.md, then
// the pages, in a fixed order.
func contentFiles(opts Options) []file {
	g := newGenerator(opts)
	files := make([]file, 0, 1+len(g.sections)+len(g.pages))
	files = append(files, file{"_index.md", g.home()})
	for _, s := range g.sections {
		files = append(files, file{s + "/_index.md", g.sectionIndex(s)})
	}
	for i := range g.pages {
		p := &g.pages[i]
		files = append(files, file{p.Section + "/" + p.Slug + ".md", g.pageFile(i)})
	}
	return files
}

func sectionList(n int) []string {
	out := make([]string, n)
	for i := range out {
		if i < len(sectionNames) {
			out[i] = sectionNames[i]
		} else {
			out[i] = fmt.Sprintf("section-%d", i+1)
		}
	}
	return out
}

// tagPool returns n distinct tag names ("rural-transport"), in a seeded order.
func (g *generator) tagPool(n int) []string {
	combos := len(adjectives) * len(topics)
	perm := g.r.Perm(combos)
	out := make([]string, n)
	for i := range out {
		k := perm[i%combos]
		name := adjectives[k/len(topics)] + "-" + topics[k%len(topics)]
		if round := i / combos; round > 0 {
			name += fmt.Sprintf("-%d", round+1)
		}
		out[i] = name
	}
	return out
}

// skewed returns an index in [0, n) that favours small indexes, so a few tags and
// categories hold many pages (long, paginated term lists) and most hold few.
func (g *generator) skewed(n int) int {
	return int(float64(n) * math.Pow(g.r.Float64(), 1.5))
}

func (g *generator) frontMatter(i int) page {
	p := page{Section: g.sections[g.r.IntN(len(g.sections))]}
	p.Title = g.title(3 + g.r.IntN(5))
	p.Slug = fmt.Sprintf("%s-%05d", slugify(p.Title), i+1)
	p.Date = epoch.Add(time.Duration(g.r.IntN(dateSpanMinutes)) * time.Minute)
	n := min(1+g.r.IntN(5), len(g.tags))
	for len(p.Tags) < n {
		t := g.tags[g.skewed(len(g.tags))]
		if !slices.Contains(p.Tags, t) {
			p.Tags = append(p.Tags, t)
		}
	}
	p.Category = categories[g.skewed(len(categories))]
	if g.r.IntN(4) == 0 {
		p.Summary = g.sentence(8, 16, false)
	}
	return p
}

func (g *generator) home() []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "---\ntitle: %q\n---\n\n", "Welcome")
	b.WriteString(g.paragraph(2, 4, false))
	b.WriteString("\n")
	return []byte(b.String())
}

func (g *generator) sectionIndex(s string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "---\ntitle: %q\ndescription: %q\n---\n\n", titleCase(strings.ReplaceAll(s, "-", " ")), g.sentence(6, 12, false))
	b.WriteString(g.paragraph(2, 4, false))
	b.WriteString("\n")
	return []byte(b.String())
}

// pageFile renders page i: YAML front matter, then a Markdown body of roughly 600–1500
// bytes with headings, paragraphs, a list, and on some pages a table or code block.
func (g *generator) pageFile(i int) []byte {
	p := &g.pages[i]
	var b strings.Builder
	b.WriteString("---\n")
	fmt.Fprintf(&b, "title: %q\n", p.Title)
	fmt.Fprintf(&b, "date: %s\n", p.Date.Format(time.RFC3339))
	b.WriteString("tags: [")
	for j, t := range p.Tags {
		if j > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%q", t)
	}
	b.WriteString("]\n")
	fmt.Fprintf(&b, "categories: [%q]\n", p.Category)
	if p.Summary != "" {
		fmt.Fprintf(&b, "summary: %q\n", p.Summary)
	}
	b.WriteString("draft: false\n---\n\n")

	n := i + 1
	target := 600 + g.r.IntN(900)
	start := b.Len()
	b.WriteString(g.paragraph(2, 3, true))
	if g.r.IntN(3) == 0 {
		b.WriteString("\n<!--more-->\n")
	}
	headings := 2 + g.r.IntN(3)
	listAt := g.r.IntN(headings)
	for h := range headings {
		level := "##"
		if h > 0 && g.r.IntN(2) == 0 {
			level = "###"
		}
		fmt.Fprintf(&b, "\n%s %s\n\n", level, g.title(2+g.r.IntN(4)))
		b.WriteString(g.paragraph(1, 2, true))
		if h == listAt {
			b.WriteString("\n")
			b.WriteString(g.list())
		}
		if h == headings-1 {
			if n%5 == 0 {
				b.WriteString("\n")
				b.WriteString(g.table())
			}
			if n%4 == 0 {
				b.WriteString("\n")
				b.WriteString(g.code(codeLangs[(n/4)%len(codeLangs)]))
			}
		}
	}
	for b.Len()-start < target {
		b.WriteString("\n")
		b.WriteString(g.paragraph(1, 2, true))
	}
	if g.opts.Shortcodes {
		fmt.Fprintf(&b, "\n{{< figure src=\"/images/figure-%d.svg\" alt=%q caption=\"Figure %d of *%s*.\" >}}\n", n%16, p.Title, n, p.Section)
	}
	return []byte(b.String())
}

func (g *generator) word() string { return words[g.r.IntN(len(words))] }

func (g *generator) title(n int) string {
	ws := make([]string, n)
	for i := range ws {
		ws[i] = g.word()
	}
	return titleCase(strings.Join(ws, " "))
}

// sentence is lo..hi words, capitalised, with a full stop; with emphasis some words are
// wrapped in *…* or **…**.
func (g *generator) sentence(lo, hi int, emphasis bool) string {
	n := lo + g.r.IntN(hi-lo+1)
	ws := make([]string, n)
	for i := range ws {
		w := g.word()
		if i == 0 {
			w = strings.ToUpper(w[:1]) + w[1:]
		}
		if emphasis {
			switch g.r.IntN(24) {
			case 0:
				w = "*" + w + "*"
			case 1:
				w = "**" + w + "**"
			}
		}
		ws[i] = w
	}
	return strings.Join(ws, " ") + "."
}

// paragraph is lo..hi sentences, with a link when rich: to another page of the site
// (root-relative) or to an outside address.
func (g *generator) paragraph(lo, hi int, rich bool) string {
	n := lo + g.r.IntN(hi-lo+1)
	ss := make([]string, 0, n+1)
	for range n {
		ss = append(ss, g.sentence(5, 12, rich))
	}
	if rich {
		switch g.r.IntN(3) {
		case 0:
			if len(g.pages) > 0 {
				p := &g.pages[g.r.IntN(len(g.pages))]
				ss = append(ss, fmt.Sprintf("Read [%s](%s) for more.", strings.ToLower(p.Title), p.URL()))
			}
		case 1:
			ss = append(ss, fmt.Sprintf("See [the %s %s](https://example.org/%s/%s) too.", g.word(), g.word(), g.word(), g.word()))
		}
	}
	return strings.Join(ss, " ") + "\n"
}

func (g *generator) list() string {
	var b strings.Builder
	for range 3 + g.r.IntN(3) {
		fmt.Fprintf(&b, "- %s\n", strings.TrimSuffix(g.sentence(3, 8, true), "."))
	}
	return b.String()
}

func (g *generator) table() string {
	var b strings.Builder
	b.WriteString("| Item | Count | Note |\n| --- | ---: | --- |\n")
	for range 3 + g.r.IntN(3) {
		fmt.Fprintf(&b, "| %s | %d | %s %s |\n", titleCase(g.word()), g.r.IntN(10000), g.word(), g.word())
	}
	return b.String()
}

func (g *generator) code(lang string) string {
	a, c, n := g.word(), g.word(), g.r.IntN(1000)
	var body string
	switch lang {
	case "go":
		body = fmt.Sprintf("func %s(w http.ResponseWriter, r *http.Request) {\n\tn := %d\n\tif r.URL.Query().Has(%q) {\n\t\tn++\n\t}\n\tfmt.Fprintf(w, \"%s: %%d\\n\", n)\n}\n", a+"Handler", n, c, a)
	case "yaml":
		body = fmt.Sprintf("name: %s\ncount: %d\nitems:\n  - %s\n  - %s\nenabled: true\n", a, n, c, g.word())
	default:
		body = fmt.Sprintf("const %s = document.querySelector(\"#%s\");\n%s.addEventListener(\"click\", () => {\n  console.log(%q, %d);\n});\n", a+"El", c, a+"El", c, n)
	}
	return "```" + lang + "\n" + body + "```\n"
}

func titleCase(s string) string {
	ws := strings.Fields(s)
	for i, w := range ws {
		ws[i] = strings.ToUpper(w[:1]) + w[1:]
	}
	return strings.Join(ws, " ")
}

func slugify(s string) string { return strings.ToLower(strings.ReplaceAll(s, " ", "-")) }
