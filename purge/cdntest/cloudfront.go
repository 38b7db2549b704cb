package cdntest

import (
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// CloudFront limits the fake enforces.
const (
	CloudFrontMaxPaths           = 3000 // paths a request, and file paths in flight
	CloudFrontMaxWildcardsFlight = 15   // wildcard paths in flight
	cloudFrontNS                 = "http://cloudfront.amazonaws.com/doc/2020-05-31/"
)

// CloudFront is a fake CloudFront API (REST-XML, version 2020-05-31) for one
// distribution, for the real SDK pointed at it with BaseEndpoint:
//
//	POST /2020-05-31/distribution/{id}/invalidation        CreateInvalidation
//	GET  /2020-05-31/distribution/{id}/invalidation        ListInvalidations
//	GET  /2020-05-31/distribution/{id}/invalidation/{iid}  GetInvalidation
//
// It checks SigV4 signing with the test access key, the InvalidationBatch XML
// (Quantity equal to the items, 1 to 3,000 paths starting with "/", "*" only at the
// end), CallerReference uniqueness (the same reference with other paths is a breach;
// with the same paths it is an idempotent retry), and the in-flight limits (15
// wildcard paths, 3,000 file paths). Invalidations stay InProgress until Complete, or
// until AutoComplete GetInvalidation calls have seen them.
type CloudFront struct {
	*httptest.Server
	faults
	reporter
	Distribution, AccessKey string
	// AutoComplete completes an invalidation on its n-th GetInvalidation (0: never).
	AutoComplete int

	mu       sync.Mutex
	requests int
	byOp     map[string]int
	invs     []*fakeInvalidation
	refs     map[string]*fakeInvalidation
	seq      int
}

type fakeInvalidation struct {
	id, ref string
	paths   []string
	done    bool
	gets    int
	created time.Time
	ours    bool // created through the API (not preloaded)
}

// NewCloudFront starts a fake for one distribution; t is failed on any breach.
func NewCloudFront(t testing.TB, distribution, accessKey string) *CloudFront {
	c := &CloudFront{Distribution: distribution, AccessKey: accessKey, reporter: reporter{t: t}, byOp: map[string]int{}, refs: map[string]*fakeInvalidation{}}
	c.Server = httptest.NewServer(http.HandlerFunc(c.serve))
	if t != nil {
		t.Cleanup(c.Close)
	}
	return c
}

// Requests counts every request received (failed ones included).
func (c *CloudFront) Requests() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.requests
}

// Ops counts requests by operation ("CreateInvalidation", "GetInvalidation",
// "ListInvalidations").
func (c *CloudFront) Ops() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]int{}
	for k, v := range c.byOp {
		out[k] = v
	}
	return out
}

// Batches are the path lists of the invalidations created through the API.
func (c *CloudFront) Batches() [][]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out [][]string
	for _, inv := range c.invs {
		if inv.ours {
			out = append(out, slices.Clone(inv.paths))
		}
	}
	return out
}

// Paths are all paths invalidated through the API.
func (c *CloudFront) Paths() []string {
	var out []string
	for _, b := range c.Batches() {
		out = append(out, b...)
	}
	return out
}

// AddInFlight preloads an invalidation in progress (made by someone else) and returns
// its ID.
func (c *CloudFront) AddInFlight(paths ...string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.add("other-"+fmt.Sprint(c.seq), paths, false).id
}

// Complete marks every invalidation completed.
func (c *CloudFront) Complete() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, inv := range c.invs {
		inv.done = true
	}
}

func (c *CloudFront) add(ref string, paths []string, ours bool) *fakeInvalidation {
	c.seq++
	inv := &fakeInvalidation{id: fmt.Sprintf("I%04dFAKE", c.seq), ref: ref, paths: paths, created: time.Date(2026, 1, 1, 0, 0, c.seq, 0, time.UTC), ours: ours}
	c.invs = append(c.invs, inv)
	c.refs[ref] = inv
	return inv
}

func (c *CloudFront) inFlight() (wild, files int) {
	for _, inv := range c.invs {
		if inv.done {
			continue
		}
		for _, p := range inv.paths {
			if strings.HasSuffix(p, "*") {
				wild++
			} else {
				files++
			}
		}
	}
	return wild, files
}

func (c *CloudFront) serve(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	c.requests++
	c.mu.Unlock()
	body, _ := io.ReadAll(r.Body)
	auth := r.Header.Get("Authorization")
	if !strings.HasPrefix(auth, "AWS4-HMAC-SHA256 Credential="+c.AccessKey+"/") || !strings.Contains(auth, "/cloudfront/aws4_request") || r.Header.Get("X-Amz-Date") == "" {
		c.breach("%s %s: not SigV4-signed for cloudfront with the test access key", r.Method, r.URL.Path)
		c.xmlError(w, http.StatusForbidden, "AccessDenied", "Access denied")
		return
	}
	base := "/2020-05-31/distribution/" + c.Distribution + "/invalidation"
	var op string
	switch {
	case r.Method == http.MethodPost && r.URL.Path == base:
		op = "CreateInvalidation"
	case r.Method == http.MethodGet && r.URL.Path == base:
		op = "ListInvalidations"
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, base+"/"):
		op = "GetInvalidation"
	default:
		c.breach("%s %s is not an invalidation call of distribution %s", r.Method, r.URL.Path, c.Distribution)
		c.xmlError(w, http.StatusNotFound, "NoSuchDistribution", "The specified distribution does not exist.")
		return
	}
	c.mu.Lock()
	c.byOp[op]++
	c.mu.Unlock()
	if f, ok := c.next(); ok {
		code := f.Code
		if code == "" {
			code = "ServiceUnavailable"
			if f.Status == http.StatusTooManyRequests || f.Status == http.StatusBadRequest {
				code = "Throttling"
			}
		}
		if f.RetryAfter != "" {
			w.Header().Set("Retry-After", f.RetryAfter)
		}
		c.xmlError(w, f.Status, code, "injected failure")
		return
	}
	switch op {
	case "CreateInvalidation":
		c.create(w, body)
	case "ListInvalidations":
		c.list(w)
	case "GetInvalidation":
		c.get(w, strings.TrimPrefix(r.URL.Path, base+"/"))
	}
}

type xmlBatch struct {
	XMLName xml.Name `xml:"InvalidationBatch"`
	Paths   struct {
		Quantity *int     `xml:"Quantity"`
		Items    []string `xml:"Items>Path"`
	} `xml:"Paths"`
	CallerReference string `xml:"CallerReference"`
}

func (c *CloudFront) create(w http.ResponseWriter, body []byte) {
	var b xmlBatch
	if err := xml.Unmarshal(body, &b); err != nil {
		c.breach("CreateInvalidation body is not an InvalidationBatch: %v", err)
		c.xmlError(w, http.StatusBadRequest, "MalformedInput", err.Error())
		return
	}
	if b.XMLName.Space != cloudFrontNS {
		c.breach("InvalidationBatch namespace %q, want %q", b.XMLName.Space, cloudFrontNS)
	}
	switch {
	case b.Paths.Quantity == nil || *b.Paths.Quantity != len(b.Paths.Items):
		c.breach("Paths.Quantity does not match the %d items", len(b.Paths.Items))
		c.xmlError(w, http.StatusBadRequest, "InconsistentQuantities", "quantity")
		return
	case len(b.Paths.Items) == 0:
		c.breach("an invalidation without paths")
		c.xmlError(w, http.StatusBadRequest, "InvalidArgument", "no paths")
		return
	case len(b.Paths.Items) > CloudFrontMaxPaths:
		c.breach("an invalidation of %d paths: the limit is %d a request", len(b.Paths.Items), CloudFrontMaxPaths)
		c.xmlError(w, http.StatusRequestEntityTooLarge, "BatchTooLarge", "too many paths")
		return
	case strings.TrimSpace(b.CallerReference) == "":
		c.breach("an invalidation without CallerReference")
		c.xmlError(w, http.StatusBadRequest, "InvalidArgument", "CallerReference")
		return
	}
	seen := map[string]bool{}
	newWild, newFiles := 0, 0
	for _, p := range b.Paths.Items {
		if !strings.HasPrefix(p, "/") || strings.Contains(strings.TrimSuffix(p, "*"), "*") || strings.ContainsAny(p, " \t\n") {
			c.breach("invalidation path %q: paths start with / and may end with one *", p)
		}
		if seen[p] {
			c.breach("invalidation path %q sent twice in one batch", p)
		}
		seen[p] = true
		if strings.HasSuffix(p, "*") {
			newWild++
		} else {
			newFiles++
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if prev, ok := c.refs[b.CallerReference]; ok {
		if !slices.Equal(prev.paths, b.Paths.Items) {
			c.breach("CallerReference %q reused for another batch", b.CallerReference)
			c.xmlErrorLocked(w, http.StatusConflict, "InvalidationBatchAlreadyExists", "batch exists")
			return
		}
		c.writeInvalidation(w, http.StatusCreated, prev)
		return
	}
	wild, files := c.inFlight()
	if wild+newWild > CloudFrontMaxWildcardsFlight {
		c.breach("%d wildcard paths in flight plus %d new: the limit is %d", wild, newWild, CloudFrontMaxWildcardsFlight)
		c.xmlErrorLocked(w, http.StatusBadRequest, "TooManyInvalidationsInProgress", "wildcards in flight")
		return
	}
	if files+newFiles > CloudFrontMaxPaths {
		c.breach("%d file paths in flight plus %d new: the limit is %d", files, newFiles, CloudFrontMaxPaths)
		c.xmlErrorLocked(w, http.StatusBadRequest, "TooManyInvalidationsInProgress", "files in flight")
		return
	}
	inv := c.add(b.CallerReference, slices.Clone(b.Paths.Items), true)
	w.Header().Set("Location", c.URL+"/2020-05-31/distribution/"+c.Distribution+"/invalidation/"+inv.id)
	c.writeInvalidation(w, http.StatusCreated, inv)
}

func (c *CloudFront) get(w http.ResponseWriter, id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, inv := range c.invs {
		if inv.id == id {
			inv.gets++
			if c.AutoComplete > 0 && inv.gets >= c.AutoComplete {
				inv.done = true
			}
			c.writeInvalidation(w, http.StatusOK, inv)
			return
		}
	}
	c.xmlErrorLocked(w, http.StatusNotFound, "NoSuchInvalidation", "The specified invalidation does not exist.")
}

func (c *CloudFront) list(w http.ResponseWriter) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+`<InvalidationList xmlns="%s"><Marker></Marker><MaxItems>100</MaxItems><IsTruncated>false</IsTruncated><Quantity>%d</Quantity>`, cloudFrontNS, len(c.invs))
	if len(c.invs) > 0 {
		b.WriteString("<Items>")
		for i := len(c.invs) - 1; i >= 0; i-- { // newest first
			inv := c.invs[i]
			fmt.Fprintf(&b, "<InvalidationSummary><Id>%s</Id><CreateTime>%s</CreateTime><Status>%s</Status></InvalidationSummary>", inv.id, inv.created.Format(time.RFC3339), status(inv))
		}
		b.WriteString("</Items>")
	}
	b.WriteString("</InvalidationList>")
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(http.StatusOK)
	io.WriteString(w, b.String())
}

func status(inv *fakeInvalidation) string {
	if inv.done {
		return "Completed"
	}
	return "InProgress"
}

func (c *CloudFront) writeInvalidation(w http.ResponseWriter, code int, inv *fakeInvalidation) {
	var b strings.Builder
	fmt.Fprintf(&b, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+`<Invalidation xmlns="%s"><Id>%s</Id><Status>%s</Status><CreateTime>%s</CreateTime><InvalidationBatch><Paths><Quantity>%d</Quantity><Items>`,
		cloudFrontNS, inv.id, status(inv), inv.created.Format(time.RFC3339), len(inv.paths))
	for _, p := range inv.paths {
		b.WriteString("<Path>")
		xml.EscapeText(&b, []byte(p))
		b.WriteString("</Path>")
	}
	b.WriteString("</Items></Paths><CallerReference>")
	xml.EscapeText(&b, []byte(inv.ref))
	b.WriteString("</CallerReference></InvalidationBatch></Invalidation>")
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(code)
	io.WriteString(w, b.String())
}

func (c *CloudFront) xmlError(w http.ResponseWriter, status int, code, msg string) {
	c.xmlErrorLocked(w, status, code, msg)
}

func (c *CloudFront) xmlErrorLocked(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(status)
	typ := "Sender"
	if status >= 500 {
		typ = "Receiver"
	}
	var m strings.Builder
	xml.EscapeText(&m, []byte(msg))
	fmt.Fprintf(w, `<?xml version="1.0"?>`+"\n"+`<ErrorResponse xmlns="%s"><Error><Type>%s</Type><Code>%s</Code><Message>%s</Message></Error><RequestId>fake-request</RequestId></ErrorResponse>`, cloudFrontNS, typ, code, m.String())
}
