package edge

import (
	"bytes"
	"fmt"
	"net"
	"regexp"
	"sort"
	"strings"

	"github.com/stump-dev/stump/build/config"
)

// Internal request headers: set by the VCL only (cleared on every client request).
var internalHeaders = []string{
	"X-Stump-Site", "X-Stump-Url", "X-Stump-Path", "X-Stump-Deploy", "X-Stump-Phase",
	"X-Stump-NotFound", "X-Stump-Block", "X-Stump-Location", "X-Stump-Preview",
	"X-Stump-Origin-Host", "X-Stump-Raw-Host", "X-Stump-Client", "X-Stump-File",
	"X-Stump-Xff", "X-Stump-Q", "X-Stump-Deny", "X-Stump-Auth", "X-Stump-Counted",
	"X-Stump-Listed", "X-Stump-Base", "X-Stump-Base-Url", "X-Stump-Layers",
	"X-Purged", "X-Banned",
}

// xffHops bounds how many trusted proxies the client address walk skips.
const xffHops = 8

// gzipTypes are the content types the edge compresses (beresp.do_gzip).
const gzipTypes = `(?i)^(text/|application/(javascript|json|xml|rss\+xml|atom\+xml|ld\+json|manifest\+json|xhtml\+xml)|image/svg\+xml)`

// amzHeaders are the S3 response headers the edge removes (x-amz-meta-header-* names
// come from the sites' header rules).
var amzHeaders = []string{
	"x-amz-meta-surrogate-key", "x-amz-meta-sha256", "x-amz-meta-deploy",
	"x-amz-meta-base", "x-amz-meta-tombstone",
	"x-amz-request-id", "x-amz-id-2", "x-amz-version-id", "x-amz-delete-marker",
	"x-amz-expiration", "x-amz-server-side-encryption", "x-amz-storage-class",
	"x-amz-website-redirect-location", "x-amz-error-code", "x-amz-error-message",
	"x-amz-error-detail-key", "x-amz-checksum-sha256", "x-amz-checksum-crc32",
	"x-amz-checksum-crc32c", "x-amz-checksum-crc64nvme", "x-amz-checksum-type",
	"x-amz-mp-parts-count", "x-amz-object-lock-mode", "x-amz-object-lock-retain-until-date",
	"x-amz-object-lock-legal-hold", "x-amz-replication-status", "x-amz-restore",
	"x-amz-tagging-count", "x-amz-bucket-region", "x-amz-meta-mtime", "x-amz-meta-ids",
}

// VCL returns the VCL 4.1 for the sites that have an edge: section in site.yaml (the
// others are left out). ws resolves target names; it may be nil. Every site is checked
// first: a broken setting is an error naming the site's file, and no VCL is returned.
func VCL(ws *config.Workspace, sites ...*config.Loaded) ([]byte, error) {
	p, err := NewPlan(ws, sites...)
	if err != nil {
		return nil, err
	}
	return p.Varnish()
}

// Varnish renders the plan as VCL 4.1 for Varnish 7 with varnish-modules.
func (p *Plan) Varnish() ([]byte, error) {
	for _, s := range p.Sites {
		if len(s.Countries) > 0 && !s.Trusted {
			return nil, fmt.Errorf("%s: edge.defenses.blocked_countries needs edge.trusted_proxies: the country comes from geo_header, which the edge believes only from a trusted proxy (and strips from every other request)", s.File)
		}
	}
	var b bytes.Buffer
	render(&b, p.Sites, p.Backends, p.Purgers, p.Trusted)
	return b.Bytes(), nil
}

func shown(cfg *config.Loaded) string {
	if cfg.File != "" {
		return cfg.File
	}
	return "site " + cfg.Name
}

// aclEntry turns "10.0.0.5" or "10.0.0.0/8" into a VCL ACL entry.
func aclEntry(p string) (string, error) {
	p = strings.TrimSpace(p)
	if ip := net.ParseIP(p); ip != nil {
		return p, nil
	}
	if ip, n, err := net.ParseCIDR(p); err == nil {
		ones, _ := n.Mask.Size()
		return fmt.Sprintf("%s/%d", ip.String(), ones), nil
	}
	return "", fmt.Errorf("%q is not an IP address or network (10.0.0.0/8)", p)
}

// acl writes a VCL ACL of entries ("10.0.0.5", "10.0.0.0/8"); an empty one matches
// nothing.
func acl(w func(string, ...any), name string, entries []string) {
	w("acl %s {\n", name)
	for _, p := range entries {
		if i := strings.IndexByte(p, '/'); i >= 0 {
			w("    %q/%s;\n", p[:i], p[i+1:])
		} else {
			w("    %q;\n", p)
		}
	}
	w("}\n\n")
}

// unreserved are the characters RFC 3986 lets a URL carry unescaped: their
// percent-encodings are decoded before any rule looks at the URL.
const unreserved = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"

// hexPattern is a regex for the byte c's percent-encoding in either case ("%4[aA]").
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

func render(b *bytes.Buffer, sites []*Site, backends []*Backend, purgers, trusted []string) {
	w := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	var preview, block, previewAuth, missLimit, geo bool
	var geoHeaders []string
	seenGeo := map[string]bool{}
	for _, s := range sites {
		preview = preview || s.PreviewHost != ""
		previewAuth = previewAuth || s.PreviewAuthEnv != ""
		block = block || s.WordPress || len(s.Countries) > 0 || s.Rate != nil
		missLimit = missLimit || (s.Rate != nil && s.Rate.Misses)
		if len(s.Countries) > 0 {
			geo = true
			if h := strings.ToLower(s.GeoHeader); !seenGeo[h] {
				seenGeo[h] = true
				geoHeaders = append(geoHeaders, s.GeoHeader)
			}
		}
	}
	w("vcl 4.1;\n\n")
	w("# Generated by `stump edge vcl` from the workspace's site.yaml files: do not edit,\n")
	w("# regenerate (docs/edge.md explains every part). Needs Varnish 7 and varnish-modules.\n")
	w("# Secrets (the purge token, preview credentials) are read from varnishd's environment\n")
	w("# with std.getenv, never written here.\n\n")
	w("import std;\nimport purge;\nimport xkey;\nimport vsthrottle;\nimport digest;\n")
	if previewAuth {
		w("import blob;\n")
	}
	w("\n")

	if len(backends) == 0 {
		w("# No site has an edge: section in site.yaml.\nbackend default none;\n\n")
	}
	for _, be := range backends {
		if be.Probe != nil {
			p := be.Probe
			w("probe %s_probe {\n", be.Name)
			w("    .request =\n        \"GET %s HTTP/1.1\"\n        \"Host: %s\"\n        \"User-Agent: stump-edge-probe\"\n        \"Connection: close\";\n", p.URL, be.OriginHost)
			w("    .interval = %s;\n    .timeout = %s;\n    .window = %d;\n    .threshold = %d;\n    .initial = %d;\n}\n\n",
				dur(p.Interval), dur(p.Timeout), p.Window, p.Threshold, p.Threshold)
		}
		w("backend %s {\n    .host = %q;\n    .port = %q;\n", be.Name, be.Host, be.Port)
		w("    .connect_timeout = 2s;\n    .first_byte_timeout = 15s;\n    .between_bytes_timeout = 10s;\n")
		if be.Probe != nil {
			w("    .probe = %s_probe;\n", be.Name)
		}
		w("}\n\n")
	}

	w("# Who may purge: edge.purgers of every site, tested against the client address the\n# edge derives (stump_client). Loopback is not trusted unless listed.\n")
	acl(w, "purgers", purgers)
	if len(trusted) > 0 {
		w("# The proxies in front of Varnish (edge.trusted_proxies of every site): their\n# X-Forwarded-For hops and geo headers are believed, nobody else's.\n")
		acl(w, "stump_trusted", trusted)
	}

	// vcl_recv
	w("sub vcl_recv {\n")
	w("    if (req.restarts == 0) {\n")
	for _, h := range internalHeaders {
		w("        unset req.http.%s;\n", h)
	}
	if geo {
		w("        call stump_geo_trust;\n")
	}
	w(`        call stump_client;
        set req.http.X-Stump-Raw-Host = regsub(req.http.Host, ":[0-9]+$", "");
        set req.http.Host = std.tolower(req.http.X-Stump-Raw-Host);
        call stump_normalize_path;
        call stump_route;
        if (req.method == "PURGE" || req.method == "BAN") {
            call stump_purge_recv;
        }
        unset req.http.X-Purge-Token;
        if (!req.http.X-Stump-Site) {
            return (synth(404, "Not Found"));
        }
        call stump_defend;
        if (req.method != "GET" && req.method != "HEAD") {
            return (synth(405, "Method Not Allowed"));
        }
        call stump_query;
        call stump_redirect;
        # stump's own objects, and paths that climb out of the site, are never served.
        if (req.url ~ "(?i)^/+(_|%%5f)stump([/?]|%%2f|$)" ||
                req.url ~ "(?i)(/|%%2f)(\.|%%2e){1,2}([/?]|%%2f|$)") {
            set req.http.X-Stump-NotFound = "1";
        }
        set req.http.X-Stump-Url = req.url;
    }
    # Nothing on a static site depends on them; they would only make Varnish pass.
    unset req.http.Cookie;
    unset req.http.Authorization;
    call stump_fetch;
    return (hash);
}

`)

	// The client address.
	w("# The client address every rule uses (rate limit, purge ACL): the connection's\n# address (with a PROXY-protocol listener, the one the proxy sends), or, when that is a\n# trusted proxy, the right-most X-Forwarded-For hop that is not one (Varnish has\n# appended the connection's address to X-Forwarded-For already).\nsub stump_client {\n")
	w("    set req.http.X-Stump-Client = client.ip;\n")
	if len(trusted) > 0 {
		w("    set req.http.X-Stump-Xff = req.http.X-Forwarded-For;\n")
		for i := 0; i < xffHops; i++ {
			w(`    if (std.ip(req.http.X-Stump-Client, "0.0.0.0", false) ~ stump_trusted && req.http.X-Stump-Xff ~ ",") {
        set req.http.X-Stump-Xff = regsub(req.http.X-Stump-Xff, "\s*,[^,]*$", "");
        set req.http.X-Stump-Client = regsub(req.http.X-Stump-Xff, "^(.*,)?\s*([^,]*?)\s*$", "\2");
    }
`)
		}
		w("    set req.http.X-Stump-Client = std.ip(req.http.X-Stump-Client, client.ip, false);\n    unset req.http.X-Stump-Xff;\n")
	}
	w("}\n\n")
	if geo {
		w("# Geo headers come from a trusted proxy in front (client.ip: the connection's peer, or\n# the address a PROXY-protocol listener was sent, so that a TLS terminator passing the\n# visitor's headers through is not believed) or not at all; of several, the last is\n# the proxy's (it appends).\nsub stump_geo_trust {\n")
		w("    if (client.ip ~ stump_trusted) {\n")
		for _, h := range geoHeaders {
			w("        std.collect(req.http.%s);\n        set req.http.%s = regsub(req.http.%s, \"^(.*,)?\\s*([^,]*?)\\s*$\", \"\\2\");\n", h, h, h)
		}
		w("    } else {\n")
		for _, h := range geoHeaders {
			w("        unset req.http.%s;\n", h)
		}
		w("    }\n}\n\n")
	}

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
        return (synth(400, "Bad Request"));
    }
    if (req.url ~ "%%") {
        if (req.url ~ "%%(?![0-9A-Fa-f]{2})") {
            return (synth(400, "Bad Request"));
        }
`)
	for i := 0; i < len(unreserved); i++ {
		w("        set req.url = regsuball(req.url, %q, %q);\n", hexPattern(unreserved[i]), string(unreserved[i]))
	}
	for c := byte('a'); c <= 'f'; c++ {
		w("        set req.url = regsuball(req.url, \"%%%c([0-9A-Fa-f])\", \"%%%c\\1\");\n", c, c-'a'+'A')
	}
	for c := byte('a'); c <= 'f'; c++ {
		w("        set req.url = regsuball(req.url, \"%%([0-9A-F])%c\", \"%%\\1%c\");\n", c, c-'a'+'A')
	}
	w(`    }
    if (req.url ~ "^[^?]*//") {
        set req.http.X-Stump-Q = regsub(req.url, "^[^?]*", "");
        set req.url = regsuball(regsub(req.url, "\?.*$", ""), "//+", "/") + req.http.X-Stump-Q;
        unset req.http.X-Stump-Q;
    }
}

`)

	// routing
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
			w("    } elsif (req.http.Host ~ %s) {\n", vclStr(`^[a-z0-9][a-z0-9_-]*\.`+regexp.QuoteMeta(s.PreviewHost)+"$"))
			w("        set req.http.X-Stump-Site = %q;\n", s.Name)
			w("        call stump_preview;\n")
			if s.PreviewAuthEnv != "" {
				env := s.PreviewAuthEnv
				w(`        # Previews need basic authentication: "user:password" in $%s.
        if (std.getenv(%q) !~ "^[^:]+:." ||
                req.http.Authorization != "Basic " + blob.encode(BASE64, blob=blob.decode(encoded=std.getenv(%q)))) {
            set req.http.X-Stump-Auth = "1";
            return (synth(401, "Unauthorized"));
        }
`, env, env, env)
			}
		}
	}
	if len(sites) > 0 {
		w("    }\n")
	}
	w("}\n\n")
	if preview {
		w(`# A preview host's first label is the deploy id. Deploy ids are lower case
# (20261130t094500z-1a2b3c) so that they can be DNS labels; host names are not case
# sensitive, so the label is lower-cased. A label that is not a deploy id never reaches
# the origin.
sub stump_preview {
    set req.http.X-Stump-Preview = "1";
    set req.http.X-Stump-Deploy = std.tolower(regsub(req.http.X-Stump-Raw-Host, "\..*$", ""));
    if (req.http.X-Stump-Deploy !~ %s) {
        return (synth(404, "Not Found"));
    }
}

`, vclStr(DeployIDPattern))
	}

	// purge
	w(`# The purges package purge/varnish sends (docs/varnish.md): PURGE / with xkey-purge or
# xkey-softpurge, BAN / with X-Ban-Url, PURGE /path. Each needs the site's token in
# X-Purge-Token, from a client in the purgers ACL (and on the site's purge listener,
# when it has one). Failed attempts are throttled per client: 5 a minute, then every
# purge from that client is refused for 10 minutes.
sub stump_purge_recv {
    if (!req.http.X-Stump-Site) {
        return (synth(403, "Forbidden"));
    }
    if (vsthrottle.blocked("stump-purge-fail:" + req.http.X-Stump-Client, 5, 60s, 10m) > 0s) {
        return (synth(403, "Forbidden"));
    }
    if (std.ip(req.http.X-Stump-Client, "0.0.0.0", false) !~ purgers || !req.http.X-Purge-Token) {
        set req.http.X-Stump-Deny = "1";
    } else {
        call stump_purge_auth;
    }
    if (req.http.X-Stump-Deny) {
        if (vsthrottle.is_denied("stump-purge-fail:" + req.http.X-Stump-Client, 5, 60s, 10m)) {
            std.log("stump: purges from " + req.http.X-Stump-Client + " blocked for 10m");
        }
        return (synth(403, "Forbidden"));
    }
    if (req.http.Host == "") {
        return (synth(400, "A purge needs the site's Host header"));
    }
    if (req.method == "BAN") {
        if (!req.http.X-Ban-Url || req.http.X-Ban-Url ~ {"[\s"]"}) {
            return (synth(400, "BAN needs an X-Ban-Url regex without spaces or quotes"));
        }
        if (std.ban("obj.http.x-stump-host == " + req.http.Host +
                " && obj.http.x-stump-url ~ " + req.http.X-Ban-Url)) {
            set req.http.X-Banned = "1";
            return (synth(200, "Banned"));
        }
        return (synth(400, "Bad ban: " + std.ban_error()));
    }
    if (req.http.xkey-purge) {
        set req.http.X-Purged = xkey.purge(req.http.xkey-purge);
        return (synth(200, "Purged"));
    }
    if (req.http.xkey-softpurge) {
        set req.http.X-Purged = xkey.softpurge(req.http.xkey-softpurge);
        return (synth(200, "Soft-purged"));
    }
    # PURGE /path: the object cached under that path and Host (see vcl_hash).
    set req.http.X-Stump-Path = regsub(req.url, "\?.*$", "");
    return (hash);
}

sub stump_purge_url {
    if (req.http.X-Purge-Soft) {
        set req.http.X-Purged = purge.soft();
    } else {
        set req.http.X-Purged = purge.hard();
    }
    return (synth(200, "Purged"));
}

sub vcl_hit {
    if (req.method == "PURGE") {
        call stump_purge_url;
    }
}

sub vcl_miss {
    if (req.method == "PURGE") {
        call stump_purge_url;
    }
`)
	if missLimit {
		w(`    # The rate limit counts what the cache cannot answer, once a request.
    if (!req.http.X-Stump-Phase && !req.http.X-Stump-Counted) {
        set req.http.X-Stump-Counted = "1";
        call stump_limit_miss;
    }
`)
	}
	w("}\n\n")

	dispatch := func(name, cond string, call func(s *Site) string) {
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

	// The token is compared with VCL's == : Varnish has no constant-time comparison
	// (docs/edge.md); the throttle of failed attempts leaves a timing attack too few tries.
	dispatch("stump_purge_auth", "req.http.X-Stump-Site", func(s *Site) string {
		var d strings.Builder
		if s.PurgeListener != "" {
			fmt.Fprintf(&d, "        if (local.socket != %q) {\n            set req.http.X-Stump-Deny = \"1\";\n        }\n", s.PurgeListener)
		}
		// The token is compared by its SHA-256 (vmod digest): string comparison stops
		// at the first byte that differs, and its timing would tell how much of a
		// guess is right; a digest's prefix tells nothing about the token.
		fmt.Fprintf(&d, "        if (std.getenv(%q) !~ \"^.{%d,}$\" || digest.hash_sha256(req.http.X-Purge-Token) != digest.hash_sha256(std.getenv(%q))) {\n            set req.http.X-Stump-Deny = \"1\";\n        }\n",
			s.PurgeTokenEnv, MinPurgeTokenLen, s.PurgeTokenEnv)
		return d.String()
	})

	// Query strings.
	w("# Query strings: a static site ignores them, so the cache key and the origin request\n# carry none but the parameters edge.query keeps (sorted), and a flood of random ones\n# is one object.\n")
	dispatch("stump_query", "req.http.X-Stump-Site", func(s *Site) string {
		var d strings.Builder
		d.WriteString("        if (req.url ~ \"\\?\") {\n")
		d.WriteString("            set req.http.X-Stump-Q = regsub(req.url, \"\\?.*$\", \"\");\n")
		kw := "if"
		for _, q := range s.Query {
			names := make([]string, len(q.Params))
			for i, p := range q.Params {
				names[i] = regexp.QuoteMeta(p)
			}
			fmt.Fprintf(&d, "            %s (req.http.X-Stump-Q ~ %s) {\n", kw, vclStr(q.Match))
			fmt.Fprintf(&d, "                set req.url = regsuball(req.url, %s, \"\");\n", vclStr(`(?<=[?&])(?!(`+strings.Join(names, "|")+`)(=|&|$))[^&]*`))
			d.WriteString("                set req.url = regsuball(req.url, \"&&+\", \"&\");\n")
			d.WriteString("                set req.url = regsub(req.url, \"\\?&+\", \"?\");\n")
			d.WriteString("                set req.url = regsub(req.url, \"[?&]+$\", \"\");\n")
			d.WriteString("                set req.url = std.querysort(req.url);\n")
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

	// defenses
	limit := func(s *Site) string {
		return fmt.Sprintf("        if (vsthrottle.is_denied(%q + req.http.X-Stump-Client, %d, %s)) {\n            call stump_block;\n        }\n",
			s.Name+":", s.Rate.Requests, dur(s.Rate.Per))
	}
	dispatch("stump_defend", "req.http.X-Stump-Site", func(s *Site) string {
		var d strings.Builder
		if len(s.Countries) > 0 {
			fmt.Fprintf(&d, "        if (req.http.%s ~ %s) {\n            call stump_block;\n        }\n",
				s.GeoHeader, vclStr("(?i)^\\s*("+strings.Join(s.Countries, "|")+")\\s*$"))
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
			d.WriteString(limit(s))
		}
		return d.String()
	})
	if missLimit {
		dispatch("stump_limit_miss", "req.http.X-Stump-Site", func(s *Site) string {
			if s.Rate == nil || !s.Rate.Misses {
				return ""
			}
			return limit(s)
		})
	}
	if block {
		w(`# The bland answer to every blocked request (vcl_synth writes the site's body).
sub stump_block {
    set req.http.X-Stump-Block = "1";
    return (synth(403, "Forbidden"));
}

`)
	}

	dispatch("stump_redirect", "req.http.X-Stump-Site", func(s *Site) string {
		var d strings.Builder
		for _, r := range s.Redirects {
			fmt.Fprintf(&d, "        if (req.url ~ %s) {\n            set req.http.X-Stump-Location = %s;\n            return (synth(%d, %q));\n        }\n",
				vclStr(r.Match), vclStr(r.To), r.Status, r.Reason)
		}
		return d.String()
	})

	dispatch("stump_fetch", "req.http.X-Stump-Site", func(s *Site) string {
		var d strings.Builder
		fmt.Fprintf(&d, "        set req.backend_hint = %s;\n        set req.http.X-Stump-Origin-Host = %q;\n", s.Backend.Name, s.OriginHost)
		if s.PreviewHost != "" {
			// Before anything of a preview is fetched (its assets too), the label must be
			// a deploy publish recorded: _stump/trees.txt, through the cache.
			fmt.Fprintf(&d, `        if (req.http.X-Stump-Preview && !req.http.X-Stump-Listed) {
            set req.http.X-Stump-Phase = "trees";
            set req.url = "%s/_stump/trees.txt";
            return (hash);
        }
`, s.Prefix)
		}
		fmt.Fprintf(&d, "        if (req.http.X-Stump-NotFound) {\n            set req.http.X-Stump-Path = %q;\n        } else {\n            set req.http.X-Stump-Path = req.http.X-Stump-Url;\n        }\n", s.NotFound)
		if s.Atomic {
			// Fingerprinted assets are their own content-addressed keys at the prefix
			// root (publish uploads them there; only gc removes them), so a page of an
			// earlier deploy, cached in a browser or at the edge, keeps finding its assets
			// after a switch, and no pointer lookup is needed for them.
			fmt.Fprintf(&d, `        if (req.http.X-Stump-Path ~ "\.[0-9a-f]{64}\.[A-Za-z0-9]+$" && !req.http.X-Stump-NotFound) {
            set req.url = "%s" + req.http.X-Stump-Path;
            return (hash);
        }
        if (!req.http.X-Stump-Deploy) {
            # Which deploy is live: _stump/live, through the cache (purged on switch).
            set req.http.X-Stump-Phase = "pointer";
            set req.url = "%s/_stump/live";
            return (hash);
        }
`, s.Prefix, s.Prefix)
		}
		if s.PreviewHost != "" {
			// A preview's tree may be a layer: its marker names the full tree it
			// overlays (immutable, so cached like the pointer).
			fmt.Fprintf(&d, `        if (req.http.X-Stump-Preview && !req.http.X-Stump-Layers) {
            set req.http.X-Stump-Layers = "1";
            set req.http.X-Stump-Phase = "pointer";
            set req.url = "%s/_stump/layers/" + req.http.X-Stump-Deploy;
            return (hash);
        }
`, s.Prefix)
		}
		// A layered deploy's tree holds what differs from its base: a path missing
		// from the layer is fetched from the base (vcl_backend_response), one extra
		// origin fetch at most.
		fmt.Fprintf(&d, `        unset req.http.X-Stump-Base-Url;
        if (req.http.X-Stump-Deploy && req.http.X-Stump-Deploy != "-") {
            set req.url = "%s/_stump/trees/" + req.http.X-Stump-Deploy + req.http.X-Stump-Path;
            if (req.http.X-Stump-Base && req.http.X-Stump-Base != req.http.X-Stump-Deploy) {
                set req.http.X-Stump-Base-Url = "%s/_stump/trees/" + req.http.X-Stump-Base + req.http.X-Stump-Path;
            }
        } else {
            set req.url = "%s" + req.http.X-Stump-Path;
        }
`, s.Prefix, s.Prefix, s.Prefix)
		return d.String()
	})

	w(`# The cache key is the path the visitor asked for and the site's host, never the
# origin path: in atomic mode an unchanged page stays cached across deploys, and only
# what a deploy purges is fetched again from the new tree.
sub vcl_hash {
    if (req.http.X-Stump-Phase) {
        # _stump/live or _stump/trees.txt: one object per site.
        hash_data("stump-" + req.http.X-Stump-Phase);
        hash_data(req.http.X-Stump-Site);
        hash_data(req.url);
        return (lookup);
    }
    if (req.http.X-Stump-Path) {
        hash_data(req.http.X-Stump-Path);
    } else {
        hash_data(req.url);
    }
    hash_data(req.http.Host);
    if (req.http.X-Stump-Preview) {
        hash_data(req.http.X-Stump-Deploy);
    }
    return (lookup);
}

sub vcl_backend_fetch {
    # Remember the site's Host for bans, then ask the origin for the bucket.
    set bereq.http.x-stump-host = bereq.http.Host;
    if (bereq.http.X-Stump-Origin-Host) {
        set bereq.http.Host = bereq.http.X-Stump-Origin-Host;
    }
}

sub vcl_backend_response {
    if (bereq.http.X-Stump-Base-Url && (beresp.status == 403 || beresp.status == 404)) {
        # Not in the deploy's layer: the same path in the full tree it overlays.
        set bereq.url = bereq.http.X-Stump-Base-Url;
        unset bereq.http.X-Stump-Base-Url;
        return (retry);
    }
    if (beresp.http.x-amz-meta-tombstone) {
        # Removed by the deploy whose layer holds the tombstone.
        set beresp.status = 404;
    } else if ((beresp.status == 403 || beresp.status == 404) && !beresp.http.x-amz-meta-surrogate-key) {
        # S3's own answer for a missing key (an HTML page with its request ids on a
        # website endpoint), not a page publish stored: never served as a 404 page.
        set beresp.http.x-stump-origin-error = "1";
    }
    set beresp.http.x-stump-host = bereq.http.x-stump-host;
    set beresp.http.x-stump-url = bereq.http.X-Stump-Path;
    # Surrogate keys: publish stores them as object metadata; vmod xkey reads xkey.
    if (beresp.http.x-amz-meta-surrogate-key) {
        set beresp.http.xkey = beresp.http.x-amz-meta-surrogate-key;
    }
    if (beresp.status >= 500) {
        # Never show an origin error: keep serving the stale copy (background fetch),
        # else the bland 503 page of vcl_backend_error.
        if (bereq.is_bgfetch) {
            return (abandon);
        }
        return (error(503, "Service Unavailable"));
    }
    if (bereq.http.X-Stump-Phase == "pointer") {
        set beresp.http.xkey = beresp.http.xkey + " " + bereq.http.X-Stump-Site + ":pointer";
        set beresp.http.x-stump-deploy = beresp.http.x-amz-meta-deploy;
        set beresp.http.x-stump-base = beresp.http.x-amz-meta-base;
        if (beresp.ttl > 60s) {
            set beresp.ttl = 60s;
        }
        if (beresp.status != 200) {
            # No pointer yet (the site is in place): asked again soon.
            set beresp.ttl = 1s;
            set beresp.grace = 10s;
            call stump_strip_amz;
            return (deliver);
        }
    } else if (bereq.http.X-Stump-Phase == "trees") {
        # The deploys with a tree, space-separated, for vcl_deliver to look a preview
        # label up in.
        set beresp.http.x-stump-ids = beresp.http.x-amz-meta-ids;
        if (beresp.ttl > 60s) {
            set beresp.ttl = 60s;
        }
        if (beresp.status != 200) {
            # No list (nothing published atomically yet): no preview is served; asked
            # again soon.
            set beresp.ttl = 1s;
            set beresp.grace = 10s;
            call stump_strip_amz;
            return (deliver);
        }
    } else if (beresp.status != 200 || !beresp.http.xkey) {
        # A 404 carries the error page's keys: add the URL's own key, the one the page
        # will have once it exists, so the purge that publishes it also drops the 404,
        # and the site's, so a purge of the whole site does too.
        set beresp.http.xkey = beresp.http.xkey + " " + bereq.http.X-Stump-Site + ":url:" +
            regsub(regsub(bereq.http.X-Stump-Path, "\?.*$", ""), "index\.html$", "") + " " + bereq.http.X-Stump-Site;
    }
    call stump_backend_site;
    call stump_strip_amz;
    # Text is compressed once, here, and kept compressed (clients without gzip get it
    # uncompressed on delivery).
    if (beresp.http.Content-Type ~ "` + gzipTypes + `" && !beresp.http.Content-Encoding) {
        set beresp.do_gzip = true;
    }
    if (!bereq.http.X-Stump-Phase &&
            (beresp.status == 403 || beresp.status == 404 || beresp.status == 400)) {
        # Missing pages are cached (edge.not_found_ttl, purged by the URL's key when the
        # page is published; vcl_deliver serves the site's 404 page), so a storm of
        # random paths reaches the origin once a path.
        call stump_not_found_ttl;
        set beresp.grace = 10s;
        return (deliver);
    }
}

sub vcl_backend_error {
    if (bereq.is_bgfetch) {
        return (abandon);
    }
    set beresp.http.Content-Type = "text/html; charset=utf-8";
    set beresp.http.Retry-After = "10";
    set beresp.ttl = 0s;
    synthetic({"<!doctype html><title>Service Unavailable</title><h1>Service Unavailable</h1><p>Please try again in a moment.</p>
"});
    return (deliver);
}

`)
	dispatch("stump_not_found_ttl", "bereq.http.X-Stump-Site", func(s *Site) string {
		return fmt.Sprintf("        set beresp.ttl = %s;\n", dur(s.NotFoundTTL))
	})
	dispatch("stump_backend_site", "bereq.http.X-Stump-Site", func(s *Site) string {
		var d strings.Builder
		fmt.Fprintf(&d, "        if (beresp.ttl > 0s) {\n            set beresp.grace = %s;\n            set beresp.keep = %s;\n        }\n", dur(s.Grace), dur(s.Grace))
		// Redirects of the origin name origin paths: turn them back into site paths.
		loc := `^(https?://` + regexp.QuoteMeta(s.OriginHost) + `(:[0-9]+)?)?` + regexp.QuoteMeta(s.Prefix) + `/(_stump/trees/[^/]+/)?`
		fmt.Fprintf(&d, "        if (beresp.http.Location) {\n            set beresp.http.Location = regsub(beresp.http.Location, %s, \"/\");\n        }\n", vclStr(loc))
		for _, h := range s.MetaHeaders {
			fmt.Fprintf(&d, "        unset beresp.http.x-amz-meta-header-%s;\n", h)
		}
		return d.String()
	})
	w("sub stump_strip_amz {\n")
	for _, h := range amzHeaders {
		w("    unset beresp.http.%s;\n", h)
	}
	w("    unset beresp.http.x-amz-meta-header-content-disposition;\n    unset beresp.http.Server;\n}\n\n")

	w(`sub vcl_deliver {
    if (req.http.X-Stump-Phase == "pointer") {
        unset req.http.X-Stump-Phase;
        if (resp.status == 200 && resp.http.x-stump-base ~ "^[A-Za-z0-9][A-Za-z0-9._-]*$") {
            set req.http.X-Stump-Base = resp.http.x-stump-base;
        }
        if (req.http.X-Stump-Preview) {
            # A preview's marker (a tree made before markers is full: no base).
            return (restart);
        }
        if (resp.status == 200 && resp.http.x-stump-deploy ~ "^[A-Za-z0-9][A-Za-z0-9._-]*$") {
            set req.http.X-Stump-Deploy = resp.http.x-stump-deploy;
        } else if (resp.status == 403 || resp.status == 404) {
            # No pointer yet: the site is still in place at the target's root.
            set req.http.X-Stump-Deploy = "-";
        } else {
            return (synth(503, "Service Unavailable"));
        }
        return (restart);
    }
    if (req.http.X-Stump-Phase == "trees") {
        # A preview label publish has not recorded gets the answer of a label that is
        # no deploy id: the preview is never fetched.
        unset req.http.X-Stump-Phase;
        if (resp.status == 200) {
            # "<ids> |<label>": is the label one of the ids? (Varnish trims a header's
            # leading space, hence ^ or a space before an id.)
            set req.http.X-Stump-Listed = resp.http.x-stump-ids + " |" + req.http.X-Stump-Deploy;
            if (req.http.X-Stump-Listed ~ "(^|\s)([^\s|]+)\s[^|]*\|\2$") {
                set req.http.X-Stump-Listed = "1";
                return (restart);
            }
            unset req.http.X-Stump-Listed;
            return (synth(404, "Not Found"));
        } else if (resp.status == 403 || resp.status == 404) {
            return (synth(404, "Not Found"));
        }
        return (synth(503, "Service Unavailable"));
    }
    if (req.http.X-Stump-Site && !req.http.X-Stump-NotFound &&
            (resp.status == 403 || resp.status == 404 || resp.status == 400)) {
        # S3 answers a missing key with 403 or 404 and maybe XML: serve the site's 404 page.
        set req.http.X-Stump-NotFound = "1";
        return (restart);
    }
    if (req.http.X-Stump-NotFound) {
        if (resp.status != 200 && resp.status != 404) {
            return (synth(404, "Not Found"));
        }
        if (resp.status == 404 && (!resp.http.Content-Type ~ "^text/html" || resp.http.x-stump-origin-error)) {
            return (synth(404, "Not Found"));
        }
        set resp.status = 404;
    }
    if (obj.hits > 0) {
        set resp.http.X-Cache = "HIT";
    } else {
        set resp.http.X-Cache = "MISS";
    }
    set resp.http.X-Cache-Hits = obj.hits;
    set req.http.X-Stump-File = regsub(regsub(req.http.X-Stump-Url, "\?.*$", ""), "/$", "/index.html");
    call stump_headers;
    call stump_hygiene;
    unset resp.http.xkey;
    unset resp.http.x-stump-host;
    unset resp.http.x-stump-url;
    unset resp.http.x-stump-deploy;
    unset resp.http.x-stump-base;
    unset resp.http.x-stump-ids;
    unset resp.http.x-stump-origin-error;
}

# What every answer gets, the edge's own included: nothing that names the server, and
# previews kept out of search engines.
sub stump_hygiene {
    unset resp.http.Via;
    unset resp.http.X-Varnish;
    unset resp.http.Server;
    unset resp.http.X-Powered-By;
    if (req.http.X-Stump-Preview) {
        set resp.http.X-Robots-Tag = "noindex";
    }
}

`)
	dispatch("stump_headers", "req.http.X-Stump-Site", func(s *Site) string {
		var d strings.Builder
		for _, h := range s.Headers {
			fmt.Fprintf(&d, "        set resp.http.%s = %s;\n", h.Name, vclStr(h.Value))
		}
		for _, r := range s.Rules {
			fmt.Fprintf(&d, "        if (req.http.X-Stump-File ~ %s) {\n", vclStr(r.Match))
			for _, h := range r.Values {
				if h.Value == "" {
					fmt.Fprintf(&d, "            unset resp.http.%s;\n", h.Name)
				} else {
					fmt.Fprintf(&d, "            set resp.http.%s = %s;\n", h.Name, vclStr(h.Value))
				}
			}
			d.WriteString("        }\n")
		}
		return d.String()
	})

	w("# The security headers of answers that belong to no site.\nsub stump_default_headers {\n")
	names := make([]string, 0, len(DefaultHeaders))
	for k := range DefaultHeaders {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		w("    set resp.http.%s = %s;\n", k, vclStr(DefaultHeaders[k]))
	}
	w("}\n\n")

	w(`sub vcl_synth {
    call stump_hygiene;
    if (req.http.X-Stump-Site) {
        call stump_headers;
    } else {
        call stump_default_headers;
    }
    if (req.http.X-Purged) {
        set resp.http.X-Purged = req.http.X-Purged;
    }
    if (req.http.X-Banned) {
        set resp.http.X-Banned = req.http.X-Banned;
    }
    if (req.method == "PURGE" || req.method == "BAN") {
        set resp.http.Content-Type = "text/plain; charset=utf-8";
        set resp.body = "" + resp.status + " " + resp.reason + {"
"};
        return (deliver);
    }
    if (req.http.X-Stump-Block) {
        call stump_blocked;
        return (deliver);
    }
    if (req.http.X-Stump-Auth) {
        set resp.http.WWW-Authenticate = {"Basic realm="preview", charset="UTF-8""};
    }
    if (req.http.X-Stump-Location) {
        set resp.http.Location = req.http.X-Stump-Location;
        set resp.http.Content-Type = "text/plain; charset=utf-8";
        set resp.body = "";
        return (deliver);
    }
    # Anything else the edge answers itself is bland: no origin detail, no reason why.
    set resp.http.Content-Type = "text/html; charset=utf-8";
    set resp.body = "<!doctype html><title>" + resp.reason + "</title><h1>" + resp.reason + {"</h1>
"};
    return (deliver);
}

`)
	dispatch("stump_blocked", "req.http.X-Stump-Site", func(s *Site) string {
		return fmt.Sprintf("        set resp.status = %d;\n        set resp.reason = %q;\n        set resp.http.Content-Type = \"text/plain; charset=utf-8\";\n        set resp.body = {\"%s\"};\n",
			s.BlockedStatus, s.BlockedReason, s.BlockedBody)
	})
}
