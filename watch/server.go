package watch

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"net/http"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/stump-dev/stump/build/diag"
	"github.com/stump-dev/stump/build/manifest"
	"github.com/stump-dev/stump/publish"
)

// EventsPath is the Server-Sent Events stream of live reload. The _stump/ folder is
// reserved: a site's own files there are never served (as in `stump serve`).
const EventsPath = "/_stump/events"

// Source is what a Server serves from: a build.Session.
type Source interface {
	File(p string) ([]byte, string, bool)
	Entry(p string) (manifest.Entry, bool)
}

// Server serves a site from memory the way S3 website hosting serves the published site
// (index documents, "dir" → "dir/", the 404 page, aliases as 301 redirects, headers of
// the site's rules) with watch-mode changes: pages and static files are sent with
// Cache-Control: no-cache (fingerprinted assets keep their immutable caching), HTML
// pages get a small live-reload script, and while the last rebuild failed, HTML pages
// show the error over the last good page.
type Server struct {
	nonce string

	mu      sync.Mutex
	src     Source
	base    string // the baseURL's path: "/" or "/docs/"
	rules   []publish.HeaderRule
	query   func(urlPath, rawQuery string) string
	built   bool   // a good build exists
	seq     uint64 // bumped on every state change the browser should follow
	errs    []ErrorItem
	clients map[*client]struct{}
	closed  bool
}

// ErrorItem is one error of a failed build, as the overlay shows it.
type ErrorItem struct {
	File string `json:"file,omitempty"`
	Line int    `json:"line,omitempty"`
	Col  int    `json:"col,omitempty"`
	Msg  string `json:"msg"`
}

// Where formats file:line:col ("" when the error names no file).
func (e ErrorItem) Where() string {
	if e.File == "" {
		return ""
	}
	s := e.File
	if e.Line > 0 {
		s += ":" + strconv.Itoa(e.Line)
		if e.Col > 0 {
			s += ":" + strconv.Itoa(e.Col)
		}
	}
	return s
}

// ErrorItems flattens a build error (possibly errors.Join'ed) into its positioned parts.
func ErrorItems(err error) []ErrorItem {
	var out []ErrorItem
	var walk func(error)
	walk = func(e error) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				walk(x)
			}
			return
		}
		var d *diag.Error
		if errors.As(e, &d) {
			out = append(out, ErrorItem{File: d.File, Line: d.Line, Col: d.Col, Msg: d.Msg})
			return
		}
		out = append(out, ErrorItem{Msg: e.Error()})
	}
	if err != nil {
		walk(err)
	}
	return out
}

// NewServer returns a server with nothing to serve yet (it answers with a "building"
// page until SetSource and Built or Failed).
func NewServer() *Server {
	var b [4]byte
	now := time.Now().UnixNano()
	for i := range b {
		b[i] = byte(now >> (8 * i))
	}
	return &Server{nonce: hex.EncodeToString(b[:]), base: "/", clients: map[*client]struct{}{}}
}

// SetSource sets what to serve: src, under the base URL's path basePath, with the site's
// header rules.
func (s *Server) SetSource(src Source, basePath string, rules []publish.HeaderRule) {
	if basePath == "" || !strings.HasPrefix(basePath, "/") {
		basePath = "/" + basePath
	}
	if !strings.HasSuffix(basePath, "/") {
		basePath += "/"
	}
	s.mu.Lock()
	s.src, s.base, s.rules = src, basePath, rules
	s.mu.Unlock()
}

// SetQuery sets what the server keeps of a query string, as the edge does (package
// edge, QueryRules.Keep): keep returns the kept query for a path. Until it is set, or
// with nil, no query is kept, as the edge keeps none by default.
func (s *Server) SetQuery(keep func(urlPath, rawQuery string) string) {
	s.mu.Lock()
	s.query = keep
	s.mu.Unlock()
}

// Version is the state the browser is at: it changes on each Reload, SwapCSS and Failed.
func (s *Server) Version() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.versionLocked()
}

func (s *Server) versionLocked() string { return s.nonce + "-" + strconv.FormatUint(s.seq, 10) }

// Reload records a good build and tells open pages to reload.
func (s *Server) Reload() {
	s.mu.Lock()
	s.built, s.errs = true, nil
	s.seq++
	ev := event{name: "reload", data: mustJSON(map[string]any{"v": s.versionLocked()})}
	s.broadcastLocked(ev)
	s.mu.Unlock()
}

// Quiet records a good build that changed nothing a page shows (no event).
func (s *Server) Quiet() {
	s.mu.Lock()
	s.built = true
	s.mu.Unlock()
}

// CSSSwap is one stylesheet to replace in open pages: links to From (a URL path) move
// to To; Integrity is To's Subresource Integrity value.
type CSSSwap struct {
	From      string `json:"from"`
	To        string `json:"to"`
	Integrity string `json:"integrity,omitempty"`
}

// SwapCSS records a good build that changed only stylesheets: open pages replace the
// stylesheets named in swaps (fingerprinted ones) and re-fetch those in refetch (URL
// paths of stylesheets at stable URLs) without reloading.
func (s *Server) SwapCSS(swaps []CSSSwap, refetch []string) {
	s.mu.Lock()
	s.built, s.errs = true, nil
	s.seq++
	ev := event{name: "css", data: mustJSON(map[string]any{"v": s.versionLocked(), "swap": swaps, "refetch": refetch})}
	s.broadcastLocked(ev)
	s.mu.Unlock()
}

// Failed records a failed build: HTML pages show the error over the last good page, and
// open pages show it at once.
func (s *Server) Failed(err error) {
	items := ErrorItems(err)
	s.mu.Lock()
	s.errs = items
	s.seq++
	ev := event{name: "error", data: mustJSON(map[string]any{"v": s.versionLocked(), "errors": items, "html": overlayHTML(items)})}
	s.broadcastLocked(ev)
	s.mu.Unlock()
}

// CloseStreams ends every live-reload stream, and refuses new ones (for shutdown).
func (s *Server) CloseStreams() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for c := range s.clients {
		delete(s.clients, c)
		close(c.ch)
	}
}

// Clients counts the open live-reload streams.
func (s *Server) Clients() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.clients)
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// --- HTTP ---

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if r.URL.Path == EventsPath {
		s.serveEvents(w, r)
		return
	}
	s.mu.Lock()
	src, base, rules, built, errs, v := s.src, s.base, s.rules, s.built, s.errs, s.versionLocked()
	keep := s.query
	s.mu.Unlock()
	// Query strings as production treats them: ignored but for the parameters the
	// site's edge.query keeps (a redirect carries only those).
	if keep != nil {
		r.URL.RawQuery = keep(r.URL.Path, r.URL.RawQuery)
	} else {
		r.URL.RawQuery = ""
	}

	if src == nil || !built {
		// No good build yet: the error (or "building"), as a page that reloads when
		// there is something to show.
		status := http.StatusServiceUnavailable
		if len(errs) > 0 {
			status = http.StatusInternalServerError
		}
		s.writeHTML(w, r, status, standalonePage(errs), nil, v)
		return
	}

	p := r.URL.Path
	if !strings.HasPrefix(p, base) {
		if p+"/" == base {
			redirect(w, r, base, http.StatusFound)
			return
		}
		if p == "/" {
			redirect(w, r, base, http.StatusFound)
			return
		}
		s.notFound(w, r, src, errs, v)
		return
	}
	key := strings.TrimPrefix(p, base)
	if key == "" || strings.HasSuffix(key, "/") {
		key += "index.html"
	}
	if !validKey(key) {
		s.notFound(w, r, src, errs, v)
		return
	}
	e, ok := src.Entry(key)
	if !ok {
		// "/about" → "/about/" when about/index.html exists, as S3 websites do.
		if !strings.HasSuffix(p, "/") {
			if _, ok := src.Entry(key + "/index.html"); ok {
				redirect(w, r, p+"/", http.StatusFound)
				return
			}
		}
		s.notFound(w, r, src, errs, v)
		return
	}
	if e.Redirect != "" {
		redirect(w, r, e.Redirect, http.StatusMovedPermanently)
		return
	}
	data, ctype, ok := src.File(key)
	if !ok { // removed by a rebuild in between
		s.notFound(w, r, src, errs, v)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", ctype)
	if e.Class == manifest.Immutable {
		hd.Set("Cache-Control", publish.Immutable)
	} else {
		hd.Set("Cache-Control", "no-cache")
	}
	applyRules(hd, rules, key)
	if isHTML(hd.Get("Content-Type")) {
		s.writeHTML(w, r, http.StatusOK, data, errs, v)
		return
	}
	writeBody(w, r, http.StatusOK, data)
}

// validKey refuses paths that leave the tree or reach the reserved _stump/ folder.
func validKey(key string) bool {
	if key == "_stump" || strings.HasPrefix(key, "_stump/") || strings.Contains(key, "\\") {
		return false
	}
	for _, seg := range strings.Split(key, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
	}
	return true
}

func redirect(w http.ResponseWriter, r *http.Request, to string, code int) {
	if q := r.URL.RawQuery; q != "" && code == http.StatusFound {
		to += "?" + q
	}
	w.Header().Set("Cache-Control", "no-cache")
	http.Redirect(w, r, to, code)
}

// applyRules sets the headers of the site's rules that match key. Cache-Control stays
// the watch mode's; a Content-Security-Policy is left out (it would block the inline
// live-reload script).
func applyRules(hd http.Header, rules []publish.HeaderRule, key string) {
	for _, r := range rules {
		if !publish.Match(r.Path, key) {
			continue
		}
		for k, v := range r.Values {
			switch strings.ToLower(k) {
			case "cache-control", "content-security-policy", "content-length":
			default:
				hd.Set(k, v)
			}
		}
	}
}

func isHTML(ctype string) bool { return strings.HasPrefix(ctype, "text/html") }

// notFound answers 404 with the site's 404.html when there is one.
func (s *Server) notFound(w http.ResponseWriter, r *http.Request, src Source, errs []ErrorItem, v string) {
	w.Header().Set("Cache-Control", "no-cache")
	data, _, ok := src.File("404.html")
	if !ok {
		if len(errs) > 0 {
			s.writeHTML(w, r, http.StatusNotFound, standalonePage(errs), nil, v)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		writeBody(w, r, http.StatusNotFound, []byte("404 Not Found\n"))
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	s.writeHTML(w, r, http.StatusNotFound, data, errs, v)
}

// writeHTML sends a page with the live-reload script (and the error overlay while the
// last build failed) before its </body>.
func (s *Server) writeHTML(w http.ResponseWriter, r *http.Request, status int, page []byte, errs []ErrorItem, v string) {
	hd := w.Header()
	if hd.Get("Content-Type") == "" {
		hd.Set("Content-Type", "text/html; charset=utf-8")
	}
	if hd.Get("Cache-Control") == "" {
		hd.Set("Cache-Control", "no-cache")
	}
	var inject []byte
	if len(errs) > 0 {
		inject = append(inject, overlayHTML(errs)...)
	}
	inject = append(inject, liveScript(v)...)
	writeBody(w, r, status, Inject(page, inject))
}

// Inject inserts snippet before the last </body> of page (any case), or at the end
// when there is none.
func Inject(page, snippet []byte) []byte {
	i := lastIndexFold(page, []byte("</body"))
	if i < 0 {
		i = len(page)
	}
	out := make([]byte, 0, len(page)+len(snippet))
	out = append(out, page[:i]...)
	out = append(out, snippet...)
	return append(out, page[i:]...)
}

func lastIndexFold(s, sep []byte) int {
	for i := len(s) - len(sep); i >= 0; i-- {
		if s[i] == '<' && bytes.EqualFold(s[i:i+len(sep)], sep) {
			return i
		}
	}
	return -1
}

// writeBody sends data with an ETag, answering 304 to a matching If-None-Match.
func writeBody(w http.ResponseWriter, r *http.Request, status int, data []byte) {
	hd := w.Header()
	if status == http.StatusOK {
		sum := sha256.Sum256(data)
		etag := `"` + hex.EncodeToString(sum[:16]) + `"`
		hd.Set("ETag", etag)
		if r.Header.Get("If-None-Match") == etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
	}
	hd.Set("Content-Length", strconv.Itoa(len(data)))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(data)
	}
}

// Integrity is the Subresource Integrity value of data, as build's fingerprinting
// writes it.
func Integrity(data []byte) string {
	sum := sha256.Sum256(data)
	return "sha256-" + base64.StdEncoding.EncodeToString(sum[:])
}

// --- Server-Sent Events ---

type event struct{ name, data string }

type client struct{ ch chan event }

func (s *Server) broadcastLocked(ev event) {
	for c := range s.clients {
		select {
		case c.ch <- ev:
		default:
			// A stream that does not keep up is closed; the browser reconnects, and
			// its "hello" tells the page it is behind.
			delete(s.clients, c)
			close(c.ch)
		}
	}
}

// keepAlive is how often an idle stream gets a comment line.
var keepAlive = 15 * time.Second

func (s *Server) serveEvents(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	c := &client{ch: make(chan event, 16)}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	s.clients[c] = struct{}{}
	hello := event{name: "hello", data: mustJSON(map[string]any{"v": s.versionLocked()})}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		if _, ok := s.clients[c]; ok {
			delete(s.clients, c)
			close(c.ch)
		}
		s.mu.Unlock()
	}()

	hd := w.Header()
	hd.Set("Content-Type", "text/event-stream")
	hd.Set("Cache-Control", "no-cache")
	hd.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	// retry: reconnect quickly after a restart of stump watch.
	fmt.Fprintf(w, "retry: 500\n\n")
	writeEvent(w, hello)
	fl.Flush()
	tick := time.NewTicker(keepAlive)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case ev, ok := <-c.ch:
			if !ok {
				return
			}
			writeEvent(w, ev)
			fl.Flush()
		case <-tick.C:
			fmt.Fprint(w, ": ping\n\n")
			fl.Flush()
		}
	}
}

func writeEvent(w http.ResponseWriter, ev event) {
	fmt.Fprintf(w, "event: %s\n", ev.name)
	for _, line := range strings.Split(ev.data, "\n") {
		fmt.Fprintf(w, "data: %s\n", line)
	}
	fmt.Fprint(w, "\n")
}

// --- the script and the overlay ---

// liveJS is the live-reload client: no dependency, no external file. It connects to
// EventsPath and follows the server: "reload" reloads the page; "css" replaces
// stylesheets in place; "error" shows the build error over the page; "hello" (on each
// connection) reloads a page that missed a change while it was not connected.
const liveJS = `(function () {
  var me = document.currentScript, v = me && me.getAttribute("data-v");
  if (!window.EventSource || window.__stumpLive) return;
  window.__stumpLive = true;
  function data(e) { try { return JSON.parse(e.data); } catch (x) { return {}; } }
  var es = new EventSource("` + EventsPath + `");
  es.addEventListener("hello", function (e) { if (data(e).v !== v) { es.close(); location.reload(); } });
  es.addEventListener("reload", function () { es.close(); location.reload(); });
  es.addEventListener("css", function (e) {
    var d = data(e);
    v = d.v;
    var links = document.querySelectorAll('link[rel~="stylesheet"]');
    for (var i = 0; i < links.length; i++) {
      var l = links[i], u = new URL(l.href, location.href), to = null, sri = null;
      (d.swap || []).forEach(function (s) { if (u.pathname === s.from) { to = s.to; sri = s.integrity; } });
      (d.refetch || []).forEach(function (p) { if (u.pathname === p) { u.searchParams.set("stump", v); to = u.pathname + u.search; } });
      if (!to) continue;
      var n = l.cloneNode(false);
      if (sri && n.hasAttribute("integrity")) n.setAttribute("integrity", sri); else n.removeAttribute("integrity");
      n.setAttribute("href", to);
      n.addEventListener("load", function () { this.old.remove(); });
      n.addEventListener("error", function () { location.reload(); });
      n.old = l;
      l.after(n);
    }
  });
  es.addEventListener("error", function (e) {
    if (typeof e.data !== "string") return; // a lost connection: EventSource retries
    var d = data(e);
    v = d.v;
    var old = document.getElementById("stump-error");
    if (old) old.remove();
    var t = document.createElement("div");
    t.innerHTML = d.html;
    if (t.firstElementChild) document.body.appendChild(t.firstElementChild);
  });
})();`

func liveScript(v string) []byte {
	return []byte(`<script id="stump-live" data-v="` + html.EscapeString(v) + `">` + liveJS + "</script>\n")
}

// overlayHTML is the error overlay: a fixed full-page block over the page, every part
// HTML-escaped.
func overlayHTML(items []ErrorItem) string {
	var b strings.Builder
	b.WriteString(`<div id="stump-error" role="alert" style="position:fixed;inset:0;z-index:2147483647;overflow:auto;margin:0;padding:32px;box-sizing:border-box;background:rgba(30,0,0,.95);color:#ffe4e4;font:15px/1.5 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;text-align:left">`)
	b.WriteString(`<p style="margin:0 0 16px;font-size:18px;font-weight:bold;color:#ff8a8a">stump watch: the build failed</p>`)
	for _, it := range items {
		b.WriteString(`<div class="stump-error-item" style="margin:0 0 16px">`)
		if w := it.Where(); w != "" {
			b.WriteString(`<p class="stump-error-where" style="margin:0;color:#fff;font-weight:bold">` + html.EscapeString(w) + `</p>`)
		}
		b.WriteString(`<pre class="stump-error-msg" style="margin:4px 0 0;white-space:pre-wrap;font:inherit">` + html.EscapeString(it.Msg) + `</pre></div>`)
	}
	b.WriteString(`<p style="margin:24px 0 0;opacity:.75">Fix it and save: this page reloads by itself. Until then the last good build is served.</p></div>`)
	return b.String()
}

// standalonePage is the page shown when there is no good build to show: the errors, or
// "building".
func standalonePage(errs []ErrorItem) []byte {
	var b strings.Builder
	b.WriteString("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>")
	if len(errs) > 0 {
		b.WriteString("Build failed · stump watch</title></head><body>")
		b.WriteString(overlayHTML(errs))
	} else {
		b.WriteString("Building · stump watch</title></head><body><p>stump watch is building the site; this page reloads when it is ready.</p>")
	}
	b.WriteString("</body></html>\n")
	return []byte(b.String())
}

// cssBase is a stylesheet's path without its fingerprint: css/site.<64 hex>.css →
// css/site.css (ok false when p is not a fingerprinted stylesheet).
func cssBase(p string) (string, bool) {
	if path.Ext(p) != ".css" {
		return "", false
	}
	stem := strings.TrimSuffix(p, ".css")
	i := strings.LastIndexByte(stem, '.')
	if i < 0 || len(stem)-i-1 != 64 {
		return "", false
	}
	if _, err := hex.DecodeString(stem[i+1:]); err != nil {
		return "", false
	}
	return stem[:i] + ".css", true
}
