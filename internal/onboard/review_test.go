package onboard

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"ipguard/internal/ipguard"
	"ipguard/internal/lease/leasetest"
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
	puts, writes := e.p.puts, e.st.Writes
	res, err := e.s.Handle(context.Background(), []byte(req))
	if err != nil {
		t.Fatalf("remove sent again: %v", err)
	}
	if res.Stored || len(res.Removed) != 0 || e.p.puts != puts || e.st.Writes != writes {
		t.Errorf("remove sent again changed something: %+v (puts %d, writes %d)", res, e.p.puts-puts, e.st.Writes-writes)
	}
	if w := strings.Join(res.Warnings, " "); !strings.Contains(w, "203.0.113.10") {
		t.Errorf("warnings = %q; want one naming 203.0.113.10 as not found", res.Warnings)
	}
	if got := ips(e.p.list); got != "192.0.2.1!,203.0.113.11" {
		t.Errorf("portal = %s", got)
	}
	// An address inside one of the user's ranges is not "already removed":
	// entries are not split, so that stays InvalidInput naming the range.
	e.do(t, `{"action":"add","id":"u1","allowedIps":["198.51.100.0/30"]}`)
	_, err = e.s.Handle(context.Background(), []byte(`{"action":"remove","id":"u1","allowedIps":["198.51.100.1"]}`))
	if ipguard.ErrorCode(err) != ipguard.EInvalid || !strings.Contains(fmt.Sprint(err), "198.51.100.0/30") {
		t.Errorf("remove inside a range: err = %v; want InvalidInput naming 198.51.100.0/30", err)
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

// TestEntryInputsThatContradictOrHideAreRejected: the same address twice
// (in any spelling) with different expiry or note cannot say which one is
// meant (a permanent office address would silently become time-bound); a
// note with invisible characters shows differently from what it is; an
// expiry or a note on a remove means nothing. Each is InvalidInput naming
// the field, and nothing is written.
func TestEntryInputsThatContradictOrHideAreRejected(t *testing.T) {
	cases := []struct{ payload, field string }{
		{`{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.10",{"ip":"203.0.113.10","expiresAt":"2030-01-01T00:00:00Z"}]}`, "allowedIps[1]"},
		{`{"id":"u1","email":"a@example.com","allowedIps":[{"ip":"2001:db8::1","note":"a"},{"ip":"2001:DB8::1","note":"b"}]}`, "allowedIps[1]"},
		{`{"action":"add","id":"u1","allowedIps":[{"ip":"10.0.0.7/32","expiresAt":"2030-01-01T00:00:00Z"},{"ip":"10.0.0.7","expiresAt":"2031-01-01T00:00:00Z"}]}`, "allowedIps[1]"},
		{`{"id":"u1","email":"a@example.com","allowedIps":[{"ip":"203.0.113.10","note":"\u202eliam"}]}`, "allowedIps[0].note"},
		{`{"id":"u1","email":"a@example.com","allowedIps":[{"ip":"203.0.113.10","note":"a\u200bb"}]}`, "allowedIps[0].note"},
		{`{"action":"remove","id":"u1","allowedIps":[{"ip":"203.0.113.10","expiresAt":"2030-01-01T00:00:00Z"}]}`, "allowedIps[0].expiresAt"},
		{`{"action":"remove","id":"u1","allowedIps":[{"ip":"203.0.113.10","note":"x"}]}`, "allowedIps[0].note"},
	}
	for _, c := range cases {
		e := newEnv()
		e.do(t, `{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.10"]}`)
		writes, puts := e.st.Writes, e.p.puts
		_, err := e.s.Handle(context.Background(), []byte(c.payload))
		var ie *ipguard.Error
		if !errors.As(err, &ie) || ie.Code != ipguard.EInvalid || ie.Field != c.field {
			t.Errorf("%s: err = %v; want InvalidInput naming %s", c.payload, err, c.field)
		}
		if e.st.Writes != writes || e.p.puts != puts {
			t.Errorf("%s: a rejected request wrote", c.payload)
		}
	}
	// The same address twice with the same details is merged, as before.
	e := newEnv()
	res := e.do(t, `{"id":"u1","email":"a@example.com","allowedIps":[{"ip":"2001:db8::1","note":"x"},{"ip":"2001:DB8::1","note":"x"},"203.0.113.10","203.0.113.10/32"]}`)
	if strings.Join(res.Entries, ",") != "2001:db8::1,203.0.113.10" {
		t.Errorf("entries = %q", res.Entries)
	}
}

// TestOneUnaskableUserDoesNotStopTheUsersLeftCheck: a stored id the portal
// cannot be asked about (people/filter answers a list; the client refuses
// an id with "/") made every sync stop checking at that user, so the users
// after it were never reported as gone. Such an id is refused at input, and
// a stored one is skipped with a warning naming it.
func TestOneUnaskableUserDoesNotStopTheUsersLeftCheck(t *testing.T) {
	e := newEnv()
	for _, id := range []string{"a/b", "x?y", "c#d"} {
		_, err := e.s.Handle(context.Background(), []byte(`{"id":"`+id+`","email":"a@example.com","allowedIps":["203.0.113.10"]}`))
		var ie *ipguard.Error
		if !errors.As(err, &ie) || ie.Code != ipguard.EInvalid || ie.Field != "id" {
			t.Errorf("id %q: err = %v; want InvalidInput naming id", id, err)
		}
	}
	e.do(t, `{"id":"filter","email":"a@example.com","allowedIps":["203.0.113.10"]}`)
	e.do(t, `{"id":"u2","email":"b@example.com","allowedIps":["203.0.113.11"]}`)
	e.s.Directory = &fakeDirectory{creator: "o", people: map[string]Person{"o": {IsOwner: true}},
		errs: map[string]error{"filter": ipguard.Errorf(ipguard.EInternal, "docspace: get user: no user in the response")}}
	res := e.do(t, `{"action":"sync"}`)
	if len(res.UsersLeft) != 1 || res.UsersLeft[0].UserID != "u2" {
		t.Errorf("usersLeft = %+v; want u2", res.UsersLeft)
	}
	if w := strings.Join(res.Warnings, " "); !strings.Contains(w, "filter") {
		t.Errorf("warnings = %q; want one naming the user that could not be checked", res.Warnings)
	}
	// An outage still stops the check (the next sync goes on).
	e.s.Directory = &fakeDirectory{creator: "o", people: map[string]Person{"o": {IsOwner: true}},
		errs: map[string]error{"filter": ipguard.Errorf(ipguard.EUnavailable, "docspace: HTTP 503"), "u2": ipguard.Errorf(ipguard.EUnavailable, "docspace: HTTP 503")}}
	res = e.do(t, `{"action":"sync"}`)
	if w := strings.Join(res.Warnings, " "); !strings.Contains(w, "503") {
		t.Errorf("warnings = %q; want the outage", res.Warnings)
	}
}

// TestStoredButPendingIsNeverInvalidInput: InvalidInput promises that
// nothing was written and the request is to be fixed. A change that was
// stored but could not reach the portal because of the portal's own state
// (entries added by hand push the list past PORTAL_MAX_ENTRIES), or a sync
// (which has no input), must say something else.
func TestStoredButPendingIsNeverInvalidInput(t *testing.T) {
	e := newEnv()
	e.s.Settings.MaxEntries = 4
	e.do(t, `{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.10"]}`)
	e.p.set(append(e.p.list, restr("198.51.100.1,198.51.100.2")...), true) // by hand: 4 entries
	_, err := e.s.Handle(context.Background(), []byte(`{"id":"u2","email":"b@example.com","allowedIps":["203.0.113.11"]}`))
	if err == nil || ipguard.ErrorCode(err) == ipguard.EInvalid || !strings.Contains(err.Error(), "PORTAL_MAX_ENTRIES") {
		t.Errorf("change past the cap: err = %v; want an error naming PORTAL_MAX_ENTRIES that is not InvalidInput (the change is stored)", err)
	}
	if _, ok := e.st.users["u2"]; !ok {
		t.Fatal("u2 not stored; the test assumes the cheap cap check let it through")
	}
	_, err = e.s.Handle(context.Background(), []byte(`{"action":"sync"}`))
	if err == nil || ipguard.ErrorCode(err) == ipguard.EInvalid {
		t.Errorf("sync past the cap: err = %v; want an error that is not InvalidInput", err)
	}
	// The portal refusing our list (400) is not the caller's input either.
	e = newEnv()
	e.p.putErr = &ipguard.Error{Code: ipguard.EInvalid, Message: "docspace: put ip restrictions: HTTP 400: IpRestrictions"}
	_, err = e.s.Handle(context.Background(), []byte(`{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.10"]}`))
	if err == nil || ipguard.ErrorCode(err) == ipguard.EInvalid || !strings.Contains(err.Error(), "stored in DynamoDB") {
		t.Errorf("portal 400: err = %v; want a stored-but-pending error that is not InvalidInput", err)
	}
}

// TestLostWriteAnswerStillReachesThePortal: DynamoDB applied the user's
// conditional write but the answer was lost; the SDK's resend fails the
// condition against that very write. The request re-reads, finds the record
// as it wants it, and must still bump the version and reconcile: otherwise a
// removed address stays on the portal and the result says nothing was
// removed.
func TestLostWriteAnswerStillReachesThePortal(t *testing.T) {
	e := newEnv()
	e.do(t, `{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.10","203.0.113.11"]}`)
	e.st.LoseAnswers = 1
	res := e.do(t, `{"action":"remove","id":"u1","allowedIps":["203.0.113.10"]}`)
	if got := ips(e.p.list); got != "192.0.2.1!,203.0.113.11" {
		t.Errorf("portal = %s; want 203.0.113.10 gone", got)
	}
	if !res.Stored || strings.Join(res.Removed, ",") != "203.0.113.10" || len(res.Warnings) != 0 {
		t.Errorf("result = %+v; want stored, removed [203.0.113.10], no warning", res)
	}
	e.st.LoseAnswers = 1
	res = e.do(t, `{"action":"add","id":"u1","allowedIps":["203.0.113.12"]}`)
	if got := ips(e.p.list); got != "192.0.2.1!,203.0.113.11,203.0.113.12" || strings.Join(res.Added, ",") != "203.0.113.12" {
		t.Errorf("portal = %s, result %+v", got, res)
	}
}

// TestPreviewSaysWhetherRestrictionsAreOn: the result's restrictionsEnabled
// is the portal's setting for every action; preview left it false while
// restrictions were on.
func TestPreviewSaysWhetherRestrictionsAreOn(t *testing.T) {
	e := newEnv()
	e.do(t, `{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.10"]}`)
	e.s.Logins = &fakeLogins{}
	res := e.do(t, `{"action":"preview","days":7}`)
	if !e.p.enabled || !res.RestrictionsEnabled {
		t.Errorf("portal enabled %v, preview result restrictionsEnabled %v", e.p.enabled, res.RestrictionsEnabled)
	}
}

// TestExpiresAtIsKeptToTheSecond: DynamoDB keeps expiresAt to the second,
// so an expiry with a fraction read back never equalled the request, and
// every replay of it was "stored" again (a write and a version bump each
// time). The fraction is dropped at input (the entry expires up to a second
// early, never late).
func TestExpiresAtIsKeptToTheSecond(t *testing.T) {
	r, err := DecodeRequest([]byte(`{"id":"u1","email":"a@example.com","allowedIps":[{"ip":"203.0.113.10","expiresAt":"2030-01-01T01:00:00.75+01:00"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := r.AllowedIPs[0].ExpiresAt; !got.Equal(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)) || got.Location() != time.UTC {
		t.Errorf("expiresAt = %v; want 2030-01-01T00:00:00Z", got)
	}
}

// TestOffboardRetryAfterAnUnbumpedDeleteReachesThePortal: the user was
// deleted but the version bump failed (throttled) or the invocation ended;
// Lambda's retry finds no user. It must not answer "applied" while the
// leaver's addresses are still on the portal.
func TestOffboardRetryAfterAnUnbumpedDeleteReachesThePortal(t *testing.T) {
	e := newEnv()
	e.do(t, `{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.10"]}`)
	delete(e.st.users, "u1")
	res := e.do(t, `{"action":"offboard","id":"u1"}`)
	if got := ips(e.p.list); got != "192.0.2.1!" || res.Portal != PortalApplied {
		t.Errorf("portal = %s, result %+v; want the leaver's address gone", got, res)
	}
	puts := e.p.puts
	e.do(t, `{"action":"offboard","id":"u1"}`)
	if e.p.puts != puts {
		t.Error("a replayed offboard sent a PUT")
	}
}

// TestWaiterOnAFailedHolderGetsTheSameErrorKind: a change that waits for
// the lease holder and finds the holder's update failed because of the key
// (not a passing outage) is an error of that kind, like the holder's own
// answer, not a success-shaped "pending".
func TestWaiterOnAFailedHolderGetsTheSameErrorKind(t *testing.T) {
	e := newEnv()
	e.do(t, `{"id":"u0","email":"z@example.com","allowedIps":["203.0.113.9"]}`)
	e.p.putErr = &ipguard.Error{Code: ipguard.EConfig, Message: "docspace: put ip restrictions: HTTP 403: Access denied"}
	if _, err := e.s.Handle(context.Background(), []byte(`{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.10"]}`)); ipguard.ErrorCode(err) != ipguard.EConfig {
		t.Fatalf("holder: err = %v; want ConfigurationError", err)
	}
	// Another holder (with the lease) failed the same way for the version
	// this request is about to get.
	e.st.state.PendingVersion = e.st.state.Version + 1
	lease := &leasetest.Backend{}
	lease.Hold(LeaseName, "other", time.Now().Add(time.Minute))
	e.s.Leases, e.s.LeaseWait = lease, 300*time.Millisecond
	_, err := e.s.Handle(context.Background(), []byte(`{"id":"u2","email":"b@example.com","allowedIps":["203.0.113.11"]}`))
	if ipguard.ErrorCode(err) != ipguard.EConfig || !strings.Contains(fmt.Sprint(err), "403") || !strings.Contains(fmt.Sprint(err), "stored in DynamoDB") {
		t.Errorf("waiter: err = %v; want ConfigurationError naming the 403 and saying the change is stored", err)
	}
}

// fallbackLogins is a portal whose plan lacks the audit feature: every page
// is the same few newest events.
type fallbackLogins struct{ events []ipguard.LoginEvent }

func (l *fallbackLogins) LoginEvents(context.Context, time.Time, int, int) ([]ipguard.LoginEvent, error) {
	return l.events, nil
}

// TestPreviewSaysWhenThePortalShowsOnlyTheNewestLogins: under the plan
// fallback a preview over 30 days saw only the 20 newest logins and still
// reported "refused: []" as if it had replayed the whole history.
func TestPreviewSaysWhenThePortalShowsOnlyTheNewestLogins(t *testing.T) {
	e := newEnv()
	e.do(t, `{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.10"]}`)
	e.s.Logins = &fallbackLogins{events: []ipguard.LoginEvent{{ID: 7, Date: t0.Add(-time.Hour), UserID: "u1", IP: "203.0.113.10", ActionID: 1010}}}
	res := e.do(t, `{"action":"preview","days":30}`)
	if w := strings.Join(res.Warnings, " ") + res.Preview.Note; !strings.Contains(w, "fallback") {
		t.Errorf("warnings %q, note %q; want the plan fallback named", res.Warnings, res.Preview.Note)
	}
	// An honest short history says nothing of the kind.
	e.s.Logins = &fakeLogins{events: []ipguard.LoginEvent{{ID: 7, Date: t0.Add(-time.Hour), UserID: "u1", IP: "203.0.113.10", ActionID: 1010}}}
	res = e.do(t, `{"action":"preview","days":30}`)
	if w := strings.Join(res.Warnings, " ") + res.Preview.Note; strings.Contains(w, "fallback") {
		t.Errorf("warnings %q, note %q on an honest portal", res.Warnings, res.Preview.Note)
	}
}

// TestEmptyExpiresAtIsNotPermanent: a pipeline whose template left the
// expiry empty meant a time-bound entry; "" silently made it permanent.
// Only a missing or null expiresAt means no expiry.
func TestEmptyExpiresAtIsNotPermanent(t *testing.T) {
	for _, v := range []string{`""`, `"  "`} {
		_, err := DecodeRequest([]byte(`{"id":"u1","email":"a@example.com","allowedIps":[{"ip":"198.51.100.7","expiresAt":` + v + `}]}`))
		var ie *ipguard.Error
		if !errors.As(err, &ie) || ie.Code != ipguard.EInvalid || ie.Field != "allowedIps[0].expiresAt" {
			t.Errorf("expiresAt %s: err = %v; want InvalidInput naming allowedIps[0].expiresAt", v, err)
		}
	}
	r, err := DecodeRequest([]byte(`{"id":"u1","email":"a@example.com","allowedIps":[{"ip":"198.51.100.7","expiresAt":null}]}`))
	if err != nil || !r.AllowedIPs[0].ExpiresAt.IsZero() {
		t.Errorf("expiresAt null: %+v, %v; want no expiry", r, err)
	}
}

// TestFieldThatMakesNoSenseIsNamedWithItsValue: the error shows the value
// as sent, not its JSON text quoted once more (email "\"a@example.com\"").
func TestFieldThatMakesNoSenseIsNamedWithItsValue(t *testing.T) {
	_, err := DecodeRequest([]byte(`{"action":"offboard","id":"u1","email":"a@example.com"}`))
	var ie *ipguard.Error
	if !errors.As(err, &ie) || ie.Field != "email" || ie.Value != "a@example.com" {
		t.Errorf("err = %v; want email \"a@example.com\" named", err)
	}
}

// TestUnreadableUserRemovesNothing: a stored user whose record cannot be
// decoded (edited by hand, written by another version) came back with no
// entries, so the next reconcile removed its addresses from the portal and
// locked the user out without a word. While any stored user is unreadable
// the reconcile removes nothing and says why (adding still works).
func TestUnreadableUserRemovesNothing(t *testing.T) {
	e := newEnv()
	e.do(t, `{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.10"]}`)
	e.do(t, `{"id":"u2","email":"b@example.com","allowedIps":["203.0.113.11"]}`)
	e.st.users["u1"] = ipguard.User{ID: "u1", Unreadable: "attribute allowedIps is a number"}
	res := e.do(t, `{"action":"sync"}`)
	if got := ips(e.p.list); got != "192.0.2.1!,203.0.113.10,203.0.113.11" {
		t.Errorf("portal = %s; want u1's address kept", got)
	}
	if w := strings.Join(res.Warnings, " "); !strings.Contains(w, "u1") || !strings.Contains(w, "cannot be read") {
		t.Errorf("warnings = %q; want the unreadable user named", res.Warnings)
	}
	// Additions still go through.
	e.do(t, `{"id":"u3","email":"c@example.com","allowedIps":["203.0.113.12"]}`)
	if got := ips(e.p.list); got != "192.0.2.1!,203.0.113.10,203.0.113.11,203.0.113.12" {
		t.Errorf("portal = %s", got)
	}
}

// TestIDAndUserIDInDifferentCaseAreOneUser: GUIDs are compared
// case-insensitively everywhere (they are stored lower-case); an "id" and
// a "userId" naming the same GUID in different case are one user.
func TestIDAndUserIDInDifferentCaseAreOneUser(t *testing.T) {
	r, err := DecodeRequest([]byte(`{"id":"6B2F7A1E-3C44-4A5B-9E0F-1D2C3B4A5F60","userId":"6b2f7a1e-3c44-4a5b-9e0f-1d2c3b4a5f60","email":"a@example.com","allowedIps":["203.0.113.10"]}`))
	if err != nil || !strings.EqualFold(r.ID, "6b2f7a1e-3c44-4a5b-9e0f-1d2c3b4a5f60") {
		t.Errorf("request = %+v, %v", r, err)
	}
	if _, err := DecodeRequest([]byte(`{"id":"u1","userId":"U1","email":"a@example.com","allowedIps":["203.0.113.10"]}`)); ipguard.ErrorCode(err) != ipguard.EInvalid {
		t.Errorf("two different non-GUID ids: err = %v; want InvalidInput", err)
	}
}
