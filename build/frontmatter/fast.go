package frontmatter

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// fastYAML parses the common shape of YAML front matter without the YAML library: one
// `key: value` per line at the left margin, each value a double-quoted string without
// escapes, a flow list of such strings or of single words, true or false, a decimal
// integer, a date, or a plain string of letters, digits, spaces and a few punctuation
// marks. It returns ok == false for anything else (comments, nesting, other scalars,
// duplicate keys, tabs, CRLF), and the caller parses the block with the library. Where
// it accepts, the result (values and positions) is the library's, which
// TestFastYAMLAgreesWithLibrary checks on generated blocks.
//
// A parse costs about a tenth of the library's, which matters at 10,000 pages.
func fastYAML(block []byte) (fields map[string]any, keys map[string]Pos, ok bool) {
	fields, keys = map[string]any{}, map[string]Pos{}
	s := string(block)
	for n := 0; len(s) > 0; n++ {
		line := s
		if i := strings.IndexByte(s, '\n'); i >= 0 {
			line, s = s[:i], s[i+1:]
		} else {
			s = ""
		}
		if strings.TrimLeft(line, " ") == "" {
			if line != "" {
				return nil, nil, false // white space only: let the library judge
			}
			continue
		}
		k := 0
		for k < len(line) && isKeyByte(line[k], k == 0) {
			k++
		}
		if k == 0 || k+1 >= len(line) || line[k] != ':' || line[k+1] != ' ' {
			return nil, nil, false
		}
		key := line[:k]
		if _, dup := fields[key]; dup {
			return nil, nil, false
		}
		v := k + 1
		for v < len(line) && line[v] == ' ' {
			v++
		}
		val, good := fastValue(line[v:])
		if !good {
			return nil, nil, false
		}
		fields[key] = val
		keys[key] = Pos{Line: n + 2, Col: v + 1}
	}
	return fields, keys, true
}

func isKeyByte(c byte, first bool) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', c == '_':
		return true
	case '0' <= c && c <= '9', c == '-':
		return !first
	}
	return false
}

// fastValue decodes one value (the rest of its line).
func fastValue(v string) (any, bool) {
	switch {
	case v == "":
		return nil, false
	case v[0] == '"':
		str, rest, ok := quoted(v)
		if !ok || strings.TrimRight(rest, " ") != "" {
			return nil, false
		}
		return str, true
	case v[0] == '[':
		return flowList(v)
	case v == "true":
		return true, true
	case v == "false":
		return false, true
	case v[0] == '-' || '0' <= v[0] && v[0] <= '9':
		if n, ok := decimal(v); ok {
			return n, true
		}
		if isDate(v) {
			return v, true
		}
		return nil, false
	case plainWord(v, true):
		return v, true
	}
	return nil, false
}

// quoted reads a double-quoted string without escapes at the start of v and returns it
// and what follows it.
func quoted(v string) (string, string, bool) {
	end := strings.IndexByte(v[1:], '"')
	if end < 0 {
		return "", "", false
	}
	str := v[1 : 1+end]
	for i := 0; i < len(str); i++ {
		if c := str[i]; c == '\\' || c < ' ' || c == 0x7f {
			return "", "", false
		}
	}
	if !utf8.ValidString(str) {
		return "", "", false
	}
	return str, v[2+end:], true
}

// flowList decodes `[a, "b c"]`: elements separated by ", ", each a simple quoted string
// or a single word.
func flowList(v string) (any, bool) {
	v = strings.TrimRight(v, " ")
	if !strings.HasSuffix(v, "]") {
		return nil, false
	}
	inner := v[1 : len(v)-1]
	list := []any{}
	for inner != "" {
		var item, rest string
		if inner[0] == '"' {
			s, r, ok := quoted(inner)
			if !ok {
				return nil, false
			}
			item, rest = s, r
		} else {
			i := strings.IndexByte(inner, ',')
			if i < 0 {
				i = len(inner)
			}
			item, rest = inner[:i], inner[i:]
			if !plainWord(item, false) {
				return nil, false
			}
		}
		list = append(list, item)
		switch {
		case rest == "":
			inner = ""
		case strings.HasPrefix(rest, ", ") && len(rest) > 2 && rest[2] != ' ' && rest[2] != ',':
			inner = rest[2:]
		default:
			return nil, false
		}
	}
	return list, true
}

// decimal decodes 0, 42 or -42 (no sign on zero, no leading zeros, at most 18 digits).
func decimal(v string) (int, bool) {
	d := v
	neg := strings.HasPrefix(d, "-")
	if neg {
		d = d[1:]
	}
	if d == "" || len(d) > 18 || d[0] == '0' && (len(d) > 1 || neg) {
		return 0, false
	}
	n := 0
	for i := 0; i < len(d); i++ {
		if d[i] < '0' || d[i] > '9' {
			return 0, false
		}
		n = n*10 + int(d[i]-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}

// isDate reports a date or date-time the way front matter writes them
// (2024-11-26, 2024-11-26T07:13:00Z, 2024-11-26T07:13:00+02:00): YAML keeps it a string.
func isDate(v string) bool {
	const day, dayTime = "dddd-dd-dd", "dddd-dd-ddTdd:dd:dd"
	match := func(s, pattern string) bool {
		if len(s) != len(pattern) {
			return false
		}
		for i := 0; i < len(s); i++ {
			if pattern[i] == 'd' {
				if s[i] < '0' || s[i] > '9' {
					return false
				}
			} else if s[i] != pattern[i] {
				return false
			}
		}
		return true
	}
	if match(v, day) {
		return true
	}
	if len(v) < len(dayTime) || !match(v[:len(dayTime)], dayTime) {
		return false
	}
	zone := v[len(dayTime):]
	return zone == "Z" || match(zone, "+dd:dd") || match(zone, "-dd:dd")
}

// plainWord reports a plain scalar that YAML reads as that very string: it starts with a
// letter, holds letters, digits and (with spaces) single spaces and . , ' ! ? ( ) & / -,
// and is not a word YAML gives another meaning to (null, true, yes, ...).
func plainWord(v string, spaces bool) bool {
	if v == "" {
		return false
	}
	for i, r := range v {
		switch {
		case r == utf8.RuneError:
			return false
		case i == 0 && !unicode.IsLetter(r):
			return false
		case unicode.IsLetter(r) || unicode.IsDigit(r) && r < utf8.RuneSelf:
		case r == '-' || r == '_':
		case spaces && strings.ContainsRune(".,'!?()&/", r):
		case spaces && r == ' ':
			if i+1 >= len(v) || v[i+1] == ' ' {
				return false
			}
		default:
			return false
		}
	}
	switch strings.ToLower(v) {
	case "null", "true", "false", "yes", "no", "on", "off", "y", "n", "nan", "inf":
		return false
	}
	return true
}
