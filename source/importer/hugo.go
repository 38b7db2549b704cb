package importer

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/pelletier/go-toml/v2"

	"github.com/stump-dev/stump/build"
	"github.com/stump-dev/stump/build/config"
	"github.com/stump-dev/stump/build/markdown"
)

// hugoConfigNames are the config files Hugo reads at the site root, first found wins.
var hugoConfigNames = []string{"hugo.toml", "hugo.yaml", "hugo.yml", "hugo.json", "config.toml", "config.yaml", "config.yml", "config.json"}

func decodeConfig(name string, b []byte) (map[string]any, error) {
	m := map[string]any{}
	var err error
	switch path.Ext(name) {
	case ".toml":
		err = toml.Unmarshal(b, &m)
	case ".json":
		err = json.Unmarshal(b, &m)
	default:
		err = yaml.Unmarshal(b, &m)
	}
	return m, err
}

// lowerKeys lower-cases map keys at every level (Hugo's config keys are case-insensitive).
func lowerKeys(v any) any {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, x := range t {
			out[strings.ToLower(k)] = lowerKeys(x)
		}
		return out
	case []any:
		for i, x := range t {
			t[i] = lowerKeys(x)
		}
		return t
	case []map[string]any:
		out := make([]any, len(t))
		for i, x := range t {
			out[i] = lowerKeys(x)
		}
		return out
	}
	return v
}

// readHugoConfig merges the root config with config/_default/ (hugo.*, config.*, and
// one file per top-level key: menus.toml, params.toml ...).
func readHugoConfig(fsys fs.FS, s *site) (map[string]any, string, error) {
	cfg := map[string]any{}
	shown := ""
	for _, name := range hugoConfigNames {
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			continue
		}
		m, err := decodeConfig(name, b)
		if err != nil {
			return nil, "", fmt.Errorf("import: %s: %w", name, err)
		}
		cfg, shown = m, name
		break
	}
	files, _ := walk(fsys, "config/_default")
	for _, f := range files {
		b, err := fs.ReadFile(fsys, f)
		if err != nil {
			continue
		}
		m, err := decodeConfig(f, b)
		if err != nil {
			return nil, "", fmt.Errorf("import: %s: %w", f, err)
		}
		key := strings.TrimSuffix(path.Base(f), path.Ext(f))
		if key == "hugo" || key == "config" {
			for k, v := range m {
				cfg[k] = v
			}
		} else {
			cfg[key] = m
		}
		if shown == "" {
			shown = f
		}
	}
	if shown == "" {
		return nil, "", fmt.Errorf("import: no Hugo config (hugo.toml, config.toml, ...) in the source folder")
	}
	out, _ := lowerKeys(cfg).(map[string]any)
	return out, shown, nil
}

func importHugo(ctx context.Context, fsys fs.FS, s *site) error {
	cfg, cfgFile, err := readHugoConfig(fsys, s)
	if err != nil {
		return err
	}
	contentDir := "content"
	if c := str(cfg["contentdir"]); c != "" {
		contentDir = path.Clean(c)
	}
	theme := ""
	switch t := cfg["theme"].(type) {
	case string:
		theme = t
	case []any:
		if len(t) > 0 {
			theme = str(t[0])
		}
	}
	// Shortcodes: the theme's, then the site's (which win); those that parse with stump's
	// template functions are carried over.
	shortcodes := map[string]bool{}
	for _, n := range build.BuiltinShortcodes() {
		shortcodes[n] = true
	}
	for _, dir := range []string{"themes/" + theme + "/layouts/shortcodes", "layouts/shortcodes"} {
		if strings.HasPrefix(dir, "themes//") {
			continue
		}
		files, _ := walk(fsys, dir)
		for _, f := range files {
			name := strings.TrimSuffix(path.Base(f), path.Ext(f))
			if path.Ext(f) != ".html" {
				s.note(f, 0, "shortcode not carried over (stump shortcodes are .html templates)")
				continue
			}
			b, _ := fs.ReadFile(fsys, f)
			if err := build.CheckTemplate(f, string(b)); err != nil {
				s.note(f, 0, "shortcode not carried over: %v", err)
				continue
			}
			s.put("layouts/shortcodes/"+name+".html", b)
			shortcodes[name] = true
		}
	}
	if theme != "" {
		s.note(cfgFile, 0, "theme %q: its layouts are not carried over (stump sites use a stump theme); its shortcodes are, when they parse", theme)
	}
	stubs := map[string]bool{}
	files, err := walk(fsys, contentDir)
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return err
		}
		rel := strings.TrimPrefix(f, contentDir+"/")
		b, _ := fs.ReadFile(fsys, f)
		switch strings.ToLower(path.Ext(f)) {
		case ".md", ".markdown":
			s.pages++
			for _, u := range usedShortcodes(b) {
				if !shortcodes[u.name] && !stubs[u.name] {
					stubs[u.name] = true
					stub := ""
					if u.paired {
						stub = "{{ .Inner }}"
					}
					s.put("layouts/shortcodes/"+u.name+".html", []byte(stub))
					s.note(f, u.line, "shortcode %q is neither built in nor in the site's or theme's layouts/shortcodes in a form stump runs: it renders %s", u.name, map[bool]string{true: "its inner text only", false: "nothing"}[u.paired])
				}
			}
			if strings.HasSuffix(rel, ".markdown") {
				rel = strings.TrimSuffix(rel, ".markdown") + ".md"
			}
		}
		s.put("content/"+rel, b)
	}
	for _, dir := range []string{"static", "data"} {
		files, _ := walk(fsys, dir)
		for _, f := range files {
			b, _ := fs.ReadFile(fsys, f)
			s.put(f, b)
		}
	}
	for _, dir := range []string{"assets", "i18n", "layouts/_default", "layouts/partials"} {
		if files, _ := walk(fsys, dir); len(files) > 0 {
			s.note(dir, 0, "not carried over (%d files): stump sites use a stump theme and its asset pipeline", len(files))
		}
	}
	s.put("site.yaml", marshalConfig(hugoSiteConfig(cfg, cfgFile, s)))
	return nil
}

// hugoSiteConfig translates Hugo's config into site.yaml keys.
func hugoSiteConfig(cfg map[string]any, file string, s *site) yaml.MapSlice {
	var ms yaml.MapSlice
	add := func(k string, v any) { ms = append(ms, yaml.MapItem{Key: k, Value: v}) }
	for _, k := range []struct{ hugo, stump string }{{"title", "title"}, {"baseurl", "baseURL"}, {"languagecode", "languageCode"}, {"copyright", "copyright"}, {"timezone", "timeZone"}} {
		if v := str(cfg[k.hugo]); v != "" {
			add(k.stump, v)
		}
	}
	if n := toInt(cfg["paginate"]); n > 0 {
		add("paginate", n)
	} else if p, ok := cfg["pagination"].(map[string]any); ok && toInt(p["pagersize"]) > 0 {
		add("paginate", toInt(p["pagersize"]))
	}
	if tx, ok := cfg["taxonomies"].(map[string]any); ok {
		t := yaml.MapSlice{}
		for _, k := range sortedKeys(tx) {
			t = append(t, yaml.MapItem{Key: k, Value: str(tx[k])})
		}
		add("taxonomies", t)
	}
	// Permalinks: {section: pattern}, or Hugo 0.120's {page: {...}, term: {...}}.
	if pl, ok := cfg["permalinks"].(map[string]any); ok {
		out := yaml.MapSlice{}
		addPat := func(name string, v any) {
			pat := str(v)
			if !strings.HasPrefix(pat, "/") {
				pat = "/" + pat
			}
			if err := config.CheckPermalink(pat); err != nil {
				s.note(file, 0, "permalinks %s = %q: %v; left out", name, str(v), err)
				return
			}
			out = append(out, yaml.MapItem{Key: name, Value: pat})
		}
		for _, k := range sortedKeys(pl) {
			if sub, ok := pl[k].(map[string]any); ok {
				if k == "page" || k == "term" {
					for _, k2 := range sortedKeys(sub) {
						addPat(k2, sub[k2])
					}
				} else {
					s.note(file, 0, "permalinks.%s: not carried over (stump patterns apply to pages and terms)", k)
				}
				continue
			}
			addPat(k, pl[k])
		}
		if len(out) > 0 {
			add("permalinks", out)
		}
	}
	fileDates := false
	if fm, ok := cfg["frontmatter"].(map[string]any); ok {
		for _, x := range strList(fm["date"]) {
			if strings.Contains(x, ":filename") {
				fileDates = true
			}
		}
	}
	add("fileNameDates", fileDates)
	if mk, ok := cfg["markup"].(map[string]any); ok {
		if gm, ok := mk["goldmark"].(map[string]any); ok {
			if r, ok := gm["renderer"].(map[string]any); ok && r["unsafe"] == true {
				add("markdown", yaml.MapSlice{{Key: "unsafe", Value: true}})
			}
		}
	}
	menus := cfg["menus"]
	if menus == nil {
		menus = cfg["menu"]
	}
	if mm, ok := menus.(map[string]any); ok {
		out := yaml.MapSlice{}
		for _, name := range sortedKeys(mm) {
			var entries []yaml.MapSlice
			list, _ := mm[name].([]any)
			for _, e := range list {
				em, ok := e.(map[string]any)
				if !ok {
					continue
				}
				u := str(em["url"])
				if u == "" {
					u = pageRefURL(str(em["pageref"]))
				}
				if str(em["name"]) == "" || u == "" {
					s.note(file, 0, "menu %s: an entry without a name or url is left out", name)
					continue
				}
				if str(em["parent"]) != "" {
					s.note(file, 0, "menu %s: entry %q has a parent; stump menus are flat", name, str(em["name"]))
				}
				en := yaml.MapSlice{{Key: "name", Value: str(em["name"])}, {Key: "url", Value: u}}
				if w := toInt(em["weight"]); w != 0 {
					en = append(en, yaml.MapItem{Key: "weight", Value: w})
				}
				if id := str(em["identifier"]); id != "" {
					en = append(en, yaml.MapItem{Key: "identifier", Value: id})
				}
				entries = append(entries, en)
			}
			if len(entries) > 0 {
				out = append(out, yaml.MapItem{Key: name, Value: entries})
			}
		}
		if len(out) > 0 {
			add("menus", out)
		}
	}
	if p, ok := cfg["params"].(map[string]any); ok && len(p) > 0 {
		add("params", p)
	}
	known := map[string]bool{"title": true, "baseurl": true, "languagecode": true, "copyright": true, "timezone": true,
		"paginate": true, "pagination": true, "taxonomies": true, "permalinks": true, "frontmatter": true, "markup": true,
		"menus": true, "menu": true, "params": true, "theme": true, "contentdir": true, "enablerobotstxt": true}
	for _, k := range sortedKeys(cfg) {
		if !known[k] {
			s.note(file, 0, "%s: not carried over", k)
		}
	}
	return ms
}

// pageRefURL turns a menu pageRef ("/about", "posts/_index.md") into a URL path.
func pageRefURL(ref string) string {
	if ref == "" {
		return ""
	}
	r := strings.TrimSuffix(strings.TrimSuffix(ref, ".md"), "/_index")
	r = strings.TrimSuffix(r, "/index")
	r = strings.Trim(r, "/")
	if r == "" || r == "_index" {
		return "/"
	}
	return "/" + strings.ToLower(r) + "/"
}

func toInt(v any) int {
	switch t := v.(type) {
	case int:
		return t
	case int64:
		return int(t)
	case uint64:
		return int(t)
	case float64:
		return int(t)
	}
	return 0
}

func sortedKeys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

type usedShortcode struct {
	name   string
	line   int
	paired bool
}

var scCommentRE = regexp.MustCompile(`\{\{[<%]\s*/\*.*?\*/\s*[>%]\}\}`)

var scUseRE = regexp.MustCompile(`\{\{[<%]\s*(/?)\s*([A-Za-z0-9_.\-/]+)`)

// usedShortcodes lists the shortcodes a Markdown file uses outside fenced code, and
// whether each appears with a closing tag.
func usedShortcodes(b []byte) []usedShortcode {
	var out []usedShortcode
	idx := map[string]int{}
	markdown.LinesOutsideFences(b, func(i int, line string) bool {
		line = scCommentRE.ReplaceAllString(line, "")
		for _, m := range scUseRE.FindAllStringSubmatch(line, -1) {
			name := m[2]
			if strings.HasPrefix(name, "/*") {
				continue
			}
			if j, ok := idx[name]; ok {
				if m[1] == "/" {
					out[j].paired = true
				}
				continue
			}
			idx[name] = len(out)
			out = append(out, usedShortcode{name: name, line: i + 1, paired: m[1] == "/"})
		}
		return true
	})
	return out
}
