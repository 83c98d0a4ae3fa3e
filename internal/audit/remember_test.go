package audit

import (
	"context"
	"testing"
	"time"
)

// The failed logins a window read are kept (failures# items) for the next
// runs' password-guess and burst windows. When that write fails, the run
// fails and leaves its window to be read again, so the next run keeps them
// and a guess that succeeds in a later window is still critical. Before,
// the failure was only a warning in the log: the window was marked done,
// the guess across the runs' cut was a plain ip_not_allowed, and nothing
// told anyone (no error, no metric).
func TestFailedLoginsThatCouldNotBeKeptAreReadAgain(t *testing.T) {
	s, src, st, _ := newAudit(aliceGuesses(time.Minute)...)
	st.FailRecordFailures = true
	if _, err := s.Run(context.Background(), trig(15*time.Minute)); err == nil {
		t.Fatal("the run that could not keep its failed logins reported no error")
	}
	st.FailRecordFailures = false
	if _, err := s.Run(context.Background(), trig(15*time.Minute)); err != nil { // the window read again
		t.Fatal(err)
	}
	res := aliceLogsInAfterTheGuess(t, s, src)
	if res.Counts[KindPasswordGuessSucceeded] != 1 {
		t.Errorf("counts %v; want the guess critical", res.Counts)
	}
}
