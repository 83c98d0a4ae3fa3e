package audit

import (
	"testing"
	"time"

	"ipguard/internal/allowlist"
	"ipguard/internal/ipguard"
)

// A time-bound ("travel mode") entry allows logins before its expiry only,
// even while the stored record still holds it (before a reconcile moved it).
func TestTimeBoundEntryAllowsOnlyLoginsBeforeItsExpiry(t *testing.T) {
	exp := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	u := ipguard.User{ID: "u1", Email: "a@example.com", Entries: []string{"203.0.113.10", "198.51.100.7"},
		Details: map[string]ipguard.EntryDetail{"198.51.100.7": {ExpiresAt: exp, Note: "trip"}}}
	ul := NewAllowlists(map[string]ipguard.User{"u1": u}, nil).users["u1"]
	tests := []struct {
		ip   string
		at   time.Time
		want bool
	}{
		{"203.0.113.10", exp.Add(24 * time.Hour), true},
		{"198.51.100.7", exp.Add(-time.Second), true},
		{"198.51.100.7", exp, false},
		{"198.51.100.7", exp.Add(time.Hour), false},
	}
	for _, tt := range tests {
		addr, _ := allowlist.ParseLoginIP(tt.ip)
		if got := ul.allows(addr, tt.at); got != tt.want {
			t.Errorf("allows(%s, %s) = %v, want %v", tt.ip, tt.at.Format(time.RFC3339), got, tt.want)
		}
	}
}
