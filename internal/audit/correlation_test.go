package audit

import (
	"context"
	"testing"
	"time"

	"ipguard/internal/ipguard"
)

func kinds(fs []Finding) map[string]int {
	n := map[string]int{}
	for _, f := range fs {
		n[f.Kind]++
	}
	return n
}

// Issue 16 §6: FAILED_LOGIN_THRESHOLD=0 turns off the burst alert only;
// a successful login after guessing from its address stays critical.
func TestThresholdZeroKeepsThePasswordGuessRule(t *testing.T) {
	l := lists(t, map[string][]string{"alice": {"203.0.113.10"}})
	var evs []ipguard.LoginEvent
	for i := int64(1); i <= 3; i++ {
		e := ev(i, guest, 1013, "198.18.0.1")
		e.Login = "alice@example.com"
		evs = append(evs, e)
	}
	evs = append(evs, ev(4, "alice", 1010, "198.18.0.1"))
	for i := int64(10); i < 20; i++ {
		evs = append(evs, ev(i, guest, 1013, "198.18.0.2")) // would be a burst
	}
	fs, err := Evaluate(evs, l, Policy{FailedLoginThreshold: 0})
	if err != nil {
		t.Fatal(err)
	}
	if k := kinds(fs); k[KindPasswordGuessSucceeded] != 1 || k[KindFailedLoginBurst] != 0 || len(fs) != 1 {
		t.Errorf("findings %v; want one password_guess_succeeded and no burst", k)
	}
}

// Issue 16 §6: an IPv6 address the portal cut at its first colon is not an
// address: it never raises a login to critical (its own or another user's),
// and its failed logins never count toward a burst of a real address.
func TestCutIPv6NeverCorrelates(t *testing.T) {
	l := lists(t, map[string][]string{"alice": {"203.0.113.10"}, "bob": {"203.0.113.11"}})
	var evs []ipguard.LoginEvent
	for i := int64(1); i <= 6; i++ {
		evs = append(evs, ev(i, guest, 1013, "2001")) // many IPv6 addresses, cut alike
	}
	for i := int64(11); i <= 3+10; i++ {
		evs = append(evs, ev(i, guest, 1013, "198.18.0.1")) // 3 from a real address
	}
	evs = append(evs,
		ev(30, "alice", 1010, "2001"),         // cut: unverifiable, not critical
		ev(31, "bob", 1010, "2001:db8::1"),    // a whole IPv6 address: outside bob's list, not critical
		ev(32, "alice", 1010, "203.0.113.10")) // allowed
	fs, err := Evaluate(evs, l, Policy{FailedLoginThreshold: 5})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fs {
		if f.Kind == KindPasswordGuessSucceeded {
			t.Errorf("a cut address correlated: %+v", f)
		}
		if f.Kind == KindFailedLoginBurst && f.IP == "198.18.0.1" {
			t.Errorf("cut failed logins counted toward a real address's burst: %+v", f)
		}
	}
	if k := kinds(fs); k[KindUnverifiableIP] != 1 || k[KindIPNotAllowed] != 1 {
		t.Errorf("findings %v", k)
	}
}

// Issue 16 §6: the walk reads newest first, so a guess's failed attempts
// (older) can come in a later piece than its successful login. The login
// is still alerted as critical (once more, after its first alert), and a
// later run that reads it again sends nothing twice.
func TestFailuresInALaterPieceStillMakeTheGuessCritical(t *testing.T) {
	evs := []ipguard.LoginEvent{at(9000, "alice", 1010, "198.51.100.9", 12*time.Minute)}
	evs = append(evs, violations(1, 400, t0.Add(5*time.Minute), 1)...) // filler between them
	evs = append(evs, aliceGuesses(time.Minute)...)
	s, _, _, pub := newAudit(evs...)
	s.Settings.PieceEvents = 100
	res, err := s.Run(context.Background(), trig(15*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if res.Counts[KindPasswordGuessSucceeded] != 1 {
		t.Fatalf("counts %v; want the guess alerted as critical", res.Counts)
	}
	rerunSendsNothing(t, s, pub)
}

// Issue 16 §6: failed attempts survive the cut between runs: a guess that
// succeeds in the next run's window (past the overlap) is still critical.
func TestFailuresInAnEarlierRunStillMakeTheGuessCritical(t *testing.T) {
	evs := aliceGuesses(time.Minute)
	s, src, _, _ := newAudit(evs...)
	if _, err := s.Run(context.Background(), trig(15*time.Minute)); err != nil {
		t.Fatal(err)
	}
	res := aliceLogsInAfterTheGuess(t, s, src) // 11 minutes after the last failure: within GUESS_WINDOW (15)
	if res.Counts[KindPasswordGuessSucceeded] != 1 {
		t.Errorf("counts %v; want the guess critical", res.Counts)
	}
	// Past the guess window (10 minutes) it is not.
	s2, src2, _, _ := newAudit(evs...)
	s2.Settings.GuessWindow = 10 * time.Minute
	if _, err := s2.Run(context.Background(), trig(15*time.Minute)); err != nil {
		t.Fatal(err)
	}
	res = aliceLogsInAfterTheGuess(t, s2, src2)
	if res.Counts[KindPasswordGuessSucceeded] != 0 || res.Counts[KindIPNotAllowed] != 1 {
		t.Errorf("counts %v; want ip_not_allowed past the guess window", res.Counts)
	}
}

// Issue 21 §3: password_guess_succeeded needs failed logins from the
// login's address within GUESS_WINDOW before it, whatever the run's window
// and however the walk cut the window into pieces (newest first).
func TestGuessNeedsFailuresWithinGuessWindowBeforeTheLogin(t *testing.T) {
	base := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	fail := func(id int64, d time.Duration) ipguard.LoginEvent {
		e := ev(id, guest, 1013, "198.18.0.1")
		e.Date = base.Add(d)
		e.Login = "alice@example.com" // three of them per time listed: guessing, not a typo
		return e
	}
	login := ev(100, "alice", 1010, "198.18.0.1")
	login.Date = base.Add(30 * time.Minute)
	tests := []struct {
		name  string
		fails []time.Duration
		split bool // the login in a piece of its own, read first (newest first)
		want  string
	}{
		{"one failure 5 minutes before", []time.Duration{25 * time.Minute}, false, KindPasswordGuessSucceeded},
		{"failures at the window's edge (15 minutes before)", []time.Duration{15 * time.Minute}, false, KindPasswordGuessSucceeded},
		{"failures 16 minutes before: a morning typo, not a guess", []time.Duration{10 * time.Minute, 14 * time.Minute}, false, KindIPNotAllowed},
		{"failures only after the login", []time.Duration{31 * time.Minute, 40 * time.Minute}, false, KindIPNotAllowed},
		{"failures before and long after", []time.Duration{20 * time.Minute, 55 * time.Minute}, false, KindPasswordGuessSucceeded},
		{"read in a later piece, within the window", []time.Duration{22 * time.Minute}, true, KindPasswordGuessSucceeded},
		{"read in a later piece, before the window", []time.Duration{5 * time.Minute}, true, KindIPNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := NewEvaluator(lists(t, map[string][]string{"alice": {"203.0.113.10"}}), Policy{FailedLoginThreshold: 0})
			e.GuessWindow = 15 * time.Minute
			var older, newer []ipguard.LoginEvent
			for i, d := range tt.fails {
				for k := 0; k < GuessMinFailures; k++ {
					f := fail(int64(10*i+k+1), d)
					if tt.split && !f.Date.After(login.Date) {
						older = append(older, f)
					} else {
						newer = append(newer, f)
					}
				}
			}
			newer = append(newer, login)
			fs, err := e.Add(newer)
			if err != nil {
				t.Fatal(err)
			}
			more, err := e.Add(older)
			if err != nil {
				t.Fatal(err)
			}
			fs = append(fs, more...)
			last := ""
			for _, f := range fs {
				if f.EventID == login.ID {
					last = f.Kind
				}
			}
			if last != tt.want {
				t.Errorf("the login ends as %q; want %q (findings %v)", last, tt.want, kinds(fs))
			}
		})
	}
}

// Issue 16 §6 / 21 §3: a run that stops at its cursor after the piece of
// a successful login, before the older piece with its failed attempts,
// hands the login on with the cursor; the next run, which reads the
// failed attempts, raises it to critical (once).
func TestAGuessSplitByTheCursorIsStillCritical(t *testing.T) {
	evs := []ipguard.LoginEvent{at(9000, "alice", 1010, "198.51.100.9", 12*time.Minute)}
	evs = append(evs, violations(1, 200, t0.Add(11*time.Minute), 1)...) // filler: pieces between them (11:00-14:19)
	evs = append(evs, aliceGuesses(5*time.Minute)...)
	split := false
	for busyAfter := 2; busyAfter < 12 && !split; busyAfter++ {
		s, src, st, pub := newAudit(evs...)
		s.Settings.PieceEvents = 100
		s.Settings.Concurrency = 1
		src.busyAfter = busyAfter
		src.busy = &ipguard.Error{Code: ipguard.EUnavailable, Message: "busy", Err: &ipguard.WaitPastDeadlineError{Wait: time.Minute, Left: time.Second}}
		res, err := s.Run(context.Background(), trig(15*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		first := alertedIDs(t, pub.sent)
		c := st.progress.Cursor
		if res.Complete || first[9000] != 1 || c == nil || !c.Below.After(t0.Add(5*time.Minute+2*time.Second)) {
			continue // this cut did not fall between the login and its failures
		}
		split = true
		if res.Counts[KindPasswordGuessSucceeded] != 0 || c.Guesses == "" {
			t.Fatalf("run 1: counts %v, cursor guesses %q; want the login alerted at its own kind and carried", res.Counts, c.Guesses)
		}
		src.busyAfter = 0
		res, err = s.Run(context.Background(), trig(15*time.Minute))
		if err != nil || !res.Complete {
			t.Fatalf("run 2: %+v, %v", res, err)
		}
		if res.Counts[KindPasswordGuessSucceeded] != 1 {
			t.Errorf("run 2 counts %v; want the login raised to password_guess_succeeded", res.Counts)
		}
		// A third run reading it all again sends nothing.
		rerunSendsNothing(t, s, pub)
	}
	if !split {
		t.Fatal("no cut fell between the login and its failed attempts; the test's setup needs adjusting")
	}
}

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

// aliceGuesses is a password guess: three failed logins as
// alice@example.com from 198.51.100.9 (ids 8000-8002), a second apart from
// t0+from.
func aliceGuesses(from time.Duration) []ipguard.LoginEvent {
	var evs []ipguard.LoginEvent
	for i := int64(0); i < 3; i++ {
		e := at(8000+i, guest, 1013, "198.51.100.9", from+time.Duration(i)*time.Second)
		e.Login = "alice@example.com"
		evs = append(evs, e)
	}
	return evs
}

// aliceLogsInAfterTheGuess adds alice's successful login from the guessing
// address at t0+12 minutes to src and runs s up to t0+30 minutes (a window
// of 10..30 minutes, which holds none of aliceGuesses(time.Minute)).
func aliceLogsInAfterTheGuess(t *testing.T, s *Service, src *fakeSource) Result {
	t.Helper()
	src.mu.Lock()
	src.add(at(9000, "alice", 1010, "198.51.100.9", 12*time.Minute))
	src.mu.Unlock()
	res, err := s.Run(context.Background(), trig(30*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	return res
}
