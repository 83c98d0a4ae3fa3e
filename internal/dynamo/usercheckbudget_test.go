package dynamo_test

import (
	"context"
	"testing"
	"time"

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
