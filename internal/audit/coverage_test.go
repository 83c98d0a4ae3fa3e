package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"ipguard/internal/ipguard"
	"slices"
	"strings"
	"testing"
	"time"
)

// Issue 16 §3: lost coverage is a finding of its own (kind coverage_lost,
// severity high, a message of its own) sent once per episode: consecutive
// runs that meet the same cause send one message; the cause coming back
// after a quiet stretch is a new episode.
func TestLostCoverageIsAnAlertOncePerEpisode(t *testing.T) {
	now := time.Now()
	for _, tt := range []struct {
		name  string
		cause string
		setup func(s *Service, src *fakeSource)
	}{
		{"plan fallback", CausePlanFallback, func(s *Service, src *fakeSource) { src.fallback = true }},
		{"clock skew past the overlap", CauseClockSkew, func(s *Service, src *fakeSource) {
			s.Clock = fixedClock{date: now.Add(4 * time.Minute), at: now}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var evs []ipguard.LoginEvent
			for i := int64(1); i <= 30; i++ {
				evs = append(evs, at(i, "alice", 1010, "203.0.113.10", time.Duration(i)*time.Second))
			}
			s, src, _, pub := newAudit(evs...)
			tt.setup(s, src)
			var sent []int
			// three runs five minutes apart (one episode), then one three hours later
			for _, d := range []time.Duration{15 * time.Minute, 20 * time.Minute, 25 * time.Minute, 3 * time.Hour} {
				before := len(lostAlerts(t, pub.sent))
				s.Now = func() time.Time { return t0.Add(d + time.Minute) }
				res, err := s.Run(context.Background(), trig(d))
				if err != nil {
					t.Fatal(err)
				}
				n := len(lostAlerts(t, pub.sent)) - before
				if res.CoverageLost != n || res.Counts[KindCoverageLost] != n {
					t.Errorf("run at +%s: sent %d, result coverageLost %d counts %d", d, n, res.CoverageLost, res.Counts[KindCoverageLost])
				}
				sent = append(sent, n)
			}
			if want := []int{1, 0, 0, 1}; !slices.Equal(sent, want) {
				t.Errorf("coverage_lost messages per run %v, want %v", sent, want)
			}
			for _, f := range lostAlerts(t, pub.sent) {
				if f.Cause != tt.cause || f.Reason == "" || f.FirstAt == "" || f.Date == "" {
					t.Errorf("finding %+v", f)
				}
			}
			for _, a := range pub.sent {
				if strings.Contains(a.Default, KindCoverageLost) && (a.Severity != SeverityHigh || !strings.Contains(a.Subject, "lost coverage")) {
					t.Errorf("coverage message: severity %s, subject %q", a.Severity, a.Subject)
				}
			}
		})
	}
}

// When the store could not remember some addresses' failed logins (a flood
// from more addresses than its bounded items keep: the fewest failures gave
// way), a later run's password-guess correlation has lost them, and a
// guesser can hide that way: the run tells it as lost coverage (cause
// failures_forgotten), once per episode, never silently (attack review of
// the audit path; the DynamoDB store's count is held by
// TestRecordFailuresSaysHowManyAddressesGaveWay).
func TestForgottenFailedLoginsAreLostCoverage(t *testing.T) {
	s, _, st, pub := newAudit(guessesFromFortyAddresses()...)
	st.ForgetFailures = 2345
	var now time.Time
	s.Now = func() time.Time { return now }
	var lost []Finding
	for _, d := range []time.Duration{15 * time.Minute, 20 * time.Minute} {
		now = t0.Add(d + 30*time.Second)
		res, err := s.Run(context.Background(), trig(d))
		if err != nil {
			t.Fatal(err)
		}
		if d == 15*time.Minute && !strings.Contains(strings.Join(res.Warnings, "\n"), "failed logins of 2345 addresses") {
			t.Errorf("warnings %q; want the forgotten addresses named", res.Warnings)
		}
	}
	lost = lostAlerts(t, pub.sent)
	if len(lost) != 1 || lost[0].Cause != CauseFailuresForgotten || !strings.Contains(lost[0].Reason, "password_guess_succeeded") {
		t.Errorf("lost coverage %+v; want one failures_forgotten alert for the episode", lost)
	}
}

// guessesFromFortyAddresses are failed logins (as a guest, against no
// stored account) from 40 addresses, one a second.
func guessesFromFortyAddresses() []ipguard.LoginEvent {
	var evs []ipguard.LoginEvent
	for i := int64(1); i <= 40; i++ {
		e := at(i, guest, 1013, fmt.Sprintf("172.16.0.%d", i), time.Duration(i)*time.Second)
		e.Login = "nobody@example.com"
		evs = append(evs, e)
	}
	return evs
}

// forgottenAndUnpublished is an audit whose run at +15m forgot the failed
// logins of 2345 addresses and could not publish that lost coverage (the
// run failed); now moves its clock.
func forgottenAndUnpublished(t *testing.T) (*Service, *fakeSource, *fakeStore, *coverageFailingPublisher, *time.Time) {
	t.Helper()
	s, src, st, _ := newAudit(guessesFromFortyAddresses()...)
	pub := &coverageFailingPublisher{failing: true}
	s.Publisher = pub
	st.ForgetFailures = 2345
	var now time.Time
	s.Now = func() time.Time { return now }
	now = t0.Add(15*time.Minute + 30*time.Second)
	if _, err := s.Run(context.Background(), trig(15*time.Minute)); err == nil {
		t.Fatal("the run whose lost-coverage alert could not be published succeeded")
	}
	return s, src, st, pub, &now
}

// coverageFailingPublisher refuses the lost-coverage messages while failing
// (SNS throttled just then) and sends every other message.
type coverageFailingPublisher struct {
	fakePublisher
	failing bool
}

func (c *coverageFailingPublisher) Publish(ctx context.Context, a ipguard.Alert) (string, error) {
	if c.failing && strings.Contains(a.Default, KindCoverageLost) {
		return "", &ipguard.Error{Code: ipguard.EUnavailable, Message: "sns: throttled"}
	}
	return c.fakePublisher.Publish(ctx, a)
}

// A lost-coverage alert whose publish fails is not lost: its cause may be
// met only once (the failed logins forgotten in this window, unreadable
// rows the cursor has passed), and the window's progress is saved before
// the run's lost coverage is sent, so the next run would never meet it
// again. It is recorded as due with the progress and sent by the next run.
// Before, the run failed with an error claiming "the cursor was not moved
// past them, so the next run sends them", and no run ever sent it.
func TestALostCoverageAlertWhosePublishFailsIsSentByTheNextRun(t *testing.T) {
	s, _, st, pub, now := forgottenAndUnpublished(t)
	// The flood is over and SNS answers again: the cause is not met again.
	st.ForgetFailures, pub.failing = 0, false
	for _, d := range []time.Duration{20 * time.Minute, 25 * time.Minute} {
		*now = t0.Add(d + 30*time.Second)
		if _, err := s.Run(context.Background(), trig(d)); err != nil {
			t.Fatalf("run at +%s: %v", d, err)
		}
	}
	lost := lostAlerts(t, pub.sent)
	if len(lost) != 1 || lost[0].Cause != CauseFailuresForgotten {
		t.Fatalf("lost coverage sent after the failed publish: %+v; want the failures_forgotten alert once", lost)
	}
}

// The lost coverage recorded as due is the run's whole lost coverage at
// each save, not the first occurrence of its cause: three unreadable rows
// read in the window's first piece, whose cursor passes them, and a run
// that fails in its second piece. The next run never meets those rows
// again (they are above the cursor); what it sends is what was recorded.
// Before, the due was written only when a cause was first met (lose's
// merge did not refresh it), so the alert said 1 login event, not 3.
func TestTheLostCoverageRecordedAsDueCountsEveryOccurrence(t *testing.T) {
	evs := allowedLogins(250)
	for i := int64(0); i < 3; i++ {
		evs = append(evs, ipguard.LoginEvent{ID: 1001 + i, Date: t0.Add(time.Duration(498-i) * time.Second),
			Unreadable: fmt.Sprintf("event %d: bad", 1001+i), Raw: json.RawMessage(fmt.Sprintf(`{"id":%d}`, 1001+i))})
	}
	s, _, st, pub := newAudit(evs...)
	s.Settings.PieceEvents = 100
	s.Settings.Concurrency = 1
	s.Behaviour = &holdingBehaviour{failAt: 2} // the second piece fails: the first one's cursor stays
	if _, err := s.Run(context.Background(), trig(15*time.Minute)); err == nil {
		t.Fatal("the run whose second piece failed succeeded")
	}
	if c := st.progress.Cursor; c == nil || !c.Below.Before(t0.Add(496*time.Second)) {
		t.Fatalf("after the failed run: cursor %+v; want it past the unreadable rows", c)
	}
	if len(pub.sent) != 0 {
		t.Fatalf("the failed run sent %d messages", len(pub.sent))
	}
	threeUnreadableRowsSentAt20m(t, s, pub)
}

// Unreadable rows are reported when their page is read, which may be before
// the cursor passes them: three of them in the oldest second of the first
// page, which the walk hands on with the next band (the second may go on in
// the next page). The first piece's save records them as due; the run fails
// in the next piece, so the cursor stays above them and the next run reads
// them again (and passes them, failing further down: recorded as due once
// more). The alert counts each row once. Before, the rows recorded as due
// were counted again whenever met again (here 6).
func TestUnreadableRowsRecordedAsDueAreNotCountedAgainWhenReadAgain(t *testing.T) {
	evs := allowedLogins(250)
	second := t0.Add(308 * time.Second) // the first page's oldest second (with login 154)
	for i := int64(0); i < 3; i++ {
		evs = append(evs, ipguard.LoginEvent{ID: 1001 + i, Date: second,
			Unreadable: fmt.Sprintf("event %d: bad", 1001+i), Raw: json.RawMessage(fmt.Sprintf(`{"id":%d}`, 1001+i))})
	}
	s, _, st, pub := newAudit(evs...)
	s.Settings.PieceEvents = 10
	s.Settings.Concurrency = 1
	for run := 1; run <= 2; run++ {
		s.Behaviour = &holdingBehaviour{failAt: 2} // the second piece fails
		if _, err := s.Run(context.Background(), trig(15*time.Minute)); err == nil {
			t.Fatalf("run %d, whose second piece failed, succeeded", run)
		}
		if c := st.progress.Cursor; run == 1 && (c == nil || c.Below.Before(second)) {
			t.Fatalf("after failed run %d: cursor %+v; want it at or above the second of the unreadable rows (%s)", run, c, second)
		}
	}
	threeUnreadableRowsSentAt20m(t, s, pub)
}

// clearFailingStore refuses the progress write that clears the lost
// coverage recorded as due (the table throttled just then).
type clearFailingStore struct {
	*fakeStore
	failing bool
}

func (c *clearFailingStore) SetProgress(ctx context.Context, p ipguard.AuditProgress) error {
	if c.failing && p.CoverageDue == "" && c.progress.CoverageDue != "" {
		return &ipguard.Error{Code: ipguard.EUnavailable, Message: "dynamodb: throttled"}
	}
	return c.fakeStore.SetProgress(ctx, p)
}

// A lost-coverage alert that SNS accepted is not sent again by a later run
// because the write that clears it from the due could not be made: the
// next run finds its episode recorded. Also when that run comes more than
// an episode's gap later (a cron() AuditSchedule that pauses overnight or
// at weekends): the episode is over then, yet the alert was sent, after
// the loss was noted. Before, the next run sent it a second time.
func TestALostCoverageAlertSentIsNotSentAgainWhenItsClearFailed(t *testing.T) {
	s, _, fst, pub := newAudit(guessesFromFortyAddresses()...)
	st := &clearFailingStore{fakeStore: fst, failing: true}
	s.Store, s.Leases = st, st
	fst.ForgetFailures = 2345
	var now time.Time
	s.Now = func() time.Time { return now }
	now = t0.Add(15*time.Minute + 30*time.Second)
	if _, err := s.Run(context.Background(), trig(15*time.Minute)); err != nil {
		t.Fatalf("the run whose lost coverage was sent: %v", err)
	}
	if n := len(lostAlerts(t, pub.sent)); n != 1 || fst.progress.CoverageDue == "" {
		t.Fatalf("after the first run: %d lost-coverage alerts, due %q; want 1 sent and still recorded as due (its clear failed)", n, fst.progress.CoverageDue)
	}
	fst.ForgetFailures, st.failing = 0, false
	now = t0.Add(3*time.Hour + 30*time.Second) // the next scheduled run, hours later
	if _, err := s.Run(context.Background(), trig(3*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if lost := lostAlerts(t, pub.sent); len(lost) != 1 {
		t.Errorf("lost coverage sent: %+v; want the failures_forgotten alert once", lost)
	}
	if fst.progress.CoverageDue != "" {
		t.Errorf("due after the next run: %q; want it cleared", fst.progress.CoverageDue)
	}
}

// A lost-coverage alert recorded as due is sent by the next run also when
// that run fails itself (the portal down for a while): the earlier run's
// cursor is past the logins concerned, so nothing this run does or fails
// to do changes it. Before, a run sent lost coverage only when it
// succeeded, and the alert waited for the whole outage.
func TestALostCoverageAlertDueIsSentByANextRunThatFails(t *testing.T) {
	s, src, st, pub, now := forgottenAndUnpublished(t)
	st.ForgetFailures, pub.failing = 0, false
	src.fail = 1 << 20 // the portal does not answer
	*now = t0.Add(20*time.Minute + 30*time.Second)
	if _, err := s.Run(context.Background(), trig(20*time.Minute)); err == nil {
		t.Fatal("the run that could not read the portal succeeded")
	}
	if lost := lostAlerts(t, pub.sent); len(lost) != 1 || lost[0].Cause != CauseFailuresForgotten {
		t.Fatalf("lost coverage sent by the failed run: %+v; want the failures_forgotten alert due", lost)
	}
	src.fail = 0 // the portal is back: the due was sent, not again
	*now = t0.Add(25*time.Minute + 30*time.Second)
	res, err := s.Run(context.Background(), trig(25*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if res.LoginsNotEvaluated == 0 {
		t.Errorf("the run that cleared the due counts no logins not evaluated; want them on its line (CoverageLost): the failed runs' lines count none")
	}
	if lost := lostAlerts(t, pub.sent); len(lost) != 1 {
		t.Errorf("lost coverage sent: %+v; want the failures_forgotten alert once", lost)
	}
	if st.progress.CoverageDue != "" {
		t.Errorf("due after the run once the portal is back: %q; want it cleared", st.progress.CoverageDue)
	}
}

// allowedLogins are n logins of alice from her allowed address, one every
// 2 seconds from t0: nothing to alert.
func allowedLogins(n int64) []ipguard.LoginEvent {
	var evs []ipguard.LoginEvent
	for i := int64(1); i <= n; i++ {
		evs = append(evs, at(i, "alice", 1010, "203.0.113.10", time.Duration(i)*2*time.Second))
	}
	return evs
}

// threeUnreadableRowsSentAt20m runs s at +20m (its Behaviour now judging)
// and wants one unreadable_rows alert sent, counting the 3 rows once; it
// returns the lost-coverage alerts sent.
func threeUnreadableRowsSentAt20m(t *testing.T, s *Service, pub *fakePublisher) []Finding {
	t.Helper()
	s.Behaviour = &holdingBehaviour{}
	if _, err := s.Run(context.Background(), trig(20*time.Minute)); err != nil {
		t.Fatal(err)
	}
	lost := lostAlerts(t, pub.sent)
	if len(lost) != 1 || lost[0].Cause != CauseUnreadableRows || lost[0].Count != 3 {
		t.Fatalf("lost coverage sent: %+v; want one unreadable_rows alert counting the 3 rows once", lost)
	}
	return lost
}

// corruptOnce is a store whose progress item cannot be read the first
// *left times it is asked for (then it reads as saved).
type corruptOnce struct {
	*fakeStore
	left *int
}

func (c corruptOnce) Progress(ctx context.Context) (ipguard.AuditProgress, error) {
	if *c.left > 0 {
		*c.left--
		return ipguard.AuditProgress{}, ipguard.Errorf(ipguard.EInternal, "dynamodb: get audit progress: attribute until: bad time")
	}
	return c.fakeStore.Progress(ctx)
}

// Attack review of the audit: a saved progress that cannot be read (the
// checkpoint, or the lost coverage an earlier run left to send) made the
// run start over from AUDIT_LOOKBACK, or drop what was due, with only a
// warning: the logins between the lost checkpoint and the new window, or
// the earlier loss, were never evaluated and nobody was alerted. It is lost
// coverage (cause progress_lost), sent once per episode like every cause.
func TestUnreadableProgressIsLostCoverage(t *testing.T) {
	for _, tt := range []struct {
		name  string
		setup func(s *Service, st *fakeStore)
	}{
		{"checkpoint unreadable", func(s *Service, st *fakeStore) {
			n := 1
			s.Store = corruptOnce{fakeStore: st, left: &n}
		}},
		{"due coverage unreadable", func(s *Service, st *fakeStore) {
			*st.progress = ipguard.AuditProgress{Until: t0.Add(10 * time.Minute), CoverageDue: "{not json"}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, _, st, pub := newAudit(allowedLogins(10)...)
			tt.setup(s, st)
			var sent []int
			for _, d := range []time.Duration{15 * time.Minute, 20 * time.Minute} {
				before := len(lostAlerts(t, pub.sent))
				s.Now = func() time.Time { return t0.Add(d + time.Minute) }
				if _, err := s.Run(context.Background(), trig(d)); err != nil {
					t.Fatal(err)
				}
				sent = append(sent, len(lostAlerts(t, pub.sent))-before)
			}
			if want := []int{1, 0}; !slices.Equal(sent, want) {
				t.Errorf("coverage_lost messages per run %v, want %v", sent, want)
			}
			for _, f := range lostAlerts(t, pub.sent) {
				if f.Cause != CauseProgressLost || !strings.Contains(f.Reason, "cannot be read") {
					t.Errorf("finding %+v; want cause %s naming the unreadable progress", f, CauseProgressLost)
				}
			}
		})
	}
}

// fixedRetention is a portal keeping its login history for d.
type fixedRetention struct {
	d     time.Duration
	asked *int
}

func (f fixedRetention) LoginHistoryLifetime(context.Context) (time.Duration, error) {
	*f.asked++
	return f.d, nil
}

// Attack review of the audit: the portal deletes login events older than
// its loginHistoryLifeTime (1 to 180 days, which an admin can lower) every
// day. A window reaching back past it (an audit stalled for a while, a
// backfill) was walked over the shortened list and taken as read, with
// nothing said: the logins deleted unread were skipped silently. Such a
// window is lost coverage (cause retention_passed); a window within a day
// does not even ask the portal.
func TestWindowPastThePortalsRetentionIsLostCoverage(t *testing.T) {
	day := 24 * time.Hour
	for _, tt := range []struct {
		name      string
		lifetime  time.Duration
		until     time.Duration // the saved checkpoint, before t0
		backfill  bool
		wantAsked int
		wantLost  int
	}{
		{"stalled for 3 days, history kept 2", 2 * day, 3 * day, false, 1, 1},
		{"stalled for 3 days, history kept 180", 180 * day, 3 * day, false, 1, 0},
		{"a backfill 3 days back, history kept 1", day, 0, true, 1, 1},
		{"a window within the last day", day, 0, false, 0, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, _, st, pub := newAudit(allowedLogins(10)...)
			asked := 0
			s.Retention = fixedRetention{d: tt.lifetime, asked: &asked}
			trigger := trig(15 * time.Minute)
			if tt.backfill {
				trigger = Trigger{From: t0.Add(-3 * day), To: t0.Add(15 * time.Minute), Backfill: true}
			} else if tt.until > 0 {
				*st.progress = ipguard.AuditProgress{Until: t0.Add(-tt.until)}
			}
			if _, err := s.Run(context.Background(), trigger); err != nil {
				t.Fatal(err)
			}
			lost := lostAlerts(t, pub.sent)
			if asked != tt.wantAsked || len(lost) != tt.wantLost {
				t.Fatalf("lifetime asked %d times, lost coverage %+v; want asked %d, %d alerts", asked, lost, tt.wantAsked, tt.wantLost)
			}
			for _, f := range lost {
				if f.Cause != CauseRetentionPassed || !strings.Contains(f.Reason, "loginHistoryLifeTime") {
					t.Errorf("finding %+v; want cause %s naming loginHistoryLifeTime", f, CauseRetentionPassed)
				}
			}
		})
	}
}

// Attack review of the audit: the plan-fallback probe asked for the page
// at startIndex 100 after a short first page and took any row shared with
// the first page for the fallback. A flood of failed logins (the attacker's
// own, dated after the window) between the two requests pushes the first
// page's rows down past position 100 on an honest portal: a false "upgrade
// the plan" coverage_lost alert, at will. The probe now asks for one row:
// the fallback ignores count and answers with its 20 newest, an honest
// portal never with more than asked, whatever arrives in between.
func TestAFloodDoesNotPassForThePlanFallback(t *testing.T) {
	for _, tt := range []struct {
		name     string
		fallback bool
		want     int
	}{
		{"honest portal under a flood", false, 0},
		{"plan fallback under a flood", true, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, src, _, pub := newAudit(allowedLogins(10)...)
			src.fallback = tt.fallback
			src.beforeCall = func(n int, f *fakeSource) {
				if n != 2 {
					return
				}
				var flood []ipguard.LoginEvent
				for i := int64(0); i < 150; i++ {
					e := at(1000+i, "", 1013, "198.18.0.250", 15*time.Minute+30*time.Second)
					e.UserID = "guest"
					flood = append(flood, e)
				}
				f.add(flood...)
			}
			if _, err := s.Run(context.Background(), trig(15*time.Minute)); err != nil {
				t.Fatal(err)
			}
			lost := lostAlerts(t, pub.sent)
			if len(lost) != tt.want {
				t.Fatalf("lost coverage %+v; want %d plan_fallback alerts", lost, tt.want)
			}
			for _, f := range lost {
				if f.Cause != CausePlanFallback {
					t.Errorf("cause %s, want %s", f.Cause, CausePlanFallback)
				}
			}
		})
	}
}
