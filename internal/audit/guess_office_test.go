package audit

import (
	"fmt"
	"testing"
	"time"

	"ipguard/internal/ipguard"
)

// A busy office NAT: more accounts log in through it within one bucket than
// a record tracks (ipguard.MaxRecordAccounts), and a few of the later ones
// mistype once and get in. Their typos are resolved by their own successes
// like everyone's, so a guest's login from the office (outside any
// allowlist) is not a password guess. Before, every failed login of an
// account beyond the tracked ones counted as an unresolved "other account",
// so five typos at a busy office made each login from it that had a finding
// a critical password_guess_succeeded.
func TestTyposAtABusyOfficeAreNotGuesses(t *testing.T) {
	const office = "198.51.100.20"
	users := map[string][]string{}
	var evs []ipguard.LoginEvent
	start := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	id := int64(1)
	n := ipguard.MaxRecordAccounts + 14
	for i := 0; i < n; i++ {
		u := fmt.Sprintf("user%02d", i)
		users[u] = []string{office}
		at := start.Add(time.Duration(i*15) * time.Second)
		if i < 6 { // the first six mistype once
			f := ipguard.LoginEvent{ID: id, Date: at.Add(-5 * time.Second), Login: u + "@example.com", ActionID: 1013, IP: office}
			evs = append(evs, f)
			id++
		}
		evs = append(evs, ipguard.LoginEvent{ID: id, Date: at, UserID: u, Login: u + "@example.com", ActionID: 1010, IP: office})
		id++
	}
	evs = append(evs, ipguard.LoginEvent{ID: id, Date: start.Add(time.Duration(n*15) * time.Second), UserID: guest, ActionID: 1010, IP: office})
	// The walk reads newest first.
	for i, j := 0, len(evs)-1; i < j; i, j = i+1, j-1 {
		evs[i], evs[j] = evs[j], evs[i]
	}
	fs, err := Evaluate(evs, lists(t, users), Policy{FailedLoginThreshold: 5, UnknownUsers: UnknownDigest})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fs {
		if f.Kind == KindPasswordGuessSucceeded {
			t.Errorf("the guest's login at the office is a password guess: %s", f.Reason)
		}
	}
}
