package audit

import (
	"context"
	"testing"
	"time"
)

// A piece below the held logins fails in every run (a store, a portal page
// or a message that keeps failing): the run never reaches its last piece,
// the cursor stays at the held logins, and what they were held for is
// never sent. Without holding, the pieces above the failing one were
// alerted. Held logins must not wait forever behind a failure below them.
func TestHeldLoginsAreAlertedWhenEveryRunFailsBelowThem(t *testing.T) {
	evs := violations(1, 1000, t0.Add(-2*time.Hour), 3)
	s, _, st, pub := newAudit(evs...)
	s.Settings.PieceEvents = 100
	s.Settings.Concurrency = 1
	s.Settings.Lookback = 3 * time.Hour
	for run := 0; run < 8; run++ {
		s.Behaviour = &holdingBehaviour{failAt: 3, max: 10000} // each run: a new process, the third piece fails
		res, err := s.Run(context.Background(), trig(15*time.Minute))
		t.Logf("run %d: sent %d complete %v err %v cursor %+v", run, len(pub.sent), res.Complete, err, st.progress.Cursor)
	}
	for _, a := range pub.sent {
		for _, f := range findingsOf(t, a) {
			t.Logf("sent: %s %s", f.Kind, f.Reason)
		}
	}
	if len(alertedIDs(t, pub.sent)) == 0 {
		t.Fatalf("after 8 runs that each failed at the same piece below the held logins: nothing alerted; want the held logins' findings sent (as they stand)")
	}
}
