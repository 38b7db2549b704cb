package cdntest

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"sync"
	"testing"
)

// FastlyAPI is a fake of the parts of Fastly's configuration API that `stump edge
// deploy --fastly` uses: versions (list, clone, validate, activate), custom VCLs,
// backends, health checks, edge dictionaries and their items. It checks the method,
// path, Fastly-Key, content type and body of every call and the version numbering (a
// clone is the next number; only an unlocked, inactive version may be edited), and
// fails the test on a breach. It can answer 429/5xx (FailNext), fail validation, and
// let "someone else" lock or activate versions (OnClone).
type FastlyAPI struct {
	*httptest.Server
	faults
	reporter
	Service, Token string

	// ValidationError, when set, makes validate answer {"status":"error"} with it.
	ValidationError string
	// OnClone runs after a clone made version n, before the clone is answered: tests use
	// it to play someone else locking (LockByOther) or activating a version meanwhile.
	OnClone func(f *FastlyAPI, n int)

	mu       sync.Mutex
	versions []*FastlyVersion
	items    map[string]map[string]string // dictionary id → items
	nextDict int
	calls    []string
}

// FastlyVersion is one version of the fake service.
type FastlyVersion struct {
	Number       int
	Active       bool
	Locked       bool
	VCLs         map[string]*FastlyVCL
	Backends     map[string]map[string]string
	Healthchecks map[string]map[string]string
	Dicts        map[string]string // name → id
	WriteOnly    map[string]bool   // dictionary id → write-only
	// LockedByOther marks a version locked by someone else (an edit is then the
	// scenario under test, not a breach).
	LockedByOther bool
}

// FastlyVCL is a custom VCL of a version.
type FastlyVCL struct {
	Content string
	Main    bool
}

// NewFastlyAPI starts a fake service with version 1 active (empty, as a new service).
func NewFastlyAPI(t testing.TB, service, token string) *FastlyAPI {
	f := &FastlyAPI{Service: service, Token: token, reporter: reporter{t: t}, items: map[string]map[string]string{}}
	f.versions = []*FastlyVersion{newVersion(1)}
	f.versions[0].Active, f.versions[0].Locked = true, true
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	if t != nil {
		t.Cleanup(f.Close)
	}
	return f
}

func newVersion(n int) *FastlyVersion {
	return &FastlyVersion{Number: n, VCLs: map[string]*FastlyVCL{}, Backends: map[string]map[string]string{},
		Healthchecks: map[string]map[string]string{}, Dicts: map[string]string{}, WriteOnly: map[string]bool{}}
}

// Version returns version n (nil when there is none). Hold no reference across calls.
func (f *FastlyAPI) Version(n int) *FastlyVersion {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.version(n)
}

func (f *FastlyAPI) version(n int) *FastlyVersion {
	for _, v := range f.versions {
		if v.Number == n {
			return v
		}
	}
	return nil
}

// Active is the active version's number (0: none).
func (f *FastlyAPI) Active() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, v := range f.versions {
		if v.Active {
			return v.Number
		}
	}
	return 0
}

// Latest is the highest version number.
func (f *FastlyAPI) Latest() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.versions[len(f.versions)-1].Number
}

// LockByOther locks version n as someone else would (an edit of it is then refused
// with "Version locked", which is what the test expects, not a breach).
func (f *FastlyAPI) LockByOther(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if v := f.version(n); v != nil {
		v.Locked, v.LockedByOther = true, true
	}
}

// Activate makes version n active (as someone in the Fastly UI would).
func (f *FastlyAPI) Activate(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.activate(n)
}

func (f *FastlyAPI) activate(n int) {
	for _, v := range f.versions {
		v.Active = v.Number == n
		if v.Active {
			v.Locked = true
		}
	}
}

// Items returns a copy of a dictionary's items by its name in the active version.
func (f *FastlyAPI) Items(dict string) map[string]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, v := range f.versions {
		if v.Active {
			return maps.Clone(f.items[v.Dicts[dict]])
		}
	}
	return nil
}

// Calls are the calls received, "METHOD path", in order.
func (f *FastlyAPI) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

var (
	fastlyVersionsRE = regexp.MustCompile(`^/service/([^/]+)/version$`)
	fastlyVersionRE  = regexp.MustCompile(`^/service/([^/]+)/version/([0-9]+)/(clone|validate|activate|vcl|backend|healthcheck|dictionary)(?:/([^/]+))?(?:/(main))?$`)
	fastlyItemsRE    = regexp.MustCompile(`^/service/([^/]+)/dictionary/([^/]+)/items$`)
	fastlyNameRE     = regexp.MustCompile(`^[A-Za-z0-9_]+$`)
)

func (f *FastlyAPI) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, r.Method+" "+r.URL.Path)
	if r.Header.Get("Fastly-Key") != f.Token {
		f.breach("%s %s without the API token in Fastly-Key", r.Method, r.URL.Path)
		fastlyError(w, http.StatusUnauthorized, "Provided credentials are missing or invalid")
		return
	}
	if fl, ok := f.next(); ok {
		writeFailure(w, fl, "application/json", `{"msg":"try again later"}`)
		return
	}
	if m := fastlyVersionsRE.FindStringSubmatch(r.URL.Path); m != nil {
		if !f.service(w, r, m[1], "GET") {
			return
		}
		out := []map[string]any{}
		for _, v := range f.versions {
			out = append(out, map[string]any{"number": v.Number, "active": v.Active, "locked": v.Locked, "service_id": f.Service})
		}
		writeJSON(w, out)
		return
	}
	if m := fastlyItemsRE.FindStringSubmatch(r.URL.Path); m != nil {
		f.serveItems(w, r, m[1], m[2], body)
		return
	}
	m := fastlyVersionRE.FindStringSubmatch(r.URL.Path)
	if m == nil {
		f.breach("%s %s: not a call of the API", r.Method, r.URL.Path)
		fastlyError(w, http.StatusNotFound, "Not found")
		return
	}
	n, _ := strconv.Atoi(m[2])
	what, name, main := m[3], m[4], m[5]
	if m[1] != f.Service {
		f.breach("%s %s: service %s, want %s", r.Method, r.URL.Path, m[1], f.Service)
		fastlyError(w, http.StatusNotFound, "Record not found")
		return
	}
	v := f.version(n)
	if v == nil {
		f.breach("%s %s: there is no version %d", r.Method, r.URL.Path, n)
		fastlyError(w, http.StatusNotFound, "Record not found")
		return
	}
	// Reads.
	if r.Method == "GET" {
		switch {
		case what == "validate" && name == "":
			if f.ValidationError != "" {
				writeJSON(w, map[string]any{"status": "error", "msg": "Syntax error", "errors": []string{f.ValidationError}})
				return
			}
			writeJSON(w, map[string]any{"status": "ok", "errors": []string{}})
		case what == "vcl" && name == "":
			out := []map[string]any{}
			for _, k := range sortedNames(v.VCLs) {
				out = append(out, map[string]any{"name": k, "main": v.VCLs[k].Main, "content": v.VCLs[k].Content, "version": n})
			}
			writeJSON(w, out)
		case (what == "backend" || what == "healthcheck") && name == "":
			src := v.Backends
			if what == "healthcheck" {
				src = v.Healthchecks
			}
			out := []map[string]any{}
			for _, k := range sortedNames(src) {
				o := map[string]any{"name": k, "version": n}
				for fk, fv := range src[k] {
					// Fastly answers numbers and booleans as JSON numbers and booleans.
					if i, err := strconv.Atoi(fv); err == nil {
						o[fk] = i
					} else if fv == "true" || fv == "false" {
						o[fk] = fv == "true"
					} else if fv == "" {
						o[fk] = nil
					} else {
						o[fk] = fv
					}
				}
				out = append(out, o)
			}
			writeJSON(w, out)
		case what == "dictionary" && name == "":
			out := []map[string]any{}
			for _, k := range sortedNames(v.Dicts) {
				out = append(out, map[string]any{"name": k, "id": v.Dicts[k], "write_only": v.WriteOnly[v.Dicts[k]], "version": n})
			}
			writeJSON(w, out)
		default:
			f.breach("GET %s: not a read stump makes", r.URL.Path)
			fastlyError(w, http.StatusNotFound, "Not found")
		}
		return
	}
	if r.Method != "PUT" && r.Method != "POST" {
		f.breach("%s %s: wrong method", r.Method, r.URL.Path)
		fastlyError(w, http.StatusMethodNotAllowed, "Method not allowed")
		return
	}
	switch {
	case what == "clone" && r.Method == "PUT" && name == "":
		c := newVersion(f.versions[len(f.versions)-1].Number + 1)
		for k, x := range v.VCLs {
			c.VCLs[k] = &FastlyVCL{Content: x.Content, Main: x.Main}
		}
		for k, x := range v.Backends {
			c.Backends[k] = maps.Clone(x)
		}
		for k, x := range v.Healthchecks {
			c.Healthchecks[k] = maps.Clone(x)
		}
		maps.Copy(c.Dicts, v.Dicts)
		maps.Copy(c.WriteOnly, v.WriteOnly)
		f.versions = append(f.versions, c)
		if f.OnClone != nil {
			f.mu.Unlock()
			f.OnClone(f, c.Number)
			f.mu.Lock()
		}
		writeJSON(w, map[string]any{"number": c.Number, "active": false, "locked": false, "service_id": f.Service})
		return
	case what == "activate" && r.Method == "PUT" && name == "":
		f.activate(n)
		writeJSON(w, map[string]any{"number": n, "active": true, "locked": true})
		return
	}
	// Edits: only of a version nobody locked.
	if v.Locked || v.Active {
		if !v.LockedByOther {
			f.breach("%s %s: version %d is locked (stump must edit only the version it cloned)", r.Method, r.URL.Path, n)
		}
		fastlyError(w, http.StatusBadRequest, "Version locked")
		return
	}
	var form url.Values
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct == "application/x-www-form-urlencoded" {
		form, _ = url.ParseQuery(string(body))
	} else if !(what == "vcl" && main == "main") {
		f.breach("%s %s: Content-Type %q, want a form", r.Method, r.URL.Path, r.Header.Get("Content-Type"))
		fastlyError(w, http.StatusBadRequest, "Bad request")
		return
	}
	need := func(fields ...string) bool {
		for _, k := range fields {
			if form.Get(k) == "" {
				f.breach("%s %s: no %s in the form", r.Method, r.URL.Path, k)
				fastlyError(w, http.StatusBadRequest, "Missing "+k)
				return false
			}
		}
		return true
	}
	switch {
	case what == "vcl" && main == "main" && r.Method == "PUT":
		x := v.VCLs[name]
		if x == nil {
			f.breach("PUT %s: no VCL %s in version %d", r.URL.Path, name, n)
			fastlyError(w, http.StatusNotFound, "Record not found")
			return
		}
		for _, o := range v.VCLs {
			o.Main = false
		}
		x.Main = true
		writeJSON(w, map[string]any{"name": name, "main": true})
	case what == "vcl" && r.Method == "POST" && name == "":
		if !need("name", "content") {
			return
		}
		if v.VCLs[form.Get("name")] != nil {
			fastlyError(w, http.StatusConflict, "Duplicate record")
			f.breach("POST %s: VCL %s exists (PUT it)", r.URL.Path, form.Get("name"))
			return
		}
		v.VCLs[form.Get("name")] = &FastlyVCL{Content: form.Get("content"), Main: form.Get("main") == "true"}
		writeJSON(w, map[string]any{"name": form.Get("name")})
	case what == "vcl" && r.Method == "PUT" && name != "":
		if !need("content") || v.VCLs[name] == nil {
			if v.VCLs[name] == nil {
				f.breach("PUT %s: no VCL %s", r.URL.Path, name)
				fastlyError(w, http.StatusNotFound, "Record not found")
			}
			return
		}
		v.VCLs[name].Content = form.Get("content")
		writeJSON(w, map[string]any{"name": name})
	case (what == "backend" || what == "healthcheck") && r.Method == "POST" && name == "":
		dst := v.Backends
		fields := []string{"name", "address", "port"}
		if what == "healthcheck" {
			dst, fields = v.Healthchecks, []string{"name", "host", "path"}
		}
		if !need(fields...) {
			return
		}
		if !fastlyNameRE.MatchString(form.Get("name")) || dst[form.Get("name")] != nil {
			f.breach("POST %s: bad or duplicate name %q", r.URL.Path, form.Get("name"))
			fastlyError(w, http.StatusConflict, "Duplicate record")
			return
		}
		if what == "backend" && form.Get("healthcheck") != "" && v.Healthchecks[form.Get("healthcheck")] == nil {
			f.breach("POST %s: backend names health check %s that does not exist", r.URL.Path, form.Get("healthcheck"))
		}
		o := map[string]string{}
		for k := range form {
			if k != "name" {
				o[k] = form.Get(k)
			}
		}
		dst[form.Get("name")] = o
		writeJSON(w, map[string]any{"name": form.Get("name")})
	case (what == "backend" || what == "healthcheck") && r.Method == "PUT" && name != "":
		dst := v.Backends
		if what == "healthcheck" {
			dst = v.Healthchecks
		}
		if dst[name] == nil {
			f.breach("PUT %s: no %s %s", r.URL.Path, what, name)
			fastlyError(w, http.StatusNotFound, "Record not found")
			return
		}
		for k := range form {
			dst[name][k] = form.Get(k)
		}
		writeJSON(w, map[string]any{"name": name})
	case what == "dictionary" && r.Method == "POST" && name == "":
		if !need("name") {
			return
		}
		if _, ok := v.Dicts[form.Get("name")]; ok {
			f.breach("POST %s: dictionary %s exists", r.URL.Path, form.Get("name"))
			fastlyError(w, http.StatusConflict, "Duplicate record")
			return
		}
		f.nextDict++
		id := fmt.Sprintf("dict%04d", f.nextDict)
		v.Dicts[form.Get("name")] = id
		v.WriteOnly[id] = form.Get("write_only") == "true"
		f.items[id] = map[string]string{}
		writeJSON(w, map[string]any{"name": form.Get("name"), "id": id, "write_only": v.WriteOnly[id]})
	default:
		f.breach("%s %s: not a call stump makes", r.Method, r.URL.Path)
		fastlyError(w, http.StatusNotFound, "Not found")
	}
}

func (f *FastlyAPI) service(w http.ResponseWriter, r *http.Request, sid, method string) bool {
	if sid != f.Service {
		f.breach("%s %s: service %s, want %s", r.Method, r.URL.Path, sid, f.Service)
		fastlyError(w, http.StatusNotFound, "Record not found")
		return false
	}
	if r.Method != method {
		f.breach("%s %s: want %s", r.Method, r.URL.Path, method)
		fastlyError(w, http.StatusMethodNotAllowed, "Method not allowed")
		return false
	}
	return true
}

// serveItems answers the items of a dictionary: GET (none of a write-only one, as
// Fastly), PATCH with a JSON batch {"items": [{"op", "item_key", "item_value"}]}.
func (f *FastlyAPI) serveItems(w http.ResponseWriter, r *http.Request, sid, id string, body []byte) {
	if sid != f.Service {
		f.breach("%s %s: service %s, want %s", r.Method, r.URL.Path, sid, f.Service)
		fastlyError(w, http.StatusNotFound, "Record not found")
		return
	}
	items, ok := f.items[id]
	if !ok {
		f.breach("%s %s: no dictionary %s", r.Method, r.URL.Path, id)
		fastlyError(w, http.StatusNotFound, "Record not found")
		return
	}
	writeOnly := false
	for _, v := range f.versions {
		writeOnly = writeOnly || v.WriteOnly[id]
	}
	switch r.Method {
	case "GET":
		out := []map[string]string{}
		if !writeOnly {
			for _, k := range sortedNames(items) {
				out = append(out, map[string]string{"item_key": k, "item_value": items[k], "dictionary_id": id})
			}
		}
		writeJSON(w, out)
	case "PATCH":
		if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct != "application/json" {
			f.breach("PATCH %s: Content-Type %q, want application/json", r.URL.Path, r.Header.Get("Content-Type"))
		}
		var req struct {
			Items []struct {
				Op    string  `json:"op"`
				Key   string  `json:"item_key"`
				Value *string `json:"item_value"`
			} `json:"items"`
		}
		if err := json.Unmarshal(body, &req); err != nil || len(req.Items) == 0 || len(req.Items) > 1000 {
			f.breach("PATCH %s: not a batch of 1-1000 items: %s", r.URL.Path, body)
			fastlyError(w, http.StatusBadRequest, "Bad request")
			return
		}
		for _, it := range req.Items {
			switch it.Op {
			case "upsert", "create", "update":
				if it.Value == nil || it.Key == "" {
					f.breach("PATCH %s: %s without key or value", r.URL.Path, it.Op)
					continue
				}
				items[it.Key] = *it.Value
			case "delete":
				delete(items, it.Key)
			default:
				f.breach("PATCH %s: op %q", r.URL.Path, it.Op)
			}
		}
		writeJSON(w, map[string]string{"status": "ok"})
	default:
		f.breach("%s %s: want GET or PATCH", r.Method, r.URL.Path)
		fastlyError(w, http.StatusMethodNotAllowed, "Method not allowed")
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

func fastlyError(w http.ResponseWriter, status int, detail string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"msg": http.StatusText(status), "detail": detail})
}

func sortedNames[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
