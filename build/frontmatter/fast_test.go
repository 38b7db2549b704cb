package frontmatter

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

// TestFastYAMLAgreesWithLibrary generates front matter blocks, many of the shape
// fastYAML takes and many just outside it, and checks that wherever fastYAML accepts a
// block, the YAML library accepts it too with the same values and positions.
func TestFastYAMLAgreesWithLibrary(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	n := 20000
	if testing.Short() {
		n = 2000
	}
	accepted := 0
	for i := range n {
		block := genBlock(rng)
		fields, keys, ok := fastYAML([]byte(block))
		if !ok {
			continue
		}
		accepted++
		var d Doc
		if err := d.parseYAMLLibrary("f.md", []byte(block)); err != nil {
			t.Fatalf("case %d: fastYAML accepts what the library rejects (%v):\n%s", i, err, block)
		}
		if !reflect.DeepEqual(fields, d.Fields) {
			t.Fatalf("case %d: values differ:\n%s\nfast:    %#v\nlibrary: %#v", i, block, fields, d.Fields)
		}
		if !reflect.DeepEqual(keys, d.Keys) {
			t.Fatalf("case %d: positions differ:\n%s\nfast:    %v\nlibrary: %v", i, block, keys, d.Keys)
		}
	}
	// Both sides of the boundary must be exercised for the check to mean anything.
	if accepted < n/10 || accepted > n*9/10 {
		t.Fatalf("fastYAML accepted %d of %d generated blocks: the generator no longer probes its boundary", accepted, n)
	}
}

// TestFastYAMLCases: the shapes sitegen, Hugo and Jekyll sites write, and near misses
// that must go to the library.
func TestFastYAMLCases(t *testing.T) {
	for _, c := range []struct {
		block string
		want  map[string]any // nil: fastYAML declines
	}{
		{"title: \"A Neighbour Change\"\ndate: 2024-11-26T07:13:00Z\ntags: [\"senior-housing\"]\ncategories: [\"letters\"]\ndraft: false\n",
			map[string]any{"title": "A Neighbour Change", "date": "2024-11-26T07:13:00Z", "tags": []any{"senior-housing"}, "categories": []any{"letters"}, "draft": false}},
		{"title: My First Post\nweight: 10\ntags: [go, web]\n", map[string]any{"title": "My First Post", "weight": 10, "tags": []any{"go", "web"}}},
		{"title: Élection générale\n", map[string]any{"title": "Élection générale"}},
		{"date: 2024-11-26\n\nlayout: post\n", map[string]any{"date": "2024-11-26", "layout": "post"}},
		{"title: yes\n", nil},
		{"title: x # comment\n", nil},
		{"title: \"say \\\"hi\\\"\"\n", nil},
		{"tags:\n  - a\n", nil},
		{"title: a: b\n", nil},
		{"title: x\ntitle: y\n", nil},
		{"weight: 007\n", nil},
		{"ratio: 1.5\n", nil},
		{"title: x\r\n", nil},
		{"# comment\ntitle: x\n", nil},
		{"title:\tx\n", nil},
	} {
		fields, _, ok := fastYAML([]byte(c.block))
		if c.want == nil {
			if ok {
				t.Errorf("fastYAML took %q (%#v); it must leave it to the library", c.block, fields)
			}
			continue
		}
		if !ok || !reflect.DeepEqual(fields, c.want) {
			t.Errorf("fastYAML(%q) = %#v, %v; want %#v", c.block, fields, ok, c.want)
		}
	}
}

var (
	genKeys  = []string{"title", "date", "tags", "draft", "weight", "a-b", "x_1", "Title", "null", "true", "yes", "on", "k", "_k", "1k", "-k", "key word"}
	genWords = []string{"a", "Go", "web", "null", "Null", "NULL", "true", "True", "false", "yes", "No", "on", "off", "y", "n", "~", "nan", "NaN", ".inf", "inf", "Inf",
		"élan", "日本", "e\u0301", "x1", "1x", "a-b", "a_b", "-a", "a.b", "Q&A", "it's", "Don't", "x!", "why?", "(a)", "a/b", "0x1F", "1e3", "1_000", "+5", "007", "0", "-0", "12", "-3",
		"2024-11-26", "2024-11-26T07:13:00Z", "2024-11-26T07:13:00+02:00", "2024-11-26T07:13:00.5Z", "2024-1-2", "2024-11-26 07:13:00", "12:30", "1.5", ".5"}
	genChars = []string{"a", "Z", "0", "9", " ", "  ", "\"", "'", "\\", "#", " #", ":", ": ", ",", ", ", "[", "]", "{", "}", "&", "*", "!", "|", ">", "%", "@", "`", "-", "?", ".", "\t", "\u00a0", "é", "日", "\u0301", "\u2028"}
)

// genBlock makes a block: a tame one (the shapes fastYAML takes, with an odd line or
// value now and then) or a wild one (odd characters, separators and lines throughout).
func genBlock(rng *rand.Rand) string {
	var b strings.Builder
	wild := rng.IntN(2) == 0
	lines := 1 + rng.IntN(6)
	for range lines {
		if !wild && rng.IntN(12) > 0 {
			fmt.Fprintf(&b, "%s: %s\n", genKeys[rng.IntN(5)], tameValue(rng))
			continue
		}
		switch rng.IntN(20) {
		case 0:
			b.WriteString("\n") // blank line
			continue
		case 1:
			b.WriteString("# a comment\n")
			continue
		case 2:
			b.WriteString("  indented: x\n")
			continue
		}
		key := genKeys[rng.IntN(len(genKeys))]
		if rng.IntN(3) > 0 {
			key = genKeys[rng.IntN(5)] // mostly ordinary keys (and duplicates)
		}
		sep := []string{": ", ": ", ": ", ":  ", ":", ":\t", " : "}[rng.IntN(7)]
		end := "\n"
		if rng.IntN(40) == 0 {
			end = "\r\n"
		} else if rng.IntN(20) == 0 {
			end = " \n"
		}
		fmt.Fprintf(&b, "%s%s%s%s", key, sep, genValue(rng, 0), end)
	}
	return b.String()
}

// tameValue is a value of a shape fastYAML takes, mostly.
func tameValue(rng *rand.Rand) string {
	words := []string{"Hello", "Ballot", "Vote", "Élection", "Plan", "it's", "Q&A", "(a)", "why?", "a/b", "a.b", "x1", "a-b", "日本"}
	text := func() string {
		n := 1 + rng.IntN(4)
		ws := make([]string, n)
		for i := range ws {
			ws[i] = words[rng.IntN(len(words))]
		}
		return strings.Join(ws, " ")
	}
	switch rng.IntN(7) {
	case 0:
		return `"` + text() + `"`
	case 1:
		return text()
	case 2:
		n := rng.IntN(4)
		items := make([]string, n)
		for i := range items {
			if rng.IntN(2) == 0 {
				items[i] = `"` + text() + `"`
			} else {
				items[i] = []string{"go", "web", "a-b", "x_1", "Élan"}[rng.IntN(5)]
			}
		}
		return "[" + strings.Join(items, ", ") + "]"
	case 3:
		return fmt.Sprint(rng.IntN(2000) - 1000)
	case 4:
		return []string{"true", "false"}[rng.IntN(2)]
	case 5:
		return fmt.Sprintf("20%02d-%02d-%02dT%02d:%02d:00Z", rng.IntN(30), 1+rng.IntN(12), 1+rng.IntN(28), rng.IntN(24), rng.IntN(60))
	default:
		return genValue(rng, 0)
	}
}

func genValue(rng *rand.Rand, depth int) string {
	switch rng.IntN(8) {
	case 0, 1:
		return genWords[rng.IntN(len(genWords))]
	case 2:
		return `"` + genText(rng, true) + `"`
	case 3:
		if depth > 0 {
			return genWords[rng.IntN(len(genWords))]
		}
		n := rng.IntN(4)
		items := make([]string, n)
		for i := range items {
			items[i] = genValue(rng, 1)
		}
		sep := ", "
		if rng.IntN(8) == 0 {
			sep = []string{",", " , ", ",  "}[rng.IntN(3)]
		}
		return "[" + strings.Join(items, sep) + "]"
	case 4:
		return fmt.Sprint(rng.IntN(2000) - 1000)
	default:
		return genText(rng, false)
	}
}

// genText is words joined by spaces, sometimes with an odd character mixed in.
func genText(rng *rand.Rand, quoted bool) string {
	var b strings.Builder
	n := 1 + rng.IntN(4)
	for i := range n {
		if i > 0 {
			b.WriteString(" ")
		}
		w := genWords[rng.IntN(len(genWords))]
		if rng.IntN(3) == 0 {
			w = []string{"Hello", "Ballot", "Vote", "Élection", "Plan"}[rng.IntN(5)]
		}
		b.WriteString(w)
		if rng.IntN(4) == 0 {
			b.WriteString(genChars[rng.IntN(len(genChars))])
		}
	}
	return b.String()
}
