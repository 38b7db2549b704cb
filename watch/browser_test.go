package watch

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/stump-dev/stump/internal/testenv"
)

// browser starts a headless Chromium (Debian's, found by testenv) with a fresh profile
// and returns a chromedp context for one tab.
func browser(t *testing.T) context.Context {
	t.Helper()
	bin := testenv.Chromium(t)
	out := &syncBuffer{}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(bin),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.CombinedOutput(out),
	}
	for _, f := range testenv.ChromiumFlags {
		opts = append(opts, chromedp.Flag(f, true))
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
		if t.Failed() {
			t.Logf("chromium output:\n%s", out.String())
		}
	})
	// The first Run starts the browser; it must not have a timeout of its own.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	return ctx
}

// eval evaluates a JavaScript expression in the page (a bounded wait).
func eval[T any](ctx context.Context, expr string) (T, error) {
	c, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	return chromedp.Run(c, chromedp.Evaluate[T](expr))
}

// waitFor polls the page until expr is true. Errors while the page reloads are retried.
func waitFor(t *testing.T, ctx context.Context, what, expr string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		ok, err := eval[bool](ctx, expr)
		if err == nil && ok {
			return
		}
		last = err
		time.Sleep(50 * time.Millisecond)
	}
	html, _ := eval[string](ctx, "document.documentElement.outerHTML")
	t.Fatalf("%s: %s not true within 20s (last error: %v); the page:\n%.3000s", what, expr, last, html)
}

func mustEval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := eval[T](ctx, expr)
	if err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	return v
}

func navigate(t *testing.T, ctx context.Context, url string) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(c, chromedp.Navigate(url)); err != nil {
		t.Fatalf("navigate %s: %v", url, err)
	}
}

// TestBrowserLiveReload drives a real headless Chromium: a page open in the browser
// follows edits without anyone reloading it; a broken template shows the error over the
// page, a fix brings the page back; a stylesheet edit swaps the stylesheet in place.
func TestBrowserLiveReload(t *testing.T) {
	ctx := browser(t)
	h := startWatch(t, withFiles(smallSite, map[string]string{"sites/x/static/css/site.css": siteCSS}), nil)

	navigate(t, ctx, h.url+"news/a/")
	waitFor(t, ctx, "the page", `document.querySelector(".prose").innerText.includes("Body of A.")`)
	waitFor(t, ctx, "the live-reload script", `window.__stumpLive === true`)

	// 1. Edit the Markdown: the new text shows, and the page was reloaded by the script
	// (a variable set on the window before the edit is gone).
	mustEval[any](t, ctx, `window.__mark = "before edit"`)
	h.edit("sites/x/content/news/a.md", "Body of A.", "Body of A, edited live.")
	waitFor(t, ctx, "the edited text", `document.querySelector(".prose").innerText.includes("Body of A, edited live.")`)
	if m := mustEval[string](t, ctx, `String(window.__mark)`); m != "undefined" {
		t.Errorf("window.__mark = %q: the page was not reloaded", m)
	}
	if r := h.rebuilt(); r.Event != "reload" {
		t.Errorf("rebuild event %q", r.Event)
	}

	// 2. Break a template (a layout override of the site): the overlay shows the file and
	// line over the page, without a reload.
	waitFor(t, ctx, "the live-reload script", `window.__stumpLive === true`)
	mustEval[any](t, ctx, `window.__mark = "before error"`)
	h.write("sites/x/layouts/_default/single.html", "{{ define \"main\" }}\n<article>\n<p>{{ .Nope }}</p>\n</article>\n{{ end }}\n")
	waitFor(t, ctx, "the error overlay", `(function () {
		var e = document.getElementById("stump-error");
		return !!e && e.innerText.includes("sites/x/layouts/_default/single.html:3:") && e.innerText.includes("Nope");
	})()`)
	if m := mustEval[string](t, ctx, `String(window.__mark)`); m != "before error" {
		t.Errorf("window.__mark = %q: the overlay came with a reload", m)
	}
	if pos := mustEval[string](t, ctx, `getComputedStyle(document.getElementById("stump-error")).position`); pos != "fixed" {
		t.Errorf("overlay position %q", pos)
	}
	// A page opened while the error stands shows it too, over the last good page.
	navigate(t, ctx, h.url+"about/")
	waitFor(t, ctx, "the overlay on a fresh page", `!!document.getElementById("stump-error") && document.body.innerText.includes("About us.")`)
	navigate(t, ctx, h.url+"news/a/")
	waitFor(t, ctx, "the overlay", `!!document.getElementById("stump-error")`)

	// 3. Fix it: the page comes back, with the fixed template.
	h.write("sites/x/layouts/_default/single.html", "{{ define \"main\" }}\n<article class=\"fixed\">\n<h1>{{ .Title }}</h1>{{ .Content }}\n</article>\n{{ end }}\n")
	waitFor(t, ctx, "the fixed page", `!document.getElementById("stump-error") && !!document.querySelector("article.fixed") &&
		document.querySelector("article.fixed").innerText.includes("Body of A, edited live.")`)

	// 4. Edit the stylesheet: it is swapped without a reload.
	waitFor(t, ctx, "the live-reload script", `window.__stumpLive === true`)
	if c := mustEval[string](t, ctx, `getComputedStyle(document.body).color`); c != "rgb(17, 17, 17)" {
		t.Fatalf("body color before the edit: %s", c)
	}
	oldHref := mustEval[string](t, ctx, `document.querySelector('link[rel="stylesheet"]').getAttribute("href")`)
	mustEval[any](t, ctx, `window.__mark = "before css"`)
	h.write("sites/x/static/css/site.css", strings.Replace(siteCSS, "#111", "#c00", 1))
	waitFor(t, ctx, "the new stylesheet", `getComputedStyle(document.body).color === "rgb(204, 0, 0)"`)
	if m := mustEval[string](t, ctx, `String(window.__mark)`); m != "before css" {
		t.Errorf("window.__mark = %q: the stylesheet change reloaded the page", m)
	}
	waitFor(t, ctx, "one stylesheet link", `document.querySelectorAll('link[rel="stylesheet"]').length === 1`)
	newHref := mustEval[string](t, ctx, `document.querySelector('link[rel="stylesheet"]').getAttribute("href")`)
	if newHref == oldHref || !strings.HasPrefix(newHref, "/css/site.") {
		t.Errorf("stylesheet href %q → %q", oldHref, newHref)
	}
}
