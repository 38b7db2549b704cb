package build

import (
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"html/template"
	"reflect"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/stump-dev/stump/build/markdown"
)

// funcMap is the template functions of one site (docs/templates.md lists them).
func (st *siteState) funcMap(ls **layouts) template.FuncMap {
	return template.FuncMap{
		"partial": func(name string, ctx ...any) (template.HTML, error) {
			return (*ls).partial(name, firstOrNil(ctx))
		},
		"partialCached": func(name string, ctx any, variants ...any) (template.HTML, error) {
			key := name + "\x00" + fmt.Sprint(variants...)
			st.partialMu.Lock()
			if st.partialCache == nil {
				st.partialCache = map[string]*partialResult{}
			}
			r, ok := st.partialCache[key]
			if !ok {
				r = &partialResult{}
				st.partialCache[key] = r
			}
			st.partialMu.Unlock()
			r.once.Do(func() { r.html, r.err = (*ls).partial(name, ctx) })
			return r.html, r.err
		},
		"relURL": func(v any) string {
			s := fmt.Sprint(v)
			if isAbsURL(s) {
				return s
			}
			return st.site.relURL(s)
		},
		"absURL": func(v any) string {
			s := fmt.Sprint(v)
			if isAbsURL(s) {
				return s
			}
			return st.site.absURL(s)
		},
		"asset": st.assets.get,
		"ref": func(p *Page, ref string) (string, error) {
			t, frag, err := st.resolveRef(p, ref)
			if err != nil {
				return "", err
			}
			return t.Permalink + frag, nil
		},
		"relref": func(p *Page, ref string) (string, error) {
			t, frag, err := st.resolveRef(p, ref)
			if err != nil {
				return "", err
			}
			return t.RelPermalink + frag, nil
		},
		"errorf":      func(format string, args ...any) (string, error) { return "", fmt.Errorf(format, args...) },
		"highlight":   st.highlight,
		"markdownify": st.markdownify,
		"plainify":    plainify,
		"dateFormat":  dateFormat,
		"isoDate": func(v any) (string, error) {
			t, err := toTime(v)
			if err != nil {
				return "", err
			}
			return t.Format(time.RFC3339), nil
		},
		"truncate":     truncate,
		"urlize":       markdown.Slugify,
		"safeHTML":     func(v any) template.HTML { return template.HTML(fmt.Sprint(v)) },
		"safeCSS":      func(v any) template.CSS { return template.CSS(fmt.Sprint(v)) },
		"safeJS":       func(v any) template.JS { return template.JS(fmt.Sprint(v)) },
		"safeURL":      func(v any) template.URL { return template.URL(fmt.Sprint(v)) },
		"safeHTMLAttr": func(v any) template.HTMLAttr { return template.HTMLAttr(fmt.Sprint(v)) },
		"lower":        func(v any) string { return strings.ToLower(fmt.Sprint(v)) },
		"upper":        func(v any) string { return strings.ToUpper(fmt.Sprint(v)) },
		"title":        titleCase,
		"trim":         func(s, cut string) string { return strings.Trim(s, cut) },
		"replace":      func(s, old, new string) string { return strings.ReplaceAll(s, old, new) },
		"split":        func(s, sep string) []string { return strings.Split(s, sep) },
		"hasPrefix":    func(s, p string) bool { return strings.HasPrefix(s, p) },
		"hasSuffix":    func(s, p string) bool { return strings.HasSuffix(s, p) },
		"contains":     func(s, sub string) bool { return strings.Contains(s, sub) },
		"default":      defaultValue,
		"dict":         dict,
		"slice":        func(v ...any) []any { return v },
		"first":        func(n int, list any) (any, error) { return sliceRange(list, 0, n) },
		"last": func(n int, list any) (any, error) {
			l, err := length(list)
			if err != nil {
				return nil, err
			}
			return sliceRange(list, max(0, l-n), l)
		},
		"after": func(n int, list any) (any, error) {
			l, err := length(list)
			if err != nil {
				return nil, err
			}
			return sliceRange(list, min(n, l), l)
		},
		"in":            in,
		"isset":         isset,
		"where":         where,
		"sortBy":        sortBy,
		"seq":           seq,
		"add":           func(a, b int) int { return a + b },
		"sub":           func(a, b int) int { return a - b },
		"mul":           func(a, b int) int { return a * b },
		"div":           div,
		"mod":           mod,
		"jsonify":       jsonify,
		"uniq":          uniq,
		"isMenuCurrent": isMenuCurrent,
	}
}

type partialResult struct {
	once sync.Once
	html template.HTML
	err  error
}

func firstOrNil(v []any) any {
	if len(v) == 0 {
		return nil
	}
	return v[0]
}

func isAbsURL(s string) bool {
	return strings.Contains(s, "://") || strings.HasPrefix(s, "//") || strings.HasPrefix(s, "mailto:") || strings.HasPrefix(s, "tel:")
}

func (st *siteState) markdownify(v any) (template.HTML, error) {
	s := fmt.Sprint(v)
	if s == "" {
		return "", nil
	}
	b, err := st.md.Inline([]byte(s))
	if err != nil {
		return "", fmt.Errorf("markdownify: %w", err)
	}
	return template.HTML(b), nil
}

// plainify strips HTML tags (from each < to the next >; a < with no > after it stays)
// and decodes entities, giving plain text (which templates escape again as needed).
func plainify(v any) string {
	return html.UnescapeString(stripTags(fmt.Sprint(v)))
}

// stripTags removes every run from a '<' to the next '>'.
func stripTags(s string) string {
	i := strings.IndexByte(s, '<')
	if i < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i >= 0 {
		j := strings.IndexByte(s[i:], '>')
		if j < 0 {
			break
		}
		b.WriteString(s[:i])
		s = s[i+j+1:]
		i = strings.IndexByte(s, '<')
	}
	b.WriteString(s)
	return b.String()
}

func toTime(v any) (time.Time, error) {
	switch t := v.(type) {
	case time.Time:
		return t, nil
	case *time.Time:
		return *t, nil
	case string:
		for _, l := range dateLayouts {
			if tm, err := time.Parse(l, t); err == nil {
				return tm, nil
			}
		}
		return time.Time{}, fmt.Errorf("%q is not a date", t)
	}
	return time.Time{}, fmt.Errorf("%v is not a date", v)
}

func dateFormat(layout string, v any) (string, error) {
	t, err := toTime(v)
	if err != nil {
		return "", err
	}
	return t.Format(layout), nil
}

// truncate cuts s to at most n runes at a word boundary and adds "…".
func truncate(n int, v any) string {
	s := fmt.Sprint(v)
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	cut := n
	for i := n; i > n/2; i-- {
		if unicode.IsSpace(r[i]) {
			cut = i
			break
		}
	}
	return strings.TrimRightFunc(string(r[:cut]), func(c rune) bool { return unicode.IsSpace(c) || unicode.IsPunct(c) }) + "…"
}

func titleCase(v any) string {
	words := strings.Fields(fmt.Sprint(v))
	for i, w := range words {
		r := []rune(w)
		r[0] = unicode.ToUpper(r[0])
		words[i] = string(r)
	}
	return strings.Join(words, " ")
}

func defaultValue(def, v any) any {
	if truth(v) {
		return v
	}
	return def
}

// truth is template truthiness.
func truth(v any) bool {
	if v == nil {
		return false
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.String, reflect.Slice, reflect.Map, reflect.Array:
		return rv.Len() > 0
	case reflect.Bool:
		return rv.Bool()
	case reflect.Int, reflect.Int64, reflect.Int32:
		return rv.Int() != 0
	case reflect.Float64:
		return rv.Float() != 0
	case reflect.Pointer, reflect.Interface:
		return !rv.IsNil()
	}
	if t, ok := v.(time.Time); ok {
		return !t.IsZero()
	}
	return true
}

func dict(kv ...any) (map[string]any, error) {
	if len(kv)%2 != 0 {
		return nil, errors.New("dict needs key, value pairs")
	}
	m := make(map[string]any, len(kv)/2)
	for i := 0; i < len(kv); i += 2 {
		k, ok := kv[i].(string)
		if !ok {
			return nil, fmt.Errorf("dict key %v is not text", kv[i])
		}
		m[k] = kv[i+1]
	}
	return m, nil
}

func length(list any) (int, error) {
	if list == nil {
		return 0, nil
	}
	rv := reflect.ValueOf(list)
	switch rv.Kind() {
	case reflect.Slice, reflect.Array, reflect.String, reflect.Map:
		return rv.Len(), nil
	}
	return 0, fmt.Errorf("%T is not a list", list)
}

func sliceRange(list any, lo, hi int) (any, error) {
	if list == nil {
		return nil, nil
	}
	rv := reflect.ValueOf(list)
	if rv.Kind() != reflect.Slice && rv.Kind() != reflect.Array {
		return nil, fmt.Errorf("%T is not a list", list)
	}
	hi = min(hi, rv.Len())
	lo = min(max(lo, 0), hi)
	return rv.Slice(lo, hi).Interface(), nil
}

func in(list any, v any) bool {
	if list == nil {
		return false
	}
	rv := reflect.ValueOf(list)
	switch rv.Kind() {
	case reflect.String:
		return strings.Contains(rv.String(), fmt.Sprint(v))
	case reflect.Slice, reflect.Array:
		for i := 0; i < rv.Len(); i++ {
			if equal(rv.Index(i).Interface(), v) {
				return true
			}
		}
	}
	return false
}

func isset(c any, key any) bool {
	if c == nil {
		return false
	}
	rv := reflect.ValueOf(c)
	switch rv.Kind() {
	case reflect.Map:
		return rv.MapIndex(reflect.ValueOf(fmt.Sprint(key))).IsValid()
	case reflect.Slice, reflect.Array:
		i, ok := key.(int)
		return ok && i >= 0 && i < rv.Len()
	}
	return false
}

func equal(a, b any) bool {
	if a == nil || b == nil {
		return a == b
	}
	if reflect.TypeOf(a).Comparable() && reflect.TypeOf(b).Comparable() && reflect.TypeOf(a) == reflect.TypeOf(b) {
		return a == b
	}
	return fmt.Sprint(a) == fmt.Sprint(b)
}

// field reads a page field or param by a dotted key ("Section", "Params.featured").
func field(v any, key string) any {
	cur := reflect.ValueOf(v)
	for _, part := range strings.Split(key, ".") {
		for cur.Kind() == reflect.Pointer || cur.Kind() == reflect.Interface {
			if cur.IsNil() {
				return nil
			}
			cur = cur.Elem()
		}
		switch cur.Kind() {
		case reflect.Map:
			x := cur.MapIndex(reflect.ValueOf(part))
			if !x.IsValid() {
				x = cur.MapIndex(reflect.ValueOf(strings.ToLower(part)))
			}
			if !x.IsValid() {
				return nil
			}
			cur = x
		case reflect.Struct:
			f := cur.FieldByName(part)
			if !f.IsValid() || !f.CanInterface() {
				m := cur.Addr().MethodByName(part)
				if !m.IsValid() || m.Type().NumIn() != 0 || m.Type().NumOut() != 1 {
					return nil
				}
				f = m.Call(nil)[0]
			}
			cur = f
		default:
			return nil
		}
	}
	if !cur.IsValid() || !cur.CanInterface() {
		return nil
	}
	return cur.Interface()
}

// where keeps the items whose key equals value ("where list key value") or compares with
// an operator ("where list key op value", op one of = != in not in).
func where(list any, key string, args ...any) (any, error) {
	op, val := "=", any(nil)
	switch len(args) {
	case 1:
		val = args[0]
	case 2:
		o, ok := args[0].(string)
		if !ok {
			return nil, errors.New("where: the operator must be text")
		}
		op, val = o, args[1]
	default:
		return nil, errors.New("where takes a list, a key, and a value (or an operator and a value)")
	}
	rv := reflect.ValueOf(list)
	if list == nil {
		return nil, nil
	}
	if rv.Kind() != reflect.Slice {
		return nil, fmt.Errorf("where: %T is not a list", list)
	}
	out := reflect.MakeSlice(rv.Type(), 0, rv.Len())
	for i := 0; i < rv.Len(); i++ {
		x := rv.Index(i)
		got := field(x.Interface(), key)
		var keep bool
		switch op {
		case "=", "==", "eq":
			keep = equal(got, val)
		case "!=", "<>", "ne":
			keep = !equal(got, val)
		case "in":
			keep = in(val, got)
		case "not in":
			keep = !in(val, got)
		default:
			return nil, fmt.Errorf("where: unknown operator %q (use =, !=, in, not in)", op)
		}
		if keep {
			out = reflect.Append(out, x)
		}
	}
	return out.Interface(), nil
}

// sortBy sorts a copy of list by a key, "asc" (default) or "desc".
func sortBy(list any, key string, order ...string) (any, error) {
	rv := reflect.ValueOf(list)
	if list == nil {
		return nil, nil
	}
	if rv.Kind() != reflect.Slice {
		return nil, fmt.Errorf("sortBy: %T is not a list", list)
	}
	desc := len(order) > 0 && strings.EqualFold(order[0], "desc")
	out := reflect.MakeSlice(rv.Type(), rv.Len(), rv.Len())
	reflect.Copy(out, rv)
	keys := make([]any, out.Len())
	for i := range keys {
		keys[i] = field(out.Index(i).Interface(), key)
	}
	idx := make([]int, out.Len())
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool {
		c := compare(keys[idx[a]], keys[idx[b]])
		if desc {
			return c > 0
		}
		return c < 0
	})
	sorted := reflect.MakeSlice(rv.Type(), out.Len(), out.Len())
	for i, j := range idx {
		sorted.Index(i).Set(out.Index(j))
	}
	return sorted.Interface(), nil
}

func compare(a, b any) int {
	switch x := a.(type) {
	case time.Time:
		if y, ok := b.(time.Time); ok {
			return x.Compare(y)
		}
	case int:
		if y, ok := b.(int); ok {
			return x - y
		}
	case float64:
		if y, ok := b.(float64); ok {
			switch {
			case x < y:
				return -1
			case x > y:
				return 1
			}
			return 0
		}
	}
	return strings.Compare(fmt.Sprint(a), fmt.Sprint(b))
}

func seq(args ...int) ([]int, error) {
	lo, hi := 1, 0
	switch len(args) {
	case 1:
		hi = args[0]
	case 2:
		lo, hi = args[0], args[1]
	default:
		return nil, errors.New("seq takes one or two numbers")
	}
	if hi-lo > 100000 {
		return nil, errors.New("seq: too many numbers")
	}
	var out []int
	for i := lo; i <= hi; i++ {
		out = append(out, i)
	}
	return out, nil
}

func div(a, b int) (int, error) {
	if b == 0 {
		return 0, errors.New("div: division by zero")
	}
	return a / b, nil
}

func mod(a, b int) (int, error) {
	if b == 0 {
		return 0, errors.New("mod: division by zero")
	}
	return a % b, nil
}

func jsonify(v any) (template.JS, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("jsonify: %w", err)
	}
	return template.JS(b), nil
}

func uniq(list any) (any, error) {
	rv := reflect.ValueOf(list)
	if list == nil {
		return nil, nil
	}
	if rv.Kind() != reflect.Slice {
		return nil, fmt.Errorf("uniq: %T is not a list", list)
	}
	out := reflect.MakeSlice(rv.Type(), 0, rv.Len())
	seen := map[string]bool{}
	for i := 0; i < rv.Len(); i++ {
		k := fmt.Sprint(rv.Index(i).Interface())
		if !seen[k] {
			seen[k] = true
			out = reflect.Append(out, rv.Index(i))
		}
	}
	return out.Interface(), nil
}

// isMenuCurrent reports whether the entry links to p or to a section above p.
func isMenuCurrent(p *Page, e *MenuEntry) bool {
	if p == nil || e == nil {
		return false
	}
	if e.Page != nil && e.Page == p {
		return true
	}
	if e.URL == p.RelPermalink {
		return true
	}
	root := "/"
	if p.Site != nil {
		root = p.Site.relURL("/")
	}
	return e.URL != root && strings.HasSuffix(e.URL, "/") && strings.HasPrefix(p.RelPermalink, e.URL)
}
