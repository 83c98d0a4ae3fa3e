package audit

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"ipguard/internal/ipguard"
)

// When the store could not remember some addresses' failed logins (a flood
// from more addresses than its bounded items keep: the fewest failures gave
// way), a later run's password-guess correlation has lost them, and a
// guesser can hide that way: the run tells it as lost coverage (cause
// failures_forgotten), once per episode, never silently (attack review of
// the audit path; the DynamoDB store's count is held by
// TestRecordFailuresSaysHowManyAddressesGaveWay).
func TestForgottenFailedLoginsAreLostCoverage(t *testing.T) {
	var evs []ipguard.LoginEvent
	for i := int64(1); i <= 40; i++ {
		e := at(i, guest, 1013, fmt.Sprintf("172.16.0.%d", i), time.Duration(i)*time.Second)
		e.Login = "nobody@example.com"
		evs = append(evs, e)
	}
	s, _, st, pub := newAudit(evs...)
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
