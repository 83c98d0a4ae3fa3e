package integration

import (
	"context"
	"strings"
	"testing"
	"time"

	"ipguard/internal/audit"
	"ipguard/internal/testbed/devportal"
	"ipguard/internal/testbed/localaws"
	"ipguard/internal/testbed/localdeploy"
)

// alertedOnce collects, over the mailbox, how many alerts named each event id.
func alertedCounts(t *testing.T, s *localdeploy.Stack, into map[int64]int) {
	t.Helper()
	for _, e := range alerted(t, s) {
		if id, ok := e["eventId"].(float64); ok {
			into[int64(id)]++
		}
	}
}

// violationsAt adds n logins of alice from an address outside her
// allowlist, perSecond of them in each second, the newest `newest` ago.
func violationsAt(s *localdeploy.Stack, n, perSecond int, newest time.Duration) []int64 {
	evs := make([]devportal.LoginEvent, n)
	for i := range evs {
		evs[i] = login(alice, 1010, "192.0.2.99", newest+time.Duration(i/perSecond)*time.Second)
	}
	return s.Portal.AddLoginEvents(evs...)
}

func checkOnce(t *testing.T, ids []int64, got map[int64]int) {
	t.Helper()
	for _, id := range ids {
		if got[id] != 1 {
			t.Fatalf("event %d alerted %d times, want exactly once", id, got[id])
		}
	}
}

// A backlog larger than one run clears over several runs against the dev
// portal and DynamoDB: each run stops at its deadline margin and keeps its
// pieces; every violation is alerted exactly once; the saved cursor never
// claims a row that was not alerted.
func TestAuditBacklogClearsOverSeveralRuns(t *testing.T) {
	localaws.Exclusive(t, "heavy-tests") // its 3.2 s runs need the CPU: not alongside the onboarding load test
	// ALERT_MODE=every: it counts messages (WHERE §2).
	s := deploy(t, "AUDIT_LOOKBACK=6h", "AUDIT_DEADLINE_MARGIN=1500ms", "AUDIT_CONCURRENCY=2", "PORTAL_REQUESTS_PER_MINUTE=1500", "ALERT_MODE=every")
	onboardAliceAndBob(t)
	s.Portal.SetTieShuffle(true)
	base := time.Now()
	ids := violationsAt(s, 8000, 2, 10*time.Minute)
	s.Portal.InjectFault(devportal.Fault{Path: "/security/audit/login/filter", Delay: 40 * time.Millisecond})
	svc := auditService(t)
	got := map[int64]int{}
	runs, incomplete, skipped := 0, 0, 0
	for ; runs < 30+skipped; runs++ {
		ctx, cancel := context.WithTimeout(context.Background(), 4500*time.Millisecond)
		res, err := svc.Handle(ctx, scheduled(time.Now()))
		cancel()
		if err != nil {
			t.Fatalf("run %d: %v", runs+1, err)
		}
		alertedCounts(t, s, got)
		t.Logf("run %d: complete %v, scanned %d, alerts %d, runsWithoutProgress %d, pieceEvents %d, resume %s",
			runs+1, res.Complete, res.EventsScanned, res.AlertsPublished, res.RunsWithoutProgress, res.PieceEvents, res.ResumeBelow)
		if p, err := s.Store.Progress(context.Background()); err != nil {
			t.Fatal(err)
		} else if c := p.Cursor; c != nil {
			for i, id := range ids {
				date := base.Add(-10*time.Minute - time.Duration(i/2)*time.Second)
				if date.Before(c.Below.Add(-2 * time.Second)) {
					break // older rows: not claimed
				}
				if date.After(c.Below.Add(2*time.Second)) && got[id] == 0 {
					t.Fatalf("run %d: cursor below %s claims event %d, which was not alerted", runs+1, c.Below, id)
				}
			}
		}
		if res.Skipped {
			// A run that overran its deadline could not release its lease,
			// which lives until the deadline plus a grace: this one did
			// nothing ("complete" is false, "skipped" true); run again once it expired.
			if skipped++; skipped > 30 {
				t.Fatalf("run %d: %d runs skipped for a held lease", runs+1, skipped)
			}
			time.Sleep(time.Second)
			continue
		}
		if !res.Complete {
			incomplete++
			continue
		}
		break
	}
	if incomplete == 0 {
		t.Fatalf("the backlog cleared in one run; the test wants several")
	}
	checkOnce(t, ids, got)
}

// 150 rows of one second across a page boundary, shuffled on every request:
// every row is evaluated once, and the warning names the second.
func TestAuditSecondLargerThanAPageShuffled(t *testing.T) {
	s := deploy(t, "ALERT_MODE=every") // counts messages (WHERE §2)
	onboardAliceAndBob(t)
	s.Portal.SetTieShuffle(true)
	var ids []int64
	ids = append(ids, violationsAt(s, 60, 1, time.Minute)...)
	ids = append(ids, violationsAt(s, 150, 150, 3*time.Minute)...)
	ids = append(ids, violationsAt(s, 120, 3, 4*time.Minute)...)
	res := auditAlertingEachOnce(t, s, ids, time.Now())
	if res.EventsScanned != len(ids) || !strings.Contains(strings.Join(res.Warnings, "\n"), "150 login events share the second") {
		t.Errorf("result %+v", res)
	}
}

// Seconds smaller than a page but cut by every boundary, shuffled: every
// row once, no warning.
func TestAuditShuffledTiesAtEveryBoundary(t *testing.T) {
	s := deploy(t, "ALERT_MODE=every") // counts messages (WHERE §2)
	onboardAliceAndBob(t)
	s.Portal.SetTieShuffle(true)
	ids := violationsAt(s, 600, 23, time.Minute)
	res := auditAlertingEachOnce(t, s, ids, time.Now())
	if strings.Contains(strings.Join(res.Warnings, "\n"), "share the second") {
		t.Errorf("warnings %v", res.Warnings)
	}
}

// 150 events inserted between page requests (a storm): no row of the window
// is missed and the checkpoint is the trigger's time.
func TestAuditStormBetweenPageRequests(t *testing.T) {
	s := deploy(t, "ALERT_MODE=every") // counts messages (WHERE §2)
	onboardAliceAndBob(t)
	s.Portal.SetTieShuffle(true)
	ids := violationsAt(s, 700, 1, time.Minute)
	s.Portal.SetStorm(150, 4)
	at := time.Now().Add(-time.Second)
	res := auditAlertingEachOnce(t, s, ids, at)
	if res.PagesReread == 0 {
		t.Errorf("the storm caused no re-read: %+v", res)
	}
	p, err := s.Store.Progress(context.Background())
	if err != nil || p.Cursor != nil || !p.Until.Equal(at.UTC().Truncate(time.Second)) {
		t.Errorf("progress %+v (%v), want until %s", p, err, at.UTC().Truncate(time.Second))
	}
}

// The portal's clock (HTTP Date) more than half the overlap off ours is a
// warning in the result; a small skew is only reported.
func TestAuditWarnsOnPortalClockSkew(t *testing.T) {
	s := deploy(t)
	onboardAliceAndBob(t)
	s.Portal.SetClockSkew(-4 * time.Minute)
	res, err := auditService(t).Handle(context.Background(), scheduled(time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(res.Warnings, "\n"), "the portal's clock is -4m") || res.WarningCount == 0 {
		t.Errorf("result %+v", res)
	}
	s.Portal.SetClockSkew(0)
	res, err = auditService(t).Handle(context.Background(), scheduled(time.Now()))
	if err != nil || strings.Contains(strings.Join(res.Warnings, "\n"), "clock") || res.PortalClockSkew == "" {
		t.Errorf("no skew: %+v, %v", res, err)
	}
}

// Issue 11.7, measured against moto: SNS accepts a message and its answer is
// lost. The SDK does not resend it (one delivery in that run); the run fails
// without recording it; the next run sends it again. So the finding reaches
// subscribers exactly twice, never more, and later runs send nothing.
func TestAuditLostPublishAnswerIsOneDuplicate(t *testing.T) {
	s := deploy(t)
	onboardAliceAndBob(t)
	ids := s.Portal.AddLoginEvents(login(alice, 1010, "192.0.2.99", 2*time.Minute))
	svc := auditService(t)
	s.DropPublishAnswers(1)
	if _, err := svc.Handle(context.Background(), scheduled(time.Now())); err == nil {
		t.Fatal("a run whose publish answer was lost succeeded")
	}
	got := map[int64]int{}
	alertedCounts(t, s, got)
	if got[ids[0]] != 1 {
		t.Fatalf("the run with the lost answer delivered the alert %d times, want once (no SDK resend)", got[ids[0]])
	}
	for i := 0; i < 2; i++ {
		auditRun(t, svc, time.Now())
	}
	alertedCounts(t, s, got)
	if got[ids[0]] != 2 {
		t.Fatalf("delivered %d times in all, want 2 (the lost answer's message and one resend)", got[ids[0]])
	}
}

// 30,000 failed logins from one address and one real violation, against
// moto and the dev portal: the run succeeds, the violation is alerted, the
// burst is told once and its alert fits SNS and is remembered in one item, and the next run
// sends nothing twice.
func TestAuditHugeBurstAndAViolation(t *testing.T) {
	s := deploy(t, "AUDIT_LOOKBACK=1h", "PORTAL_REQUESTS_PER_MINUTE=1500")
	onboardAliceAndBob(t)
	evs := make([]devportal.LoginEvent, 30_000)
	for i := range evs {
		evs[i] = login(guest, 1013, "198.18.0.66", time.Duration(60+i%1800)*time.Second)
		evs[i].Login = "alice@example.com"
	}
	s.Portal.AddLoginEvents(evs...)
	violation := s.Portal.AddLoginEvents(login(alice, 1010, "192.0.2.99", 20*time.Minute))[0]
	svc := auditService(t)
	res, err := svc.Handle(context.Background(), scheduled(time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	if res.EventsScanned != 30_001 || res.Counts["failed_login_burst"] == 0 || res.Counts["password_guess_succeeded"]+res.Counts["ip_not_allowed"] != 1 {
		t.Fatalf("result %+v", res)
	}
	got := map[int64]int{}
	total, bursts := 0, 0
	for _, e := range alerted(t, s) {
		if id, ok := e["eventId"].(float64); ok {
			got[int64(id)]++
		}
		if n, ok := e["count"].(float64); ok {
			total += int(n)
			bursts++
			if ids, _ := e["eventIds"].([]any); len(ids) > 50 || e["capped"] != true {
				t.Errorf("burst lists %d ids, capped %v", len(ids), e["capped"])
			}
		}
	}
	// The burst is told once, with the count of the piece that found it;
	// its failed logins read in later pieces are counted as already
	// alerted (a burst that goes on within SPRAY_WINDOW is one burst).
	if got[violation] != 1 || bursts != 1 || total+res.AlreadyAlerted < 30_000 {
		t.Fatalf("violation alerted %d times; %d burst findings cover %d failed logins, %d already alerted; want one burst and every failed login counted",
			got[violation], bursts, total, res.AlreadyAlerted)
	}
	for _, p := range s.Published() {
		if n := len(p.Default) + len(p.Email) + len(p.SMS); n > 256*1024 {
			t.Errorf("a message of about %d bytes", n)
		}
	}
	auditRun(t, svc, time.Now())
	if again := alerted(t, s); len(again) != 0 {
		t.Errorf("the next run alerted %d findings again", len(again))
	}
}

// auditAlertingEachOnce runs the audit scheduled at at and checks that it
// alerted every login of ids exactly once; it returns the run's result.
func auditAlertingEachOnce(t *testing.T, s *localdeploy.Stack, ids []int64, at time.Time) audit.Result {
	t.Helper()
	res, err := auditService(t).Handle(context.Background(), scheduled(at))
	if err != nil {
		t.Fatal(err)
	}
	got := map[int64]int{}
	alertedCounts(t, s, got)
	checkOnce(t, ids, got)
	return res
}
