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
