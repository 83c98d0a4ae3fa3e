package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"ipguard/internal/audit"
	"ipguard/internal/ipguard"
	"ipguard/internal/onboard"
	"ipguard/internal/testbed/devportal"
	"ipguard/internal/testbed/localdeploy"
)

// The allowlist as desired state (issue 9), with the real adapters against
// moto and the dev portal.

func mustDo(t *testing.T, svc handler[onboard.Result], payload string) onboard.Result {
	t.Helper()
	res, err := svc.Handle(context.Background(), []byte(payload))
	if err != nil {
		t.Fatalf("%s: %v", payload, err)
	}
	return res
}

func driftAlerts(s *localdeploy.Stack) []localdeploy.Published {
	var out []localdeploy.Published
	for _, p := range s.Published() {
		if strings.Contains(p.Default, `"allowlist_drift"`) {
			out = append(out, p)
		}
	}
	return out
}

func TestOffboardRemovesExactlyTheOwnedAddressesNoOneElseNeeds(t *testing.T) {
	s := deploy(t)
	// 203.0.113.10 was on the portal by hand before anyone needed it.
	s.Portal.SetRestrictions([]ipguard.Restriction{{IP: "192.0.2.1", ForAdmin: true}, {IP: "203.0.113.10"}}, true)
	svc := onboardService(t)
	mustDo(t, svc, `{"id":"`+alice+`","email":"alice@example.com","allowedIps":["203.0.113.10","198.51.100.1","198.51.100.2"]}`)
	mustDo(t, svc, `{"id":"`+bob+`","email":"bob@example.com","allowedIps":["203.0.113.10","198.51.100.2"]}`)
	res := mustDo(t, svc, `{"action":"offboard","id":"`+alice+`"}`)
	if got := strings.Join(portalIPs(s), ","); got != "192.0.2.1!,203.0.113.10,198.51.100.2" {
		t.Errorf("portal = %s; want the manual entries and bob's address, without alice's own", got)
	}
	if strings.Join(res.PortalRemoved, ",") != "198.51.100.1" || res.Portal != onboard.PortalApplied {
		t.Errorf("result = %+v", res)
	}
	mustDo(t, svc, `{"action":"offboard","id":"`+bob+`"}`)
	if got := strings.Join(portalIPs(s), ","); got != "192.0.2.1!,203.0.113.10" {
		t.Errorf("portal after both left = %s; want exactly the manual entries", got)
	}
}

// Issue 16 §7, as the demo showed it: right after an offboarding the next
// run re-reads the overlap, where the user's earlier, allowed logins are.
// They were allowed when they happened, so nothing is alerted ("never
// onboarded" would be wrong); a login after the offboarding is.
func TestOffboardingDoesNotTurnEarlierLoginsIntoUnknownUsers(t *testing.T) {
	s := deploy(t, "UNKNOWN_USER_POLICY=alert") // each unknown user's login a message (the digest is #21's default)
	onboardAliceAndBob(t)
	audit := auditService(t)
	auditRun(t, audit, time.Now().Add(-4*time.Minute))
	s.Portal.AddLoginEvents(
		login(alice, 1010, "203.0.113.10", 3*time.Minute),
		login(alice, 1010, "10.20.0.7", 2*time.Minute),
		login(alice, 1010, "198.51.100.9", 2*time.Minute))
	mustDo(t, onboardService(t), `{"action":"offboard","id":"`+alice+`"}`)
	time.Sleep(1100 * time.Millisecond) // the offboarding's second is past
	s.Portal.AddLoginEvents(login(alice, 1010, "203.0.113.10", 0))
	auditRun(t, audit, time.Now().Add(time.Second))
	evs := alerted(t, s)
	if len(evs) != 1 || evs[0]["kind"] != "unknown_user" {
		t.Fatalf("alerts %v; want only the login after the offboarding, as unknown_user", summary(evs))
	}
}

func TestTravelModeEntryExpiresAndTheAuditThenFlagsIt(t *testing.T) {
	s := deploy(t)
	svc := onboardService(t)
	exp := time.Now().Add(2 * time.Second).UTC().Format(time.RFC3339)
	mustDo(t, svc, `{"id":"`+alice+`","email":"alice@example.com","allowedIps":["203.0.113.10",{"ip":"198.51.100.77","expiresAt":"`+exp+`","note":"conference"}]}`)
	if !slices.Contains(portalIPs(s), "198.51.100.77") {
		t.Fatalf("travel-mode address not pushed: %v", portalIPs(s))
	}
	time.Sleep(time.Until(time.Now().Add(3 * time.Second).Truncate(time.Second)))
	sync := mustDo(t, svc, `{"action":"sync"}`)
	if slices.Contains(portalIPs(s), "198.51.100.77") || len(sync.Expired) != 1 {
		t.Fatalf("after expiry: portal %v, sync %+v", portalIPs(s), sync)
	}
	get := mustDo(t, svc, `{"action":"get","id":"`+alice+`"}`)
	if last := get.User.Entries[len(get.User.Entries)-1]; last.Entry != "198.51.100.77" || last.State != "expired" || last.Note != "conference" {
		t.Errorf("get = %+v", get.User.Entries)
	}
	s.Portal.AddLoginEvents(login(alice, 1010, "198.51.100.77", time.Second))
	auditRun(t, auditService(t), time.Now())
	if got := summary(alerted(t, s)); !slices.ContainsFunc(got, func(x string) bool {
		return strings.Contains(x, "ip_not_allowed") && strings.Contains(x, "198.51.100.77")
	}) {
		t.Errorf("alerts = %v; want the login from the expired address flagged", got)
	}
}

func TestDriftIsAlertedOnceWithAttributionAndTheAddressRestored(t *testing.T) {
	s := deploy(t)
	svc := onboardService(t)
	mustDo(t, svc, `{"id":"`+alice+`","email":"alice@example.com","allowedIps":["203.0.113.10","203.0.113.11"]}`)
	time.Sleep(1100 * time.Millisecond) // the trail has second precision: the hand edit comes after our save
	// By hand: restrictions off and one owned address deleted, recorded in
	// the portal's audit trail as the admin's save.
	s.Portal.SetRestrictions([]ipguard.Restriction{{IP: "203.0.113.10"}}, false)
	s.Portal.AddAuditEvents(devportal.AuditEvent{Date: time.Now(), UserID: devportal.OwnerID, User: "Mallory Admin", ActionID: 6094, IP: "192.0.2.66"})
	res := mustDo(t, svc, `{"action":"sync"}`)
	if res.Drift == nil || !res.Drift.SwitchedOff || strings.Join(res.Drift.MissingOwned, ",") != "203.0.113.11" {
		t.Fatalf("drift = %+v", res.Drift)
	}
	if got := portalIPs(s); !slices.Contains(got, "203.0.113.11") {
		t.Errorf("owned address not restored: %v", got)
	}
	if _, on := s.Portal.Restrictions(); on {
		t.Error("restrictions switched back on although PORTAL_DRIFT_REPAIR is false")
	}
	alerts := driftAlerts(s)
	if len(alerts) != 1 {
		t.Fatalf("%d drift alerts, want 1", len(alerts))
	}
	for _, want := range []string{"Mallory Admin", "192.0.2.66", "203.0.113.11", "switched off"} {
		if !strings.Contains(alerts[0].Email, want) {
			t.Errorf("alert e-mail lacks %q:\n%s", want, alerts[0].Email)
		}
	}
	if len(res.Drift.Changes) != 1 {
		t.Errorf("attribution = %+v; want only the hand edit, not the tool's own saves", res.Drift.Changes)
	}
	var body struct{ Kind, Severity string }
	if err := json.Unmarshal([]byte(alerts[0].Default), &body); err != nil || body.Kind != "allowlist_drift" || body.Severity != "high" {
		t.Errorf("alert JSON = %s (%v)", alerts[0].Default, err)
	}
	mustDo(t, svc, `{"action":"sync"}`)
	if n := len(driftAlerts(s)); n != 1 {
		t.Errorf("the same episode alerted %d times", n)
	}
}

func TestDriftOnAPortalWithoutAuditTrailSaysAttributionIsUnavailable(t *testing.T) {
	s := deploy(t, "PORTAL_DRIFT_REPAIR=true")
	s.Portal.SetAuditTrailAvailable(false)
	svc := onboardService(t)
	mustDo(t, svc, `{"id":"`+alice+`","email":"alice@example.com","allowedIps":["203.0.113.10"]}`)
	s.Portal.SetRestrictions([]ipguard.Restriction{{IP: "203.0.113.10"}}, false)
	res := mustDo(t, svc, `{"action":"sync"}`)
	if res.Drift == nil || !strings.Contains(res.Drift.Attribution, "unavailable") || !res.Drift.Reenabled {
		t.Fatalf("drift = %+v", res.Drift)
	}
	if _, on := s.Portal.Restrictions(); !on {
		t.Error("PORTAL_DRIFT_REPAIR=true did not switch restrictions back on")
	}
}

// TestLatePutIsRepaired: a PUT the client gave up on lands later and erases
// a newer onboarding's address; the next reconcile re-reads and puts it back,
// as the tool's own doing: no drift alert about itself (issue #15).
func TestLatePutIsRepaired(t *testing.T) {
	s := deploy(t, "DOCSPACE_TIMEOUT=300ms")
	svc := onboardService(t)
	s.Portal.InjectFault(devportal.Fault{Method: "PUT", Path: "/settings/iprestrictions", Times: 1, ApplyLate: 1500 * time.Millisecond})
	mustDo(t, svc, `{"id":"`+alice+`","email":"alice@example.com","allowedIps":["203.0.113.10"]}`)
	mustDo(t, svc, `{"id":"`+bob+`","email":"bob@example.com","allowedIps":["192.0.2.7"]}`)
	deadline := time.Now().Add(5 * time.Second)
	for slices.Contains(portalIPs(s), "192.0.2.7") && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond) // wait for the late PUT to land
	}
	if slices.Contains(portalIPs(s), "192.0.2.7") {
		t.Fatalf("the late PUT never landed: %v", portalIPs(s))
	}
	res := mustDo(t, svc, `{"action":"sync"}`)
	if got := portalIPs(s); !slices.Contains(got, "192.0.2.7") || !slices.Contains(got, "203.0.113.10") {
		t.Errorf("after the repair: %v", got)
	}
	if res.Drift != nil || len(driftAlerts(s)) != 0 {
		t.Errorf("the tool's own late PUT was alerted as drift: %+v, %d alerts", res.Drift, len(driftAlerts(s)))
	}
}

func TestLockoutPreflightWithANonOwnerKey(t *testing.T) {
	s := deploy(t)
	const admin = "aaaaaaaa-1111-4111-8111-00000000000a"
	if err := s.Portal.PutUsers(devportal.User{ID: admin, DisplayName: "Key Admin", Email: "k@example.com", Status: devportal.StatusActive, IsAdmin: true}); err != nil {
		t.Fatal(err)
	}
	if err := s.Portal.PutKey(devportal.APIKey{Key: s.APIKey, CreateBy: admin, IsActive: true}); err != nil {
		t.Fatal(err)
	}
	svc := onboardService(t)
	res := mustDo(t, svc, `{"id":"`+alice+`","email":"alice@example.com","allowedIps":["203.0.113.10"]}`)
	mustDo(t, svc, `{"id":"`+bob+`","email":"bob@example.com","allowedIps":["192.0.2.7"]}`)
	if _, on := s.Portal.Restrictions(); on || res.RestrictionsEnabled {
		t.Fatal("restrictions switched on with a non-owner key and no break-glass address")
	}
	if !slices.Contains(portalIPs(s), "203.0.113.10") || !strings.Contains(strings.Join(res.Warnings, " "), "PORTAL_BREAKGLASS_IPS") {
		t.Errorf("portal %v, warnings %v", portalIPs(s), res.Warnings)
	}
	var lockout int
	for _, p := range s.Published() {
		if strings.Contains(p.Default, "allowlist_lockout_risk") {
			lockout++
		}
	}
	if lockout != 1 {
		t.Errorf("%d lock-out alerts, want 1", lockout)
	}
}

func TestSyncReportsAndOffboardsUsersWhoLeftThePortal(t *testing.T) {
	s := deploy(t, "OFFBOARD_REMOVED_USERS=true")
	if err := s.Portal.PutUsers(
		devportal.User{ID: alice, DisplayName: "Alice", Email: "alice@example.com", Status: devportal.StatusActive},
		devportal.User{ID: bob, DisplayName: "Bob", Email: "bob@example.com", Status: devportal.StatusTerminated},
	); err != nil {
		t.Fatal(err)
	}
	svc := onboardService(t)
	mustDo(t, svc, `{"id":"`+alice+`","email":"alice@example.com","allowedIps":["203.0.113.10"]}`)
	mustDo(t, svc, `{"id":"`+bob+`","email":"bob@example.com","allowedIps":["192.0.2.7"]}`)
	mustDo(t, svc, `{"id":"`+carol+`","email":"carol@example.com","allowedIps":["192.0.2.8"]}`) // unknown to the portal
	// Offboarded only when seen gone in two consecutive checks.
	if first := mustDo(t, svc, `{"action":"sync"}`); len(first.UsersLeft) != 2 || first.UsersLeft[0].Offboarded || first.UsersLeft[1].Offboarded {
		t.Fatalf("first check offboarded: %+v", first.UsersLeft)
	}
	res := mustDo(t, svc, `{"action":"sync"}`)
	var left []string
	for _, l := range res.UsersLeft {
		left = append(left, fmt.Sprintf("%s %s %v", l.UserID[:4], l.Why, l.Offboarded))
	}
	slices.Sort(left)
	if strings.Join(left, "; ") != "0c9d terminated on the portal true; 1111 deleted from the portal true" {
		t.Errorf("usersLeft = %v", left)
	}
	if got := strings.Join(portalIPs(s), ","); got != "203.0.113.10" {
		t.Errorf("portal = %s; want only alice's address", got)
	}
}

// A proxy in front of the portal answers people/{id} with its own 404 page
// (#15 §4): that is no "user gone" but a ConfigurationError, so however many
// syncs see it, nobody is offboarded, and the sync says why. (Before #15 one
// such answer with OFFBOARD_REMOVED_USERS=true deleted every stored user.)
func TestProxy404OnPeopleOffboardsNobody(t *testing.T) {
	s := deploy(t, "OFFBOARD_REMOVED_USERS=true")
	if err := s.Portal.PutUsers(devportal.User{ID: alice, DisplayName: "Alice", Email: "alice@example.com", Status: devportal.StatusActive}); err != nil {
		t.Fatal(err)
	}
	svc := onboardService(t)
	mustDo(t, svc, `{"id":"`+alice+`","email":"alice@example.com","allowedIps":["203.0.113.10"]}`)
	s.Portal.InjectFault(devportal.Fault{Method: "GET", Path: "/people/", Status: 404,
		Body: "<html><head><title>404 Not Found</title></head><body><center><h1>404 Not Found</h1></center><hr><center>nginx</center></body></html>"})
	for i := range 3 {
		res := mustDo(t, svc, `{"action":"sync"}`)
		if len(res.UsersLeft) != 0 || !strings.Contains(strings.Join(res.Warnings, " "), "could not check for users who left") {
			t.Fatalf("sync %d: usersLeft %+v, warnings %q; want nobody taken for gone and the check's failure named", i+1, res.UsersLeft, res.Warnings)
		}
	}
	if got := strings.Join(portalIPs(s), ","); got != "203.0.113.10" {
		t.Errorf("portal = %s; want alice's address kept", got)
	}
}

func TestPreviewReplaysThePortalHistory(t *testing.T) {
	s := deploy(t)
	s.Portal.SetRestrictions([]ipguard.Restriction{{IP: "192.0.2.1", ForAdmin: true}}, false)
	if err := s.Portal.PutUsers(devportal.User{ID: alice, DisplayName: "Alice", Email: "alice@example.com", Status: devportal.StatusActive},
		devportal.User{ID: bob, DisplayName: "Bob", Email: "bob@example.com", Status: devportal.StatusActive}); err != nil {
		t.Fatal(err)
	}
	svc := onboardService(t)
	mustDo(t, svc, `{"id":"`+alice+`","email":"alice@example.com","allowedIps":["203.0.113.10"]}`)
	s.Portal.AddLoginEvents(
		login(alice, 1010, "203.0.113.10", time.Hour),   // allowed
		login(alice, 1010, "198.51.100.9", 2*time.Hour), // refused
		login(bob, 1000, "192.0.2.1", time.Hour),        // forAdmin entry: bob is no admin
		login(devportal.OwnerID, 1000, "203.0.113.250", time.Hour),
		login(alice, 1005, "198.51.100.8", time.Hour), // failed: not replayed
	)
	before := puts(s)
	res := mustDo(t, svc, `{"action":"preview","days":7}`)
	p := res.Preview
	if p == nil || p.Allowed != 1 || p.OwnerExempt != 1 || len(p.Refused) != 2 {
		t.Fatalf("preview = %+v", p)
	}
	if before != puts(s) {
		t.Error("preview wrote to the portal")
	}
}

// TestHandEditDuringTheUpdateIsReported pins issue 11.6 against the dev
// portal: an admin saves the allowlist while our PUT is on its way (after our
// GET). The PUT overwrites that save, which the list cannot show; the portal's
// audit trail can, and the result names who saved meanwhile.
func TestHandEditDuringTheUpdateIsReported(t *testing.T) {
	s := deploy(t)
	svc := onboardService(t)
	s.Portal.InjectFault(devportal.Fault{Method: "PUT", Path: "/settings/iprestrictions", Times: 1, Delay: 600 * time.Millisecond})
	go func() {
		time.Sleep(300 * time.Millisecond) // our GET is done, our PUT is held
		s.Portal.SetRestrictions([]ipguard.Restriction{{IP: "198.51.100.200"}}, true)
		s.Portal.AddAuditEvents(devportal.AuditEvent{Date: time.Now(), UserID: devportal.OwnerID, User: "Hasty Admin", ActionID: 6094, IP: "192.0.2.77"})
	}()
	res := mustDo(t, svc, `{"id":"`+alice+`","email":"alice@example.com","allowedIps":["203.0.113.10"]}`)
	w := strings.Join(res.Warnings, " ")
	if !strings.Contains(w, "Hasty Admin") || !strings.Contains(w, "192.0.2.77") {
		t.Errorf("warnings = %v; want the save made during the update named", res.Warnings)
	}
}

// #21 §4 end to end with the real adapters: an entry's place goes through
// the onboarding function into DynamoDB (never to the portal), and the
// audit judges travel with it. Alice logs in from New York, and 10 minutes
// later her credentials are used through the shared Berlin office address
// (whose GeoIP wrongly says New York): one impossible_travel finding naming
// both logins and the Berlin office entry.
func TestDeclaredPlaceFromOnboardingToTravel(t *testing.T) {
	s := deploy(t)
	ctx := context.Background()
	res, err := onboardService(t).Handle(ctx, []byte(`{"id":"`+alice+`","email":"alice@example.com","allowedIps":[`+
		`{"ip":"203.0.113.0/24","note":"office","place":"Berlin"},"198.51.100.7"]}`))
	if err != nil || !res.Stored {
		t.Fatalf("onboard: %+v, %v", res, err)
	}
	list, _ := s.Portal.Restrictions()
	for _, r := range list {
		if strings.Contains(r.IP, "Berlin") || strings.Contains(r.IP, ",") {
			t.Errorf("the portal got %q", r.IP)
		}
	}
	ny := func(ip string, ago time.Duration) {
		ev := login(alice, 1010, ip, ago)
		ev.Country, ev.City = "United States", "New York"
		s.Portal.AddLoginEvents(ev)
	}
	ny("198.51.100.7", 12*time.Minute)
	ny("203.0.113.40", 2*time.Minute)
	r, err := auditService(t).Handle(ctx, scheduled(time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	if r.Counts[audit.KindImpossibleTravel] != 1 || r.Counts[audit.KindIPNotAllowed] != 0 {
		t.Fatalf("counts %v, want one impossible_travel", r.Counts)
	}
	evs := alerted(t, s)
	if len(evs) != 1 || !strings.Contains(fmt.Sprint(evs[0]["reasons"]), "through the Berlin office entry 203.0.113.0/24") {
		t.Fatalf("alerted %v", evs)
	}
}
