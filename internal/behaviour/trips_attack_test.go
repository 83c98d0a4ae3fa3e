package behaviour

import (
	"strings"
	"testing"
	"time"

	"ipguard/internal/audit"
	"ipguard/internal/ipguard"
)

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
