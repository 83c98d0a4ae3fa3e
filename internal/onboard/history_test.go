package onboard

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"
)

// fakeHistory records the history calls.
type fakeHistory struct{ calls []string }

func (f *fakeHistory) RecordHistory(_ context.Context, userID, email string, added, removed []string, offboarded bool, at time.Time, keep time.Duration) error {
	f.calls = append(f.calls, fmt.Sprintf("%s +%v -%v offboarded=%v", userID, added, removed, offboarded))
	return nil
}

// Issue 16 §7: every stored change notes when entries started and stopped
// counting, and an offboarding when the user left, so that the audit judges
// a login by the allowlist in force when it happened.
func TestChangesRecordTheAllowlistHistory(t *testing.T) {
	e := newEnv()
	h := &fakeHistory{}
	e.s.History = h
	e.do(t, `{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.10"]}`)
	e.do(t, `{"action":"add","id":"u1","allowedIps":["203.0.113.30"]}`)
	e.do(t, `{"action":"add","id":"u1","allowedIps":["203.0.113.30"]}`) // no change: nothing to note
	e.do(t, `{"action":"remove","id":"u1","allowedIps":["203.0.113.10"]}`)
	e.do(t, `{"action":"offboard","id":"u1"}`)
	want := []string{ // the first entries count from before the history: nothing to note
		"u1 +[203.0.113.30] -[] offboarded=false",
		"u1 +[] -[203.0.113.10] offboarded=false",
		"u1 +[] -[203.0.113.30] offboarded=true",
	}
	if !slices.Equal(h.calls, want) {
		t.Errorf("history calls\n got %q\nwant %q", h.calls, want)
	}
}
