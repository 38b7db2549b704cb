// Unit tests of the generated Fastly VCL (falco's testing syntax), for the sites of
// unitSites in falco_test.go: a (in place, alias www.a.test, redirects, a header rule,
// the q/page query allowlist on search/**, RU blocked, 3 requests per 10s counting
// every request) and d (atomic, previews with basic auth, WordPress rules off, blocked
// answer 404 "gone", rate limit on misses).

// ---- routing ------------------------------------------------------------------

// @scope: recv
// @suite: a host and its alias route to the site, its canonical host and backend
sub test_route_alias {
    set req.http.Host = "WWW.A.test";
    set req.url = "/";
    set req.url = "/page/";
    testing.call_subroutine("vcl_recv");
    assert.not_error();
    assert.equal(req.http.X-Stump-Site, "a");
    assert.equal(req.http.Host, "a.test");
    assert.equal(req.backend, F_stump_a);
    assert.equal(req.url, "/a/page/");
    assert.equal(req.http.X-Stump-Origin-Host, "bkt.s3-website-eu-west-1.amazonaws.com");
    assert.state(lookup);
}

// @scope: recv
// @suite: an unknown host is a 404 that reaches no origin
sub test_route_unknown {
    set req.http.Host = "nowhere.test";
    set req.url = "/";
    testing.call_subroutine("vcl_recv");
    assert.error(404);
    assert.is_notset(req.http.X-Stump-Site);
}

// @scope: recv
// @suite: a client cannot set the VCL's internal headers
sub test_internal_headers {
    set req.http.Host = "a.test";
    set req.url = "/";
    set req.http.X-Stump-Deploy = "20261203t100000z-cccccc";
    set req.http.X-Stump-Listed = "1";
    set req.http.X-Stump-Error = "401";
    testing.call_subroutine("vcl_recv");
    assert.not_error();
    assert.is_notset(req.http.X-Stump-Deploy);
    assert.is_notset(req.http.X-Stump-Listed);
}

// @scope: miss
// @suite: the origin is asked for the bucket's Host
sub test_origin_host {
    set req.http.X-Stump-Origin-Host = "bkt.s3-website-eu-west-1.amazonaws.com";
    testing.call_subroutine("vcl_miss");
    assert.equal(bereq.http.Host, "bkt.s3-website-eu-west-1.amazonaws.com");
}

// ---- query strings and normalisation -------------------------------------------

// @scope: recv
// @suite: query strings are dropped, tracking parameters too
sub test_query_dropped {
    set req.http.Host = "a.test";
    set req.url = "/";
    set req.url = "/page/?utm_source=x&v=123";
    testing.call_subroutine("vcl_recv");
    assert.equal(req.url, "/a/page/");
    assert.equal(req.http.X-Stump-Path, "/page/");
}

// @scope: recv
// @suite: the allowlist keeps its parameters, sorted
sub test_query_allowlist {
    set req.http.Host = "a.test";
    set req.url = "/";
    set req.url = "/search/?v=2&q=rally&utm_campaign=x&page=3";
    testing.call_subroutine("vcl_recv");
    assert.equal(req.url, "/a/search/?page=3&q=rally");
}

// @scope: recv
// @suite: encoded unreserved characters and repeated slashes are normalised
sub test_normalise {
    set req.http.Host = "a.test";
    set req.url = "/";
    set req.url = {"/x//%70age//%2fx/?a=1"};
    testing.call_subroutine("vcl_recv");
    assert.equal(req.http.X-Stump-Url, {"/x/page/%2Fx/"});
}

// @scope: recv
// @suite: stump's own objects are never served (the 404 page is)
sub test_stump_paths {
    set req.http.Host = "a.test";
    set req.url = "/";
    set req.url = {"/%5Fstump/live"};
    testing.call_subroutine("vcl_recv");
    assert.equal(req.http.X-Stump-NotFound, "1");
    assert.equal(req.url, "/a/404.html");
}

// ---- redirects -------------------------------------------------------------------

// @scope: recv
// @suite: redirects answer at the edge
sub test_redirect {
    set req.http.Host = "a.test";
    set req.url = "/";
    set req.url = "/old/?x=1";
    testing.call_subroutine("vcl_recv");
    assert.error(301);
    assert.equal(req.http.X-Stump-Location, "/new/");
}

// @scope: error
// @suite: a redirect carries Location and no body
sub test_redirect_error {
    set req.http.X-Stump-Site = "a";
    set req.http.X-Stump-Location = "/new/";
    set obj.status = 301;
    testing.call_subroutine("vcl_error");
    assert.equal(obj.http.Location, "/new/");
}

// ---- defenses --------------------------------------------------------------------

// @scope: recv
// @suite: WordPress probes get the bland answer, encoded ones too
sub test_wordpress {
    set req.http.Host = "a.test";
    set req.url = "/";
    set req.url = {"/%77p-login.php"};
    testing.call_subroutine("vcl_recv");
    assert.error(403);
    assert.equal(req.http.X-Stump-Block, "1");
}

// @scope: recv
// @suite: wp-admin in any case
sub test_wordpress_admin {
    set req.http.Host = "a.test";
    set req.url = "/";
    set req.url = "/WP-Admin/x";
    testing.call_subroutine("vcl_recv");
    assert.error(403);
}

// @scope: recv
// @suite: other methods than GET and HEAD are blocked
sub test_method_blocked {
    set req.http.Host = "a.test";
    set req.url = "/";
    set req.method = "POST";
    testing.call_subroutine("vcl_recv");
    assert.error(403);
    assert.equal(req.http.X-Stump-Block, "1");
}

// @scope: recv
// @suite: without the WordPress rules, other methods are a 405
sub test_method_405 {
    set req.http.Host = "d.test";
    set req.url = "/";
    set req.method = "DELETE";
    testing.call_subroutine("vcl_recv");
    assert.error(405);
}

// @scope: recv
// @suite: a blocked country, by Fastly's geolocation
sub test_country_blocked {
    testing.inject_variable("client.geo.country_code", "RU");
    set req.http.Host = "a.test";
    set req.url = "/";
    testing.call_subroutine("vcl_recv");
    assert.error(403);
    assert.equal(req.http.X-Stump-Block, "1");
}

// @scope: recv
// @suite: another country passes, and a country header from the client is no country
sub test_country_allowed {
    testing.inject_variable("client.geo.country_code", "DE");
    set req.http.Host = "a.test";
    set req.url = "/";
    set req.http.X-Country = "RU";
    testing.call_subroutine("vcl_recv");
    assert.not_error();
}

sub mock_over {
    set req.http.X-Stump-Over = "1";
}

// @scope: recv
// @suite: over the rate limit (counting every request): blocked
sub test_rate_all {
    testing.mock("stump_rate_a", "mock_over");
    set req.http.Host = "a.test";
    set req.url = "/";
    testing.call_subroutine("vcl_recv");
    assert.error(403);
}

// @scope: recv
// @suite: under the rate limit: served
sub test_rate_under {
    set req.http.Host = "a.test";
    set req.url = "/";
    testing.call_subroutine("vcl_recv");
    assert.not_error();
}

// @scope: miss
// @suite: a rate limit on misses is checked on a miss
sub test_rate_miss {
    testing.mock("stump_rate_d", "mock_over");
    set req.http.X-Stump-Site = "d";
    testing.call_subroutine("vcl_miss");
    assert.error(403);
}

// @scope: miss
// @suite: the lookups of the pointer and the preview list are not counted
sub test_rate_miss_phase {
    testing.mock("stump_rate_d", "mock_over");
    set req.http.X-Stump-Site = "d";
    set req.http.X-Stump-Phase = "pointer";
    testing.call_subroutine("vcl_miss");
    assert.not_error();
}

// @scope: error
// @suite: the blocked answer is the site's status and body
sub test_blocked_answer {
    set req.http.X-Stump-Site = "d";
    set req.http.X-Stump-Block = "1";
    set obj.status = 403;
    testing.call_subroutine("vcl_error");
    assert.equal(obj.status, 404);
    assert.equal(obj.http.Content-Type, "text/plain; charset=utf-8");
}

// ---- atomic deploys and previews --------------------------------------------------

// @scope: recv
// @suite: atomic: the live pointer is looked up first, through the cache
sub test_atomic_pointer {
    set req.http.Host = "d.test";
    set req.url = "/";
    set req.url = "/news/";
    testing.call_subroutine("vcl_recv");
    assert.equal(req.http.X-Stump-Phase, "pointer");
    assert.equal(req.url, "/d/_stump/live");
    assert.equal(req.http.X-Stump-Path, "/news/");
    assert.state(lookup);
}

// @scope: recv
// @suite: atomic: with the live deploy known, the page comes from its tree
sub test_atomic_tree {
    set req.http.X-Stump-Site = "d";
    set req.http.X-Stump-Url = "/news/";
    set req.http.X-Stump-Deploy = "20261201t100000z-aaaaaa";
    testing.call_subroutine("stump_fetch");
    assert.equal(req.url, "/d/_stump/trees/20261201t100000z-aaaaaa/news/");
}

// @scope: recv
// @suite: atomic: before the first atomic deploy the site is in place
sub test_atomic_in_place {
    set req.http.X-Stump-Site = "d";
    set req.http.X-Stump-Url = "/news/";
    set req.http.X-Stump-Deploy = "-";
    testing.call_subroutine("stump_fetch");
    assert.equal(req.url, "/d/news/");
}

// @scope: recv
// @suite: atomic: fingerprinted assets need no pointer
sub test_atomic_asset {
    set req.http.X-Stump-Site = "d";
    set req.http.X-Stump-Url = "/app.0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.js";
    testing.call_subroutine("stump_fetch");
    assert.is_notset(req.http.X-Stump-Phase);
    assert.equal(req.url, "/d/app.0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.js");
}

// @scope: deliver
// @suite: the pointer names the live deploy, and the request restarts
sub test_pointer_deliver {
    set req.http.X-Stump-Site = "d";
    set req.http.X-Stump-Phase = "pointer";
    set resp.status = 200;
    set resp.http.x-stump-deploy = "20261201t100000z-aaaaaa";
    testing.call_subroutine("vcl_deliver");
    assert.restart();
    assert.equal(req.http.X-Stump-Deploy, "20261201t100000z-aaaaaa");
    assert.is_notset(req.http.X-Stump-Phase);
}

// @scope: deliver
// @suite: no pointer yet: in place
sub test_pointer_missing {
    set req.http.X-Stump-Site = "d";
    set req.http.X-Stump-Phase = "pointer";
    set resp.status = 404;
    testing.call_subroutine("vcl_deliver");
    assert.restart();
    assert.equal(req.http.X-Stump-Deploy, "-");
}

// @scope: deliver
// @suite: a failing pointer is a 503, not an origin error
sub test_pointer_error {
    set req.http.X-Stump-Site = "d";
    set req.http.X-Stump-Phase = "pointer";
    set resp.status = 500;
    testing.call_subroutine("vcl_deliver");
    assert.restart();
    assert.equal(req.http.X-Stump-Error, "503");
}

// @scope: recv
// @suite: a preview label that is no deploy id is a 404 at the edge
sub test_preview_bad_label {
    set req.http.Host = "www.preview.d.test";
    set req.url = "/";
    set req.http.Authorization = "Basic cHJldmlldzpzM2NyZXQ=";
    testing.call_subroutine("vcl_recv");
    assert.error(404);
}

// @scope: recv
// @suite: a preview needs its credentials
sub test_preview_auth {
    set req.http.Host = "20261202t100000z-bbbbbb.preview.d.test";
    set req.url = "/";
    set req.http.Authorization = "Basic d3Jvbmc6d3Jvbmc=";
    testing.call_subroutine("vcl_recv");
    assert.error(401);
}

// @scope: recv
// @suite: a preview label is looked up in the list of recorded deploys first
sub test_preview_list {
    set req.http.Host = "20261202T100000Z-BBBBBB.preview.d.test";
    set req.url = "/";
    set req.http.Authorization = "Basic cHJldmlldzpzM2NyZXQ=";
    testing.call_subroutine("vcl_recv");
    assert.not_error();
    assert.equal(req.http.X-Stump-Deploy, "20261202t100000z-bbbbbb");
    assert.equal(req.http.X-Stump-Phase, "trees");
    assert.equal(req.url, "/d/_stump/trees.txt");
    assert.is_notset(req.http.Authorization);
}

// @scope: deliver
// @suite: a recorded deploy's preview is fetched after the list
sub test_preview_listed {
    set req.http.X-Stump-Site = "d";
    set req.http.X-Stump-Preview = "1";
    set req.http.X-Stump-Phase = "trees";
    set req.http.X-Stump-Deploy = "20261202t100000z-bbbbbb";
    set resp.status = 200;
    set resp.http.x-stump-ids = "20261202t100000z-bbbbbb 20261201t100000z-aaaaaa";
    testing.call_subroutine("vcl_deliver");
    assert.restart();
    assert.equal(req.http.X-Stump-Listed, "1");
    assert.is_notset(req.http.X-Stump-Error);
}

// @scope: deliver
// @suite: an unrecorded deploy id is a 404, the preview never fetched
sub test_preview_unlisted {
    set req.http.X-Stump-Site = "d";
    set req.http.X-Stump-Preview = "1";
    set req.http.X-Stump-Phase = "trees";
    set req.http.X-Stump-Deploy = "20261202t100000z-bbbbbc";
    set resp.status = 200;
    set resp.http.x-stump-ids = "20261202t100000z-bbbbbb 20261201t100000z-aaaaaa";
    testing.call_subroutine("vcl_deliver");
    assert.restart();
    assert.equal(req.http.X-Stump-Error, "404");
    assert.is_notset(req.http.X-Stump-Listed);
}

// @scope: deliver
// @suite: previews are kept out of search engines
sub test_preview_noindex {
    set req.http.X-Stump-Site = "d";
    set req.http.X-Stump-Preview = "1";
    set req.http.X-Stump-Listed = "1";
    set req.http.X-Stump-Url = "/";
    set resp.status = 200;
    testing.call_subroutine("vcl_deliver");
    assert.equal(resp.http.X-Robots-Tag, "noindex");
}

// ---- 404s, caching and surrogate keys ----------------------------------------------

// @scope: deliver
// @suite: a missing page restarts to the site's 404 page
sub test_404_restart {
    set req.http.X-Stump-Site = "a";
    set req.http.X-Stump-Url = "/missing/";
    set resp.status = 403;
    testing.call_subroutine("vcl_deliver");
    assert.restart();
    assert.equal(req.http.X-Stump-NotFound, "1");
}

// @scope: deliver
// @suite: the 404 page is answered with status 404
sub test_404_page {
    set req.http.X-Stump-Site = "a";
    set req.http.X-Stump-NotFound = "1";
    set req.http.X-Stump-Url = "/missing/";
    set resp.status = 200;
    testing.call_subroutine("vcl_deliver");
    assert.equal(resp.status, 404);
}

// @scope: fetch
// @suite: only a page publish stored is a 404 page: not S3's XML, not its own HTML answer (a stored error document is one)
sub test_fetch_no_page {
    set req.http.X-Stump-Site = "a";
    set req.http.X-Stump-Path = "/404.html";
    set beresp.status = 404;
    set beresp.http.Content-Type = "application/xml";
    set beresp.http.x-amz-meta-surrogate-key = "a:url:/404.html a";
    testing.call_subroutine("vcl_fetch");
    assert.equal(beresp.http.x-stump-no-page, "1");
    unset beresp.http.x-stump-no-page;
    unset beresp.http.x-amz-meta-surrogate-key;
    set beresp.http.Content-Type = "text/html";
    testing.call_subroutine("vcl_fetch");
    assert.equal(beresp.http.x-stump-no-page, "1");
    unset beresp.http.x-stump-no-page;
    set beresp.http.x-amz-meta-surrogate-key = "a:url:/404.html a";
    testing.call_subroutine("vcl_fetch");
    assert.is_notset(beresp.http.x-stump-no-page);
    set beresp.status = 200;
    testing.call_subroutine("vcl_fetch");
    assert.is_notset(beresp.http.x-stump-no-page);
}

// @scope: deliver
// @suite: without a 404 page, the bland 404 (no S3 XML)
sub test_404_no_page {
    set req.http.X-Stump-Site = "a";
    set req.http.X-Stump-NotFound = "1";
    set resp.status = 404;
    set resp.http.Content-Type = "application/xml";
    set resp.http.x-stump-no-page = "1";
    testing.call_subroutine("vcl_deliver");
    assert.restart();
    assert.equal(req.http.X-Stump-Error, "404");
}

// @scope: fetch
// @suite: surrogate keys from the object's metadata; grace as stale-if-error and stale-while-revalidate
sub test_fetch_keys {
    set req.http.X-Stump-Site = "a";
    set req.http.X-Stump-Path = "/page/";
    set beresp.status = 200;
    set beresp.http.x-amz-meta-surrogate-key = "a:url:/page/ a";
    set beresp.http.x-amz-request-id = "abc";
    set beresp.http.Content-Type = "text/html";
    testing.call_subroutine("vcl_fetch");
    assert.equal(beresp.http.Surrogate-Key, "a:url:/page/ a");
    assert.is_notset(beresp.http.x-amz-meta-surrogate-key);
    assert.is_notset(beresp.http.x-amz-request-id);
    assert.equal(beresp.stale_if_error, 12h);
    assert.equal(beresp.stale_while_revalidate, 12h);
    assert.true(beresp.gzip);
}

// @scope: fetch
// @suite: a 404 is cached for not_found_ttl with the URL's own key
sub test_fetch_404 {
    set req.http.X-Stump-Site = "a";
    set req.http.X-Stump-Path = "/missing/index.html";
    set beresp.status = 404;
    set beresp.http.x-amz-meta-surrogate-key = "a:url:/404.html a";
    testing.call_subroutine("vcl_fetch");
    assert.equal(beresp.http.Surrogate-Key, "a:url:/404.html a a:url:/missing/ a");
    assert.equal(beresp.ttl, 30s);
    assert.true(beresp.cacheable);
    assert.is_notset(beresp.http.x-stump-layer-miss);
}

// @scope: fetch
// @suite: a path missing from a layer is a marker naming the base, purged with the URL or the site
sub test_fetch_marker {
    set req.http.X-Stump-Site = "d";
    set req.http.X-Stump-Path = "/kept/";
    set req.http.X-Stump-Deploy = "20261201t110000z-bbbbbb";
    set req.http.X-Stump-Base = "20261201t100000z-aaaaaa";
    set beresp.status = 403;
    testing.call_subroutine("vcl_fetch");
    assert.equal(beresp.http.x-stump-layer-miss, "20261201t100000z-aaaaaa");
    assert.equal(beresp.http.Surrogate-Key, " d:url:/kept/ d");
    assert.true(beresp.cacheable);
    assert.equal(beresp.stale_while_revalidate, 0s);
}

// @scope: fetch
// @suite: a full tree, the base's copy and a tombstone make no marker; a tombstone is a 404
sub test_fetch_no_marker {
    set req.http.X-Stump-Site = "d";
    set req.http.X-Stump-Path = "/gone/";
    set req.http.X-Stump-Deploy = "20261201t100000z-aaaaaa";
    set req.http.X-Stump-Base = "20261201t100000z-aaaaaa";
    set beresp.status = 404;
    testing.call_subroutine("vcl_fetch");
    assert.is_notset(beresp.http.x-stump-layer-miss);
    set req.http.X-Stump-Deploy = "20261201t110000z-bbbbbb";
    set req.http.X-Stump-Fallback = "20261201t100000z-aaaaaa";
    testing.call_subroutine("vcl_fetch");
    assert.is_notset(beresp.http.x-stump-layer-miss);
    unset req.http.X-Stump-Fallback;
    set beresp.status = 200;
    set beresp.http.x-amz-meta-tombstone = "1";
    testing.call_subroutine("vcl_fetch");
    assert.is_notset(beresp.http.x-stump-layer-miss);
    assert.equal(beresp.status, 404);
    assert.is_notset(beresp.http.x-amz-meta-tombstone);
}

// @scope: deliver
// @suite: a marker restarts to the base it names, once
sub test_deliver_marker {
    set req.http.X-Stump-Site = "d";
    set req.http.X-Stump-Url = "/kept/";
    set resp.status = 404;
    set resp.http.x-stump-layer-miss = "20261201t100000z-aaaaaa";
    testing.call_subroutine("vcl_deliver");
    assert.restart();
    assert.equal(req.http.X-Stump-Fallback, "20261201t100000z-aaaaaa");
    assert.is_notset(req.http.X-Stump-NotFound);
}

// @scope: fetch
// @suite: the pointer is tagged SITE:pointer and cached at most a minute
sub test_fetch_pointer {
    set req.http.X-Stump-Site = "d";
    set req.http.X-Stump-Phase = "pointer";
    set beresp.status = 200;
    set beresp.ttl = 3600s;
    set beresp.http.x-amz-meta-deploy = "20261201t100000z-aaaaaa";
    set beresp.http.x-amz-meta-surrogate-key = "d:pointer d";
    testing.call_subroutine("vcl_fetch");
    assert.equal(beresp.ttl, 60s);
    assert.equal(beresp.http.x-stump-deploy, "20261201t100000z-aaaaaa");
    assert.contains(beresp.http.Surrogate-Key, "d:pointer");
}

// @scope: fetch
// @suite: an origin error is never shown: the stale copy when there is one
sub test_fetch_5xx_stale {
    // (falco's stale.exists is always true in tests: the bland 503 without a stale
    // copy is not testable here.)
    set req.http.X-Stump-Site = "a";
    set beresp.status = 503;
    testing.call_subroutine("vcl_fetch");
    assert.state(deliver_stale);
}

// @scope: fetch
// @suite: an origin redirect names a site path, not the bucket's
sub test_fetch_location {
    set req.http.X-Stump-Site = "d";
    set beresp.status = 301;
    set beresp.http.Location = "http://bkt.s3-website-eu-west-1.amazonaws.com/d/_stump/trees/20261201t100000z-aaaaaa/news/";
    testing.call_subroutine("vcl_fetch");
    assert.equal(beresp.http.Location, "/news/");
}

// ---- headers -----------------------------------------------------------------------

// @scope: deliver
// @suite: security headers and header rules; nothing names the server
sub test_headers {
    set req.http.X-Stump-Site = "a";
    set req.http.X-Stump-Url = "/doc.pdf";
    set resp.status = 200;
    set resp.http.Via = "1.1 varnish";
    set resp.http.Server = "AmazonS3";
    set resp.http.Surrogate-Key = "a";
    testing.call_subroutine("vcl_deliver");
    assert.equal(resp.http.Strict-Transport-Security, "max-age=31536000; includeSubDomains");
    assert.equal(resp.http.X-Content-Type-Options, "nosniff");
    assert.equal(resp.http.X-Frame-Options, "DENY");
    assert.equal(resp.http.Content-Disposition, "attachment");
    assert.is_notset(resp.http.Via);
    assert.is_notset(resp.http.Server);
    assert.is_notset(resp.http.Surrogate-Key);
    assert.is_notset(resp.http.X-Robots-Tag);
}

// @scope: deliver
// @suite: answers that belong to no site get the default security headers
sub test_headers_no_site {
    set req.http.X-Stump-Synth = "1";
    set resp.status = 404;
    testing.call_subroutine("vcl_deliver");
    assert.equal(resp.http.Content-Security-Policy, "default-src 'self'");
}

// @scope: error
// @suite: a 401 asks for credentials
sub test_auth_error {
    set req.http.X-Stump-Site = "d";
    set req.http.X-Stump-Auth = "1";
    set obj.status = 401;
    testing.call_subroutine("vcl_error");
    assert.contains(obj.http.WWW-Authenticate, "Basic");
}
