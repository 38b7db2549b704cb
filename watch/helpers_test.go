package watch

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stump-dev/stump/build"
)

// smallSite is a workspace with one site "x" on the built-in campaign theme.
var smallSite = map[string]string{
	"stump.yaml":                "output: public\n",
	"sites/x/site.yaml":         "title: X Site\nbaseURL: https://x.example.org/\n",
	"sites/x/content/_index.md": "---\ntitle: Home\n---\nWelcome home.\n",
	"sites/x/content/about.md":  "---\ntitle: About\n---\nAbout us.\n",
	"sites/x/content/news/a.md": "---\ntitle: A\ndate: 2024-01-02\ntags: [go]\naliases: [/old-a/]\n---\nBody of A.\n",
	"sites/x/content/news/b.md": "---\ntitle: B\ndate: 2024-01-03\n---\nBody of B.\n",
}

// writeTree writes files (slash paths relative to root) and returns root.
func writeTree(t testing.TB, root string, files map[string]string) string {
	t.Helper()
	for name, text := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func withFiles(base map[string]string, extra map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range base {
		out[k] = v
	}
	for k, v := range extra {
		out[k] = v
	}
	return out
}

// syncBuffer is a terminal for Run in tests.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// harness runs Run in-process on a free loopback port.
type harness struct {
	t        testing.TB
	root     string
	url      string // http://127.0.0.1:PORT/
	out      *syncBuffer
	rebuilds chan Rebuild
	cancel   context.CancelFunc
	done     chan error
}

func startWatch(t testing.TB, files map[string]string, tweak func(*Config)) *harness {
	t.Helper()
	return startWatchAt(t, writeTree(t, t.TempDir(), files), "x", tweak)
}

// startWatchAt runs Run for site of the workspace at root.
func startWatchAt(t testing.TB, root, site string, tweak func(*Config)) *harness {
	t.Helper()
	ws, err := build.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, root: root, out: &syncBuffer{}, rebuilds: make(chan Rebuild, 100), done: make(chan error, 1)}
	ready := make(chan string, 1)
	cfg := Config{
		Workspace: ws, Site: site, Listener: ln, Out: h.out,
		Ready:   func(u string) { ready <- u },
		Rebuilt: func(r Rebuild) { h.rebuilds <- r },
	}
	if tweak != nil {
		tweak(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { h.done <- Run(ctx, cfg) }()
	select {
	case h.url = <-ready:
	case err := <-h.done:
		t.Fatalf("Run ended: %v", err)
	case <-time.After(5 * time.Minute):
		t.Fatal("Run not ready after 5 minutes")
	}
	t.Cleanup(h.stop)
	return h
}

func (h *harness) stop() {
	h.cancel()
	select {
	case err := <-h.done:
		if err != nil {
			h.t.Errorf("Run: %v", err)
		}
		h.done <- nil
	case <-time.After(10 * time.Second):
		h.t.Error("Run did not stop within 10s of its context ending")
	}
}

func (h *harness) path(rel string) string { return filepath.Join(h.root, filepath.FromSlash(rel)) }

func (h *harness) write(rel, text string) {
	h.t.Helper()
	p := h.path(rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		h.t.Fatal(err)
	}
	// An atomic save, as most editors do.
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
		h.t.Fatal(err)
	}
	if err := os.Rename(tmp, p); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) edit(rel, old, new string) {
	h.t.Helper()
	b, err := os.ReadFile(h.path(rel))
	if err != nil {
		h.t.Fatal(err)
	}
	if !strings.Contains(string(b), old) {
		h.t.Fatalf("%s does not hold %q", rel, old)
	}
	h.write(rel, strings.Replace(string(b), old, new, 1))
}

// rebuilt waits for the next rebuild.
func (h *harness) rebuilt() Rebuild {
	h.t.Helper()
	select {
	case r := <-h.rebuilds:
		return r
	case <-time.After(30 * time.Second):
		h.t.Fatalf("no rebuild within 30s; terminal:\n%s", h.out.String())
	}
	return Rebuild{}
}

// get fetches a path without following redirects.
func get(t testing.TB, url string) (*http.Response, string) {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// sseEvent is one event read from the stream.
type sseEvent struct{ name, data string }

// sseStream reads a live-reload stream.
type sseStream struct {
	resp   *http.Response
	events chan sseEvent
}

func openStream(t testing.TB, url string) *sseStream {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("events: %s, %q", resp.Status, resp.Header.Get("Content-Type"))
	}
	s := &sseStream{resp: resp, events: make(chan sseEvent, 100)}
	go func() {
		defer close(s.events)
		sc := bufio.NewScanner(resp.Body)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.name != "" || ev.data != "" {
					s.events <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, "event: "):
				ev.name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				if ev.data != "" {
					ev.data += "\n"
				}
				ev.data += strings.TrimPrefix(line, "data: ")
			}
		}
	}()
	t.Cleanup(func() { resp.Body.Close() })
	return s
}

// next returns the next event (ok false when the stream ended or nothing came).
func (s *sseStream) next(d time.Duration) (sseEvent, bool) {
	select {
	case ev, ok := <-s.events:
		return ev, ok
	case <-time.After(d):
		return sseEvent{}, false
	}
}

func osRemove(p string) error { return os.Remove(p) }
