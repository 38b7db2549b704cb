package watch

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stump-dev/stump/build"
)

func TestRunContentEdit(t *testing.T) {
	h := startWatch(t, smallSite, nil)
	s := openStream(t, h.url+strings.TrimPrefix(EventsPath, "/"))
	if ev, _ := s.next(5 * time.Second); ev.name != "hello" {
		t.Fatalf("first event %+v", ev)
	}
	h.edit("sites/x/content/news/a.md", "Body of A.", "Body of A, edited.")
	r := h.rebuilt()
	if r.Err != nil || r.Event != "reload" {
		t.Fatalf("rebuild: event %q, err %v", r.Event, r.Err)
	}
	if r.Update.Full {
		t.Error("a body edit rebuilt the whole site")
	}
	if ev, _ := s.next(5 * time.Second); ev.name != "reload" {
		t.Fatalf("event %+v, want reload", ev)
	}
	if _, page := get(t, h.url+"news/a/"); !strings.Contains(page, "Body of A, edited.") {
		t.Errorf("page not updated:\n%s", page)
	}
	if !regexp.MustCompile(`(?m)^rebuilt \d+ pages in \S+ \(news/a\.md\)$`).MatchString(h.out.String()) {
		t.Errorf("terminal:\n%s", h.out.String())
	}

	// A new page, then its removal.
	h.write("sites/x/content/news/c.md", "---\ntitle: C\ndate: 2024-01-04\n---\nBody of C.\n")
	if r := h.rebuilt(); r.Err != nil || r.Event != "reload" {
		t.Fatalf("new page: %+v", r)
	}
	if resp, _ := get(t, h.url+"news/c/"); resp.StatusCode != 200 {
		t.Errorf("new page: %d", resp.StatusCode)
	}
	h.remove("sites/x/content/news/c.md")
	if r := h.rebuilt(); r.Err != nil || r.Event != "reload" {
		t.Fatalf("removed page: %+v", r)
	}
	if resp, _ := get(t, h.url+"news/c/"); resp.StatusCode != 404 {
		t.Errorf("removed page: %d", resp.StatusCode)
	}
	// A save that changes nothing the site shows sends nothing.
	h.edit("sites/x/content/news/a.md", "Body of A, edited.", "Body of A, edited.")
	if r := h.rebuilt(); r.Err != nil || r.Event != "" {
		t.Fatalf("no-op save: event %q, err %v", r.Event, r.Err)
	}
	if !strings.Contains(h.out.String(), "nothing changed (news/a.md)") {
		t.Errorf("terminal:\n%s", h.out.String())
	}
}

func (h *harness) remove(rel string) {
	h.t.Helper()
	if err := osRemove(h.path(rel)); err != nil {
		h.t.Fatal(err)
	}
}

func TestRunTemplateErrorAndFix(t *testing.T) {
	h := startWatch(t, smallSite, nil)
	s := openStream(t, h.url+"_stump/events")
	s.next(5 * time.Second) // hello
	h.write("sites/x/layouts/_default/single.html", "{{ define \"main\" }}\n<p>{{ .Nope }}</p>\n{{ end }}\n")
	r := h.rebuilt()
	if r.Err == nil || r.Event != "error" {
		t.Fatalf("broken template: event %q, err %v", r.Event, r.Err)
	}
	ev, _ := s.next(5 * time.Second)
	if ev.name != "error" {
		t.Fatalf("event %+v, want error", ev)
	}
	var d struct {
		Errors []ErrorItem
		HTML   string
	}
	json.Unmarshal([]byte(ev.data), &d)
	where := "sites/x/layouts/_default/single.html:2:"
	if len(d.Errors) == 0 || !strings.HasPrefix(d.Errors[0].Where(), where) || !strings.Contains(d.HTML, where) {
		t.Fatalf("error event: %s", ev.data)
	}
	resp, page := get(t, h.url+"news/a/")
	if resp.StatusCode != 200 || !strings.Contains(page, `id="stump-error"`) || !strings.Contains(page, where) || !strings.Contains(page, "Body of A.") {
		t.Fatalf("page during the error: %d\n%s", resp.StatusCode, page)
	}
	// The same error after another save is not printed again; a content edit does not
	// hide the broken template (the failed change is retried with every save).
	h.edit("sites/x/content/news/a.md", "Body of A.", "Body of A, edited.")
	if r := h.rebuilt(); r.Err == nil {
		t.Fatal("a content edit hid the broken template")
	}
	if n := strings.Count(h.out.String(), "build failed"); n != 1 {
		t.Errorf("the error was printed %d times:\n%s", n, h.out.String())
	}
	if !strings.Contains(h.out.String(), "  "+where) {
		t.Errorf("terminal does not show the position:\n%s", h.out.String())
	}
	// Fixed: reload, no overlay, the edit is there.
	h.write("sites/x/layouts/_default/single.html", "{{ define \"main\" }}\n<p class=\"fixed\">{{ .Title }}</p>{{ .Content }}\n{{ end }}\n")
	r = h.rebuilt()
	if r.Err != nil || r.Event != "reload" {
		t.Fatalf("fixed: event %q, err %v", r.Event, r.Err)
	}
	for {
		ev, ok := s.next(5 * time.Second)
		if !ok {
			t.Fatal("no reload after the fix")
		}
		if ev.name == "reload" {
			break
		}
	}
	_, page = get(t, h.url+"news/a/")
	if strings.Contains(page, `id="stump-error"`) || !strings.Contains(page, `<p class="fixed">A</p>`) || !strings.Contains(page, "Body of A, edited.") {
		t.Errorf("page after the fix:\n%s", page)
	}
	if !regexp.MustCompile(`(?m)^fixed: rebuilt the whole site`).MatchString(h.out.String()) {
		t.Errorf("terminal:\n%s", h.out.String())
	}
	// The same error again, after a good build, is printed again.
	h.write("sites/x/layouts/_default/single.html", "{{ define \"main\" }}\n<p>{{ .Nope }}</p>\n{{ end }}\n")
	h.rebuilt()
	if n := strings.Count(h.out.String(), "build failed"); n != 2 {
		t.Errorf("the error was printed %d times in all:\n%s", n, h.out.String())
	}
}

const siteCSS = "body { color: #111; }\n.prose { max-width: 40em; }\n"

func TestRunCSSSwap(t *testing.T) {
	h := startWatch(t, withFiles(smallSite, map[string]string{"sites/x/static/css/site.css": siteCSS}), nil)
	_, page := get(t, h.url+"news/a/")
	old := regexp.MustCompile(`href="/(css/site\.[0-9a-f]{64}\.css)"`).FindStringSubmatch(page)
	if old == nil {
		t.Fatalf("no stylesheet:\n%s", page)
	}
	s := openStream(t, h.url+"_stump/events")
	s.next(5 * time.Second)
	h.write("sites/x/static/css/site.css", strings.Replace(siteCSS, "#111", "#c00", 1))
	r := h.rebuilt()
	if r.Err != nil || r.Event != "css" {
		t.Fatalf("css edit: event %q, err %v (changed %v)", r.Event, r.Err, r.Update.Changed)
	}
	ev, _ := s.next(5 * time.Second)
	if ev.name != "css" {
		t.Fatalf("event %+v, want css", ev)
	}
	var d struct {
		Swap    []CSSSwap
		Refetch []string
	}
	json.Unmarshal([]byte(ev.data), &d)
	if len(d.Swap) != 1 || d.Swap[0].From != "/"+old[1] || !regexp.MustCompile(`^/css/site\.[0-9a-f]{64}\.css$`).MatchString(d.Swap[0].To) || d.Swap[0].To == d.Swap[0].From {
		t.Fatalf("css event: %s", ev.data)
	}
	resp, body := get(t, h.url+strings.TrimPrefix(d.Swap[0].To, "/"))
	if resp.StatusCode != 200 || !strings.Contains(body, "#c00") || d.Swap[0].Integrity != Integrity([]byte(body)) {
		t.Errorf("new stylesheet: %d %q (integrity %s)", resp.StatusCode, body, d.Swap[0].Integrity)
	}
	if len(d.Refetch) != 1 || d.Refetch[0] != "/css/site.css" {
		t.Errorf("refetch %v", d.Refetch)
	}
	if !strings.Contains(h.out.String(), "stylesheets swapped (static/css/site.css)") {
		t.Errorf("terminal:\n%s", h.out.String())
	}

	// A stylesheet and a template in one batch: a reload (Update.OnlyCSS alone would
	// say "css": the pages' other changes would not show).
	h.write("sites/x/static/css/site.css", siteCSS)
	h.write("sites/x/layouts/_default/single.html", "{{ define \"main\" }}<p class=\"new\">{{ .Title }}</p>{{ end }}\n")
	// The two saves may come as two batches (a save starts a rebuild at once), and the
	// rebuild of the first may already read the new template (then the batch naming
	// it changes nothing): the rebuild that brings the template's output must reload.
	var events []string
	for {
		r = h.rebuilt()
		if r.Err != nil {
			t.Fatalf("css and template: %v", r.Err)
		}
		events = append(events, r.Event)
		if slices.ContainsFunc(r.Paths, func(p string) bool { return strings.HasSuffix(p, "single.html") }) {
			break
		}
	}
	if events[len(events)-1] != "reload" {
		t.Fatalf("css and template: events %q: the batch naming the template must reload", events)
	}
}

func TestRunConfigEdits(t *testing.T) {
	h := startWatch(t, smallSite, nil)
	// site.yaml: the whole site, with the new title.
	h.edit("sites/x/site.yaml", "title: X Site", "title: Renamed Site")
	if r := h.rebuilt(); r.Err != nil || r.Event != "reload" || !r.Update.Full {
		t.Fatalf("site.yaml: %+v", r)
	}
	if _, page := get(t, h.url+"about/"); !strings.Contains(page, "About · Renamed Site") {
		t.Error("title not updated")
	}
	// stump.yaml is read when the workspace opens: it is opened again. A broken one
	// shows the error and keeps serving.
	h.write("stump.yaml", "output: public\nbogus: 1\n")
	if r := h.rebuilt(); r.Err == nil || r.Event != "error" {
		t.Fatalf("broken stump.yaml: %+v", r)
	}
	if !strings.Contains(h.out.String(), "stump.yaml:2:") {
		t.Errorf("terminal:\n%s", h.out.String())
	}
	if resp, page := get(t, h.url+"about/"); resp.StatusCode != 200 || !strings.Contains(page, `id="stump-error"`) {
		t.Errorf("during the error: %d", resp.StatusCode)
	}
	h.write("stump.yaml", "output: public\n")
	if r := h.rebuilt(); r.Err != nil || r.Event != "reload" {
		t.Fatalf("fixed stump.yaml: %+v", r)
	}
	// The new session is watched and served like the first.
	h.edit("sites/x/content/about.md", "About us.", "About them.")
	if r := h.rebuilt(); r.Err != nil || r.Update.Full {
		t.Fatalf("after reopening: %+v", r)
	}
	if _, page := get(t, h.url+"about/"); !strings.Contains(page, "About them.") || strings.Contains(page, `id="stump-error"`) {
		t.Error("edit after reopening not served")
	}
}

func TestRunWorkspaceTheme(t *testing.T) {
	files := withFiles(smallSite, map[string]string{
		"sites/x/site.yaml":                        "title: X Site\ntheme: mine\n",
		"themes/mine/layouts/_default/baseof.html": "<!doctype html><html><head><title>{{ .Title }}</title></head><body>{{ block \"main\" . }}{{ end }}</body></html>\n",
		"themes/mine/layouts/_default/single.html": "{{ define \"main\" }}<h1>{{ .Title }}</h1>{{ .Content }}{{ end }}\n",
		"themes/mine/layouts/_default/list.html":   "{{ define \"main\" }}<h1>{{ .Title }}</h1>{{ range .Pages }}<a href=\"{{ .RelPermalink }}\">{{ .Title }}</a>{{ end }}{{ end }}\n",
		"themes/mine/layouts/index.html":           "{{ define \"main\" }}<h1>Home</h1>{{ end }}\n",
	})
	h := startWatch(t, files, nil)
	if !strings.Contains(h.out.String(), "watching sites/x, themes/mine and stump.yaml") {
		t.Errorf("terminal:\n%s", h.out.String())
	}
	h.edit("themes/mine/layouts/_default/single.html", "<h1>", "<h1 class=\"t\">")
	if r := h.rebuilt(); r.Err != nil || r.Event != "reload" || !r.Update.Full {
		t.Fatalf("theme edit: %+v", r)
	}
	if _, page := get(t, h.url+"news/a/"); !strings.Contains(page, `<h1 class="t">A</h1>`) {
		t.Errorf("theme edit not served:\n%s", page)
	}
}

func TestRunFirstBuildFails(t *testing.T) {
	files := withFiles(smallSite, map[string]string{"sites/x/content/news/a.md": "---\ntitle: [A\n---\nBody of A.\n"})
	h := startWatch(t, files, nil)
	if !strings.Contains(h.out.String(), "build failed:\n  sites/x/content/news/a.md:2:") {
		t.Errorf("terminal:\n%s", h.out.String())
	}
	resp, page := get(t, h.url+"news/a/")
	if resp.StatusCode != 500 || !strings.Contains(page, "sites/x/content/news/a.md:2:") || !strings.Contains(page, "stump-live") {
		t.Fatalf("first build failed: %d\n%s", resp.StatusCode, page)
	}
	h.write("sites/x/content/news/a.md", "---\ntitle: A\n---\nBody of A.\n")
	if r := h.rebuilt(); r.Err != nil || r.Event != "reload" {
		t.Fatalf("fixed: %+v", r)
	}
	if resp, _ := get(t, h.url+"news/a/"); resp.StatusCode != 200 {
		t.Errorf("after the fix: %d", resp.StatusCode)
	}
}

func TestRunShutdown(t *testing.T) {
	h := startWatch(t, smallSite, nil)
	s := openStream(t, h.url+"_stump/events")
	s.next(5 * time.Second)
	start := time.Now()
	h.cancel()
	select {
	case err := <-h.done:
		if err != nil {
			t.Fatal(err)
		}
		h.done <- nil
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not stop with a live-reload stream open")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("shutdown took %s", d)
	}
	if _, ok := s.next(2 * time.Second); ok {
		t.Error("stream still open")
	}
	if _, err := http.Get(h.url); err == nil {
		t.Error("still serving after shutdown")
	}
	if !strings.HasSuffix(h.out.String(), "x: stopped\n") {
		t.Errorf("terminal:\n%s", h.out.String())
	}
}

func TestListenPortTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	_, err = Listen("127.0.0.1", port)
	var pt *PortTakenError
	if !errors.As(err, &pt) {
		t.Fatalf("Listen on a taken port: %v", err)
	}
	want := fmt.Sprintf("stump watch: port %d on 127.0.0.1 is taken (another stump watch?); use --port N", port)
	if err.Error() != want {
		t.Errorf("message %q, want %q", err.Error(), want)
	}
	ln2, err := Listen("127.0.0.1", -1)
	if err != nil {
		t.Fatal(err)
	}
	if p := ln2.Addr().(*net.TCPAddr).Port; p == 0 || strconv.Itoa(p) == "" {
		t.Error("no port")
	}
	ln2.Close()
}

// TestRunBrokenThemeAtStart: the first build fails in a theme of the workspace; the
// theme is watched all the same, and fixing it there serves the site.
func TestRunBrokenThemeAtStart(t *testing.T) {
	files := withFiles(smallSite, map[string]string{
		"sites/x/site.yaml":                        "title: X Site\ntheme: mine\n",
		"themes/mine/layouts/_default/baseof.html": "<!doctype html><html><head><title>{{ .Title }}</title></head><body>{{ block \"main\" . }}{{ end }}</body></html>\n",
		"themes/mine/layouts/_default/single.html": "{{ define \"main\" }}<h1>{{ .Nope }}</h1>{{ end }}\n",
		"themes/mine/layouts/_default/list.html":   "{{ define \"main\" }}<h1>{{ .Title }}</h1>{{ end }}\n",
	})
	h := startWatch(t, files, nil)
	if !strings.Contains(h.out.String(), "themes/mine/layouts/_default/single.html:1:") ||
		!strings.Contains(h.out.String(), "watching sites/x, themes/mine and stump.yaml") {
		t.Fatalf("terminal:\n%s", h.out.String())
	}
	h.edit("themes/mine/layouts/_default/single.html", ".Nope", ".Title")
	if r := h.rebuilt(); r.Err != nil || r.Event != "reload" {
		t.Fatalf("fixed theme: %+v", r)
	}
	if resp, page := get(t, h.url+"news/a/"); resp.StatusCode != 200 || !strings.Contains(page, "<h1>A</h1>") {
		t.Errorf("after the fix: %d\n%s", resp.StatusCode, page)
	}
}

// TestTemplateSavedDuringACSSRebuildReloads: a stylesheet batch whose rebuild already
// read a template saved meanwhile goes out as a stylesheet swap; the template's own
// batch then changes nothing, and must reload (found under load by TestRunCSSSwap).
func TestTemplateSavedDuringACSSRebuildReloads(t *testing.T) {
	r := &runner{srv: NewServer()}
	css := &build.Update{Changed: []string{"css/site.new.css", "news/a/index.html"}, Removed: []string{"css/site.old.css"}}
	if ev := r.notify(css, []string{"/ws/sites/x/static/css/site.css"}, false); ev != "css" {
		t.Fatalf("stylesheet batch: %q", ev)
	}
	if ev := r.notify(&build.Update{}, []string{"/ws/sites/x/layouts/_default/single.html"}, false); ev != "reload" {
		t.Fatalf("template batch after a swap, no change: %q, want reload", ev)
	}
	if ev := r.notify(&build.Update{}, []string{"/ws/sites/x/layouts/_default/single.html"}, false); ev != "" {
		t.Fatalf("template batch after a reload, no change: %q, want nothing", ev)
	}
	if ev := r.notify(css, []string{"/ws/sites/x/static/css/site.css"}, false); ev != "css" {
		t.Fatalf("stylesheet batch: %q", ev)
	}
	if ev := r.notify(&build.Update{}, []string{"/ws/sites/x/static/css/site.css"}, false); ev != "" {
		t.Fatalf("stylesheet batch after a swap, no change: %q, want nothing", ev)
	}
}
