package purge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/stump-dev/stump/publish"
)

// Purger purges a site's CDNs after a deploy. It implements publish.Purger: publish
// hands it the live and the new objects after the commit; it plans one Request and
// sends it to every CDN concurrently. A CDN that fails does not stop the others; its
// request comes back as pending work (JSON, see Pending) that Retry sends again to that
// CDN only.
type Purger struct {
	CDNs []CDN
	// BaseURL is the site's base URL (the planner needs its host and path prefix).
	BaseURL string
	Log     *slog.Logger
	// PlanOptions tune the planner.
	PlanOptions PlanOptions
	// OnReport, when set, is called once per CDN as it finishes (one at a time), with
	// Report.Error set if it failed.
	OnReport func(Report)
	// Now stamps pending work (default time.Now).
	Now func() time.Time

	mu       sync.Mutex
	lastPlan *Request
	reports  []Report
}

var _ publish.Purger = (*Purger)(nil)

// Purge plans the purge of a deploy going from from to to, sends it to every CDN, and
// retries earlier pending work (each item to the CDN it failed on). It returns what is
// still pending (nil when every CDN succeeded or nothing needed purging).
func (p *Purger) Purge(ctx context.Context, site string, from, to []publish.Object, pending []byte) ([]byte, error) {
	r := Plan(site, p.BaseURL, from, to, p.PlanOptions)
	p.log().Info("purge plan", "site", site, "all", r.All, "paths", len(r.Paths), "keys", len(r.Keys), "reason", r.Reason)
	newer, err := p.Send(ctx, r)
	if len(pending) == 0 {
		return newer, err
	}
	plan, reports := p.LastPlan(), p.LastReports()
	older, rerr := p.Retry(ctx, pending)
	p.mu.Lock()
	p.lastPlan, p.reports = plan, append(reports, p.reports...)
	p.mu.Unlock()
	merged, merr := MergePending(older, newer)
	if merr != nil {
		return newer, errors.Join(err, rerr, merr)
	}
	return merged, errors.Join(err, rerr)
}

// PurgeKeys purges surrogate keys of a site (publish's atomic mode purges the pointer's
// key on every switch). URL-only CDNs skip keys they cannot map to URLs.
func (p *Purger) PurgeKeys(ctx context.Context, site string, keys []string) ([]byte, error) {
	return p.Send(ctx, &Request{Site: site, BaseURL: p.BaseURL, Keys: keys, Reason: "the live deploy switched"})
}

// MergePending merges two pending documents (publish asks through this method).
func (p *Purger) MergePending(older, newer []byte) ([]byte, error) { return MergePending(older, newer) }

// PurgePaths purges the URLs of paths (publish: deleted paths once more after the
// delete, so an edge
// that re-cached a removed page between the first purge and the delete drops it.
func (p *Purger) PurgePaths(ctx context.Context, site string, paths []string) ([]byte, error) {
	urls := make([]string, 0, len(paths))
	for _, d := range paths {
		u := "/" + strings.TrimSuffix(d, "index.html")
		urls = append(urls, u)
	}
	r, err := URLs(site, p.BaseURL, urls, p.PlanOptions)
	if err != nil {
		return nil, err
	}
	return p.Send(ctx, r)
}

// Send sends one request to every CDN (as `stump purge --urls` or `--all` do).
func (p *Purger) Send(ctx context.Context, r *Request) ([]byte, error) {
	p.mu.Lock()
	p.lastPlan = r
	p.reports = nil
	p.mu.Unlock()
	if r.Empty() {
		return nil, nil
	}
	jobs := make([]job, len(p.CDNs))
	for i, c := range p.CDNs {
		jobs[i] = job{cdn: c, req: r}
	}
	return p.run(ctx, jobs)
}

// Retry sends pending work again, each request to the CDN it failed on; what still
// fails comes back as pending. Work for a CDN that is no longer configured is dropped
// (and logged): it has nowhere to go.
func (p *Purger) Retry(ctx context.Context, pending []byte) ([]byte, error) {
	p.mu.Lock()
	p.lastPlan = nil
	p.reports = nil
	p.mu.Unlock()
	pd, err := DecodePending(pending)
	if err != nil || pd == nil {
		return pending, err
	}
	byName := map[string]CDN{}
	for _, c := range p.CDNs {
		byName[c.Name()] = c
	}
	var jobs []job
	for _, it := range pd.Items {
		if it.Request == nil || it.Request.Empty() {
			continue
		}
		c, ok := byName[it.CDN]
		if !ok {
			p.log().Warn("pending purge dropped: its CDN is no longer configured", "cdn", it.CDN, "paths", len(it.Request.Paths), "keys", len(it.Request.Keys), "all", it.Request.All)
			continue
		}
		jobs = append(jobs, job{cdn: c, req: it.Request, tries: it.Tries})
	}
	if len(jobs) == 0 {
		return nil, nil
	}
	return p.run(ctx, jobs)
}

// Preview is what each CDN would send for r, by CDN name (for `stump purge --plan`); a
// CDN that cannot preview is listed with no calls and a note in its report's Detail.
func (p *Purger) Preview(r *Request) (map[string][]string, []Report, error) {
	calls := map[string][]string{}
	var reps []Report
	var errs []error
	for _, c := range p.CDNs {
		pv, ok := c.(Previewer)
		if !ok {
			reps = append(reps, Report{CDN: c.Name(), Detail: "this CDN cannot preview its calls"})
			continue
		}
		lines, rep, err := pv.Plan(r)
		if rep.CDN == "" {
			rep.CDN = c.Name()
		}
		if err != nil {
			rep.Error = err.Error()
			errs = append(errs, err)
		}
		calls[rep.CDN] = lines
		reps = append(reps, rep)
	}
	return calls, reps, errors.Join(errs...)
}

// LastPlan is the request the last Purge or Send planned (nil before, or after Retry).
func (p *Purger) LastPlan() *Request {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lastPlan
}

// LastReports are the reports of the last Purge, Send or Retry, in CDN order.
func (p *Purger) LastReports() []Report {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Report(nil), p.reports...)
}

type job struct {
	cdn   CDN
	req   *Request
	tries int
}

func (p *Purger) log() *slog.Logger {
	if p.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return p.Log
}

func (p *Purger) run(ctx context.Context, jobs []job) ([]byte, error) {
	reports := make([]Report, len(jobs))
	errs := make([]error, len(jobs))
	var cb sync.Mutex
	// A plain group: one CDN's failure must not cancel the others.
	var g errgroup.Group
	for i, j := range jobs {
		g.Go(func() error {
			start := time.Now()
			rep, err := j.cdn.Purge(ctx, j.req)
			if rep.CDN == "" {
				rep.CDN = j.cdn.Name()
			}
			if err != nil {
				rep.Error = err.Error()
				errs[i] = err
				p.log().Warn("purge failed; left pending", "cdn", rep.CDN, "calls", rep.Calls, "err", err)
			} else {
				p.log().Info("purged", "cdn", rep.CDN, "mode", rep.Mode, "calls", rep.Calls, "paths", rep.Paths, "keys", rep.Keys, "took", time.Since(start).Round(time.Millisecond), "detail", rep.Detail)
			}
			reports[i] = rep
			if p.OnReport != nil {
				cb.Lock()
				p.OnReport(rep)
				cb.Unlock()
			}
			return nil
		})
	}
	_ = g.Wait()
	p.mu.Lock()
	p.reports = reports
	p.mu.Unlock()

	var pd Pending
	var failed []error
	now := time.Now
	if p.Now != nil {
		now = p.Now
	}
	for i, err := range errs {
		if err == nil {
			continue
		}
		failed = append(failed, err)
		pd.Items = append(pd.Items, PendingItem{CDN: reports[i].CDN, Request: jobs[i].req, Error: err.Error(), Since: now().UTC(), Tries: jobs[i].tries + 1})
	}
	if len(failed) == 0 {
		return nil, nil
	}
	b, err := pd.Encode()
	if err != nil {
		return nil, errors.Join(append(failed, err)...)
	}
	return b, errors.Join(failed...)
}

// PendingVersion is the format version of pending work.
const PendingVersion = 1

// Pending is purge work that failed after retries, stored by publish in the pointer
// (current.json) until a publish or `stump purge --pending` sends it again.
type Pending struct {
	Version int           `json:"version"`
	Items   []PendingItem `json:"items"`
}

// PendingItem is one CDN's unfinished request.
type PendingItem struct {
	CDN     string   `json:"cdn"`
	Request *Request `json:"request"`
	// Error is the last failure (it never holds a credential).
	Error string    `json:"error,omitempty"`
	Since time.Time `json:"since,omitzero"`
	// Tries counts the purges of this work that failed.
	Tries int `json:"tries,omitempty"`
}

// Encode marshals pending work (nil when there is none).
func (p *Pending) Encode() ([]byte, error) {
	if p == nil || len(p.Items) == 0 {
		return nil, nil
	}
	p.Version = PendingVersion
	sort.SliceStable(p.Items, func(i, j int) bool { return p.Items[i].CDN < p.Items[j].CDN })
	return json.Marshal(p)
}

// DecodePending reads pending work (nil for empty input).
func DecodePending(b []byte) (*Pending, error) {
	if len(strings.TrimSpace(string(b))) == 0 || string(b) == "null" {
		return nil, nil
	}
	var p Pending
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("read pending purge: %w", err)
	}
	if p.Version != PendingVersion {
		return nil, fmt.Errorf("pending purge format %d is not supported (want %d)", p.Version, PendingVersion)
	}
	return &p, nil
}

// Summary describes pending work in one line for `stump status`.
func (p *Pending) Summary() string {
	if p == nil || len(p.Items) == 0 {
		return "no purge pending"
	}
	var parts []string
	for _, it := range p.Items {
		r := it.Request
		what := fmt.Sprintf("%d paths, %d keys", len(r.Paths), len(r.Keys))
		if r.All {
			what = "the whole site"
		}
		parts = append(parts, fmt.Sprintf("%s (%s)", it.CDN, what))
	}
	return "purge pending on " + strings.Join(parts, ", ")
}

// MergePending merges two pending records (an older one and a newer failure), so that
// a publish that fails to purge again loses nothing. Requests for the same CDN are
// united: paths and keys joined, All if either asked for it.
func MergePending(older, newer []byte) ([]byte, error) {
	a, err := DecodePending(older)
	if err != nil {
		return nil, err
	}
	b, err := DecodePending(newer)
	if err != nil {
		return nil, err
	}
	switch {
	case a == nil:
		return b.Encode()
	case b == nil:
		return a.Encode()
	}
	byCDN := map[string]int{}
	var out Pending
	for _, src := range [][]PendingItem{a.Items, b.Items} {
		for _, it := range src {
			if it.Request == nil {
				continue
			}
			i, ok := byCDN[it.CDN]
			if !ok {
				cp := it
				req := *it.Request
				cp.Request = &req
				byCDN[it.CDN] = len(out.Items)
				out.Items = append(out.Items, cp)
				continue
			}
			cur := &out.Items[i]
			cur.Request = Merge(cur.Request, it.Request)
			cur.Error, cur.Tries = it.Error, max(cur.Tries, it.Tries)
			if cur.Since.IsZero() || !it.Since.IsZero() && it.Since.Before(cur.Since) {
				cur.Since = it.Since
			}
		}
	}
	return out.Encode()
}

// Merge unites two requests for the same site (b's base URL wins).
func Merge(a, b *Request) *Request {
	out := &Request{Site: b.Site, BaseURL: b.BaseURL}
	if a.All || b.All {
		out.All = true
		out.Reason = "merged pending work: the whole site"
		return out
	}
	out.Paths = union(a.Paths, b.Paths)
	out.Added = union(a.Added, b.Added)
	out.Keys = union(a.Keys, b.Keys)
	out.Reason = fmt.Sprintf("merged pending work: %d URLs, %d keys", len(out.Paths), len(out.Keys))
	return out
}

func union(a, b []string) []string {
	m := map[string]bool{}
	for _, s := range a {
		m[s] = true
	}
	for _, s := range b {
		m[s] = true
	}
	return sortedSet(m)
}
