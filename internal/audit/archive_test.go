package audit

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"ipguard/internal/ipguard"
)

// fakeArchive keeps what an S3 archive would: one object per span's upper
// end (a write of the same span replaces it). failOn fails that call
// (1-based).
type fakeArchive struct {
	mu      sync.Mutex
	objects map[time.Time][]ipguard.LoginEvent
	calls   int
	failOn  int
}

func (f *fakeArchive) Archive(_ context.Context, _ time.Time, span ipguard.TimeSpan, evs []ipguard.LoginEvent) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.calls == f.failOn {
		return ipguard.Errorf(ipguard.EUnavailable, "s3 down")
	}
	if f.objects == nil {
		f.objects = map[time.Time][]ipguard.LoginEvent{}
	}
	for _, e := range evs {
		if !e.Date.After(span.From) || e.Date.After(span.To) {
			return errors.New("an event outside its span")
		}
	}
	f.objects[span.To] = append([]ipguard.LoginEvent(nil), evs...)
	return nil
}

// copies counts, per event id, the objects that hold it.
func (f *fakeArchive) copies() map[int64]int {
	n := map[int64]int{}
	for _, evs := range f.objects {
		for _, e := range evs {
			n[e.ID]++
		}
	}
	return n
}

// failingProgress fails the failOn-th SetProgress (1-based).
type failingProgress struct {
	*fakeStore
	n, failOn int
}

func (f *failingProgress) SetProgress(ctx context.Context, p ipguard.AuditProgress) error {
	f.n++
	if f.n == f.failOn {
		return ipguard.Errorf(ipguard.EUnavailable, "dynamodb down")
	}
	return f.fakeStore.SetProgress(ctx, p)
}

// Each login lands in the archive once: the overlap a window re-reads is
// not written again, a run retried after its cursor save failed rewrites
// its own object, and a backfill writes nothing.
func TestArchiveHoldsEachLoginOnce(t *testing.T) {
	evs := violations(1, 900, t0.Add(-10*time.Minute), 1) // one a second, ten minutes before t0 onwards
	t.Run("consecutive runs with an overlap", func(t *testing.T) {
		s, src, _, _ := newAudit(evs...)
		arc := &fakeArchive{}
		s.Archive = arc
		s.Settings.PieceEvents = 100
		for _, to := range []time.Duration{2 * time.Minute, 4 * time.Minute, 6 * time.Minute} {
			if _, err := s.Run(context.Background(), trig(to)); err != nil {
				t.Fatal(err)
			}
		}
		src.add(at(5000, "alice", 1010, "203.0.113.10", 5*time.Minute+30*time.Second)) // late-written, inside the next overlap
		if _, err := s.Run(context.Background(), trig(8*time.Minute)); err != nil {
			t.Fatal(err)
		}
		got := arc.copies()
		for _, e := range append(evs, at(5000, "", 0, "", 5*time.Minute+30*time.Second)) {
			want := 0
			if e.Date.After(t0.Add(-15*time.Minute)) && !e.Date.After(t0.Add(8*time.Minute)) {
				want = 1
			}
			if e.ID == 5000 {
				want = 0 // dated before the checkpoint it came after: the overlap re-reads it for alerts, the archive has passed that span
			}
			if got[e.ID] != want {
				t.Fatalf("event %d (%s) is in %d objects, want %d", e.ID, e.Date, got[e.ID], want)
			}
		}
	})
	t.Run("a run retried after its cursor save failed", func(t *testing.T) {
		s, _, st, _ := newAudit(evs...)
		arc := &fakeArchive{}
		s.Archive = arc
		s.Settings.PieceEvents = 100
		s.Store = &failingProgress{fakeStore: st, failOn: 3} // 1: the first window's anchor, 2: piece 1's cursor, 3: piece 2's
		if _, err := s.Run(context.Background(), trig(5*time.Minute)); err == nil {
			t.Fatal("the run did not fail")
		}
		objects := len(arc.objects)
		if _, err := s.Run(context.Background(), trig(5*time.Minute)); err != nil {
			t.Fatal(err)
		}
		for id, n := range arc.copies() {
			if n != 1 {
				t.Fatalf("event %d is in %d objects after the retry, want 1", id, n)
			}
		}
		if objects < 2 || arc.calls <= objects {
			t.Fatalf("the failed run wrote %d objects, %d calls in all: the scenario did not happen", objects, arc.calls)
		}
	})
	t.Run("a failed archive write fails the run and the next run writes the piece", func(t *testing.T) {
		s, _, _, pub := newAudit(evs...)
		arc := &fakeArchive{failOn: 2}
		s.Archive = arc
		s.Settings.PieceEvents = 100
		_, err := s.Run(context.Background(), trig(5*time.Minute))
		if ipguard.ErrorCode(err) != ipguard.EUnavailable {
			t.Fatalf("err = %v, want EUnavailable", err)
		}
		if _, err := s.Run(context.Background(), trig(5*time.Minute)); err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			if e.Date.After(t0.Add(-10*time.Minute)) && !e.Date.After(t0.Add(5*time.Minute)) && arc.copies()[e.ID] != 1 {
				t.Fatalf("event %d is in %d objects", e.ID, arc.copies()[e.ID])
			}
		}
		for id, n := range alertedIDs(t, pub.sent) {
			if n != 1 {
				t.Fatalf("event %d alerted %d times", id, n)
			}
		}
	})
	t.Run("a backfill stays out", func(t *testing.T) {
		s, _, _, _ := newAudit(evs...)
		arc := &fakeArchive{}
		s.Archive = arc
		if _, err := s.Run(context.Background(), Trigger{Backfill: true, From: t0.Add(-10 * time.Minute), To: t0}); err != nil {
			t.Fatal(err)
		}
		if arc.calls != 0 {
			t.Errorf("a backfill wrote %d objects", arc.calls)
		}
	})
}

// Each login lands in the login archive once (WHERE-ISSUES-MEET §12), also
// when the Behaviour holds logins (Holder) and the run fails after pieces
// that held them: the cursor stays above the held logins, the next run
// reads them again, and the archive wrote them already with the piece that
// held them; before, the next run wrote them again under its own cursor's
// name, a second copy (attack review of the audit path). Held logins are
// archived with the piece after which the cursor passes them.
func TestArchiveHoldsEachLoginOnceWhileLoginsAreHeld(t *testing.T) {
	for _, tc := range []struct {
		name        string
		failAt, max int // the first run's holding Behaviour
	}{
		{"a run that fails after pieces that held logins", 3, 10000},
		{"one run whose pieces hold logins", 0, 250},
	} {
		t.Run(tc.name, func(t *testing.T) {
			evs := violations(1, 1000, t0.Add(-2*time.Hour), 3)
			s, _, _, _ := newAudit(evs...)
			arc := &fakeArchive{}
			s.Archive = arc
			holdInPieces(s, tc.failAt, tc.max, 100)
			s.Settings.Lookback = 3 * time.Hour
			res, err := s.Run(context.Background(), trig(15*time.Minute))
			if tc.failAt > 0 {
				if err == nil {
					t.Fatal("the run whose third piece failed succeeded")
				}
				s.Behaviour = &holdingBehaviour{max: 10000} // a new process
				res, err = s.Run(context.Background(), trig(15*time.Minute))
			}
			if err != nil || !res.Complete {
				t.Fatalf("last run: %+v, %v", res, err)
			}
			checkArchivedOnce(t, arc, evs)
		})
	}
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
