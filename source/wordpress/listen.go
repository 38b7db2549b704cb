package wordpress

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"
)

// SignatureHeader carries the webhook's signature: "sha256=" and the hex HMAC-SHA256 of
// the body with the shared secret.
const SignatureHeader = "X-Stump-Signature"

// Event is the body of a webhook from integrations/wordpress/stump-webhook.php.
type Event struct {
	// ID is unique per event (a nonce): an event seen before is a replay.
	ID string `json:"id"`
	// Time is when WordPress sent it (Unix seconds); an event outside the replay
	// window is refused.
	Time  int64  `json:"time"`
	Event string `json:"event"` // transition_post_status, delete_post
	Post  struct {
		ID        int    `json:"id"`
		Type      string `json:"type"`
		Status    string `json:"status"`
		OldStatus string `json:"old_status"`
	} `json:"post"`
}

// Sign returns the signature header value of body with secret.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// RunResult is one pull → build → publish run of a listener.
type RunResult struct {
	Start   time.Time `json:"start"`
	End     time.Time `json:"end"`
	Reason  string    `json:"reason"` // webhook, poll, scheduled, start
	OK      bool      `json:"ok"`
	Error   string    `json:"error,omitempty"`
	Summary string    `json:"summary,omitempty"`
	// Changed lists the live paths the publish wrote or deleted.
	Changed []string `json:"changed,omitempty"`
	// NextScheduled is when a scheduled post goes live (a run is planned then).
	NextScheduled time.Time `json:"next_scheduled,omitzero"`
}

// Listener receives signed webhooks and runs the site's pull → build → publish, one run
// at a time, after a quiet period (debounce) so a burst of saves is one publish.
type Listener struct {
	// Secret is the shared HMAC key (required).
	Secret []byte
	// Debounce is the quiet time after the last event before a run (default 2s);
	// MaxWait bounds the wait under a steady stream of events (default 30s).
	Debounce, MaxWait time.Duration
	// Every polls: a run every interval without any webhook (0: off).
	Every time.Duration
	// Window is how old (or how far ahead) an event may be (default 5m); ids are
	// remembered that long, so a replayed event is refused.
	Window time.Duration
	// Run does one pull → build → publish. It is never called concurrently.
	Run func(ctx context.Context, reason string) RunResult
	Log *slog.Logger

	once     sync.Once
	trigger  chan string
	mu       sync.Mutex
	seen     map[string]time.Time
	running  bool
	pending  bool
	runs     int
	accepted int
	rejected int
	last     *RunResult
	lastOK   *RunResult
}

func (l *Listener) init() {
	l.once.Do(func() {
		if l.Debounce <= 0 {
			l.Debounce = 2 * time.Second
		}
		if l.MaxWait <= 0 {
			l.MaxWait = 30 * time.Second
		}
		if l.Window <= 0 {
			l.Window = 5 * time.Minute
		}
		if l.Log == nil {
			l.Log = slog.New(slog.DiscardHandler)
		}
		l.trigger = make(chan string, 1)
		l.seen = map[string]time.Time{}
	})
}

// Trigger asks for a run (debounced), as a webhook does.
func (l *Listener) Trigger(reason string) {
	l.init()
	l.mu.Lock()
	l.pending = true
	l.mu.Unlock()
	select {
	case l.trigger <- reason:
	default:
	}
}

// Handler serves POST /hook (the webhook), GET /status (JSON) and GET /healthz.
func (l *Listener) Handler() http.Handler {
	l.init()
	mux := http.NewServeMux()
	mux.HandleFunc("POST /hook", l.hook)
	mux.HandleFunc("GET /status", l.status)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	return mux
}

// maxEvent bounds a webhook body.
const maxEvent = 64 << 10

func (l *Listener) hook(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxEvent+1))
	if err != nil || len(body) > maxEvent {
		http.Error(w, "body too large or unreadable", http.StatusRequestEntityTooLarge)
		return
	}
	reject := func(why string) {
		l.mu.Lock()
		l.rejected++
		l.mu.Unlock()
		l.Log.Warn("wordpress listen: webhook refused", "reason", why, "remote", r.RemoteAddr)
		http.Error(w, why, http.StatusUnauthorized)
	}
	sig := r.Header.Get(SignatureHeader)
	if !hmac.Equal([]byte(sig), []byte(Sign(l.Secret, body))) {
		reject("bad signature")
		return
	}
	var ev Event
	if err := json.Unmarshal(body, &ev); err != nil || ev.ID == "" || ev.Time == 0 {
		reject("signed, but not an event (id and time are required)")
		return
	}
	now := time.Now()
	at := time.Unix(ev.Time, 0)
	if at.Before(now.Add(-l.Window)) || at.After(now.Add(l.Window)) {
		reject("event time outside the replay window")
		return
	}
	l.mu.Lock()
	for id, t := range l.seen {
		if now.Sub(t) > 2*l.Window {
			delete(l.seen, id)
		}
	}
	if _, dup := l.seen[ev.ID]; dup {
		l.mu.Unlock()
		reject("replayed event")
		return
	}
	l.seen[ev.ID] = now
	l.accepted++
	l.mu.Unlock()
	l.Log.Info("wordpress listen: event", "event", ev.Event, "post", ev.Post.ID, "type", ev.Post.Type, "status", ev.Post.Status, "old_status", ev.Post.OldStatus)
	l.Trigger("webhook")
	w.WriteHeader(http.StatusAccepted)
	io.WriteString(w, "accepted\n")
}

// Status is what GET /status answers.
type Status struct {
	Running  bool       `json:"running"`
	Pending  bool       `json:"pending"`
	Runs     int        `json:"runs"`
	Accepted int        `json:"events_accepted"`
	Rejected int        `json:"events_rejected"`
	Last     *RunResult `json:"last,omitempty"`
	LastOK   *RunResult `json:"last_ok,omitempty"`
}

// State returns the listener's status.
func (l *Listener) State() Status {
	l.init()
	l.mu.Lock()
	defer l.mu.Unlock()
	return Status{Running: l.running, Pending: l.pending, Runs: l.runs, Accepted: l.accepted,
		Rejected: l.rejected, Last: l.last, LastOK: l.lastOK}
}

func (l *Listener) status(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(l.State())
}

// Loop runs until ctx ends: it waits for triggers (webhooks, the poll interval, the
// time of the next scheduled post), debounces them, and runs one at a time. A trigger
// during a run makes one more run after it.
func (l *Listener) Loop(ctx context.Context) {
	l.init()
	var poll <-chan time.Time
	if l.Every > 0 {
		t := time.NewTicker(l.Every)
		defer t.Stop()
		poll = t.C
	}
	var scheduled <-chan time.Time
	var schedTimer *time.Timer
	for {
		var reason string
		select {
		case <-ctx.Done():
			return
		case reason = <-l.trigger:
		case <-poll:
			reason = "poll"
		case <-scheduled:
			reason = "scheduled"
		}
		// Debounce: wait for a quiet period (bounded by MaxWait).
		first := time.Now()
	quiet:
		for {
			wait := min(l.Debounce, l.MaxWait-time.Since(first))
			if wait <= 0 {
				break
			}
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-l.trigger:
				t.Stop()
			case <-t.C:
				break quiet
			}
		}
		l.mu.Lock()
		l.running, l.pending = true, false
		l.mu.Unlock()
		res := l.Run(ctx, reason)
		l.mu.Lock()
		l.running = false
		l.runs++
		l.last = &res
		if res.OK {
			l.lastOK = &res
		}
		l.mu.Unlock()
		if res.OK {
			l.Log.Info("wordpress listen: run", "reason", reason, "summary", res.Summary, "took", res.End.Sub(res.Start).Round(time.Millisecond))
		} else {
			l.Log.Error("wordpress listen: run failed", "reason", reason, "error", res.Error)
		}
		if schedTimer != nil {
			schedTimer.Stop()
			scheduled = nil
		}
		if !res.NextScheduled.IsZero() {
			schedTimer = time.NewTimer(time.Until(res.NextScheduled) + time.Second)
			scheduled = schedTimer.C
		}
	}
}

// SecretFromEnv trims a secret read from the environment.
func SecretFromEnv(v string) []byte { return []byte(strings.TrimSpace(v)) }
