package audit

import (
	"context"
	"strings"
	"testing"
	"time"

	"ipguard/internal/ipguard"
)

func TestMemoryFloor(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	tests := []struct {
		name string
		hist []ipguard.RetentionSince
		keep time.Duration
		want time.Time
	}{
		{"no history: the retention in force", nil, day, now.Add(-day)},
		{"one retention for long", []ipguard.RetentionSince{{Since: now.Add(-30 * day), Keep: day}}, day, now.Add(-day)},
		{"raised to 30 days just now: records of a day ago and older are gone",
			[]ipguard.RetentionSince{{Since: now.Add(-30 * day), Keep: day}, {Since: now, Keep: 30 * day}}, 30 * day, now.Add(-day)},
		{"raised 10 days ago: only records before the raise expired",
			[]ipguard.RetentionSince{{Since: now.Add(-30 * day), Keep: day}, {Since: now.Add(-10 * day), Keep: 30 * day}}, 30 * day, now.Add(-10 * day)},
		{"lowered 2 days ago: the newer records go first",
			[]ipguard.RetentionSince{{Since: now.Add(-30 * day), Keep: 7 * day}, {Since: now.Add(-2 * day), Keep: time.Hour}}, time.Hour, now.Add(-time.Hour)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := memoryFloor(tt.hist, tt.keep, now); !got.Equal(tt.want) {
				t.Errorf("memoryFloor = %s, want %s", got, tt.want)
			}
		})
	}
}

// Issue 16 §8: the backfill's "may repeat" warning is judged by how long
// each record was written to live, not by ALERT_RETENTION now: raised just
// before a backfill (as the README suggests), it does not bring expired
// records back, and the backfill says so.
func TestBackfillWarnsByTheRecordsOwnExpiry(t *testing.T) {
	s, _, st, pub := newAudit(at(1, "alice", 1010, "198.51.100.1", -5*24*time.Hour))
	now := s.now()
	*st.progress = ipguard.AuditProgress{Until: now.Add(-time.Minute), Memory: []ipguard.RetentionSince{{Since: now.Add(-30 * 24 * time.Hour), Keep: 24 * time.Hour}}}
	s.Settings.AlertRetention = 30 * 24 * time.Hour // raised just now
	res, err := s.Run(context.Background(), Trigger{From: t0.Add(-5*24*time.Hour - time.Hour), To: t0.Add(-5*24*time.Hour + time.Hour), Backfill: true})
	if err != nil || len(pub.sent) != 1 {
		t.Fatalf("res %+v err %v", res, err)
	}
	if !strings.Contains(strings.Join(res.Warnings, " "), "before what the alert memory still holds") || !strings.Contains(pub.sent[0].Subject, "may repeat") {
		t.Errorf("no may-repeat warning: %v, subject %q", res.Warnings, pub.sent[0].Subject)
	}
	// A scheduled run notes the new retention in the history.
	if _, err := s.Run(context.Background(), trig(15*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if m := st.progress.Memory; len(m) != 2 || m[1].Keep != 30*24*time.Hour {
		t.Errorf("memory %+v", m)
	}
}
