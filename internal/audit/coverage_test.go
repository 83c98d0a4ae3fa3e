package audit

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"ipguard/internal/ipguard"
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
