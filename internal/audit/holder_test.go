package audit

import (
	"context"
	"errors"
	"ipguard/internal/ipguard"
	"slices"
	"testing"
	"time"
)

// holdingBehaviour holds every finding of a run's pieces until the piece
// after which the run stops (Last or Final), as package behaviour holds
// the logins of users still learning; failAt makes its failAt-th Judge fail.
// It holds at most max findings (package behaviour's maxHeld): past it,
// what it holds is judged at once.
type holdingBehaviour struct {
	max    int
	held   []Finding
	ids    map[int64]bool
	newest time.Time
	judged int
	failAt int
}

func (h *holdingBehaviour) Judge(_ context.Context, p Piece, fs []Finding) ([]Finding, error) {
	h.judged++
	if h.judged == h.failAt {
		return nil, errors.New("the behaviour store is down")
	}
	if p.First {
		h.held, h.ids, h.newest = nil, map[int64]bool{}, time.Time{} // a new run: what was held is read again
	}
	if p.Last || p.Final || len(h.held)+len(fs) > h.max {
		fs = append(fs, h.held...)
		h.held, h.ids, h.newest = nil, map[int64]bool{}, time.Time{}
		return fs, nil
	}
	for _, f := range fs {
		if !h.ids[f.EventID] {
			h.ids[f.EventID] = true
			h.held = append(h.held, f)
		}
		if d, err := time.Parse(time.RFC3339, f.Date); err == nil && d.After(h.newest) {
			h.newest = d
		}
	}
	return nil, nil
}

func (h *holdingBehaviour) Settle(context.Context) error { return nil }
func (h *holdingBehaviour) Holding() time.Time           { return h.newest }

// A Behaviour that holds logins for the run's last piece (Holder, #21 §3)
// loses none: a run that stops at its deadline judges them in the piece it
// stops after, and a run that fails after committing pieces that held
// logins has not moved its cursor below them, so the next run (a new
// process, remembering nothing) reads them again. Every violation is alerted
// exactly once, and the cursor never claims a login not alerted.
func TestHeldLoginsAreNeverClaimedByTheCursor(t *testing.T) {
	t.Run("runs stopped at their deadline", func(t *testing.T) {
		evs := violations(1, 3000, t0.Add(-2*time.Hour), 3)
		s, src, st, pub := backlogAudit(evs, 200, 200*time.Millisecond)
		s.Behaviour = &holdingBehaviour{max: 300}
		clearBacklog(t, s, src, st, pub, evs)
	})
	t.Run("a run that fails after pieces that held logins", func(t *testing.T) {
		evs := violations(1, 1000, t0.Add(-2*time.Hour), 3)
		s, _, st, pub := newAudit(evs...)
		holdInPieces(s, 3, 10000, 100) // two pieces held, the third fails
		s.Settings.Lookback = 3 * time.Hour
		if _, err := s.Run(context.Background(), trig(15*time.Minute)); err == nil {
			t.Fatal("the run whose third piece failed succeeded")
		}
		if st.progress.Cursor == nil || len(pub.sent) != 0 {
			t.Fatalf("after the failed run: cursor %v, %d messages; want two pieces committed, their logins held, nothing sent", st.progress.Cursor != nil, len(pub.sent))
		}
		cursorClaimsOnlyAlerted(t, st, pub, evs, 1)
		s.Behaviour = &holdingBehaviour{max: 10000} // a new process
		if res, err := s.Run(context.Background(), trig(15*time.Minute)); err != nil || !res.Complete {
			t.Fatalf("next run: %+v, %v", res, err)
		}
		alertedOnce(t, pub.sent, evs, ", want exactly once")
	})
}

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
	holdInPieces(s, 2, 100000, 50)
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

// markingBehaviour records Piece.First of each Judge and holds every
// finding like holdingBehaviour; it has a note to tell at its notesAt-th
// Judge (Noter).
type markingBehaviour struct {
	holdingBehaviour
	firsts  []bool
	dones   []time.Time
	notesAt int
	notes   []string
}

func (m *markingBehaviour) Judge(ctx context.Context, p Piece, fs []Finding) ([]Finding, error) {
	m.firsts = append(m.firsts, p.First)
	m.dones = append(m.dones, p.Done)
	if len(m.firsts) == m.notesAt {
		m.notes = append(m.notes, "held logins judged at once")
	}
	return m.holdingBehaviour.Judge(ctx, p, fs)
}

func (m *markingBehaviour) Notes() []string {
	n := m.notes
	m.notes = nil
	return n
}

// The audit marks each run's first piece (Piece.First), so that a hook in
// a warm process never infers from dates where a run begins: a run that
// fails after pieces that held logins, followed in the same process by
// the next run, whose pieces are larger (the next run's first Done is
// below the failed run's last one). A hook that guessed from dates, as
// package behaviour did (a Done below the last one: the same run), took
// that piece for the failed run's next and judged the logins it held
// again with the ones read anew: event 616 was alerted twice. Every
// violation is alerted exactly once, and what the hook notes (Noter) is a
// warning of the run's result.
func TestEachRunsFirstPieceIsMarkedAndNotesAreWarnings(t *testing.T) {
	evs := violations(1, 1000, t0.Add(-2*time.Hour), 3)
	s, _, _, pub := newAudit(evs...)
	m := &markingBehaviour{holdingBehaviour: holdingBehaviour{failAt: 3, max: 10000}}
	s.Behaviour = m
	s.Settings.PieceEvents = 100 // two pieces held, the third fails
	s.Settings.Concurrency = 1
	s.Settings.Lookback = 3 * time.Hour
	if _, err := s.Run(context.Background(), trig(15*time.Minute)); err == nil {
		t.Fatal("the run whose third piece failed succeeded")
	}
	if want := []bool{true, false, false}; !slices.Equal(m.firsts, want) {
		t.Fatalf("the failed run's pieces were First %v; want %v", m.firsts, want)
	}
	// The same process runs again, with pieces as large as the backlog.
	m.failAt, m.notesAt = 0, 4
	s.Settings.PieceEvents = 2000
	res, err := s.Run(context.Background(), trig(15*time.Minute))
	if err != nil || !res.Complete {
		t.Fatalf("next run: %+v, %v", res, err)
	}
	if len(m.firsts) < 4 || !m.firsts[3] || slices.Contains(m.firsts[4:], true) {
		t.Errorf("pieces were First %v; want the next run's first piece (the 4th) First and no later one", m.firsts)
	}
	if !m.dones[3].Before(m.dones[2]) {
		t.Errorf("the next run's first piece is done at %s, the failed run's last at %s; the test wants it below", m.dones[3], m.dones[2])
	}
	alertedOnce(t, pub.sent, evs, ", want exactly once")
	if !slices.Contains(res.Warnings, "held logins judged at once") {
		t.Errorf("warnings %q; want the hook's note", res.Warnings)
	}
}

// holdInPieces gives s a Behaviour that holds every login for the run's
// last piece (at most max; failing the Judge of piece failAt, 0: none) and
// reads pieces of n events, one at a time.
func holdInPieces(s *Service, failAt, max, n int) {
	s.Behaviour = &holdingBehaviour{failAt: failAt, max: max}
	s.Settings.PieceEvents = n
	s.Settings.Concurrency = 1
}
