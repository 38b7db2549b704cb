// Package website serves a Store the way S3 static website hosting serves a bucket:
// "dir/" answers with "dir/index.html", "dir" without a slash redirects to "dir/" when
// that index exists, an object with a redirect location answers 301, a missing key
// answers 404 with the site's 404.html, and stored headers (Content-Type,
// Cache-Control, x-amz-meta-*) are sent. stump's own _stump/ folder is never served.
// It backs `stump serve`, the preview of the embedded default target.
package website

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/stump-dev/stump/publish"
	"github.com/stump-dev/stump/publish/store"
)

// Handler serves s.
type Handler struct {
	Store store.Store
	Log   *slog.Logger
	// KeepQuery returns what the server keeps of a request's query string, as the
	// edge does (package edge, QueryRules.Keep); nil keeps none, the edge's default.
	// Only redirects carry a query.
	KeepQuery func(urlPath, rawQuery string) string
	// NotFoundHint is the text of a 404 when the store has no 404.html (stump serve
	// says there how to publish a target nothing was published to).
	NotFoundHint string
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if h.KeepQuery != nil {
		r.URL.RawQuery = h.KeepQuery(r.URL.Path, r.URL.RawQuery)
	} else {
		r.URL.RawQuery = ""
	}
	key := strings.TrimPrefix(r.URL.Path, "/")
	if key == "" || strings.HasSuffix(key, "/") {
		key += "index.html"
	}
	// An atomic-mode target serves the tree _stump/live names, as the edge does.
	root := h.root(r)
	if store.CheckKey(key) != nil || key == "_stump" || strings.HasPrefix(key, "_stump/") {
		h.notFound(w, r, root)
		return
	}
	rc, info, err := h.get(r, root, key)
	if errors.Is(err, store.ErrNotFound) {
		// "/about" → "/about/" when about/index.html exists, as S3 websites do.
		if !strings.HasSuffix(r.URL.Path, "/") {
			if _, herr := h.head(r, root, key+"/index.html"); herr == nil {
				to := r.URL.Path + "/"
				if r.URL.RawQuery != "" {
					to += "?" + r.URL.RawQuery
				}
				http.Redirect(w, r, to, http.StatusFound)
				return
			}
		}
		h.notFound(w, r, root)
		return
	}
	if err != nil {
		h.log().Error("serve", "key", key, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	defer rc.Close()
	if loc := info.Meta.RedirectLocation; loc != "" {
		http.Redirect(w, r, loc, http.StatusMovedPermanently)
		return
	}
	setHeaders(w, info)
	if match := r.Header.Get("If-None-Match"); match != "" && match == info.ETag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("Content-Length", strconv.FormatInt(info.Size, 10))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = io.Copy(w, rc)
	}
}

func setHeaders(w http.ResponseWriter, info store.Info) {
	hd := w.Header()
	if info.Meta.ContentType != "" {
		hd.Set("Content-Type", info.Meta.ContentType)
	}
	if info.Meta.CacheControl != "" {
		hd.Set("Cache-Control", info.Meta.CacheControl)
	}
	if info.ETag != "" {
		hd.Set("ETag", info.ETag)
	}
	if !info.ModTime.IsZero() {
		hd.Set("Last-Modified", info.ModTime.UTC().Format(http.TimeFormat))
	}
	for k, v := range info.Meta.Metadata {
		hd.Set("X-Amz-Meta-"+k, v)
	}
}

// tree is where the live deploy is stored: in place (no layers), or in atomic mode
// the deploy's tree and the full tree it overlays (the same for a full tree).
type tree struct{ layer, base string }

// root reads _stump/live once for the request: the zero tree in place, else the
// trees _stump/trees/<id>/ and _stump/trees/<base>/.
func (h *Handler) root(r *http.Request) tree {
	b, info, err := store.GetBytes(r.Context(), h.Store, "_stump/live")
	if err != nil {
		return tree{}
	}
	id := info.Meta.Metadata["deploy"]
	if id == "" {
		id = strings.TrimSpace(string(b))
	}
	base := info.Meta.Metadata["base"]
	if base == "" {
		base = id
	}
	if id == "" || strings.ContainsAny(id, "/\\.") || strings.ContainsAny(base, "/\\.") {
		return tree{}
	}
	return tree{layer: "_stump/trees/" + id + "/", base: "_stump/trees/" + base + "/"}
}

// get reads key of the live deploy as the edge does: from the layer, then from the
// base; a tombstone in the layer is "not found".
func (h *Handler) get(r *http.Request, t tree, key string) (io.ReadCloser, store.Info, error) {
	rc, info, err := h.Store.Get(r.Context(), t.layer+key)
	if errors.Is(err, store.ErrNotFound) && t.base != t.layer {
		rc, info, err = h.Store.Get(r.Context(), t.base+key)
	}
	if err == nil && publish.IsTombstone(info.Meta) {
		rc.Close()
		return nil, store.Info{}, store.ErrNotFound
	}
	return rc, info, err
}

func (h *Handler) head(r *http.Request, t tree, key string) (store.Info, error) {
	info, err := h.Store.Head(r.Context(), t.layer+key)
	if errors.Is(err, store.ErrNotFound) && t.base != t.layer {
		info, err = h.Store.Head(r.Context(), t.base+key)
	}
	if err == nil && publish.IsTombstone(info.Meta) {
		return store.Info{}, store.ErrNotFound
	}
	return info, err
}

// notFound answers 404 with the site's 404.html when there is one.
func (h *Handler) notFound(w http.ResponseWriter, r *http.Request, root tree) {
	rc, info, err := h.get(r, root, "404.html")
	if err != nil {
		msg := "404 Not Found"
		if h.NotFoundHint != "" {
			msg += ": " + h.NotFoundHint
		}
		http.Error(w, msg, http.StatusNotFound)
		return
	}
	defer rc.Close()
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("Content-Length", strconv.FormatInt(info.Size, 10))
	w.WriteHeader(http.StatusNotFound)
	if r.Method == http.MethodGet {
		_, _ = io.Copy(w, rc)
	}
}

func (h *Handler) log() *slog.Logger {
	if h.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return h.Log
}
