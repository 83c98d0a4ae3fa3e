package onboard

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"ipguard/internal/ipguard"
	"ipguard/internal/lease/leasetest"
	"ipguard/internal/onboard/onboardtest"
)

// The scenarios of issue #15: writes that are late, refused, repeated or
// out of order, and alerts that cannot leave at once. Each fails on the
// reconciler as it was before (see the comment of each).

func (e *env) handle(payload string) (Result, error) {
	return e.s.Handle(context.Background(), []byte(payload))
}

func (e *env) state() ipguard.PortalState {
	st, _ := e.st.PortalState(context.Background())
	return st
}

func countKind(a *fakeAlerts, kind string) int {
	return strings.Count(strings.Join(a.kinds(), " "), kind)
}

// A PUT that times out and lands later is the tool's own: once seen, its
// addresses are owned, and it is no drift. (Before: its addresses were
// owned at once, whatever became of it.)
func TestLatePUTIsOwnedOnlyOnceSeenAndIsNoDrift(t *testing.T) {
	e := newEnv()
	e.p.late = 1
	res := e.do(t, `{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.10"]}`)
	if res.Portal != PortalPending || !strings.Contains(res.PortalReason, "outcome unknown") {
		t.Fatalf("result = %+v; want pending, outcome unknown", res)
	}
	st := e.state()
	if slices.Contains(st.Owned, "203.0.113.10") || st.SentOutcome != ipguard.SentUnknown || ips(st.Sent) != "192.0.2.1!,203.0.113.10" {
		t.Fatalf("state: owned %v, sent %s (%s); want nothing owned and the PUT remembered as unknown", st.Owned, ips(st.Sent), st.SentOutcome)
	}
	e.p.landLate()
	puts := e.p.puts
	res = e.do(t, `{"action":"sync"}`)
	st = e.state()
	if res.Drift != nil || countKind(e.alerts, "allowlist_drift") != 0 {
		t.Errorf("the tool's own late PUT was taken for drift: %+v", res.Drift)
	}
	if !slices.Contains(st.Owned, "203.0.113.10") || st.Sent != nil || e.p.puts != puts {
		t.Errorf("owned %v, sent %v, puts %d→%d; want the landed PUT owned, nothing resent", st.Owned, st.Sent, puts, e.p.puts)
	}
}

// An older PUT that lands after a newer one is repaired by the next
// reconcile as the tool's own doing: the address the newer PUT removed
// leaves again, and nobody is alerted about the tool itself.
func TestPUTLandingAfterANewerOneIsRepairedNotAlerted(t *testing.T) {
	e := newEnv()
	e.do(t, `{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.10"]}`)
	e.p.late = 1
	e.do(t, `{"id":"u2","email":"b@example.com","allowedIps":["203.0.113.11"]}`) // times out, lands later
	e.do(t, `{"action":"offboard","id":"u1"}`)                                   // a newer PUT: .10 leaves
	if got := ips(e.p.list); got != "192.0.2.1!,203.0.113.11" {
		t.Fatalf("portal = %s", got)
	}
	e.p.landLate() // the old list, with .10, lands now
	e.do(t, `{"action":"sync"}`)
	if got := ips(e.p.list); got != "192.0.2.1!,203.0.113.11" {
		t.Errorf("portal = %s; want the offboarded address gone again", got)
	}
	if n := countKind(e.alerts, "allowlist_drift"); n != 0 {
		t.Errorf("%d drift alerts about the tool's own late PUT", n)
	}
}

// The PUT answered 2xx but the read-back failed: applied, not confirmed.
// The next reconcile finds its list and takes it as the tool's own, without
// a drift alert about itself. (Before: a high-severity drift alert saying
// the tool's own address was "added outside the tool".)
func TestReadBackFailingOnceIsNoDriftAboutItself(t *testing.T) {
	e := newEnv()
	e.p.afterPut = func(f *fakePortal) { f.readErrs = 1 }
	res := e.do(t, `{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.10"]}`)
	if res.Portal != PortalPending || !strings.Contains(res.PortalReason, "applied, not confirmed") {
		t.Fatalf("result = %+v", res)
	}
	if st := e.state(); st.SentOutcome != ipguard.SentUnconfirmed || slices.Contains(st.Owned, "203.0.113.10") {
		t.Fatalf("state: %s, owned %v", st.SentOutcome, st.Owned)
	}
	res = e.do(t, `{"action":"sync"}`)
	if res.Drift != nil || len(e.alerts.sent) != 0 {
		t.Errorf("drift %+v, alerts %d; want none", res.Drift, len(e.alerts.sent))
	}
	if st := e.state(); !slices.Contains(st.Owned, "203.0.113.10") {
		t.Errorf("owned %v; want the confirmed address owned", st.Owned)
	}
}

// A refused PUT owns nothing: when an admin then adds the same address by
// hand, an offboarding leaves the admin's entry. (Before: a failed write
// recorded its addresses as owned, and the offboarding removed it.)
func TestRefusedPUTOwnsNothing(t *testing.T) {
	e := newEnv()
	e.p.refuse = 1
	_, err := e.handle(`{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.10"]}`)
	if err == nil || !strings.Contains(err.Error(), "not applied") {
		t.Fatalf("err = %v; want the refusal", err)
	}
	if st := e.state(); st.Sent != nil || slices.Contains(st.Owned, "203.0.113.10") {
		t.Fatalf("state after a refused PUT: sent %v owned %v", st.Sent, st.Owned)
	}
	e.p.set(restr("192.0.2.1!,203.0.113.10"), true) // the admin adds it by hand
	e.do(t, `{"action":"offboard","id":"u1"}`)
	if got := ips(e.p.list); got != "192.0.2.1!,203.0.113.10" {
		t.Errorf("portal = %s; the admin's entry must stay", got)
	}
}

// The state records "a PUT of list L is in flight" before sending it: read
// while the PUT is on the portal (its hook runs inside the call), the state
// names that list as in flight, so a holder after a crash mid-PUT expects it.
func TestPUTIsRecordedInFlightBeforeItIsSent(t *testing.T) {
	e := newEnv()
	var during ipguard.PortalState
	e.p.afterPut = func(*fakePortal) { during = e.state() }
	e.do(t, `{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.10"]}`)
	if during.SentOutcome != ipguard.SentInFlight || ips(during.Sent) != "192.0.2.1!,203.0.113.10" || !slices.Equal(during.SentAdded, []string{"203.0.113.10"}) {
		t.Errorf("state during the PUT: sent %s (%q), added %v; want the list in flight", ips(during.Sent), during.SentOutcome, during.SentAdded)
	}
	if st := e.state(); st.Sent != nil || !slices.Contains(st.Owned, "203.0.113.10") {
		t.Errorf("after the PUT was seen: sent %v, owned %v; want nothing in flight, the address owned", st.Sent, st.Owned)
	}
}

// The fence: no PUT starts with less lease time left than one attempt's
// timeout plus the margin; nothing is sent, and the change stays pending.
func TestNoPUTStartsTooCloseToTheLeaseEnd(t *testing.T) {
	e := newEnv()
	e.s.WriteAttempt = 3 * time.Minute // longer than the lease (2m without a deadline)
	res := e.do(t, `{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.10"]}`)
	if res.Portal != PortalPending || e.p.puts != 0 || !strings.Contains(res.PortalReason, "lease") {
		t.Fatalf("result %+v, puts %d; want nothing sent", res, e.p.puts)
	}
	if st := e.state(); st.Sent != nil {
		t.Errorf("a PUT never sent is remembered as in flight: %v", st.Sent)
	}
	e.s.WriteAttempt = testWriteAttempt
	e.do(t, `{"action":"sync"}`)
	if got := ips(e.p.list); got != "192.0.2.1!,203.0.113.10" {
		t.Errorf("portal = %s after the next sync", got)
	}
}

// A throttled publish is not lost: the alert is due until SNS accepts it,
// and the next reconcile sends it. (Before: the episode was recorded first
// and the publish tried once.)
func TestThrottledPublishIsSentByTheNextReconcile(t *testing.T) {
	e := newEnv()
	e.do(t, `{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.10"]}`)
	e.p.set(e.p.list, false) // restrictions switched off by hand
	e.alerts.throttle = 1
	e.do(t, `{"action":"sync"}`)
	if len(e.alerts.sent) != 0 {
		t.Fatalf("sent %d alerts through a throttled topic", len(e.alerts.sent))
	}
	e.do(t, `{"action":"sync"}`)
	if n := countKind(e.alerts, "allowlist_drift"); n != 1 {
		t.Fatalf("drift alerts after the next sync: %d; want 1", n)
	}
	e.do(t, `{"action":"sync"}`)
	if n := countKind(e.alerts, "allowlist_drift"); n != 1 {
		t.Errorf("drift alerts: %d; want still 1 (once per episode)", n)
	}
}

// The lock-out episode is keyed by its cause's kind, not the error text:
// keys/@self failing with a different message each time alerts once. (An
// unexpected answer: a 429 or 5xx is no lock-out risk at all, see
// TestAnUnavailablePreflightIsNoLockoutRisk.)
func TestLockoutEpisodeIsKeyedByKindNotText(t *testing.T) {
	e := newEnv()
	e.p.set(restr("192.0.2.1!"), false)
	n := 0
	e.s.Directory = &fakeDirectory{keyErr: func() error { n++; return fmt.Errorf("keys/@self: unexpected answer (request id %d)", n) }}
	e.do(t, `{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.10"]}`)
	for range 3 {
		e.do(t, `{"action":"sync"}`)
	}
	if got := countKind(e.alerts, "allowlist_lockout_risk"); got != 1 {
		t.Errorf("lock-out alerts: %d; want 1", got)
	}
}

// The lock-out alert goes through the outbox like the drift alert: a
// throttled publish leaves it due, and the next reconcile sends it, once.
func TestThrottledLockoutAlertIsSentByTheNextReconcile(t *testing.T) {
	e := newEnv()
	e.p.set(restr("192.0.2.1!"), false)
	e.s.Directory = &fakeDirectory{keyErr: func() error { return fmt.Errorf("keys/@self: unexpected answer") }}
	e.alerts.throttle = 1
	e.do(t, `{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.10"]}`)
	if got := countKind(e.alerts, "allowlist_lockout_risk"); got != 0 {
		t.Fatalf("lock-out alerts through a throttled topic: %d", got)
	}
	for range 2 {
		e.do(t, `{"action":"sync"}`)
	}
	if got := countKind(e.alerts, "allowlist_lockout_risk"); got != 1 {
		t.Errorf("lock-out alerts after the next syncs: %d; want 1", got)
	}
}

// The lock-out preflight is not cached past a key change: a key rotated to
// a non-owner's cannot switch restrictions on from an earlier answer.
func TestPreflightIsNotCachedPastAKeyChange(t *testing.T) {
	e := newEnv()
	e.s.Settings.DriftRepair = true
	dir := &fakeDirectory{creator: "o", people: map[string]Person{"o": {ID: "o", IsOwner: true}, "adm": {ID: "adm", IsAdmin: true}}}
	e.s.Directory = dir
	e.p.set(restr("192.0.2.1!"), false)
	e.do(t, `{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.10"]}`)
	if !e.p.enabled {
		t.Fatal("the owner's key did not switch restrictions on")
	}
	dir.creator = "adm" // the key rotated to an admin's
	e.p.set(e.p.list, false)
	e.do(t, `{"action":"sync"}`)
	if e.p.enabled {
		t.Error("restrictions switched on with a non-owner's key (a cached preflight)")
	}
}

// A hand edit that pushes the list past the cap is still drift: alerted
// and attributed, though the reconcile cannot plan. (Before: the plan's
// error returned before the drift was looked at.)
func TestHandEditPastTheCapIsStillAlerted(t *testing.T) {
	e := newEnv()
	e.s.Settings.MaxEntries = 3
	e.do(t, `{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.10"]}`)
	trail := &fakeTrail{}
	e.s.Trail = trail
	e.p.set(restr("192.0.2.1!,203.0.113.10,198.51.100.1,198.51.100.2"), true)
	trail.add(Change{When: t0.Add(time.Minute), User: "Ada Admin", UserID: "adm", IP: "192.0.2.66"})
	e.now = t0.Add(2 * time.Minute)
	_, _ = e.handle(`{"action":"sync"}`)
	if n := countKind(e.alerts, "allowlist_drift"); n != 1 {
		t.Fatalf("drift alerts: %d; want 1", n)
	}
	// Attributed: the alert names who saved the list (the trail).
	for _, a := range e.alerts.sent {
		if slices.Contains(a.Kinds, "allowlist_drift") && (!strings.Contains(a.Email, "Ada Admin") || !strings.Contains(a.Email, "198.51.100.1")) {
			t.Errorf("drift alert %q; want the entries added and the admin who saved them", a.Email)
		}
	}
}

// A security removal never waits behind additions past the cap: the
// removals go out alone, the additions stay pending.
func TestRemovalPassesTheCapAlone(t *testing.T) {
	e := newEnv()
	e.s.Settings.MaxEntries = 3
	e.do(t, `{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.10"]}`)
	e.p.putErr = ipguard.Errorf(ipguard.EUnavailable, "portal down")
	e.do(t, `{"id":"u2","email":"b@example.com","allowedIps":["203.0.113.11"]}`) // stored, pending
	e.p.putErr = nil
	e.p.set(restr("192.0.2.1!,203.0.113.10,198.51.100.1,198.51.100.2"), true) // a hand edit fills the list
	_, _ = e.handle(`{"action":"offboard","id":"u1"}`)
	if got := ips(e.p.list); strings.Contains(got, "203.0.113.10") {
		t.Errorf("portal = %s; the offboarded address must leave even though the addition does not fit", got)
	}
}

// The cap check before storing counts the changes stored but not yet on
// the portal: a change that would pass the cap is InvalidInput with nothing
// stored.
func TestCapCountsStoredChangesNotYetOnThePortal(t *testing.T) {
	e := newEnv()
	e.s.Settings.MaxEntries = 20
	e.p.putErr = ipguard.Errorf(ipguard.EUnavailable, "portal down")
	e.do(t, `{"id":"u1","email":"a@example.com","allowedIps":["10.0.0.0/29"]}`)            // 8, pending
	e.do(t, `{"id":"u2","email":"b@example.com","allowedIps":["10.0.1.0/29"]}`)            // 16, pending
	_, err := e.handle(`{"id":"u3","email":"c@example.com","allowedIps":["10.0.2.0/29"]}`) // 25 > 20
	if ipguard.ErrorCode(err) != ipguard.EInvalid {
		t.Fatalf("err = %v; want InvalidInput", err)
	}
	if _, found, _ := e.st.GetUser(context.Background(), "u3"); found {
		t.Error("the rejected change was stored")
	}
}

// Many large ranges at the largest PORTAL_MAX_RANGE_ADDRESSES are bounded
// before they are expanded: InvalidInput, not an exhausted memory.
func TestExpansionIsBoundedBeforeAllocating(t *testing.T) {
	e := newEnv()
	e.s.Settings.MaxRangeAddresses = 65536
	var entries []string
	for i := range 100 {
		entries = append(entries, fmt.Sprintf(`"10.%d.0.0/16"`, i))
	}
	_, err := e.handle(`{"id":"u1","email":"a@example.com","allowedIps":[` + strings.Join(entries, ",") + `]}`)
	if ipguard.ErrorCode(err) != ipguard.EInvalid || !strings.Contains(err.Error(), "PORTAL_MAX_ENTRIES") {
		t.Fatalf("err = %v", err)
	}
	d := DesiredState([]ipguard.User{{ID: "u1", Entries: slices.Collect(func(yield func(string) bool) {
		for i := range 100 {
			if !yield(fmt.Sprintf("10.%d.0.0/16", i)) {
				return
			}
		}
	})}}, e.s.Settings, t0)
	if !d.Overflow || len(d.Addrs) > DefaultMaxEntries {
		t.Errorf("desired: overflow %v, %d addresses; want the expansion stopped at the cap", d.Overflow, len(d.Addrs))
	}
}

// A replay of an old request (the failure queue, as the README advises)
// does not give back an address a later request removed: it is applied
// only where it undoes no newer change, with a warning naming the newer
// request, never an error.
func TestReplayOfAnOldRequestUndoesNoNewerChange(t *testing.T) {
	e := newEnv()
	t1, t2 := t0.Add(-time.Hour).Format(time.RFC3339), t0.Add(-30*time.Minute).Format(time.RFC3339)
	add := `{"action":"add","id":"u1","email":"a@example.com","requestedAt":"` + t1 + `","allowedIps":["203.0.113.10","203.0.113.12"]}`
	e.do(t, `{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.11"]}`)
	e.do(t, add)
	e.do(t, `{"action":"remove","id":"u1","requestedAt":"`+t2+`","allowedIps":["203.0.113.10"]}`)
	res := e.do(t, add) // the replay
	if got := ips(e.p.list); strings.Contains(got, "203.0.113.10") {
		t.Errorf("portal = %s; the replay gave back the removed address", got)
	}
	w := strings.Join(res.Warnings, " ")
	if !strings.Contains(w, "203.0.113.10") || !strings.Contains(w, t2) {
		t.Errorf("warnings %q; want the entry and the newer request's time", w)
	}
	u, _, _ := e.st.GetUser(context.Background(), "u1")
	if !slices.Equal(u.Entries, []string{"203.0.113.11", "203.0.113.12"}) {
		t.Errorf("entries = %v", u.Entries)
	}
	// An EventBridge event's time counts as its requestedAt.
	res, err := e.s.HandleEventAt(context.Background(), "UserAllowlistChanged", t0.Add(-2*time.Hour),
		[]byte(`{"action":"add","id":"u1","allowedIps":["203.0.113.10"]}`))
	if err != nil || strings.Contains(ips(e.p.list), "203.0.113.10") || len(res.Warnings) == 0 {
		t.Errorf("an old event re-added the address: %v %s %v", err, ips(e.p.list), res.Warnings)
	}
}

// requestedAt far in the future is InvalidInput: one bad clock must not
// freeze a user's later changes.
func TestRequestedAtInTheFutureIsInvalid(t *testing.T) {
	e := newEnv()
	_, err := e.handle(`{"id":"u1","email":"a@example.com","requestedAt":"` + t0.Add(time.Hour).Format(time.RFC3339) + `","allowedIps":["203.0.113.10"]}`)
	if ipguard.ErrorCode(err) != ipguard.EInvalid || !strings.Contains(err.Error(), "requestedAt") || e.st.Writes != 0 {
		t.Fatalf("err = %v, writes %d", err, e.st.Writes)
	}
	e.do(t, `{"id":"u1","email":"a@example.com","requestedAt":"`+t0.Add(time.Minute).Format(time.RFC3339)+`","allowedIps":["203.0.113.10"]}`)
}

// A remove retried after its version bump was lost reaches the portal.
// (Before: "applied, already", and the address stayed allowed until the
// next scheduled sync.)
func TestRetriedRemoveAfterALostBumpReachesThePortal(t *testing.T) {
	for _, req := range []string{
		`{"action":"remove","id":"u1","allowedIps":["203.0.113.11"]}`,
		`{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.10"]}`, // a replace that only shrinks
	} {
		e := newEnv()
		e.do(t, `{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.10","203.0.113.11"]}`)
		e.st.BumpErrs = 1
		if _, err := e.handle(req); err == nil {
			t.Fatal("the lost bump did not fail the request")
		}
		res := e.do(t, req) // the retry
		if got := ips(e.p.list); got != "192.0.2.1!,203.0.113.10" || res.AppliedBy == "already" {
			t.Errorf("%s: portal = %s, appliedBy %q; want the address gone", req, got, res.AppliedBy)
		}
	}
}

// Attribution by facts: an admin's save in the same second as the tool's
// own is named (and alerted as overwritten, with the list the tool saw);
// the tool's own saves are never named, however the seconds fall.
func TestAdminSaveInTheToolsSecondIsNamed(t *testing.T) {
	e := newEnv()
	trail := e.withTrail()
	e.p.set(restr("192.0.2.1!,198.51.100.7"), true)
	// The admin saves (adding 198.51.100.7) in the same second, between the
	// tool's read and its write: the PUT overwrites it.
	trail.add(Change{When: t0, User: "Ada Admin", UserID: "adm", IP: "192.0.2.66"})
	res := e.do(t, `{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.10"]}`)
	w := strings.Join(res.Warnings, " ")
	if !strings.Contains(w, "Ada Admin") {
		t.Errorf("warnings %q; want the admin named", w)
	}
	if strings.Contains(w, "IP Guard key") {
		t.Errorf("warnings name the tool's own save: %q", w)
	}
	var drift *ipguard.Alert
	for i, a := range e.alerts.sent {
		if slices.Contains(a.Kinds, "allowlist_drift") {
			drift = &e.alerts.sent[i]
		}
	}
	if drift == nil || !strings.Contains(drift.Email, "Ada Admin") || !strings.Contains(drift.Email, t0.Format(time.RFC3339)) ||
		!strings.Contains(drift.Email, "198.51.100.7") || !strings.Contains(drift.Email, "overwrote") {
		t.Errorf("drift alert = %+v; want the admin, the time and the list seen before the write", drift)
	}
}

// One caller making strictly sequential changes is never told that
// "someone else saved the allowlist meanwhile": every save is its own.
func TestSequentialChangesNeverBlameTheToolsOwnSaves(t *testing.T) {
	e := newEnv()
	e.withTrail()
	for i := range 35 {
		e.now = t0.Add(time.Duration(i) * 700 * time.Millisecond)
		res := e.do(t, fmt.Sprintf(`{"id":"u%d","email":"a@example.com","allowedIps":["203.0.113.%d"]}`, i%5, 10+i))
		for _, w := range res.Warnings {
			if strings.Contains(w, "someone else") {
				t.Fatalf("change %d: %q", i, w)
			}
		}
	}
	if len(e.alerts.sent) != 0 {
		t.Errorf("%d alerts about the tool's own saves", len(e.alerts.sent))
	}
}

// preview reports restrictions as the next reconcile leaves them: right
// after a hand switch-off (not yet seen by a reconcile), they stay off.
func TestPreviewAfterAHandSwitchOff(t *testing.T) {
	e := newEnv()
	e.s.Logins = &fakeLogins{}
	e.do(t, `{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.10"]}`)
	e.p.set(e.p.list, false)
	res := e.do(t, `{"action":"preview","days":1}`)
	if res.Preview.Enabled {
		t.Error("preview says restrictions would come on after a hand switch-off (PORTAL_DRIFT_REPAIR=false)")
	}
}

// usersLeftEnv is an env with 20 onboarded users u00..u19 (one address
// each), offboarding of removed users on, and a directory that lists the
// owner "o" and every user but the first gone ones.
func usersLeftEnv(t *testing.T, gone int) *env { return usersLeftEnvOf(t, 20, gone) }

// usersLeftEnvOf is usersLeftEnv with n users (at most 200).
func usersLeftEnvOf(t *testing.T, n, gone int) *env {
	t.Helper()
	e := newEnv()
	people := map[string]Person{"o": {ID: "o", IsOwner: true}}
	for i := range n {
		id := fmt.Sprintf("u%02d", i)
		e.do(t, fmt.Sprintf(`{"id":%q,"email":"a@example.com","allowedIps":["10.1.%d.%d"]}`, id, i/100, 10+i%100))
		if i >= gone {
			people[id] = Person{Status: 1}
		}
	}
	e.s.Settings.OffboardRemovedUsers = true
	e.s.Directory = &fakeDirectory{creator: "o", people: people}
	return e
}

// Users who left: a directory that makes every user look gone (a proxy in
// the way) offboards nobody past the blast radius, and alerts; the ids
// offboarded are alerted also when the sync fails afterwards.
func TestUsersLeftBlastRadius(t *testing.T) {
	e := usersLeftEnv(t, 20) // the directory lists nobody but the owner
	e.do(t, `{"action":"sync"}`)
	res := e.do(t, `{"action":"sync"}`)
	users, _ := e.st.AllUsers(context.Background())
	if len(users) != 20 {
		t.Fatalf("%d users left of 20: a misrouted directory offboarded them", len(users))
	}
	if !strings.Contains(strings.Join(res.Warnings, " "), "none was offboarded") || countKind(e.alerts, "allowlist_users_left") != 1 {
		t.Errorf("warnings %v, alerts %v", res.Warnings, e.alerts.kinds())
	}

	// Within the limit (5 of 20): offboarded after two checks, alerted with
	// the ids, also when the reconcile after them fails.
	e = usersLeftEnv(t, 2)
	e.do(t, `{"action":"sync"}`)
	e.p.putErr = ipguard.Errorf(ipguard.EConfig, "HTTP 403: the key lost its scope")
	_, err := e.handle(`{"action":"sync"}`)
	if err == nil {
		t.Fatal("the failing reconcile did not fail the sync")
	}
	var alert string
	for _, a := range e.alerts.sent {
		if slices.Contains(a.Kinds, "allowlist_users_left") {
			alert = a.Email
		}
	}
	if !strings.Contains(alert, "u00") || !strings.Contains(alert, "u01") {
		t.Errorf("users-left alert %q; want the ids offboarded", alert)
	}
}

// The blast radius scales with the stored users: max(5, OFFBOARD_MAX_PERCENT
// of them, default 10%) may be offboarded by one sync; past it nobody is.
func TestUsersLeftBlastRadiusScalesWithTheStoredUsers(t *testing.T) {
	for _, tc := range []struct {
		name           string
		users, gone    int
		percent        int // OffboardMaxPercent (0: the default, 10)
		wantOffboarded int
	}{
		{"5 of 20: the floor of 5", 20, 5, 0, 5},
		{"6 of 20: past the floor", 20, 6, 0, 0},
		{"7 of 70: 10% of the stored users", 70, 7, 0, 7},
		{"8 of 70: past 10%", 70, 8, 0, 0},
		{"14 of 70 at 20%", 70, 14, 20, 14},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := usersLeftEnvOf(t, tc.users, tc.gone)
			e.s.Settings.OffboardMaxPercent = tc.percent
			e.s.UserChecks = &UserChecks{Min: tc.users} // every user checked in each sync
			e.do(t, `{"action":"sync"}`)
			res := e.do(t, `{"action":"sync"}`)
			n := 0
			for _, l := range res.UsersLeft {
				if l.Offboarded {
					n++
				}
			}
			users, _ := e.st.AllUsers(context.Background())
			if n != tc.wantOffboarded || len(users) != tc.users-tc.wantOffboarded {
				t.Errorf("offboarded %d (%d users left of %d); want %d", n, len(users), tc.users, tc.wantOffboarded)
			}
		})
	}
}

// Offboarding users who left runs only after the allowlist endpoint
// answered in the same sync: a portal that does not answer it (a proxy in
// the way, an outage) offboards nobody, and says so.
func TestUsersLeftWaitForTheAllowlistToAnswer(t *testing.T) {
	e := usersLeftEnv(t, 2)
	e.do(t, `{"action":"sync"}`)
	e.p.readErrs = 1 // the sync's first read of the allowlist fails
	res, _ := e.handle(`{"action":"sync"}`)
	if users, _ := e.st.AllUsers(context.Background()); len(users) != 20 {
		t.Fatalf("%d users left of 20: offboarded without the allowlist answering", len(users))
	}
	if w := strings.Join(res.Warnings, " "); !strings.Contains(w, "not offboarded") || countKind(e.alerts, "allowlist_users_left") != 0 {
		t.Errorf("warnings %q, alerts %v; want the users not offboarded, no users-left alert", w, e.alerts.kinds())
	}
	res = e.do(t, `{"action":"sync"}`) // the allowlist answers: offboarded now
	if users, _ := e.st.AllUsers(context.Background()); len(users) != 18 {
		t.Errorf("%d users after a sync whose allowlist answered; want 18", len(users))
	}
}

// The users-left alert leaves in the sync that offboarded them, whatever
// fails after it (#15 §4: "also when the sync fails afterwards"; §5: due
// before publishing, cleared once the topic took it). Before, it was only
// recorded as due and waited for the flush after the reconcile, which a
// failing sync never reaches: the next sync sent it.
func TestUsersLeftAlertLeavesWhenTheSyncFailsAfterwards(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fail  func(e *env)
		isErr bool
	}{
		{"the version bump after the offboarding fails", func(e *env) { e.st.BumpErrs = 1 }, true},
		{"the reconcile's PUT is refused for the key", func(e *env) {
			e.p.putErr = ipguard.Errorf(ipguard.EConfig, "HTTP 403: the key lost its scope")
		}, true},
		{"another reconcile holds the lease for the whole wait", func(e *env) {
			e.s.Leases.(*leasetest.Backend).Hold(LeaseName, "another", time.Now().Add(time.Hour))
			e.s.LeaseWait = 300 * time.Millisecond
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := usersLeftEnv(t, 2)
			e.do(t, `{"action":"sync"}`) // the first check: seen gone once
			var logs strings.Builder
			e.s.Log = slog.New(slog.NewJSONHandler(&logs, nil))
			tc.fail(e)
			res, err := e.handle(`{"action":"sync"}`)
			if (err != nil) != tc.isErr {
				t.Fatalf("sync: err = %v; want an error %v", err, tc.isErr)
			}
			if err == nil && res.Portal != PortalPending {
				t.Fatalf("sync: portal %q; want pending (the lease held)", res.Portal)
			}
			if alert := usersLeftEmail(e.alerts); !strings.Contains(alert, "u00") || !strings.Contains(alert, "u01") {
				t.Errorf("users-left alert %q; want it sent in this sync with the ids offboarded", alert)
			}
			if due, _ := e.st.DueAlerts(context.Background()); len(due) != 0 {
				t.Errorf("%d alerts still due after the topic took them", len(due))
			}
			if l := logLine(logs.String(), "offboarded users who left the portal"); !strings.Contains(l, `"u00"`) || !strings.Contains(l, `"u01"`) {
				t.Errorf("log %s; want a line with the ids offboarded", logs.String())
			}
		})
	}

	// The topic refuses it once, in a sync that then fails: it stays due and
	// the state is marked, so the next change's reconcile sends it (no
	// need to wait for the next sync).
	e := usersLeftEnv(t, 2)
	e.do(t, `{"action":"sync"}`)
	e.st.BumpErrs, e.alerts.throttle = 1, 1
	if _, err := e.handle(`{"action":"sync"}`); err == nil {
		t.Fatal("the failing version bump did not fail the sync")
	}
	if alert := usersLeftEmail(e.alerts); alert != "" {
		t.Fatalf("sent %q through a throttled topic", alert)
	}
	e.do(t, `{"action":"add","id":"u05","allowedIps":["198.51.100.5"]}`)
	if alert := usersLeftEmail(e.alerts); !strings.Contains(alert, "u00") || !strings.Contains(alert, "u01") {
		t.Errorf("users-left alert %q; want it sent by the next change's reconcile", alert)
	}
}

// logLine is the first line of logs whose text holds msg ("" when none).
func logLine(logs, msg string) string {
	for l := range strings.Lines(logs) {
		if strings.Contains(l, msg) {
			return l
		}
	}
	return ""
}

// usersLeftEmail is the email text of the last users-left alert sent ("" when none).
func usersLeftEmail(a *fakeAlerts) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	alert := ""
	for _, al := range a.sent {
		if slices.Contains(al.Kinds, "allowlist_users_left") {
			alert = al.Email
		}
	}
	return alert
}

// A replay of an onboarding older than a later offboarding is stale: the
// offboarding deleted the record (and its entries' times), so the store
// remembers the offboarding's time (OffboardedKeep) and the replay is not
// applied, with a warning naming the offboarding's time (never an error).
// (Before: the replay brought the offboarded user and the address back.)
func TestReplayOfAnOnboardingAfterItsOffboardingIsStale(t *testing.T) {
	tOn, tOff := t0.Add(-time.Hour), t0.Add(-30*time.Minute)
	onboard := `{"id":"u1","email":"a@example.com","requestedAt":"` + tOn.Format(time.RFC3339) + `","allowedIps":["203.0.113.10"]}`
	offboard := `{"action":"offboard","id":"u1","requestedAt":"` + tOff.Format(time.RFC3339) + `"}`
	for _, tc := range []struct {
		name   string
		before []string // requests before the replay
		replay string
		want   string // the portal afterwards
		stale  bool
	}{
		{"onboarding replayed after its offboarding", []string{onboard, offboard}, onboard, "192.0.2.1!", true},
		{"an add replayed after the offboarding", []string{onboard, offboard},
			`{"action":"add","id":"u1","email":"a@example.com","requestedAt":"` + tOn.Add(time.Minute).Format(time.RFC3339) + `","allowedIps":["203.0.113.12"]}`, "192.0.2.1!", true},
		{"a remove replayed after the offboarding", []string{onboard, offboard},
			`{"action":"remove","id":"u1","requestedAt":"` + tOn.Add(time.Minute).Format(time.RFC3339) + `","allowedIps":["203.0.113.10"]}`, "192.0.2.1!", true},
		{"offboarding that arrived before the onboarding it follows", []string{offboard}, onboard, "192.0.2.1!", true},
		{"onboarded again after the offboarding, then the old onboarding replayed",
			[]string{onboard, offboard, `{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.11"]}`}, onboard, "192.0.2.1!,203.0.113.11", true},
		{"a newer onboarding after the offboarding is applied", []string{onboard, offboard},
			`{"id":"u1","email":"a@example.com","requestedAt":"` + tOff.Add(time.Minute).Format(time.RFC3339) + `","allowedIps":["203.0.113.13"]}`, "192.0.2.1!,203.0.113.13", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv()
			for _, r := range tc.before {
				e.do(t, r)
			}
			res, err := e.handle(tc.replay)
			if err != nil {
				t.Fatalf("the replay failed: %v (a stale request is never an error)", err)
			}
			if got := ips(e.p.list); got != tc.want {
				t.Errorf("portal = %s, want %s", got, tc.want)
			}
			w := strings.Join(res.Warnings, " ")
			if named := strings.Contains(w, "offboarding") && strings.Contains(w, tOff.Format(time.RFC3339)); named != tc.stale {
				t.Errorf("warnings %q; stale %v, want the offboarding's time named: %v", w, named, tc.stale)
			}
			if tc.stale && res.Stored {
				t.Error("a stale request stored a change")
			}
		})
	}
}

// The offboarding is remembered for OffboardedKeep only (the failure
// queue's retention): after that a replay is not recognised.
func TestOffboardingIsRememberedForTheFailureQueuesRetention(t *testing.T) {
	st := onboardtest.NewStore()
	at := t0.Add(-time.Hour)
	if err := st.PutOffboarded(context.Background(), "u1", at, t0.Add(OffboardedKeep)); err != nil {
		t.Fatal(err)
	}
	// An older offboarding never replaces the newer one.
	_ = st.PutOffboarded(context.Background(), "u1", at.Add(-time.Hour), t0.Add(OffboardedKeep))
	if got, ok, _ := st.Offboarded(context.Background(), "u1", t0); !ok || !got.Equal(at) {
		t.Errorf("offboarded = %v %v, want %v", got, ok, at)
	}
	if _, ok, _ := st.Offboarded(context.Background(), "u1", t0.Add(OffboardedKeep+time.Second)); ok {
		t.Error("remembered past its lifetime")
	}
	if OffboardedKeep != 14*24*time.Hour {
		t.Errorf("OffboardedKeep = %s, want the failure queue's 14 days", OffboardedKeep)
	}
}

// The fence after an unanswered PUT: the portal may still be working on it,
// so the lease is not released at once but kept until one write attempt's
// time has passed; a request in that time does not write under it (it finds
// the lease held), and the next holder afterwards sees the PUT landed and
// takes it for the tool's own. (Before: the lease was released at once and
// the next holder could PUT while the unanswered one was still in flight.)
func TestLeaseIsKeptUntilAnUnansweredPUTCouldHaveLanded(t *testing.T) {
	for _, tc := range []struct {
		name    string
		attempt time.Duration
		fault   func(p *fakePortal)
		kept    bool
	}{
		{"unanswered (lost answer): kept", 30 * time.Second, func(p *fakePortal) { p.lostAnswer = 1 }, true},
		{"unanswered (timeout, lands later): kept", 30 * time.Second, func(p *fakePortal) { p.late = 1 }, true},
		{"refused (4xx, not applied): released", 30 * time.Second, func(p *fakePortal) { p.refuse = 1 }, false},
		{"answered: released", 30 * time.Second, func(*fakePortal) {}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv()
			leases := &leasetest.Backend{}
			e.s.Leases, e.s.WriteAttempt, e.s.LeaseWait = leases, tc.attempt, 50*time.Millisecond
			tc.fault(e.p)
			before := time.Now()
			_, _ = e.handle(`{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.10"]}`)
			held := leases.Owner(LeaseName) != "" && leases.Until(LeaseName).After(time.Now())
			if held != tc.kept {
				t.Fatalf("lease held after the request: %v, want %v", held, tc.kept)
			}
			if !tc.kept {
				return
			}
			if until := leases.Until(LeaseName); until.After(before.Add(tc.attempt + time.Minute)) {
				t.Errorf("lease kept until %s: longer than one attempt", until)
			}
			puts := e.p.puts
			res := e.do(t, `{"id":"u2","email":"b@example.com","allowedIps":["203.0.113.20"]}`)
			if e.p.puts != puts || res.Portal != PortalPending {
				t.Errorf("a request wrote while the unanswered PUT could still land: %d PUTs (was %d), portal %s", e.p.puts, puts, res.Portal)
			}
			// Once it could have landed, the next holder reads it as landed.
			e.p.landLate()
			leases.Hold(LeaseName, leases.Owner(LeaseName), time.Now().Add(-time.Second))
			res = e.do(t, `{"action":"sync"}`)
			if got := ips(e.p.list); got != "192.0.2.1!,203.0.113.10,203.0.113.20" || res.Drift != nil {
				t.Errorf("after the attempt's time: portal %s, drift %+v", got, res.Drift)
			}
		})
	}
}

// Attribution by facts, and where the facts run out, by content: a hand
// edit by the key's own user in the same second as the tool's save (here
// after a PUT whose answer was lost, when every save by the key's user may
// be the tool's) is told by the list read back differing from the list
// sent, and named as a possible hand edit by that user. (Before: it was
// taken for the tool's own save and nobody was named.)
func TestKeyUsersOwnHandEditInTheToolsSecondIsNamed(t *testing.T) {
	for _, tc := range []struct {
		name       string
		unanswered bool
	}{
		{"after an unanswered PUT", true},
		{"every PUT answered", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv()
			trail := e.withTrail()
			if tc.unanswered {
				e.p.lostAnswer = 1
				if res, _ := e.handle(`{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.10"]}`); res.Portal != PortalPending {
					t.Fatalf("first request: %+v", res)
				}
			}
			// The owner (whose key the tool uses) saves by hand right after
			// the tool's PUT, in the same second.
			e.p.afterPut = savedAfterPut(trail, "198.51.100.9", Change{When: t0, User: "Olga Owner", UserID: "o", IP: "192.0.2.77"})
			res := e.do(t, `{"id":"u2","email":"b@example.com","allowedIps":["203.0.113.20"]}`)
			w := strings.Join(res.Warnings, " ")
			if !strings.Contains(w, "Olga Owner") {
				t.Errorf("warnings %q; want the key user's hand edit named", w)
			}
			if !strings.Contains(ips(e.p.list), "198.51.100.9") {
				t.Errorf("portal %s: the hand edit's entry was not kept", ips(e.p.list))
			}
		})
	}
}

// A removal-only plan removes only addresses nobody needs: when the desired
// addresses pass the cap, the expansion stops there, so the addresses of
// the users after that point were never counted as needed, and the
// removal-only plan took them for unneeded and removed them from the
// portal: an addition that did not fit locked out another user (attack
// review, #15 §4). Stores that pass the cap this way: PORTAL_MAX_ENTRIES
// lowered, or two changes that each passed the cap check at once.
func TestRemovalOnlyPlanKeepsWhatUsersPastTheCapNeed(t *testing.T) {
	e := newEnv()
	e.do(t, `{"id":"z","email":"z@example.com","allowedIps":["203.0.113.10","203.0.113.11"]}`)
	e.do(t, `{"id":"m","email":"m@example.com","allowedIps":["198.51.100.9"]}`)
	e.do(t, `{"id":"b","email":"b@example.com","allowedIps":["198.51.100.1","198.51.100.2"]}`)
	e.p.putErr = ipguard.Errorf(ipguard.EUnavailable, "portal down")
	e.do(t, `{"action":"offboard","id":"m"}`) // stored, pending: 198.51.100.9 must go
	e.p.putErr = nil
	e.s.Settings.MaxEntries = 3 // lowered: b's and z's four addresses no longer fit
	_, _ = e.handle(`{"action":"sync"}`)
	got := ips(e.p.list)
	for _, a := range []string{"203.0.113.10", "203.0.113.11", "198.51.100.1", "198.51.100.2"} {
		if !strings.Contains(got, a) {
			t.Errorf("portal = %s; %s, still needed by a stored user, was removed", got, a)
		}
	}
	if strings.Contains(got, "198.51.100.9") {
		t.Errorf("portal = %s; the offboarded user's address must leave although the list passes the cap", got)
	}
}

// An admin's save that the tool's PUT overwrote is alerted also when the
// read-back after that PUT failed (applied, not confirmed): the PUT was
// answered, so its instant is known and the trail tells the admin's save
// from it (attack review, #15 §5). Before, the trail was read only after a
// pass that ended well, so this save was lost without a word: the next
// reconcile finds the tool's own list on the portal, no drift.
func TestAdminSaveOverwrittenIsAlertedWhenTheReadBackFails(t *testing.T) {
	e := newEnv()
	trail := e.withTrail()
	e.p.set(restr("192.0.2.1!,198.51.100.7"), true)
	trail.add(Change{When: t0, User: "Ada Admin", UserID: "adm", IP: "192.0.2.66"})
	e.p.afterPut = func(f *fakePortal) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.readErrs = 1 // the read-back after the PUT
	}
	res, err := e.handle(`{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.10"]}`)
	if err != nil || res.Portal != PortalPending {
		t.Fatalf("portal %q, err %v; want pending (applied, not confirmed)", res.Portal, err)
	}
	var drift string
	for _, a := range e.alerts.sent {
		if slices.Contains(a.Kinds, "allowlist_drift") {
			drift = a.Email
		}
	}
	if !strings.Contains(drift, "Ada Admin") || !strings.Contains(drift, "overwrote") || !strings.Contains(drift, "198.51.100.7") {
		t.Errorf("drift alert %q; want the admin's overwritten save, with the list seen before the write", drift)
	}
	e.now = t0.Add(time.Minute)
	e.do(t, `{"action":"sync"}`)
	if n := countKind(e.alerts, "allowlist_drift"); n != 1 {
		t.Errorf("%d drift alerts after the next sync; want the one", n)
	}
}

// A direct change without requestedAt, replayed from the failure queue,
// keeps the time of its first arrival: the replay names the invocation it
// replays ("replayOf", the on-failure record's request id), whose first
// arrival the function remembers as long as the queue keeps a message. So
// a remove made between the request's first arrival and its final failure
// (Lambda retries for up to the maximum event age) stays newer than the
// replay (attack review, #15 §5: a replay keeps the original). Before, the
// replay was dated by the failure (the record's timestamp), later than that
// remove, and gave the removed address back.
func TestReplayOfADirectChangeKeepsItsFirstArrival(t *testing.T) {
	e := newEnv()
	e.do(t, `{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.11"]}`)
	add := `{"action":"add","id":"u1","allowedIps":["203.0.113.10"]}`
	// The add first arrives at t0 (invocation R1) and is applied, but its
	// invocation fails afterwards; Lambda retries it until it gives up at
	// t0+3m, and sends it to the failure queue.
	if _, err := e.s.Handle(WithRequestID(context.Background(), "R1"), []byte(add)); err != nil {
		t.Fatal(err)
	}
	e.now = t0.Add(2 * time.Minute)
	e.do(t, `{"action":"remove","id":"u1","requestedAt":"`+e.now.Format(time.RFC3339)+`","allowedIps":["203.0.113.10"]}`)
	// Replayed a day later, as cmd/replay sends it: the failure's time and
	// the invocation it replays.
	e.now = t0.Add(24 * time.Hour)
	replay := `{"action":"add","id":"u1","allowedIps":["203.0.113.10"],"requestedAt":"` + t0.Add(3*time.Minute).Format(time.RFC3339) + `","replayOf":"R1"}`
	res, err := e.s.Handle(WithRequestID(context.Background(), "R2"), []byte(replay))
	if err != nil {
		t.Fatal(err)
	}
	if got := ips(e.p.list); strings.Contains(got, "203.0.113.10") {
		t.Errorf("portal = %s; the replay gave back the address a newer remove took", got)
	}
	if w := strings.Join(res.Warnings, " "); !strings.Contains(w, fmtRequestTime(t0)) {
		t.Errorf("warnings %q; want the replay dated by its first arrival (%s)", w, fmtRequestTime(t0))
	}
	// A replay whose first arrival is no longer remembered is dated by the
	// failure, as before.
	if _, err := e.s.Handle(context.Background(), []byte(`{"action":"add","id":"u1","allowedIps":["203.0.113.12"],"requestedAt":"`+t0.Add(3*time.Minute).Format(time.RFC3339)+`","replayOf":"R-unknown"}`)); err != nil {
		t.Fatal(err)
	}
	if got := ips(e.p.list); !strings.Contains(got, "203.0.113.12") {
		t.Errorf("portal = %s; want the replay of an unknown invocation applied", got)
	}
}

// A remove retried after its version bump was lost reaches the portal also
// while another change's reconcile runs: that reconcile read the users
// before the remove was stored, so its version being applied says nothing
// about the remove (attack review, #15 §5). Before, the retry, which
// stored nothing, waited for the version it read to be applied and then
// answered "applied by another request", with the address still allowed
// until the next scheduled sync.
func TestRetriedRemoveIsNotAnsweredByAReconcileThatReadBeforeIt(t *testing.T) {
	e := newEnv()
	e.do(t, `{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.10","203.0.113.11"]}`)
	g := &scanGate{fakeStore: e.st, hold: true, scanned: make(chan struct{}), release: make(chan struct{}), gateID: "u1"}
	e.s.Store = g
	other := make(chan error, 1)
	go func() { // another change: its reconcile reads the users, then waits
		_, err := e.s.Handle(context.Background(), []byte(`{"id":"u2","email":"b@example.com","allowedIps":["203.0.113.20"]}`))
		other <- err
	}()
	<-g.scanned
	remove := `{"action":"remove","id":"u1","allowedIps":["203.0.113.11"]}`
	e.st.BumpErrs = 1
	if _, err := e.handle(remove); err == nil {
		t.Fatal("the lost bump did not fail the request")
	}
	g.mu.Lock()
	g.armed = true // the retry's read lets the other reconcile go on
	g.mu.Unlock()
	res, err := e.handle(remove)
	if err := <-other; err != nil {
		t.Fatalf("the other change: %v", err)
	}
	if err != nil {
		t.Fatalf("retry: %v", err)
	}
	if got := ips(e.p.list); strings.Contains(got, "203.0.113.11") {
		t.Errorf("portal = %s after the retried remove (%s by %q); want 203.0.113.11 gone", got, res.Portal, res.AppliedBy)
	}
}

// A sync that offboarded users who left and then failed (its reconcile)
// names them in its error too: the error is what the failure queue's record
// and the function's error response carry (attack review, #15 §4: the
// failed result no longer drops the list of whom). The error keeps its
// kind (a refused key is still a ConfigurationError).
func TestFailedSyncNamesTheUsersItOffboarded(t *testing.T) {
	e := usersLeftEnv(t, 2)
	e.s.UserChecks = &UserChecks{Min: 20}
	e.do(t, `{"action":"sync"}`)
	e.p.putErr = ipguard.Errorf(ipguard.EConfig, "HTTP 403: the key lost its scope")
	_, err := e.handle(`{"action":"sync"}`)
	if err == nil || !strings.Contains(err.Error(), "u00") || !strings.Contains(err.Error(), "u01") {
		t.Errorf("sync error %v; want the users offboarded named", err)
	}
	if ipguard.ErrorCode(err) != ipguard.EConfig {
		t.Errorf("sync error kind %s; want the reconcile's (ConfigurationError)", ipguard.ErrorCode(err))
	}
}

// A change that only removes is never refused by the cap: when entries
// added by hand (or a lowered PORTAL_MAX_ENTRIES) have put the portal list
// past the cap, a remove, or a replace that only shrinks, is stored and
// its addresses leave the portal (attack review, #15 §4: a security
// removal never waits behind the cap). Before, the cap check before
// storing counted the list as it would be after the removal, still past
// the cap, and refused it as InvalidInput: nothing stored, the address
// still allowed.
func TestRemovalIsNeverRefusedByTheCap(t *testing.T) {
	for _, req := range []string{
		`{"action":"remove","id":"u1","allowedIps":["203.0.113.11"]}`,
		`{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.10"]}`, // a replace that only shrinks
	} {
		e := newEnv()
		e.do(t, `{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.10","203.0.113.11"]}`)
		e.p.set(restr("192.0.2.1!,203.0.113.10,203.0.113.11,198.51.100.1,198.51.100.2"), true) // a hand edit
		e.do(t, `{"action":"sync"}`)                                                           // seen: 5 entries
		e.s.Settings.MaxEntries = 3                                                            // lowered: the list is past it
		if _, err := e.handle(req); ipguard.ErrorCode(err) == ipguard.EInvalid {
			t.Errorf("%s: refused as %v; a removal must be stored", req, err)
		}
		if got := ips(e.p.list); strings.Contains(got, "203.0.113.11") {
			t.Errorf("%s: portal = %s; want 203.0.113.11 gone", req, got)
		}
	}
}

// deadlinePortal is the fake portal recording, at each PUT, the deadline the
// DocSpace client is given and until when the lease is held.
type deadlinePortal struct {
	*fakePortal
	leases    *leasetest.Backend
	deadlines []time.Time
	untils    []time.Time
}

func (p *deadlinePortal) SaveIPRestrictions(ctx context.Context, l []ipguard.Restriction, enable bool) (time.Time, error) {
	dl, _ := ctx.Deadline()
	p.deadlines = append(p.deadlines, dl)
	p.untils = append(p.untils, p.leases.Until(LeaseName))
	return p.fakePortal.SaveIPRestrictions(ctx, l, enable)
}

// The fence (#15 §2): the lease outlives the longest attempt, landing
// included. The client starts an attempt only while one attempt's time is
// left before the deadline it is given, so its last attempt is given up at
// that deadline at the latest, and a PUT given up on may still land up to
// one attempt later (landBy): that must be before the lease ends, also when
// the function is killed at its deadline (nothing then shortens or keeps
// the lease). (Before: the lease lasted until the invocation's deadline
// plus 5 s, and the client was given the deadline itself, so an attempt of
// 10 s given up at the deadline could land 5 s after the lease ended, under
// the next holder's read; without a deadline it could land 8 s after it.)
func TestLeaseOutlivesTheLandingOfTheLastAttemptTheClientMayStart(t *testing.T) {
	const attempt = 10 * time.Second
	for _, tc := range []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
	}{
		{"a Lambda invocation (deadline 25 s away)", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 25*time.Second)
		}},
		{"no deadline", func() (context.Context, context.CancelFunc) { return context.Background(), func() {} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv()
			leases := &leasetest.Backend{}
			p := &deadlinePortal{fakePortal: e.p, leases: leases}
			e.s.Leases, e.s.Portal, e.s.WriteAttempt = leases, p, attempt
			ctx, cancel := tc.ctx()
			defer cancel()
			res, err := e.s.Handle(ctx, []byte(`{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.10"]}`))
			if err != nil || res.Portal != PortalApplied || len(p.deadlines) != 1 {
				t.Fatalf("result %+v, err %v, PUTs %d; want the PUT sent and applied", res, err, len(p.deadlines))
			}
			dl, until := p.deadlines[0], p.untils[0]
			if dl.IsZero() {
				t.Fatal("the client was given no deadline: nothing fences its attempts")
			}
			if fn, ok := ctx.Deadline(); ok && dl.After(fn) {
				t.Errorf("client deadline %s is past the invocation's %s: an attempt could run after the function is killed", dl, fn)
			}
			if landBy := dl.Add(attempt); landBy.After(until) {
				t.Errorf("an attempt given up at the client's deadline may land until %s, %s after the lease ends (%s)",
					landBy.Format(time.RFC3339Nano), landBy.Sub(until), until.Format(time.RFC3339Nano))
			}
		})
	}
}

// retryPortal is the fake portal whose next PUT is answered on a retry
// after an attempt that went unanswered (noted as the DocSpace client
// notes it), and whose unanswered attempt lands later (landUnanswered): a
// second save of the same list, by the key's user, that no answer dated.
type retryPortal struct {
	*fakePortal
	retries int
	pending []lateWrite
}

func (p *retryPortal) SaveIPRestrictions(ctx context.Context, l []ipguard.Restriction, enable bool) (time.Time, error) {
	if p.retries > 0 {
		p.retries--
		ipguard.NoteUnansweredWrite(ctx, time.Now())
		p.pending = append(p.pending, lateWrite{slices.Clone(l), enable})
	}
	return p.fakePortal.SaveIPRestrictions(ctx, l, enable)
}

func (p *retryPortal) landUnanswered() { p.landAll(&p.pending) }

// Attribution by facts (#15 §3) across reconciles: a PUT of the tool whose
// landing no answer dated (its answer lost, or an attempt that went
// unanswered before a retry was answered and landed later) is a save by
// the key's user at no own instant. When an admin's hand edit is found as
// drift afterwards, the drift alert names the admin, never that landing as
// a change "outside the tool" by the key's user. (Before: the drift's
// attribution took every key-user save at no own instant for someone
// else's, so the tool's own landed PUT was named, as the owner.)
func TestDriftAfterAnUnansweredPUTDoesNotNameTheToolsOwnLanding(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault func(e *env, p *retryPortal)
		land  func(p *retryPortal)
	}{
		{"answer lost", func(e *env, p *retryPortal) { e.p.lostAnswer = 1 }, func(*retryPortal) {}},
		{"timed out, landed later", func(e *env, p *retryPortal) { e.p.late = 1 }, func(p *retryPortal) { p.landLate() }},
		{"an attempt unanswered, the retry answered, the attempt landing later", func(e *env, p *retryPortal) { p.retries = 1 },
			func(p *retryPortal) { p.landUnanswered() }},
		{"the holder killed at its deadline while its PUT was out", func(e *env, p *retryPortal) { e.p.lostAnswer = 1 }, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv()
			trail := e.withTrail()
			p := &retryPortal{fakePortal: e.p}
			leases := &leasetest.Backend{}
			e.s.Portal, e.s.Leases = p, leases
			e.do(t, `{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.10"]}`)
			e.now = t0.Add(time.Minute)
			tc.fault(e, p)
			var during ipguard.PortalState
			e.p.afterPut = func(*fakePortal) { during = e.state() }
			_, _ = e.handle(`{"id":"u2","email":"b@example.com","allowedIps":["203.0.113.20"]}`)
			// The tool's own PUT lands (within the fence's time, before its
			// lease ends), dated by nothing the tool got.
			if tc.land != nil {
				tc.land(p)
			} else {
				// Killed mid-PUT: the state is what was stored before
				// sending ("in flight").
				if during.SentOutcome != ipguard.SentInFlight {
					t.Fatalf("state during the PUT: %q, want in flight", during.SentOutcome)
				}
				*e.st.state = during
			}
			// Its lease ran out; then an admin adds an entry by hand.
			leases.Hold(LeaseName, leases.Owner(LeaseName), time.Now().Add(-time.Second))
			e.now = t0.Add(2 * time.Minute)
			p.mu.Lock()
			p.list = append(p.list, ipguard.Restriction{IP: "198.51.100.9"})
			p.mu.Unlock()
			trail.add(Change{When: e.now, User: "Ada Admin", UserID: "adm", IP: "192.0.2.66"})
			e.now = t0.Add(3 * time.Minute)
			res := e.do(t, `{"action":"sync"}`)
			if res.Drift == nil || len(res.Drift.Unknown) != 1 {
				t.Fatalf("drift = %+v; want the admin's entry found", res.Drift)
			}
			var named []string
			for _, c := range res.Drift.Changes {
				named = append(named, c.User+" at "+c.When)
			}
			if len(named) != 1 || !strings.Contains(named[0], "Ada Admin") {
				t.Errorf("drift names %q; want the admin alone, not the tool's own landed PUT", named)
			}
		})
	}
}

// The tool's recent lists (lateSent) are kept so that an attempt of one
// that lands late is repaired as the tool's own doing (#15 §1). A late
// landing is a save by the key's user: a list equal to an old one of the
// tool's that the audit trail shows someone else saved is that person's
// doing. An admin who re-adds by hand the address an offboarding removed
// (the portal then holds the tool's list from before, exactly) is drift:
// alerted, named, and the admin's entry is kept. (Before: it was taken for
// the tool's own late landing, owned again and removed without a word.)
func TestAdminRestoringAnOldListOfTheToolsIsDriftNotALateLanding(t *testing.T) {
	// drift: the save is someone else's (alerted, and the address kept);
	// else the tool's own late landing (repaired: the address removed again).
	for _, tc := range []struct {
		name  string
		by    Change
		drift bool
	}{
		{"an admin re-adds the address by hand: drift, kept", Change{User: "Ada Admin", UserID: "adm", IP: "192.0.2.66"}, true},
		{"the tool's own old PUT lands late (the key's user): repaired, no drift", Change{User: "IP Guard key", UserID: "o", IP: "192.0.2.250"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv()
			trail := e.withTrail()
			e.do(t, `{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.10"]}`)
			e.now = t0.Add(time.Minute)
			e.do(t, `{"action":"offboard","id":"u1"}`)
			if got := ips(e.p.list); got != "192.0.2.1!" {
				t.Fatalf("portal = %s after the offboarding", got)
			}
			// The portal now holds the tool's list from before the
			// offboarding again, saved by tc.by.
			e.now = t0.Add(2 * time.Minute)
			e.p.set(restr("192.0.2.1!,203.0.113.10"), true)
			tc.by.When = e.now
			trail.add(tc.by)
			e.now = t0.Add(3 * time.Minute)
			res := e.do(t, `{"action":"sync"}`)
			want := "192.0.2.1!"
			if tc.drift {
				want += ",203.0.113.10"
			}
			if got := ips(e.p.list); got != want {
				t.Errorf("portal = %s, want %s", got, want)
			}
			if !tc.drift {
				if res.Drift != nil || countKind(e.alerts, "allowlist_drift") != 0 {
					t.Errorf("the tool's own late landing alerted as drift: %+v", res.Drift)
				}
				return
			}
			if res.Drift == nil || len(res.Drift.Changes) != 1 || res.Drift.Changes[0].User != "Ada Admin" {
				t.Errorf("drift = %+v; want the admin's hand edit found and named", res.Drift)
			}
			if n := countKind(e.alerts, "allowlist_drift"); n != 1 {
				t.Errorf("%d drift alerts, want 1", n)
			}
		})
	}
}

// An address is owned only once seen on the portal after the tool's own
// PUT (#15 §1), and whether that PUT landed is a fact of the trail: its
// landing is a save by the key's user. A PUT with an unknown outcome that
// never landed, then an admin adding the same address by hand (and another
// entry, so the portal is nearer the list sent than the list seen): the
// trail shows no save by the key's user since the PUT was sent, so the
// address is the admin's, and offboarding the user leaves it. (Before: the
// nearer list was taken for the tool's landed PUT, the admin's entry was
// owned, and the offboarding removed it.)
func TestUnknownPUTThatNeverLandedOwnsNothingAnAdminAddedMeanwhile(t *testing.T) {
	e := newEnv()
	trail := e.withTrail()
	e.do(t, `{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.10"]}`)
	e.now = t0.Add(time.Minute)
	e.unansweredPUT(t, `{"id":"u2","email":"b@example.com","allowedIps":["203.0.113.20"]}`, false) // times out and never lands
	e.now = t0.Add(2 * time.Minute)
	e.p.set(restr("192.0.2.1!,203.0.113.10,203.0.113.20,198.51.100.99"), true)
	trail.add(Change{When: e.now, User: "Ada Admin", UserID: "adm", IP: "192.0.2.66"})
	e.now = t0.Add(3 * time.Minute)
	e.do(t, `{"action":"sync"}`)
	if st := e.state(); slices.Contains(st.Owned, "203.0.113.20") {
		t.Errorf("owned %v: the admin's entry was taken for the tool's", st.Owned)
	}
	e.now = t0.Add(4 * time.Minute)
	e.do(t, `{"action":"offboard","id":"u2"}`)
	if got := ips(e.p.list); !strings.Contains(got, "203.0.113.20") {
		t.Errorf("portal = %s; the admin's entry must stay", got)
	}
}

// Attribution by facts, the other side of the tool's second (#15 §3): an
// admin's save that lands after the tool's PUT (in the same second, before
// its read-back) is named, but it was not overwritten: the read-back shows
// it and its entries are kept. The content decides what the second cannot:
// a read-back that differed from the list sent accounts for one save by
// someone else in that PUT's second as made after it. Only a save the
// write really overwrote is alerted so ("redo the change"). (Before: every
// save by someone else up to the tool's last save was alerted as
// overwritten, also the one whose entries the read-back showed kept.)
func TestAdminSaveAfterTheToolsPUTInItsSecondIsNotOverwritten(t *testing.T) {
	for _, tc := range []struct {
		name        string
		before      bool // an admin's save between the tool's read and its PUT too
		overwritten string
	}{
		{"a save after the PUT only: named, not overwritten", false, ""},
		{"one before the PUT and one after: the one before is overwritten", true, "Bea Before"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv()
			trail := e.withTrail()
			if tc.before {
				// Saved between the tool's read and its PUT (same second).
				trail.add(Change{When: t0, User: "Bea Before", UserID: "bea", IP: "192.0.2.67"})
			}
			e.p.afterPut = savedAfterPut(trail, "198.51.100.9", Change{When: t0, User: "Ada After", UserID: "adm", IP: "192.0.2.66"})
			res := e.do(t, `{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.10"]}`)
			if !strings.Contains(ips(e.p.list), "198.51.100.9") {
				t.Fatalf("portal %s: the save after the PUT was not kept", ips(e.p.list))
			}
			if w := strings.Join(res.Warnings, " "); !strings.Contains(w, "Ada After") {
				t.Errorf("warnings %q; want the admin's save named", w)
			}
			var overwritten []string
			for _, a := range e.alerts.sent {
				if slices.Contains(a.Kinds, "allowlist_drift") && strings.Contains(a.Email, "overwrote") {
					for _, who := range []string{"Ada After", "Bea Before"} {
						if strings.Contains(a.Email, who) {
							overwritten = append(overwritten, who)
						}
					}
				}
			}
			want := []string{}
			if tc.overwritten != "" {
				want = []string{tc.overwritten}
			}
			if !slices.Equal(append([]string{}, overwritten...), want) {
				t.Errorf("alerted as overwritten: %q, want %q", overwritten, want)
			}
		})
	}
}

// A hand edit lands between the tool's PUT and its read-back (an owned
// address removed, another added), so the reconcile plans again and sends a
// second PUT, which the portal refuses. The first PUT did land and was
// seen: the next reconcile must not take the tool's own address of it for
// an entry "the tool does not know" (a high-severity drift alert about
// itself, #15 §1). Before, the state kept the list from before the first
// PUT as the list last seen, so its added address was drift; the admin's
// entry must still be.
func TestARefusedSecondRoundDoesNotMakeTheFirstPUTDrift(t *testing.T) {
	e := newEnv()
	e.do(t, `{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.10"]}`)
	e.p.afterPut = func(f *fakePortal) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.list = restr("192.0.2.1!,203.0.113.11,198.51.100.7") // the admin removed .10, added .7
		f.refuse = 1                                           // the second round's PUT is refused
	}
	e.now = t0.Add(time.Minute)
	if _, err := e.handle(`{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.10","203.0.113.11"]}`); err == nil || !strings.Contains(err.Error(), "not applied") {
		t.Fatalf("err = %v; want the second round's refusal", err)
	}
	e.now = t0.Add(2 * time.Minute)
	res := e.do(t, `{"action":"sync"}`)
	if res.Drift == nil || !slices.ContainsFunc(res.Drift.Unknown, func(r ipguard.Restriction) bool { return r.IP == "198.51.100.7" }) {
		t.Errorf("drift %+v; want the admin's entry 198.51.100.7 as drift", res.Drift)
	}
	if res.Drift != nil && slices.ContainsFunc(res.Drift.Unknown, func(r ipguard.Restriction) bool { return r.IP == "203.0.113.11" }) {
		t.Errorf("drift names 203.0.113.11, which the tool's own first PUT added and its read-back saw: %+v", res.Drift.Unknown)
	}
	if got := ips(e.p.list); !strings.Contains(got, "203.0.113.10") || !strings.Contains(got, "203.0.113.11") || !strings.Contains(got, "198.51.100.7") {
		t.Errorf("portal = %s; want both of u1's addresses and the admin's entry kept", got)
	}
}

// An admin's save that the tool's PUT overwrote is alerted also when that
// PUT went unanswered and landed: the next reconcile, which finds the
// portal holding exactly the list that PUT sent, reads the trail from when
// it was sent (attack review, #15 §5: an admin's save between the
// reconcile's read and its PUT is alerted as drift with the admin's name
// and time). Before, an unanswered PUT had no instant to read the trail
// from, and the next reconcile saw the tool's own list: no drift, and the
// admin's save was lost without a word.
func TestAdminSaveOverwrittenByAnUnansweredPUTIsAlerted(t *testing.T) {
	e := newEnv()
	trail := e.withTrail()
	e.p.set(restr("192.0.2.1!,198.51.100.7"), true)
	trail.add(Change{When: t0, User: "Ada Admin", UserID: "adm", IP: "192.0.2.66"})
	e.p.lostAnswer = 1 // the PUT lands, its answer is lost
	if res, err := e.handle(`{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.10"]}`); err != nil || res.Portal != PortalPending {
		t.Fatalf("portal %q, err %v; want pending (outcome unknown)", res.Portal, err)
	}
	if n := countKind(e.alerts, "allowlist_drift"); n != 0 {
		t.Fatalf("%d drift alerts before the PUT's landing was seen", n)
	}
	e.now = t0.Add(time.Minute)
	e.do(t, `{"action":"sync"}`)
	var drift string
	for _, a := range e.alerts.sent {
		if slices.Contains(a.Kinds, "allowlist_drift") {
			drift = a.Email
		}
	}
	if !strings.Contains(drift, "Ada Admin") || !strings.Contains(drift, t0.Format(time.RFC3339)) || !strings.Contains(drift, "overwrote") {
		t.Errorf("drift alert %q; want the admin's save the unanswered PUT overwrote", drift)
	}
	if strings.Contains(drift, "IP Guard key") {
		t.Errorf("drift alert names the tool's own save: %q", drift)
	}
	e.now = t0.Add(2 * time.Minute)
	e.do(t, `{"action":"sync"}`)
	if n := countKind(e.alerts, "allowlist_drift"); n != 1 {
		t.Errorf("%d drift alerts after another sync; want the one", n)
	}
}

// An admin's save in the second a PUT of the tool was sent, but before the
// reconcile read the list: the read saw it (its entry is kept in the PUT,
// and the reconcile alerted it as drift, naming the admin). When that PUT
// goes unanswered and is found landed later, the portal holds the admin's
// entry: the trail cannot tell that save from one after the read (whole
// seconds, no tie-breaker), and a read that saw it decides, as for an
// answered PUT (checkForeignSaves). (Before: a second alert told the admin
// that their save was overwritten and to redo it, though it is on the
// portal.)
func TestSaveTheReadSawIsNotAlertedOverwrittenByALateLanding(t *testing.T) {
	e := newEnv()
	trail := e.withTrail()
	e.p.set(restr("192.0.2.1!,198.51.100.7"), true)
	e.now = t0.Add(-time.Minute)
	e.do(t, `{"id":"u0","email":"z@example.com","allowedIps":["203.0.113.9"]}`)
	e.now = t0
	// The admin adds an address by hand just before the tool's read.
	e.p.mu.Lock()
	e.p.list = append(e.p.list, ipguard.Restriction{IP: "192.0.2.66"})
	e.p.mu.Unlock()
	trail.add(Change{When: t0, User: "Ada Admin", UserID: "adm", IP: "192.0.2.66"})
	e.p.lostAnswer = 1 // the PUT lands, its answer is lost
	if res, err := e.handle(`{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.10"]}`); err != nil || res.Portal != PortalPending {
		t.Fatalf("portal %q, err %v; want pending (outcome unknown)", res.Portal, err)
	}
	if !holds(e.p.list, []string{"192.0.2.66", "203.0.113.10"}) {
		t.Fatalf("portal %v; want the admin's entry kept by the PUT", e.p.list)
	}
	drifts := countKind(e.alerts, "allowlist_drift")
	if drifts != 1 {
		t.Fatalf("%d drift alerts; want the admin's entry alerted as drift once", drifts)
	}
	e.now = t0.Add(time.Minute)
	e.do(t, `{"action":"sync"}`)
	for _, a := range e.alerts.sent {
		if strings.Contains(a.Email, "overwrote") {
			t.Errorf("alert %q: the admin's save the read saw (on the portal now) alerted as overwritten", a.Email)
		}
	}
}

// A PUT of the tool that went unanswered can land only until its fence
// ends (the lease outlives its last attempt's landing, and the state keeps
// that span): a save by someone else after that came after its landing, so
// it was not overwritten by it, though the list the next reconcile reads is
// the PUT's (that save changed nothing, or was undone by hand). (Before:
// every save by someone else until the next reconcile's read, maybe hours
// later, was alerted as overwritten, telling the admin to redo it.)
func TestSaveAfterAnUnansweredPUTCouldLandIsNotAlertedOverwritten(t *testing.T) {
	e := newEnv()
	trail := e.withTrail()
	e.p.set(restr("192.0.2.1!,198.51.100.7"), true)
	e.p.lostAnswer = 1 // the PUT lands, its answer is lost
	if res, err := e.handle(`{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.10"]}`); err != nil || res.Portal != PortalPending {
		t.Fatalf("portal %q, err %v; want pending (outcome unknown)", res.Portal, err)
	}
	// Half an hour later an admin opens the settings and saves them as
	// they are.
	trail.add(Change{When: t0.Add(30 * time.Minute), User: "Ada Admin", UserID: "adm", IP: "192.0.2.66"})
	e.now = t0.Add(time.Hour)
	e.do(t, `{"action":"sync"}`)
	for _, a := range e.alerts.sent {
		if strings.Contains(a.Email, "overwrote") {
			t.Errorf("alert %q: a save long after the PUT could land alerted as overwritten by it", a.Email)
		}
	}
}

// The portal holding exactly the list of a PUT of the tool that went
// unanswered is no proof that it landed: an admin may have added by hand
// just the address it was to add, after it could no longer land. The
// audit trail decides (#15 §1): no save by the key's user while that PUT
// could land means it never did, and what is there is the admin's, never
// owned (so an offboarding leaves it), and no "late landing" overwrote the
// admin's save. The key's user may be the owner, who edits by hand too: a
// save of theirs after the PUT's fence ended is not its landing either.
// (Before: the list alone decided: the admin's entry owned and removed by
// the offboarding, and their save alerted as overwritten by the tool.)
func TestSentListMadeByHandAfterAPUTThatNeverLandedIsNotOwned(t *testing.T) {
	for _, by := range []struct{ name, id string }{{"Ada Admin", "adm"}, {"Olga Owner (the key's user)", "o"}} {
		t.Run(by.id, func(t *testing.T) {
			e := newEnv()
			trail := e.withTrail()
			e.do(t, `{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.10"]}`)
			e.now = t0.Add(time.Minute)
			e.unansweredPUT(t, `{"id":"u2","email":"b@example.com","allowedIps":["203.0.113.20"]}`, false) // times out and never lands
			// An hour later, someone adds that very address by hand.
			e.now = t0.Add(time.Hour)
			e.p.set(restr("192.0.2.1!,203.0.113.10,203.0.113.20"), true)
			trail.add(Change{When: e.now, User: by.name, UserID: by.id, IP: "192.0.2.66"})
			e.now = t0.Add(2 * time.Hour)
			e.do(t, `{"action":"sync"}`)
			if st := e.state(); slices.Contains(st.Owned, "203.0.113.20") {
				t.Errorf("owned %v: the hand-added entry was taken for the tool's", st.Owned)
			}
			for _, a := range e.alerts.sent {
				if strings.Contains(a.Email, "overwrote") {
					t.Errorf("alert %q: the hand save that made the list alerted as overwritten by a PUT that never landed", a.Email)
				}
			}
			e.now = t0.Add(3 * time.Hour)
			e.do(t, `{"action":"offboard","id":"u2"}`)
			if got := ips(e.p.list); !strings.Contains(got, "203.0.113.20") {
				t.Errorf("portal = %s; the hand-added entry must stay", got)
			}
		})
	}
}

// laggingTrail is the audit trail as the portal serves it: an allowlist
// save (an audit event, action >= 2000) is held in the portal's message
// cache and written in batches, at most about a minute after it was made
// (MessagesRepository, messaging:CacheTimeFromMinutes, default 1): a read
// sees only the saves made lag or more before now (dated when made).
type laggingTrail struct {
	*fakeTrail
	now func() time.Time
	lag time.Duration
}

func (l *laggingTrail) AllowlistChanges(ctx context.Context, from time.Time) ([]Change, error) {
	all, err := l.fakeTrail.AllowlistChanges(ctx, from)
	var out []Change
	for _, c := range all {
		if !c.When.After(l.now().Add(-l.lag)) {
			out = append(out, c)
		}
	}
	return out, err
}

// A PUT of the tool that went unanswered, landed, and was followed by an
// admin's edit: the next reconcile reads the trail for a save by the key's
// user to tell whether it landed. The portal writes audit events up to a
// minute late, so a trail without that save proves nothing until the
// PUT's landing is that long past: until then its addresses on the portal
// are taken for the tool's (owned), as the list shows them. (Before: "no
// save by the key's user" was believed at once: the tool's own address,
// never owned, was left allowed after its user was offboarded.)
func TestTrailWrittenLateDoesNotDisownALandedPUT(t *testing.T) {
	e := newEnv()
	trail := e.withTrail()
	e.s.Trail = &laggingTrail{fakeTrail: trail, now: func() time.Time { return e.now }, lag: time.Minute}
	e.do(t, `{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.10"]}`)
	e.now = t0.Add(time.Minute)
	e.unansweredPUT(t, `{"id":"u2","email":"b@example.com","allowedIps":["203.0.113.20"]}`, true) // times out, lands a moment later
	e.now = t0.Add(time.Minute + 10*time.Second)
	e.p.mu.Lock()
	e.p.list = append(e.p.list, ipguard.Restriction{IP: "198.51.100.99"})
	e.p.mu.Unlock()
	trail.add(Change{When: e.now, User: "Ada Admin", UserID: "adm", IP: "192.0.2.66"})
	e.now = t0.Add(time.Minute + 20*time.Second)
	e.do(t, `{"action":"sync"}`)
	e.now = t0.Add(10 * time.Minute)
	e.do(t, `{"action":"offboard","id":"u2"}`)
	if got := ips(e.p.list); strings.Contains(got, "203.0.113.20") {
		t.Errorf("portal = %s; the offboarded user's address, put there by the tool, is still allowed", got)
	}
	if got := ips(e.p.list); !strings.Contains(got, "198.51.100.99") {
		t.Errorf("portal = %s; the admin's entry must stay", got)
	}
}

// Drift is mostly found right after the hand edit (the next reconcile),
// while the portal still holds that save's audit event in its message
// cache (written up to a minute late): the trail does not show it yet. The
// alert must not then say that the trail shows no save but the tool's own
// (a person would look for a ghost); it says the trail is written late,
// since when a save may not show yet, and where to look. (Before: "the
// portal's audit trail shows no allowlist save since ... but the tool's
// own", a falsehood about a save twenty seconds old.)
func TestDriftAlertSaysAFreshSaveMayNotShowInTheTrailYet(t *testing.T) {
	e := newEnv()
	trail := e.withTrail()
	e.s.Trail = &laggingTrail{fakeTrail: trail, now: func() time.Time { return e.now }, lag: time.Minute}
	e.do(t, `{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.10"]}`)
	e.now = t0.Add(10 * time.Minute)
	e.p.mu.Lock()
	e.p.list = append(e.p.list, ipguard.Restriction{IP: "198.51.100.99"})
	e.p.mu.Unlock()
	trail.add(Change{When: e.now, User: "Ada Admin", UserID: "adm", IP: "192.0.2.66"})
	e.now = e.now.Add(20 * time.Second)
	e.do(t, `{"action":"sync"}`)
	var drift string
	for _, a := range e.alerts.sent {
		if slices.Contains(a.Kinds, "allowlist_drift") {
			drift = a.Email
		}
	}
	if drift == "" {
		t.Fatalf("no drift alert (kinds %v)", e.alerts.kinds())
	}
	if !strings.Contains(drift, "late") || !strings.Contains(drift, e.now.Add(-TrailLag).UTC().Format(time.RFC3339)) {
		t.Errorf("drift alert %q; want it said that the trail is written late and since when a save may not show", drift)
	}
}

// "No save by the key's user while the PUT could land" is asked of the
// key's user as the process knows it, and a key rotated since to one that
// another user created saves as that user: a save by someone else in the
// span makes it ask who the key is again (one keys/@self), as attribution
// does. (Before: a warm container that lived through the rotation took
// its own landed PUT for one that never landed: its address not owned, and
// left allowed after its user's offboarding.)
func TestNeverLandedAsksWhoTheKeyIsAfterARotation(t *testing.T) {
	e := newEnv()
	trail := e.withTrail()
	e.do(t, `{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.10"]}`) // knows the key's user: o
	// The key is rotated to one the co-owner account o2 created.
	e.s.Directory = &fakeDirectory{creator: "o2", people: map[string]Person{"o2": {ID: "o2", IsOwner: true}}}
	e.p.mu.Lock()
	e.p.keyUser = "o2"
	e.p.mu.Unlock()
	e.now = t0.Add(time.Minute)
	e.unansweredPUT(t, `{"id":"u2","email":"b@example.com","allowedIps":["203.0.113.20"]}`, true) // times out, lands a moment later
	// An admin adds an entry afterwards: the portal holds nearly the list sent.
	e.now = t0.Add(5 * time.Minute)
	e.p.mu.Lock()
	e.p.list = append(e.p.list, ipguard.Restriction{IP: "198.51.100.99"})
	e.p.mu.Unlock()
	trail.add(Change{When: e.now, User: "Ada Admin", UserID: "adm", IP: "192.0.2.66"})
	e.now = t0.Add(10 * time.Minute)
	e.do(t, `{"action":"sync"}`)
	if st := e.state(); !slices.Contains(st.Owned, "203.0.113.20") {
		t.Errorf("owned %v: the tool's own landed address was not taken for its own", st.Owned)
	}
	e.now = t0.Add(20 * time.Minute)
	e.do(t, `{"action":"offboard","id":"u2"}`)
	if got := ips(e.p.list); strings.Contains(got, "203.0.113.20") {
		t.Errorf("portal = %s; the offboarded user's address, put there by the tool, is still allowed", got)
	}
}

// An admin who re-adds by hand what an offboarding removed makes the
// portal hold an old list of the tool's again; the audit trail tells a
// late landing (a save by the key's user) from that admin's save. The
// portal writes its trail up to a minute late: right after the admin's
// save the trail shows neither. A late landing can only be an attempt
// that went unanswered, inside its span; once every such span is TrailLag
// past, a landing would show: a trail that shows none means the list is
// someone else's doing (drift: alerted, their entry kept). (Before: a
// trail not showing the admin's save yet made it a late landing of the
// tool's: the admin's entry owned again and removed without a word.)
func TestAdminRestoringAnOldListIsDriftWhileTheTrailLags(t *testing.T) {
	for _, tc := range []struct {
		name  string
		by    Change
		after time.Duration // the sync after the save
	}{
		{"an admin, the trail not showing the save yet", Change{User: "Ada Admin", UserID: "adm", IP: "192.0.2.66"}, 20 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv()
			trail := e.withTrail()
			e.s.Trail = &laggingTrail{fakeTrail: trail, now: func() time.Time { return e.now }, lag: time.Minute}
			e.do(t, `{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.10"]}`)
			e.now = t0.Add(time.Minute)
			e.do(t, `{"action":"offboard","id":"u1"}`)
			if got := ips(e.p.list); got != "192.0.2.1!" {
				t.Fatalf("portal = %s after the offboarding", got)
			}
			e.now = t0.Add(10 * time.Minute)
			e.p.set(restr("192.0.2.1!,203.0.113.10"), true)
			tc.by.When = e.now
			trail.add(tc.by)
			e.now = e.now.Add(tc.after)
			e.do(t, `{"action":"sync"}`)
			if got := ips(e.p.list); got != "192.0.2.1!,203.0.113.10" {
				t.Errorf("portal = %s; the re-added entry must stay", got)
			}
			if n := countKind(e.alerts, "allowlist_drift"); n != 1 {
				t.Errorf("%d drift alerts, want the hand edit alerted once", n)
			}
		})
	}
}

// A PUT of the tool that went unanswered long ago (its list still
// expected, never seen landed) does not make every save by the key's user
// inside a later write the tool's own: its landing is undated only inside
// its own span (the state keeps it). So the owner's hand save between a
// later reconcile's read and its PUT, in the tool's second and overwritten
// by it, is named. (Before: any PUT still expected made every save by the
// key's user inside the write "maybe the tool's": the owner's overwritten
// save went without a word.)
func TestOldUnansweredPUTDoesNotHideTheOwnersOverwrittenSave(t *testing.T) {
	e := newEnv()
	trail := e.withTrail()
	e.unansweredPUT(t, `{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.10"]}`, false) // times out and never lands
	e.now = t0.Add(10 * time.Minute)
	// The owner (whose key the tool uses) saves by hand just before the
	// tool's PUT, in its second: overwritten by it.
	trail.add(Change{When: e.now, User: "Olga Owner", UserID: "o", IP: "192.0.2.77"})
	res := e.do(t, `{"id":"u2","email":"b@example.com","allowedIps":["203.0.113.20"]}`)
	w := strings.Join(res.Warnings, " ")
	for _, a := range e.alerts.sent {
		w += " " + a.Email
	}
	if !strings.Contains(w, "Olga Owner") {
		t.Errorf("warnings and alerts %q; want the owner's overwritten save named", w)
	}
}

// The alert of a save overwritten by an unanswered PUT's late landing
// gives the list the tool read before that write, so that the admin can
// redo their change: the list its write kept (all but the addresses the
// tool itself added; it removes only its own), not the list an earlier
// reconcile last saw (before: "0 entries" on a portal holding two, the
// tool's first write; and without what its read had found changed).
func TestLateLandingAlertGivesTheListTheToolRead(t *testing.T) {
	e := newEnv()
	trail := e.withTrail()
	e.p.set(restr("192.0.2.1!,198.51.100.7"), true)
	trail.add(Change{When: t0, User: "Ada Admin", UserID: "adm", IP: "192.0.2.66"})
	e.p.lostAnswer = 1 // the PUT lands, its answer is lost
	if res, err := e.handle(`{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.10"]}`); err != nil || res.Portal != PortalPending {
		t.Fatalf("portal %q, err %v; want pending (outcome unknown)", res.Portal, err)
	}
	e.now = t0.Add(time.Minute)
	e.do(t, `{"action":"sync"}`)
	var list string
	for _, a := range e.alerts.sent {
		if _, l, ok := strings.Cut(a.Email, "The list the tool read"); ok && strings.Contains(a.Email, "overwrote") {
			list, _, _ = strings.Cut(l, "\n")
		}
	}
	if !strings.Contains(list, "(2 entries") || !strings.Contains(list, "198.51.100.7") || strings.Contains(list, "203.0.113.10") {
		t.Errorf("overwritten alert's list %q; want the two entries the tool read, not what it added", list)
	}
}

// unansweredPUT sends payload while the portal leaves its next PUT
// unanswered (landed: it lands a moment later; else never), wants the
// change pending, and lets the lease that PUT kept run out, as if its
// holder were gone.
func (e *env) unansweredPUT(t *testing.T, payload string, landed bool) {
	t.Helper()
	leases := e.s.Leases.(*leasetest.Backend) // newEnv's
	e.p.late = 1
	if res, _ := e.handle(payload); res.Portal != PortalPending {
		t.Fatalf("%s: %+v; want pending (outcome unknown)", payload, res)
	}
	if landed {
		e.p.landLate()
	} else {
		e.p.lateList = nil
	}
	leases.Hold(LeaseName, leases.Owner(LeaseName), time.Now().Add(-time.Second))
}

// laggingTrail is withTrail whose trail shows each save only a minute after
// it was made, as DocSpace writes its audit trail (TrailLag).
func (e *env) laggingTrail() *fakeTrail {
	trail := e.withTrail()
	trail.lag, trail.clock = time.Minute, func() time.Time { return e.now }
	return trail
}

// adminSaveInTheLaggingTrail: the trail lags a minute, an admin ("Ada
// Admin", adm) saved at t0, and a change then wrote the portal in that
// second (its write recorded for a second look).
func adminSaveInTheLaggingTrail(t *testing.T) (*env, *fakeTrail) {
	t.Helper()
	e := newEnv()
	trail := e.laggingTrail()
	e.p.set(restr("192.0.2.1!,198.51.100.7"), true)
	trail.add(Change{When: t0, User: "Ada Admin", UserID: "adm", IP: "192.0.2.66"})
	e.do(t, `{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.10"]}`)
	return e, trail
}

// overwrittenEmails are the emails of the "overwritten" drift alerts sent.
func overwrittenEmails(e *env) []string {
	var out []string
	for _, a := range e.alerts.sent {
		if slices.Contains(a.Kinds, "allowlist_drift") && strings.Contains(a.Email, "overwrote") {
			out = append(out, a.Email)
		}
	}
	return out
}

// An admin's save between the reconcile's read and its PUT, which the
// portal's audit trail shows only a minute later (as a real DocSpace does):
// the check right after the write does not see it, and the first sync once
// the trail caught up (TrailLag after the write) alerts it as drift naming
// the admin, the time and the list the tool read before its write (#15 §5).
// (Before: the trail was read once, right after the write, and never again:
// on a real portal the overwritten save went unalerted.)
func TestOverwrittenSaveTheTrailShowsLateIsAlertedByALaterSync(t *testing.T) {
	// The later reconcile: the scheduled sync with nothing to change, or
	// another change's.
	for name, later := range map[string]string{
		"the sync":       `{"action":"sync"}`,
		"another change": `{"id":"u2","email":"b@example.com","allowedIps":["203.0.113.20"]}`,
	} {
		t.Run(name, func(t *testing.T) { overwrittenSaveShownLate(t, later) })
	}
}

func overwrittenSaveShownLate(t *testing.T, later string) {
	e := newEnv()
	trail := e.laggingTrail()
	e.p.set(restr("192.0.2.1!,198.51.100.7"), true)
	trail.add(Change{When: t0, User: "Ada Admin", UserID: "adm", IP: "192.0.2.66"}) // inside the write's window
	e.do(t, `{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.10"]}`)
	if got := overwrittenEmails(e); len(got) != 0 {
		t.Fatalf("alerted before the trail could show the save: %q", got)
	}
	if st := e.state(); st.RecheckDue.IsZero() || st.RecheckDue.Before(t0.Add(TrailLag)) {
		t.Fatalf("RecheckDue = %v; want the write's second look due once the trail caught up (%v on)", st.RecheckDue, t0.Add(TrailLag))
	}
	e.now = t0.Add(30 * time.Second) // a sync before the trail may show it: nothing yet, still due
	e.do(t, `{"action":"sync"}`)
	if got := overwrittenEmails(e); len(got) != 0 || len(e.st.RecheckItems) != 1 {
		t.Fatalf("sync before the trail caught up: alerts %q, records %d; want none and the record kept", got, len(e.st.RecheckItems))
	}
	e.now = t0.Add(2 * time.Minute)
	e.do(t, later)
	got := overwrittenEmails(e)
	if len(got) != 1 {
		t.Fatalf("%d overwritten alerts after the trail caught up; want 1", len(got))
	}
	for _, want := range []string{"Ada Admin", "2026-11-25T10:00:00Z", "The list the tool read just before its write (2 entries)", "198.51.100.7"} {
		if !strings.Contains(got[0], want) {
			t.Errorf("overwritten alert %q lacks %q", got[0], want)
		}
	}
	for _, r := range e.st.RecheckItems {
		if r.From.Equal(t0) {
			t.Errorf("after the second look the first write's record is still kept: %+v", r)
		}
	}
	if st := e.state(); !st.RecheckDue.After(e.now) && !st.RecheckDue.IsZero() {
		t.Errorf("after the second look: RecheckDue %v; want none due any more", st.RecheckDue)
	}
	e.now = t0.Add(20 * time.Minute)
	e.do(t, `{"action":"sync"}`)
	if n := len(overwrittenEmails(e)); n != 1 {
		t.Errorf("%d overwritten alerts after another sync; want still 1", n)
	}
}

// The check right after the write saw the overwritten save (the trail
// answered in time) and alerted it: the second look once the trail caught
// up does not alert it again.
func TestOverwrittenSaveAlertedRightAfterTheWriteIsNotAlertedAgain(t *testing.T) {
	e := newEnv()
	trail := e.withTrail()
	e.p.set(restr("192.0.2.1!,198.51.100.7"), true)
	trail.add(Change{When: t0, User: "Ada Admin", UserID: "adm", IP: "192.0.2.66"})
	e.do(t, `{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.10"]}`)
	if n := len(overwrittenEmails(e)); n != 1 {
		t.Fatalf("%d overwritten alerts right after the write; want 1", n)
	}
	e.now = t0.Add(2 * time.Minute)
	e.do(t, `{"action":"sync"}`)
	if n := len(overwrittenEmails(e)); n != 1 || len(e.st.RecheckItems) != 0 {
		t.Errorf("after the second look: %d overwritten alerts, %d records; want still 1, and the record gone", n, len(e.st.RecheckItems))
	}
}

// The trail cannot be read when the write's second look is due: the record
// is kept and looked at again by a later reconcile, which alerts the save;
// one the trail never answers for is alerted as not checked after
// RecheckGiveUp (once) and dropped, never kept for ever nor lost unsaid.
func TestSecondLookWithTheTrailUnreadableIsTriedAgain(t *testing.T) {
	for _, tc := range []struct {
		name      string
		again     time.Duration // when the trail is read again
		answers   bool          // whether it answers then
		wantAlert string        // in the alert sent then
	}{
		{"answers later", 4 * time.Minute, true, "Ada Admin"},
		{"never answers", RecheckGiveUp + time.Hour, false, "this update is no longer checked"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv()
			lagging := e.laggingTrail()
			trail := &failingTrail{fakeTrail: lagging}
			e.s.Trail = trail
			e.p.set(restr("192.0.2.1!,198.51.100.7"), true)
			lagging.add(Change{When: t0, User: "Ada Admin", UserID: "adm", IP: "192.0.2.66"})
			e.do(t, `{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.10"]}`)
			trail.fail = ipguard.Errorf(ipguard.EUnavailable, "get audit events: HTTP 503")
			e.now = t0.Add(2 * time.Minute)
			e.do(t, `{"action":"sync"}`)
			if n := len(e.alerts.sent); n != 0 || len(e.st.RecheckItems) != 1 {
				t.Fatalf("trail unreadable at the second look: %d alerts, %d records; want none and the record kept", n, len(e.st.RecheckItems))
			}
			if st := e.state(); st.RecheckDue.IsZero() {
				t.Fatal("RecheckDue cleared although the record was not checked")
			}
			if tc.answers {
				trail.fail = nil
			}
			e.now = t0.Add(tc.again)
			e.do(t, `{"action":"sync"}`)
			var emails []string
			for _, a := range e.alerts.sent {
				emails = append(emails, a.Email)
			}
			if len(emails) != 1 || !strings.Contains(emails[0], tc.wantAlert) {
				t.Fatalf("alerts %q; want one with %q", emails, tc.wantAlert)
			}
			if st := e.state(); !st.RecheckDue.IsZero() || len(e.st.RecheckItems) != 0 {
				t.Errorf("RecheckDue %v, records %d; want none outstanding", st.RecheckDue, len(e.st.RecheckItems))
			}
			e.syncLaterSendsNothingMore(t, 1)
		})
	}
}

// Many writes within the trail's lag: the records stay bounded
// (MaxRechecks), the oldest merged rather than dropped, so the saves
// overwritten by the oldest writes are still alerted once the trail caught
// up; and a save between two writes (read by the later one, overwritten by
// neither) is not taken for overwritten by the merge.
func TestManyWritesWithinTheTrailsLagAreBoundedAndNoneIsLost(t *testing.T) {
	e := newEnv()
	trail := e.laggingTrail()
	n := MaxRechecks + 3
	inside := map[int]string{0: "Ada Admin", 1: "Bob Admin", n - 1: "Cy Admin"}
	for i := range n {
		e.now = t0.Add(time.Duration(2*i) * time.Second)
		if who, ok := inside[i]; ok {
			trail.add(Change{When: e.now, User: who, UserID: fmt.Sprint("adm", i), IP: "192.0.2.66"})
		}
		if i == 1 {
			// After the first write's PUT, before the second's read.
			trail.add(Change{When: e.now.Add(-time.Second), User: "Dee Between", UserID: "dee", IP: "192.0.2.67"})
		}
		e.do(t, fmt.Sprintf(`{"id":"u%d","email":"u%d@example.com","allowedIps":["203.0.113.%d"]}`, i, i, i+10))
		if len(e.st.RecheckItems) > MaxRechecks {
			t.Fatalf("after write %d: %d records; want at most %d", i, len(e.st.RecheckItems), MaxRechecks)
		}
	}
	if len(e.st.RecheckItems) != MaxRechecks {
		t.Errorf("%d records after %d writes; want the bound %d (the oldest merged)", len(e.st.RecheckItems), n, MaxRechecks)
	}
	e.now = t0.Add(5 * time.Minute)
	e.do(t, `{"action":"sync"}`)
	all := strings.Join(overwrittenEmails(e), "\n")
	for _, who := range inside {
		if !strings.Contains(all, who) {
			t.Errorf("the save of %s, overwritten by a write, was not alerted: %q", who, all)
		}
	}
	if strings.Contains(all, "Dee Between") {
		t.Errorf("the save between two writes (read by the later one) was alerted as overwritten: %q", all)
	}
	if len(e.st.RecheckItems) != 0 {
		t.Errorf("%d records left after the second look", len(e.st.RecheckItems))
	}
}

// The write's record for the second look cannot be stored (the store
// refuses it): the change is still applied, and the write is alerted as
// not checked once the trail caught up, naming its span, so that a person
// looks at the trail (never a second look lost without a word).
func TestWriteWhoseSecondLookCannotBeRecordedIsAlerted(t *testing.T) {
	e := newEnv()
	e.laggingTrail()
	e.st.RecheckErr = ipguard.Errorf(ipguard.EUnavailable, "update item recheck#portal: throttled")
	res := e.do(t, `{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.10"]}`)
	if res.Portal != PortalApplied {
		t.Fatalf("portal %q; want the change applied all the same", res.Portal)
	}
	var found bool
	for _, a := range e.alerts.sent {
		found = found || strings.Contains(a.Email, "second look") && strings.Contains(a.Email, "2026-11-25T10:00:00Z")
	}
	if !found {
		t.Errorf("alerts %v; want the write's unrecorded second look alerted, with its span", e.alerts.kinds())
	}
}

// A record for the second look at its largest (a merged window with every
// list at its bound, every string at the longest kept) fits MaxRechecks
// times in three quarters of a DynamoDB item as stored (its JSON inside the
// record's), so the item of the second looks is never refused for its size.
func TestSecondLookRecordsFitTheirItem(t *testing.T) {
	at := t0.Add(123456789 * time.Nanosecond)
	w := overwriteWindow{KeyUser: strings.Repeat("ü", 64), SeenCount: 5000, Due: at, Written: at, Unanswered: true, OwnUntil: at}
	for range maxWindowSpans {
		w.Spans = append(w.Spans, writeSpan{From: at, LastOwn: at})
	}
	for range maxWindowSaves {
		w.OwnSaves, w.SavedAfter = append(w.OwnSaves, at), append(w.SavedAfter, at)
		w.UnansweredSaves = append(w.UnansweredSaves, ipguard.SaveWindow{From: at, Until: at})
		w.DriftSaves = append(w.DriftSaves, seenKey(ChangeView{When: at.Format(time.RFC3339), UserID: strings.Repeat("ü", 64), IP: strings.Repeat("ü", 64)}))
	}
	for range MaxAlertList {
		w.Seen = append(w.Seen, ipguard.Restriction{IP: strings.Repeat("f", 50), ForAdmin: true})
	}
	body, err := json.Marshal(w)
	if err != nil {
		t.Fatal(err)
	}
	key := "merged " + at.Format(time.RFC3339Nano) + " " + at.Format(time.RFC3339Nano)
	stored, _ := json.Marshal(map[string]any{"key": key, "from": at, "body": string(body)})
	// A merged record's alerted keys at their bound (mergeRechecks): the
	// newest maxWindowAlerted saves and a mark per span.
	alerted := maxWindowAlerted*len(alertedKey(ChangeView{When: at.Format(time.RFC3339), UserID: strings.Repeat("ü", 64)})) +
		maxWindowSpans*len(uncheckedMark+at.Format(time.RFC3339Nano))
	per := len(stored) + 2*26 + alerted // its attributes' names, and its alerted keys
	if total := per * MaxRechecks; total > 300*1024 {
		t.Errorf("%d records of %d bytes take %d bytes: more than three quarters of DynamoDB's 400 KB", MaxRechecks, per, total)
	}
	t.Logf("a record at its largest: %d bytes; %d of them: %d bytes", per, MaxRechecks, per*MaxRechecks)
}

// A write's record whose state does not say it is due (the pass's state
// write was refused after the record was stored: a newer pass took over)
// is looked at by the next scheduled sync all the same, which reads the
// records whatever the state says.
func TestRecordTheStateDoesNotKnowIsLookedAtByTheSync(t *testing.T) {
	e, _ := adminSaveInTheLaggingTrail(t)
	e.st.state.RecheckDue = time.Time{} // the newer pass's state
	e.now = t0.Add(2 * time.Minute)
	e.do(t, `{"action":"sync"}`)
	if got := overwrittenEmails(e); len(got) != 1 || !strings.Contains(got[0], "Ada Admin") {
		t.Errorf("overwritten alerts %q; want the admin's save, found by the sync's look at the records", got)
	}
}

// A long burst of writes within the trail's lag (more than a merged record
// keeps instants of the tool's saves, maxWindowSaves): the merged record
// still tells every one of the tool's own saves inside its spans from
// someone else's, so the second look alerts none of them as an admin's
// save the tool overwrote, and still alerts an admin's save in the oldest
// write. (Before: the oldest own saves' instants were clipped away and the
// tool's own saves were alerted as overwritten saves of the key's user.)
func TestLongBurstOfWritesDoesNotAlertTheToolsOwnSaves(t *testing.T) {
	e := newEnv()
	trail := e.laggingTrail()
	n := MaxRechecks + maxWindowSaves + 8
	for i := range n {
		e.now = t0.Add(time.Duration(2*i) * time.Second)
		if i == 0 {
			trail.add(Change{When: e.now, User: "Ada Admin", UserID: "adm", IP: "192.0.2.66"})
		}
		e.do(t, fmt.Sprintf(`{"id":"u%d","email":"u%d@example.com","allowedIps":["203.0.%d.%d"]}`, i, i, 100+i/200, i%200+10))
	}
	e.now = t0.Add(time.Duration(2*n)*time.Second + 5*time.Minute)
	e.do(t, `{"action":"sync"}`)
	got := overwrittenEmails(e)
	if len(got) != 1 || !strings.Contains(got[0], "Ada Admin") {
		t.Fatalf("overwritten alerts %d; want exactly the admin's one: %q", len(got), got)
	}
	if strings.Contains(got[0], "(user id o)") {
		t.Errorf("the tool's own saves were alerted as overwritten: %q", got[0])
	}
	if len(e.st.RecheckItems) != 0 {
		t.Errorf("%d records left after the second look", len(e.st.RecheckItems))
	}
}

// A record for the second look that cannot be read (the store gives it
// back with an empty body: dynamo's TestUnreadableRecheckRecordIsReturnedToBeDropped)
// is alerted once as not checked and dropped, and the readable records
// beside it are still looked at: never silence on every reconcile.
func TestUnreadableSecondLookRecordIsAlertedOnceAndDropped(t *testing.T) {
	e, _ := adminSaveInTheLaggingTrail(t)
	e.st.RecheckItems["unreadable attribute r_0bad"] = ipguard.Recheck{Key: "unreadable attribute r_0bad"}
	e.now = t0.Add(2 * time.Minute)
	e.do(t, `{"action":"sync"}`)
	var unread int
	for _, a := range e.alerts.sent {
		if strings.Contains(a.Email, "could not be read") {
			unread++
		}
	}
	if got := overwrittenEmails(e); unread != 1 || len(got) != 2 || !strings.Contains(strings.Join(got, ""), "Ada Admin") {
		t.Fatalf("%d unreadable-record alerts, overwritten %q; want one of each", unread, got)
	}
	if len(e.st.RecheckItems) != 0 {
		t.Errorf("records left: %+v; want the unreadable one dropped", e.st.RecheckItems)
	}
	e.syncLaterSendsNothingMore(t, 2)
}

// The audit trail stays unreadable for days (an API key without the audit
// trail's scope): the first unchecked write is alerted once for the
// episode ("further updates are not alerted again until the audit trail
// answers"), and the second looks given up a day after each later write
// keep that word: no alert per write, per day (#15 §5, an episode keyed by
// its cause's kind). Once the trail answered and failed again, a new
// episode is alerted again.
func TestTrailUnreadableForDaysIsAlertedOncePerEpisode(t *testing.T) {
	e := newEnv()
	lagging := e.laggingTrail()
	trail := &failingTrail{fakeTrail: lagging, fail: ipguard.Errorf(ipguard.EUnavailable, "get audit events: HTTP 403")}
	e.s.Trail = trail
	unchecked := func() int { return notCheckedAlerts(e) }
	for i := range 4 { // a write every 8 hours, a sync every hour, for two days and more
		e.now = t0.Add(time.Duration(8*i) * time.Hour)
		e.do(t, fmt.Sprintf(`{"id":"u%d","email":"u%d@example.com","allowedIps":["203.0.113.%d"]}`, i, i, i+10))
	}
	for h := 25; h <= 60; h++ {
		e.now = t0.Add(time.Duration(h) * time.Hour)
		e.do(t, `{"action":"sync"}`)
	}
	if n := unchecked(); n != 1 {
		t.Errorf("%d not-checked alerts while the trail stayed unreadable; want 1 (the episode)", n)
	}
	if len(e.st.RecheckItems) != 0 {
		t.Errorf("%d records left after their give-up", len(e.st.RecheckItems))
	}
}

// A write checked right after it (the trail answered) whose second look
// is given up a day later is alerted as not checked, also while the trail
// failing since is an episode alerted already for a later write: that
// alert said nothing of the earlier write. The later write (alerted) is
// not alerted again.
func TestGiveUpOfAWriteCheckedRightAfterIsAlertedWithinAnEpisode(t *testing.T) {
	e := newEnv()
	lagging := e.laggingTrail()
	trail := &failingTrail{fakeTrail: lagging}
	e.s.Trail = trail
	e.do(t, `{"id":"u1","email":"u1@example.com","allowedIps":["203.0.113.10"]}`) // checked right after
	trail.fail = ipguard.Errorf(ipguard.EUnavailable, "get audit events: HTTP 403")
	e.now = t0.Add(10 * time.Minute)
	e.do(t, `{"id":"u2","email":"u2@example.com","allowedIps":["203.0.113.11"]}`) // the episode: alerted
	if n := notCheckedAlerts(e); n != 1 {
		t.Fatalf("%d not-checked alerts after the second write; want 1 (the episode)", n)
	}
	for h := 1; h <= 30; h++ {
		e.now = t0.Add(time.Duration(h) * time.Hour)
		e.do(t, `{"action":"sync"}`)
	}
	var gaveUp []string
	for _, a := range e.alerts.sent {
		if strings.Contains(a.Email, "no longer checked") {
			gaveUp = append(gaveUp, a.Email)
		}
	}
	if len(gaveUp) != 1 || !strings.Contains(gaveUp[0], "between 2026-11-25T10:00:00Z") {
		t.Errorf("give-up alerts %q; want one, for the first write (checked right after, not covered by the episode's alert)", gaveUp)
	}
	if len(e.st.RecheckItems) != 0 {
		t.Errorf("%d records left after their give-up", len(e.st.RecheckItems))
	}
}

// notCheckedAlerts counts the alerts sent of writes not checked for
// overwritten saves (the audit trail unreadable).
func notCheckedAlerts(e *env) int {
	return len(slices.DeleteFunc(slices.Clone(e.alerts.sent), func(a ipguard.Alert) bool { return !strings.Contains(a.Subject, "not checked") }))
}

// putGate closes put at the first PUT through it (a portal), and holds a
// read of the audit trail through it until then (or until the read's
// context ends): a second look that the PUT waits for would wait for
// itself.
type putGate struct {
	*fakePortal
	trail *fakeTrail
	put   chan struct{}
}

func (g *putGate) SaveIPRestrictions(ctx context.Context, l []ipguard.Restriction, enable bool) (time.Time, error) {
	at, err := g.fakePortal.SaveIPRestrictions(ctx, l, enable)
	select {
	case <-g.put:
	default:
		close(g.put) // PUTs go one at a time, under the lease
	}
	return at, err
}

func (g *putGate) AllowlistChanges(ctx context.Context, from time.Time) ([]Change, error) {
	select {
	case <-g.put:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return g.trail.AllowlistChanges(ctx, from)
}

// The second look that a change's reconcile takes beside its reads does not
// hold its PUT back: the GET→PUT window (in which an admin's save is
// overwritten) does not grow by the trail's read, the record's removal or
// the alert's recording, nor does the onboarding's latency while the look
// ends before the pass's last state write, which waits for its outcome
// (a slower look lengthens that pass: docs). (Before: the PUT waited for the whole
// second look, up to maxRecheckUnderLease; here, where the trail answers
// only after the PUT, the look timed out and found nothing.)
func TestSecondLookDoesNotHoldThePUTBack(t *testing.T) {
	e, trail := adminSaveInTheLaggingTrail(t)
	gate := &putGate{fakePortal: e.p, trail: trail, put: make(chan struct{})}
	e.s.Portal, e.s.Trail = gate, gate
	e.now = t0.Add(2 * time.Minute)
	e.do(t, `{"id":"u2","email":"b@example.com","allowedIps":["203.0.113.20"]}`)
	if got := overwrittenEmails(e); len(got) != 1 || !strings.Contains(got[0], "Ada Admin") {
		t.Fatalf("overwritten alerts %q; want the admin's save, found by the second look beside the change's PUT", got)
	}
	if len(e.st.RecheckItems) != 1 {
		t.Errorf("%d records; want only the second change's", len(e.st.RecheckItems))
	}
	if st := e.state(); st.RecheckDue.IsZero() || !st.RecheckDue.After(e.now) || !st.AlertsDue && len(e.alerts.sent) == 0 {
		t.Errorf("state after the pass: RecheckDue %v, AlertsDue %v; want the second change's record due later", st.RecheckDue, st.AlertsDue)
	}
}

// An unreadable record (alerted and dropped by the next second look) does
// not stop the merging of the readable ones meanwhile: many writes within
// the trail's lag keep the records within their bound beside it.
func TestUnreadableRecordDoesNotStopTheMerging(t *testing.T) {
	e := newEnv()
	e.laggingTrail()
	e.do(t, `{"id":"u0","email":"u0@example.com","allowedIps":["203.0.113.10"]}`)
	e.st.RecheckItems["unreadable attribute r_0bad"] = ipguard.Recheck{Key: "unreadable attribute r_0bad"}
	for i := 1; i < MaxRechecks+6; i++ {
		e.now = t0.Add(time.Duration(2*i) * time.Second)
		e.do(t, fmt.Sprintf(`{"id":"u%d","email":"u%d@example.com","allowedIps":["203.0.113.%d"]}`, i, i, i+10))
	}
	if n := len(e.st.RecheckItems); n > MaxRechecks+1 {
		t.Errorf("%d records beside an unreadable one; want the readable ones merged to %d", n, MaxRechecks)
	}
}

// A merged record counts as alerted not checked (uncheckedAlerted) only
// when each of its writes was: a write checked right after it, merged with
// one alerted as not checked, is still named when the record's second look
// is given up.
func TestMergedRecordIsMarkedUncheckedOnlyWhenBothWere(t *testing.T) {
	rec := func(at time.Duration, marked bool) ipguard.Recheck {
		from := t0.Add(at).UTC()
		w := overwriteWindow{Spans: []writeSpan{{From: from, LastOwn: from.Add(time.Second)}}, Due: recheckDue(from.Add(time.Second))}
		body, _ := json.Marshal(w)
		key := from.Format(time.RFC3339Nano)
		r := ipguard.Recheck{Key: key, From: from, Body: string(body), Alerted: []string{"x#1"}}
		if marked {
			r.Alerted = append(r.Alerted, uncheckedMark+key)
		}
		return r
	}
	for _, tc := range []struct{ a, b, want bool }{
		{true, false, false},
		{false, true, false},
		{true, true, true},
	} {
		m, err := mergeRechecks(rec(0, tc.a), rec(5*time.Second+123, tc.b))
		if err != nil {
			t.Fatal(err)
		}
		var w overwriteWindow
		if err := json.Unmarshal([]byte(m.Body), &w); err != nil {
			t.Fatal(err)
		}
		if got := uncheckedAlerted(m.Alerted, w); got != tc.want {
			t.Errorf("merge of marked %v and %v: alerted %q; covered %v, want %v", tc.a, tc.b, m.Alerted, got, tc.want)
		}
	}
}

// The record item can never be written (its IAM grant missing, throttled
// for good): the writes whose second look cannot be recorded are one alert
// per episode, not one per write (a tool that cries wolf is switched off);
// a record stored again ends the episode, and a later failure is alerted
// again.
func TestUnrecordedSecondLooksAreAlertedOncePerEpisode(t *testing.T) {
	e := newEnv()
	e.laggingTrail()
	unrecorded := func() int {
		n := 0
		for _, a := range e.alerts.sent {
			if strings.Contains(a.Email, "could not be stored") {
				n++
			}
		}
		return n
	}
	e.st.RecheckErr = ipguard.Errorf(ipguard.EUnavailable, "update item recheck#portal: AccessDenied")
	for i := range 5 {
		e.now = t0.Add(time.Duration(10*i) * time.Minute)
		e.do(t, fmt.Sprintf(`{"id":"u%d","email":"u%d@example.com","allowedIps":["203.0.113.%d"]}`, i, i, i+10))
	}
	if n := unrecorded(); n != 1 {
		t.Fatalf("%d could-not-be-stored alerts for 5 writes while the record item refused every write; want 1 (the episode)", n)
	}
	e.st.RecheckErr = nil
	e.now = t0.Add(time.Hour)
	e.do(t, `{"id":"u9","email":"u9@example.com","allowedIps":["203.0.113.99"]}`)
	e.st.RecheckErr = ipguard.Errorf(ipguard.EUnavailable, "update item recheck#portal: AccessDenied")
	e.now = t0.Add(2 * time.Hour)
	e.do(t, `{"id":"u8","email":"u8@example.com","allowedIps":["203.0.113.98"]}`)
	if n := unrecorded(); n != 2 {
		t.Errorf("%d could-not-be-stored alerts after the record was stored again and then refused; want 2 (a new episode)", n)
	}
}

// recheckStoreFails refuses, while its flags say so, to remove the
// second-look records (clear: ClearRechecks) or to merge them (merge: a
// PutRecheck that drops records); everything else is the fake store's.
type recheckStoreFails struct {
	*fakeStore
	clear, merge bool
}

var errRecheckThrottled = ipguard.Errorf(ipguard.EUnavailable, "update item recheck#portal: throttled")

func (s *recheckStoreFails) ClearRechecks(ctx context.Context, keys []string) error {
	if s.clear {
		return errRecheckThrottled
	}
	return s.fakeStore.ClearRechecks(ctx, keys)
}

func (s *recheckStoreFails) PutRecheck(ctx context.Context, r ipguard.Recheck, drop []string) ([]ipguard.Recheck, error) {
	if s.merge && len(drop) > 0 {
		return nil, errRecheckThrottled
	}
	return s.fakeStore.PutRecheck(ctx, r, drop)
}

// The second look alerted an overwritten save (sent), but the record could
// not be removed after it: the next look does not alert the same save
// again, although its alert left the outbox (an outbox key re-added after
// it was sent is sent again). The record is removed by that next look.
func TestSecondLookWhoseRecordCannotBeRemovedDoesNotAlertTwice(t *testing.T) {
	e := newEnv()
	trail := e.laggingTrail()
	cs := &recheckStoreFails{fakeStore: e.st}
	e.s.Store = cs
	e.p.set(restr("192.0.2.1!,198.51.100.7"), true)
	trail.add(Change{When: t0, User: "Ada Admin", UserID: "adm", IP: "192.0.2.66"})
	e.do(t, `{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.10"]}`)
	cs.clear = true
	e.now = t0.Add(2 * time.Minute)
	e.do(t, `{"action":"sync"}`)
	if got := overwrittenEmails(e); len(got) != 1 {
		t.Fatalf("%d overwritten alerts at the second look; want 1", len(got))
	}
	cs.clear = false
	e.now = t0.Add(20 * time.Minute)
	e.do(t, `{"action":"sync"}`)
	if got := overwrittenEmails(e); len(got) != 1 {
		t.Errorf("%d overwritten alerts after the record's removal failed once; want still 1", len(got))
	}
	if len(e.st.RecheckItems) != 0 {
		t.Errorf("%d records left; want the one looked at removed by the next look", len(e.st.RecheckItems))
	}
}

// The API key is rotated, between a write and its second look, to a key of
// the admin whose save that write overwrote (an admin making a key of
// their own is a likely rotation): the save, made in the second of the
// tool's PUT (where an overwritten save mostly is, the GET→PUT window being
// a few round trips), is still alerted, and the tool's own save (by the old
// key's user) is not. (Before: the save, by the key's user now and at an
// instant of the tool's, was taken for the tool's own.)
func TestSecondLookAfterTheKeyWasRotatedToTheAdminStillAlertsTheirSave(t *testing.T) {
	e, _ := adminSaveInTheLaggingTrail(t)
	e.s.Directory.(*fakeDirectory).creator, e.p.keyUser = "adm", "adm"
	e.now = t0.Add(2 * time.Minute)
	e.do(t, `{"action":"sync"}`)
	got := overwrittenEmails(e)
	if len(got) != 1 || !strings.Contains(got[0], "Ada Admin") {
		t.Fatalf("overwritten alerts %q; want the admin's save, although the key acts as that admin now", got)
	}
	if strings.Contains(got[0], "(user id o)") {
		t.Errorf("the tool's own save under the old key was alerted: %q", got[0])
	}
}

// The audit trail stays unreadable for a day of many writes: every write is
// marked as alerted not checked in its record, and the merged records keep
// within their bound of alerted keys (one mark per span kept, the saves
// alerted up to maxWindowAlerted), so the item of the records stays within
// DynamoDB's 400 KB however many writes a day brings
// (TestSecondLookRecordsFitTheirItem). (Before: a merged record kept the
// mark of every write merged into it: thousands of writes in a day passed
// the item's size.)
func TestMarksOfWritesNotCheckedStayBoundedInAMergedRecord(t *testing.T) {
	e := newEnv()
	lagging := e.laggingTrail()
	e.s.Trail = &failingTrail{fakeTrail: lagging, fail: ipguard.Errorf(ipguard.EUnavailable, "get audit events: HTTP 403")}
	n := MaxRechecks + 3*(maxWindowSpans+maxWindowSaves)
	for i := range n {
		e.now = t0.Add(time.Duration(i) * time.Minute)
		e.do(t, fmt.Sprintf(`{"id":"u%d","email":"u%d@example.com","allowedIps":["203.0.%d.%d"]}`, i, i, 100+i/200, i%200+10))
	}
	for _, r := range e.st.RecheckItems {
		if len(r.Alerted) > maxWindowSpans+maxWindowAlerted+1 {
			t.Fatalf("a record keeps %d alerted keys after %d writes; want at most %d", len(r.Alerted), n, maxWindowSpans+maxWindowAlerted+1)
		}
	}
}

// The write's record was stored, but the merge of the two oldest past the
// bound failed: the write is not alerted as one whose record could not be
// stored (it was: its second look comes), and a later write merges them.
func TestFailedMergeIsNoUnrecordedWrite(t *testing.T) {
	e := newEnv()
	e.laggingTrail()
	ms := &recheckStoreFails{fakeStore: e.st}
	e.s.Store = ms
	for i := range MaxRechecks + 2 {
		ms.merge = i == MaxRechecks
		e.now = t0.Add(time.Duration(2*i) * time.Second)
		e.do(t, fmt.Sprintf(`{"id":"u%d","email":"u%d@example.com","allowedIps":["203.0.113.%d"]}`, i, i, i+10))
	}
	for _, a := range e.alerts.sent {
		if strings.Contains(a.Email, "could not be stored") {
			t.Errorf("alerted as unrecorded although every record was stored: %q", a.Email)
		}
	}
	if n := len(e.st.RecheckItems); n != MaxRechecks {
		t.Errorf("%d records; want the bound %d once a later write merged", n, MaxRechecks)
	}
}

// Two writes of the tool in one second (back-to-back passes under load:
// the next pass's read and PUT in the second of the last one's save): the
// second look at the first write does not take the second write's save,
// in its last second and by the key's user, for an admin's save it
// overwrote. (Before: the first write's record knew only the saves up to
// its own, so the next write's was someone else's, inside its span.)
func TestSecondLookDoesNotAlertTheNextWritesSaveInItsLastSecond(t *testing.T) {
	e := newEnv()
	e.laggingTrail()
	e.p.set(restr("192.0.2.1!,198.51.100.7"), true)
	e.now = t0.Add(-10 * time.Minute) // an earlier reconcile: the portal as it left it
	e.do(t, `{"action":"sync"}`)
	e.now = t0.Add(100 * time.Millisecond)
	e.do(t, `{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.10"]}`)
	e.now = t0.Add(600 * time.Millisecond) // the next pass, in the same second
	e.do(t, `{"id":"u2","email":"b@example.com","allowedIps":["203.0.113.20"]}`)
	e.now = t0.Add(3 * time.Minute)
	e.do(t, `{"action":"sync"}`)
	if got := overwrittenEmails(e); len(got) != 0 {
		t.Errorf("the tool's own save of the next write was alerted as overwritten: %q", got)
	}
}

// An admin's save in the second where one write ends and the next begins
// (back-to-back passes) lies in both writes' windows, the trail's second
// cannot say which overwrote it: it is alerted once, by the look at the
// first write, and not again by the later look at the next one.
func TestSaveInTwoWritesWindowsIsAlertedOnce(t *testing.T) {
	e := newEnv()
	trail := e.laggingTrail()
	e.p.set(restr("192.0.2.1!,198.51.100.7"), true)
	e.now = t0.Add(-10 * time.Minute) // an earlier reconcile: the portal as it left it
	e.do(t, `{"action":"sync"}`)
	e.now = t0.Add(100 * time.Millisecond)
	e.do(t, `{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.10"]}`)
	trail.add(Change{When: t0.Add(500 * time.Millisecond), User: "Ada Admin", UserID: "adm", IP: "192.0.2.66"})
	e.nextWriteReadingInTheSameSecond(t)
	e.now = t0.Add(TrailLag + 2*time.Second + 500*time.Millisecond) // the first write's look is due, the next one's not yet
	e.do(t, `{"action":"sync"}`)
	if got := overwrittenEmails(e); len(got) != 1 || !strings.Contains(got[0], "Ada Admin") {
		t.Fatalf("overwritten alerts at the first write's look %q; want the admin's save", got)
	}
	e.now = t0.Add(5 * time.Minute)
	e.do(t, `{"action":"sync"}`)
	if got := overwrittenEmails(e); len(got) != 1 {
		t.Errorf("%d overwritten alerts after the next write's look; want still 1 (the same save)", len(got))
	}
}

// An admin's save in the second two back-to-back writes share, which the
// trail shows already to the check right after the later write: that check
// alerts it, and the older write's second look, once due, does not alert
// it again (the trail's second cannot say which write overwrote it).
// (Before: the check right after noted it only in its own write's record,
// and the older write's look alerted it a second time.)
func TestSaveInTwoWritesWindowsAlertedRightAfterTheLaterIsNotAlertedAgain(t *testing.T) {
	e := newEnv()
	trail := e.withTrail()
	e.p.set(restr("192.0.2.1!,198.51.100.7"), true)
	e.now = t0.Add(-10 * time.Minute)
	e.do(t, `{"action":"sync"}`)
	e.now = t0.Add(100 * time.Millisecond)
	e.do(t, `{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.10"]}`)
	trail.add(Change{When: t0.Add(500 * time.Millisecond), User: "Ada Admin", UserID: "adm", IP: "192.0.2.66"})
	e.nextWriteReadingInTheSameSecond(t)
	if got := overwrittenEmails(e); len(got) != 1 || !strings.Contains(got[0], "Ada Admin") {
		t.Fatalf("overwritten alerts right after the later write %q; want the admin's save", got)
	}
	e.looksKeepOneOverwrittenAlert(t)
}

// An admin's save the check right after a write alerted as overwritten,
// in the second the next back-to-back write's window begins: the check
// right after that next write does not alert it again, nor does either
// write's second look. (Before: the next write's check right after alerted
// it a second time, its own record not knowing it was alerted.)
func TestSaveAlertedRightAfterAWriteIsNotAlertedByTheNextWritesCheck(t *testing.T) {
	e := newEnv()
	trail := e.withTrail()
	e.p.set(restr("192.0.2.1!,198.51.100.7"), true)
	e.now = t0.Add(-10 * time.Minute)
	e.do(t, `{"action":"sync"}`)
	trail.add(Change{When: t0.Add(50 * time.Millisecond), User: "Ada Admin", UserID: "adm", IP: "192.0.2.66"})
	e.now = t0.Add(100 * time.Millisecond)
	e.do(t, `{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.10"]}`)
	if got := overwrittenEmails(e); len(got) != 1 || !strings.Contains(got[0], "Ada Admin") {
		t.Fatalf("overwritten alerts right after the first write %q; want the admin's save", got)
	}
	e.nextWriteReadingInTheSameSecond(t)
	if got := overwrittenEmails(e); len(got) != 1 {
		t.Fatalf("%d overwritten alerts right after the next write; want still 1 (the same save): %q", len(got), got)
	}
	e.looksKeepOneOverwrittenAlert(t)
}

// The alert of a save overwritten by a write whose read saw a long list
// (past MaxAlertList), from the check right after the write: the email and
// the message's JSON show the list clipped with its full count, as the
// second look's alert does. (Before: the JSON carried the first 50 entries
// without overwrittenCount, and the email the whole list, cut by its bound
// without saying how many were left out.)
func TestOverwrittenAlertOfALongListSaysItsCount(t *testing.T) {
	e := newEnv()
	trail := e.withTrail()
	ips := []string{"192.0.2.1!"}
	for i := range 54 {
		ips = append(ips, fmt.Sprintf("198.51.100.%d", i+1))
	}
	e.p.set(restr(strings.Join(ips, ",")), true)
	trail.add(Change{When: t0, User: "Ada Admin", UserID: "adm", IP: "192.0.2.66"})
	e.do(t, `{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.10"]}`)
	var got []ipguard.Alert
	for _, a := range e.alerts.sent {
		if strings.Contains(a.Email, "overwrote") {
			got = append(got, a)
		}
	}
	if len(got) != 1 {
		t.Fatalf("%d overwritten alerts; want 1", len(got))
	}
	if !strings.Contains(got[0].Email, "(55 entries)") || !strings.Contains(got[0].Email, "... and 5 more") {
		t.Errorf("the email does not show the list clipped with its count:\n%s", got[0].Email)
	}
	var body struct {
		Drift struct {
			List  []ipguard.Restriction `json:"overwrittenList"`
			Count int                   `json:"overwrittenCount"`
		} `json:"drift"`
	}
	if err := json.Unmarshal([]byte(got[0].Default), &body); err != nil {
		t.Fatal(err)
	}
	if len(body.Drift.List) != MaxAlertList || body.Drift.Count != 55 {
		t.Errorf("the message's JSON carries %d entries with overwrittenCount %d; want %d with 55", len(body.Drift.List), body.Drift.Count, MaxAlertList)
	}
}

// syncLaterSendsNothingMore: an hour later a sync finds nothing more to
// alert (want alerts sent in all, as before it).
func (e *env) syncLaterSendsNothingMore(t *testing.T, want int) {
	t.Helper()
	e.now = e.now.Add(time.Hour)
	e.do(t, `{"action":"sync"}`)
	if n := len(e.alerts.sent); n != want {
		t.Errorf("%d alerts after a further sync; want still %d", n, want)
	}
}

// nextWriteReadingInTheSameSecond: a next change (u2) whose pass reads in
// t0's second and whose PUT the portal dates in the next.
func (e *env) nextWriteReadingInTheSameSecond(t *testing.T) {
	t.Helper()
	e.now = t0.Add(900 * time.Millisecond)
	e.p.clock = func() time.Time { return e.now.Add(500 * time.Millisecond) }
	e.do(t, `{"id":"u2","email":"b@example.com","allowedIps":["203.0.113.20"]}`)
	e.p.clock = func() time.Time { return e.now }
}

// looksKeepOneOverwrittenAlert: once both writes' second looks are due, a
// sync leaves one overwritten alert (the same save, not alerted again).
func (e *env) looksKeepOneOverwrittenAlert(t *testing.T) {
	t.Helper()
	e.now = t0.Add(5 * time.Minute)
	e.do(t, `{"action":"sync"}`)
	if got := overwrittenEmails(e); len(got) != 1 {
		t.Errorf("%d overwritten alerts after the second looks; want still 1 (the same save): %q", len(got), got)
	}
}

// racingStore runs another change (race) inside the first user write of
// user id, after that change's cap check and before its write: two changes
// that each fit under PORTAL_MAX_ENTRIES, checked against the same state.
type racingStore struct {
	*fakeStore
	id   string
	race func()
}

func (s *racingStore) PutUserIf(ctx context.Context, u ipguard.User, prevRev int64) (bool, error) {
	if u.ID == s.id && s.race != nil {
		race := s.race
		s.race = nil
		race()
	}
	return s.fakeStore.PutUserIf(ctx, u, prevRev)
}

// Two changes storing at the same time that each fit under the cap, but
// not together: the one whose version bump shows the other's adds checks
// the cap again and is undone and refused (InvalidInput, nothing stored,
// no history), as it would be alone after the other. (Before: both were
// stored, and the second stayed pending past the cap.)
func TestChangesStoringAtTheSameTimeDoNotPassTheCapTogether(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cap    int
		before string // u1's record before its change ("" for none)
		change string
		kept   string // the portal after both, with u1's record as before
	}{
		{"a new user", 5, "", `["198.51.100.1","198.51.100.2"]`, "192.0.2.1!,203.0.113.10,198.51.100.3,198.51.100.4"},
		{"a user who adds", 4, `["198.51.100.1"]`, `["198.51.100.1","198.51.100.2"]`, "192.0.2.1!,203.0.113.10,198.51.100.1,198.51.100.3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv()
			e.s.Settings.MaxEntries = tc.cap
			h := &fakeHistory{}
			e.s.History = h
			e.do(t, `{"id":"u0","email":"z@example.com","allowedIps":["203.0.113.10"]}`) // 192.0.2.1! and 203.0.113.10
			if tc.before != "" {
				e.do(t, `{"id":"u1","email":"a@example.com","allowedIps":`+tc.before+`}`)
			}
			prev, _, _ := e.st.GetUser(context.Background(), "u1")
			histories := len(h.calls)
			rs := &racingStore{fakeStore: e.st, id: "u1"}
			e.s.Store = rs
			var raced Result
			other := `["198.51.100.3","198.51.100.4"]`
			if tc.before != "" {
				other = `["198.51.100.3"]`
			}
			rs.race = func() {
				raced = e.do(t, `{"id":"u2","email":"b@example.com","allowedIps":`+other+`}`)
			}
			_, err := e.handle(`{"action":"add","id":"u1","email":"a@example.com","allowedIps":` + tc.change + `}`)
			if raced.Portal != PortalApplied {
				t.Fatalf("the other change: %+v", raced)
			}
			if ipguard.ErrorCode(err) != ipguard.EInvalid || !strings.Contains(err.Error(), "PORTAL_MAX_ENTRIES") {
				t.Errorf("err = %v; want InvalidInput naming PORTAL_MAX_ENTRIES", err)
			}
			if u, _, _ := e.st.GetUser(context.Background(), "u1"); !slices.Equal(u.Entries, prev.Entries) || fmt.Sprint(u.Touched) != fmt.Sprint(prev.Touched) {
				t.Errorf("u1 after the refused change: %+v; want as before: %+v", u, prev)
			}
			if got := ips(e.p.list); got != tc.kept {
				t.Errorf("portal = %s; want %s", got, tc.kept)
			}
			for _, c := range h.calls[histories:] {
				if strings.Contains(c, "u1") {
					t.Errorf("history recorded for the refused change: %s", c)
				}
			}
			// The user's next change, alone, is checked as any other.
			e.s.Store = e.st
			if _, err := e.handle(`{"action":"add","id":"u1","email":"a@example.com","allowedIps":["198.51.100.9","198.51.100.8"]}`); ipguard.ErrorCode(err) != ipguard.EInvalid {
				t.Errorf("a change past the cap alone: %v; want InvalidInput", err)
			}
		})
	}
}

// While a stored user is unreadable the reconcile removes no owned address
// (TestUnreadableUserRemovesNothing), so addresses no readable user needs
// stay on the portal; the cap check counted only the addresses users need
// and the entries the tool does not own, passed a change the reconcile
// then could not apply (past the cap: stored and pending with every later
// change). It counts what the plan keeps.
func TestCapCountsWhatAnUnreadableUserKeepsOnThePortal(t *testing.T) {
	e := newEnv()
	e.s.Settings.MaxEntries = 6
	e.do(t, `{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.1","203.0.113.2","203.0.113.3"]}`)
	e.do(t, `{"id":"u2","email":"b@example.com","allowedIps":["198.51.100.1"]}`)
	e.st.users["u2"] = ipguard.User{ID: "u2", Unreadable: "attribute allowedIps is a number"}
	e.do(t, `{"action":"remove","id":"u1","allowedIps":["203.0.113.3"]}`) // kept on the portal: u2 is unreadable
	if got := ips(e.p.list); got != "192.0.2.1!,203.0.113.1,203.0.113.2,203.0.113.3,198.51.100.1" {
		t.Fatalf("portal = %s", got)
	}
	_, err := e.handle(`{"id":"u3","email":"c@example.com","allowedIps":["10.0.0.1","10.0.0.2"]}`) // 7 > 6
	if ipguard.ErrorCode(err) != ipguard.EInvalid {
		t.Fatalf("err = %v; want InvalidInput (the portal would hold 7 entries)", err)
	}
	if _, found, _ := e.st.GetUser(context.Background(), "u3"); found {
		t.Error("the rejected change was stored")
	}
}

// loseUndoAnswer is racingStore whose second write of user id (the cap's
// second look putting the record back) is applied and its answer lost.
type loseUndoAnswer struct {
	*racingStore
	writes int
}

func (s *loseUndoAnswer) PutUserIf(ctx context.Context, u ipguard.User, prevRev int64) (bool, error) {
	if u.ID == s.id {
		if s.writes++; s.writes == 2 {
			s.LoseAnswers = 1
		}
	}
	return s.racingStore.PutUserIf(ctx, u, prevRev)
}

// The cap's second look puts the record back and the answer of that write
// is lost (the SDK's resend fails its condition): the change was taken for
// one written again meanwhile, left standing (stored, its history recorded
// and its addresses awaited) though the record is back as it was. A write
// that failed its condition is read again: the record put back is the
// undo's own, and the change is refused as any other undone one.
func TestCapUndoWhoseAnswerIsLostStillRefuses(t *testing.T) {
	e, h := capRaceEnv(t)
	rs := &loseUndoAnswer{racingStore: &racingStore{fakeStore: e.st, id: "u1"}}
	rs.race = func() { e.do(t, `{"id":"u2","email":"b@example.com","allowedIps":["198.51.100.3"]}`) }
	e.refusedAsBefore(t, h, rs)
}

// capRaceEnv is a portal with a cap of 4 holding 3 entries (u0's, u1's
// and the break-glass one), its history recorded in h.
func capRaceEnv(t *testing.T) (*env, *fakeHistory) {
	e := newEnv()
	e.s.Settings.MaxEntries = 4
	h := &fakeHistory{}
	e.s.History = h
	e.do(t, `{"id":"u0","email":"z@example.com","allowedIps":["203.0.113.10"]}`)
	e.do(t, `{"id":"u1","email":"a@example.com","allowedIps":["198.51.100.1"]}`)
	return e, h
}

// refusedAsBefore sends u1's add of one address through store (which races
// another change past the cap with it) and checks that it is refused
// (InvalidInput), u1's record as before and no history of it recorded.
func (e *env) refusedAsBefore(t *testing.T, h *fakeHistory, store Store) {
	t.Helper()
	prev, _, _ := e.st.GetUser(context.Background(), "u1")
	histories := len(h.calls)
	e.s.Store = store
	res, err := e.handle(`{"action":"add","id":"u1","email":"a@example.com","allowedIps":["198.51.100.2"]}`)
	if ipguard.ErrorCode(err) != ipguard.EInvalid {
		t.Errorf("err = %v, result %+v; want InvalidInput (the record is back as it was)", err, res)
	}
	if u, _, _ := e.st.GetUser(context.Background(), "u1"); !slices.Equal(u.Entries, prev.Entries) {
		t.Errorf("u1 = %+v; want as before", u)
	}
	for _, c := range h.calls[histories:] {
		if strings.Contains(c, "u1") {
			t.Errorf("history recorded for the undone change: %s", c)
		}
	}
}

// The change's own write is applied and its answer lost (the SDK's resend
// fails its condition; the next attempt finds the record as it wants it):
// the change counted as stored but skipped the cap's second look (it knew
// no write of its own), so two changes storing at the same time passed
// PORTAL_MAX_ENTRIES together, the second pending past the cap.
func TestCapSecondLookAfterALostAnswerOfTheChangesWrite(t *testing.T) {
	e, h := capRaceEnv(t)
	rs := &racingStore{fakeStore: e.st, id: "u1"}
	rs.race = func() {
		e.do(t, `{"id":"u2","email":"b@example.com","allowedIps":["198.51.100.3"]}`)
		e.st.LoseAnswers = 1
	}
	e.refusedAsBefore(t, h, rs)
}

// A keys/@self (or people/{creator}) that answers 429, 5xx or not at all is
// a passing unavailability, not evidence that the key cannot reach the
// portal: no lock-out alert (high severity, once per episode), restrictions
// stay off for the pass, the change still reaches the portal, and the pass
// ends pending (EUnavailable, the PortalPending metric; no Syncs, so a
// lasting outage raises SyncHeartbeatAlarm) so that the next reconcile asks
// again. A refusal (401, 403) is still a lock-out risk, alerted once.
// (Before: a 429 on keys/@self raised the lock-out alert.)
func TestAnUnavailablePreflightIsNoLockoutRisk(t *testing.T) {
	unavailable := func(status int) error {
		return ipguard.Errorf(ipguard.EUnavailable, "docspace: GET /api/2.0/keys/@self: HTTP %d", status)
	}
	refused := func(status int) error {
		return ipguard.Errorf(ipguard.EConfig, "docspace: GET /api/2.0/keys/@self: HTTP %d: check the API key", status)
	}
	tests := []struct {
		name       string
		dir        *fakeDirectory
		lockouts   int
		wantPortal string
	}{
		{"keys/@self 429", &fakeDirectory{keyErr: func() error { return unavailable(429) }}, 0, PortalPending},
		{"keys/@self 503", &fakeDirectory{keyErr: func() error { return unavailable(503) }}, 0, PortalPending},
		{"keys/@self no answer", &fakeDirectory{keyErr: func() error { return fmt.Errorf("keys/@self: %w", context.DeadlineExceeded) }}, 0, PortalPending},
		{"people/{creator} 429", &fakeDirectory{creator: "c", errs: map[string]error{"c": unavailable(429)}}, 0, PortalPending},
		{"keys/@self 401", &fakeDirectory{keyErr: func() error { return refused(401) }}, 1, PortalApplied},
		{"keys/@self 403", &fakeDirectory{keyErr: func() error { return refused(403) }}, 1, PortalApplied},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv()
			e.p.set(restr("192.0.2.1!"), false)
			e.s.Directory = tt.dir
			res := e.do(t, `{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.10"]}`)
			for range 2 {
				res = e.do(t, `{"action":"sync"}`)
			}
			if got := countKind(e.alerts, "allowlist_lockout_risk"); got != tt.lockouts {
				t.Errorf("lock-out alerts: %d; want %d", got, tt.lockouts)
			}
			if e.p.enabled || !strings.Contains(ips(e.p.list), "203.0.113.10") {
				t.Errorf("portal %s (enabled %v); want the change on it, restrictions off", ips(e.p.list), e.p.enabled)
			}
			if res.Portal != tt.wantPortal {
				t.Errorf("sync's portal outcome %q (%s); want %q", res.Portal, res.PortalReason, tt.wantPortal)
			}
		})
	}
	t.Run("the episode of a refusal outlasts a 429 in between", func(t *testing.T) {
		e := newEnv()
		e.p.set(restr("192.0.2.1!"), false)
		status := 401
		e.s.Directory = &fakeDirectory{keyErr: func() error {
			if status == 429 {
				return unavailable(status)
			}
			return refused(status)
		}}
		e.do(t, `{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.10"]}`)
		for _, s := range []int{429, 401, 429, 401} {
			status = s
			e.do(t, `{"action":"sync"}`)
		}
		if got := countKind(e.alerts, "allowlist_lockout_risk"); got != 1 {
			t.Errorf("lock-out alerts: %d; want 1 (one episode)", got)
		}
	})
}
