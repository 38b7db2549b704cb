package fastly

import (
	"bytes"
	"fmt"

	"github.com/stump-dev/stump/edge"
)

// SmokeTests are falco unit tests of the generated VCL for the plan's own sites
// (`stump edge check --fastly` runs them): each host and alias routes to its site and
// backend, an unknown host is a 404, the site's security headers are set, WordPress
// probes and blocked countries get the blocked answer, and a preview label that is no
// deploy id is a 404.
func SmokeTests(p *edge.Plan) []byte {
	var b bytes.Buffer
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	n := 0
	test := func(scope, suite, body string) {
		n++
		w("// @scope: %s\n// @suite: %s\nsub test_%d {\n%s}\n\n", scope, suite, n, body)
	}
	test("recv", "an unknown host is a 404", "    set req.http.Host = \"unknown.invalid\";\n    set req.url = \"/\";\n    testing.call_subroutine(\"vcl_recv\");\n    assert.error(404);\n")
	for _, s := range p.Sites {
		for _, h := range append([]string{s.Host}, s.Aliases...) {
			test("recv", fmt.Sprintf("%s routes to site %s", h, s.Name), fmt.Sprintf(
				"    set req.http.Host = %q;\n    set req.url = \"/\";\n    testing.call_subroutine(\"vcl_recv\");\n    assert.not_error();\n    assert.equal(req.http.X-Stump-Site, %q);\n    assert.equal(req.http.Host, %q);\n    assert.equal(req.backend, F_%s);\n",
				h, s.Name, s.Host, BackendName(s.Name)))
		}
		var hd bytes.Buffer
		for _, h := range s.Headers {
			fmt.Fprintf(&hd, "    assert.equal(resp.http.%s, %s);\n", h.Name, str(h.Value))
		}
		test("deliver", fmt.Sprintf("%s: security headers", s.Name), fmt.Sprintf(
			"    set req.http.X-Stump-Site = %q;\n    set req.http.X-Stump-Url = \"/\";\n    set resp.status = 200;\n    set resp.http.Server = \"AmazonS3\";\n    testing.call_subroutine(\"vcl_deliver\");\n%s    assert.is_notset(resp.http.Server);\n",
			s.Name, hd.String()))
		if s.WordPress {
			test("recv", fmt.Sprintf("%s: WordPress probes are blocked", s.Name), fmt.Sprintf(
				"    set req.http.Host = %q;\n    set req.url = \"/xmlrpc.php\";\n    testing.call_subroutine(\"vcl_recv\");\n    assert.error(403);\n    assert.equal(req.http.X-Stump-Block, \"1\");\n", s.Host))
		}
		for _, c := range s.Countries {
			test("recv", fmt.Sprintf("%s: visitors from %s are blocked", s.Name, c), fmt.Sprintf(
				"    testing.inject_variable(\"client.geo.country_code\", %q);\n    set req.http.Host = %q;\n    set req.url = \"/\";\n    testing.call_subroutine(\"vcl_recv\");\n    assert.error(403);\n", c, s.Host))
		}
		if s.PreviewHost != "" {
			test("recv", fmt.Sprintf("%s: a preview label that is no deploy id is a 404", s.Name), fmt.Sprintf(
				"    set req.http.Host = \"www.%s\";\n    set req.url = \"/\";\n    testing.call_subroutine(\"vcl_recv\");\n    assert.error(404);\n", s.PreviewHost))
		}
	}
	return b.Bytes()
}
