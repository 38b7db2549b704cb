package build

import (
	"bytes"
	"path"
	"strings"

	"github.com/stump-dev/stump/build/diag"
	"github.com/stump-dev/stump/build/markdown"
)

// resourceExts are the file types under content/ published as they are: media,
// documents, data and web files that pages link to.
var resourceExts = map[string]bool{}

func init() {
	for _, e := range strings.Fields(`png jpg jpeg gif webp avif svg ico bmp tif tiff heic
		pdf doc docx xls xlsx ppt pptx odt ods odp rtf txt csv epub
		mp3 mp4 m4a webm ogg ogv oga wav mov vtt srt
		zip gz tgz json xml geojson gpx kml kmz ics vcf
		woff woff2 ttf otf css js mjs map wasm html htm`) {
		resourceExts["."+e] = true
	}
}

// templateExts are source files of other generators: never published.
var templateExts = map[string]string{
	".liquid": "a Liquid template", ".njk": "a Nunjucks template", ".hbs": "a Handlebars template",
	".handlebars": "a Handlebars template", ".mustache": "a Mustache template", ".ejs": "an EJS template",
	".haml": "a Haml template", ".pug": "a Pug template", ".jade": "a Pug template", ".erb": "an ERB template",
	".gotmpl": "a Go template", ".markdown": "Markdown named .markdown (rename it to .md)",
	".mdown": "Markdown named .mdown (rename it to .md)", ".mkd": "Markdown named .mkd (rename it to .md)",
	".scss": "a Sass source", ".sass": "a Sass source", ".less": "a Less source",
	".yaml": "a data file (data/ holds data)", ".yml": "a data file (data/ holds data)", ".toml": "a data file (data/ holds data)",
}

// classify says what a non-Markdown file under content/ is: "page" (HTML with front
// matter), "resource" (published as is), or "" with the reason it is skipped.
func classify(f srcFile) (kind, reason string) {
	name := strings.ToLower(path.Base(f.Rel))
	for _, suffix := range []string{".11tydata.js", ".11tydata.json", ".11tydata.cjs", ".11ty.js", ".11ty.cjs"} {
		if strings.HasSuffix(name, suffix) {
			return "", "an Eleventy data or template file"
		}
	}
	ext := path.Ext(name)
	if r, ok := templateExts[ext]; ok {
		return "", r
	}
	if ext == ".html" || ext == ".htm" {
		if b, err := f.read(); err == nil && (hasFrontMatter(b)) {
			return "page", ""
		}
		return "resource", ""
	}
	if resourceExts[ext] {
		return "resource", ""
	}
	if ext == "" {
		return "", "a file without an extension"
	}
	return "", "not Markdown, HTML with front matter, or a known resource type (" + ext + ")"
}

func hasFrontMatter(b []byte) bool {
	b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
	return bytes.HasPrefix(b, []byte("---\n")) || bytes.HasPrefix(b, []byte("---\r\n")) || bytes.HasPrefix(b, []byte("+++\n")) || bytes.HasPrefix(b, []byte("+++\r\n"))
}

// contentExt is the extension of a content file (".md" or ".html").
func contentExt(rel string) string {
	if strings.HasSuffix(rel, ".html") {
		return ".html"
	}
	return ".md"
}

// trimContentExt drops a content file's extension.
func trimContentExt(rel string) string { return strings.TrimSuffix(rel, contentExt(rel)) }

// checkLeaks warns about template syntax ({{ or {%) that reached a page's content outside
// code: a Liquid, Nunjucks or Go template expression the build does not run. With
// Options.Strict it is an error.
func (st *siteState) checkLeaks() error {
	var errs []error
	for _, p := range st.pages {
		if p.File == "" {
			continue
		}
		c := string(p.Content)
		if !strings.Contains(c, "{{") && !strings.Contains(c, "{%") {
			continue
		}
		if !leaksOutsideCode(c) {
			continue
		}
		line, col := leakLine(p.srcBody)
		line += p.bodyLine - 1
		if st.opts.Strict {
			errs = append(errs, diag.New(p.shown, line, col, "template syntax ({{ or {%%) reaches the page outside code; stump does not run Liquid, Nunjucks or Go templates in content (use a shortcode, or put it in code)"))
			continue
		}
		st.report.warn("%s:%d: template syntax ({{ or {%%) reaches the page outside code", p.shown, line)
	}
	return joinErrors(errs)
}

// leaksOutsideCode reports "{{" or "{%" in html outside <code>, <pre>, <script> and <style>.
func leaksOutsideCode(html string) bool {
	s := html
	for {
		i := strings.IndexAny(s, "{<")
		if i < 0 {
			return false
		}
		s = s[i:]
		if strings.HasPrefix(s, "{{") || strings.HasPrefix(s, "{%") {
			return true
		}
		if s[0] == '<' {
			skipped := false
			for _, tag := range []string{"code", "pre", "script", "style"} {
				if strings.HasPrefix(s, "<"+tag) && len(s) > len(tag)+1 && (s[len(tag)+1] == '>' || s[len(tag)+1] == ' ') {
					end := strings.Index(s, "</"+tag+">")
					if end < 0 {
						return false
					}
					s = s[end+len(tag)+3:]
					skipped = true
					break
				}
			}
			if skipped {
				continue
			}
		}
		s = s[1:]
	}
}

// leakLine finds the first line of a Markdown body with {{ or {% outside fenced code
// and code spans (1-based line and column in the body).
func leakLine(body []byte) (int, int) {
	line, col := 1, 1
	markdown.LinesOutsideFences(body, func(i int, text string) bool {
		if strings.HasPrefix(text, "    ") || strings.HasPrefix(text, "\t") {
			return true // indented code
		}
		ticks := false
		for j := 0; j+1 < len(text); j++ {
			if text[j] == '`' {
				ticks = !ticks
			}
			if !ticks && text[j] == '{' && (text[j+1] == '{' || text[j+1] == '%') {
				line, col = i+1, j+1
				return false
			}
		}
		return true
	})
	return line, col
}
