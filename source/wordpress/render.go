package wordpress

import (
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
)

func itoa(n int) string { return strconv.Itoa(n) }

// Warning is a problem with one item that did not stop the pull: an unknown shortcode,
// HTML the sanitizer removed, an image that could not be downloaded.
type Warning struct {
	ID      int    `json:"id"`
	Kind    string `json:"kind"`
	Title   string `json:"title"`
	Message string `json:"message"`
}

func (w Warning) String() string {
	if w.ID == 0 {
		return w.Message
	}
	return fmt.Sprintf("%s %d %q: %s", strings.TrimSuffix(w.Kind, "s"), w.ID, w.Title, w.Message)
}

// page is an item mapped to a stump page bundle: its folder (relative to the site, with
// slashes), its URL, its front matter and its sanitized body, before media are resolved.
type page struct {
	item    *Item
	dir     string // content/news/slug
	url     string // /2026/01/slug/
	aliases []string
	body    string // sanitized HTML; media URLs still WordPress's
	warn    []string
}

// mapItem renders shortcodes and sanitizes an item's body, and works out its URL.
func mapItem(it *Item, section string, san *Sanitizer, env shortcodeEnv) *page {
	p := &page{item: it}
	body, unknown := renderShortcodes(it.Body, env)
	for _, u := range dedupe(unknown) {
		p.warn = append(p.warn, "unknown shortcode "+u+" left as text")
	}
	clean, removed := san.Clean(body)
	if len(removed) > 0 {
		p.warn = append(p.warn, "sanitizer removed "+summarize(removed))
	}
	p.body = clean
	slug := it.Slug
	if slug == "" {
		slug = itoa(it.ID)
	}
	if it.Hierarchical {
		p.url = cleanPath(it.Path)
		if p.url == "" || p.url == "/" {
			p.url = "/" + slug + "/"
		}
	} else {
		own := "/" + section + "/" + slug + "/"
		p.url = cleanPath(it.Path)
		switch {
		case p.url == "" || p.url == "/":
			p.url = own
		case p.url != own:
			p.aliases = []string{own}
		}
	}
	return p
}

var fileExtRE = regexp.MustCompile(`\.[A-Za-z0-9]+$`)

// cleanPath makes a permalink path safe for front matter url: a leading and trailing
// slash, no dot segments, none of ?#\ or control characters; "" when it cannot be.
func cleanPath(p string) string {
	if p == "" || strings.ContainsAny(p, "?#\\\x00") {
		return ""
	}
	var segs []string
	for _, s := range strings.Split(p, "/") {
		switch s {
		case "", ".":
			continue
		case "..":
			return ""
		}
		for _, r := range s {
			if r < 0x20 || r == 0x7f {
				return ""
			}
		}
		segs = append(segs, s)
	}
	if len(segs) == 0 {
		return "/"
	}
	out := "/" + strings.Join(segs, "/")
	if !fileExtRE.MatchString(out) {
		out += "/"
	}
	return out
}

// dirName is the bundle folder name for a page's URL: its path segments joined by "-"
// for hierarchical types (about/team is about-team), else the slug.
func dirName(p *page) string {
	if p.item.Hierarchical {
		s := strings.Trim(p.url, "/")
		s = strings.ReplaceAll(s, "/", "-")
		if s == "" {
			s = itoa(p.item.ID)
		}
		return safeName(s)
	}
	if p.item.Slug != "" {
		return safeName(p.item.Slug)
	}
	return itoa(p.item.ID)
}

// safeName keeps a folder name to letters, digits, '-', '_' and '.', lower-cased
// (build lower-cases content paths anyway), without leading dots.
func safeName(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '_', r == '.', r > 0x7f:
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	return strings.TrimLeft(b.String(), ".")
}

func dedupe(list []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range list {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// frontMatter builds the page's Markdown file: YAML front matter in a fixed key order,
// then the body as one raw HTML block (see wrapBody).
func frontMatter(p *page, featured map[string]any) ([]byte, error) {
	it := p.item
	fm := yaml.MapSlice{{Key: "title", Value: it.Title}}
	if !it.Date.IsZero() {
		fm = append(fm, yaml.MapItem{Key: "date", Value: it.Date.UTC().Format(time.RFC3339)})
	}
	if !it.Modified.IsZero() {
		fm = append(fm, yaml.MapItem{Key: "lastmod", Value: it.Modified.UTC().Format(time.RFC3339)})
	}
	if it.Slug != "" {
		fm = append(fm, yaml.MapItem{Key: "slug", Value: it.Slug})
	}
	fm = append(fm, yaml.MapItem{Key: "url", Value: p.url})
	if len(p.aliases) > 0 {
		fm = append(fm, yaml.MapItem{Key: "aliases", Value: p.aliases})
	}
	if it.Excerpt != "" {
		fm = append(fm, yaml.MapItem{Key: "summary", Value: escapeMarkdown(it.Excerpt)})
	}
	if it.Author != "" {
		fm = append(fm, yaml.MapItem{Key: "author", Value: it.Author})
	}
	keys := make([]string, 0, len(it.Terms))
	for k := range it.Terms {
		keys = append(keys, k)
	}
	sortStrings(keys)
	for _, k := range keys {
		if len(it.Terms[k]) > 0 {
			fm = append(fm, yaml.MapItem{Key: k, Value: it.Terms[k]})
		}
	}
	if featured != nil {
		fm = append(fm, yaml.MapItem{Key: "featured_image", Value: featured})
	}
	fm = append(fm, yaml.MapItem{Key: "rawHTML", Value: true})
	fm = append(fm, yaml.MapItem{Key: "wordpress", Value: yaml.MapSlice{
		{Key: "id", Value: it.ID}, {Key: "type", Value: it.Kind}, {Key: "status", Value: it.Status},
	}})
	head, err := yaml.MarshalWithOptions(fm, yaml.UseLiteralStyleIfMultiline(false))
	if err != nil {
		return nil, fmt.Errorf("front matter of %s %d: %w", it.Kind, it.ID, err)
	}
	var b bytes.Buffer
	b.WriteString("---\n# Written by stump wordpress pull: edit the post in WordPress, not here.\n")
	b.Write(head)
	b.WriteString("---\n")
	b.WriteString(wrapBody(p.body))
	return b.Bytes(), nil
}

// wrapBody makes sanitized HTML one raw HTML block for the Markdown renderer: a <div>
// opens it, and every blank line (which would end the block and let Markdown rules
// apply to what follows) holds an empty comment instead, which changes nothing in HTML,
// not even inside <pre>.
func wrapBody(h string) string {
	h = strings.ReplaceAll(h, "\r\n", "\n")
	lines := strings.Split(strings.TrimSpace(h), "\n")
	for i, l := range lines {
		if strings.TrimSpace(l) == "" {
			lines[i] = l + "<!-- -->"
		}
	}
	return "<div class=\"wp-content\">\n" + strings.Join(lines, "\n") + "\n</div>\n"
}

// escapeMarkdown escapes the characters that would make plain text Markdown (the
// summary is rendered as inline Markdown).
func escapeMarkdown(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune("\\`*_{}[]()<>#+!|~&", r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
