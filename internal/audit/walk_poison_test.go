package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

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
