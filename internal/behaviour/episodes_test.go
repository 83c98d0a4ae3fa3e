package behaviour

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"ipguard/internal/audit"
	"ipguard/internal/ipguard"
)

// Networks and cities are bounded like countries; a login learned twice
// counts once.
func TestBaselineKeepsNetworksAndCitiesBounded(t *testing.T) {
	b := &Baseline{}
	for i := 0; i < 80; i++ {
		b.Learn(Login{EventID: int64(i), At: t0.Add(time.Duration(i) * time.Hour), Whole: true, IP: fmt.Sprintf("10.%d.%d.1", i/200, i%200),
			Country: "Germany", City: fmt.Sprintf("City%02d", i), Browser: "Firefox 1", Platform: "Linux"})
	}
	if len(b.Networks) != MaxNetworks || len(b.Cities) != MaxCities {
		t.Fatalf("networks %d cities %d", len(b.Networks), len(b.Cities))
	}
	ip := "10.0.79.1"
	if n := b.NetworkLogins(Network(ip)); n != 1 {
		t.Errorf("network logins %d, want 1", n)
	}
	b.Learn(Login{EventID: 79, At: t0.Add(79 * time.Hour), Whole: true, IP: ip, Country: "Germany", City: "City79"})
	if n := b.NetworkLogins(Network(ip)); n != 1 {
		t.Errorf("the same login learned twice counted %d", n)
	}
	if data, _ := json.Marshal(b); len(data) > 32*1024 {
		t.Errorf("a full baseline is %d bytes", len(data))
	}
	for ip, want := range map[string]string{"80.187.12.9": "80.187.12.0/24", "2001:db8:1:2::5": "2001:db8:1::/48", "::ffff:80.187.12.9": "80.187.12.0/24", "2001:": "", "": ""} {
		if got := Network(ip); got != want {
			t.Errorf("Network(%q) = %q, want %q", ip, got, want)
		}
	}
}

// berlinBaseline: 20 logins from 80.187.12.0/24, Berlin, Chrome on Android.
func berlinBaseline(user string) Baseline {
	b := Baseline{UserID: user}
	for i := 0; i < 20; i++ {
		b.Learn(Login{EventID: int64(500 + i), UserID: user, At: t0.Add(-20*24*time.Hour + time.Duration(i)*24*time.Hour), IP: "80.187.12.5", Whole: true,
			Country: "Germany", City: "Berlin", Browser: "Chrome 120.0", Platform: "Android 14"})
	}
	return b
}

func miss(id int64, user string, d time.Duration, ip, country, city, browser, platform string) (ipguard.LoginEvent, audit.Finding) {
	ev := ipguard.LoginEvent{ID: id, UserID: user, User: user, ActionID: 1010, Action: "Login Success", Date: t0.Add(d), IP: ip, Country: country, City: city,
		Browser: browser, Platform: platform}
	return ev, audit.Finding{EventID: id, UserID: user, IP: ip, Kind: audit.KindIPNotAllowed, Severity: audit.SeverityHigh, Reason: "outside the allowlist"}
}

// When a login outside the allowlist is demoted, kept, or joins an episode.
func TestOutsideAllowlistIsShapedByTheEvidence(t *testing.T) {
	grouped := groupedSettings()
	tests := []struct {
		name      string
		settings  Settings
		ip, city  string
		country   string
		browser   string
		severity  string
		familiar  bool
		digest    bool
		quiet     bool
		reasons   int
		noEpisode bool
	}{
		{"familiar place and device", grouped, "80.187.12.9", "Berlin", "Germany", "Chrome 121.0", audit.SeverityLow, true, true, false, 0, false},
		{"familiar, digest off", Settings{Grouped: true}, "80.187.12.9", "Berlin", "Germany", "Chrome 121.0", audit.SeverityLow, true, false, true, 0, false},
		{"new device", grouped, "80.187.12.9", "Berlin", "Germany", "Firefox 126.0", audit.SeverityHigh, false, false, false, 2, false},
		// A new country on a known device, reachable since the last login:
		// a probable trip, told if the next login does not confirm it (trips.go).
		{"new country", grouped, "80.187.12.9", "Paris", "France", "Chrome 121.0", audit.SeverityLow, false, true, false, 2, false},
		{"new country and new device", grouped, "80.187.12.9", "Paris", "France", "Firefox 126.0", audit.SeverityHigh, false, false, false, 3, false},
		// A carrier's other pool or a VPN's other exit: a new network in the
		// user's city, on their device.
		{"new network in a known city", grouped, "80.187.99.9", "Berlin", "Germany", "Chrome 121.0", audit.SeverityLow, true, true, false, 0, false},
		{"another city on a known network", grouped, "80.187.12.9", "Hamburg", "Germany", "Chrome 121.0", audit.SeverityLow, true, true, false, 0, false},
		{"new network in a new city", grouped, "80.187.99.9", "Hamburg", "Germany", "Chrome 121.0", audit.SeverityHigh, false, false, false, 0, false},
		{"ALERT_MODE=every", Settings{Digest: []string{"low"}}, "80.187.12.9", "Berlin", "Germany", "Chrome 121.0", audit.SeverityHigh, false, false, false, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := newMemStore()
			st.items["alice"] = berlinBaseline("alice")
			d := &Detector{Store: st, Settings: tt.settings}
			ev, f := miss(1, "alice", time.Hour, tt.ip, tt.country, tt.city, tt.browser, "Android 14")
			fs := judge(t, d, piece(ev), f)
			if len(fs) != 1 {
				t.Fatalf("findings %+v", fs)
			}
			g := fs[0]
			if g.Kind != audit.KindIPNotAllowed || g.Severity != tt.severity || (g.Familiar != nil) != tt.familiar || g.Digest != tt.digest ||
				g.NotMessaged != tt.quiet || len(g.Reasons) != tt.reasons || (g.Episode == nil) != tt.noEpisode {
				t.Errorf("finding %+v (episode %+v, familiar %+v)", g, g.Episode, g.Familiar)
			}
			if tt.name == "new network in a known city" && (g.Familiar.Logins != 0 || !strings.Contains(g.Familiar.Line(ev.IP), "a network new to them in a city they log in from")) {
				t.Errorf("familiar by its city: %+v", g.Familiar)
			}
			if tt.familiar && tt.ip == "80.187.12.9" && tt.city == "Berlin" && (g.Familiar.Logins != 20 || g.Familiar.Network != "80.187.12.0/24" || g.Familiar.Place != "Berlin, Germany" || g.Familiar.Device != "Chrome on Android") {
				t.Errorf("familiar %+v", g.Familiar)
			}
		})
	}
}

// Repeats join the episode unless they tell something new (impossible
// travel within the same country); a re-read miss is not counted again;
// episodes per user are bounded.
func TestEpisodeRepeatsAndWhatBreaksThem(t *testing.T) {
	st := newMemStore()
	d := &Detector{Store: st, Settings: groupedSettings()}
	ev1, f1 := miss(1, "bob", 0, "198.51.100.7", "United States", "New York", "Firefox 126.0", "Windows 10")
	ev2, f2 := miss(2, "bob", 2*time.Hour, "198.51.100.8", "United States", "New York", "Firefox 126.0", "Windows 10")
	ev3, f3 := miss(3, "bob", 2*time.Hour+30*time.Minute, "192.0.2.8", "United States", "Los Angeles", "Firefox 126.0", "Windows 10")
	one := judge(t, d, piece(ev1), f1)[0]
	two := judge(t, d, piece(ev2), f2)[0]
	three := judge(t, d, piece(ev3), f3)[0]
	if one.Episode == nil || one.Episode.Repeat || one.Digest || two.Episode == nil || !two.Episode.Repeat || !two.Digest || two.Episode.Count != 2 {
		t.Fatalf("first %+v / second %+v", one.Episode, two.Episode)
	}
	if three.Episode == nil || three.Episode.Repeat || three.Digest || three.Severity != audit.SeverityHigh || len(three.Reasons) != 2 || three.Reasons[1].Kind != audit.KindImpossibleTravel {
		t.Errorf("impossible travel within the episode was held back: %+v %+v", three, three.Episode)
	}
	// The second login read again (an overlap): still a repeat, not counted again.
	again := judge(t, d, piece(ev2), f2)[0]
	if again.Episode == nil || !again.Episode.Repeat || again.Episode.Count != 3 {
		t.Errorf("re-read %+v", again.Episode)
	}
	// 20 countries: at most MaxEpisodes kept.
	for i := 0; i < 20; i++ {
		ev, f := miss(int64(100+i), "carol", time.Duration(i)*time.Minute, fmt.Sprintf("10.%d.0.1", i), fmt.Sprintf("Land%02d", i), "", "Firefox 126.0", "Windows 10")
		judge(t, d, piece(ev), f)
	}
	if n := len(d.episodes["carol"].e.Open); n != MaxEpisodes {
		t.Errorf("carol has %d open episodes, want %d", n, MaxEpisodes)
	}
}

// Episodes are saved after the run's last piece and read back by the next
// detector (a new Lambda container).
func TestEpisodesSurviveTheDetector(t *testing.T) {
	st, eps := newMemStore(), &memEpisodeStore{items: map[string]Episodes{}}
	s := groupedSettings()
	ev1, f1 := miss(1, "bob", 0, "198.51.100.7", "Spain", "Madrid", "Firefox 126.0", "Windows 10")
	judge(t, &Detector{Store: st, EpisodeStore: eps, Settings: s}, piece(ev1), f1)
	if e := eps.items["bob"]; len(e.Open) != 1 || e.Expires(24) != t0.Add(24*time.Hour) {
		t.Fatalf("saved %+v", e)
	}
	ev2, f2 := miss(2, "bob", time.Hour, "198.51.100.9", "Spain", "Madrid", "Firefox 126.0", "Windows 10")
	got := judge(t, &Detector{Store: st, EpisodeStore: eps, Settings: s}, piece(ev2), f2)[0]
	if got.Episode == nil || !got.Episode.Repeat || got.Episode.Count != 2 {
		t.Errorf("second container: %+v", got.Episode)
	}
}

type memEpisodeStore struct{ items map[string]Episodes }

func (m *memEpisodeStore) Episodes(_ context.Context, ids []string) (map[string]Episodes, error) {
	out := map[string]Episodes{}
	for _, id := range ids {
		if e, ok := m.items[id]; ok {
			out[id] = e
		}
	}
	return out, nil
}

func (m *memEpisodeStore) SaveEpisodes(_ context.Context, es []Episodes, _ int) error {
	for _, e := range es {
		m.items[e.UserID] = e
	}
	return nil
}

// An attacker's own alerted logins do not make their network "the user's
// own": a miss told as an alert may make its place familiar later (an
// undeclared trip is told once), but its network is never suggested for
// the allowlist (Familiar.NoSuggestion), nor is a network new to the user;
// a login after guessed passwords makes its place familiar to nothing (its
// return is told again). A network learned from history is suggested.
func TestToldMissesAreNeverSuggestedAndGuessedOnesNeverFamiliar(t *testing.T) {
	s := groupedSettings()
	tests := []struct {
		name         string
		second       time.Duration // the attacker's return
		ip           string
		guessed      bool // the first visit guessed the password (password_guess_succeeded)
		wantFamiliar bool
	}{
		{"return after the episode closed", 30 * time.Hour, "203.0.113.7", false, true},
		{"return a week later", 7 * 24 * time.Hour, "203.0.113.7", false, true},
		{"return from the same network, another address", 40 * time.Hour, "203.0.113.99", false, true},
		{"return from the same city, a new network", 30 * time.Hour, "192.0.2.50", false, true},
		{"return after a guessed password", 30 * time.Hour, "203.0.113.7", true, false},
		{"return after a guessed password, a new network", 30 * time.Hour, "192.0.2.50", true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := newMemStore()
			st.items["alice"] = berlinBaseline("alice")
			ev1, f1 := miss(1, "alice", time.Hour, "203.0.113.7", "France", "Paris", "Firefox 126.0", "Windows 10")
			if tt.guessed {
				f1.Kind, f1.Severity = audit.KindPasswordGuessSucceeded, audit.SeverityCritical
			}
			one := judge(t, &Detector{Store: st, Settings: s}, piece(ev1), f1)[0]
			if one.Familiar != nil || one.Digest || audit.SeverityRank(one.Severity) < audit.SeverityRank(audit.SeverityHigh) {
				t.Fatalf("first visit %+v", one)
			}
			ev2, f2 := miss(2, "alice", tt.second, tt.ip, "France", "Paris", "Firefox 126.0", "Windows 10")
			two := judge(t, &Detector{Store: st, Settings: s}, piece(ev2), f2)[0]
			if (two.Familiar != nil) != tt.wantFamiliar {
				t.Fatalf("return familiar = %v, want %v: %+v", two.Familiar != nil, tt.wantFamiliar, two)
			}
			if two.Familiar != nil && !two.Familiar.NoSuggestion {
				t.Errorf("the attacker's network would be suggested for the allowlist: %+v", two.Familiar)
			}
			if !tt.wantFamiliar && (two.Digest || two.Severity != audit.SeverityHigh) {
				t.Errorf("the return after a guessed password was demoted: %+v", two)
			}
		})
	}
	// A network learned from history is familiar and suggested, again and again.
	st := newMemStore()
	st.items["alice"] = berlinBaseline("alice")
	for i := int64(1); i <= 3; i++ {
		ev, f := miss(i, "alice", time.Duration(i)*30*time.Hour, "80.187.12.9", "Germany", "Berlin", "Chrome 121.0", "Android 14")
		g := judge(t, &Detector{Store: st, Settings: s}, piece(ev), f)[0]
		if g.Familiar == nil || !g.Digest || g.Familiar.NoSuggestion {
			t.Errorf("familiar miss %d: %+v (%+v)", i, g, g.Familiar)
		}
	}
	// A login inside the allowlist from a told network clears it.
	b := berlinBaseline("alice")
	told := Login{EventID: 900, UserID: "alice", At: t0.Add(time.Hour), IP: "203.0.113.7", Whole: true, Country: "France", City: "Paris", Browser: "Firefox 126.0", Platform: "Windows 10"}
	b.LearnTold(told)
	if !b.NetworkTold("203.0.113.0/24") {
		t.Fatal("a told miss did not mark its network")
	}
	told.EventID, told.At = 901, t0.Add(2*time.Hour)
	b.Learn(told)
	if b.NetworkTold("203.0.113.0/24") {
		t.Error("a login inside the allowlist did not clear Told")
	}
}

// Within an episode a reason is "told" for what it says, not only for its
// kind: after the user's trip with a new laptop was told (new country, new
// device), another new device from the same country within the episode is
// a new sign (a stolen password used elsewhere) and is sent, not held back;
// the same new device again is a repeat.
func TestEpisodeTellsAnotherNewDevice(t *testing.T) {
	s := groupedSettings()
	tests := []struct {
		name             string
		browser, system  string
		ip               string
		wantRepeat       bool
		wantReasonsAfter int
	}{
		{"the trip's laptop again", "Firefox 126.0", "Windows 10", "198.51.100.9", true, 0},
		{"another new device", "Safari 17.0", "Mac OS X 14", "192.0.2.44", false, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := newMemStore()
			st.items["alice"] = berlinBaseline("alice")
			d := &Detector{Store: st, Settings: s}
			ev1, f1 := miss(1, "alice", time.Hour, "198.51.100.7", "France", "Paris", "Firefox 126.0", "Windows 10")
			one := judge(t, d, piece(ev1), f1)[0]
			if one.Episode == nil || one.Episode.Repeat || one.Digest || len(one.Reasons) != 3 {
				t.Fatalf("the trip's first login %+v (episode %+v)", one, one.Episode)
			}
			ev2, f2 := miss(2, "alice", 3*time.Hour, tt.ip, "France", "Lyon", tt.browser, tt.system)
			two := judge(t, d, piece(ev2), f2)[0]
			if two.Episode == nil || two.Episode.Repeat != tt.wantRepeat || two.Digest != tt.wantRepeat || len(two.Reasons) != tt.wantReasonsAfter {
				t.Errorf("second login %+v (episode %+v)", two, two.Episode)
			}
		})
	}
}

// An episode that keeps being extended (a network outside the allowlist
// used every day) is told again once it is MaxEpisodeSpan old: it cannot
// hold back the logins of someone else from that network for good.
func TestAnEpisodeEndsAfterItsLongestSpan(t *testing.T) {
	st := newMemStore()
	st.items["alice"] = berlinBaseline("alice")
	d := &Detector{Store: st, Settings: groupedSettings()}
	var told []int
	for day := 0; day < 10; day++ {
		ev, f := miss(int64(10+day), "alice", time.Duration(day)*20*time.Hour, "198.51.100.7", "France", "Paris", "Firefox 126.0", "Windows 10")
		g := judge(t, d, piece(ev), f)[0]
		if g.Episode == nil {
			t.Fatalf("day %d: no episode: %+v", day, g)
		}
		if !g.Episode.Repeat {
			told = append(told, day)
		}
	}
	// Every 20 hours: the episode never closes by EPISODE_HOURS; 7 days
	// after day 0 (168 h) the miss of day 9 (180 h) opens a new one.
	if !slices.Equal(told, []int{0, 9}) {
		t.Errorf("told on days %v, want [0 9]", told)
	}
}
