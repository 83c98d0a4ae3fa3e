package audit

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"ipguard/internal/ipguard"
)

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
