package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"ipguard/internal/ipguard"
)

// Issue 16 §1: someone who can write about a thousand failed logins within a
// second can hide a login among them if the walk ever claims a second it did
// not read whole. 2,500 rows share one second and the portal orders them
// differently on every request: the cursor never passes a row that was not
// alerted, the run that could not see them all says so (unreadSecond, and
// one coverage_lost message for the episode), and a later run with a larger
// budget finishes the second: every violation is alerted exactly once.
func TestRunNeverClaimsASecondItDidNotReadWhole(t *testing.T) {
	for _, tt := range []struct {
		rows       int
		sweeps     int  // reads over the second per run, at the least
		wantUnread bool // the first run's reads cannot see every row
	}{
		{2500, 8, false}, // the second: 8 sweeps see every row in one run
		{2500, 1, true},  // 40 reads (the old budget) fall short: the cursor waits, the next run doubles them
	} {
		t.Run(fmt.Sprintf("%d rows, %d sweeps", tt.rows, tt.sweeps), func(t *testing.T) {
			defer func(old int) { secondSweeps = old }(secondSweeps)
			secondSweeps = tt.sweeps
			var evs []ipguard.LoginEvent
			evs = append(evs, violations(1, 60, t0.Add(10*time.Minute), 1)...)
			big := t0.Add(8 * time.Minute)
			evs = append(evs, violations(10_000, tt.rows, big, tt.rows)...) // rows of one second
			evs = append(evs, violations(20_000, 40, t0.Add(5*time.Minute), 2)...)
			s, src, st, pub := newAudit(evs...)
			src.shuffle = true
			s.Settings.Concurrency = 1
			runs, unread := 0, 0
			for ; runs < 5; runs++ {
				res, err := s.Run(context.Background(), trig(15*time.Minute))
				if err != nil {
					t.Fatal(err)
				}
				got := alertedIDs(t, pub.sent)
				if c := st.progress.Cursor; c != nil {
					for _, e := range evs {
						if e.Date.After(c.Below) && got[e.ID] == 0 {
							t.Fatalf("run %d: the cursor (below %s) claims event %d of %s, which was never alerted", runs+1, c.Below, e.ID, e.Date)
						}
					}
				}
				if res.UnreadSecond != nil {
					unread++
					if res.Complete || res.UnreadSecond.Second != big.Format(time.RFC3339) || res.UnreadSecond.Rows != tt.rows || res.UnreadSecond.Seen >= tt.rows {
						t.Fatalf("run %d: unread second %+v, complete %v", runs+1, res.UnreadSecond, res.Complete)
					}
					if st.progress.Cursor == nil || !st.progress.Cursor.Below.Equal(big) || st.progress.Cursor.SecondTries != unread {
						t.Fatalf("run %d: the cursor does not wait at the unread second: %+v", runs+1, st.progress.Cursor)
					}
				}
				if res.Complete {
					break
				}
			}
			if runs == 5 {
				t.Fatalf("the second was never read whole in 5 runs")
			}
			if (unread > 0) != tt.wantUnread {
				t.Errorf("%d runs stopped at the second; want some: %v", unread, tt.wantUnread)
			}
			alertedOnce(t, pub.sent, evs, fmt.Sprintf(", want once (after %d runs)", runs+1))
			lost := lostAlerts(t, pub.sent)
			if unread > 0 && (len(lost) != 1 || lost[0].Cause != CauseSecondUnread) {
				t.Errorf("%d runs stopped at the unread second; lost-coverage alerts %+v, want exactly one for the episode", unread, lost)
			}
			if unread == 0 && len(lost) != 0 {
				t.Errorf("lost-coverage alerts %+v for a second read whole", lost)
			}
			if !st.progress.Until.Equal(t0.Add(15*time.Minute)) || st.progress.Cursor != nil {
				t.Errorf("progress %+v", st.progress)
			}
		})
	}
}

// The same with a budget the walk cannot meet in any run (the portal stalls
// after a few requests each time): nothing of the second is ever claimed.
func TestRunOutOfTimeInABigSecondClaimsNothingOfIt(t *testing.T) {
	var evs []ipguard.LoginEvent
	big := t0.Add(8 * time.Minute)
	evs = append(evs, violations(10_000, 1000, big, 1000)...)
	evs = append(evs, violations(20_000, 40, t0.Add(5*time.Minute), 2)...)
	s, src, st, pub := newAudit(evs...)
	src.shuffle = true
	s.Settings.Concurrency = 1
	s.Settings.DeadlineMargin = 100 * time.Millisecond
	for run := 0; run < 3; run++ {
		src.stallAfter(15)
		res := runWithin(t, s, 400*time.Millisecond)
		if res.Complete {
			t.Fatalf("run %d completed with a stalled portal", run+1)
		}
		got := alertedIDs(t, pub.sent)
		c := st.progress.Cursor
		if c == nil || c.Below.Before(big) {
			t.Fatalf("run %d: cursor %+v passed the second that was not read whole", run+1, c)
		}
		for _, e := range evs {
			if e.Date.After(c.Below) && got[e.ID] == 0 {
				t.Fatalf("run %d: cursor claims unalerted event %d", run+1, e.ID)
			}
		}
	}
}

// Issue 16 §2: rows keep arriving above the walk faster than a page per
// request (a password-spraying flood: 120 new rows before every request).
// The walk catches up by doubling and finishes the window within two runs
// of a bounded number of requests each; every violation is alerted once.
func TestRunFinishesTheWindowUnderASteadyFlood(t *testing.T) {
	for _, conc := range []int{1, 4} {
		t.Run(fmt.Sprintf("concurrency %d", conc), func(t *testing.T) {
			evs := violations(1, 3000, t0.Add(-4*time.Minute), 3) // 1,000 seconds, 3 rows each
			s, src, st, pub := newAudit(evs...)
			src.shuffle = true
			s.Settings.Concurrency = conc
			s.Settings.Lookback = 20 * time.Minute
			s.Settings.DeadlineMargin = 100 * time.Millisecond
			next := int64(1_000_000)
			src.beforeCall = func(n int, f *fakeSource) {
				var flood []ipguard.LoginEvent
				for i := 0; i < 120; i++ {
					e := ev(next, guest, 1013, fmt.Sprintf("198.18.%d.%d", next%200, next%250))
					e.Date = t0.Add(20*time.Minute + time.Duration(n)*time.Second) // written while the run reads
					flood = append(flood, e)
					next++
				}
				f.add(flood...)
			}
			runs := 0
			for ; runs < 2; runs++ {
				src.stallAfter(200) // then the portal stalls until the deadline
				res := runWithin(t, s, 3*time.Second)
				if res.Complete {
					break
				}
			}
			if runs == 2 {
				t.Fatalf("the window was not finished within two runs of 200 requests under the flood; progress %+v", st.progress)
			}
			alertedOnce(t, pub.sent, evs, "")
		})
	}
}

// Issue 16 §1 under a flood: rows keep arriving at later seconds (above the
// walk) before every request while the walk reads a second of 2,500 rows,
// ties shuffled on every request, with five successful logins from a
// disallowed address hidden among the failed ones. Positions shift between
// any two requests, so the second's size from positions is only an upper
// bound unless two reads bracket it with no arrival in between.
// Randomized: the flood's rate, its pauses (or its end after the first
// run), the reads per run, the hidden rows, the pages in flight. After
// every run either every hidden login was alerted, or the cursor waits at
// the second (it never passes an unread row) and the result says so; no
// run passes the second with a coverage_lost alert; a later run with a
// larger budget finishes it, and every violation is alerted exactly once.
func TestRunNeverPassesAnUnreadRowOfABigSecondUnderAFlood(t *testing.T) {
	defer func(old int) { secondSweeps = old }(secondSweeps)
	for seed := uint64(1); seed <= 12; seed++ {
		if testing.Short() && seed > 1 {
			break
		}
		rng := rand.New(rand.NewPCG(seed, 16))
		rate := 20 + rng.IntN(100)              // rows written above the walk before a request
		pause := []float64{0, 0.1, 0.3}[seed%3] // chance a request sees no new row (0: the flood ends after run 1)
		secondSweeps = []int{1, 1, 8}[rng.IntN(3)]
		conc := []int{1, 4}[rng.IntN(2)]
		name := fmt.Sprintf("seed %d rate %d pause %.1f sweeps %d conc %d", seed, rate, pause, secondSweeps, conc)

		var evs []ipguard.LoginEvent
		evs = append(evs, violations(1, 60, t0.Add(10*time.Minute), 1)...)
		big := t0.Add(8 * time.Minute)
		const rows = 2500
		hidden := map[int64]bool{}
		for len(hidden) < 5 {
			hidden[int64(10_000+rng.IntN(rows))] = true
		}
		for i := 0; i < rows; i++ {
			id := int64(10_000 + i)
			e := ev(id, guest, 1013, fmt.Sprintf("198.18.%d.%d", 100+i/250, i%250)) // one failed login per address: no burst
			if hidden[id] {
				e = ev(id, "alice", 1010, "198.51.100.7") // allowed only from 203.0.113.10
			}
			e.Date = big
			evs = append(evs, e)
		}
		evs = append(evs, violations(20_000, 40, t0.Add(5*time.Minute), 2)...)
		var mustAlert []int64
		for _, e := range evs {
			if e.UserID == "alice" {
				mustAlert = append(mustAlert, e.ID)
			}
		}

		s, src, st, pub := newAudit(evs...)
		src.shuffle = true
		src.rng = rand.New(rand.NewPCG(seed, 17))
		s.Settings.Concurrency = conc
		next, run := int64(1_000_000), 0
		src.beforeCall = func(n int, f *fakeSource) {
			if pause == 0 && run > 1 || rng.Float64() < pause {
				return
			}
			flood := make([]ipguard.LoginEvent, 0, rate)
			for i := 0; i < rate; i++ {
				e := ev(next, guest, 1013, "198.19.0.1")
				e.Date = t0.Add(20*time.Minute + time.Duration(n)*time.Second) // written while the run reads
				flood = append(flood, e)
				next++
			}
			f.addNewest(flood...)
		}
		start := time.Now()
		done := false
		for run = 1; run <= 8 && !done; run++ {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			calls := src.calls
			res, err := s.Run(ctx, trig(15*time.Minute))
			cancel()
			t.Logf("%s, run %d: %d requests, complete %v, unread %+v, cursor %+v", name, run, src.calls-calls, res.Complete, res.UnreadSecond, st.progress.Cursor)
			if err != nil {
				t.Fatalf("%s, run %d: %v", name, run, err)
			}
			got := alertedIDs(t, pub.sent)
			c := st.progress.Cursor
			if c != nil {
				for _, id := range mustAlert {
					e := evs[0]
					for _, x := range evs {
						if x.ID == id {
							e = x
						}
					}
					if e.Date.After(c.Below) && got[id] == 0 {
						t.Fatalf("%s, run %d: the cursor (below %s) passed event %d of %s, which was never alerted", name, run, c.Below, id, e.Date)
					}
				}
			}
			for _, f := range lostAlerts(t, pub.sent) {
				if f.Cause != CauseSecondUnread {
					t.Fatalf("%s, run %d: coverage_lost %q: the walk passed the second without reading it whole", name, run, f.Cause)
				}
			}
			missed := 0
			for id := range hidden {
				if got[id] == 0 {
					missed++
				}
			}
			if missed > 0 {
				if res.Complete || c == nil || c.Below.Before(big) || res.UnreadSecond == nil || res.UnreadSecond.Second != big.Format(time.RFC3339) {
					t.Fatalf("%s, run %d: %d hidden logins were not alerted and the run does not wait at its second: complete %v, cursor %+v, unread %+v",
						name, run, missed, res.Complete, c, res.UnreadSecond)
				}
			}
			done = res.Complete
		}
		t.Logf("%s: %d runs, %d requests, %s", name, run-1, src.calls, time.Since(start).Round(time.Millisecond))
		if !done {
			t.Fatalf("%s: the window was not finished in 8 runs; progress %+v", name, st.progress)
		}
		got := alertedIDs(t, pub.sent)
		for _, id := range mustAlert {
			if got[id] != 1 {
				t.Fatalf("%s: event %d alerted %d times, want once", name, id, got[id])
			}
		}
	}
}

// Randomized: seconds of one to a few rows, ties shuffled per request or
// not, a few rows written before every request, unreadable rows anywhere.
// Every readable row is handed on exactly once and every unreadable row is
// reported.
func TestWalkRandomizedUnreadableRowsAndArrivals(t *testing.T) {
	base := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	for seed := uint64(1); seed <= 400; seed++ {
		rng := rand.New(rand.NewPCG(seed, 9))
		n := rng.IntN(600) + 1
		var evs []ipguard.LoginEvent
		sec, id := 0, int64(0)
		for i := 0; i < n; i++ {
			if rng.IntN(3) == 0 {
				sec += rng.IntN(3) + 1
			}
			id++
			e := ipguard.LoginEvent{ID: id, Date: base.Add(time.Duration(sec) * time.Second), ActionID: 1006}
			if rng.IntN(25) == 0 {
				e.Unreadable = fmt.Sprintf("bad %d", id)
				e.Raw = json.RawMessage(fmt.Sprintf(`{"id":%d}`, id))
			}
			evs = append(evs, e)
		}
		src := newFakeSource(evs...)
		src.shuffle = rng.IntN(2) == 0
		top := base.Add(time.Duration(sec) * time.Second)
		trickle := rng.IntN(4)
		next := id
		src.beforeCall = func(c int, s *fakeSource) {
			for k := 0; k < trickle; k++ {
				next++
				s.add(ipguard.LoginEvent{ID: next, Date: top.Add(5 * time.Second), ActionID: 1006})
			}
		}
		from := base
		below := top
		for _, conc := range []int{1, 4} {
			warned := map[string]bool{}
			w := &walker{src: undatedSource{src}, from: from, size: PageSize, conc: conc, warn: func(s string) { warned[s] = true }}
			got := map[int64]int{}
			bad := map[int64]bool{}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err := w.walk(ctx, below, func(es []ipguard.LoginEvent, done time.Time, final bool) error {
				for _, e := range es {
					if e.Unreadable != "" {
						bad[e.ID] = true
						continue
					}
					got[e.ID]++
				}
				return nil
			})
			cancel()
			if err != nil {
				t.Errorf("seed %d conc %d: %v", seed, conc, err)
				continue
			}
			for _, e := range evs {
				if e.Unreadable != "" {
					found := false
					for m := range warned {
						if strings.Contains(m, fmt.Sprintf("bad %d;", e.ID)) {
							found = true
						}
					}
					if !found {
						t.Errorf("seed %d conc %d shuffle %v trickle %d: unreadable %d never handed on", seed, conc, src.shuffle, trickle, e.ID)
					}
					continue
				}
				if got[e.ID] != 1 {
					t.Errorf("seed %d conc %d shuffle %v trickle %d: event %d handed on %d times", seed, conc, src.shuffle, trickle, e.ID, got[e.ID])
				}
			}
		}
	}
}

// An unreadable row (no date of its own) wherever it sits against the page
// boundaries, with ties shuffled per request, is reported once and every
// other row is alerted once. (A row right after the anchor of the next page
// used to take the anchor's newer date and fall between two bands.)
func TestRunReportsUnreadableRowsAtPageBoundaries(t *testing.T) {
	for _, conc := range []int{1, 4} {
		for _, pos := range []int{0, 1, 97, 98, 99, 100, 101, 196, 197, 198, 199, 200} {
			evs := violations(1, 300, t0.Add(time.Minute), 3)
			// the row at position pos (newest first) is unreadable
			idx := len(evs) - 1 - pos
			bad := evs[idx]
			bad.Unreadable = fmt.Sprintf("event %d: bad date", bad.ID)
			bad.Raw = json.RawMessage(fmt.Sprintf(`{"id":%d}`, bad.ID))
			evs[idx] = bad
			s, src, st, pub := newAudit(evs...)
			src.shuffle = true
			s.Source = undatedSource{src}
			s.Settings.Concurrency = conc
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			res, err := s.Run(ctx, trig(15*time.Minute))
			cancel()
			if err != nil {
				t.Fatalf("pos %d conc %d: %v", pos, conc, err)
			}
			got := alertedIDs(t, pub.sent)
			for _, e := range evs {
				if e.Unreadable != "" {
					continue
				}
				if got[e.ID] != 1 {
					t.Errorf("pos %d conc %d: event %d alerted %d times", pos, conc, e.ID, got[e.ID])
				}
			}
			if res.WarningCount != 1 || !res.Complete || st.progress.Cursor != nil {
				t.Errorf("pos %d conc %d: result warnings %v complete %v", pos, conc, res.Warnings, res.Complete)
			}
		}
	}
}
