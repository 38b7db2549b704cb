package cdntest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// FastlyMaxKeys is the documented limit of keys in one bulk purge.
const FastlyMaxKeys = 256

// Fastly is a fake Fastly API: POST /service/{id}/purge (bulk keys, JSON body
// {"surrogate_keys": [...]} or a Surrogate-Key header) and POST /purge/{host}{path}
// (one URL), each with a Fastly-Key header. purge_all is a breach: stump never uses it.
type Fastly struct {
	*httptest.Server
	faults
	reporter
	Service, Token string

	mu       sync.Mutex
	requests int
	bulk     [][]string
	urls     []string
	soft     int
}

// NewFastly starts a fake for one service; t is failed on any breach.
func NewFastly(t testing.TB, service, token string) *Fastly {
	f := &Fastly{Service: service, Token: token, reporter: reporter{t: t}}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	if t != nil {
		t.Cleanup(f.Close)
	}
	return f
}

// Requests counts every request received (failed ones included).
func (f *Fastly) Requests() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests
}

// Bulk are the key lists of the bulk purges answered 200.
func (f *Fastly) Bulk() [][]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([][]string(nil), f.bulk...)
}

// Keys are all keys purged, in order.
func (f *Fastly) Keys() []string {
	var out []string
	for _, b := range f.Bulk() {
		out = append(out, b...)
	}
	return out
}

// URLs are the URLs ("host/path") purged one by one.
func (f *Fastly) URLs() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.urls...)
}

// Soft counts the purges sent soft.
func (f *Fastly) Soft() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.soft
}

func (f *Fastly) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.requests++
	f.mu.Unlock()
	body, _ := io.ReadAll(r.Body)
	if r.Header.Get("Fastly-Key") != f.Token {
		f.breach("%s %s: Fastly-Key header missing or not the test token", r.Method, r.URL.Path)
		jsonAnswer(w, http.StatusUnauthorized, map[string]string{"msg": "Provided credentials are missing or invalid"})
		return
	}
	if r.Method != http.MethodPost {
		f.breach("%s %s: purges are POST", r.Method, r.URL.Path)
		jsonAnswer(w, http.StatusMethodNotAllowed, map[string]string{"msg": "method not allowed"})
		return
	}
	soft := false
	if v, ok := r.Header["Fastly-Soft-Purge"]; ok {
		if len(v) != 1 || v[0] != "1" {
			f.breach("Fastly-Soft-Purge must be 1, not %q", v)
		}
		soft = true
	}
	if fl, ok := f.next(); ok {
		writeFailure(w, fl, "application/json", `{"msg":"injected failure"}`)
		return
	}
	switch {
	case r.URL.Path == "/service/"+f.Service+"/purge_all":
		f.breach("purge_all was called: stump purges the site key, never the whole service")
		jsonAnswer(w, http.StatusOK, map[string]string{"status": "ok"})
	case r.URL.Path == "/service/"+f.Service+"/purge":
		keys, ok := f.bulkKeys(r, body)
		if !ok {
			jsonAnswer(w, http.StatusBadRequest, map[string]string{"msg": "bad request"})
			return
		}
		f.mu.Lock()
		f.bulk = append(f.bulk, keys)
		if soft {
			f.soft++
		}
		f.mu.Unlock()
		ids := map[string]string{}
		for i, k := range keys {
			ids[k] = fmt.Sprintf("purge-%d", i)
		}
		jsonAnswer(w, http.StatusOK, ids)
	case strings.HasPrefix(r.URL.Path, "/purge/"):
		target := strings.TrimPrefix(r.URL.EscapedPath(), "/purge/")
		host, _, _ := strings.Cut(target, "/")
		if host == "" || !strings.ContainsAny(host, ".:") || !strings.Contains(target, "/") {
			f.breach("URL purge of %q: want /purge/{host}{path}", target)
			jsonAnswer(w, http.StatusBadRequest, map[string]string{"msg": "bad url"})
			return
		}
		if len(body) > 0 {
			f.breach("URL purge of %q has a body", target)
		}
		f.mu.Lock()
		f.urls = append(f.urls, target)
		if soft {
			f.soft++
		}
		f.mu.Unlock()
		jsonAnswer(w, http.StatusOK, map[string]string{"status": "ok", "id": "url-purge"})
	default:
		f.breach("%s %s is not a Fastly purge endpoint", r.Method, r.URL.Path)
		jsonAnswer(w, http.StatusNotFound, map[string]string{"msg": "Record not found"})
	}
}

func (f *Fastly) bulkKeys(r *http.Request, body []byte) ([]string, bool) {
	var keys []string
	if h := r.Header.Get("Surrogate-Key"); h != "" {
		keys = strings.Fields(h)
	} else {
		if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			f.breach("bulk purge body with Content-Type %q, want application/json", ct)
			return nil, false
		}
		var in struct {
			SurrogateKeys []string `json:"surrogate_keys"`
		}
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&in); err != nil {
			f.breach("bulk purge body is not {\"surrogate_keys\": [...]}: %v", err)
			return nil, false
		}
		keys = in.SurrogateKeys
	}
	if len(keys) == 0 {
		f.breach("bulk purge without keys")
		return nil, false
	}
	if len(keys) > FastlyMaxKeys {
		f.breach("bulk purge of %d keys: the limit is %d", len(keys), FastlyMaxKeys)
		return nil, false
	}
	for _, k := range keys {
		if k == "" || strings.ContainsAny(k, " \t\r\n") || len(k) > 1024 {
			f.breach("bulk purge key %q is not a valid surrogate key", k)
			return nil, false
		}
	}
	return keys, true
}

func jsonAnswer(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
