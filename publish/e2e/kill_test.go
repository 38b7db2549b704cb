package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"syscall"
	"testing"

	"github.com/stump-dev/stump/internal/testenv"
	"github.com/stump-dev/stump/publish"
)

// Where a killed publish stopped, as the protocol sees it.
const (
	beforeMark = iota // nothing live changed; the pointer still names v1 as live
	marked            // the pointer says "materializing": an interrupted deploy
	committed         // the pointer names v2; purge or clean did not finish
)

var killPoints = []struct {
	at    string
	phase int
}{
	{"lock", beforeMark},
	{"put:1", beforeMark},
	{"upload", beforeMark},
	{"record", beforeMark},
	{"mark", marked},
	{"copy:1", marked},
	{"copy:3", marked},
	{"materialize", marked},
	{"commit", committed},
	{"purge", committed},
	{"clean", committed},
}

// publishJSON is what `stump publish --json` prints.
type publishJSON struct {
	OK    bool `json:"ok"`
	Sites []struct {
		Site   string          `json:"site"`
		OK     bool            `json:"ok"`
		Result *publish.Result `json:"result"`
		Error  string          `json:"error"`
	} `json:"sites"`
}

func parsePublish(t testing.TB, r cliRun) *publish.Result {
	t.Helper()
	var out publishJSON
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || len(out.Sites) != 1 || out.Sites[0].Result == nil {
		t.Fatalf("publish --json printed no result (%v): %s", err, r)
	}
	return out.Sites[0].Result
}

// readStatusOf runs stump status --json for a site and target.
func readStatusOf(t testing.TB, dir string, env []string, site, target string) *publish.Status {
	t.Helper()
	r := mustStump(t, dir, env, "status", "--site", site, "--target", target, "--json")
	var st publish.Status
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatalf("status --json: %v: %s", err, r)
	}
	return &st
}

// readStatus runs stump status --json for site k.
func readStatus(t testing.TB, dir string, env []string, target string) *publish.Status {
	t.Helper()
	return readStatusOf(t, dir, env, "k", target)
}

// TestKilledAtEveryStep publishes v1, then kills a publish of v2 (SIGKILL, through
// STUMP_FAULT_KILL_AT) at every step of the protocol, and checks that the live tree
// never names a missing object (a crawler runs during the whole scenario, and the tree
// is crawled again after the kill), that status tells about the interruption and the
// dead holder's lease, and that the next publish --break-lock finishes the job (the
// "publish" subtests) or rollback --break-lock undoes it (the "rollback" subtests),
// leaving a tree that stump verify accepts and a free lock.
func TestKilledAtEveryStep(t *testing.T) {
	env := testenv.S3(t)
	for _, kp := range killPoints {
		for _, mode := range []string{"publish", "rollback"} {
			t.Run(strings.ReplaceAll(kp.at, ":", "")+"/"+mode, func(t *testing.T) {
				t.Parallel()
				killScenario(t, env, kp.at, kp.phase, mode)
			})
		}
	}
}

func killScenario(t *testing.T, env testenv.S3Env, at string, phase int, mode string) {
	bucket := testenv.NewBucket(t, env)
	target := targetURL(bucket, env.Endpoint)
	cenv := cliEnv(env)
	pub := func(extra ...string) []string {
		return append([]string{"publish", "--site", "k", "--target", target, "--no-build"}, extra...)
	}

	v1 := parsePublish(t, mustStump(t, wsV1, cenv, pub("--json")...)).Deploy
	if v1 == "" {
		t.Fatal("the first publish named no deploy")
	}
	cr := startCrawler(t, env, bucket)
	stopped := false
	defer func() {
		if !stopped {
			cr.stop(t)
		}
	}()

	killed := stump(t, wsV2, append(cenv, "STUMP_FAULT_KILL_AT="+at), pub()...)
	if killed.signal != syscall.SIGKILL {
		t.Fatalf("STUMP_FAULT_KILL_AT=%s: want the publish killed by SIGKILL: %s", at, killed)
	}
	checkLive(t, env, bucket, "after the kill at "+at)

	// status tells the state: the dead holder's lease, and an interrupted deploy
	// exactly when the kill came between mark and commit.
	st := mustStump(t, wsV1, cenv, "status", "--site", "k", "--target", target)
	if want := fmt.Sprintf("(pid %d)", killed.pid); !strings.Contains(st.stdout, "held by") || !strings.Contains(st.stdout, want) {
		t.Errorf("status does not show the killed publish's lease %s: %s", want, st)
	}
	if got := strings.Contains(st.stdout, "interrupted"); got != (phase == marked) {
		t.Errorf("status mentions an interrupted deploy: %v, want %v: %s", got, phase == marked, st)
	}

	var want string // the deploy that must be live in the end ("" = not v1)
	noop := false   // the recovery publish found nothing to do
	switch mode {
	case "publish":
		if phase != committed {
			// The lease of a dead process is stale but is only broken on request.
			r := stump(t, wsV2, cenv, pub()...)
			if r.code != 1 || !strings.Contains(r.stderr, "locked by") ||
				!strings.Contains(r.stderr, fmt.Sprintf("pid %d", killed.pid)) || !strings.Contains(r.stderr, "--break-lock") {
				t.Errorf("a publish without --break-lock over the dead publish's lease: want exit 1 and a locked-by message naming pid %d and --break-lock: %s", killed.pid, r)
			}
		}
		res := parsePublish(t, mustStump(t, wsV2, cenv, pub("--break-lock", "--json")...))
		if phase == marked && res.Repaired == "" {
			t.Errorf("the publish after a kill at %s does not say it finished the interrupted deploy: %+v", at, res)
		}
		noop = res.Noop
		if res.Deploy == "" || res.Deploy == v1 {
			t.Errorf("after the publish, deploy %q is live, want v2 (not %s)", res.Deploy, v1)
		}
	case "rollback":
		r := stump(t, wsV1, cenv, "rollback", "--site", "k", "--target", target, "--break-lock")
		switch phase {
		case beforeMark:
			// Nothing was made live: undoing the killed publish leaves v1 live (it
			// never walks back a committed deploy for a publish that never went live).
			if r.code != 0 || !strings.Contains(r.stdout, "undid the interrupted deploy") || !strings.Contains(r.stdout, v1+" is still live") {
				t.Errorf("rollback after a kill at %s (before anything went live): want exit 0, the killed deploy undone and %s still live: %s", at, v1, r)
			}
		case marked:
			if r.code != 0 || !strings.Contains(r.stdout, "undid the interrupted deploy") || !strings.Contains(r.stdout, v1+" is live again") {
				t.Errorf("rollback after a kill at %s: want the interrupted deploy undone and %s live: %s", at, v1, r)
			}
		case committed:
			if r.code != 0 || !strings.Contains(r.stdout, "deploy "+v1+" is live again") {
				t.Errorf("rollback after a kill at %s (v2 committed): want %s live again: %s", at, v1, r)
			}
		}
		want = v1
	}

	mustStump(t, wsV1, cenv, "verify", "--site", "k", "--target", target)
	checkLive(t, env, bucket, "after the recovery")
	cr.stop(t)
	stopped = true

	s := readStatus(t, wsV1, cenv, target)
	if s.Lock != nil {
		why := ""
		if noop {
			why = "; publish --break-lock found the site up to date and returned before taking the lock, so the stale lease stays and the next publish that changes anything fails until --break-lock is given again"
		}
		t.Errorf("after the recovery, the lock is still held by %s@%s (pid %d; the killed publish was pid %d)%s", s.Lock.Holder, s.Lock.Host, s.Lock.PID, killed.pid, why)
	}
	if s.Interrupted != "" || s.Pointer.State != publish.StateLive || len(s.Pointer.PendingDeletes) > 0 {
		t.Errorf("after the recovery, the pointer is not clean: %+v", s.Pointer)
	}
	// The static file v2 removed and the one it added: verify only notes a stray file
	// stump wrote, so check the tree itself.
	keys, err := listLive(context.Background(), env.Client(), bucket)
	if err != nil {
		t.Fatal(err)
	}
	_, hasOld := keys["old.txt"]
	_, hasNew := keys["new.txt"]
	if wantV1 := want == v1; hasOld != wantV1 || hasNew == wantV1 {
		t.Errorf("after the recovery, old.txt live: %v, new.txt live: %v; want only the %s one", hasOld, hasNew, map[bool]string{true: "v1", false: "v2"}[wantV1])
	}
	page := string(liveBody(t, env, bucket, "posts/b/index.html"))
	if want == v1 {
		if s.Pointer.Live != v1 || strings.Contains(page, "v2-page-marker") {
			t.Errorf("after the rollback, want v1 (%s) live, got %s (v2 page text live: %v)", v1, s.Pointer.Live, strings.Contains(page, "v2-page-marker"))
		}
	} else if s.Pointer.Live == v1 || !strings.Contains(page, "v2-page-marker") {
		t.Errorf("after the publish, want v2 live, got %s (v2 page text live: %v)", s.Pointer.Live, strings.Contains(page, "v2-page-marker"))
	}
}
