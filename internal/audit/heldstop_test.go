package audit

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// A run that stops at its deadline margin right after committing a piece
// (the walk stopped between two pieces: nothing read and not evaluated)
// still stops after a piece (Piece.Last, here an empty one at the same
// Done), so the logins a Holder holds are judged there and the cursor
// passes them. Before, such a run judged the held logins nowhere and left
// the cursor at the newest of them: every later run that stopped the same
// way read the same pieces again and moved nothing, smaller pieces (after
// runs without progress) made it worse (with pieces of one band the walk
// always stops between two pieces), and no held finding was ever alerted.
func TestARunStoppedBetweenPiecesJudgesWhatItHolds(t *testing.T) {
	for _, k := range []int{10, 16} {
		t.Run(fmt.Sprintf("the portal stalls after %d requests", k), func(t *testing.T) {
			evs := violations(1, 2000, t0.Add(-2*time.Hour), 1)
			s, src, st, pub := backlogAudit(evs, 100, 100*time.Millisecond)
			s.Behaviour = &holdingBehaviour{max: 100000}
			var trail []string
			runs := 0
			for ; runs < 30; runs++ {
				src.stallAfter(k)
				res := runWithin(t, s, 300*time.Millisecond)
				if c := st.progress.Cursor; c != nil {
					trail = append(trail, fmt.Sprintf("%s (%d without progress)", c.Below.Format("15:04:05"), res.RunsWithoutProgress))
				}
				if res.Complete {
					break
				}
			}
			if runs == 30 {
				t.Fatalf("the backlog did not clear in 30 runs; cursor after each run: %v; %d of %d violations alerted", trail, len(alertedIDs(t, pub.sent)), len(evs))
			}
			alertedOnce(t, pub.sent, evs, fmt.Sprintf(", want exactly once (after %d runs)", runs+1))
		})
	}
}

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

// lastsBehaviour holds like holdingBehaviour and records each piece it is
// handed (its Done, Last and Final).
type lastsBehaviour struct {
	holdingBehaviour
	pieces []Piece
}

func (l *lastsBehaviour) Judge(ctx context.Context, p Piece, fs []Finding) ([]Finding, error) {
	l.pieces = append(l.pieces, Piece{Done: p.Done, Last: p.Last, Final: p.Final, First: p.First})
	return l.holdingBehaviour.Judge(ctx, p, fs)
}

// A run that resumes at a cursor where an earlier run moved nothing judges
// that window's pieces as they stand (each its Last: it may never reach the
// window's end). Once it has finished that window and walks the next one,
// of several pieces, nothing of the kind holds: a Behaviour must get its
// pieces in order again (Last only on the piece the run stops after), or a
// learned user's new country in the newest piece is judged before their
// older logins of the same window (WHERE §11: each user's logins in time
// order). Before, asTheyStand stayed on for the whole run.
func TestAResumedRunJudgesTheNextWindowInOrder(t *testing.T) {
	evs := violations(1, 300, t0.Add(-2*time.Hour), 3)
	evs = append(evs, violations(5001, 300, t0.Add(20*time.Minute), 3)...)
	s, _, st, _ := newAudit(evs...)
	s.Settings.PieceEvents = 100
	s.Settings.Concurrency = 1
	s.Settings.Lookback = 3 * time.Hour
	s.Behaviour = &holdingBehaviour{failAt: 1, max: 100000} // the first piece fails: the cursor stays
	if _, err := s.Run(context.Background(), trig(15*time.Minute)); err == nil {
		t.Fatal("the run whose first piece failed succeeded")
	}
	if c := st.progress.Cursor; c == nil || c.Attempts == 0 {
		t.Fatalf("after the failed run: cursor %+v; want it counted (Attempts > 0)", c)
	}
	s.Now = func() time.Time { return t0.Add(46 * time.Minute) }
	l := &lastsBehaviour{holdingBehaviour: holdingBehaviour{max: 100000}}
	s.Behaviour = l
	res, err := s.Run(context.Background(), trig(45*time.Minute))
	if err != nil || !res.Complete {
		t.Fatalf("the resumed run: %+v, %v", res, err)
	}
	var next []Piece // the pieces of the window after the resumed one (after its Final piece)
	for i, p := range l.pieces {
		if p.Final {
			next = l.pieces[i+1:]
			break
		}
	}
	if len(next) < 2 {
		t.Fatalf("the next window was handed in %d pieces (%+v); the test wants several", len(next), l.pieces)
	}
	for i, p := range next {
		if !p.Final && p.Last {
			t.Errorf("piece %d of the next window (done %s, of %d) was Last though the run went on: judged as it stands, out of time order", i, p.Done.Format(time.RFC3339), len(next))
		}
	}
}
