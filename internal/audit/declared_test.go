package audit

import (
	"testing"
	"time"

	"ipguard/internal/ipguard"
)

// DeclaredEntry gives the behaviour hook the entry a login came through
// with its declared place and note (#21 §4): the narrowest entry holding
// the address, only while it counts (a travel entry until its expiry), and
// ok false when the login is not declared.
func TestDeclaredEntryGivesTheEntrysPlace(t *testing.T) {
	at := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	lists := NewAllowlists(map[string]ipguard.User{"u1": {ID: "u1", Email: "a@example.com",
		Entries: []string{"203.0.113.0/24", "203.0.113.40", "198.51.100.7", "192.0.2.0-192.0.2.9"},
		Details: map[string]ipguard.EntryDetail{
			"203.0.113.0/24": {Note: "office", Place: "Berlin, DE"},
			"203.0.113.40":   {Note: "VPN", Place: "anywhere"},
			"198.51.100.7":   {ExpiresAt: at.Add(time.Hour), Note: "hotel", Place: "Lisbon, PT"},
		}}}, nil)
	for _, c := range []struct {
		name string
		ip   string
		at   time.Time
		want DeclaredEntry
		ok   bool
	}{
		{"the office block", "203.0.113.9", at, DeclaredEntry{Entry: "203.0.113.0/24", Note: "office", Place: "Berlin, DE"}, true},
		{"the narrowest entry holding the address", "203.0.113.40", at, DeclaredEntry{Entry: "203.0.113.40", Note: "VPN", Place: "anywhere"}, true},
		{"a travel entry before its expiry", "198.51.100.7", at, DeclaredEntry{Entry: "198.51.100.7", Note: "hotel", Place: "Lisbon, PT"}, true},
		{"a travel entry after its expiry: not declared", "198.51.100.7", at.Add(2 * time.Hour), DeclaredEntry{}, false},
		{"an entry without details", "192.0.2.3", at, DeclaredEntry{Entry: "192.0.2.0-192.0.2.9"}, true},
		{"not an entry", "198.18.0.1", at, DeclaredEntry{}, false},
	} {
		ev := ipguard.LoginEvent{ID: 1, UserID: "u1", ActionID: 1010, Date: c.at, IP: c.ip}
		got, ok := lists.DeclaredEntry(ev)
		if got != c.want || ok != c.ok || ok != lists.Declared(ev) {
			t.Errorf("%s: %+v, %v; want %+v, %v (Declared %v)", c.name, got, ok, c.want, c.ok, lists.Declared(ev))
		}
	}
}
