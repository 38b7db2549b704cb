package fastly

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stump-dev/stump/build/config"
	"github.com/stump-dev/stump/edge"
	"github.com/stump-dev/stump/purge"
	"github.com/stump-dev/stump/purge/cdntest"
)

const (
	testService = "SU1Z0isxPaozGVKXdv0eY"
	testToken   = "fastly-token-that-must-never-be-printed"
	testSecret  = "Basic cHJldmlldzpzM2NyZXQ="
)

func deploySites(t *testing.T, countries, extra string) []*config.Loaded {
	edgeYAML := "edge:\n  origin: http://203.0.113.9:80\n  website_domain: s3-website-eu-west-1.amazonaws.com\n  fastly: { service_id: " + testService + ", shield: iad-va-us }\n"
	return []*config.Loaded{
		loadSite(t, "a", "baseURL: https://a.test/\ntarget: s3://bkt/a\n"+extra+edgeYAML+"  defenses: { blocked_countries: ["+countries+"] }\n"),
		loadSite(t, "d", "baseURL: https://d.test/\ntarget: s3://bkt/d\ndeploy: { mode: atomic }\n"+edgeYAML+
			"  preview_host: preview.d.test\n  preview_auth_env: D_PREVIEW_AUTH\n  probe: { interval: 10s }\n"),
		// Another service: not deployed here.
		loadSite(t, "other", "baseURL: https://other.test/\ntarget: s3://bkt/o\nedge:\n  origin: http://203.0.113.9:80\n  origin_host: o.example\n  fastly: { service_id: OtherService1234 }\n"),
	}
}

func want(t *testing.T, sites []*config.Loaded) *Desired {
	t.Helper()
	p, err := edge.NewPlan(nil, sites...)
	if err != nil {
		t.Fatal(err)
	}
	d, err := Want(p, testService, map[string]string{PreviewAuthKey("d"): testSecret})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func newClient(f *cdntest.FastlyAPI, sleeps *cdntest.Sleeps) *Client {
	return &Client{Service: testService, Token: purge.Secret(testToken), API: f.URL,
		Backoff: purge.Backoff{Attempts: 4, Base: time.Second, Sleep: sleeps.Sleep}}
}

func noToken(t *testing.T, texts ...string) {
	t.Helper()
	for _, s := range texts {
		if strings.Contains(s, testToken) {
			t.Errorf("the API token was printed: %q", s)
		}
	}
}

func TestDeploy(t *testing.T) {
	ctx := context.Background()
	f := cdntest.NewFastlyAPI(t, testService, testToken)
	c := newClient(f, &cdntest.Sleeps{})

	// First deploy to a new service: everything is created in version 2.
	var out bytes.Buffer
	d := want(t, deploySites(t, "RU", ""))
	v, err := c.Deploy(ctx, d, Options{Out: &out})
	if err != nil || v != 2 || f.Active() != 2 {
		t.Fatalf("first deploy: version %d, active %d, %v\n%s", v, f.Active(), err, out.String())
	}
	got := f.Version(2)
	if m := got.VCLs[MainVCLName]; m == nil || !m.Main || m.Content != d.VCL {
		t.Errorf("main VCL not uploaded as main: %+v", m)
	}
	if strings.Contains(d.VCL, "other.test") {
		t.Errorf("the VCL routes a site of another service")
	}
	b := got.Backends["stump_a"]
	if b["address"] != "203.0.113.9" || b["port"] != "80" || b["override_host"] != "bkt.s3-website-eu-west-1.amazonaws.com" || b["shield"] != "iad-va-us" {
		t.Errorf("backend stump_a: %v", b)
	}
	if got.Backends["stump_d"]["healthcheck"] != "stump_d" || got.Healthchecks["stump_d"]["path"] != "/d/_stump/live" || got.Healthchecks["stump_d"]["check_interval"] != "10000" {
		t.Errorf("health check of d: %v %v", got.Backends["stump_d"], got.Healthchecks["stump_d"])
	}
	if items := f.Items(CountriesDict); len(items) != 1 || items["a:RU"] != "1" {
		t.Errorf("countries: %v", items)
	}
	if items := f.Items(SecretsDict); items[PreviewAuthKey("d")] != testSecret || !got.WriteOnly[got.Dicts[SecretsDict]] {
		t.Errorf("secrets: %v (write-only %v)", items, got.WriteOnly)
	}
	for _, want := range []string{"+ backend stump_a", "+ dictionary stump_blocked_countries", "+ stump_blocked_countries a:RU",
		"~ stump_secrets d.preview_auth (value not shown)", "~ vcl stump_main", "activated version 2 (was 1)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	noToken(t, out.String())
	if strings.Contains(out.String(), testSecret) {
		t.Errorf("the preview credentials were printed")
	}

	// The same again: no new version.
	out.Reset()
	if v, err := c.Deploy(ctx, d, Options{Out: &out}); err != nil || v != 0 || f.Latest() != 2 {
		t.Errorf("unchanged deploy: version %d, latest %d, %v\n%s", v, f.Latest(), err, out.String())
	}

	// A country list change is a dictionary update: no new version.
	out.Reset()
	d = want(t, deploySites(t, "RU, KP", ""))
	if v, err := c.Deploy(ctx, d, Options{Out: &out}); err != nil || v != 0 || f.Latest() != 2 || f.Active() != 2 {
		t.Errorf("country change: version %d, latest %d, %v\n%s", v, f.Latest(), err, out.String())
	}
	if items := f.Items(CountriesDict); len(items) != 2 || items["a:KP"] != "1" {
		t.Errorf("countries after the change: %v", items)
	}

	// A dry run writes nothing.
	calls := len(f.Calls())
	out.Reset()
	d = want(t, deploySites(t, "KP", "redirects:\n  - { from: /old/, to: /new/ }\n"))
	if v, err := c.Deploy(ctx, d, Options{Out: &out, DryRun: true}); err != nil || v != 0 {
		t.Fatalf("dry run: %d %v", v, err)
	}
	for _, call := range f.Calls()[calls:] {
		if !strings.HasPrefix(call, "GET ") {
			t.Errorf("the dry run wrote: %s", call)
		}
	}
	for _, want := range []string{"  + ", "/old/", "- stump_blocked_countries a:RU", "dry run"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("dry run output lacks %q:\n%s", want, out.String())
		}
	}

	// The change for real: version 3, cloned from 2 (which keeps its VCL).
	out.Reset()
	if v, err := c.Deploy(ctx, d, Options{Out: &out}); err != nil || v != 3 || f.Active() != 3 {
		t.Fatalf("second deploy: %d %v\n%s", v, err, out.String())
	}
	if f.Version(2).VCLs[MainVCLName].Content == f.Version(3).VCLs[MainVCLName].Content {
		t.Errorf("version 2 was edited")
	}

	// Rollback activates version 2 again.
	out.Reset()
	if v, err := c.Rollback(ctx, Options{Out: &out, DryRun: true}); err != nil || v != 0 || f.Active() != 3 {
		t.Errorf("rollback dry run: %d %v, active %d", v, err, f.Active())
	}
	if v, err := c.Rollback(ctx, Options{Out: &out}); err != nil || v != 2 || f.Active() != 2 {
		t.Errorf("rollback: %d %v, active %d\n%s", v, err, f.Active(), out.String())
	}
	if !strings.Contains(out.String(), "/old/") || !strings.Contains(out.String(), "activated version 2 (was 3)") {
		t.Errorf("rollback output:\n%s", out.String())
	}
	noToken(t, out.String())
	if v := f.Violations(); len(v) > 0 {
		t.Errorf("API breaches: %q", v)
	}
}

func TestDeployFailures(t *testing.T) {
	ctx := context.Background()
	d := want(t, deploySites(t, "RU", ""))

	t.Run("validation error activates nothing", func(t *testing.T) {
		f := cdntest.NewFastlyAPI(t, testService, testToken)
		f.ValidationError = "Unused subroutine stump_x"
		_, err := newClient(f, &cdntest.Sleeps{}).Deploy(ctx, d, Options{})
		if err == nil || !strings.Contains(err.Error(), "does not validate") || !strings.Contains(err.Error(), "nothing was activated") || !strings.Contains(err.Error(), "Unused subroutine") {
			t.Errorf("err = %v", err)
		}
		if f.Active() != 1 || f.Latest() != 2 {
			t.Errorf("active %d, latest %d: want 1 and the draft 2", f.Active(), f.Latest())
		}
		if len(f.Items(CountriesDict)) != 0 {
			t.Errorf("items were written for a version that does not validate: %v", f.Items(CountriesDict))
		}
	})

	t.Run("429 and 5xx are retried", func(t *testing.T) {
		f := cdntest.NewFastlyAPI(t, testService, testToken)
		f.FailNext(1, cdntest.Failure{Status: 429, RetryAfter: "2"})
		f.FailNext(2, cdntest.Failure{Status: 503})
		sleeps := &cdntest.Sleeps{}
		v, err := newClient(f, sleeps).Deploy(ctx, d, Options{})
		if err != nil || v != 2 || f.Active() != 2 {
			t.Fatalf("deploy through failures: %d %v", v, err)
		}
		if w := sleeps.Waits(); len(w) != 3 || w[0] != 2*time.Second {
			t.Errorf("waits %v, want 3 with Retry-After's 2s first", w)
		}
		if v := f.Violations(); len(v) > 0 {
			t.Errorf("API breaches: %q", v)
		}
	})

	t.Run("5xx until the attempts run out", func(t *testing.T) {
		f := cdntest.NewFastlyAPI(t, testService, testToken)
		f.FailAlways(&cdntest.Failure{Status: 500})
		_, err := newClient(f, &cdntest.Sleeps{}).Deploy(ctx, d, Options{})
		var herr *purge.HTTPError
		if !errors.As(err, &herr) || herr.Status != 500 || !strings.Contains(err.Error(), "after 4 attempts") {
			t.Errorf("err = %v", err)
		}
		noToken(t, err.Error())
	})

	t.Run("a version locked by someone else", func(t *testing.T) {
		f := cdntest.NewFastlyAPI(t, testService, testToken)
		f.OnClone = func(f *cdntest.FastlyAPI, n int) { f.LockByOther(n) }
		_, err := newClient(f, &cdntest.Sleeps{}).Deploy(ctx, d, Options{})
		var lerr *LockedError
		if !errors.As(err, &lerr) || !strings.Contains(err.Error(), "locked") || !strings.Contains(err.Error(), "nothing was activated") {
			t.Errorf("err = %v", err)
		}
		if f.Active() != 1 {
			t.Errorf("active %d", f.Active())
		}
	})

	t.Run("someone else activated meanwhile", func(t *testing.T) {
		f := cdntest.NewFastlyAPI(t, testService, testToken)
		c := newClient(f, &cdntest.Sleeps{})
		if _, err := c.Deploy(ctx, d, Options{}); err != nil {
			t.Fatal(err)
		}
		f.OnClone = func(f *cdntest.FastlyAPI, n int) { f.Activate(1) }
		_, err := c.Deploy(ctx, want(t, deploySites(t, "RU", "redirects:\n  - { from: /a/, to: /b/ }\n")), Options{})
		if err == nil || !strings.Contains(err.Error(), "activated by someone else") {
			t.Errorf("err = %v", err)
		}
		if f.Active() != 1 {
			t.Errorf("active %d, want 1 (theirs)", f.Active())
		}
	})

	t.Run("wrong token", func(t *testing.T) {
		f := cdntest.NewFastlyAPI(nil, testService, "another-token")
		t.Cleanup(f.Close)
		_, err := newClient(f, &cdntest.Sleeps{}).Deploy(ctx, d, Options{})
		if err == nil || !strings.Contains(err.Error(), "401") {
			t.Errorf("err = %v", err)
		}
		noToken(t, err.Error())
	})

	t.Run("preview credentials missing from the environment", func(t *testing.T) {
		p, err := edge.NewPlan(nil, deploySites(t, "RU", "")...)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Want(p, testService, nil); err == nil || !strings.Contains(err.Error(), "D_PREVIEW_AUTH") {
			t.Errorf("err = %v", err)
		}
		if _, err := Want(p, "NoSuchService99", nil); err == nil {
			t.Errorf("a service no site names: no error")
		}
	})
}
