package e2e

import (
	"context"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"ipguard/internal/audit"
	"ipguard/internal/onboard"
	"ipguard/internal/testbed/devportal"
	"ipguard/internal/testbed/localdeploy"
)

// Login action ids of the portal (docspace-api.md §3.5).
const (
	loginSuccess = 1000
	loginFail    = 1002
)

// mailQuiet is how long the mailbox must stay empty to count as drained.
const mailQuiet = 300 * time.Millisecond

// deployWithJane is a deployed stack with Jane onboarded (see onboardJane).
func deployWithJane(t *testing.T) *localdeploy.Stack {
	t.Helper()
	s := deploy(t)
	onboardJane(t, s)
	return s
}

// onboardJane onboards Jane (203.0.113.10 and 198.51.100.0/28) through the
// real onboarding function.
func onboardJane(t testing.TB, s *localdeploy.Stack) {
	t.Helper()
	fn := startFunction(t, "onboard", s.FunctionEnv())
	var res onboard.Result
	fn.invoke(t, map[string]any{
		"id": janeID, "email": "jane.roe@example.com",
		"allowedIps": []string{"203.0.113.10", "198.51.100.0/28"},
	}).result(t, &res)
	if !res.Stored {
		t.Fatalf("onboarding Jane: %s, want stored", jsonText(res))
	}
}

func janeLogin(at time.Time, ip string) devportal.LoginEvent {
	return devportal.LoginEvent{Date: at, UserID: janeID, User: "Jane Roe", Login: "jane.roe@example.com",
		ActionID: loginSuccess, IP: ip, Browser: "Firefox 133", Platform: "Windows 10"}
}

func TestAuditAlertsOnceOnEveryProtocol(t *testing.T) {
	ctx := context.Background()
	s := deployWithJane(t)
	fn := startFunction(t, "audit", s.FunctionEnv())

	now := time.Now()
	ids := s.Portal.AddLoginEvents(
		janeLogin(now.Add(-3*time.Minute), "203.0.113.10"), // allowed: listed address
		janeLogin(now.Add(-2*time.Minute), "198.51.100.7"), // allowed: inside the block
		janeLogin(now.Add(-1*time.Minute), "192.0.2.77"),   // violation
	)
	violation := ids[2]

	var res audit.Result
	fn.invoke(t, scheduledEvent(now)).result(t, &res)
	wantCounts := map[string]int{audit.KindIPNotAllowed: 1, audit.KindUnknownUser: 0, audit.KindUnverifiableIP: 0, audit.KindFailedLoginBurst: 0, audit.KindPasswordGuessSucceeded: 0, audit.KindCoverageLost: 0}
	if !maps.Equal(res.Counts, wantCounts) || res.EventsScanned != 3 || res.AlertsPublished != 1 || !res.CheckpointAdvanced {
		t.Errorf("first run = %s\nwant counts %v, 3 events scanned, 1 alert published, checkpoint advanced", jsonText(res), wantCounts)
	}

	pubs := s.Published()
	if len(pubs) != 1 {
		t.Fatalf("published %d SNS messages, want 1: %+v", len(pubs), pubs)
	}
	p := pubs[0]
	if p.TopicARN != s.TopicARN {
		t.Errorf("published to %s, want %s", p.TopicARN, s.TopicARN)
	}
	if n := utf8.RuneCountInString(p.Subject); p.Subject == "" || n > audit.MaxSubjectRunes {
		t.Errorf("subject %q has %d runes, want 1..%d", p.Subject, n, audit.MaxSubjectRunes)
	}
	if p.SMS == "" || len(p.SMS) > audit.MaxSMSBytes || !printableASCII(p.SMS) {
		t.Errorf("SMS %q (%d bytes), want 1..%d bytes of printable ASCII", p.SMS, len(p.SMS), audit.MaxSMSBytes)
	}
	if !strings.Contains(p.Email, "192.0.2.77") || !strings.Contains(p.Email, "jane.roe@example.com") {
		t.Errorf("e-mail body does not name the address and the user:\n%s", p.Email)
	}

	mail, err := s.Mail(ctx, mailQuiet)
	if err != nil {
		t.Fatal(err)
	}
	if len(mail) != 1 {
		t.Fatalf("mailbox received %d messages, want 1: %+v", len(mail), mail)
	}
	if mail[0].Subject != p.Subject || mail[0].Message != p.Default {
		t.Errorf("mailbox got subject %q body %s\nwant the published subject %q and default body", mail[0].Subject, mail[0].Message, p.Subject)
	}
	if got := payloadEventIDs(t, mail[0].Message); !slices.Equal(got, []int64{violation}) {
		t.Errorf("alert JSON event ids = %v, want [%d]", got, violation)
	}

	var again audit.Result
	fn.invoke(t, scheduledEvent(time.Now())).result(t, &again)
	if again.AlertsPublished != 0 || again.AlreadyAlerted != 1 || again.Counts[audit.KindIPNotAllowed] != 0 {
		t.Errorf("second run = %s\nwant nothing published and 1 finding already alerted", jsonText(again))
	}
	if n := len(s.Published()); n != 1 {
		t.Errorf("after the second run %d SNS messages in all, want still 1", n)
	}
	if mail, err := s.Mail(ctx, mailQuiet); err != nil || len(mail) != 0 {
		t.Errorf("mailbox after the second run: %+v, %v; want nothing new", mail, err)
	}
}

func TestAuditWithPortalDownFailsAndNextRunAlertsTheMissedLogins(t *testing.T) {
	ctx := context.Background()
	s := deployWithJane(t)
	fn := startFunction(t, "audit", s.FunctionEnv("AUDIT_DEADLINE_MARGIN=1s"))

	var first audit.Result // an ordinary run with nothing to report sets the checkpoint
	fn.invoke(t, scheduledEvent(time.Now())).result(t, &first)
	cp, ok, err := s.Store.Checkpoint(ctx)
	if err != nil || !ok {
		t.Fatalf("checkpoint after the first run: ok %v, %v", ok, err)
	}

	missed := s.Portal.AddLoginEvents(janeLogin(time.Time{}, "192.0.2.78"))[0]
	s.Portal.InjectFault(devportal.Fault{Status: 503}) // every request, until cleared
	r := fn.invoke(t, scheduledEvent(time.Now()))
	if r.ErrorType != "DependencyUnavailable" || r.ErrorMessage == "" {
		t.Errorf("run with the portal down = %s\nwant errorType DependencyUnavailable", r.Raw)
	}
	if n := len(s.Published()); n != 0 {
		t.Errorf("%d SNS messages published while the portal was down, want none", n)
	}
	if got, ok, err := s.Store.Checkpoint(ctx); err != nil || !ok || !got.Equal(cp) {
		t.Errorf("checkpoint after the failed run = %v (ok %v, %v), want unchanged %v", got, ok, err, cp)
	}
	served503 := 0
	for _, req := range s.Portal.Requests() {
		if req.Status == 503 {
			served503++
		}
	}
	if served503 == 0 {
		t.Errorf("the portal answered no request with 503; the fault was not exercised")
	}

	s.Portal.ClearFaults()
	var res audit.Result
	fn.invoke(t, scheduledEvent(time.Now())).result(t, &res)
	if res.Counts[audit.KindIPNotAllowed] != 1 || res.AlertsPublished != 1 {
		t.Errorf("run after the portal came back = %s\nwant the missed login alerted in 1 message", jsonText(res))
	}
	pubs := s.Published()
	if len(pubs) != 1 {
		t.Fatalf("published %d SNS messages in all, want 1", len(pubs))
	}
	if got := payloadEventIDs(t, pubs[0].Default); !slices.Equal(got, []int64{missed}) {
		t.Errorf("alert JSON event ids = %v, want [%d]", got, missed)
	}
	if got, _, err := s.Store.Checkpoint(ctx); err != nil || got.Before(cp) {
		t.Errorf("checkpoint after the recovery run = %v, %v; want at or after %v", got, err, cp)
	}
}

// payloadEventIDs returns every event id the alert's JSON body names.
func payloadEventIDs(t *testing.T, body string) []int64 {
	t.Helper()
	var p audit.Payload
	if err := json.Unmarshal([]byte(body), &p); err != nil {
		t.Fatalf("alert body is not the JSON payload: %v\n%s", err, body)
	}
	var ids []int64
	for _, f := range p.Events {
		if f.EventIDs != nil {
			ids = append(ids, f.EventIDs...)
		} else {
			ids = append(ids, f.EventID)
		}
	}
	return ids
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
