package behaviour

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"ipguard/internal/audit"
	"ipguard/internal/ipguard"
)

// alice's allowlist for the trip tests: a VPN whose exits move and a
// declared hotel range in Paris.
func tripAllowlists() *audit.Allowlists {
	return alicesAllowlists([]string{"192.0.2.0/24", "100.64.0.0/16"}, map[string]ipguard.EntryDetail{
		"192.0.2.0/24":  {Note: "VPN", Place: PlaceAnywhere},
		"100.64.0.0/16": {Note: "hotel", Place: "Paris, FR"},
	})
}

// tripStep is one login of alice, judged by a run of its own; out: outside
// her allowlist (the audit's ip_not_allowed finding comes with it).
type tripStep struct {
	d                      time.Duration
	ip, country, city, dev string
	out                    bool
}

// want is what a step's run says of its login: "" no finding; "digest" a
// finding for the digest only; "message" a finding sent as a message.
type tripWant struct {
	told     string
	severity string // "": any
	kind     string
	both     bool     // a reason names the trip's login (Reason.EventID)
	text     []string // parts of some reason's text
}

// #21 §2, two looks at a trip: a login outside the allowlist from a new
// country, on a known device, reachable since the last login, is a probable
// trip (low, to the digest); the next placed login confirms it quietly or,
// from elsewhere, is told at high naming both logins.
func TestTwoLooksAtATrip(t *testing.T) {
	const (
		chrome = "Chrome 121.0"
		hotel  = "198.18.7.9"
		home   = "80.187.12.9"
		vpn    = "192.0.2.8"
		paris  = "100.64.3.3" // the declared Paris entry
	)
	grouped := groupedSettings()
	trip := tripStep{time.Hour, hotel, "France", "Paris", chrome, true}
	probable := tripWant{told: "digest", severity: audit.SeverityLow, kind: audit.KindIPNotAllowed, text: []string{"probably a trip; told if the next login does not confirm it"}}
	quiet := tripWant{}
	oneLogin := []string{"(a new country, one login), then", "from Berlin, Germany: a trip of one login, or not alice", "from Paris, France"}
	for _, c := range []struct {
		name     string
		settings Settings
		// history: "learned" (berlinBaseline), "learning" (3 logins of the
		// last 3 days), "unplaced" (20 logins, all through the anywhere entry)
		history string
		steps   []tripStep
		want    []tripWant
	}{
		{"confirmed by the next login from the same country, then home", grouped, "learned",
			[]tripStep{trip, {10 * time.Hour, hotel, "France", "Paris", chrome, true}, {50 * time.Hour, home, "Germany", "Berlin", chrome, false}},
			[]tripWant{probable, {told: "digest", kind: audit.KindIPNotAllowed}, quiet}},
		{"a trip of one login, then home inside the allowlist", grouped, "learned",
			[]tripStep{trip, {50 * time.Hour, home, "Germany", "Berlin", chrome, false}},
			[]tripWant{probable, {told: "message", severity: audit.SeverityHigh, kind: audit.KindNewCountry, both: true, text: oneLogin}}},
		{"a trip of one login, then home outside the allowlist from a familiar place", grouped, "learned",
			[]tripStep{trip, {50 * time.Hour, home, "Germany", "Berlin", chrome, true}},
			[]tripWant{probable, {told: "message", severity: audit.SeverityHigh, kind: audit.KindIPNotAllowed, both: true, text: oneLogin}}},
		{"a trip of one login per country, then home: the next leg, not a contradiction", grouped, "learned",
			[]tripStep{trip, {30 * time.Hour, "198.18.8.8", "Spain", "Madrid", chrome, true}, {60 * time.Hour, home, "Germany", "Berlin", chrome, false}},
			[]tripWant{probable, probable, quiet}},
		{"a trip of one login, then another new country inside the allowlist: the user's own entry is their ground", grouped, "learned",
			[]tripStep{trip, {30 * time.Hour, "80.188.9.9", "Spain", "Madrid", chrome, false}},
			[]tripWant{probable, {told: "message", severity: audit.SeverityHigh, kind: audit.KindNewCountry, both: true, text: []string{"from Paris, France (a new country, one login)"}}}},
		{"a login through an anywhere entry decides nothing", grouped, "learned",
			[]tripStep{trip, {5 * time.Hour, vpn, "Germany", "Berlin", chrome, false}, {50 * time.Hour, home, "Germany", "Berlin", chrome, false}},
			[]tripWant{probable, quiet, {told: "message", severity: audit.SeverityHigh, kind: audit.KindNewCountry, both: true, text: oneLogin}}},
		{"a declared entry in the trip's country confirms it", grouped, "learned",
			[]tripStep{trip, {5 * time.Hour, paris, "United States", "New York", chrome, false}, {50 * time.Hour, home, "Germany", "Berlin", chrome, false}},
			[]tripWant{probable, quiet, quiet}},
		{"back too soon: impossible travel names both", grouped, "learned",
			[]tripStep{{time.Hour, hotel, "Spain", "Madrid", chrome, true}, {90 * time.Minute, home, "Germany", "Berlin", chrome, false}},
			[]tripWant{probable, {told: "message", severity: audit.SeverityHigh, kind: audit.KindImpossibleTravel, both: true, text: []string{"one of the two is not alice"}}}},
		{"a new device too: told at once", grouped, "learned",
			[]tripStep{{time.Hour, hotel, "France", "Paris", "Firefox 126.0", true}, {50 * time.Hour, home, "Germany", "Berlin", chrome, false}},
			[]tripWant{{told: "message", severity: audit.SeverityHigh, kind: audit.KindIPNotAllowed}, quiet}},
		{"not reachable since the last login: told at once", grouped, "learned",
			[]tripStep{{-22 * time.Hour, "198.18.9.9", "Japan", "Tokyo", chrome, true}, {50 * time.Hour, home, "Germany", "Berlin", chrome, false}},
			[]tripWant{{told: "message", severity: audit.SeverityHigh, kind: audit.KindIPNotAllowed, text: []string{"not alice"}}, quiet}},
		{"a user still learning: told at once", grouped, "learning",
			[]tripStep{trip, {50 * time.Hour, home, "Germany", "Berlin", chrome, false}},
			[]tripWant{{told: "message", severity: audit.SeverityHigh, kind: audit.KindIPNotAllowed}, quiet}},
		// A VPN user: every login through the anywhere entry, so no login
		// had a place; an exit in a new country is looked at twice.
		{"an unplaced history: a new exit is a probable trip, confirmed by the next", grouped, "unplaced",
			[]tripStep{{time.Hour, "198.18.5.5", "United Kingdom", "London", chrome, true}, {30 * time.Hour, vpn, "Netherlands", "Amsterdam", chrome, false},
				{50 * time.Hour, "198.18.6.6", "United Kingdom", "London", chrome, true}},
			[]tripWant{{told: "digest", severity: audit.SeverityLow, kind: audit.KindIPNotAllowed, text: []string{"where no earlier login had a place"}}, quiet,
				{told: "digest", kind: audit.KindIPNotAllowed}}},
		{"an unplaced history: a new exit then a placed login elsewhere", grouped, "unplaced",
			[]tripStep{{time.Hour, "198.18.5.5", "United Kingdom", "London", chrome, true}, {30 * time.Hour, vpn, "Netherlands", "Amsterdam", chrome, false},
				{50 * time.Hour, home, "Germany", "Berlin", chrome, false}},
			[]tripWant{{told: "digest", severity: audit.SeverityLow, kind: audit.KindIPNotAllowed}, quiet,
				{told: "message", severity: audit.SeverityHigh, kind: audit.KindNewCountry, both: true, text: []string{"from London, United Kingdom (a new country, one login)"}}}},
		{"ALERT_MODE=every: told at once, nothing pending", Settings{Digest: []string{"low"}}, "learned",
			[]tripStep{trip, {50 * time.Hour, home, "Germany", "Berlin", chrome, false}},
			[]tripWant{{told: "message", severity: audit.SeverityHigh, kind: audit.KindIPNotAllowed, text: []string{"first login from France"}}, quiet}},
	} {
		t.Run(c.name, func(t *testing.T) {
			st := newMemStore()
			b := berlinBaseline("alice")
			switch c.history {
			case "learning":
				b = Baseline{UserID: "alice"}
				for i := 0; i < 3; i++ {
					b.Learn(Login{EventID: int64(500 + i), UserID: "alice", At: t0.Add(-time.Duration(3-i) * 24 * time.Hour), IP: "80.187.12.5", Whole: true,
						Country: "Germany", City: "Berlin", Browser: "Chrome 120.0", Platform: "Android 14"})
				}
			case "unplaced":
				b = Baseline{UserID: "alice"}
				for i := 0; i < 20; i++ {
					b.Learn(Login{EventID: int64(500 + i), UserID: "alice", At: t0.Add(-time.Duration(20-i) * 24 * time.Hour), IP: "192.0.2.8", Whole: true,
						Country: []string{"Netherlands", "Sweden"}[i%2], City: []string{"Amsterdam", "Stockholm"}[i%2], Browser: "Chrome 120.0", Platform: "Android 14",
						Declared: true, Entry: "192.0.2.0/24", EntryPlace: PlaceAnywhere})
				}
				if b.Last != nil || !b.HasCountry("NL") {
					t.Fatalf("an unplaced history: %+v", b)
				}
			}
			st.items["alice"] = b
			d := &Detector{Store: st, Settings: c.settings}
			lists := tripAllowlists()
			for i, s := range c.steps {
				id := int64(i + 1)
				ev, f := miss(id, "alice", s.d, s.ip, s.country, s.city, s.dev, "Android 14")
				var in []audit.Finding
				if s.out {
					in = append(in, f)
				}
				fs := judge(t, d, placedPiece(lists, ev), in...)
				w := c.want[i]
				if w.told == "" {
					if len(fs) != 0 {
						t.Fatalf("login %d: findings %+v, want none", id, fs)
					}
					continue
				}
				if len(fs) != 1 {
					t.Fatalf("login %d: findings %+v, want one", id, fs)
				}
				g := fs[0]
				told := "message"
				if g.Digest || g.NotMessaged {
					told = "digest"
				}
				if g.EventID != id || told != w.told || (w.severity != "" && g.Severity != w.severity) || g.Kind != w.kind {
					t.Errorf("login %d: %s %s %s, want %s %s %s (%+v)", id, told, g.Severity, g.Kind, w.told, w.severity, w.kind, g)
				}
				both := false
				for _, r := range g.Reasons {
					both = both || r.EventID == 1
				}
				if both != w.both {
					t.Errorf("login %d: reasons %+v (want one naming the trip's login: %v)", id, g.Reasons, w.both)
				}
				var texts []string
				for _, r := range g.Reasons {
					texts = append(texts, r.Text)
				}
				all := strings.Join(texts, " | ")
				if (g.Trip != nil) != (w.severity == audit.SeverityLow && w.told == "digest") {
					t.Errorf("login %d: probable trip %+v", id, g.Trip)
				}
				for _, part := range w.text {
					if !strings.Contains(all, part) {
						t.Errorf("login %d: reasons %q lack %q", id, all, part)
					}
				}
			}
			if got := st.items["alice"].Trip; got != nil {
				t.Errorf("a trip still pending after the last login: %+v", got)
			}
		})
	}
}

// A pending trip is kept in the baseline across runs (a new detector, a
// new container) and stays small.
func TestAPendingTripIsKeptInTheBaseline(t *testing.T) {
	st := newMemStore()
	st.items["alice"] = berlinBaseline("alice")
	s := groupedSettings()
	lists := tripAllowlists()
	ev, f := miss(7, "alice", time.Hour, "198.18.7.9", "Nigeria", "Lagos", "Chrome 121.0", "Android 14")
	judge(t, &Detector{Store: st, Settings: s}, placedPiece(lists, ev), f)
	if p := st.items["alice"].Trip; p == nil || p.EventID != 7 || p.Country != "NG" {
		t.Fatalf("pending trip %+v", p)
	}
	home := success(8, "alice", 60*time.Hour, "80.187.12.9", "Germany", "Berlin")
	home = onPhone(home)
	fs := judge(t, &Detector{Store: st, Settings: s}, placedPiece(lists, home))
	if len(fs) != 1 || fs[0].Severity != audit.SeverityHigh || fs[0].EventID != 8 || fs[0].Reasons[0].EventID != 7 ||
		!strings.Contains(fs[0].Reasons[0].Text, "from Lagos, Nigeria (a new country, one login)") {
		t.Fatalf("findings %+v", fs)
	}
}

// A backlog read newest first (several pieces of one run): the user's
// logins are held for the run's last piece and judged in time order, so
// the trip's login and its next login are told as one piece (or short
// runs) tells them (#21 §3); a pending trip is decided only by the run's
// last (oldest) piece, never by a newer piece ahead of the logins between.
func TestTripsInABacklogReadNewestFirst(t *testing.T) {
	s := groupedSettings()
	lists := tripAllowlists()
	st := newMemStore()
	st.items["alice"] = berlinBaseline("alice")
	d := &Detector{Store: st, Settings: s}
	home := onPhone(success(2, "alice", 50*time.Hour, "80.187.12.9", "Germany", "Berlin"))
	trip, f := miss(1, "alice", time.Hour, "198.18.7.9", "France", "Paris", "Chrome 121.0", "Android 14")
	newer := placedPiece(lists, home)
	newer.Final, newer.Done = false, t0.Add(49*time.Hour)
	if fs := judge(t, d, newer); len(fs) != 0 {
		t.Fatalf("newer piece: %+v", fs)
	}
	fs := judge(t, d, placedPiece(lists, trip), f)
	one := newMemStore()
	one.items["alice"] = berlinBaseline("alice")
	want := judge(t, &Detector{Store: one, Settings: s}, placedPiece(lists, trip, home), f)
	told := func(fs []audit.Finding) string {
		out := ""
		for _, f := range sortedByEvent(fs) {
			out += fmt.Sprintf("%d %s %s digest %v %v|", f.EventID, f.Kind, f.Severity, f.Digest, reasonKinds(f))
		}
		return out
	}
	if told(fs) != told(want) {
		t.Fatalf("the backlog in two pieces told %s; one piece tells %s", told(fs), told(want))
	}
	if st.items["alice"].Trip != nil {
		t.Errorf("a trip left pending: %+v", st.items["alice"].Trip)
	}

	// A trip pending from an earlier run; the next run's pieces newest
	// first: Berlin (newer piece) does not decide it, Paris (the oldest
	// piece, the true next login) confirms it.
	st = newMemStore()
	st.items["alice"] = berlinBaseline("alice")
	judge(t, &Detector{Store: st, Settings: s}, placedPiece(lists, trip), f)
	d = &Detector{Store: st, Settings: s}
	berlin := onPhone(success(3, "alice", 60*time.Hour, "80.187.12.9", "Germany", "Berlin"))
	paris, pf := miss(4, "alice", 10*time.Hour, "198.18.7.10", "France", "Paris", "Chrome 121.0", "Android 14")
	newer = placedPiece(lists, berlin)
	newer.Final, newer.Done = false, t0.Add(59*time.Hour)
	if fs := judge(t, d, newer); len(fs) != 0 {
		t.Fatalf("a newer piece decided the trip: %+v", fs)
	}
	older := placedPiece(lists, paris)
	older.Done = t0.Add(9 * time.Hour)
	if fs := judge(t, d, older, pf); len(fs) != 1 || !(fs[0].Digest || fs[0].NotMessaged) {
		t.Fatalf("the confirming login: %+v", fs)
	}
	if st.items["alice"].Trip != nil {
		t.Errorf("the trip is still pending: %+v", st.items["alice"].Trip)
	}
}

// groupedSettings is what the episode and trip tests judge by: findings
// grouped into episodes of 24 hours, low severity to the digest.
func groupedSettings() Settings {
	return Settings{Grouped: true, EpisodeHours: 24, Digest: []string{"low"}}
}

// onPhone is ev from alice's phone (Chrome 121.0 on Android 14), the
// browser and platform the trip tests' misses carry.
func onPhone(ev ipguard.LoginEvent) ipguard.LoginEvent {
	ev.Browser, ev.Platform = "Chrome 121.0", "Android 14"
	return ev
}

// A pending trip whose only deciding login of a run is in a newer piece
// than the run's last (a backlog, a busy portal: pieces come newest first)
// is still decided by the run: the oldest placed login after the trip that
// the run judged decides it at the run's last piece. Before, that login
// decided nothing and was learned, so the thief's next login from the
// trip's country "confirmed" the trip quietly and the victim's login back
// home was never told.
func TestATripIsDecidedByALoginInAnEarlierPieceOfTheRun(t *testing.T) {
	s := groupedSettings()
	lists := tripAllowlists()
	for _, c := range []struct {
		name string
		// the run's pieces after the trip's run, newest first; the last is final
		pieces [][]ipguard.LoginEvent
		// want: the run's finding naming the trip (a contradiction), or none
		contradiction bool
	}{
		{"home in a newer piece, the last piece holds another user", [][]ipguard.LoginEvent{
			{onPhone(success(3, "alice", 60*time.Hour, "80.187.12.9", "Germany", "Berlin"))},
			{success(9, "bob", 50*time.Hour, "80.187.12.9", "Germany", "Berlin")},
		}, true},
		{"home in the middle piece of three", [][]ipguard.LoginEvent{
			{success(10, "bob", 70*time.Hour, "80.187.12.9", "Germany", "Berlin")},
			{onPhone(success(3, "alice", 60*time.Hour, "80.187.12.9", "Germany", "Berlin"))},
			{success(9, "bob", 50*time.Hour, "80.187.12.9", "Germany", "Berlin")},
		}, true},
		{"the same country in a newer piece confirms it", [][]ipguard.LoginEvent{
			{onPhone(success(3, "alice", 20*time.Hour, "100.64.3.3", "France", "Paris"))},
			{success(9, "bob", 10*time.Hour, "80.187.12.9", "Germany", "Berlin")},
		}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			st := newMemStore()
			st.items["alice"] = berlinBaseline("alice")
			st.items["bob"] = berlinBaseline("bob")
			trip, f := miss(1, "alice", time.Hour, "198.18.7.9", "France", "Paris", "Chrome 121.0", "Android 14")
			judge(t, &Detector{Store: st, Settings: s}, placedPiece(lists, trip), f)
			if st.items["alice"].Trip == nil {
				t.Fatal("no pending trip")
			}
			d := &Detector{Store: st, Settings: s}
			var all []audit.Finding
			for i, evs := range c.pieces {
				p := placedPiece(lists, evs...)
				p.Done = evs[0].Date.Add(-time.Minute)
				p.Final = i == len(c.pieces)-1
				all = append(all, judge(t, d, p)...)
			}
			var named []audit.Finding
			for _, g := range all {
				for _, r := range g.Reasons {
					if r.EventID == 1 {
						named = append(named, g)
					}
				}
			}
			if c.contradiction {
				if len(named) != 1 || named[0].EventID != 3 || named[0].Severity != audit.SeverityHigh || named[0].Digest || named[0].NotMessaged ||
					!strings.Contains(named[0].Reasons[len(named[0].Reasons)-1].Text, "a trip of one login, or not alice") {
					t.Fatalf("findings %+v, want login 3 told at high naming the trip", all)
				}
			} else if len(named) != 0 {
				t.Fatalf("findings %+v, want none naming the trip", all)
			}
			if st.items["alice"].Trip != nil {
				t.Errorf("the trip is still pending after a run that held its deciding login: %+v", st.items["alice"].Trip)
			}
		})
	}
}

// A backlog read newest first, the thief's login in a newer piece than the
// victim's login just before it: the thief's login, judged against the
// baseline's older last login, looks reachable and is told to the digest as
// a probable trip; the impossible pair found once the older piece is read
// must still be a message. Before, it was a finding on the thief's login,
// already recorded (as a digest line), so the audit dropped it: a flood of
// failed logins that splits the run into pieces turned a takeover into a
// digest line. Read in one piece the same logins give a message.
func TestImpossibleTravelBehindAProbableTripInANewerPiece(t *testing.T) {
	s := groupedSettings()
	lists := tripAllowlists()
	home := success(2, "alice", 60*time.Minute, "80.187.12.9", "Germany", "Berlin")
	home = onPhone(home)
	thief, f := miss(3, "alice", 90*time.Minute, "198.18.7.9", "Spain", "Madrid", "Chrome 121.0", "Android 14")
	for _, c := range []struct {
		name   string
		pieces int
	}{{"one piece", 1}, {"two pieces, newest first", 2}} {
		t.Run(c.name, func(t *testing.T) {
			st := newMemStore()
			st.items["alice"] = berlinBaseline("alice")
			d := &Detector{Store: st, Settings: s}
			var all []audit.Finding
			if c.pieces == 1 {
				all = judge(t, d, placedPiece(lists, home, thief), f)
			} else {
				newer := placedPiece(lists, thief)
				newer.Final, newer.Done = false, thief.Date.Add(-time.Minute)
				all = append(all, judge(t, d, newer, f)...)
				recorded := map[int64]bool{}
				for _, g := range all {
					recorded[g.EventID] = true
				}
				older := placedPiece(lists, home)
				older.Done = home.Date.Add(-time.Minute)
				later := judge(t, d, older)
				// What the audit does: a finding on an event already
				// recorded (a message or a digest line) is dropped.
				for _, g := range later {
					if !recorded[g.EventID] {
						all = append(all, g)
					}
				}
			}
			told := false
			for _, g := range all {
				for _, r := range g.Reasons {
					if r.Kind == RuleImpossibleTravel && !g.Digest && !g.NotMessaged && g.Severity == audit.SeverityHigh &&
						(g.EventID == 3 && r.EventID == 2 || g.EventID == 2 && r.EventID == 3) {
						told = true
					}
				}
			}
			if !told {
				t.Fatalf("findings %+v: want the impossible pair Berlin→Madrid told as a message", all)
			}
			if st.items["alice"].Trip != nil {
				t.Errorf("the thief's login is still a pending trip: %+v", st.items["alice"].Trip)
			}
		})
	}
}

// pairs are the impossible_travel reasons of findings as "login←other":
// the login the finding is on and the other login of its pair.
func pairs(fs []audit.Finding) []string {
	var out []string
	for _, f := range fs {
		for _, r := range f.Reasons {
			if r.Kind == RuleImpossibleTravel {
				out = append(out, fmt.Sprintf("%d←%d", f.EventID, r.EventID))
			}
		}
	}
	slices.Sort(out)
	return out
}

// #21 §4: an impossible pair is two logins, either of which may be the
// takeover's. When a thief's login is the user's last login, the user's
// own next login is the one that is "too far too soon": its finding must
// name the thief's login (Reason.EventID), not only say it in words, so
// that whoever reads the finding (a SIEM, the evaluation's scoring) sees
// which two logins it is about. The pair is named however the logins are
// cut into runs and pieces; genuine journeys (flight time plus the ground)
// raise nothing.
func TestImpossiblePairNamesBothLogins(t *testing.T) {
	const (
		office = "203.0.113.40" // alice's Berlin office entry (GeoIP: New York, wrong)
		thief  = "198.18.0.9"
		hotel  = "198.18.7.7"
	)
	jakarta := func(id int64, d time.Duration) ipguard.LoginEvent {
		return success(id, "alice", d, thief, "Indonesia", "Jakarta")
	}
	atOffice := func(id int64, d time.Duration) ipguard.LoginEvent {
		return success(id, "alice", d, office, "United States", "New York")
	}
	singapore := func(id int64, d time.Duration) ipguard.LoginEvent {
		return success(id, "alice", d, hotel, "Singapore", "Singapore")
	}
	// how the logins are read: "one piece", "runs" (one run each), or
	// "newest first" (one run, one piece each, the newest first).
	for _, c := range []struct {
		name string
		how  string
		evs  []ipguard.LoginEvent
		want []string
	}{
		{"a thief in Jakarta, alice at the office 44 minutes later: her login names the thief's", "one piece",
			[]ipguard.LoginEvent{jakarta(1, 0), atOffice(2, 44*time.Minute)}, []string{"2←1"}},
		{"the same, each login read by its own run", "runs",
			[]ipguard.LoginEvent{jakarta(1, 0), atOffice(2, 44*time.Minute)}, []string{"2←1"}},
		{"the same, read newest first in pieces of one run", "newest first",
			[]ipguard.LoginEvent{jakarta(1, 0), atOffice(2, 44*time.Minute)}, []string{"2←1"}},
		{"alice at the office, the thief in Jakarta, alice at the office: both the thief's login and hers are told, each naming the other", "runs",
			[]ipguard.LoginEvent{atOffice(1, 0), jakarta(2, 30*time.Minute), atOffice(3, 74*time.Minute)}, []string{"2←1", "3←2"}},
		{"the shared-office takeover 90 minutes after Singapore, then alice in Singapore again", "runs",
			[]ipguard.LoginEvent{singapore(1, 0), atOffice(2, 90*time.Minute), singapore(3, 6*time.Hour)}, []string{"2←1", "3←2"}},
		{"the same in one piece", "one piece",
			[]ipguard.LoginEvent{singapore(1, 0), atOffice(2, 90*time.Minute), singapore(3, 6*time.Hour)}, []string{"2←1", "3←2"}},
		{"the same read newest first", "newest first",
			[]ipguard.LoginEvent{singapore(1, 0), atOffice(2, 90*time.Minute), singapore(3, 6*time.Hour)}, []string{"2←1", "3←2"}},
		{"a genuine journey (Berlin office, Singapore 20 hours later, the office 30 hours after): nothing", "runs",
			[]ipguard.LoginEvent{atOffice(1, 0), singapore(2, 20*time.Hour), atOffice(3, 50*time.Hour)}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			lists := placedAllowlists()
			d := &Detector{Store: newMemStore()}
			var fs []audit.Finding
			switch c.how {
			case "one piece":
				fs = judge(t, d, placedPiece(lists, c.evs...))
			case "runs":
				for _, ev := range c.evs {
					p := placedPiece(lists, ev)
					p.Done = ev.Date.Add(-time.Minute)
					fs = append(fs, judge(t, d, p)...)
				}
			case "newest first":
				for i := len(c.evs) - 1; i >= 0; i-- {
					p := placedPiece(lists, c.evs[i])
					p.Done, p.Final = c.evs[i].Date.Add(-time.Minute), i == 0
					out, err := d.Judge(t.Context(), p, nil)
					if err != nil {
						t.Fatal(err)
					}
					fs = append(fs, out...)
				}
				if err := d.Settle(t.Context()); err != nil {
					t.Fatal(err)
				}
			}
			if got := pairs(fs); !slices.Equal(got, c.want) {
				t.Fatalf("impossible pairs %v, want %v (findings %+v)", got, c.want, fs)
			}
			for _, f := range fs {
				if f.Kind == RuleImpossibleTravel && !strings.Contains(f.Reasons[0].Text, "one of the two is not alice") {
					t.Errorf("reason %q", f.Reasons[0].Text)
				}
			}
		})
	}
}
