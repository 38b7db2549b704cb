// Package importer turns a Hugo, Jekyll or Eleventy site into a stump site
// (`stump import hugo|jekyll|eleventy DIR --site NAME`).
//
// It reads the source folder and never writes to it. It translates the config
// (baseURL, title, menus, taxonomies, permalinks, params, pagination), copies the content
// with its conventions kept so that every old URL still answers (the same URL, or an
// alias or redirect to the new one), rewrites the Liquid and Nunjucks expressions that
// have a clear stump equivalent, and reports everything it could not carry over by file
// and line. The build never learns about Jekyll: what the build cannot read is
// translated here.
//
// Import is idempotent: importing the same source again gives the same site, byte for
// byte. It refuses to write over a site folder it did not make.
package importer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/goccy/go-yaml"
)

// Kinds of source sites.
const (
	Hugo     = "hugo"
	Jekyll   = "jekyll"
	Eleventy = "eleventy"
)

// ReportFile is the report written into the imported site; its presence marks a site
// folder that import may replace.
const ReportFile = "IMPORT-REPORT.txt"

// Note is one thing the import could not carry over, or changed, at a place in the
// source (Line 0: the whole file).
type Note struct {
	File string
	Line int
	Msg  string
}

func (n Note) String() string {
	if n.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", n.File, n.Line, n.Msg)
	}
	return fmt.Sprintf("%s: %s", n.File, n.Msg)
}

// Result is what an import wrote and what it could not carry over.
type Result struct {
	// Files counts the files written into the site folder.
	Files int
	// Pages counts content pages.
	Pages int
	Notes []Note
}

// site is the stump site being made, in memory.
type site struct {
	files map[string][]byte // path in the site folder → bytes
	notes []Note
	pages int
}

func newSite() *site { return &site{files: map[string][]byte{}} }

func (s *site) note(file string, line int, format string, args ...any) {
	s.notes = append(s.notes, Note{File: file, Line: line, Msg: fmt.Sprintf(format, args...)})
}

func (s *site) put(p string, b []byte) { s.files[path.Clean(p)] = b }

// Import reads the site of kind in src and writes the stump site into dst (the site
// folder, sites/NAME). dst must not exist, or hold an earlier import (its ReportFile).
func Import(ctx context.Context, kind, src, dst string) (*Result, error) {
	fi, err := os.Stat(src)
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("import: %s is not a folder", src)
	}
	if err := checkDst(src, dst); err != nil {
		return nil, err
	}
	fsys := os.DirFS(src)
	s := newSite()
	switch kind {
	case Hugo:
		err = importHugo(ctx, fsys, s)
	case Jekyll:
		err = importJekyll(ctx, fsys, s, false)
	case Eleventy:
		err = importJekyll(ctx, fsys, s, true)
	default:
		return nil, fmt.Errorf("import: unknown kind %q (hugo, jekyll or eleventy)", kind)
	}
	if err != nil {
		return nil, err
	}
	sort.SliceStable(s.notes, func(i, j int) bool {
		a, b := s.notes[i], s.notes[j]
		if a.File != b.File {
			return a.File < b.File
		}
		return a.Line < b.Line
	})
	var rep bytes.Buffer
	fmt.Fprintf(&rep, "stump import %s: %d pages, %d notes.\n", kind, s.pages, len(s.notes))
	fmt.Fprintf(&rep, "Each note names the source file and line of something not carried over as it was.\n\n")
	for _, n := range s.notes {
		rep.WriteString(n.String() + "\n")
	}
	s.put(ReportFile, rep.Bytes())
	if err := write(ctx, dst, s.files); err != nil {
		return nil, err
	}
	return &Result{Files: len(s.files), Pages: s.pages, Notes: s.notes}, nil
}

// checkDst refuses a destination inside the source, or a folder that import did not make.
func checkDst(src, dst string) error {
	as, err1 := filepath.Abs(src)
	ad, err2 := filepath.Abs(dst)
	if err1 != nil || err2 != nil {
		return fmt.Errorf("import: %w", errors.Join(err1, err2))
	}
	if ad == as || strings.HasPrefix(ad, as+string(filepath.Separator)) {
		return fmt.Errorf("import: the stump site %s would be inside the source %s, which import never changes", dst, src)
	}
	ents, err := os.ReadDir(dst)
	if errors.Is(err, fs.ErrNotExist) || err == nil && len(ents) == 0 {
		return nil
	}
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	if _, err := os.Stat(filepath.Join(dst, ReportFile)); err != nil {
		return fmt.Errorf("import: %s already exists and was not made by stump import; pick another --site name or remove it", dst)
	}
	return nil
}

// write replaces dst with files: an earlier import's files are removed first, so the
// result depends only on the source.
func write(ctx context.Context, dst string, files map[string][]byte) error {
	tmp := dst + ".import-tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("import: %w", err)
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := ctx.Err(); err != nil {
			return err
		}
		p := filepath.Join(tmp, filepath.FromSlash(n))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return fmt.Errorf("import: %w", err)
		}
		if err := os.WriteFile(p, files[n], 0o644); err != nil {
			return fmt.Errorf("import: %w", err)
		}
	}
	if err := os.RemoveAll(dst); err != nil {
		return fmt.Errorf("import: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("import: %w", err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		return fmt.Errorf("import: %w", err)
	}
	return nil
}

// walk lists the regular files under dir of fsys (slash paths, sorted), skipping
// symlinks and names starting with "." .
func walk(fsys fs.FS, dir string) ([]string, error) {
	var out []string
	err := fs.WalkDir(fsys, dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && p == dir {
				return fs.SkipDir
			}
			return err
		}
		if p != dir && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.Type().IsRegular() {
			out = append(out, p)
		}
		return nil
	})
	sort.Strings(out)
	return out, err
}

// splitFrontMatter returns a file's front matter block (without delimiters), its
// delimiter ("---", "+++" or ""), the body, and the line the body starts on.
func splitFrontMatter(b []byte) (fm []byte, delim string, body []byte, bodyLine int) {
	b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
	for _, d := range []string{"---", "+++"} {
		first, rest, ok := bytes.Cut(b, []byte("\n"))
		if !ok || strings.TrimRight(string(first), " \r") != d {
			continue
		}
		off := 0
		for off <= len(rest) {
			line, _, _ := bytes.Cut(rest[off:], []byte("\n"))
			t := strings.TrimRight(string(line), " \r")
			if t == d || d == "---" && t == "..." {
				body := rest[min(len(rest), off+len(line)+1):]
				return rest[:off], d, body, 2 + bytes.Count(rest[:off], []byte("\n")) + 1
			}
			if off+len(line) >= len(rest) {
				break
			}
			off += len(line) + 1
		}
	}
	return nil, "", b, 1
}

// yamlFields decodes a YAML front matter block into a map ("" on error).
func yamlFields(fm []byte) map[string]any {
	m := map[string]any{}
	if err := yaml.Unmarshal(fm, &m); err != nil {
		return map[string]any{}
	}
	return m
}

// fmLines edits YAML front matter by top-level key, keeping every other line as written.
type fmLines struct{ lines []string }

func newFM(fm []byte) *fmLines {
	s := strings.TrimRight(string(fm), "\n")
	if s == "" {
		return &fmLines{}
	}
	return &fmLines{lines: strings.Split(s, "\n")}
}

// find returns the line range [i, j) of top-level key k (its value lines included).
func (f *fmLines) find(k string) (int, int) {
	for i, l := range f.lines {
		if strings.HasPrefix(l, k+":") {
			j := i + 1
			for j < len(f.lines) && (strings.HasPrefix(f.lines[j], " ") || strings.HasPrefix(f.lines[j], "\t") || strings.HasPrefix(f.lines[j], "- ")) {
				j++
			}
			return i, j
		}
	}
	return -1, -1
}

// set replaces key k's value (or appends it) with the YAML of v.
func (f *fmLines) set(k string, v any) {
	b, err := yaml.MarshalWithOptions(map[string]any{k: v}, yaml.Flow(true))
	if err != nil {
		return
	}
	line := strings.TrimSpace(string(b))
	line = strings.TrimSuffix(strings.TrimPrefix(line, "{"), "}")
	if i, j := f.find(k); i >= 0 {
		f.lines = append(f.lines[:i], append([]string{line}, f.lines[j:]...)...)
		return
	}
	f.lines = append(f.lines, line)
}

func (f *fmLines) del(k string) {
	if i, j := f.find(k); i >= 0 {
		f.lines = append(f.lines[:i], f.lines[j:]...)
	}
}

func (f *fmLines) bytes() []byte {
	return []byte("---\n" + strings.Join(f.lines, "\n") + "\n---\n")
}

// str returns a front matter value as text.
func str(v any) string {
	switch t := v.(type) {
	case nil:
		return ""
	case string:
		return t
	}
	return fmt.Sprint(v)
}

// strList returns a list value, or a Jekyll space-separated string, as a list.
func strList(v any) []string {
	switch t := v.(type) {
	case string:
		return strings.Fields(t)
	case []any:
		var out []string
		for _, x := range t {
			if s := str(x); s != "" {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// isResource reports a file type copied as it is (media, documents, web files).
func isResource(p string) bool {
	switch strings.ToLower(path.Ext(p)) {
	case ".png", ".jpg", ".jpeg", ".gif", ".webp", ".avif", ".svg", ".ico", ".bmp", ".pdf", ".txt", ".csv",
		".mp3", ".mp4", ".webm", ".ogg", ".wav", ".mov", ".vtt", ".zip", ".json", ".xml", ".woff", ".woff2",
		".ttf", ".otf", ".css", ".js", ".map", ".doc", ".docx", ".xls", ".xlsx", ".ppt", ".pptx", ".ics", ".webmanifest":
		return true
	}
	return false
}

// marshalConfig writes site.yaml from ordered keys.
func marshalConfig(ms yaml.MapSlice) []byte {
	b, err := yaml.Marshal(ms)
	if err != nil {
		return nil
	}
	return append([]byte("# Written by stump import; see IMPORT-REPORT.txt for what was not carried over.\n"), b...)
}
