package audit

import (
	"context"
	"errors"
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
		s.Behaviour = &holdingBehaviour{failAt: 3, max: 10000}
		s.Settings.PieceEvents = 100 // two pieces held, the third fails
		s.Settings.Concurrency = 1
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
