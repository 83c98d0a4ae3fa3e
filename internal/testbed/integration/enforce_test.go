package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"ipguard/internal/audit"
	"ipguard/internal/config"
	"ipguard/internal/testbed/devportal"
	"ipguard/internal/testbed/localdeploy"
	"ipguard/internal/wiring"
)

const (
	keyAdmin   = "aaaaaaaa-1111-4111-8111-000000000001" // the DocSpace admin who created the API key
	otherAdmin = "aaaaaaaa-1111-4111-8111-000000000002" // another DocSpace admin
)

// deployEnforcing stands the product up with the given enforcement settings
// and a portal where alice, bob and two admins exist, and the API key was
// created by one of the admins (not the owner), as the README advises
// against but many deploy.
func deployEnforcing(t *testing.T, env ...string) *localdeploy.Stack {
	t.Helper()
	// With a non-owner key, switching restrictions on needs a break-glass
	// address (issue 9's lock-out preflight); without one the onboarding
	// would leave them off and send a lock-out alert these tests do not expect.
	s := deploy(t, append([]string{"PORTAL_BREAKGLASS_IPS=192.0.2.250"}, env...)...)
	err := s.Portal.PutUsers(
		devportal.User{ID: alice, DisplayName: "Alice", Email: "alice@example.com", Status: devportal.StatusActive},
		devportal.User{ID: bob, DisplayName: "Bob", Email: "bob@example.com", Status: devportal.StatusActive},
		devportal.User{ID: keyAdmin, DisplayName: "Key Admin", Email: "keyadmin@example.com", Status: devportal.StatusActive, IsAdmin: true},
		devportal.User{ID: otherAdmin, DisplayName: "Other Admin", Email: "admin2@example.com", Status: devportal.StatusActive, IsAdmin: true},
	)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Portal.PutKey(devportal.APIKey{Key: s.APIKey, CreateBy: keyAdmin, IsActive: true}); err != nil {
		t.Fatal(err)
	}
	onboard := onboardService(t)
	for _, p := range []string{
		`{"id":"` + alice + `","email":"alice@example.com","allowedIps":["203.0.113.10"]}`,
		`{"id":"` + bob + `","email":"bob@example.com","allowedIps":["192.0.2.7"]}`,
		`{"id":"` + keyAdmin + `","email":"keyadmin@example.com","allowedIps":["192.0.2.8"]}`,
		`{"id":"` + otherAdmin + `","email":"admin2@example.com","allowedIps":["192.0.2.9"]}`,
		`{"id":"` + devportal.OwnerID + `","email":"owner@portal.test","allowedIps":["192.0.2.10"]}`,
	} {
		if _, err := onboard.Handle(context.Background(), []byte(p)); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// sessions returns which of the login events' sessions are still active, by
// the dev portal's own account.
func activeSessions(t *testing.T, s *localdeploy.Stack, ids []int64) []bool {
	t.Helper()
	out := make([]bool, len(ids))
	for i, id := range ids {
		sess, ok := s.Portal.Session(id)
		if !ok {
			t.Fatalf("no session for login event %d", id)
		}
		out[i] = sess.Active
	}
	return out
}

// logoutTargets lists the targets of every logout call the portal answered.
func logoutTargets(s *localdeploy.Stack) []string {
	var out []string
	for _, l := range s.Portal.Logouts() {
		out = append(out, l.Route+" "+l.Target)
	}
	return out
}

// responses maps each alerted event id to its response outcome (with guard).
func responses(t *testing.T, events []map[string]any) map[int64]string {
	t.Helper()
	out := map[int64]string{}
	for _, e := range events {
		id, _ := e["eventId"].(float64)
		r, ok := e["response"].(map[string]any)
		if !ok {
			out[int64(id)] = "-"
			continue
		}
		o := fmt.Sprint(r["outcome"])
		if g, ok := r["guard"]; ok {
			o += "(" + fmt.Sprint(g) + ")"
		}
		out[int64(id)] = o
	}
	return out
}

func TestEnforcementReportModeCallsNothing(t *testing.T) {
	s := deployEnforcing(t) // ENFORCEMENT_MODE defaults to report
	ids := s.Portal.AddLoginEvents(login(alice, 1010, "198.51.100.1", 2*time.Minute), login(bob, 1000, "192.0.2.7", time.Minute))
	s.Portal.ResetRequests()
	res, err := auditService(t).Handle(context.Background(), scheduled(time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	if res.Responses[audit.OutcomeWouldEnd] != 1 || res.SessionEnded != 0 {
		t.Errorf("result %+v", res)
	}
	for _, r := range s.Portal.Requests() {
		// Reading the login history and the key's own description (the key watch) act on nothing.
		if !strings.Contains(r.Path, "/security/audit/login") && !strings.HasSuffix(r.Path, "/keys/@self") {
			t.Errorf("report mode called %s %s", r.Method, r.Path)
		}
	}
	if got := activeSessions(t, s, ids); !slices.Equal(got, []bool{true, true}) {
		t.Errorf("sessions active %v; want both", got)
	}
	if got := responses(t, alerted(t, s)); got[ids[0]] != "would_end" {
		t.Errorf("alerted responses %v", got)
	}
	if pub := s.Published(); len(pub) != 1 || !strings.Contains(pub[0].Email, "would have ended (report mode)") {
		t.Errorf("email does not say what would have been done: %+v", pub)
	}
}

func TestEnforcementEndsExactlyTheViolatingSessionsOnce(t *testing.T) {
	s := deployEnforcing(t, "ENFORCEMENT_MODE=end-session")
	ids := s.Portal.AddLoginEvents(
		login(alice, 1010, "198.51.100.1", 5*time.Minute),             // 0 violation
		login(alice, 1010, "203.0.113.10", 4*time.Minute),             // 1 allowed
		login(bob, 1000, "198.51.100.2", 4*time.Minute),               // 2 violation
		login(keyAdmin, 1010, "198.51.100.3", 3*time.Minute),          // 3 the key's own user
		login(devportal.OwnerID, 1010, "198.51.100.4", 3*time.Minute), // 4 the owner
		login(alice, 1010, "2001:db8::5", 2*time.Minute),              // 5 unverifiable
	)
	for i := 0; i < 5; i++ {
		s.Portal.AddLoginEvents(login(bob, 1013, "198.18.0.66", time.Duration(60-i)*time.Second)) // failed-login burst
	}
	// SNS is down for the first run: it acts, then fails to publish; the
	// retried run must not act again but still tell what was done.
	s.FailPublish(true)
	if _, err := auditService(t).Handle(context.Background(), scheduled(time.Now())); err == nil {
		t.Fatal("the run with SNS down succeeded")
	}
	if got := activeSessions(t, s, ids[:3]); !slices.Equal(got, []bool{false, true, false}) {
		t.Fatalf("after the failed run sessions active %v; want the violating ones ended", got)
	}
	s.FailPublish(false)
	// Two runs at once: one holds the lease, the other skips.
	var wg sync.WaitGroup
	results := make([]audit.Result, 2)
	errs := make([]error, 2)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = auditService(t).Handle(context.Background(), scheduled(time.Now()))
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
	}

	want := []bool{false, true, false, true, true, true}
	if got := activeSessions(t, s, ids); !slices.Equal(got, want) {
		t.Errorf("sessions active %v; want %v", got, want)
	}
	if got, want := logoutTargets(s), []string{fmt.Sprint("logout ", ids[0]), fmt.Sprint("logout ", ids[2])}; !slices.Equal(got, want) {
		t.Errorf("logout calls %v; want each violating session once: %v", got, want)
	}
	got := responses(t, alerted(t, s))
	wantResp := map[int64]string{ids[0]: "ended", ids[2]: "ended", ids[3]: "skipped(api_key_user)", ids[4]: "skipped(owner)", ids[5]: "-", 0: "-"}
	for id, w := range wantResp {
		if got[id] != w {
			t.Errorf("event %d response %q; want %q (all: %v)", id, got[id], w, got)
		}
	}
	pub := s.Published()
	if len(pub) != 2 { // the retried run's high message, then its medium one
		t.Fatalf("%d alerts; want the two (high, medium) of the retried run", len(pub))
	}
	if !strings.Contains(pub[0].Email, "Response: session ended ") || !strings.Contains(pub[0].SMS, "2 sessions ended") {
		t.Errorf("alert does not say what happened:\nsms %q\nemail:\n%s", pub[0].SMS, pub[0].Email)
	}
	// The retried run shows what the failed try did (responses "ended",
	// read back from the records), but sessionEnded counts only what a run
	// ended itself (issue 16 §5): none.
	ended := results[0].SessionEnded + results[1].SessionEnded
	shown := results[0].Responses[audit.OutcomeEnded] + results[1].Responses[audit.OutcomeEnded]
	if ended != 0 || shown != 2 || (results[0].Skipped == results[1].Skipped) {
		t.Errorf("results %+v / %+v; want one run that shows 2 ended sessions (ended by the failed try, sessionEnded 0) and one skipped", results[0], results[1])
	}
}

// Two responders that bypass the audit's lease (as two runs would if the
// lease expired under a slow run) still end each session once: the record's
// conditional write decides.
func TestEnforcementConcurrentRespondersActOnce(t *testing.T) {
	s := deployEnforcing(t, "ENFORCEMENT_MODE=end-session")
	var ids []int64
	for i := 0; i < 6; i++ {
		ids = append(ids, s.Portal.AddLoginEvents(login(alice, 1010, fmt.Sprintf("198.51.100.%d", i+1), time.Minute))...)
	}
	d, err := wiring.Load(context.Background(), config.Audit)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for r := 0; r < 3; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var fs []audit.Finding
			for _, id := range ids {
				fs = append(fs, audit.Finding{EventID: id, Kind: audit.KindIPNotAllowed, UserID: alice, IP: "198.51.100.1"})
			}
			d.Enforcement().Respond(context.Background(), fs, false)
		}()
	}
	wg.Wait()
	if got := activeSessions(t, s, ids); slices.Contains(got, true) {
		t.Errorf("sessions active %v; want all ended", got)
	}
	if n := len(s.Portal.Logouts()); n != len(ids) {
		t.Errorf("%d logout calls for %d sessions: %v", n, len(ids), logoutTargets(s))
	}
}

// The breaker counts accounts: 11 accounts in one run (unknown users, with
// ENFORCE_UNKNOWN_USERS) trip it; 11 logins of two accounts would not.
func TestEnforcementCircuitBreakerActsOnNone(t *testing.T) {
	s := deployEnforcing(t, "ENFORCEMENT_MODE=end-session", "ENFORCE_UNKNOWN_USERS=true")
	var ids []int64
	for i := 0; i < 11; i++ {
		user := fmt.Sprintf("cccccccc-1111-4111-8111-%012d", i+1)
		ids = append(ids, s.Portal.AddLoginEvents(login(user, 1010, fmt.Sprintf("198.51.100.%d", i+1), time.Minute))...)
	}
	res, err := auditService(t).Handle(context.Background(), scheduled(time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	if res.SessionEnded != 0 || res.Responses[audit.OutcomeSkipped] != 11 || res.AlertsPublished != 1 {
		t.Errorf("result %+v", res)
	}
	if got := activeSessions(t, s, ids); slices.Contains(got, false) {
		t.Errorf("sessions active %v; want none ended", got)
	}
	if l := s.Portal.Logouts(); len(l) != 0 {
		t.Errorf("logout calls %v", l)
	}
	mail, err := s.Mail(context.Background(), 300*time.Millisecond)
	if err != nil || len(mail) != 1 {
		t.Fatalf("%d alerts, %v; want one", len(mail), err)
	}
	var p audit.Payload
	if err := json.Unmarshal([]byte(mail[0].Message), &p); err != nil {
		t.Fatal(err)
	}
	if len(p.Notices) != 1 || !strings.Contains(p.Notices[0], "suspended") || !strings.Contains(p.Notices[0], "ENFORCEMENT_MAX_PER_RUN=10") {
		t.Errorf("notices %q", p.Notices)
	}
	if pub := s.Published(); !strings.Contains(pub[0].Email, "suspended") || !strings.Contains(pub[0].SMS, "enforcement suspended") {
		t.Errorf("alert does not say enforcement was suspended:\nsms %q\nemail:\n%s", pub[0].SMS, pub[0].Email)
	}
}

func TestEnforcementFailingLogoutStillAlerts(t *testing.T) {
	s := deployEnforcing(t, "ENFORCEMENT_MODE=end-session")
	ids := s.Portal.AddLoginEvents(login(alice, 1010, "198.51.100.1", time.Minute))
	s.Portal.InjectFault(devportal.Fault{Method: "PUT", Path: "/security/activeconnections/logout", Status: 500, RetryAfter: "0"})
	res, err := auditService(t).Handle(context.Background(), scheduled(time.Now()))
	if err != nil {
		t.Fatalf("a failing logout failed the run: %v", err)
	}
	if res.AlertsPublished != 1 || res.Responses[audit.OutcomeFailed] != 1 || !res.CheckpointAdvanced {
		t.Errorf("result %+v", res)
	}
	evs := alerted(t, s)
	if got := responses(t, evs); got[ids[0]] != "failed" {
		t.Errorf("responses %v", got)
	}
	if r := evs[0]["response"].(map[string]any); !strings.Contains(fmt.Sprint(r["error"]), "500") {
		t.Errorf("failed without the error: %v", r)
	}
	if pub := s.Published(); !strings.Contains(pub[0].Email, "ending the session failed") {
		t.Errorf("email:\n%s", pub[0].Email)
	}
}

func TestEnforcementEscalationDisablesAndReportsTheRefusal(t *testing.T) {
	s := deployEnforcing(t, "ENFORCEMENT_MODE=end-session", "ENFORCEMENT_DISABLE_AFTER=2", "ALERT_MODE=every") // counts messages (WHERE §2)
	svc := auditService(t)
	s.Portal.AddLoginEvents(login(alice, 1010, "198.51.100.1", 3*time.Minute), login(otherAdmin, 1010, "198.51.100.2", 3*time.Minute))
	if res, err := svc.Handle(context.Background(), scheduled(time.Now())); err != nil || res.UsersDisabled != 0 {
		t.Fatalf("first run: %+v, %v", res, err)
	}
	s.Mail(context.Background(), 100*time.Millisecond)
	s.Portal.AddLoginEvents(login(alice, 1010, "198.51.100.3", 0), login(otherAdmin, 1010, "198.51.100.4", 0))
	res, err := svc.Handle(context.Background(), scheduled(time.Now().Add(time.Second)))
	if err != nil {
		t.Fatal(err)
	}
	if res.UsersDisabled != 1 {
		t.Errorf("result %+v; want one user disabled", res)
	}
	if u, _ := s.Portal.User(alice); u.Status != devportal.StatusTerminated {
		t.Errorf("alice status %d; want terminated", u.Status)
	}
	if u, _ := s.Portal.User(otherAdmin); u.Status != devportal.StatusActive {
		t.Errorf("the other admin's status %d; the portal should have refused", u.Status)
	}
	esc := map[string]string{}
	for _, e := range alerted(t, s) {
		r, _ := e["response"].(map[string]any)
		if x, ok := r["escalation"].(map[string]any); ok {
			esc[fmt.Sprint(e["userId"])] = fmt.Sprint(x["outcome"])
		}
	}
	if esc[alice] != "disabled" || esc[otherAdmin] != "refused" {
		t.Errorf("escalations %v; want alice disabled and the admin refused", esc)
	}
	email := s.Published()[len(s.Published())-1].Email
	if !strings.Contains(email, "User:  disabled") || !strings.Contains(email, "the portal refused to disable the user") {
		t.Errorf("email:\n%s", email)
	}
}

func TestEnforcementNeverInABackfill(t *testing.T) {
	s := deployEnforcing(t, "ENFORCEMENT_MODE=end-all-sessions")
	ids := s.Portal.AddLoginEvents(login(alice, 1010, "198.51.100.1", 10*time.Minute))
	from, to := time.Now().Add(-time.Hour).UTC(), time.Now().UTC()
	res, err := auditService(t).Handle(context.Background(), []byte(fmt.Sprintf(`{"from":%q,"to":%q}`, from.Format(time.RFC3339), to.Format(time.RFC3339))))
	if err != nil {
		t.Fatal(err)
	}
	if res.Responses[audit.OutcomeSkipped] != 1 || res.SessionEnded != 0 {
		t.Errorf("result %+v", res)
	}
	if got := activeSessions(t, s, ids); !got[0] {
		t.Error("a backfill ended a session")
	}
	if l := s.Portal.Logouts(); len(l) != 0 {
		t.Errorf("logout calls %v", l)
	}
	if got := responses(t, alerted(t, s)); got[ids[0]] != "skipped(backfill)" {
		t.Errorf("responses %v", got)
	}
}
