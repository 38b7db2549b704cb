// Package fastly renders the edge plan (package edge) as Fastly VCL, and deploys it to
// a Fastly service through Fastly's API (docs/fastly.md).
//
// The generated VCL is the service's main custom VCL. It relies on objects of the
// service version that Deploy manages through the API and that Fastly declares ahead
// of the custom VCL when it compiles a version: one backend per site (F_stump_<site>)
// and the edge dictionaries stump_blocked_countries (keys "<site>:<CC>") and
// stump_secrets (private; "<site>.preview_auth"). Preamble renders the same
// declarations for local tools (falco), which have no service to read them from.
package fastly

import (
	"bytes"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/stump-dev/stump/edge"
)

// Dictionary names (edge dictionaries of the service).
const (
	// CountriesDict holds "<site>:<CC>" → "1" for every blocked country of every site:
	// a list change is a dictionary update, not a new service version.
	CountriesDict = "stump_blocked_countries"
	// SecretsDict (write-only) holds "<site>.preview_auth" → "Basic <base64 user:password>".
	SecretsDict = "stump_secrets"
)

// Internal request headers: set by the VCL only (cleared on every client request).
var internalHeaders = []string{
	"X-Stump-Site", "X-Stump-Url", "X-Stump-Path", "X-Stump-Deploy", "X-Stump-Phase",
	"X-Stump-NotFound", "X-Stump-Block", "X-Stump-Location", "X-Stump-Preview",
	"X-Stump-Origin-Host", "X-Stump-Raw-Host", "X-Stump-File", "X-Stump-Q",
	"X-Stump-Auth", "X-Stump-Listed", "X-Stump-Error", "X-Stump-Synth", "X-Stump-Country",
	"X-Stump-Key", "X-Stump-Over", "X-Stump-Shielded", "X-Stump-Body", "X-Stump-Base",
	"X-Stump-Fallback",
}

// amzHeaders are the S3 response headers the edge removes.
var amzHeaders = []string{
	"x-amz-meta-surrogate-key", "x-amz-meta-sha256", "x-amz-meta-deploy", "x-amz-meta-ids",
	"x-amz-request-id", "x-amz-id-2", "x-amz-version-id", "x-amz-delete-marker",
	"x-amz-expiration", "x-amz-server-side-encryption", "x-amz-storage-class",
	"x-amz-website-redirect-location", "x-amz-error-code", "x-amz-error-message",
	"x-amz-error-detail-key", "x-amz-checksum-sha256", "x-amz-checksum-crc32",
	"x-amz-checksum-crc32c", "x-amz-checksum-crc64nvme", "x-amz-checksum-type",
	"x-amz-mp-parts-count", "x-amz-bucket-region", "x-amz-meta-mtime",
	"x-amz-meta-header-content-disposition", "x-amz-meta-base", "x-amz-meta-tombstone",
}

// gzipTypes are the content types the edge compresses (beresp.gzip).
const gzipTypes = `(?i)^(text/|application/(javascript|json|xml|rss\+xml|atom\+xml|ld\+json|manifest\+json|xhtml\+xml)|image/svg\+xml)`

// unreserved are the characters RFC 3986 lets a URL carry unescaped: their
// percent-encodings are decoded before any rule looks at the URL.
const unreserved = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"

var identRE = regexp.MustCompile(`[^A-Za-z0-9_]`)

// BackendName is the name of a site's backend in the service ("stump_<site>", with
// characters other than letters, digits and _ as _); VCL calls it F_<name>.
func BackendName(site string) string { return "stump_" + identRE.ReplaceAllString(site, "_") }

// ident is a VCL identifier made of a site's name (rate counters, penalty boxes).
func ident(prefix, site string) string { return prefix + identRE.ReplaceAllString(site, "_") }

// str quotes s as a Fastly VCL long string {"s"}: no escapes are processed in it, so
// regexes with % and \ stay as written.
func str(s string) string { return `{"` + s + `"}` }

func dur(d time.Duration) string {
	if d%time.Second == 0 {
		return fmt.Sprintf("%ds", int64(d/time.Second))
	}
	return fmt.Sprintf("%dms", d.Milliseconds())
}

// Check refuses a plan the Fastly VCL cannot render: two sites whose names give the
// same VCL identifier.
func Check(p *edge.Plan) error {
	seen := map[string]string{}
	for _, s := range p.Sites {
		n := BackendName(s.Name)
		if other, ok := seen[n]; ok {
			return fmt.Errorf("%s: sites %s and %s give the same Fastly backend name %s: rename one", s.File, other, s.Name, n)
		}
		seen[n] = s.Name
		if strings.Contains(s.BlockedBody, `"}`) {
			return fmt.Errorf(`%s: edge.defenses.blocked_body may not contain "}`, s.File)
		}
	}
	return nil
}

// RateWindow is the Fastly rate counter window (1, 10 or 60 seconds) closest above
// per, and the per-second limit that window checks for requests per per (at least 1).
func RateWindow(r *edge.RateLimit) (window, limit int) {
	secs := r.Per.Seconds()
	switch {
	case secs <= 1:
		window = 1
	case secs <= 10:
		window = 10
	default:
		window = 60
	}
	limit = int(float64(r.Requests)/secs + 0.999999)
	if limit < 1 {
		limit = 1
	}
	return window, limit
}

// VCL renders the plan as the service's main custom VCL.
func VCL(p *edge.Plan) ([]byte, error) {
	if err := Check(p); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	render(&b, p)
	return annotate(b.Bytes()), nil
}

// scopes are the subroutines' Fastly scopes, for linters (falco reads "@scope:").
var scopes = map[string]string{
	"stump_normalize_path": "recv", "stump_route": "recv", "stump_preview": "recv",
	"stump_backend": "recv", "stump_query": "recv", "stump_country": "recv",
	"stump_defend": "recv", "stump_redirect": "recv", "stump_fetch": "recv",
	"stump_block": "recv", "stump_rate_": "recv, miss", "stump_limit_miss": "miss",
	"stump_not_found_ttl": "fetch", "stump_fetch_site": "fetch", "stump_strip_amz": "fetch",
	"stump_hygiene": "deliver", "stump_headers": "deliver", "stump_default_headers": "deliver",
	"stump_blocked": "error",
}

// annotate puts an "// @scope: ..." line before each of stump's subroutines.
func annotate(vcl []byte) []byte {
	var out bytes.Buffer
	for _, line := range strings.SplitAfter(string(vcl), "\n") {
		if name, ok := strings.CutPrefix(line, "sub stump_"); ok {
			name = "stump_" + strings.TrimSuffix(strings.TrimSpace(name), " {")
			sc, found := scopes[name]
			if !found && strings.HasPrefix(name, "stump_rate_") {
				sc, found = scopes["stump_rate_"]
			}
			if found {
				out.WriteString("// @scope: " + sc + "\n")
			}
		}
		out.WriteString(line)
	}
	return out.Bytes()
}

// Preamble is what Fastly declares ahead of the main VCL from the service's
// configuration that Deploy writes: the sites' backends and the dictionaries with their
// items (secrets holds the private dictionary's items; nil: empty). Local tools (falco)
// lint and run Preamble + VCL.
func Preamble(p *edge.Plan, secrets map[string]string) []byte {
	var b bytes.Buffer
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("# What Fastly declares from the service's configuration (stump edge deploy --fastly\n# writes it): for local tools only, never uploaded.\n\n")
	for _, s := range p.Sites {
		be := s.Backend
		host, port := be.Host, be.Port
		w("backend F_%s {\n    .host = %q;\n    .port = %q;\n    .connect_timeout = 2s;\n    .first_byte_timeout = 15s;\n    .between_bytes_timeout = 10s;\n", BackendName(s.Name), host, port)
		if be.Probe != nil {
			pr := be.Probe
			w("    .probe = {\n        .request = \"GET %s HTTP/1.1\" \"Host: %s\" \"Connection: close\";\n        .expected_response = 200;\n        .interval = %s;\n        .timeout = %s;\n        .window = %d;\n        .threshold = %d;\n        .initial = %d;\n    }\n",
				pr.URL, be.OriginHost, dur(pr.Interval), dur(pr.Timeout), pr.Window, pr.Threshold, pr.Threshold)
		}
		w("}\n\n")
	}
	w("table %s {\n", CountriesDict)
	for _, k := range CountryItems(p) {
		w("    %q: \"1\",\n", k)
	}
	w("}\n\ntable %s {\n", SecretsDict)
	keys := make([]string, 0, len(secrets))
	for k := range secrets {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		w("    %q: %q,\n", k, secrets[k])
	}
	w("}\n\n")
	return b.Bytes()
}

// CountryItems are the keys of the blocked-countries dictionary ("<site>:<CC>"), sorted.
func CountryItems(p *edge.Plan) []string {
	var out []string
	for _, s := range p.Sites {
		for _, c := range s.Countries {
			out = append(out, s.Name+":"+c)
		}
	}
	sort.Strings(out)
	return out
}

// PreviewAuthKey is the key of a site's preview credentials in SecretsDict.
func PreviewAuthKey(site string) string { return site + ".preview_auth" }

func hexPattern(c byte) string {
	h := fmt.Sprintf("%02X", c)
	var b strings.Builder
	b.WriteByte('%')
	for i := 0; i < 2; i++ {
		if h[i] >= 'A' && h[i] <= 'F' {
			fmt.Fprintf(&b, "[%c%c]", h[i], h[i]+'a'-'A')
		} else {
			b.WriteByte(h[i])
		}
	}
	return b.String()
}

func render(b *bytes.Buffer, p *edge.Plan) {
	w := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	sites := p.Sites
	var preview, block, geo bool
	for _, s := range sites {
		preview = preview || s.PreviewHost != ""
		block = block || s.WordPress || len(s.Countries) > 0 || s.Rate != nil
		geo = geo || len(s.Countries) > 0
	}
	w("# Generated by `stump edge vcl --fastly` from the workspace's site.yaml files: do not\n")
	w("# edit, regenerate (docs/fastly.md explains every part). Upload it as the service's\n")
	w("# main custom VCL with `stump edge deploy --fastly`, which also writes the backends\n")
	w("# (F_stump_<site>) and edge dictionaries (%s, %s) it uses.\n\n", CountriesDict, SecretsDict)
	for _, s := range sites {
		if s.Rate != nil {
			w("# Rate limiting needs Fastly's rate-limiting feature on the account.\n")
			w("ratecounter %s {}\npenaltybox %s {}\n\n", ident("stump_rc_", s.Name), ident("stump_pb_", s.Name))
		}
	}

	// dispatch writes a subroutine with one branch per site.
	dispatch := func(name, cond string, call func(s *edge.Site) string) {
		w("sub %s {\n", name)
		first := true
		for _, s := range sites {
			body := call(s)
			if body == "" {
				continue
			}
			kw := "if"
			if !first {
				kw = "} elsif"
			}
			first = false
			w("    %s (%s == %q) {\n%s", kw, cond, s.Name, body)
		}
		if !first {
			w("    }\n")
		}
		w("}\n\n")
	}

	w("sub vcl_recv {\n")
	w("    if (req.restarts == 0) {\n")
	for _, h := range internalHeaders {
		w("        unset req.http.%s;\n", h)
	}
	w(`        # The visitor's address, kept across shielding (a shield's client.ip is the edge).
        if (fastly.ff.visits_this_service == 0) {
            set req.http.Fastly-Client-IP = client.ip;
        }
        set req.http.X-Stump-Raw-Host = regsub(req.http.Host, ":[0-9]+$", "");
        set req.http.Host = std.tolower(req.http.X-Stump-Raw-Host);
        call stump_normalize_path;
        call stump_route;
    }
    # An answer decided in vcl_deliver (which cannot raise errors) comes back here.
    if (req.http.X-Stump-Error == "404") {
        error 404 "Not Found";
    }
    if (req.http.X-Stump-Error == "503") {
        error 503 "Service Unavailable";
    }
    if (req.http.X-Stump-Error == "401") {
        set req.http.X-Stump-Auth = "1";
        error 401 "Unauthorized";
    }
    # URL purges through the edge need the API token.
    if (req.method == "FASTLYPURGE") {
        set req.http.Fastly-Purge-Requires-Auth = "1";
    }
    if (!req.http.X-Stump-Site) {
        error 404 "Not Found";
    }
    call stump_backend;

#FASTLY recv

    if (req.restarts == 0) {
        if (req.backend.is_shield) {
            # The shield POP resolves the origin path; this POP caches what it answers.
            set req.http.X-Stump-Shielded = "1";
        }
        call stump_defend;
        if (req.method != "GET" && req.method != "HEAD") {
            error 405 "Method Not Allowed";
        }
        call stump_query;
        call stump_redirect;
        # stump's own objects, and paths that climb out of the site, are never served.
        if (req.url ~ {"(?i)^/+(_|%%5f)stump([/?]|%%2f|$)"} ||
                req.url ~ {"(?i)(/|%%2f)(\.|%%2e){1,2}([/?]|%%2f|$)"}) {
            set req.http.X-Stump-NotFound = "1";
        }
        set req.http.X-Stump-Url = req.url;
    }
    # Nothing on a static site depends on them; they would only make the cache pass.
    unset req.http.Cookie;
    unset req.http.Authorization;
    if (!req.http.X-Stump-Shielded) {
        call stump_fetch;
    } else {
        set req.http.X-Stump-Path = req.http.X-Stump-Url;
    }
    return (lookup);
}

`)

	// Normalisation.
	w(`# Normalisation before any rule reads the URL: an absolute URL becomes its path,
# percent-encoded unreserved characters are decoded (/%%77p-login.php is
# /wp-login.php), the other escapes are upper-cased, and runs of slashes in the path
# become one. A "%%" that starts no escape is refused, so nothing is decoded twice.
sub stump_normalize_path {
    if (req.url ~ "(?i)^https?://") {
        set req.url = regsub(req.url, "(?i)^https?://[^/?]*", "");
    }
    if (req.url !~ "^/" && req.method != "OPTIONS") {
        error 400 "Bad Request";
    }
    if (req.url ~ {"%%"}) {
        if (req.url ~ {"%%([^0-9A-Fa-f]|[0-9A-Fa-f][^0-9A-Fa-f]|[0-9A-Fa-f]?$)"}) {
            error 400 "Bad Request";
        }
`)
	for i := 0; i < len(unreserved); i++ {
		w("        set req.url = regsuball(req.url, %s, %s);\n", str(hexPattern(unreserved[i])), str(string(unreserved[i])))
	}
	for c := byte('a'); c <= 'f'; c++ {
		w("        set req.url = regsuball(req.url, {\"%%%c([0-9A-Fa-f])\"}, {\"%%%c\\1\"});\n", c, c-'a'+'A')
	}
	for c := byte('a'); c <= 'f'; c++ {
		w("        set req.url = regsuball(req.url, {\"%%([0-9A-F])%c\"}, {\"%%\\1%c\"});\n", c, c-'a'+'A')
	}
	w(`    }
    if (req.url ~ "^[^?]*//") {
        set req.http.X-Stump-Q = regsub(req.url, "^[^?]*", "");
        set req.url = regsuball(regsub(req.url, "\?.*$", ""), "//+", "/") + req.http.X-Stump-Q;
        unset req.http.X-Stump-Q;
    }
}

`)

	// Routing.
	w("# Routing by Host: the site, its canonical host (aliases share its cache) and, for\n# previews, the deploy named by the first label.\nsub stump_route {\n")
	for i, s := range sites {
		kw := "if"
		if i > 0 {
			kw = "} elsif"
		}
		conds := []string{fmt.Sprintf("req.http.Host == %q", s.Host)}
		for _, a := range s.Aliases {
			conds = append(conds, fmt.Sprintf("req.http.Host == %q", a))
		}
		w("    %s (%s) {\n", kw, strings.Join(conds, " || "))
		w("        set req.http.X-Stump-Site = %q;\n        set req.http.Host = %q;\n", s.Name, s.Host)
		if s.PreviewHost != "" {
			w("    } elsif (req.http.Host ~ %s) {\n", str(`^[a-z0-9][a-z0-9_-]*\.`+regexp.QuoteMeta(s.PreviewHost)+"$"))
			w("        set req.http.X-Stump-Site = %q;\n", s.Name)
			w("        call stump_preview;\n")
			if s.PreviewAuthEnv != "" {
				w(`        # Previews need basic authentication: "Basic <base64 user:password>" in the
        # private dictionary %s.
        if (table.lookup(%s, %q, "") !~ "^Basic ." ||
                !digest.secure_is_equal(req.http.Authorization, table.lookup(%s, %q, ""))) {
            set req.http.X-Stump-Auth = "1";
            error 401 "Unauthorized";
        }
`, SecretsDict, SecretsDict, PreviewAuthKey(s.Name), SecretsDict, PreviewAuthKey(s.Name))
			}
		}
	}
	if len(sites) > 0 {
		w("    }\n")
	}
	w("}\n\n")
	if preview {
		w(`# A preview host's first label is the deploy id, lower-cased; a label that is not a
# deploy id never reaches the origin.
sub stump_preview {
    set req.http.X-Stump-Preview = "1";
    set req.http.X-Stump-Deploy = std.tolower(regsub(req.http.X-Stump-Raw-Host, "\..*$", ""));
    if (req.http.X-Stump-Deploy !~ %s) {
        error 404 "Not Found";
    }
}

`, str(edge.DeployIDPattern))
	}

	dispatch("stump_backend", "req.http.X-Stump-Site", func(s *edge.Site) string {
		return fmt.Sprintf("        set req.backend = F_%s;\n", BackendName(s.Name))
	})

	// Query strings.
	w("# Query strings: a static site ignores them, so the cache key and the origin request\n# carry none but the parameters edge.query keeps (sorted).\n")
	dispatch("stump_query", "req.http.X-Stump-Site", func(s *edge.Site) string {
		var d strings.Builder
		d.WriteString("        if (req.url ~ \"\\?\") {\n")
		d.WriteString("            set req.http.X-Stump-Q = regsub(req.url, \"\\?.*$\", \"\");\n")
		kw := "if"
		for _, q := range s.Query {
			names := make([]string, len(q.Params))
			for i, p := range q.Params {
				names[i] = regexp.QuoteMeta(p)
			}
			fmt.Fprintf(&d, "            %s (req.http.X-Stump-Q ~ %s) {\n", kw, str(q.Match))
			fmt.Fprintf(&d, "                set req.url = querystring.sort(querystring.regfilter_except(req.url, %s));\n", str("^("+strings.Join(names, "|")+")$"))
			d.WriteString("                set req.url = regsub(req.url, \"\\?$\", \"\");\n")
			kw = "} elsif"
		}
		if len(s.Query) > 0 {
			d.WriteString("            } else {\n                set req.url = req.http.X-Stump-Q;\n            }\n")
		} else {
			d.WriteString("            set req.url = req.http.X-Stump-Q;\n")
		}
		d.WriteString("            unset req.http.X-Stump-Q;\n        }\n")
		return d.String()
	})

	// Defenses.
	if geo {
		w(`# The visitor's country, from Fastly's geolocation of the client address.
sub stump_country {
    set req.http.X-Stump-Country = client.geo.country_code;
}

`)
	}
	for _, s := range sites {
		if s.Rate == nil {
			continue
		}
		window, limit := RateWindow(s.Rate)
		w("# %d requests per %s for %s: Fastly checks an average of %d a second over %ds;\n# a client over it is refused for a minute (its penalty box).\n", s.Rate.Requests, dur(s.Rate.Per), s.Name, limit, window)
		w("sub %s {\n    if (ratelimit.check_rate(req.http.Fastly-Client-IP, %s, 1, %d, %d, %s, 1m)) {\n        set req.http.X-Stump-Over = \"1\";\n    }\n}\n\n",
			ident("stump_rate_", s.Name), ident("stump_rc_", s.Name), window, limit, ident("stump_pb_", s.Name))
	}
	limit := func(s *edge.Site) string {
		return fmt.Sprintf("        call %s;\n        if (req.http.X-Stump-Over) {\n            call stump_block;\n        }\n", ident("stump_rate_", s.Name))
	}
	dispatch("stump_defend", "req.http.X-Stump-Site", func(s *edge.Site) string {
		var d strings.Builder
		if len(s.Countries) > 0 {
			fmt.Fprintf(&d, `        if (fastly.ff.visits_this_service == 0) {
            call stump_country;
            set req.http.X-Stump-Key = %q + req.http.X-Stump-Country;
            if (table.lookup(%s, req.http.X-Stump-Key, "") == "1") {
                call stump_block;
            }
        }
`, s.Name+":", CountriesDict)
		}
		if s.WordPress {
			d.WriteString(`        if (req.url ~ "(?i)^/[^?]*(xmlrpc\.php|wp-login\.php|wp-signup\.php|wp-trackback\.php)" ||
                req.url ~ "(?i)^/+(wp-admin|wp-includes|wp-content|wp-json)([/?]|$)" ||
                req.url ~ "(?i)^/+[^?]*/trackback/?([?]|$)" ||
                (req.method != "GET" && req.method != "HEAD")) {
            call stump_block;
        }
`)
		}
		if s.Rate != nil && !s.Rate.Misses {
			fmt.Fprintf(&d, "        if (fastly.ff.visits_this_service == 0) {\n%s        }\n", indent(limit(s)))
		}
		return d.String()
	})
	dispatch("stump_limit_miss", "req.http.X-Stump-Site", func(s *edge.Site) string {
		if s.Rate == nil || !s.Rate.Misses {
			return ""
		}
		return fmt.Sprintf("        call %s;\n", ident("stump_rate_", s.Name))
	})
	if block {
		w(`# The bland answer to every blocked request (vcl_error writes the site's body).
sub stump_block {
    set req.http.X-Stump-Block = "1";
    error 403 "Forbidden";
}

`)
	}

	dispatch("stump_redirect", "req.http.X-Stump-Site", func(s *edge.Site) string {
		var d strings.Builder
		for _, r := range s.Redirects {
			fmt.Fprintf(&d, "        if (req.url ~ %s) {\n            set req.http.X-Stump-Location = %s;\n            error %d %q;\n        }\n",
				str(r.Match), str(r.To), r.Status, r.Reason)
		}
		return d.String()
	})

	dispatch("stump_fetch", "req.http.X-Stump-Site", func(s *edge.Site) string {
		var d strings.Builder
		fmt.Fprintf(&d, "        set req.http.X-Stump-Origin-Host = %q;\n", s.OriginHost)
		fmt.Fprintf(&d, "        if (req.http.X-Stump-NotFound) {\n            set req.http.X-Stump-Path = %q;\n        } else {\n            set req.http.X-Stump-Path = req.http.X-Stump-Url;\n        }\n", s.NotFound)
		if s.PreviewHost != "" {
			fmt.Fprintf(&d, `        if (req.http.X-Stump-Preview && !req.http.X-Stump-Listed) {
            # Is the label a deploy publish recorded? _stump/trees.txt, through the cache.
            set req.http.X-Stump-Phase = "trees";
            set req.url = "%s/_stump/trees.txt";
            return;
        }
`, s.Prefix)
		}
		if s.Atomic {
			fmt.Fprintf(&d, `        if (req.http.X-Stump-Path ~ "\.[0-9a-f]{64}\.[A-Za-z0-9]+$" && !req.http.X-Stump-NotFound) {
            set req.url = "%s" + req.http.X-Stump-Path;
            return;
        }
        if (!req.http.X-Stump-Deploy) {
            # Which deploy is live: _stump/live, through the cache (purged on switch).
            set req.http.X-Stump-Phase = "pointer";
            set req.url = "%s/_stump/live";
            return;
        }
`, s.Prefix, s.Prefix)
		}
		// A layered deploy's tree holds what differs from its base: a path missing from
		// the layer answers a marker naming the base (vcl_fetch), and vcl_deliver
		// restarts to the same path in that tree (X-Stump-Fallback), one extra origin
		// fetch at most.
		fmt.Fprintf(&d, `        if (req.http.X-Stump-Fallback) {
            set req.url = "%s/_stump/trees/" + req.http.X-Stump-Fallback + req.http.X-Stump-Path;
        } else if (req.http.X-Stump-Deploy && req.http.X-Stump-Deploy != "-") {
            set req.url = "%s/_stump/trees/" + req.http.X-Stump-Deploy + req.http.X-Stump-Path;
        } else {
            set req.url = "%s" + req.http.X-Stump-Path;
        }
`, s.Prefix, s.Prefix, s.Prefix)
		return d.String()
	})

	w(`# The cache key is the path the visitor asked for and the site's host, never the
# origin path: in atomic mode an unchanged page stays cached across deploys.
sub vcl_hash {
    if (req.http.X-Stump-Phase) {
        set req.hash += "stump-" + req.http.X-Stump-Phase;
        set req.hash += req.http.X-Stump-Site;
        set req.hash += req.url;
    } else {
        if (req.http.X-Stump-Path) {
            set req.hash += req.http.X-Stump-Path;
        } else {
            set req.hash += req.url;
        }
        set req.hash += req.http.Host;
        if (req.http.X-Stump-Preview) {
            set req.hash += req.http.X-Stump-Deploy;
        }
        if (req.http.X-Stump-Fallback) {
            # The base's copy of a path the layer lacks, beside the layer's marker and
            # keyed by the base: a tree is never rewritten, so the copy is never stale.
            set req.hash += "stump-base:" + req.http.X-Stump-Fallback;
        }
    }
    # What makes Fastly's purge all (the UI's, in an emergency) drop every object.
    set req.hash += std.itoa(req.vcl.generation);
#FASTLY hash
    return (hash);
}

sub vcl_hit {
#FASTLY hit
    # After three restarts (pointer, base, 404 page) vcl_deliver cannot restart again.
    if (req.restarts >= 3 && (obj.http.x-stump-layer-miss ||
            (req.http.X-Stump-NotFound && !req.http.X-Stump-Synth && obj.http.x-stump-no-page))) {
        error 404 "Not Found";
    }
    return (deliver);
}

sub vcl_miss {
#FASTLY miss
    # The bucket's website endpoint routes by Host: ask for the bucket.
    if (req.backend.is_origin && req.http.X-Stump-Origin-Host) {
        set bereq.http.Host = req.http.X-Stump-Origin-Host;
    }
    # The rate limit counts what the cache cannot answer, at the POP the visitor reached
    # (there, this service's visit count already includes the POP in vcl_miss).
    if (!req.http.X-Stump-Phase && !req.http.X-Stump-Fallback && fastly.ff.visits_this_service <= 1) {
        call stump_limit_miss;
        if (req.http.X-Stump-Over) {
            set req.http.X-Stump-Block = "1";
            error 403 "Forbidden";
        }
    }
    return (fetch);
}

sub vcl_pass {
#FASTLY pass
    if (req.backend.is_origin && req.http.X-Stump-Origin-Host) {
        set bereq.http.Host = req.http.X-Stump-Origin-Host;
    }
    return (pass);
}

sub vcl_fetch {
#FASTLY fetch
    # Surrogate keys: publish stores them as object metadata; Fastly purges by
    # Surrogate-Key.
    if (beresp.http.x-amz-meta-surrogate-key) {
        set beresp.http.Surrogate-Key = beresp.http.x-amz-meta-surrogate-key;
    }
    if (beresp.status >= 500) {
        # Never show an origin error: serve the stale copy, else the bland 503.
        if (stale.exists) {
            return (deliver_stale);
        }
        error 503 "Service Unavailable";
    }
    if (req.http.X-Stump-Phase == "pointer") {
        set beresp.http.Surrogate-Key = beresp.http.Surrogate-Key + " " + req.http.X-Stump-Site + ":pointer";
        set beresp.http.x-stump-deploy = beresp.http.x-amz-meta-deploy;
        set beresp.http.x-stump-base = beresp.http.x-amz-meta-base;
        if (beresp.ttl > 60s) {
            set beresp.ttl = 60s;
        }
        if (beresp.status != 200) {
            # No pointer yet (the site is in place): asked again soon.
            set beresp.cacheable = true;
            set beresp.ttl = 1s;
            call stump_strip_amz;
            return (deliver);
        }
    } else if (req.http.X-Stump-Phase == "trees") {
        set beresp.http.x-stump-ids = beresp.http.x-amz-meta-ids;
        if (beresp.ttl > 60s) {
            set beresp.ttl = 60s;
        }
        if (beresp.status != 200) {
            set beresp.cacheable = true;
            set beresp.ttl = 1s;
            call stump_strip_amz;
            return (deliver);
        }
    } else {
        if (beresp.http.x-amz-meta-tombstone) {
            # Removed by the deploy whose layer holds the tombstone.
            set beresp.status = 404;
            set beresp.response = "Not Found";
        } else if ((beresp.status == 403 || beresp.status == 404) && !req.http.X-Stump-Fallback &&
                req.http.X-Stump-Base && req.http.X-Stump-Base != req.http.X-Stump-Deploy) {
            # Not in the live deploy's layer: a marker naming the base it overlays,
            # cached like a missing page (purged with the URL's key). vcl_deliver
            # restarts to the base's copy, which has a cache key of its own.
            set beresp.http.x-stump-layer-miss = req.http.X-Stump-Base;
        }
        if (beresp.status != 200 && !(beresp.status == 404 && beresp.http.Content-Type ~ "^text/html" &&
                beresp.http.x-amz-meta-surrogate-key)) {
            # Never served as the site's 404 page: only a page publish stored is (a 200,
            # or a bucket's error document), not S3's own answer for a missing key (XML,
            # or an HTML page with its request ids), a marker or a tombstone.
            set beresp.http.x-stump-no-page = "1";
        }
        if (beresp.status != 200 || !beresp.http.Surrogate-Key) {
            # A 404 (or a marker) carries no keys of its own: add the URL's key, so the
            # purge that publishes the page also drops it, and the site's, so a purge of
            # the whole site does too.
            set beresp.http.Surrogate-Key = beresp.http.Surrogate-Key + " " + req.http.X-Stump-Site + ":url:" +
                regsub(regsub(req.http.X-Stump-Path, "\?.*$", ""), "index\.html$", "") + " " + req.http.X-Stump-Site;
        }
    }
    call stump_fetch_site;
    call stump_strip_amz;
    if (beresp.http.Content-Type ~ "` + gzipTypes + `" && !beresp.http.Content-Encoding) {
        set beresp.gzip = true;
    }
    if (!req.http.X-Stump-Phase &&
            (beresp.status == 403 || beresp.status == 404 || beresp.status == 400)) {
        # Missing pages are cached (edge.not_found_ttl, purged by the URL's key).
        set beresp.cacheable = true;
        call stump_not_found_ttl;
        if (beresp.http.x-stump-layer-miss) {
            # A marker is never served past its TTL while it is fetched again: the base
            # it names must be no older than that (stale copies only when the origin
            # fails).
            set beresp.stale_while_revalidate = 0s;
        }
        if (req.restarts >= 3 && (beresp.http.x-stump-layer-miss ||
                (req.http.X-Stump-NotFound && !req.http.X-Stump-Synth && beresp.http.x-stump-no-page))) {
            # vcl_deliver could not restart again (see vcl_hit).
            error 404 "Not Found";
        }
    }
    return (deliver);
}

`)
	dispatch("stump_not_found_ttl", "req.http.X-Stump-Site", func(s *edge.Site) string {
		return fmt.Sprintf("        set beresp.ttl = %s;\n", dur(s.NotFoundTTL))
	})
	dispatch("stump_fetch_site", "req.http.X-Stump-Site", func(s *edge.Site) string {
		var d strings.Builder
		// edge.grace: how long a stale copy may be served while the origin fails
		// (stale-if-error) or while it is refetched (stale-while-revalidate).
		fmt.Fprintf(&d, "        set beresp.stale_if_error = %s;\n        set beresp.stale_while_revalidate = %s;\n", dur(s.Grace), dur(s.Grace))
		loc := `^(https?://` + regexp.QuoteMeta(s.OriginHost) + `(:[0-9]+)?)?` + regexp.QuoteMeta(s.Prefix) + `/(_stump/trees/[^/]+/)?`
		fmt.Fprintf(&d, "        if (beresp.http.Location) {\n            set beresp.http.Location = regsub(beresp.http.Location, %s, \"/\");\n        }\n", str(loc))
		for _, h := range s.MetaHeaders {
			fmt.Fprintf(&d, "        unset beresp.http.x-amz-meta-header-%s;\n", h)
		}
		return d.String()
	})
	w("sub stump_strip_amz {\n")
	for _, h := range amzHeaders {
		w("    unset beresp.http.%s;\n", h)
	}
	w("    unset beresp.http.Server;\n}\n\n")

	w(`sub vcl_deliver {
#FASTLY deliver
    if (req.http.X-Stump-Phase == "pointer") {
        unset req.http.X-Stump-Phase;
        if (resp.status == 200 && resp.http.x-stump-deploy ~ "^[A-Za-z0-9][A-Za-z0-9._-]*$") {
            set req.http.X-Stump-Deploy = resp.http.x-stump-deploy;
            if (resp.http.x-stump-base ~ "^[A-Za-z0-9][A-Za-z0-9._-]*$") {
                set req.http.X-Stump-Base = resp.http.x-stump-base;
            }
        } else if (resp.status == 403 || resp.status == 404) {
            # No pointer yet: the site is still in place at the target's root.
            set req.http.X-Stump-Deploy = "-";
        } else {
            set req.http.X-Stump-Error = "503";
        }
        restart;
    }
    if (req.http.X-Stump-Phase == "trees") {
        # A preview label publish has not recorded gets the answer of a label that is
        # no deploy id: the preview is never fetched.
        unset req.http.X-Stump-Phase;
        set req.http.X-Stump-Error = "404";
        if (resp.status == 200) {
            set req.http.X-Stump-Listed = "|" + regsuball(resp.http.x-stump-ids, "\s+", "|") + "|";
            if (std.strstr(req.http.X-Stump-Listed, "|" + req.http.X-Stump-Deploy + "|") != "") {
                unset req.http.X-Stump-Error;
                set req.http.X-Stump-Listed = "1";
            } else {
                unset req.http.X-Stump-Listed;
            }
        } else if (resp.status != 403 && resp.status != 404) {
            set req.http.X-Stump-Error = "503";
        }
        restart;
    }
    if (resp.http.x-stump-layer-miss ~ "^[A-Za-z0-9][A-Za-z0-9._-]*$" && !req.http.X-Stump-Fallback &&
            !req.http.X-Stump-Shielded && req.restarts < 3) {
        # Not in the live deploy's layer: the same path in the tree the marker names.
        set req.http.X-Stump-Fallback = resp.http.x-stump-layer-miss;
        restart;
    }
    if (!req.http.X-Stump-Synth && !req.http.X-Stump-Shielded && !req.http.X-Stump-NotFound &&
            (resp.status == 403 || resp.status == 404 || resp.status == 400)) {
        # S3 answers a missing key with 403 or 404 and maybe XML: serve the site's 404 page
        # (the live deploy's own, never its base's).
        set req.http.X-Stump-NotFound = "1";
        unset req.http.X-Stump-Fallback;
        restart;
    }
    if (req.http.X-Stump-NotFound && !req.http.X-Stump-Synth) {
        if (resp.http.x-stump-no-page) {
            set req.http.X-Stump-Error = "404";
            restart;
        }
        # (resp.response keeps the origin's reason phrase: HTTP/2 and HTTP/3 carry none,
        # and falco's simulator takes resp.response for the body.)
        set resp.status = 404;
    }
    set req.http.X-Stump-File = regsub(regsub(req.http.X-Stump-Url, "\?.*$", ""), "/$", "/index.html");
    if (req.http.X-Stump-Site) {
        call stump_headers;
    } else {
        call stump_default_headers;
    }
    call stump_hygiene;
    return (deliver);
}

# What every answer gets, the edge's own included: nothing that names the server or
# the origin, and previews kept out of search engines.
sub stump_hygiene {
    unset resp.http.Via;
    unset resp.http.Server;
    unset resp.http.X-Powered-By;
    unset resp.http.X-Served-By;
    unset resp.http.X-Timer;
    # A shield keeps the keys for the edge POP that asked it (Fastly-FF), which caches
    # by them; visitors never see them.
    if (!req.http.Fastly-FF) {
        unset resp.http.Surrogate-Key;
    }
    unset resp.http.x-stump-deploy;
    unset resp.http.x-stump-base;
    unset resp.http.x-stump-layer-miss;
    unset resp.http.x-stump-no-page;
    unset resp.http.x-stump-ids;
    if (req.http.X-Stump-Preview) {
        set resp.http.X-Robots-Tag = "noindex";
    }
}

`)
	dispatch("stump_headers", "req.http.X-Stump-Site", func(s *edge.Site) string {
		var d strings.Builder
		for _, h := range s.Headers {
			fmt.Fprintf(&d, "        set resp.http.%s = %s;\n", h.Name, str(h.Value))
		}
		for _, r := range s.Rules {
			fmt.Fprintf(&d, "        if (req.http.X-Stump-File ~ %s) {\n", str(r.Match))
			for _, h := range r.Values {
				if h.Value == "" {
					fmt.Fprintf(&d, "            unset resp.http.%s;\n", h.Name)
				} else {
					fmt.Fprintf(&d, "            set resp.http.%s = %s;\n", h.Name, str(h.Value))
				}
			}
			d.WriteString("        }\n")
		}
		return d.String()
	})
	w("# The security headers of answers that belong to no site.\nsub stump_default_headers {\n")
	names := make([]string, 0, len(edge.DefaultHeaders))
	for k := range edge.DefaultHeaders {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		w("    set resp.http.%s = %s;\n", k, str(edge.DefaultHeaders[k]))
	}
	w("}\n\n")

	w(`sub vcl_error {
#FASTLY error
    set req.http.X-Stump-Synth = "1";
    if (req.http.X-Stump-Block) {
        call stump_blocked;
        return (deliver);
    }
    if (req.http.X-Stump-Auth) {
        set obj.http.WWW-Authenticate = {"Basic realm="preview", charset="UTF-8""};
    }
    if (req.http.X-Stump-Location) {
        set obj.http.Location = req.http.X-Stump-Location;
        set obj.http.Content-Type = "text/plain; charset=utf-8";
        synthetic "";
        return (deliver);
    }
    if (obj.status == 503) {
        set obj.http.Retry-After = "10";
    }
    # Anything else the edge answers itself is bland: no origin detail, no reason why.
    set obj.http.Content-Type = "text/html; charset=utf-8";
    set req.http.X-Stump-Body = "<!doctype html><title>" + obj.response + "</title><h1>" + obj.response + "</h1>" + LF;
    synthetic req.http.X-Stump-Body;
    return (deliver);
}

sub vcl_log {
#FASTLY log
}

`)
	// (Always declared: vcl_error calls it.)
	{
		dispatch("stump_blocked", "req.http.X-Stump-Site", func(s *edge.Site) string {
			return fmt.Sprintf("        set obj.status = %d;\n        set obj.response = %q;\n        set obj.http.Content-Type = \"text/plain; charset=utf-8\";\n        synthetic {\"%s\"};\n",
				s.BlockedStatus, s.BlockedReason, s.BlockedBody)
		})
	}
}

func indent(s string) string {
	lines := strings.SplitAfter(s, "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = "    " + l
		}
	}
	return strings.Join(lines, "")
}
