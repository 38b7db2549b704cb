package build

import (
	"fmt"
	"path"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"

	"github.com/stump-dev/stump/build/config"
	"github.com/stump-dev/stump/build/diag"
	"github.com/stump-dev/stump/build/frontmatter"
)

// meta is the front matter of one content file, checked and typed.
type meta struct {
	title, slug, url, layout, typ, summary, description string
	date, lastmod, publishDate, expiryDate              time.Time
	draft                                               bool
	rawHTML                                             bool
	weight                                              int
	aliases                                             []string
	terms                                               map[string][]string
	params                                              map[string]any
	menus                                               []pageMenu
	layoutPos                                           frontmatter.Pos
	urlPos                                              frontmatter.Pos
	// redirectTo makes the page a redirect (Jekyll's redirect_to).
	redirectTo string
	// noRender and noList come from _build/build (render: never, list: never) and
	// headless: true; listLocal lists the page in its section only.
	noRender, noList, listLocal bool
	// permalinkPattern is a front matter permalink with :tokens.
	permalinkPattern string
}

// builtinKeyAliases map front matter keys of Jekyll, Eleventy and older Hugo sites to the
// keys stump reads (site.yaml frontMatterAliases adds more). When a page has both the
// alias and the key itself, the key wins.
var builtinKeyAliases = map[string]string{
	"redirect_from":    "aliases",
	"excerpt":          "summary",
	"expiration_date":  "expirydate",
	"unpublishdate":    "expirydate",
	"pubdate":          "publishdate",
	"publish_date":     "publishdate",
	"last_modified_at": "lastmod",
	"modified":         "lastmod",
	"build":            "_build",
}

// dateLayouts are the date forms front matter accepts.
var dateLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05Z0700",
	"2006-01-02 15:04:05 -0700",
	"2006-01-02 15:04:05 -07:00",
	"2006-01-02 15:04:05.999999999 -0700",
	"2006-01-02 15:04:05 -0700 MST",
	"2006-01-02 15:04:05.999999999 -0700 MST",
	"2006-01-02 15:04 -0700",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02T15:04:05",
	"2006-01-02T15:04",
	"2006-01-02 15:04:05Z07:00",
	"2006-01-02 15:04:05",
	"2006-01-02 15:04",
	"2006-01-02",
}

// parseMeta reads the known keys of doc; unknown keys go to params.
func parseMeta(shown string, doc *frontmatter.Doc, cfg *config.Loaded) (*meta, error) {
	m := &meta{params: map[string]any{}, terms: map[string][]string{}}
	errAt := func(key, format string, args ...any) error {
		p := doc.Pos(key)
		return diag.New(shown, p.Line, p.Col, format, args...)
	}
	str := func(key string, v any) (string, error) {
		switch t := v.(type) {
		case string:
			return t, nil
		case int, int64, uint64, float64, bool:
			return fmt.Sprint(t), nil
		case nil:
			return "", nil
		}
		return "", errAt(key, "%s must be text, not %s", key, kindOf(v))
	}
	date := func(key string, v any) (time.Time, error) {
		switch t := v.(type) {
		case time.Time:
			return t, nil
		case nil:
			return time.Time{}, nil
		case string:
			s := strings.TrimSpace(t)
			if s == "" {
				return time.Time{}, nil
			}
			s = shortOffset(s)
			for _, l := range dateLayouts {
				var tm time.Time
				var err error
				if strings.Contains(l, "Z07") || strings.Contains(l, "-07") {
					tm, err = time.Parse(l, s)
				} else {
					tm, err = time.ParseInLocation(l, s, cfg.Location)
				}
				if err == nil {
					return tm, nil
				}
			}
			return time.Time{}, errAt(key, "%s %q is not a date; write it like 2026-10-01 or 2026-10-01T18:30:00-05:00", key, s)
		}
		if d, ok := tomlDate(v, cfg.Location); ok {
			return d, nil
		}
		return time.Time{}, errAt(key, "%s must be a date like 2026-10-01, not %s", key, kindOf(v))
	}
	list := func(key string, v any) ([]string, error) {
		switch t := v.(type) {
		case nil:
			return nil, nil
		case string:
			if t == "" {
				return nil, nil
			}
			return []string{t}, nil
		case []any:
			out := make([]string, 0, len(t))
			for _, x := range t {
				s, err := str(key, x)
				if err != nil {
					return nil, errAt(key, "%s must be a list of text values", key)
				}
				if s != "" {
					out = append(out, s)
				}
			}
			return out, nil
		}
		return nil, errAt(key, "%s must be a list like [a, b], not %s", key, kindOf(v))
	}
	var err error
	rawKeys := make([]string, 0, len(doc.Fields))
	present := map[string]bool{}
	for k := range doc.Fields {
		rawKeys = append(rawKeys, k)
		present[strings.ToLower(k)] = true
	}
	sort.Strings(rawKeys)
	for _, rawKey := range rawKeys {
		v := doc.Fields[rawKey]
		key := strings.ToLower(rawKey)
		if a, ok := cfg.KeyAliases[key]; ok {
			if present[a] {
				continue // the key itself wins over its alias
			}
			key = a
		} else if a, ok := builtinKeyAliases[key]; ok {
			if present[a] {
				continue
			}
			key = a
		}
		switch key {
		case "title":
			m.title, err = str(rawKey, v)
		case "slug":
			m.slug, err = str(rawKey, v)
		case "url":
			m.url, err = str(rawKey, v)
			m.urlPos = doc.Pos(rawKey)
		case "layout":
			m.layout, err = str(rawKey, v)
			m.layoutPos = doc.Pos(rawKey)
		case "type":
			m.typ, err = str(rawKey, v)
		case "summary":
			m.summary, err = str(rawKey, v)
		case "description":
			m.description, err = str(rawKey, v)
			m.params["description"] = m.description
		case "date":
			m.date, err = date(rawKey, v)
		case "lastmod":
			m.lastmod, err = date(rawKey, v)
		case "publishdate":
			m.publishDate, err = date(rawKey, v)
		case "expirydate":
			m.expiryDate, err = date(rawKey, v)
		case "draft":
			b, ok := v.(bool)
			if !ok {
				return nil, errAt(rawKey, "draft must be true or false, not %s", kindOf(v))
			}
			m.draft = b
		case "rawhtml":
			b, ok := v.(bool)
			if !ok {
				return nil, errAt(rawKey, "rawHTML must be true or false, not %s", kindOf(v))
			}
			m.rawHTML = b
		case "weight":
			switch n := v.(type) {
			case int:
				m.weight = n
			default:
				return nil, errAt(rawKey, "weight must be a whole number, not %s", kindOf(v))
			}
		case "aliases":
			var as []string
			as, err = list(rawKey, v)
			m.aliases = append(m.aliases, as...)
		case "permalink":
			switch t := v.(type) {
			case bool:
				if !t {
					m.noRender = true
				}
			default:
				var s string
				s, err = str(rawKey, v)
				if strings.Contains(s, ":") {
					m.permalinkPattern = s
				} else if s != "" && !present["url"] {
					m.url, m.urlPos = s, doc.Pos(rawKey)
				}
			}
		case "redirect_to":
			var to []string
			to, err = list(rawKey, v)
			if len(to) > 0 {
				m.redirectTo = to[0]
			}
		case "headless":
			if b, ok := v.(bool); ok && b {
				m.noRender, m.noList = true, true
			}
		case "published":
			if b, ok := v.(bool); ok && !b {
				m.draft = true
			}
		case "_build":
			bm, ok := v.(map[string]any)
			if !ok {
				return nil, errAt(rawKey, "%s must be a map like {render: never, list: never}", rawKey)
			}
			for k, x := range bm {
				val := strings.ToLower(fmt.Sprint(x))
				switch strings.ToLower(k) {
				case "render":
					m.noRender = val == "never" || val == "false" || val == "link"
				case "list":
					m.noList = val == "never" || val == "false"
					m.listLocal = val == "local"
				}
			}
		case "params":
			pm, ok := v.(map[string]any)
			if !ok && v != nil {
				return nil, errAt(rawKey, "params must be a map of key: value, not %s", kindOf(v))
			}
			for k, x := range pm {
				m.params[strings.ToLower(k)] = x
			}
		case "menu":
			m.menus, err = parseMenus(v, func(f string, a ...any) error { return errAt(rawKey, f, a...) })
		default:
			if _, ok := cfg.Singular[key]; ok {
				m.terms[key], err = list(rawKey, v)
				continue
			}
			m.params[key] = v
		}
		if err != nil {
			return nil, err
		}
	}
	if m.url != "" {
		if err := checkURL(m.url); err != nil {
			return nil, diag.New(shown, m.urlPos.Line, m.urlPos.Col, "url %q %s", m.url, err)
		}
	}
	if m.slug != "" && (strings.ContainsAny(m.slug, "/\\") || m.slug == "." || m.slug == "..") {
		return nil, errAt("slug", "slug %q must be one path segment without '/' or '..'", m.slug)
	}
	for _, a := range m.aliases {
		if err := checkURL(a); err != nil {
			return nil, errAt("aliases", "alias %q %s", a, err)
		}
	}
	return m, nil
}

var shortOffsetRE = regexp.MustCompile(`\s([+-])(\d{1,2})(?::?(\d{2}))?$`)

// shortOffset writes a short zone offset the way Go parses it: Jekyll's
// "2015-03-17 14:00:00 -4" becomes "... -0400", "+530" and "+5:30" become "+0530".
func shortOffset(s string) string {
	m := shortOffsetRE.FindStringSubmatchIndex(s)
	if m == nil || !strings.Contains(s, ":") && !strings.Contains(s[:m[0]], " ") {
		return s
	}
	h := s[m[4]:m[5]]
	if len(h) == 1 {
		h = "0" + h
	}
	mm := "00"
	if m[6] >= 0 {
		mm = s[m[6]:m[7]]
	}
	return s[:m[0]] + " " + s[m[2]:m[3]] + h + mm
}

// checkURL rejects a page URL that would leave the output folder or is not a path.
func checkURL(u string) error {
	if strings.Contains(u, "://") || strings.HasPrefix(u, "//") || strings.ContainsAny(u, "\\?#\x00") {
		return fmt.Errorf("must be a path on this site like /news/rally/")
	}
	for _, seg := range strings.Split(u, "/") {
		if seg == ".." {
			return fmt.Errorf("tries to leave the site's output folder ('..' is not allowed in a URL)")
		}
	}
	if path.Clean("/"+u) == "/" && strings.Trim(u, "/") != "" {
		return fmt.Errorf("must name a path below the site root")
	}
	return nil
}

func parseMenus(v any, errf func(string, ...any) error) ([]pageMenu, error) {
	switch t := v.(type) {
	case string:
		return []pageMenu{{menu: t}}, nil
	case []any:
		var out []pageMenu
		for _, x := range t {
			s, ok := x.(string)
			if !ok {
				return nil, errf("menu must be a name, a list of names, or a map of name: {name, weight}")
			}
			out = append(out, pageMenu{menu: s})
		}
		return out, nil
	case map[string]any:
		var out []pageMenu
		for name, x := range t {
			pm := pageMenu{menu: name}
			if mm, ok := x.(map[string]any); ok {
				if s, ok := mm["name"].(string); ok {
					pm.entry.Name = s
				}
				if w, ok := mm["weight"].(int); ok {
					pm.entry.Weight = w
				}
				if s, ok := mm["identifier"].(string); ok {
					pm.entry.Identifier = s
				}
			} else if x != nil {
				return nil, errf("menu %q must map to {name, weight}", name)
			}
			out = append(out, pm)
		}
		return out, nil
	case nil:
		return nil, nil
	}
	return nil, errf("menu must be a name, a list of names, or a map of name: {name, weight}")
}

func kindOf(v any) string {
	switch v.(type) {
	case string:
		return "text"
	case []any:
		return "a list"
	case map[string]any:
		return "a map"
	case bool:
		return "true/false"
	case int, int64, uint64:
		return "a number"
	case float64:
		return "a decimal number"
	case nil:
		return "empty"
	}
	return fmt.Sprintf("%T", v)
}

// tomlDate converts TOML's local date types.
func tomlDate(v any, loc *time.Location) (time.Time, bool) {
	switch t := v.(type) {
	case toml.LocalDate:
		return t.AsTime(loc), true
	case toml.LocalDateTime:
		return t.AsTime(loc), true
	}
	return time.Time{}, false
}
