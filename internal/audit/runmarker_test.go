package audit

import (
	"context"
	"slices"
	"testing"
	"time"
)

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
