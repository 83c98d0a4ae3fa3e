package audit

import (
	"context"
	"fmt"
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
