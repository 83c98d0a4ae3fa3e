package audit

import (
	"context"
	"testing"
	"time"

	"ipguard/internal/ipguard"
)

// The failed logins a window read are kept (failures# items) for the next
// runs' password-guess and burst windows. When that write fails, the run
// fails and leaves its window to be read again, so the next run keeps them
// and a guess that succeeds in a later window is still critical. Before,
// the failure was only a warning in the log: the window was marked done,
// the guess across the runs' cut was a plain ip_not_allowed, and nothing
// told anyone (no error, no metric).
func TestFailedLoginsThatCouldNotBeKeptAreReadAgain(t *testing.T) {
	var evs []ipguard.LoginEvent
	for i := int64(0); i < 3; i++ {
		e := at(8000+i, guest, 1013, "198.51.100.9", time.Minute+time.Duration(i)*time.Second)
		e.Login = "alice@example.com"
		evs = append(evs, e)
	}
	s, src, st, _ := newAudit(evs...)
	st.FailRecordFailures = true
	if _, err := s.Run(context.Background(), trig(15*time.Minute)); err == nil {
		t.Fatal("the run that could not keep its failed logins reported no error")
	}
	st.FailRecordFailures = false
	if _, err := s.Run(context.Background(), trig(15*time.Minute)); err != nil { // the window read again
		t.Fatal(err)
	}
	src.mu.Lock()
	src.add(at(9000, "alice", 1010, "198.51.100.9", 12*time.Minute))
	src.mu.Unlock()
	res, err := s.Run(context.Background(), trig(30*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if res.Counts[KindPasswordGuessSucceeded] != 1 {
		t.Errorf("counts %v; want the guess critical", res.Counts)
	}
}
