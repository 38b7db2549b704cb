package build

import (
	"fmt"
	"sort"
	"sync"
)

// Report says what a build left out or could not carry over. The CLI prints it after the
// summary line and in --json.
type Report struct {
	// Drafts, Future and Expired count the pages left out (see Options).
	Drafts  int `json:"drafts"`
	Future  int `json:"future"`
	Expired int `json:"expired"`
	// RawHTML counts pages whose raw HTML was omitted (markdown.unsafe is off).
	RawHTML int `json:"rawHtmlPages"`
	// Skipped are files in content/ that were not published, with the reason.
	Skipped []SkippedFile `json:"skipped,omitempty"`
	// Warnings are positioned messages ("file:line: ...") about output that is built
	// but likely wrong.
	Warnings []string `json:"warnings,omitempty"`
}

// SkippedFile is a content file left out of the build.
type SkippedFile struct {
	File   string `json:"file"`
	Reason string `json:"reason"`
}

// reportState gathers a Report from many goroutines.
type reportState struct {
	mu sync.Mutex
	Report
	// missingLayouts counts pages by the layout they named that does not exist, with the
	// first page's position.
	missingLayouts map[string]*missingLayout
}

type missingLayout struct {
	pages int
	first string
	used  string
}

func (r *reportState) count(n *int) {
	r.mu.Lock()
	*n++
	r.mu.Unlock()
}

func (r *reportState) skip(file, reason string) {
	r.mu.Lock()
	r.Skipped = append(r.Skipped, SkippedFile{File: file, Reason: reason})
	r.mu.Unlock()
}

func (r *reportState) warn(format string, args ...any) {
	r.mu.Lock()
	r.Warnings = append(r.Warnings, fmt.Sprintf(format, args...))
	r.mu.Unlock()
}

// layoutMissing records a page whose layout does not exist and the layout used instead.
func (r *reportState) layoutMissing(layout, where, used string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.missingLayouts == nil {
		r.missingLayouts = map[string]*missingLayout{}
	}
	ml := r.missingLayouts[layout]
	if ml == nil {
		ml = &missingLayout{first: where, used: used}
		r.missingLayouts[layout] = ml
	} else if where < ml.first {
		ml.first, ml.used = where, used
	}
	ml.pages++
}

// result returns the finished report, sorted so that it is the same on every run.
func (r *reportState) result() Report {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.Report
	out.Warnings = append([]string(nil), r.Warnings...)
	out.Skipped = append([]SkippedFile(nil), r.Skipped...)
	for name, ml := range r.missingLayouts {
		pages := "pages use"
		if ml.pages == 1 {
			pages = "page uses"
		}
		out.Warnings = append(out.Warnings, fmt.Sprintf("%s: layout %q does not exist; %d %s the section's or the default layout instead (like layouts/%s)", ml.first, name, ml.pages, pages, ml.used))
	}
	sort.Strings(out.Warnings)
	sort.Slice(out.Skipped, func(i, j int) bool { return out.Skipped[i].File < out.Skipped[j].File })
	return out
}
