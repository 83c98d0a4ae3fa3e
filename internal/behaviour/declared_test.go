package behaviour

import (
	"strings"
	"testing"
	"time"

	"ipguard/internal/audit"
	"ipguard/internal/ipguard"
)

// alice's allowlist: the shared Berlin office (GeoIP wrongly says New York
// for it), a VPN whose exits move, a home address without place (GeoIP),
// and a branch declared by coordinates (Berlin's; GeoIP says New York).
func placedAllowlists() *audit.Allowlists {
	return alicesAllowlists([]string{"203.0.113.0/24", "192.0.2.0/24", "198.51.100.7", "100.64.0.0/16"},
		map[string]ipguard.EntryDetail{
			"203.0.113.0/24": {Note: "office", Place: "Berlin, DE"},
			"192.0.2.0/24":   {Note: "VPN", Place: PlaceAnywhere},
			"100.64.0.0/16":  {Place: "52.52,13.405"},
		})
}

// alicesAllowlists are the allowlists of the one user alice, with entries
// and their details.
func alicesAllowlists(entries []string, details map[string]ipguard.EntryDetail) *audit.Allowlists {
	return audit.NewAllowlists(map[string]ipguard.User{"alice": {ID: "alice", Email: "alice@example.com", Entries: entries, Details: details}}, nil)
}

func placedPiece(lists *audit.Allowlists, evs ...ipguard.LoginEvent) audit.Piece {
	return audit.Piece{Events: evs, Final: true, Done: t0.Add(-time.Hour), Declared: lists.Declared, Entry: lists.DeclaredEntry}
}

// #21 §4: a login through one of the user's own entries raises nothing by
// itself, but it is a place (the entry's declared place, else GeoIP; none
// for "anywhere") and a time, and the next login too far away too soon
// raises impossible_travel naming both and saying which came through a
// declared entry, in either order (the shared-office takeover).
func TestTravelThroughADeclaredPlace(t *testing.T) {
	const (
		office  = "203.0.113.40" // Berlin office entry; GeoIP: New York (wrong)
		vpn     = "192.0.2.8"    // anywhere
		home    = "198.51.100.7" // no place: GeoIP
		branch  = "100.64.3.3"   // 52.52,13.405
		abroad  = "198.18.0.9"   // not declared
		germany = "Germany"
	)
	ny := func(id int64, d time.Duration, ip string) ipguard.LoginEvent {
		return success(id, "alice", d, ip, "United States", "New York")
	}
	for _, c := range []struct {
		name string
		evs  []ipguard.LoginEvent
		want []string // parts of the impossible_travel reason of the last login; nil: no finding
	}{
		{"office (Berlin) then New York 45 minutes later", []ipguard.LoginEvent{ny(1, 0, office), ny(2, 45*time.Minute, abroad)},
			[]string{"09:00 UTC through the Berlin office entry 203.0.113.0/24, 09:45 UTC from New York, United States", "about 6,400 km apart in 45 minutes", "one of the two is not alice"}},
		{"New York then the office (Berlin) 45 minutes later: the shared-office takeover", []ipguard.LoginEvent{ny(1, 0, abroad), ny(2, 45*time.Minute, office)},
			[]string{"09:00 UTC from New York, United States, 09:45 UTC through the Berlin office entry 203.0.113.0/24", "one of the two is not alice"}},
		{"an anywhere entry is left out of travel (before)", []ipguard.LoginEvent{success(1, "alice", 0, vpn, germany, "Berlin"), ny(2, 45*time.Minute, abroad)}, nil},
		{"an anywhere entry is left out of travel (after)", []ipguard.LoginEvent{ny(1, 0, abroad), success(2, "alice", 45*time.Minute, vpn, germany, "Berlin")}, nil},
		{"an entry without place uses GeoIP", []ipguard.LoginEvent{success(1, "alice", 0, home, germany, "Berlin"), ny(2, 45*time.Minute, abroad)},
			[]string{"09:00 UTC from Berlin, Germany (through the user's own entry 198.51.100.7), 09:45 UTC from New York"}},
		{"an entry without place, GeoIP New York: nothing", []ipguard.LoginEvent{ny(1, 0, home), ny(2, 45*time.Minute, abroad)}, nil},
		{"a place given as coordinates", []ipguard.LoginEvent{ny(1, 0, branch), ny(2, 45*time.Minute, abroad)},
			[]string{"09:00 UTC through the 52.52,13.405 entry 100.64.0.0/16, 09:45 UTC from New York"}},
		{"a genuine journey: the Berlin office, New York 10 hours later", []ipguard.LoginEvent{ny(1, 0, office), ny(2, 10*time.Hour, abroad)}, nil},
		{"a genuine journey back: New York, the Berlin office 10 hours later", []ipguard.LoginEvent{ny(1, 0, abroad), ny(2, 10*time.Hour, office)}, nil},
		{"two declared entries of one city: nothing", []ipguard.LoginEvent{ny(1, 0, office), ny(2, 45*time.Minute, branch)}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			lists := placedAllowlists()
			fs := judge(t, &Detector{Store: newMemStore()}, placedPiece(lists, c.evs...))
			if c.want == nil {
				if len(fs) != 0 {
					t.Fatalf("findings %+v, want none", fs)
				}
				return
			}
			if len(fs) != 1 || fs[0].EventID != c.evs[len(c.evs)-1].ID || fs[0].Kind != audit.KindImpossibleTravel {
				t.Fatalf("findings %+v, want impossible_travel on the last login", fs)
			}
			text := fs[0].Reasons[0].Text
			for _, w := range c.want {
				if !strings.Contains(text, w) {
					t.Errorf("reason %q lacks %q", text, w)
				}
			}
		})
	}
}

// The office login read by one run is what the next run's login is judged
// against (the baseline keeps the sighting with its entry and place).
func TestDeclaredPlaceIsKeptAcrossRuns(t *testing.T) {
	st := newMemStore()
	lists := placedAllowlists()
	office := success(1, "alice", 0, "203.0.113.40", "United States", "New York")
	if fs := judge(t, &Detector{Store: st}, placedPiece(lists, office)); len(fs) != 0 {
		t.Fatalf("the office login alone: %+v", fs)
	}
	if last := st.items["alice"].Last; last == nil || last.Place != "Berlin, DE" || last.Entry != "203.0.113.0/24" || last.Note != "office" {
		t.Fatalf("baseline's last sighting %+v", last)
	}
	later := success(2, "alice", 45*time.Minute, "198.18.0.9", "United States", "New York")
	p := placedPiece(lists, later)
	p.Done = t0
	fs := judge(t, &Detector{Store: st}, p)
	if len(fs) != 1 || !strings.Contains(fs[0].Reasons[0].Text, "through the Berlin office entry 203.0.113.0/24") {
		t.Fatalf("findings %+v", fs)
	}
}

func TestParsePlace(t *testing.T) {
	for _, c := range []struct{ in, want, err string }{
		{"Berlin", "Berlin, DE", ""},
		{"berlin, germany", "Berlin, DE", ""},
		{"Berlin, DE", "Berlin, DE", ""},
		{"São Paulo", "Sao Paulo, BR", ""},
		{"ANYWHERE", "anywhere", ""},
		{"-33.8688,151.2093", "-33.8688,151.2093", ""},
		{"+40.71280001, -74.006", "40.7128,-74.006", ""},
		{"90,180", "90,180", ""},
		{"90.1,0", "", "latitude 90.1"},
		{"0,-181", "", "longitude -181"},
		{"1,2,3", "", "not coordinates"},
		{"NaN,1", "", "not a city"},
		{"1e3,1", "", "not a city"},
		{"Gotham", "", "not a city"},
		{"Berlin, Mars", "", "not in \"Mars\""},
		{" ", "", "is empty"},
	} {
		p, err := ParsePlace(c.in)
		switch {
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%q: %v, want an error with %q", c.in, err, c.err)
		case c.err == "" && (err != nil || p.Canonical != c.want):
			t.Errorf("%q: %q, %v; want %q", c.in, p.Canonical, err, c.want)
		case c.err == "":
			if again, err := ParsePlace(p.Canonical); err != nil || again.Canonical != p.Canonical {
				t.Errorf("%q: the canonical %q does not read back (%q, %v)", c.in, p.Canonical, again.Canonical, err)
			}
		}
	}
}
