package importer

import (
	"fmt"
	"regexp"
	"strings"
)

// liquid rewrites the Liquid (Jekyll) and Nunjucks (Eleventy) expressions of a Markdown
// or HTML body that have a clear stump equivalent, and removes (with a note) those that
// do not, so no template syntax reaches the built pages. Code (fenced blocks, indented
// blocks, `spans`) is left alone but for {% raw %} tags, which Jekyll removes there too.
type liquid struct {
	s        *site
	file     string // source path shown in notes
	basePath string // the base URL's path without its last slash: "" or "/blog"
	siteURL  string // scheme and host without a slash: "https://example.org"
	vars     map[string]string
	// link resolves {% link path %} and {% post_url name %} to a URL.
	link    func(target string) (string, bool)
	postURL func(name string) (string, bool)
	// include turns {% include name args %} into a shortcode; "" when it cannot.
	include func(name string, args []arg, from string, line int) string
}

// arg is one key=value argument of an include or shortcode-like tag (key "" for a
// positional one).
type arg struct{ key, val string }

var (
	fenceRE     = regexp.MustCompile("^\\s{0,3}(```+|~~~+)")
	highlightRE = regexp.MustCompile(`^\s*\{%-?\s*highlight\s+([\w+#.-]+)[^%]*-?%\}\s*$`)
	endHlRE     = regexp.MustCompile(`^\s*\{%-?\s*endhighlight\s*-?%\}\s*$`)
	rawTagRE    = regexp.MustCompile(`\{%-?\s*(?:end)?raw\s*-?%\}`)
)

// rewrite returns body with its template expressions translated. bodyLine is the line of
// the source file the body starts on.
func (l *liquid) rewrite(body string, bodyLine int) string {
	lines := strings.Split(body, "\n")
	fence := ""
	inRaw, inComment := false, false
	prevBlank := true
	for i, line := range lines {
		n := bodyLine + i
		switch {
		case inComment:
			if j := strings.Index(line, "endcomment"); j >= 0 {
				if k := strings.Index(line[j:], "%}"); k >= 0 {
					lines[i] = line[j+k+2:]
					inComment = false
					continue
				}
			}
			lines[i] = ""
			continue
		case fence != "":
			if fence == "hl" && endHlRE.MatchString(line) || fence != "hl" && strings.HasPrefix(strings.TrimSpace(line), fence) {
				if fence == "hl" {
					lines[i] = "```"
				}
				fence = ""
				continue
			}
			lines[i] = rawTagRE.ReplaceAllString(line, "")
			continue
		}
		if m := fenceRE.FindStringSubmatch(line); m != nil {
			fence = m[1]
			continue
		}
		if m := highlightRE.FindStringSubmatch(line); m != nil {
			lines[i] = "```" + m[1]
			fence = "hl"
			continue
		}
		if prevBlank && (strings.HasPrefix(line, "    ") || strings.HasPrefix(line, "\t")) {
			lines[i] = rawTagRE.ReplaceAllString(line, "")
			continue
		}
		prevBlank = strings.TrimSpace(line) == ""
		lines[i], inRaw, inComment = l.rewriteLine(line, n, inRaw)
	}
	return strings.Join(lines, "\n")
}

// rewriteLine rewrites one line outside code blocks, leaving `code spans` alone.
func (l *liquid) rewriteLine(line string, n int, inRaw bool) (string, bool, bool) {
	if !strings.Contains(line, "{{") && !strings.Contains(line, "{%") {
		return line, inRaw, false
	}
	var b strings.Builder
	i := 0
	for i < len(line) {
		// A code span: copied with raw tags removed.
		if line[i] == '`' {
			j := i
			for j < len(line) && line[j] == '`' {
				j++
			}
			ticks := line[i:j]
			if k := strings.Index(line[j:], ticks); k >= 0 {
				b.WriteString(ticks + rawTagRE.ReplaceAllString(line[j:j+k], "") + ticks)
				i = j + k + len(ticks)
				continue
			}
			b.WriteString(ticks)
			i = j
			continue
		}
		if i+1 < len(line) && line[i] == '{' && (line[i+1] == '{' || line[i+1] == '%') {
			closer := "}}"
			if line[i+1] == '%' {
				closer = "%}"
			}
			k := strings.Index(line[i+2:], closer)
			if k < 0 {
				l.s.note(l.file, n, "template tag %q is not closed on its line; left as it is", clip(line[i:]))
				b.WriteString(line[i:])
				break
			}
			tag := line[i : i+2+k+2]
			inner := strings.TrimSpace(strings.Trim(line[i+2:i+2+k], "-"))
			i += len(tag)
			if closer == "%}" {
				name, rest, _ := strings.Cut(inner, " ")
				switch name {
				case "raw":
					inRaw = true
					continue
				case "endraw":
					inRaw = false
					continue
				case "comment":
					if j := strings.Index(line[i:], "endcomment"); j >= 0 {
						if e := strings.Index(line[i+j:], "%}"); e >= 0 {
							i += j + e + 2
							continue
						}
					}
					return b.String(), inRaw, true
				}
				if inRaw {
					b.WriteString(tag)
					continue
				}
				b.WriteString(l.tag(name, strings.TrimSpace(rest), tag, n))
				continue
			}
			if inRaw {
				b.WriteString(tag)
				continue
			}
			b.WriteString(l.output(inner, tag, n))
			continue
		}
		b.WriteByte(line[i])
		i++
	}
	return b.String(), inRaw, false
}

func clip(s string) string {
	if len(s) > 60 {
		return s[:57] + "..."
	}
	return s
}

var quotedRE = regexp.MustCompile(`^(?:"([^"]*)"|'([^']*)')$`)

// output translates {{ expr }}: a quoted path through url filters, or a site or page
// variable the import knows.
func (l *liquid) output(expr, tag string, n int) string {
	parts := strings.Split(expr, "|")
	head := strings.TrimSpace(parts[0])
	val, ok := "", false
	if m := quotedRE.FindStringSubmatch(head); m != nil {
		val, ok = m[1]+m[2], true
	} else if v, known := l.vars[head]; known {
		val, ok = v, true
	}
	if !ok {
		l.s.note(l.file, n, "template expression %s has no stump equivalent; removed", tag)
		return ""
	}
	for _, f := range parts[1:] {
		name, farg, _ := strings.Cut(strings.TrimSpace(f), ":")
		name, farg = strings.TrimSpace(name), strings.TrimSpace(farg)
		switch name {
		case "url", "relative_url", "relURL":
			if strings.HasPrefix(val, "/") {
				val = l.basePath + val
			}
		case "absolute_url", "absURL":
			if strings.HasPrefix(val, "/") {
				val = l.siteURL + l.basePath + val
			}
		case "prepend", "append":
			a := farg
			if m := quotedRE.FindStringSubmatch(a); m != nil {
				a = m[1] + m[2]
			} else if v, known := l.vars[a]; known {
				a = v
			} else {
				l.s.note(l.file, n, "template expression %s: %s %s is unknown; removed", tag, name, farg)
				return ""
			}
			if name == "prepend" {
				val = a + val
			} else {
				val += a
			}
		case "escape", "xml_escape", "strip", "safe", "uri_escape":
		default:
			l.s.note(l.file, n, "template expression %s: filter %q has no stump equivalent; removed", tag, name)
			return ""
		}
	}
	return val
}

// shortcodeTags are Liquid/Nunjucks tags from common plugins that are stump built-in
// shortcodes under the same name.
var shortcodeTags = map[string]string{"youtube": "youtube", "vimeo": "vimeo", "gist": "gist", "tweet": "x", "twitter": "x", "instagram": "instagram"}

// tag translates {% name rest %}.
func (l *liquid) tag(name, rest, tag string, n int) string {
	switch name {
	case "link":
		if u, ok := l.link(strings.Trim(rest, `"' `)); ok {
			return u
		}
		l.s.note(l.file, n, "%s names a file that is not in the site; removed", tag)
		return ""
	case "post_url":
		if u, ok := l.postURL(strings.Trim(rest, `"' `)); ok {
			return u
		}
		l.s.note(l.file, n, "%s names a post that is not in the site; removed", tag)
		return ""
	case "include", "include_relative", "render":
		fields := splitArgs(rest)
		if len(fields) == 0 {
			break
		}
		file := strings.Trim(fields[0].val, `"'`)
		if sc := l.include(file, fields[1:], l.file, n); sc != "" {
			return sc
		}
		return ""
	}
	if sc, ok := shortcodeTags[name]; ok {
		var b strings.Builder
		b.WriteString("{{< " + sc)
		for _, a := range splitArgs(strings.ReplaceAll(rest, ",", " ")) {
			v := strings.Trim(a.val, `"'`)
			if a.key != "" {
				fmt.Fprintf(&b, " %s=%q", a.key, v)
			} else {
				fmt.Fprintf(&b, " %q", v)
			}
		}
		b.WriteString(" >}}")
		return b.String()
	}
	l.s.note(l.file, n, "template tag %s has no stump equivalent; removed", clip(tag))
	return ""
}

// splitArgs splits `a.html key="v w" k2=x` into positional and key=value arguments.
func splitArgs(s string) []arg {
	var out []arg
	for s = strings.TrimSpace(s); s != ""; s = strings.TrimSpace(s) {
		var tok string
		if s[0] == '"' || s[0] == '\'' {
			if k := strings.IndexByte(s[1:], s[0]); k >= 0 {
				tok, s = s[:k+2], s[k+2:]
			} else {
				tok, s = s, ""
			}
			out = append(out, arg{val: tok})
			continue
		}
		end := strings.IndexAny(s, " \t")
		if end < 0 {
			end = len(s)
		}
		eq := strings.IndexByte(s[:end], '=')
		if eq < 0 {
			out = append(out, arg{val: s[:end]})
			s = s[end:]
			continue
		}
		key := s[:eq]
		s = s[eq+1:]
		if s != "" && (s[0] == '"' || s[0] == '\'') {
			if k := strings.IndexByte(s[1:], s[0]); k >= 0 {
				out = append(out, arg{key: key, val: s[:k+2]})
				s = s[k+2:]
				continue
			}
		}
		end = strings.IndexAny(s, " \t")
		if end < 0 {
			end = len(s)
		}
		out = append(out, arg{key: key, val: s[:end]})
		s = s[end:]
	}
	return out
}

var includeVarRE = regexp.MustCompile(`\{\{-?\s*include\.([A-Za-z0-9_]+)\s*-?\}\}`)

// includeShortcode turns an include file's text into a shortcode template: plain HTML as
// it is, {{ include.x }} as {{ .Get "x" }}. ok is false when other Liquid remains.
func includeShortcode(text string) (string, bool) {
	t := includeVarRE.ReplaceAllString(text, `{{ .Get "$1" }}`)
	rest := includeVarRE.ReplaceAllString(text, "")
	if strings.Contains(rest, "{{") || strings.Contains(rest, "{%") {
		return "", false
	}
	return t, true
}
