package docspace

import (
	"context"
	"testing"
	"time"
)

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 5, 4, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		header string
		want   time.Duration
		ok     bool
	}{
		{"", 0, false},
		{"3", 3 * time.Second, true},
		{" 0 ", 0, true},
		{"-1", 0, false},
		{"soon", 0, false},
		{"Mon, 04 May 2026 12:00:30 GMT", 30 * time.Second, true},
		{"Mon, 04 May 2026 11:00:00 GMT", 0, true},
		{"99999999999", 24 * time.Hour, true},
	}
	for _, tt := range tests {
		got, ok := retryAfter(tt.header, now)
		if got != tt.want || ok != tt.ok {
			t.Errorf("retryAfter(%q) = %v, %v; want %v, %v", tt.header, got, ok, tt.want, tt.ok)
		}
	}
}

func TestBackoffStaysUnderItsCeiling(t *testing.T) {
	base, max := 100*time.Millisecond, time.Second
	ceilings := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond, time.Second, time.Second}
	for n, ceiling := range ceilings {
		for range 200 {
			if d := backoff(base, max, n+1); d < 0 || d >= ceiling {
				t.Fatalf("backoff(retry %d) = %v, want in [0, %v)", n+1, d, ceiling)
			}
		}
	}
}

func TestSleepRefusesToPassTheDeadline(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if sleep(ctx, time.Hour) {
		t.Error("sleep past the deadline returned true")
	}
	if !sleep(ctx, 0) {
		t.Error("sleep(0) within the deadline returned false")
	}
}
