package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"ipguard/internal/ipguard"
	"ipguard/internal/onboard"
	"ipguard/internal/testbed/devportal"
	"ipguard/internal/testbed/localdeploy"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"
)

var manual = []ipguard.Restriction{{IP: "192.0.2.1", ForAdmin: true}, {IP: "192.0.2.2"}}

func puts(s *localdeploy.Stack) int {
	n := 0
	for _, r := range s.Portal.Requests() {
		if r.Method == "PUT" {
			n++
		}
	}
	return n
}

func portalIPs(s *localdeploy.Stack) []string {
	list, _ := s.Portal.Restrictions()
	var out []string
	for _, r := range list {
		ip := r.IP
		if r.ForAdmin {
			ip += "!"
		}
		out = append(out, ip)
	}
	return out
}

func TestOnboardStoresUserAndMergesPortalAllowlist(t *testing.T) {
	s := deploy(t)
	s.Portal.SetRestrictions(manual, false)
	svc := onboardService(t)
	res, err := svc.Handle(context.Background(), []byte(`{"id":"6B2F7A1E-3C44-4A5B-9E0F-1D2C3B4A5F60","email":"jane@example.com",
		"allowedIps":[" 203.0.113.10 ","198.51.100.0-198.51.100.3","10.20.0.0/30","2001:DB8::1","::ffff:192.0.2.1","10.0.0.0/16"]}`))
	if err != nil {
		t.Fatal(err)
	}
	wantEntries := []string{"203.0.113.10", "198.51.100.0-198.51.100.3", "10.20.0.0/30", "2001:db8::1", "192.0.2.1", "10.0.0.0/16"}
	if !slices.Equal(res.Entries, wantEntries) {
		t.Errorf("entries = %v", res.Entries)
	}
	u, ok, err := s.Store.GetUser(context.Background(), "6b2f7a1e-3c44-4a5b-9e0f-1d2c3b4a5f60")
	if err != nil || !ok || u.Email != "jane@example.com" || !slices.Equal(u.Entries, wantEntries) || u.CreatedAt.IsZero() || u.UpdatedAt.IsZero() {
		t.Fatalf("stored user = %+v, %v, %v", u, ok, err)
	}
	// 192.0.2.1 is on the portal only for admins: the user gets a non-admin entry of their own.
	want := "192.0.2.1!,192.0.2.2,203.0.113.10,198.51.100.0,198.51.100.1,198.51.100.2,198.51.100.3,10.20.0.0,10.20.0.1,10.20.0.2,10.20.0.3,2001:db8::1,192.0.2.1"
	if got := strings.Join(portalIPs(s), ","); got != want {
		t.Errorf("portal =\n %s\nwant\n %s", got, want)
	}
	if _, enabled := s.Portal.Restrictions(); !enabled || !res.RestrictionsEnabled {
		t.Error("restrictions not enabled")
	}
	if len(res.NotPushed) != 1 || res.NotPushed[0].Entry != "10.0.0.0/16" || res.NotPushed[0].Reason == "" {
		t.Errorf("notPushed = %+v", res.NotPushed)
	}
	out, _ := json.Marshal(res)
	for _, k := range []string{`"userId"`, `"entries"`, `"portalAdded"`, `"notPushed"`, `"restrictionsEnabled"`} {
		if !strings.Contains(string(out), k) {
			t.Errorf("result JSON lacks %s: %s", k, out)
		}
	}
}

func TestOnboardReplaySendsNoPutAndChangesNothing(t *testing.T) {
	s := deploy(t)
	s.Portal.SetRestrictions(manual, true)
	svc := onboardService(t)
	payload := []byte(`{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.10","10.20.0.0/31"]}`)
	if _, err := svc.Handle(context.Background(), payload); err != nil {
		t.Fatal(err)
	}
	before, _, _ := s.Store.GetUser(context.Background(), "u1")
	portalBefore := portalIPs(s)
	putsBefore := puts(s)
	res, err := svc.Handle(context.Background(), payload)
	if err != nil {
		t.Fatal(err)
	}
	after, _, _ := s.Store.GetUser(context.Background(), "u1")
	if puts(s) != putsBefore || res.PortalUpdated || res.Stored {
		t.Errorf("replay sent %d PUT(s); result %+v", puts(s)-putsBefore, res)
	}
	if !slices.Equal(portalIPs(s), portalBefore) || !slices.Equal(after.Entries, before.Entries) || !after.UpdatedAt.Equal(before.UpdatedAt) {
		t.Errorf("replay changed state: %v → %v, %+v → %+v", portalBefore, portalIPs(s), before, after)
	}
}

func TestOnboardRejectedInputWritesNothing(t *testing.T) {
	s := deploy(t)
	s.Portal.SetRestrictions(manual, true)
	svc := onboardService(t)
	many := make([]string, 101)
	for i := range many {
		many[i] = fmt.Sprintf(`"203.0.113.%d"`, i)
	}
	tests := []struct {
		name, payload, field, value string
	}{
		{"missing id", `{"email":"a@example.com","allowedIps":["203.0.113.1"]}`, "id", ""},
		{"empty id", `{"id":"  ","email":"a@example.com","allowedIps":["203.0.113.1"]}`, "id", ""},
		{"malformed email", `{"id":"u1","email":"not-an-email","allowedIps":["203.0.113.1"]}`, "email", "not-an-email"},
		{"missing allowedIps", `{"id":"u1","email":"a@example.com"}`, "allowedIps", ""},
		{"empty allowedIps", `{"id":"u1","email":"a@example.com","allowedIps":[]}`, "allowedIps", ""},
		{"non-list allowedIps", `{"id":"u1","email":"a@example.com","allowedIps":"203.0.113.1"}`, "allowedIps", "203.0.113.1"},
		{"unparseable entry", `{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.1","foo"]}`, "allowedIps[1]", "foo"},
		{"reversed range", `{"id":"u1","email":"a@example.com","allowedIps":["10.0.0.9-10.0.0.1"]}`, "allowedIps[0]", "10.0.0.9-10.0.0.1"},
		{"mixed-family range", `{"id":"u1","email":"a@example.com","allowedIps":["10.0.0.1-2001:db8::1"]}`, "allowedIps[0]", "10.0.0.1-2001:db8::1"},
		{"zoned address", `{"id":"u1","email":"a@example.com","allowedIps":["fe80::1%eth0"]}`, "allowedIps[0]", "fe80::1%eth0"},
		{"prefix out of range", `{"id":"u1","email":"a@example.com","allowedIps":["10.0.0.0/33"]}`, "allowedIps[0]", "10.0.0.0/33"},
		{"host bits set", `{"id":"u1","email":"a@example.com","allowedIps":["10.0.0.1/24"]}`, "allowedIps[0]", "10.0.0.1/24"},
		{"over-broad IPv4", `{"id":"u1","email":"a@example.com","allowedIps":["10.0.0.0/7"]}`, "allowedIps[0]", "10.0.0.0/7"},
		{"over-broad IPv6", `{"id":"u1","email":"a@example.com","allowedIps":["2001:db8::/31"]}`, "allowedIps[0]", "2001:db8::/31"},
		{"over-broad range", `{"id":"u1","email":"a@example.com","allowedIps":["10.0.0.0-12.0.0.0"]}`, "allowedIps[0]", "10.0.0.0-12.0.0.0"},
		{"everything v4", `{"id":"u1","email":"a@example.com","allowedIps":["0.0.0.0/0"]}`, "allowedIps[0]", "0.0.0.0/0"},
		{"everything v6", `{"id":"u1","email":"a@example.com","allowedIps":["::/0"]}`, "allowedIps[0]", "::/0"},
		{"too many", `{"id":"u1","email":"a@example.com","allowedIps":[` + strings.Join(many, ",") + `]}`, "allowedIps", ""},
		{"one bad among good", `{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.1","198.51.100.0/24","300.1.1.1"]}`, "allowedIps[2]", "300.1.1.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := svc.Handle(context.Background(), []byte(tt.payload))
			if ipguard.ErrorCode(err) != ipguard.EInvalid {
				t.Fatalf("err = %v, want invalid input", err)
			}
			if !strings.Contains(err.Error(), tt.field) || !strings.Contains(err.Error(), tt.value) {
				t.Errorf("error %q does not name field %q and value %q", err, tt.field, tt.value)
			}
			if users, _ := s.Store.AllUsers(context.Background()); len(users) != 0 {
				t.Errorf("stored %d users", len(users))
			}
			if puts(s) != 0 {
				t.Errorf("sent %d PUTs", puts(s))
			}
		})
	}
	if got := portalIPs(s); strings.Join(got, ",") != "192.0.2.1!,192.0.2.2" {
		t.Errorf("portal changed: %v", got)
	}
}

// TestOnboardConcurrentOnboardingsLoseNothing runs many onboardings at the
// same moment, each with its own adapters as separate Lambda containers
// would have, five rounds in a row.
func TestOnboardConcurrentOnboardingsLoseNothing(t *testing.T) {
	const n = 24
	for round := 1; round <= 5; round++ {
		s := deploy(t)
		s.Portal.SetRestrictions(manual, true)
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i := 0; i < n; i++ {
			svc := onboardService(t)
			wg.Add(1)
			go func() {
				defer wg.Done()
				payload := fmt.Sprintf(`{"id":"user-%d","email":"u%d@example.com","allowedIps":["203.0.113.%d","198.51.%d.0/31"]}`, i, i, i+1, i)
				if _, err := svc.Handle(context.Background(), []byte(payload)); err != nil {
					errs <- fmt.Errorf("onboarding %d: %w", i, err)
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("round %d: %v", round, err)
		}
		got := map[string]bool{}
		for _, ip := range portalIPs(s) {
			got[ip] = true
		}
		for _, ip := range []string{"192.0.2.1!", "192.0.2.2"} {
			if !got[ip] {
				t.Fatalf("round %d: earlier entry %s lost", round, ip)
			}
		}
		for i := 0; i < n; i++ {
			for _, ip := range []string{fmt.Sprintf("203.0.113.%d", i+1), fmt.Sprintf("198.51.%d.0", i), fmt.Sprintf("198.51.%d.1", i)} {
				if !got[ip] {
					t.Fatalf("round %d: %s of user-%d lost (portal has %d entries)", round, ip, i, len(got))
				}
			}
		}
		if users, _ := s.Store.AllUsers(context.Background()); len(users) != n {
			t.Fatalf("round %d: %d users stored", round, len(users))
		}
	}
}

func TestOnboardRetriesThroughTransientPortalErrors(t *testing.T) {
	s := deploy(t)
	s.Portal.InjectFault(devportal.Fault{Method: "PUT", Status: 503, RetryAfter: "0", Times: 2})
	s.Portal.InjectFault(devportal.Fault{Method: "GET", Status: 429, RetryAfter: "0", Times: 1})
	if _, err := onboardService(t).Handle(context.Background(), []byte(`{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.10"]}`)); err != nil {
		t.Fatal(err)
	}
	if got := portalIPs(s); !slices.Contains(got, "203.0.113.10") {
		t.Errorf("portal = %v", got)
	}
}

func TestOnboardPortalFailuresSurfaceWithoutTheKey(t *testing.T) {
	tests := []struct {
		name    string
		fault   devportal.Fault
		code    ipguard.Code // "" → a result with portal "pending"
		pending string       // in portalReason
	}{
		{"server error", devportal.Fault{Method: "PUT", Status: 500}, "", "HTTP 500"},
		{"unauthorized", devportal.Fault{Status: 401}, ipguard.EConfig, ""},
		{"down", devportal.Fault{Status: 503, RetryAfter: "0"}, "", "HTTP 503"},
		{"malformed body", devportal.Fault{Method: "GET", Malformed: true}, ipguard.EInternal, ""},
		{"200 without response", devportal.Fault{Method: "GET", Path: "/settings/iprestrictions", NoResponse: true}, ipguard.EInternal, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := deploy(t)
			s.Portal.SetRestrictions(manual, true)
			s.Portal.InjectFault(tt.fault)
			res, err := onboardService(t).Handle(context.Background(), []byte(`{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.10"]}`))
			text := fmt.Sprint(err) + res.PortalReason
			if tt.code != "" && ipguard.ErrorCode(err) != tt.code {
				t.Fatalf("err = %v (code %s), want %s", err, ipguard.ErrorCode(err), tt.code)
			}
			if tt.code == "" && (err != nil || res.Portal != onboard.PortalPending || !strings.Contains(res.PortalReason, tt.pending) || !res.Stored) {
				t.Fatalf("result = %+v, err = %v; want portal pending with %q", res, err, tt.pending)
			}
			if strings.Contains(text, s.APIKey) || strings.Contains(text, s.APIKey[3:20]) {
				t.Fatalf("error leaks the API key: %v", text)
			}
			if got := strings.Join(portalIPs(s), ","); got != "192.0.2.1!,192.0.2.2" {
				t.Errorf("portal changed: %s", got)
			}
			if u, ok, _ := s.Store.GetUser(context.Background(), "u1"); !ok || len(u.Entries) != 1 {
				t.Errorf("the change was not kept in DynamoDB: %+v", u)
			}
		})
	}
}

// An onboarding alert that SNS does not take is an alarm, not only a log
// line: the real handler's metrics line declares AlertsUndelivered (read by
// OnboardAlertsUndeliveredAlarm), and once SNS takes it again the next sync
// sends it and the line no longer declares it. (Before: the failed publish
// was only logged.)
func TestOnboardAlertSNSRefusedIsAMetric(t *testing.T) {
	s := deploy(t)
	s.Portal.SetRestrictions(manual, false)
	svc, lines := meteredOnboardService(t)
	if _, err := svc(context.Background(), []byte(`{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.10"]}`)); err != nil {
		t.Fatal(err)
	}
	list, _ := s.Portal.Restrictions()
	s.Portal.SetRestrictions(list, false) // switched off by hand: a drift alert is due
	s.FailPublish(true)
	lines.Reset()
	if _, err := svc(context.Background(), []byte(`{"action":"sync"}`)); err != nil {
		t.Fatal(err)
	}
	if l := lines.String(); !strings.Contains(l, `{"Name":"AlertsUndelivered"`) || strings.Contains(l, `"AlertsUndelivered":0`) {
		t.Fatalf("sync with SNS refusing: metrics line %s; want AlertsUndelivered declared above 0", l)
	}
	s.FailPublish(false)
	lines.Reset()
	if _, err := svc(context.Background(), []byte(`{"action":"sync"}`)); err != nil {
		t.Fatal(err)
	}
	if l := lines.String(); strings.Contains(l, `{"Name":"AlertsUndelivered"`) || !strings.Contains(l, `"AlertsUndelivered":0`) {
		t.Errorf("sync after SNS recovered: metrics line %s; want AlertsUndelivered 0, not declared", l)
	}
}

// Lambda delivers an asynchronous invocation again with the same request
// id (its retries after an error, or a duplicate from its queue). Through
// the real handler, DynamoDB and the dev portal: a direct payload without
// requestedAt is dated by its request id's first arrival, so its second
// delivery after a newer remove does not give the address back.
func TestARedeliveredAsyncInvocationDoesNotUndoANewerChange(t *testing.T) {
	s := deploy(t)
	svc := onboardService(t)
	mustDo(t, svc, `{"id":"`+alice+`","email":"alice@example.com","allowedIps":["203.0.113.10"]}`)
	add := []byte(`{"action":"add","id":"` + alice + `","allowedIps":["203.0.113.20"]}`)
	invocation := lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{AwsRequestID: "c0ffee00-1111-4222-8333-444455556666"})
	if _, err := svc.Handle(invocation, add); err != nil {
		t.Fatal(err)
	}
	mustDo(t, svc, `{"action":"remove","id":"`+alice+`","allowedIps":["203.0.113.20"]}`)
	res, err := svc.Handle(invocation, add) // the same invocation, delivered again
	if err != nil {
		t.Fatal(err)
	}
	if got := portalIPs(s); slices.Contains(got, "203.0.113.20") {
		t.Errorf("portal = %v; the redelivered add undid the newer remove", got)
	}
	if w := strings.Join(res.Warnings, " "); !strings.Contains(w, "203.0.113.20") {
		t.Errorf("warnings %q; want the entry a newer request removed named", w)
	}
}

// The users-left check that cannot run is told to a person, once per
// episode. A proxy answers people/{id} with its own 404 page (a
// ConfigurationError, never "gone"): with OFFBOARD_REMOVED_USERS=true the
// sync can offboard nobody, however many users left, while the allowlist
// itself still syncs. So the first sync that finds the check failing sends
// an allowlist_users_left alert saying so (and what to check); the syncs
// after it, failing the same way, send none; a sync whose check works ends
// the episode, and the next failure is alerted again. (Before: only a
// warning in the result of a scheduled invocation, which nobody reads; the
// sync counted as completed and no alarm fired.)
func TestUsersLeftCheckThatCannotRunIsAlertedOncePerEpisode(t *testing.T) {
	s, svc := aliceOnboardedWithOffboarding(t)
	s.Portal.InjectFault(proxy404)
	for range 3 {
		mustDo(t, svc, `{"action":"sync"}`)
	}
	if got := checkAlerts(s); len(got) != 1 || !strings.Contains(got[0].Email, "users who left") {
		t.Fatalf("alerts about the users-left check after 3 failing syncs: %d (%+v); want 1", len(got), got)
	}
	s.Portal.ClearFaults()
	mustDo(t, svc, `{"action":"sync"}`) // the check works again: the episode ends
	s.Portal.InjectFault(proxy404)
	mustDo(t, svc, `{"action":"sync"}`)
	if got := checkAlerts(s); len(got) != 2 {
		t.Errorf("alerts about the users-left check after it failed again: %d; want 2", len(got))
	}
}

// checkAlerts are the published alerts saying the users-left check fails.
func checkAlerts(s *localdeploy.Stack) []localdeploy.Published {
	var out []localdeploy.Published
	for _, p := range s.Published() {
		if strings.Contains(p.Default, "allowlist_users_left") && strings.Contains(p.Default, "could not check") {
			out = append(out, p)
		}
	}
	return out
}

// The users-left check spends at most half of the sync's time, also when
// people/{id} hangs (a proxy holding the requests of one path): the
// reconcile gets the rest, so a change that waits is applied (and expired
// entries leave) whatever the people endpoint does. (Before: the half was
// checked only between calls; one call, retried on its timeouts, ran until
// the invocation's deadline, and no sync reconciled while it hung.)
func TestSyncReconcilesWhilePeopleHangs(t *testing.T) {
	s := deploy(t, "OFFBOARD_REMOVED_USERS=true", "DOCSPACE_TIMEOUT=1s")
	s.Portal.SetRestrictions(manual, true) // on already: no lock-out preflight (which asks people/ too)
	if err := s.Portal.PutUsers(devportal.User{ID: alice, DisplayName: "Alice", Email: "alice@example.com", Status: devportal.StatusActive}); err != nil {
		t.Fatal(err)
	}
	svc := onboardService(t)
	// The change is stored, but the portal refuses the PUT for now.
	s.Portal.InjectFault(devportal.Fault{Method: "PUT", Path: "/settings/iprestrictions", Status: 403, Times: 1})
	if _, err := svc.Handle(context.Background(), []byte(`{"id":"`+alice+`","email":"alice@example.com","allowedIps":["203.0.113.10"]}`)); err == nil {
		t.Fatal("the refused PUT was no error")
	}
	s.Portal.InjectFault(devportal.Fault{Method: "GET", Path: "/people/", Delay: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()
	res, err := svc.Handle(ctx, []byte(`{"action":"sync"}`))
	if err != nil || res.Portal != onboard.PortalApplied {
		t.Fatalf("sync while people/{id} hangs: %+v, %v; want the waiting change applied", res, err)
	}
	if got := portalIPs(s); !slices.Contains(got, "203.0.113.10") {
		t.Errorf("portal = %v; want the waiting change on it", got)
	}
}

// The lock-out preflight (asked only while restrictions are off and
// PORTAL_ENFORCE=true: keys/@self, then people/{creator}) is bounded too:
// when people/{id} hangs, the change is still applied, restrictions stay
// off (the preflight could not say it is safe) and the result says why.
// (Before: the preflight's call ran until the invocation's deadline, and
// no change reached the portal while people/{id} hung.)
func TestChangeIsAppliedWhileThePreflightsPeopleCallHangs(t *testing.T) {
	s := deploy(t, "DOCSPACE_TIMEOUT=2s", "PORTAL_ENFORCE=true")
	s.Portal.SetRestrictions(manual, false)
	svc := onboardService(t)
	s.Portal.InjectFault(devportal.Fault{Method: "GET", Path: "/people/", Delay: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()
	res, err := svc.Handle(ctx, []byte(`{"id":"`+alice+`","email":"alice@example.com","allowedIps":["203.0.113.10"]}`))
	if err != nil || res.Portal != onboard.PortalApplied {
		t.Fatalf("change while people/{id} hangs: %+v, %v; want it applied", res, err)
	}
	if got, enabled := s.Portal.Restrictions(); !slices.ContainsFunc(got, func(r ipguard.Restriction) bool { return r.IP == "203.0.113.10" }) || enabled {
		t.Errorf("portal = %v (enabled %v); want the change on it, restrictions left off", got, enabled)
	}
}

// The sync heartbeat (Syncs, read by SyncHeartbeatAlarm: "expired travel
// entries stay on the portal") beats only for a sync that reached the
// portal. While the portal does not answer, a sync stores nothing wrong
// and fails nobody (the change waits, pending), but it did not sync: its
// metrics line carries no Syncs, so an outage that lasts two periods
// raises the alarm. (Before: every such sync counted as completed, and a
// portal down for days never showed.)
func TestSyncHeartbeatBeatsOnlyWhenThePortalWasReached(t *testing.T) {
	s := deploy(t)
	s.Portal.SetRestrictions(manual, true)
	svc, lines := meteredOnboardService(t)
	ctx := context.Background()
	if _, err := svc(ctx, []byte(`{"action":"sync"}`)); err != nil {
		t.Fatal(err)
	}
	if l := lines.String(); !strings.Contains(l, `"Syncs":1`) {
		t.Fatalf("a sync that reached the portal: metrics line %s; want Syncs 1", l)
	}
	s.Portal.InjectFault(devportal.Fault{Path: "/settings/iprestrictions", Status: 503})
	lines.Reset()
	res, err := svc(ctx, []byte(`{"action":"sync"}`))
	if err != nil || res.Portal != onboard.PortalPending {
		t.Fatalf("sync while the portal is down: %+v, %v; want pending", res, err)
	}
	if l := lines.String(); strings.Contains(l, `"Syncs":1`) {
		t.Errorf("a sync that could not reach the portal: metrics line %s; want no Syncs", l)
	}
}
