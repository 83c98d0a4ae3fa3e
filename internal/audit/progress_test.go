package audit

import (
	"context"
	"fmt"
	"testing"
	"time"

	"ipguard/internal/ipguard"
)

// slowPieceStore is a store whose check of the alerted records takes longer
// than any run has once a piece holds more than maxIDs findings: it waits
// for the run's own deadline (a slow or throttled table, a machine starved
// of CPU). The cost of a piece is what decides, not the machine's speed.
type slowPieceStore struct {
	*fakeStore
	maxIDs int
}

func (s slowPieceStore) Alerted(ctx context.Context, ids []int64, now time.Time) (map[int64]bool, error) {
	if len(ids) > s.maxIDs {
		<-ctx.Done()
		return nil, ipguard.Errorf(ipguard.EUnavailable, "slow table: read %d alerted records: %w", len(ids), ctx.Err())
	}
	return s.fakeStore.Alerted(ctx, ids, now)
}

// A run that cannot finish its first piece must still leave the next run
// able to get further: every violation of a backlog is alerted exactly once
// within a bounded number of runs, and the cursor never claims a login that
// was not alerted. On the code before the fix each run read the same first
// piece, stopped in the same place and saved nothing, run after run.
func TestRunsThatCannotFinishAPieceStillMakeProgress(t *testing.T) {
	for _, tt := range []struct {
		name  string
		setup func(s *Service, src *fakeSource, st *fakeStore)
		// stall runs before each run (the portal stalls after n more calls; 0: never)
		stallAfter int
		within     time.Duration
	}{
		{
			// The deadline comes while the piece is being finished (in
			// Lambda: the invocation is cut off), every time the piece
			// holds more than a page of findings.
			name: "a piece larger than the run can finish",
			setup: func(s *Service, _ *fakeSource, st *fakeStore) {
				s.Store = slowPieceStore{fakeStore: st, maxIDs: 150}
				s.Settings.DeadlineMargin = 100 * time.Millisecond
			},
			within: 500 * time.Millisecond,
		},
		{
			// The portal stops answering after a few pages, so the walk
			// stops at its budget with less than a piece read, to be
			// finished inside the deadline margin. With a margin as long
			// as the function's time (the walk keeps a quarter of it), no
			// message is started in what it keeps: the part read then is
			// never sent, and before the fix nothing was ever committed.
			// Pieces small enough to reach their messages while the walk
			// still reads get through.
			name: "the margin leaves no time to send the last part",
			setup: func(s *Service, _ *fakeSource, _ *fakeStore) {
				s.Settings.DeadlineMargin = time.Second
				s.Settings.Concurrency = 1
			},
			stallAfter: 16,
			within:     time.Second,
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			evs := violations(1, 1500, t0.Add(-2*time.Hour), 3)
			s, src, st, pub := newAudit(evs...)
			src.shuffle = true
			s.Settings.Lookback = 3 * time.Hour
			tt.setup(s, src, st)
			const maxRuns = 30
			runs, still := 0, 0
			var below time.Time
			for ; runs < maxRuns; runs++ {
				if tt.stallAfter > 0 {
					src.stallAfter(tt.stallAfter)
				}
				res := runWithin(t, s, tt.within)
				t.Logf("run %d: complete %v, scanned %d, pages %d, alerts %d, runsWithoutProgress %d, pieceEvents %d, resume %s", runs+1, res.Complete, res.EventsScanned, res.PagesFetched, res.AlertsPublished, res.RunsWithoutProgress, res.PieceEvents, res.ResumeBelow)
				got := alertedIDs(t, pub.sent)
				if c := st.progress.Cursor; c != nil {
					for _, e := range evs {
						if e.Date.After(c.Below) && got[e.ID] == 0 {
							t.Fatalf("run %d: the cursor (below %s) claims event %d of %s, which was never alerted", runs+1, c.Below, e.ID, e.Date)
						}
					}
					if c.Below.Equal(below) {
						still++
					} else {
						still = 0
					}
					below = c.Below
				}
				if still >= 8 {
					t.Fatalf("run %d: the cursor stayed at %s for %d runs in a row; %d of %d violations alerted", runs+1, below, still, len(got), len(evs))
				}
				if res.Complete {
					break
				}
			}
			if runs == maxRuns {
				t.Fatalf("the backlog did not clear in %d runs; progress %+v", maxRuns, st.progress)
			}
			alertedOnce(t, pub.sent, evs, fmt.Sprintf(", want exactly once (after %d runs)", runs+1))
			if !st.progress.Until.Equal(t0.Add(15*time.Minute)) || st.progress.Cursor != nil {
				t.Errorf("progress after the backlog: %+v", st.progress)
			}
		})
	}
}

// A stall is loud. Runs that move nothing while logins wait say so in their
// result (runsWithoutProgress: how many in a row); from NoProgressRuns on,
// the run that begins at such a cursor sends one coverage_lost message
// (cause no_progress) for the episode before it reads, so that it goes out
// even if this run is cut off too, and counts it in loginsNotEvaluated (the
// CoverageLost metric its alarm reads). Once a run gets through, the count
// is 0 again and every violation is alerted exactly once.
func TestRunsThatMoveNothingAreLoud(t *testing.T) {
	evs := violations(1, 600, t0.Add(-2*time.Hour), 3)
	s, src, st, pub := newAudit(evs...)
	src.shuffle = true
	s.Settings.Lookback = 3 * time.Hour
	s.Settings.DeadlineMargin = 100 * time.Millisecond
	slow := slowPieceStore{fakeStore: st, maxIDs: 0} // no piece can be finished
	s.Store = slow
	for _, want := range []struct {
		runsWithoutProgress int
		lost                int // coverage_lost messages sent so far
		notEvaluated        bool
	}{
		{1, 0, false},
		{2, 0, true}, // the second in a row is lost coverage (its alert is cut off with the run)
		{3, 1, true}, // the next run sends it before it reads
		{4, 1, true}, // once for the episode
	} {
		res := runWithin(t, s, 300*time.Millisecond)
		if res.Complete || res.RunsWithoutProgress != want.runsWithoutProgress || (res.LoginsNotEvaluated > 0) != want.notEvaluated {
			t.Fatalf("run %d: complete %v, runsWithoutProgress %d, loginsNotEvaluated %d; want runsWithoutProgress %d (warnings %q)",
				want.runsWithoutProgress, res.Complete, res.RunsWithoutProgress, res.LoginsNotEvaluated, want.runsWithoutProgress, res.Warnings)
		}
		lost := lostAlerts(t, pub.sent)
		if len(lost) != want.lost {
			t.Fatalf("run %d: %d coverage_lost messages, want %d", want.runsWithoutProgress, len(lost), want.lost)
		}
		if len(lost) > 0 && (lost[0].Cause != CauseNoProgress || lost[0].FirstAt != t0.Add(-3*time.Hour+15*time.Minute).Format(time.RFC3339)) {
			t.Errorf("run %d: coverage_lost %+v; want cause %s naming the waiting logins", want.runsWithoutProgress, lost[0], CauseNoProgress)
		}
		got := alertedIDs(t, pub.sent)
		delete(got, 0) // coverage_lost names no event
		if len(got) != 0 {
			t.Fatalf("run %d: %d violations alerted by runs that committed nothing", want.runsWithoutProgress, len(got))
		}
	}
	if c := st.progress.Cursor; c == nil || c.Attempts != 4 || c.Piece != 2000/4/4/4 || !c.Below.Equal(t0.Add(15*time.Minute)) {
		t.Fatalf("cursor after four runs without progress: %+v; want 4 attempts and pieces of a quarter after each run but the first", c)
	}
	slow.maxIDs = 150
	s.Store = slow
	for run := 5; ; run++ {
		if run > 20 {
			t.Fatalf("the backlog did not clear once pieces could be finished again; progress %+v", st.progress.Cursor)
		}
		res := runWithin(t, s, 2*time.Second)
		if res.RunsWithoutProgress != 0 {
			t.Fatalf("run %d moved the cursor but reports %d runs without progress", run, res.RunsWithoutProgress)
		}
		if res.Complete {
			break
		}
	}
	alertedOnce(t, pub.sent, evs, "")
	if lost := lostAlerts(t, pub.sent); len(lost) != 1 {
		t.Errorf("%d coverage_lost messages for one stall, want 1", len(lost))
	}
}

// No message is started with less than the publish floor left. The floor
// is at most the margin the walk keeps, which is at most a quarter of the
// run's time, so a margin set longer than the function's timeout still
// leaves three quarters of it to read and send in (before, a 1 s function
// with AUDIT_DEADLINE_MARGIN at 10 s refused every message: 3 s were
// needed). Where the margin is not cut, the floor is what it was.
func TestPublishFloorFitsTheMarginTheWalkKeeps(t *testing.T) {
	for _, tt := range []struct {
		timeout, margin time.Duration
		floor           time.Duration // want (within a few ms where it follows the time left)
	}{
		{300 * time.Second, 20 * time.Second, 3 * time.Second}, // the shipped function
		{300 * time.Second, 2 * time.Second, time.Second},
		{4 * time.Second, time.Second, 500 * time.Millisecond},
		{4 * time.Second, 2 * time.Second, time.Second},                            // the e2e backlog test: as before
		{4500 * time.Millisecond, 1500 * time.Millisecond, 750 * time.Millisecond}, // the integration backlog test
		{time.Second, 10 * time.Second, 250 * time.Millisecond},
		{5 * time.Second, 20 * time.Second, 1250 * time.Millisecond},
	} {
		t.Run(fmt.Sprintf("%s timeout, %s margin", tt.timeout, tt.margin), func(t *testing.T) {
			s := &Service{Settings: Settings{DeadlineMargin: tt.margin}}
			ctx, cancel := context.WithTimeout(context.Background(), tt.timeout)
			defer cancel()
			_, stop, reserve := s.budget(ctx)
			defer stop()
			floor := s.publishFloor(reserve)
			if reserve <= 0 || reserve > tt.margin || reserve > tt.timeout/4 || floor > reserve || floor > tt.floor || floor < tt.floor-50*time.Millisecond {
				t.Errorf("the walk keeps %s and messages need %s left; want %s, at most what the walk keeps", reserve, floor, tt.floor)
			}
		})
	}
}

// runsWithoutProgress counts runs in a row that moved nothing. A run that
// finished its saved cursor's window and then stopped in the first piece of
// the next window moved the cursor: it is not one of them. Before the fix
// it counted itself at the new window's cursor (attempts 1), so the next
// run read quarter pieces and, if it moved nothing, reported 2 runs in a
// row (lost coverage, no_progress) after a single run without progress.
func TestARunThatFinishedAWindowIsNotARunWithoutProgress(t *testing.T) {
	old := violations(1, 5, t0.Add(-40*time.Minute), 1)
	backlog := violations(100, 600, t0.Add(time.Minute), 3)
	s, src, st, _ := newAudit(append(old, backlog...)...)
	src.shuffle = true
	s.Settings.PieceEvents = 200
	s.Settings.DeadlineMargin = 100 * time.Millisecond
	s.Store = slowPieceStore{fakeStore: st, maxIDs: 150} // the new window's first piece cannot be finished
	*st.progress = ipguard.AuditProgress{Until: t0.Add(-time.Hour),
		Cursor: &ipguard.AuditCursor{From: t0.Add(-65 * time.Minute), To: t0.Add(-30 * time.Minute), Below: t0.Add(-30 * time.Minute)}}

	res := runWithin(t, s, 300*time.Millisecond)
	if res.Complete || !st.progress.Until.Equal(t0.Add(-30*time.Minute)) || res.RunsWithoutProgress != 0 {
		t.Fatalf("run 1: complete %v, runsWithoutProgress %d, progress %+v; want the saved window finished, the next one stopped, no run without progress",
			res.Complete, res.RunsWithoutProgress, st.progress)
	}
	s.Store = slowPieceStore{fakeStore: st, maxIDs: 0} // from now on no piece can be finished
	for run, want := range []int{1, 2} {
		res = runWithin(t, s, 300*time.Millisecond)
		if res.RunsWithoutProgress != want || (res.LoginsNotEvaluated > 0) != (want >= NoProgressRuns) {
			t.Errorf("run %d: runsWithoutProgress %d, loginsNotEvaluated %d; want %d in a row (the run before moved the cursor)",
				run+2, res.RunsWithoutProgress, res.LoginsNotEvaluated, want)
		}
	}
}
