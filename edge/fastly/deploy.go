package fastly

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/stump-dev/stump/edge"
	"github.com/stump-dev/stump/purge"
)

// Calls Deploy and Rollback make (https://www.fastly.com/documentation/reference/api/),
// each with the API token in Fastly-Key, form-encoded bodies unless said otherwise:
//
//	GET  /service/{sid}/version                              versions (active, locked)
//	GET  /service/{sid}/version/{v}/vcl                      custom VCLs of a version
//	GET  /service/{sid}/version/{v}/backend                  backends
//	GET  /service/{sid}/version/{v}/healthcheck              health checks
//	GET  /service/{sid}/version/{v}/dictionary               edge dictionaries
//	GET  /service/{sid}/dictionary/{id}/items                a dictionary's items
//	PUT  /service/{sid}/version/{v}/clone                    new draft version
//	POST|PUT /service/{sid}/version/{v}/{backend|healthcheck|vcl}[/{name}]
//	PUT  /service/{sid}/version/{v}/vcl/{name}/main          main VCL
//	POST /service/{sid}/version/{v}/dictionary               a new dictionary
//	PATCH /service/{sid}/dictionary/{id}/items               items (JSON batch)
//	GET  /service/{sid}/version/{v}/validate                 compile check
//	PUT  /service/{sid}/version/{v}/activate                 activation

// DefaultAPI is the Fastly API's base URL.
const DefaultAPI = "https://api.fastly.com"

// TokenEnv is the only place the API token is read from.
const TokenEnv = "FASTLY_API_TOKEN"

// MainVCLName is the name of the custom VCL stump uploads and makes main.
const MainVCLName = "stump_main"

// Client talks to Fastly's API for one service.
type Client struct {
	// Service is the service ID.
	Service string
	// Token is the API token (sent as Fastly-Key, never printed).
	Token purge.Secret
	// API is the base URL (default DefaultAPI; tests point it at a fake).
	API string
	// HTTP sends the calls (default http.DefaultClient).
	HTTP *http.Client
	// Backoff retries 429 and 5xx answers.
	Backoff purge.Backoff
}

func (c *Client) name() string { return "fastly:" + c.Service }

// do sends one call with retries and decodes a JSON answer into out (when not nil).
func (c *Client) do(ctx context.Context, method, path string, form url.Values, jsonBody any, out any) error {
	var body []byte
	ctype := ""
	switch {
	case jsonBody != nil:
		b, err := json.Marshal(jsonBody)
		if err != nil {
			return err
		}
		body, ctype = b, "application/json"
	case form != nil:
		body, ctype = []byte(form.Encode()), "application/x-www-form-urlencoded"
	}
	base := c.API
	if base == "" {
		base = DefaultAPI
	}
	data, _, err := purge.Do(ctx, c.HTTP, c.Backoff, purge.Call{
		CDN:    c.name(),
		Secret: c.Token,
		New: func(ctx context.Context) (*http.Request, error) {
			var r io.Reader
			if body != nil {
				r = strings.NewReader(string(body))
			}
			req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(base, "/")+path, r)
			if err != nil {
				return nil, err
			}
			req.Header.Set("Fastly-Key", string(c.Token))
			req.Header.Set("Accept", "application/json")
			if ctype != "" {
				req.Header.Set("Content-Type", ctype)
			}
			return req, nil
		},
	})
	if err != nil {
		var herr *purge.HTTPError
		if errors.As(err, &herr) && strings.Contains(strings.ToLower(herr.Body), "locked") {
			return &LockedError{Service: c.Service, Path: path, err: err}
		}
		return err
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%s: %s %s: the answer is not the JSON expected: %w", c.name(), method, path, err)
		}
	}
	return nil
}

// LockedError is an edit of a version someone else locked or activated meanwhile.
type LockedError struct {
	Service, Path string
	err           error
}

func (e *LockedError) Error() string {
	return fmt.Sprintf("fastly:%s: the version being edited is locked (someone activated or locked it meanwhile): nothing was activated by this deploy; run it again (%v)", e.Service, e.err)
}

func (e *LockedError) Unwrap() error { return e.err }

// Version is a service version.
type Version struct {
	Number  int    `json:"number"`
	Active  bool   `json:"active"`
	Locked  bool   `json:"locked"`
	Comment string `json:"comment"`
}

type vclObj struct {
	Name    string `json:"name"`
	Main    bool   `json:"main"`
	Content string `json:"content"`
}

type dictObj struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	WriteOnly bool   `json:"write_only"`
}

type item struct {
	Key   string `json:"item_key"`
	Value string `json:"item_value"`
}

func (c *Client) versions(ctx context.Context) ([]Version, error) {
	var vs []Version
	if err := c.do(ctx, "GET", "/service/"+c.Service+"/version", nil, nil, &vs); err != nil {
		return nil, err
	}
	sort.Slice(vs, func(i, j int) bool { return vs[i].Number < vs[j].Number })
	return vs, nil
}

func active(vs []Version) (Version, bool) {
	for _, v := range vs {
		if v.Active {
			return v, true
		}
	}
	return Version{}, false
}

func (c *Client) vpath(v int, rest string) string {
	return "/service/" + c.Service + "/version/" + strconv.Itoa(v) + rest
}

// state is what stump manages in one version.
type state struct {
	vcl          string
	backends     map[string]map[string]string
	healthchecks map[string]map[string]string
	dicts        map[string]dictObj
	items        map[string]map[string]string // dictionary name → items
}

// managed are the fields of backends and health checks stump sets (and compares).
var backendFields = []string{"address", "port", "override_host", "shield", "healthcheck", "use_ssl", "connect_timeout", "first_byte_timeout", "between_bytes_timeout"}
var healthFields = []string{"host", "path", "method", "check_interval", "timeout", "window", "threshold", "initial", "expected_response"}

func (c *Client) read(ctx context.Context, v int) (*state, error) {
	st := &state{backends: map[string]map[string]string{}, healthchecks: map[string]map[string]string{}, dicts: map[string]dictObj{}, items: map[string]map[string]string{}}
	var vcls []vclObj
	if err := c.do(ctx, "GET", c.vpath(v, "/vcl"), nil, nil, &vcls); err != nil {
		return nil, err
	}
	for _, x := range vcls {
		if x.Name == MainVCLName {
			st.vcl = x.Content
		}
	}
	for kind, dst := range map[string]map[string]map[string]string{"backend": st.backends, "healthcheck": st.healthchecks} {
		var objs []map[string]any
		if err := c.do(ctx, "GET", c.vpath(v, "/"+kind), nil, nil, &objs); err != nil {
			return nil, err
		}
		for _, o := range objs {
			name, _ := o["name"].(string)
			if !strings.HasPrefix(name, "stump_") {
				continue
			}
			m := map[string]string{}
			for k, val := range o {
				if val != nil {
					m[k] = fmt.Sprint(val)
				}
			}
			dst[name] = m
		}
	}
	var dicts []dictObj
	if err := c.do(ctx, "GET", c.vpath(v, "/dictionary"), nil, nil, &dicts); err != nil {
		return nil, err
	}
	for _, d := range dicts {
		if d.Name != CountriesDict && d.Name != SecretsDict {
			continue
		}
		st.dicts[d.Name] = d
		var items []item
		if err := c.do(ctx, "GET", "/service/"+c.Service+"/dictionary/"+d.ID+"/items", nil, nil, &items); err != nil {
			return nil, err
		}
		m := map[string]string{}
		for _, it := range items {
			m[it.Key] = it.Value
		}
		st.items[d.Name] = m
	}
	return st, nil
}

// Desired is what a deploy makes the service hold for the plan's sites on it.
type Desired struct {
	// Plan holds the sites on the service.
	Plan         *edge.Plan
	VCL          string
	Backends     map[string]map[string]string
	Healthchecks map[string]map[string]string
	Items        map[string]map[string]string // dictionary → items
}

// Want computes the service objects for the plan's sites on service (their edge.fastly
// names it); secrets are the private dictionary's items (PreviewAuthKey → "Basic ...").
func Want(p *edge.Plan, service string, secrets map[string]string) (*Desired, error) {
	sub := &edge.Plan{Purgers: p.Purgers, Trusted: p.Trusted}
	for _, s := range p.Sites {
		if s.Fastly != nil && s.Fastly.ServiceID == service {
			sub.Sites = append(sub.Sites, s)
			sub.Backends = append(sub.Backends, s.Backend)
		}
	}
	if len(sub.Sites) == 0 {
		return nil, fmt.Errorf("no site has edge.fastly.service_id %s", service)
	}
	vcl, err := VCL(sub)
	if err != nil {
		return nil, err
	}
	d := &Desired{Plan: sub, VCL: string(vcl), Backends: map[string]map[string]string{}, Healthchecks: map[string]map[string]string{},
		Items: map[string]map[string]string{CountriesDict: {}, SecretsDict: {}}}
	for _, s := range sub.Sites {
		name := BackendName(s.Name)
		b := map[string]string{"address": s.Backend.Host, "port": s.Backend.Port, "override_host": s.OriginHost,
			"use_ssl": "false", "connect_timeout": "2000", "first_byte_timeout": "15000", "between_bytes_timeout": "10000",
			"shield": s.Fastly.Shield, "healthcheck": ""}
		if pr := s.Backend.Probe; pr != nil {
			b["healthcheck"] = name
			d.Healthchecks[name] = map[string]string{"host": s.OriginHost, "path": pr.URL, "method": "GET",
				"check_interval": strconv.FormatInt(pr.Interval.Milliseconds(), 10), "timeout": strconv.FormatInt(pr.Timeout.Milliseconds(), 10),
				"window": strconv.Itoa(pr.Window), "threshold": strconv.Itoa(pr.Threshold), "initial": strconv.Itoa(pr.Threshold), "expected_response": "200"}
		}
		d.Backends[name] = b
		if s.PreviewAuthEnv != "" {
			v, ok := secrets[PreviewAuthKey(s.Name)]
			if !ok {
				return nil, fmt.Errorf("%s: edge.preview_auth_env %s is not set in stump's environment: the preview credentials go to the private dictionary %s", s.File, s.PreviewAuthEnv, SecretsDict)
			}
			d.Items[SecretsDict][PreviewAuthKey(s.Name)] = v
		}
	}
	for _, k := range CountryItems(sub) {
		d.Items[CountriesDict][k] = "1"
	}
	return d, nil
}

func differs(have, want map[string]string, fields []string) bool {
	for _, f := range fields {
		if have[f] != want[f] {
			return true
		}
	}
	return false
}

// diff describes the change from st to d, one line per object, and the VCL's unified
// diff. Secrets' values are never shown.
//
// version reports a change that needs a new version (VCL, backends, health checks, a
// new dictionary); items a change of dictionary items only, which needs none.
func diff(st *state, d *Desired) (text string, version, items bool) {
	var b strings.Builder
	changed := false
	objs := func(kind string, have, want map[string]map[string]string, fields []string) {
		for _, n := range sortedKeys(want) {
			h, ok := have[n]
			switch {
			case !ok:
				fmt.Fprintf(&b, "+ %s %s %s\n", kind, n, fieldsText(want[n], fields))
				changed = true
			case differs(h, want[n], fields):
				fmt.Fprintf(&b, "~ %s %s %s (was %s)\n", kind, n, fieldsText(want[n], fields), fieldsText(h, fields))
				changed = true
			}
		}
		for _, n := range sortedKeys(have) {
			if _, ok := want[n]; !ok {
				fmt.Fprintf(&b, "- %s %s (left in place: remove it in Fastly when no site uses it)\n", kind, n)
			}
		}
	}
	objs("backend", st.backends, d.Backends, backendFields)
	objs("healthcheck", st.healthchecks, d.Healthchecks, healthFields)
	for _, dict := range []string{CountriesDict, SecretsDict} {
		have, want := st.items[dict], d.Items[dict]
		if _, ok := st.dicts[dict]; !ok {
			fmt.Fprintf(&b, "+ dictionary %s\n", dict)
			changed = true
		}
		for _, k := range sortedKeys(want) {
			// (A write-only dictionary's items cannot be read back: they are always sent.)
			if hv, ok := have[k]; !ok || hv != want[k] {
				items = true
				if dict == SecretsDict {
					fmt.Fprintf(&b, "~ %s %s (value not shown)\n", dict, k)
				} else {
					fmt.Fprintf(&b, "+ %s %s\n", dict, k)
				}
			}
		}
		for _, k := range sortedKeys(have) {
			if _, ok := want[k]; !ok {
				fmt.Fprintf(&b, "- %s %s\n", dict, k)
				items = true
			}
		}
	}
	if st.vcl != d.VCL {
		changed = true
		fmt.Fprintf(&b, "~ vcl %s (main)\n", MainVCLName)
		b.WriteString(unifiedDiff(st.vcl, d.VCL))
	}
	return b.String(), changed, items
}

func fieldsText(m map[string]string, fields []string) string {
	var parts []string
	for _, f := range fields {
		if v := m[f]; v != "" {
			parts = append(parts, f+"="+v)
		}
	}
	return strings.Join(parts, " ")
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Options tune Deploy and Rollback.
type Options struct {
	// DryRun prints the change and stops before any write.
	DryRun bool
	// Out receives the diff and progress lines.
	Out io.Writer
	// Losing, when set, runs before Rollback activates a version whose VCL cannot
	// read layered atomic deploys while the active one can (also in a dry run); an
	// error stops the rollback.
	Losing func(context.Context) error
}

// ReadsLayers reports whether a main VCL falls back from a deploy's layer to its base.
func ReadsLayers(vcl string) bool { return strings.Contains(vcl, "X-Stump-Fallback") }

// Deploy clones the service's active version, writes d into the clone (backends,
// health checks, dictionaries, the main VCL), validates it, updates the dictionaries'
// items and activates it, printing the change first. It returns the activated version
// (0 when there was nothing to change or DryRun). A validation error activates nothing.
func (c *Client) Deploy(ctx context.Context, d *Desired, o Options) (int, error) {
	out := o.Out
	if out == nil {
		out = io.Discard
	}
	vs, err := c.versions(ctx)
	if err != nil {
		return 0, err
	}
	if len(vs) == 0 {
		return 0, fmt.Errorf("%s: the service has no version", c.name())
	}
	base, ok := active(vs)
	if !ok {
		base = vs[len(vs)-1]
	}
	st, err := c.read(ctx, base.Number)
	if err != nil {
		return 0, err
	}
	text, changed, items := diff(st, d)
	fmt.Fprintf(out, "fastly service %s, active version %d:\n", c.Service, base.Number)
	if !changed && !items {
		fmt.Fprintln(out, "nothing to change")
		return 0, nil
	}
	fmt.Fprint(out, text)
	if o.DryRun {
		fmt.Fprintln(out, "dry run: nothing was changed")
		return 0, nil
	}
	if !changed {
		// Dictionary items are not versioned: the active version sees them at once.
		for _, dict := range []string{CountriesDict, SecretsDict} {
			if err := c.syncItems(ctx, st.dicts[dict].ID, st.items[dict], d.Items[dict]); err != nil {
				return 0, err
			}
		}
		fmt.Fprintf(out, "updated the dictionaries' items; version %d stays active\n", base.Number)
		return 0, nil
	}
	var clone Version
	if err := c.do(ctx, "PUT", c.vpath(base.Number, "/clone"), nil, nil, &clone); err != nil {
		return 0, err
	}
	v := clone.Number
	if v <= base.Number {
		return 0, fmt.Errorf("%s: cloning version %d gave version %d, not a new one", c.name(), base.Number, v)
	}
	fmt.Fprintf(out, "cloned version %d into %d\n", base.Number, v)
	// Health checks before the backends that name them.
	for _, n := range sortedKeys(d.Healthchecks) {
		if err := c.upsert(ctx, v, "healthcheck", n, st.healthchecks, d.Healthchecks[n], healthFields); err != nil {
			return 0, err
		}
	}
	for _, n := range sortedKeys(d.Backends) {
		if err := c.upsert(ctx, v, "backend", n, st.backends, d.Backends[n], backendFields); err != nil {
			return 0, err
		}
	}
	dictIDs := map[string]string{}
	for _, dict := range []string{CountriesDict, SecretsDict} {
		if have, ok := st.dicts[dict]; ok {
			dictIDs[dict] = have.ID
			continue
		}
		form := url.Values{"name": {dict}}
		if dict == SecretsDict {
			form.Set("write_only", "true")
		}
		var created dictObj
		if err := c.do(ctx, "POST", c.vpath(v, "/dictionary"), form, nil, &created); err != nil {
			return 0, err
		}
		dictIDs[dict] = created.ID
	}
	if st.vcl == "" {
		err = c.do(ctx, "POST", c.vpath(v, "/vcl"), url.Values{"name": {MainVCLName}, "content": {d.VCL}, "main": {"true"}}, nil, nil)
	} else {
		err = c.do(ctx, "PUT", c.vpath(v, "/vcl/"+MainVCLName), url.Values{"content": {d.VCL}}, nil, nil)
	}
	if err != nil {
		return 0, err
	}
	if err := c.do(ctx, "PUT", c.vpath(v, "/vcl/"+MainVCLName+"/main"), nil, nil, nil); err != nil {
		return 0, err
	}
	var val struct {
		Status string   `json:"status"`
		Msg    string   `json:"msg"`
		Errors []string `json:"errors"`
	}
	if err := c.do(ctx, "GET", c.vpath(v, "/validate"), nil, nil, &val); err != nil {
		return 0, err
	}
	if val.Status != "ok" {
		return 0, fmt.Errorf("%s: version %d does not validate, nothing was activated (the draft is left for inspection): %s %s",
			c.name(), v, val.Msg, strings.Join(val.Errors, "; "))
	}
	for _, dict := range []string{CountriesDict, SecretsDict} {
		if err := c.syncItems(ctx, dictIDs[dict], st.items[dict], d.Items[dict]); err != nil {
			return 0, err
		}
	}
	// Someone else's activation since we read the service would be silently undone.
	now, err := c.versions(ctx)
	if err != nil {
		return 0, err
	}
	if a, ok := active(now); ok && a.Number != base.Number && base.Active {
		return 0, fmt.Errorf("%s: version %d was activated by someone else while this deploy ran (it started from %d): version %d is left as a draft, nothing was activated; run the deploy again", c.name(), a.Number, base.Number, v)
	}
	if err := c.do(ctx, "PUT", c.vpath(v, "/activate"), nil, nil, nil); err != nil {
		return 0, err
	}
	fmt.Fprintf(out, "activated version %d (was %d)\n", v, base.Number)
	return v, nil
}

func (c *Client) upsert(ctx context.Context, v int, kind, name string, have map[string]map[string]string, want map[string]string, fields []string) error {
	form := url.Values{}
	for _, f := range fields {
		form.Set(f, want[f])
	}
	if h, ok := have[name]; ok {
		if !differs(h, want, fields) {
			return nil
		}
		return c.do(ctx, "PUT", c.vpath(v, "/"+kind+"/"+name), form, nil, nil)
	}
	form.Set("name", name)
	return c.do(ctx, "POST", c.vpath(v, "/"+kind), form, nil, nil)
}

// syncItems makes a dictionary's items want, in one batch.
func (c *Client) syncItems(ctx context.Context, id string, have, want map[string]string) error {
	type op struct {
		Op    string `json:"op"`
		Key   string `json:"item_key"`
		Value string `json:"item_value,omitempty"`
	}
	var ops []op
	for _, k := range sortedKeys(want) {
		if hv, ok := have[k]; !ok || hv != want[k] {
			ops = append(ops, op{"upsert", k, want[k]})
		}
	}
	for _, k := range sortedKeys(have) {
		if _, ok := want[k]; !ok {
			ops = append(ops, op{Op: "delete", Key: k})
		}
	}
	if len(ops) == 0 {
		return nil
	}
	return c.do(ctx, "PATCH", "/service/"+c.Service+"/dictionary/"+id+"/items", nil, map[string]any{"items": ops}, nil)
}

// Rollback activates the version before the active one (the newest older version that
// was activated once, so locked), printing the VCL change first.
func (c *Client) Rollback(ctx context.Context, o Options) (int, error) {
	out := o.Out
	if out == nil {
		out = io.Discard
	}
	vs, err := c.versions(ctx)
	if err != nil {
		return 0, err
	}
	a, ok := active(vs)
	if !ok {
		return 0, fmt.Errorf("%s: no version is active: nothing to roll back", c.name())
	}
	prev := 0
	for _, v := range vs {
		if v.Number < a.Number && v.Locked {
			prev = v.Number
		}
	}
	if prev == 0 {
		return 0, fmt.Errorf("%s: no version before %d was ever activated: nothing to roll back to", c.name(), a.Number)
	}
	cur, err := c.read(ctx, a.Number)
	if err != nil {
		return 0, err
	}
	old, err := c.read(ctx, prev)
	if err != nil {
		return 0, err
	}
	fmt.Fprintf(out, "fastly service %s: activating version %d (active: %d)\n", c.Service, prev, a.Number)
	if cur.vcl != old.vcl {
		fmt.Fprintf(out, "~ vcl %s (main)\n%s", MainVCLName, unifiedDiff(cur.vcl, old.vcl))
	}
	fmt.Fprintln(out, "(edge dictionaries are not versioned: their items stay as they are)")
	if o.Losing != nil && ReadsLayers(cur.vcl) && !ReadsLayers(old.vcl) {
		fmt.Fprintf(out, "version %d cannot read layered atomic deploys (version %d can)\n", prev, a.Number)
		if err := o.Losing(ctx); err != nil {
			return 0, fmt.Errorf("%s: %w", c.name(), err)
		}
	}
	if o.DryRun {
		fmt.Fprintln(out, "dry run: nothing was changed")
		return 0, nil
	}
	if err := c.do(ctx, "PUT", c.vpath(prev, "/activate"), nil, nil, nil); err != nil {
		return 0, err
	}
	fmt.Fprintf(out, "activated version %d (was %d)\n", prev, a.Number)
	return prev, nil
}

// unifiedDiff is a line diff of a and b (common lines as context, 3 around a change).
func unifiedDiff(from, to string) string {
	x, y := strings.Split(from, "\n"), strings.Split(to, "\n")
	if from == "" {
		x = nil
	}
	n, m := len(x), len(y)
	// lcs[i][j]: the longest common subsequence of x[i:] and y[j:].
	lcs := make([][]int32, n+1)
	for i := range lcs {
		lcs[i] = make([]int32, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if x[i] == y[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	type line struct {
		op   byte
		text string
	}
	var lines []line
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && x[i] == y[j]:
			lines = append(lines, line{' ', x[i]})
			i++
			j++
		case j < m && (i == n || lcs[i][j+1] >= lcs[i+1][j]):
			lines = append(lines, line{'+', y[j]})
			j++
		default:
			lines = append(lines, line{'-', x[i]})
			i++
		}
	}
	var b strings.Builder
	last := -1
	for k, l := range lines {
		if l.op == ' ' {
			near := false
			for d := -3; d <= 3; d++ {
				if k+d >= 0 && k+d < len(lines) && lines[k+d].op != ' ' {
					near = true
					break
				}
			}
			if !near {
				continue
			}
		}
		if last >= 0 && k != last+1 {
			b.WriteString("  ...\n")
		}
		fmt.Fprintf(&b, "  %c %s\n", l.op, l.text)
		last = k
	}
	return b.String()
}
