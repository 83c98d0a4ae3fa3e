package audit

import (
	"context"
	"ipguard/internal/ipguard"
	"testing"
	"time"
)

// Each login lands in the login archive once (WHERE-ISSUES-MEET §12), also
// when the Behaviour holds logins (Holder) and the run fails after pieces
// that held them: the cursor stays above the held logins, the next run
// reads them again, and the archive wrote them already with the piece that
// held them; before, the next run wrote them again under its own cursor's
// name, a second copy (attack review of the audit path). Held logins are
// archived with the piece after which the cursor passes them.
func TestArchiveHoldsEachLoginOnceWhileLoginsAreHeld(t *testing.T) {
	t.Run("a run that fails after pieces that held logins", func(t *testing.T) {
		evs := violations(1, 1000, t0.Add(-2*time.Hour), 3)
		s, _, _, _ := newAudit(evs...)
		arc := &fakeArchive{}
		s.Archive = arc
		s.Behaviour = &holdingBehaviour{failAt: 3, max: 10000}
		s.Settings.PieceEvents = 100
		s.Settings.Concurrency = 1
		s.Settings.Lookback = 3 * time.Hour
		if _, err := s.Run(context.Background(), trig(15*time.Minute)); err == nil {
			t.Fatal("the run whose third piece failed succeeded")
		}
		s.Behaviour = &holdingBehaviour{max: 10000} // a new process
		if res, err := s.Run(context.Background(), trig(15*time.Minute)); err != nil || !res.Complete {
			t.Fatalf("next run: %+v, %v", res, err)
		}
		checkArchivedOnce(t, arc, evs)
	})
	t.Run("one run whose pieces hold logins", func(t *testing.T) {
		evs := violations(1, 1000, t0.Add(-2*time.Hour), 3)
		s, _, _, _ := newAudit(evs...)
		arc := &fakeArchive{}
		s.Archive = arc
		s.Behaviour = &holdingBehaviour{max: 250}
		s.Settings.PieceEvents = 100
		s.Settings.Concurrency = 1
		s.Settings.Lookback = 3 * time.Hour
		if res, err := s.Run(context.Background(), trig(15*time.Minute)); err != nil || !res.Complete {
			t.Fatalf("run: %+v, %v", res, err)
		}
		checkArchivedOnce(t, arc, evs)
	})
}

func checkArchivedOnce(t *testing.T, arc *fakeArchive, evs []ipguard.LoginEvent) {
	t.Helper()
	copies := arc.copies()
	bad := 0
	for _, e := range evs {
		if n := copies[e.ID]; n != 1 {
			if bad < 5 {
				t.Errorf("event %d (%s) is in %d archive objects; want 1", e.ID, e.Date.Format(time.RFC3339), n)
			}
			bad++
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d events are not archived exactly once", bad, len(evs))
	}
}
