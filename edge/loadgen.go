package edge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"
)

// LoadOptions configures Load: a constant-rate HTTP load on a loopback server, for the
// edge benchmark (see docs/edge.md).
type LoadOptions struct {
	URL      string        // base URL of the server: http://127.0.0.1:PORT (loopback only)
	Host     string        // Host header of every request
	Paths    []string      // the paths requested
	Zipf     float64       // > 1: pick paths by a Zipf law of this exponent (Paths[0] the most asked); else uniformly
	Rate     int           // requests per second, in total
	Duration time.Duration // how long to send
	Conns    int           // connections (keep-alive), each sending every Conns-th request
	Timeout  time.Duration // per request (default 10 s)
	Seed     uint64

	// LocalIP is the loopback address to send from (default: the system's choice), so
	// that the edge sees separate clients.
	LocalIP string
	// ClientIPs > 0 sends X-Forwarded-For with one of that many client addresses
	// (10.x.y.z), picked uniformly: visitors behind a trusted proxy.
	ClientIPs int
	// Vary turns each request into an attack: "query" appends a random query string
	// (?v=<random>) to the picked path, "path" asks for a random missing path instead.
	Vary string
	// OK reports whether a status counts as a success (default: 200 only).
	OK func(status int) bool
}

// LoadResult is what Load measured. Latencies count from the time a request was due,
// not from when it was sent, so a server that falls behind is not hidden (no
// coordinated omission).
type LoadResult struct {
	Requests   int64         // requests sent
	Errors     int64         // transport errors, bodies cut short, and statuses OK refuses
	Statuses   map[int]int64 // by status
	FirstError string
	Elapsed    time.Duration
	Throughput float64 // completed requests per second
	P50, P90   time.Duration
	P99, P999  time.Duration
	Max        time.Duration
	Late       int64 // requests sent more than 10 ms after they were due
}

func (r *LoadResult) String() string {
	return fmt.Sprintf("%d requests in %s (%.0f/s), errors %d, p50 %s p90 %s p99 %s p99.9 %s max %s, late %d, statuses %v",
		r.Requests, r.Elapsed.Round(time.Millisecond), r.Throughput, r.Errors, r.P50, r.P90, r.P99, r.P999, r.Max, r.Late, r.Statuses)
}

// Load limits: a load test is bounded in rate, duration and count.
const (
	maxLoadRate     = 50000
	maxLoadDuration = 10 * time.Minute
	maxLoadConns    = 1024
)

// Load sends opts.Rate requests a second for opts.Duration over opts.Conns keep-alive
// connections and measures them. It refuses a server that is not on loopback.
func Load(ctx context.Context, opts LoadOptions) (*LoadResult, error) {
	u, err := url.Parse(opts.URL)
	if err != nil {
		return nil, err
	}
	if ip := net.ParseIP(u.Hostname()); u.Scheme != "http" || ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("load: %s is not an http:// loopback address", opts.URL)
	}
	var local net.Addr
	if opts.LocalIP != "" {
		ip := net.ParseIP(opts.LocalIP)
		if ip == nil || !ip.IsLoopback() {
			return nil, fmt.Errorf("load: local address %q is not a loopback address", opts.LocalIP)
		}
		local = &net.TCPAddr{IP: ip}
	}
	switch opts.Vary {
	case "", "query", "path":
	default:
		return nil, fmt.Errorf("load: vary %q is neither query nor path", opts.Vary)
	}
	if opts.OK == nil {
		opts.OK = func(status int) bool { return status == http.StatusOK }
	}
	switch {
	case len(opts.Paths) == 0:
		return nil, errors.New("load: no paths")
	case opts.Rate <= 0 || opts.Rate > maxLoadRate:
		return nil, fmt.Errorf("load: rate %d outside 1..%d", opts.Rate, maxLoadRate)
	case opts.Duration <= 0 || opts.Duration > maxLoadDuration:
		return nil, fmt.Errorf("load: duration %s outside (0, %s]", opts.Duration, maxLoadDuration)
	case opts.Conns <= 0 || opts.Conns > maxLoadConns:
		return nil, fmt.Errorf("load: %d connections outside 1..%d", opts.Conns, maxLoadConns)
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	total := int64(opts.Rate) * int64(opts.Duration) / int64(time.Second)
	interval := time.Second / time.Duration(opts.Rate)
	dialer := &net.Dialer{Timeout: 5 * time.Second, LocalAddr: local}
	tr := &http.Transport{MaxIdleConns: opts.Conns, MaxIdleConnsPerHost: opts.Conns, MaxConnsPerHost: opts.Conns,
		IdleConnTimeout: time.Minute, DisableCompression: true, Proxy: nil, DialContext: dialer.DialContext}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: opts.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	type worker struct {
		lat      []time.Duration
		statuses map[int]int64
		errs     int64
		late     int64
		firstErr string
	}
	workers := make([]*worker, opts.Conns)
	start := time.Now().Add(50 * time.Millisecond)
	var wg sync.WaitGroup
	for w := range workers {
		wk := &worker{statuses: map[int]int64{}, lat: make([]time.Duration, 0, total/int64(opts.Conns)+1)}
		workers[w] = wk
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(opts.Seed, uint64(w)))
			var zipf *rand.Zipf
			if opts.Zipf > 1 && len(opts.Paths) > 1 {
				zipf = rand.NewZipf(r, opts.Zipf, 1, uint64(len(opts.Paths)-1))
			}
			for i := int64(w); i < total; i += int64(opts.Conns) {
				due := start.Add(time.Duration(i) * interval)
				if d := time.Until(due); d > 0 {
					select {
					case <-ctx.Done():
						return
					case <-time.After(d):
					}
				} else if -d > 10*time.Millisecond {
					wk.late++
				}
				if ctx.Err() != nil {
					return
				}
				var p string
				if zipf != nil {
					p = opts.Paths[zipf.Uint64()]
				} else {
					p = opts.Paths[r.IntN(len(opts.Paths))]
				}
				switch opts.Vary {
				case "query":
					p += fmt.Sprintf("?v=%016x", r.Uint64())
				case "path":
					p = fmt.Sprintf("/%016x/", r.Uint64())
				}
				xff := ""
				if opts.ClientIPs > 0 {
					n := r.IntN(opts.ClientIPs)
					xff = fmt.Sprintf("10.%d.%d.%d", n>>16&0xff, n>>8&0xff, n&0xff)
				}
				status, err := loadOne(ctx, client, opts.URL+p, opts.Host, xff)
				wk.lat = append(wk.lat, time.Since(due))
				if err == nil && !opts.OK(status) {
					err = fmt.Errorf("status %d", status)
				}
				if status != 0 {
					wk.statuses[status]++
				}
				if err != nil {
					wk.errs++
					if wk.firstErr == "" {
						wk.firstErr = "GET " + p + ": " + err.Error()
					}
				}
			}
		}()
	}
	wg.Wait()
	res := &LoadResult{Statuses: map[int]int64{}, Elapsed: time.Since(start)}
	var lat []time.Duration
	for _, wk := range workers {
		lat = append(lat, wk.lat...)
		res.Errors += wk.errs
		res.Late += wk.late
		for s, n := range wk.statuses {
			res.Statuses[s] += n
		}
		if res.FirstError == "" {
			res.FirstError = wk.firstErr
		}
	}
	res.Requests = int64(len(lat))
	if res.Elapsed > 0 {
		res.Throughput = float64(res.Requests) / res.Elapsed.Seconds()
	}
	slices.Sort(lat)
	q := func(f float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(f*float64(len(lat))))]
	}
	res.P50, res.P90, res.P99, res.P999 = q(0.50), q(0.90), q(0.99), q(0.999)
	if len(lat) > 0 {
		res.Max = lat[len(lat)-1]
	}
	return res, ctx.Err()
}

// loadOne sends one GET and reads the whole body.
func loadOne(ctx context.Context, client *http.Client, u, host, xff string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", u, nil)
	if err != nil {
		return 0, err
	}
	req.Host = host
	if xff != "" {
		req.Header.Set("X-Forwarded-For", xff)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err == nil && resp.ContentLength >= 0 && n != resp.ContentLength {
		err = fmt.Errorf("body cut short: %d of %d bytes", n, resp.ContentLength)
	}
	return resp.StatusCode, err
}
