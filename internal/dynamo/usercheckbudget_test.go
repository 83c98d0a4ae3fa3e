package dynamo_test

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"ipguard/internal/docspace"
	"ipguard/internal/onboard"
)

// The users-left rotation's item keeps, with its place, the check's
// failure last alerted and the blast radius's budget (users offboarded in
// the current pass, since when, when a sync last found too many): a cold
// start or another container goes on with them.
func TestUserCheckCursorKeepsTheNoticeAndTheBudget(t *testing.T) {
	ctx := context.Background()
	s := tableStore(t, motoDB(t), "allowlist-usercheck-budget")
	at := time.Date(2026, 12, 4, 9, 15, 0, 0, time.UTC)
	want := onboard.CheckCursor{After: "user-0042", At: at, Notice: "ConfigurationError",
		Offboarded: 7, OffboardedSince: at.Add(-time.Hour), Halted: at.Add(-time.Minute)}
	if err := s.SaveUserCheckCursor(ctx, want); err != nil {
		t.Fatal(err)
	}
	got, err := s.UserCheckCursor(ctx)
	if err != nil || got.After != want.After || !got.At.Equal(want.At) || got.Notice != want.Notice || got.Offboarded != want.Offboarded ||
		!got.OffboardedSince.Equal(want.OffboardedSince) || !got.Halted.Equal(want.Halted) {
		t.Errorf("cursor = %+v, %v; want %+v", got, err, want)
	}
}

// The portal's request budget (#17): containers reserving tokens of one
// window at once are granted together exactly the window's max, never
// more; a refused chunk is followed by what is left; a used-up window
// grants 0 with no error; another window has its own count; the item
// expires a few minutes after its window.
func TestRequestBudgetGrantsAWindowsTokensAtMostOnce(t *testing.T) {
	ctx := context.Background()
	db := motoDB(t)
	s := tableStore(t, db, "allowlist-request-budget")
	var _ docspace.RequestBudget = s
	w := time.Date(2026, 12, 5, 4, 0, 10, 0, time.UTC)
	const max, chunk, containers = 171, 16, 12 // 12 containers of 16 ask for more than 171
	var mu sync.Mutex
	total := 0
	var wg sync.WaitGroup
	for range containers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				g, err := s.Reserve(ctx, w, chunk, max)
				if err != nil {
					t.Error(err)
					return
				}
				if g < 0 || g > chunk {
					t.Errorf("granted %d of %d", g, chunk)
				}
				mu.Lock()
				total += g
				mu.Unlock()
				if g == 0 {
					return
				}
			}
		}()
	}
	wg.Wait()
	if total != max {
		t.Errorf("the containers were granted %d tokens of a window of %d, want exactly %d", total, max, max)
	}
	pk := "budget#portal#" + strconv.FormatInt(w.Unix(), 10)
	assertItem(t, "window", getItem(t, db, s, pk), map[string]string{"n": strconv.Itoa(max), "expiresAt": strconv.FormatInt(w.Add(5*time.Minute).Unix(), 10)})

	// A window with 3 left: a chunk of 4 is refused and 3 granted instead.
	w2 := w.Add(docspace.BudgetWindow)
	if g, err := s.Reserve(ctx, w2, 7, 10); g != 7 || err != nil {
		t.Fatalf("first chunk of a new window: %d, %v; want 7", g, err)
	}
	if g, err := s.Reserve(ctx, w2, 4, 10); g != 3 || err != nil {
		t.Errorf("4 asked with 3 left: %d, %v; want 3", g, err)
	}
	if g, err := s.Reserve(ctx, w2, 4, 10); g != 0 || err != nil {
		t.Errorf("a used-up window: %d, %v; want 0, nil", g, err)
	}
}
