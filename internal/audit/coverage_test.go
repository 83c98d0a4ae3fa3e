package audit

import (
	"context"
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
	s, _, st, _ := newAudit(guessesFromFortyAddresses()...)
	pub := &coverageFailingPublisher{failing: true}
	s.Publisher = pub
	st.ForgetFailures = 2345
	var now time.Time
	s.Now = func() time.Time { return now }
	now = t0.Add(15*time.Minute + 30*time.Second)
	if _, err := s.Run(context.Background(), trig(15*time.Minute)); err == nil {
		t.Fatal("the run whose lost-coverage alert could not be published succeeded")
	}
	// The flood is over and SNS answers again: the cause is not met again.
	st.ForgetFailures, pub.failing = 0, false
	for _, d := range []time.Duration{20 * time.Minute, 25 * time.Minute} {
		now = t0.Add(d + 30*time.Second)
		if _, err := s.Run(context.Background(), trig(d)); err != nil {
			t.Fatalf("run at +%s: %v", d, err)
		}
	}
	lost := lostAlerts(t, pub.sent)
	if len(lost) != 1 || lost[0].Cause != CauseFailuresForgotten {
		t.Fatalf("lost coverage sent after the failed publish: %+v; want the failures_forgotten alert once", lost)
	}
}
