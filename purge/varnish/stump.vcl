vcl 4.1;
#
# stump's recommended VCL: Varnish in front of an S3 static-website endpoint, with the
# three purge methods stump's varnish adapter sends (docs/varnish.md explains each part).
#
# The template (purge/varnish/stump.vcl) has four placeholders, each a NAME between two
# "@": BACKEND_HOST and BACKEND_PORT, the website endpoint to fetch from; WEBSITE_HOST,
# the Host header it expects (BUCKET.s3-website-REGION.amazonaws.com on AWS,
# BUCKET.localhost for the tests' versitygw); SITE, the site's name, the first part of
# its surrogate keys. varnish.VCL() in Go and start_varnish in scripts/services.sh fill
# them in.
#
# Needs Debian's varnish (7.x) and varnish-modules (vmod xkey).

import std;
import purge;
import xkey;

backend website {
    .host = "@BACKEND_HOST@";
    .port = "@BACKEND_PORT@";
    .connect_timeout = 2s;
    .first_byte_timeout = 30s;
    .between_bytes_timeout = 10s;
}

# Who may purge. Add the machines that run `stump publish`.
acl purgers {
    "127.0.0.1";
    "::1";
}

sub vcl_recv {
    # One cache entry per page, whatever port or letter case the client's Host has.
    set req.http.Host = std.tolower(regsub(req.http.Host, ":[0-9]+$", ""));
    # A static site ignores query strings: dropping them keeps one object per URL, so a
    # purge of the URL reaches every copy ("/news/?utm_source=x" is "/news/").
    set req.url = regsub(req.url, "\?.*$", "");

    if (req.method == "PURGE" || req.method == "BAN") {
        if (client.ip !~ purgers) {
            return (synth(403, "Forbidden"));
        }
        if (req.http.Host == "") {
            return (synth(400, "A purge needs the site's Host header"));
        }
        if (req.method == "BAN") {
            # BAN /, X-Ban-Url: a regex over URL paths of this Host. Lurker-friendly: it
            # only tests obj.http.*, so the ban lurker clears it in the background.
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
        # PURGE /, xkey-purge: KEY KEY...: every object tagged with any of the keys.
        if (req.http.xkey-purge) {
            set req.http.X-Purged = xkey.purge(req.http.xkey-purge);
            return (synth(200, "Purged"));
        }
        if (req.http.xkey-softpurge) {
            set req.http.X-Purged = xkey.softpurge(req.http.xkey-softpurge);
            return (synth(200, "Soft-purged"));
        }
        # PURGE /path: that URL of this Host (looked up, then purged in vcl_hit/vcl_miss).
        return (hash);
    }

    if (req.method != "GET" && req.method != "HEAD") {
        return (synth(405, "Method Not Allowed"));
    }
    # Nothing on a static site depends on them; they would only make Varnish pass.
    unset req.http.Cookie;
    unset req.http.Authorization;
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
}

sub vcl_backend_fetch {
    # Remember the site's Host for bans, then ask the website endpoint for the bucket.
    set bereq.http.x-stump-host = bereq.http.Host;
    set bereq.http.Host = "@WEBSITE_HOST@";
}

sub vcl_backend_response {
    # What bans test: kept on the object, removed before delivery.
    set beresp.http.x-stump-host = bereq.http.x-stump-host;
    set beresp.http.x-stump-url = bereq.url;

    # Surrogate keys: publish stores them as object metadata; vmod xkey reads xkey.
    if (beresp.http.x-amz-meta-surrogate-key) {
        set beresp.http.xkey = beresp.http.x-amz-meta-surrogate-key;
    }
    if (beresp.status != 200 || !beresp.http.xkey) {
        # A 404 carries the error page's keys: add the URL's own key, the one the page
        # will have once it exists, so the purge that publishes it also drops the 404.
        set beresp.http.xkey = beresp.http.xkey + " @SITE@:url:" +
            regsub(bereq.url, "index\.html$", "");
    }

    # Headers set by `headers:` rules in site.yaml come as x-amz-meta-header-<name>.
    # Map those your site uses (VCL cannot map header names generically).
    if (beresp.http.x-amz-meta-header-content-disposition) {
        set beresp.http.Content-Disposition = beresp.http.x-amz-meta-header-content-disposition;
    }

    # S3's headers are not for visitors (and need no room in the cache).
    unset beresp.http.x-amz-meta-surrogate-key;
    unset beresp.http.x-amz-meta-sha256;
    unset beresp.http.x-amz-meta-header-content-disposition;
    unset beresp.http.x-amz-request-id;
    unset beresp.http.x-amz-id-2;
    unset beresp.http.x-amz-version-id;
    unset beresp.http.x-amz-delete-marker;
    unset beresp.http.x-amz-expiration;
    unset beresp.http.x-amz-server-side-encryption;
    unset beresp.http.x-amz-storage-class;
    unset beresp.http.x-amz-website-redirect-location;
    unset beresp.http.x-amz-error-code;
    unset beresp.http.x-amz-error-message;
    unset beresp.http.x-amz-error-detail-key;

    if (beresp.status == 404) {
        # Cache a missing page briefly: long enough to absorb a spike of requests for
        # it, short enough if a purge is ever lost. The purge of a newly published
        # page drops it at once anyway (see the keys above).
        set beresp.ttl = 60s;
        set beresp.grace = 10s;
        return (deliver);
    }
    # Otherwise the TTL comes from Cache-Control: s-maxage for pages (an hour by
    # default), max-age for static files and fingerprinted assets. When it has run out,
    # serve the old copy for up to an hour while fetching the new one, and while the
    # origin is down.
    if (beresp.ttl > 0s) {
        set beresp.grace = 1h;
    }
}

sub vcl_deliver {
    if (obj.hits > 0) {
        set resp.http.X-Cache = "HIT";
    } else {
        set resp.http.X-Cache = "MISS";
    }
    set resp.http.X-Cache-Hits = obj.hits;
    unset resp.http.xkey;
    unset resp.http.x-stump-host;
    unset resp.http.x-stump-url;
}

sub vcl_synth {
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
}
