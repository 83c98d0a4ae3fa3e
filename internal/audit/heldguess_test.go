package audit

import (
	"context"
	"testing"
	"time"

	"ipguard/internal/ipguard"
)

// A cursor held above a piece's Done (Holder: a learning user's login) and
// the logins carried for the password-guess correlation (cursor Guesses):
// the next run reads the logins between the cursor and that Done again, so
// only the logins above the cursor are carried. Before, they were carried
// as well as read again, and alice's login after a guess was raised to
// password_guess_succeeded twice (two alerts for one login; each kind is
// alerted once, as across runs without holding: ip_not_allowed from its own
// piece, password_guess_succeeded once the failed logins are read).
func TestAGuessAboveAHeldCursorIsAlertedOnce(t *testing.T) {
	evs := []ipguard.LoginEvent{at(1, "alice", 1010, "198.51.100.1", 14*time.Minute), at(9000, "alice", 1010, "198.51.100.9", 10*time.Minute)}
	evs = append(evs, violations(100, 200, t0.Add(6*time.Minute), 1)...)
	evs = append(evs, aliceGuesses(5*time.Minute)...)
	s, _, st, pub := newAudit(evs...)
	s.Behaviour = &holdingBehaviour{failAt: 2, max: 100000}
	s.Settings.PieceEvents = 50
	s.Settings.Concurrency = 1
	s.Settings.GuessWindow = 15 * time.Minute
	if _, err := s.Run(context.Background(), trig(15*time.Minute)); err == nil {
		t.Fatal("the run whose second piece failed succeeded")
	}
	if c := st.progress.Cursor; c == nil || !c.Below.After(t0.Add(10*time.Minute)) {
		t.Fatalf("after the failed run: cursor %+v; want it held above alice's login (the first piece's held findings)", c)
	}
	s.Behaviour = &holdingBehaviour{max: 100000}
	if res, err := s.Run(context.Background(), trig(15*time.Minute)); err != nil || !res.Complete {
		t.Fatalf("next run: %+v, %v", res, err)
	}
	kinds := map[string]int{}
	for _, a := range pub.sent {
		for _, f := range findingsOf(t, a) {
			if f.EventID == 9000 {
				kinds[f.Kind]++
			}
		}
	}
	if kinds[KindPasswordGuessSucceeded] != 1 || kinds[KindIPNotAllowed] > 1 {
		t.Fatalf("alice's login after the guess alerted as %v; want password_guess_succeeded once (ip_not_allowed at most once)", kinds)
	}
}
