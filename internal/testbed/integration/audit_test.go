package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"ipguard/internal/audit"
	"ipguard/internal/config"
	"ipguard/internal/ipguard"
	"ipguard/internal/status"
	"ipguard/internal/testbed/devportal"
	"ipguard/internal/testbed/localdeploy"
	"ipguard/internal/wiring"
)

const (
	alice = "6b2f7a1e-3c44-4a5b-9e0f-1d2c3b4a5f60"
	bob   = "0c9d8e7f-6a5b-4c3d-8e2f-1a0b9c8d7e6f"
	carol = "11111111-2222-4333-8444-555555555555" // never onboarded
	guest = "712d9ec3-5d2b-4b13-824f-71f00191dcca"
)

// onboardAliceAndBob stores two users' allowlists through the onboarding service.
func onboardAliceAndBob(t *testing.T) {
	t.Helper()
	svc := onboardService(t)
	for _, p := range []string{
		`{"id":"` + alice + `","email":"alice@example.com","allowedIps":["203.0.113.10","10.20.0.0/24","198.51.100.0-198.51.100.255","2001:db8::/32"]}`,
		`{"id":"` + bob + `","email":"bob@example.com","allowedIps":["192.0.2.7"]}`,
	} {
		if _, err := svc.Handle(context.Background(), []byte(p)); err != nil {
			t.Fatal(err)
		}
	}
}

func login(user string, action int, ip string, ago time.Duration) devportal.LoginEvent {
	return devportal.LoginEvent{Date: time.Now().Add(-ago), UserID: user, User: "name of " + user[:4], Login: user[:4] + "@example.com", ActionID: action, IP: ip,
		Browser: "Firefox 126.0", Platform: "Linux", Page: "https://portal.example.com/login"}
}

func scheduled(at time.Time) []byte {
	return []byte(fmt.Sprintf(`{"version":"0","id":"x","detail-type":"Scheduled Event","source":"aws.events","time":%q,"detail":{}}`, at.UTC().Format(time.RFC3339)))
}

// alerted returns the events of every alert that reached the mailbox.
func alerted(t *testing.T, s *localdeploy.Stack) []map[string]any {
	t.Helper()
	mail, err := s.Mail(context.Background(), 300*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for _, m := range mail {
		var p struct {
			Portal, From, To string
			Events           []map[string]any
		}
		if err := json.Unmarshal([]byte(m.Message), &p); err != nil {
			t.Fatalf("mailbox body is not the JSON payload: %v\n%s", err, m.Message)
		}
		if p.Portal != s.PortalURL || p.From == "" || p.To == "" {
			t.Errorf("payload header %+v", p)
		}
		out = append(out, p.Events...)
	}
	return out
}

func summary(events []map[string]any) []string {
	var out []string
	for _, e := range events {
		switch {
		case e["eventIds"] != nil:
			out = append(out, fmt.Sprintf("%s %v x%v", e["kind"], e["ip"], e["count"]))
		default:
			out = append(out, fmt.Sprintf("%s %v %v", e["kind"], e["ip"], e["userId"]))
		}
	}
	sort.Strings(out)
	return out
}

// TestAuditWindowOfManyPages puts 270 events over three pages and expects
// exactly the violations among them.
func TestAuditWindowOfManyPages(t *testing.T) {
	s := deploy(t, "UNKNOWN_USER_POLICY=alert") // the unknown user's login a message too (the digest is #21's default)
	s.Portal.SetTimeZone(3 * time.Hour)
	onboardAliceAndBob(t)
	var evs []devportal.LoginEvent
	for i := 0; i < 250; i++ { // allowed: exact, CIDR, range, mapped IPv4
		ip := []string{"203.0.113.10", fmt.Sprintf("10.20.0.%d", i%256), fmt.Sprintf("198.51.100.%d", i%256), "192.0.2.7"}[i%4]
		user := alice
		if i%4 == 3 {
			user = bob
		}
		evs = append(evs, login(user, []int{1010, 1000, 1029, 1024}[i%4], ip, time.Duration(600-i)*time.Second))
	}
	evs = append(evs,
		login(alice, 1010, "192.0.2.99", 9*time.Minute),   // violation
		login(bob, 1000, "203.0.113.10", 8*time.Minute),   // alice's address, not bob's
		login(carol, 1010, "203.0.113.50", 7*time.Minute), // unknown user
		login(alice, 1010, "2001:db8::5", 6*time.Minute),  // truncated by the portal to "2001"
		login(alice, 1006, "8.8.8.8", 5*time.Minute),      // logout: ignored
		login(bob, 1029, "10.99.0.1", 30*time.Minute),     // before the window: ignored
	)
	for i := 0; i < 6; i++ {
		evs = append(evs, login(guest, 1013, "198.18.0.66", time.Duration(4*60-i)*time.Second)) // burst
	}
	for i := 0; i < 5; i++ {
		e := login(guest, 1013, "192.0.2.7", time.Duration(3*60-i)*time.Second) // bob's own address, against bob: no burst
		e.Login = "bob@example.com"
		evs = append(evs, e)
	}
	evs = append(evs, login(guest, 1005, "198.18.0.67", 2*time.Minute)) // a single failure
	s.Portal.AddLoginEvents(evs...)

	res, err := auditService(t).Handle(context.Background(), scheduled(time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	if res.EventsScanned != 250+5+12 || res.AlertsPublished != 2 { // one message per severity: high, medium
		t.Errorf("result %+v", res)
	}
	wantCounts := map[string]int{audit.KindIPNotAllowed: 2, audit.KindUnknownUser: 1, audit.KindUnverifiableIP: 1, audit.KindFailedLoginBurst: 1}
	for k, n := range wantCounts {
		if res.Counts[k] != n {
			t.Errorf("counts[%s] = %d, want %d (%v)", k, res.Counts[k], n, res.Counts)
		}
	}
	got := summary(alerted(t, s))
	want := []string{
		"failed_login_burst 198.18.0.66 x6",
		"ip_not_allowed 192.0.2.99 " + alice,
		"ip_not_allowed 203.0.113.10 " + bob,
		"unknown_user 203.0.113.50 " + carol,
		"unverifiable_ip 2001 " + alice,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("alerted:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	pub := s.Published()
	if len(pub) != 2 {
		t.Fatalf("%d publishes", len(pub))
	}
	p := pub[0] // the high one comes first
	if utf8.RuneCountInString(p.Subject) > 100 || len(p.SMS) > 140 || !strings.Contains(p.Email, "192.0.2.99") || !strings.Contains(p.Email, "alice@example.com") {
		t.Errorf("protocol bodies: subject %q\nsms %q\nemail:\n%s", p.Subject, p.SMS, p.Email)
	}
}

func TestAuditAlertsEachLoginOnce(t *testing.T) {
	s := deploy(t)
	onboardAliceAndBob(t)
	s.Portal.AddLoginEvents(login(alice, 1010, "192.0.2.99", 2*time.Minute))
	svc := auditService(t)
	auditRun(t, svc, time.Now())
	if n := len(alerted(t, s)); n != 1 {
		t.Fatalf("first run alerted %d", n)
	}
	res, err := svc.Handle(context.Background(), scheduled(time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(alerted(t, s)); n != 0 || res.AlertsPublished != 0 || res.AlreadyAlerted != 1 {
		t.Fatalf("immediate second run alerted %d: %+v", n, res)
	}
	ids := s.Portal.AddLoginEvents(login(bob, 1010, "192.0.2.100", 0))
	auditRun(t, svc, time.Now().Add(time.Second))
	evs := alerted(t, s)
	if len(evs) != 1 || evs[0]["eventId"] != float64(ids[0]) {
		t.Fatalf("third run alerted %v, want only event %d", summary(evs), ids[0])
	}
}

func TestAuditRecoversFromTransientPortalErrors(t *testing.T) {
	s := deploy(t)
	onboardAliceAndBob(t)
	s.Portal.AddLoginEvents(login(alice, 1010, "192.0.2.99", 2*time.Minute))
	s.Portal.InjectFault(devportal.Fault{Status: 503, RetryAfter: "0", Times: 2})
	res, err := auditService(t).Handle(context.Background(), scheduled(time.Now()))
	if err != nil || res.AlertsPublished != 1 {
		t.Fatalf("res %+v, err %v", res, err)
	}
}

func TestAuditPortalDownForAWholeRun(t *testing.T) {
	s := deploy(t)
	onboardAliceAndBob(t)
	svc := auditService(t)
	auditRun(t, svc, time.Now().Add(-10*time.Minute))
	cp, _, _ := s.Store.Checkpoint(context.Background())
	s.Portal.AddLoginEvents(login(alice, 1010, "192.0.2.99", 2*time.Minute))
	s.Portal.InjectFault(devportal.Fault{Status: 503, RetryAfter: "0"})
	_, err := svc.Handle(context.Background(), scheduled(time.Now()))
	if ipguard.ErrorCode(err) != ipguard.EUnavailable {
		t.Fatalf("err = %v", err)
	}
	if after, _, _ := s.Store.Checkpoint(context.Background()); !after.Equal(cp) {
		t.Errorf("checkpoint moved from %v to %v", cp, after)
	}
	if n := len(s.Published()); n != 0 {
		t.Errorf("%d published", n)
	}
	s.Portal.ClearFaults()
	auditRun(t, svc, time.Now())
	if evs := alerted(t, s); len(evs) != 1 {
		t.Fatalf("missed event alerted %d times", len(evs))
	}
	auditRun(t, svc, time.Now())
	if evs := alerted(t, s); len(evs) != 0 {
		t.Fatalf("alerted again: %v", summary(evs))
	}
}

func TestAuditSNSFailureRecordsNothing(t *testing.T) {
	s := deploy(t)
	onboardAliceAndBob(t)
	s.Portal.AddLoginEvents(login(alice, 1010, "192.0.2.99", 2*time.Minute))
	svc := auditService(t)
	s.FailPublish(true)
	_, err := svc.Handle(context.Background(), scheduled(time.Now()))
	if ipguard.ErrorCode(err) != ipguard.EUnavailable {
		t.Fatalf("err = %v", err)
	}
	if alerted, _ := s.Store.Alerted(context.Background(), []int64{1}, time.Now()); len(alerted) != 0 {
		t.Fatal("event recorded as alerted although SNS failed")
	}
	s.FailPublish(false)
	if evs := alerted(t, s); len(evs) != 0 {
		t.Fatal("alert delivered although SNS failed")
	}
	res, err := svc.Handle(context.Background(), scheduled(time.Now()))
	if err != nil || res.AlertsPublished != 1 {
		t.Fatalf("next run: %+v %v", res, err)
	}
	if evs := alerted(t, s); len(evs) != 1 {
		t.Fatalf("alerted %d", len(evs))
	}
}

func TestAuditConcurrentRunsAlertOnce(t *testing.T) {
	s := deploy(t, "ALERT_MODE=every") // counts messages (WHERE §2)
	onboardAliceAndBob(t)
	for i := 0; i < 30; i++ {
		s.Portal.AddLoginEvents(login(alice, 1010, fmt.Sprintf("192.0.2.%d", 100+i), time.Duration(i+1)*time.Second))
	}
	const runs = 4
	svcs := make([]handler[audit.Result], runs)
	for i := range svcs {
		svcs[i] = auditService(t)
	}
	now := time.Now()
	var wg sync.WaitGroup
	results := make([]audit.Result, runs)
	errs := make([]error, runs)
	for i := range svcs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = svcs[i].Handle(context.Background(), scheduled(now))
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
	}
	// Whoever lost the lease race exits cleanly; a late starter finds the ids recorded.
	auditRun(t, auditService(t), time.Now())
	seen := map[float64]int{}
	for _, e := range alerted(t, s) {
		seen[e["eventId"].(float64)]++
	}
	if len(seen) != 30 {
		t.Errorf("%d distinct events alerted, want 30", len(seen))
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("event %v alerted %d times", id, n)
		}
	}
}

// A payload rejected as bad input changes nothing stored (issue #22 §1): the
// audit did not run, so the status's last run stays the run before it.
func TestAuditRejectedPayloadLeavesTheLastRun(t *testing.T) {
	s := deploy(t)
	svc := auditService(t)
	auditRun(t, svc, time.Now())
	var before, after status.LastRun
	if ok, err := s.Store.LastRun(context.Background(), &before); !ok || err != nil || before.Outcome != "succeeded" {
		t.Fatalf("last run = %+v (%v, %v), want the run just made", before, ok, err)
	}
	cp, _, _ := s.Store.Checkpoint(context.Background())
	for _, bad := range []string{`{"from":"yesterday","to":"2026-11-25T00:00:00Z"}`, `[1]`, `{"from":"2026-11-25T00:00:00Z"}`} {
		if _, err := svc.Handle(context.Background(), []byte(bad)); ipguard.ErrorCode(err) != ipguard.EInvalid {
			t.Fatalf("%s: %v, want InvalidInput", bad, err)
		}
	}
	if ok, err := s.Store.LastRun(context.Background(), &after); !ok || err != nil || after != before {
		t.Errorf("last run after rejected payloads = %+v, want it unchanged: %+v", after, before)
	}
	if now, _, _ := s.Store.Checkpoint(context.Background()); !now.Equal(cp) {
		t.Errorf("checkpoint moved from %v to %v", cp, now)
	}
}

// Attack review (deploy and health signals): with a cron() AuditSchedule,
// AuditRunsMissingAlarm counts the samples of LagSeconds as runs of the
// schedule. Only a scheduled run may declare it: a status call (the first
// step of every runbook, or a monitoring script asking every few minutes)
// or a backfill by hand would otherwise count as a run and clear the alarm
// while the schedule stays stopped. They keep the lag as a field of their
// line.
func TestOnlyAScheduledRunCountsAsARunForTheHeartbeats(t *testing.T) {
	fn, lines := auditAfterAScheduledRun(t)
	ctx := context.Background()
	declares := func(what string) (metric, field bool) {
		t.Helper()
		defer lines.Reset()
		return lagOfLine(t, what, lines.String())
	}
	if metric, _ := declares("scheduled run"); !metric {
		t.Fatal("a scheduled run does not declare LagSeconds: the heartbeats would fire for ever")
	}
	backfill := fmt.Sprintf(`{"from":%q,"to":%q}`, time.Now().Add(-2*time.Hour).UTC().Format(time.RFC3339), time.Now().Add(-time.Hour).UTC().Format(time.RFC3339))
	for _, p := range []string{`{"action": "status"}`, backfill} {
		if _, err := fn(ctx, []byte(p)); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if metric, field := declares(p); metric || !field {
			t.Errorf("%s: LagSeconds declared as a metric %v, a field %v; want a field only (not a run of the schedule)", p, metric, field)
		}
	}
}

// Attack review (atkfix3): "Only runs of the schedule count" (README,
// AuditRunsMissingAlarm) holds for a payload refused as InvalidInput too.
// A mistyped status ({"action": "stauts"} from a monitoring script asking
// every few minutes) or a mistyped backfill goes to the run handler, which
// refuses it before it knows it is a backfill: its line must keep the lag of
// the stored checkpoint as a field, or each typo counts as a run and clears
// the alarm while the schedule stays stopped.
func TestAPayloadRefusedAsInvalidInputIsNoRunForTheHeartbeats(t *testing.T) {
	fn, lines := auditAfterAScheduledRun(t) // a checkpoint, so every later line knows a lag
	ctx := context.Background()
	for _, p := range []string{`{"action": "stauts"}`, `{"from":"yesterday","to":"2026-11-25T00:00:00Z"}`, `[1]`} {
		lines.Reset()
		if _, err := fn(ctx, []byte(p)); ipguard.ErrorCode(err) != ipguard.EInvalid {
			t.Fatalf("%s: %v, want InvalidInput", p, err)
		}
		if metric, field := lagOfLine(t, p, lines.String()); metric || !field {
			t.Errorf("%s: refused, yet LagSeconds declared as a metric %v (a run of the schedule for AuditRunsMissingAlarm), a field %v; want a field only", p, metric, field)
		}
	}
}

// lagOfLine is whether text, one JSON metrics line, declares LagSeconds as
// a metric, and whether it carries it at all.
func lagOfLine(t *testing.T, what, text string) (metric, field bool) {
	t.Helper()
	var line struct {
		AWS struct {
			CloudWatchMetrics []struct{ Metrics []struct{ Name string } }
		} `json:"_aws"`
		Lag *float64 `json:"LagSeconds"`
	}
	text = strings.TrimSpace(text)
	if strings.Count(text, "\n") != 0 || json.Unmarshal([]byte(text), &line) != nil {
		t.Fatalf("%s: want one JSON metrics line, got %q", what, text)
	}
	for _, d := range line.AWS.CloudWatchMetrics {
		for _, m := range d.Metrics {
			metric = metric || m.Name == wiring.MetricLagSeconds
		}
	}
	return metric, line.Lag != nil
}

// auditAfterAScheduledRun deploys, makes the AuditFunction handler writing
// its metrics lines to lines, and runs it once as the schedule does (its
// line is in lines).
func auditAfterAScheduledRun(t *testing.T) (fn func(context.Context, []byte) (any, error), lines *bytes.Buffer) {
	t.Helper()
	deploy(t)
	d := loadQuiet(t, config.Audit)
	lines = &bytes.Buffer{}
	d.MetricsOut = lines
	fn = d.AuditFunction()
	if _, err := fn(context.Background(), scheduled(time.Now())); err != nil {
		t.Fatalf("scheduled run: %v", err)
	}
	return fn, lines
}
