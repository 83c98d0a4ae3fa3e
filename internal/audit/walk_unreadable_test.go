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
