package markdown

import "strings"

// LinesOutsideFences calls fn with the index (0-based) and text of every line of a
// Markdown body that is neither inside a fenced code block (``` or ~~~) nor one of its
// fence lines, in order, until fn returns false.
func LinesOutsideFences(body []byte, fn func(i int, line string) bool) {
	fence := ""
	for i, line := range strings.Split(string(body), "\n") {
		t := strings.TrimSpace(line)
		if fence != "" {
			if strings.HasPrefix(t, fence) {
				fence = ""
			}
			continue
		}
		if strings.HasPrefix(t, "```") || strings.HasPrefix(t, "~~~") {
			fence = t[:3]
			continue
		}
		if !fn(i, line) {
			return
		}
	}
}
