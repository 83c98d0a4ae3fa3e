package onboard

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"ipguard/internal/ipguard"
)

// TestHandSwitchOffStaysOffWithoutDriftRepair: an admin switches
// restrictions off by hand with PORTAL_DRIFT_REPAIR=false. The drift sync
// leaves them off, and so must every later reconcile (a sync, a change),
// until someone switches them on again.
func TestHandSwitchOffStaysOffWithoutDriftRepair(t *testing.T) {
	e := newEnv()
	e.do(t, `{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.10"]}`)
	if !e.p.enabled {
		t.Fatal("restrictions not switched on by the first change")
	}
	e.p.set(e.p.list, false) // by hand
	e.do(t, `{"action":"sync"}`)
	if e.p.enabled {
		t.Fatal("the drift sync switched restrictions back on")
	}
	e.do(t, `{"action":"sync"}`)
	if e.p.enabled {
		t.Fatal("the second sync switched restrictions back on although PORTAL_DRIFT_REPAIR=false")
	}
	res := e.do(t, `{"id":"u2","email":"b@example.com","allowedIps":["203.0.113.11"]}`)
	if e.p.enabled || res.RestrictionsEnabled {
		t.Fatalf("a later change switched restrictions back on: %+v", res)
	}
	// Switched on again by hand: the tool keeps them on from then on.
	e.p.set(e.p.list, true)
	e.do(t, `{"action":"sync"}`)
	e.do(t, `{"id":"u3","email":"c@example.com","allowedIps":["203.0.113.12"]}`)
	if !e.p.enabled {
		t.Error("restrictions off after they were switched on again by hand")
	}
}

// TestRetryAfterAnUnbumpedWriteReachesThePortal: the user's record was
// stored but the invocation ended before the version bump (DynamoDB
// throttled the counter, or the Lambda was killed). Lambda's retry finds the
// record unchanged; it must not answer "applied" while the portal lacks the
// addresses.
func TestRetryAfterAnUnbumpedWriteReachesThePortal(t *testing.T) {
	e := newEnv()
	e.do(t, `{"id":"u0","email":"z@example.com","allowedIps":["203.0.113.9"]}`) // a clean, reconciled state
	e.st.users["u1"] = ipguard.User{ID: "u1", Email: "a@example.com", Entries: []string{"203.0.113.10"}, Rev: 1, CreatedAt: t0, UpdatedAt: t0}
	res := e.do(t, `{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.10"]}`)
	if !strings.Contains(ips(e.p.list), "203.0.113.10") {
		t.Fatalf("portal = %s after the retry (result %+v); want 203.0.113.10 on it", ips(e.p.list), res)
	}
	if res.Portal != PortalApplied {
		t.Errorf("result = %+v", res)
	}
	// Once applied, the same request again sends no PUT.
	puts := e.p.puts
	e.do(t, `{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.10"]}`)
	if e.p.puts != puts {
		t.Errorf("a replay sent %d PUTs", e.p.puts-puts)
	}
}

// TestRemoveIsIdempotent: a remove that went through, sent again (Lambda's
// retry of an asynchronous invocation, the replay tool) succeeds without a
// change and without a PUT, and says what it did not find.
func TestRemoveIsIdempotent(t *testing.T) {
	e := newEnv()
	e.do(t, `{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.10","203.0.113.11"]}`)
	req := `{"action":"remove","id":"u1","allowedIps":["203.0.113.10"]}`
	e.do(t, req)
	puts, writes := e.p.puts, e.st.writes
	res, err := e.s.Handle(context.Background(), []byte(req))
	if err != nil {
		t.Fatalf("remove sent again: %v", err)
	}
	if res.Stored || len(res.Removed) != 0 || e.p.puts != puts || e.st.writes != writes {
		t.Errorf("remove sent again changed something: %+v (puts %d, writes %d)", res, e.p.puts-puts, e.st.writes-writes)
	}
	if w := strings.Join(res.Warnings, " "); !strings.Contains(w, "203.0.113.10") {
		t.Errorf("warnings = %q; want one naming 203.0.113.10 as not found", res.Warnings)
	}
	if got := ips(e.p.list); got != "192.0.2.1!,203.0.113.11" {
		t.Errorf("portal = %s", got)
	}
}

// TestPreviewNeedsDays: a preview without "days" (or with a misspelt
// "day") would replay nothing and report no refused login: a rehearsal that
// says "all clear" without looking. It is InvalidInput.
func TestPreviewNeedsDays(t *testing.T) {
	for _, payload := range []string{`{"action":"preview"}`, `{"action":"preview","day":30}`, `{"action":"preview","days":null}`} {
		e := newEnv()
		e.s.Logins = &fakeLogins{}
		_, err := e.s.Handle(context.Background(), []byte(payload))
		if ipguard.ErrorCode(err) != ipguard.EInvalid || !strings.Contains(fmt.Sprint(err), "days") {
			t.Errorf("%s: err = %v; want InvalidInput naming days", payload, err)
		}
	}
}
