package audit

import (
	"context"
	"fmt"
	"hash/fnv"
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

// The same office read by 5-minute runs: 40 people mistype once and get in
// within one 10-minute bucket, the first 20 read by one run and the other
// 20 by the next. Each run writes the bucket's record, and the store
// merges the two. The merge keeps every account with its resolution: the
// resolved typos of the second run's people are not counted as "more
// accounts" (before, a merged record kept 16 accounts and counted each
// further one as tried and unresolved, so the guest's login from the
// office a run later was a critical password_guess_succeeded).
func TestTyposAtABusyOfficeReadByTwoRunsAreNotGuesses(t *testing.T) {
	const office = "198.51.100.21"
	var evs []ipguard.LoginEvent
	id := int64(1)
	users := map[string]bool{}
	for i := 0; i < 40; i++ {
		u := fmt.Sprintf("staff%02d", i)
		users[u] = true
		d := 10*time.Minute + time.Duration(i*12)*time.Second
		if i >= 20 {
			d = 15*time.Minute + 30*time.Second + time.Duration((i-20)*12)*time.Second
		}
		f := at(id, "", 1013, office, d-5*time.Second)
		f.Login = u + "@example.com"
		s := at(id+1, u, 1010, office, d)
		s.Login = u + "@example.com"
		evs = append(evs, f, s)
		id += 2
	}
	evs = append(evs, at(id, guest, 1010, office, 21*time.Minute))
	s, _, st, _ := newAudit(evs...)
	for u := range users {
		st.users[u] = ipguard.User{ID: u, Email: u + "@example.com", Entries: []string{office}}
	}
	var now time.Time
	s.Now = func() time.Time { return now }
	guesses, unknown := 0, 0
	for d := 15 * time.Minute; d <= 30*time.Minute; d += 5 * time.Minute {
		now = t0.Add(d + 30*time.Second)
		res, err := s.Run(context.Background(), trig(d))
		if err != nil || !res.Complete {
			t.Fatalf("run to %s: %+v, %v", d, res, err)
		}
		guesses += res.Counts[KindPasswordGuessSucceeded]
		unknown += res.Counts[KindUnknownUser]
	}
	if guesses != 0 || unknown != 1 {
		t.Errorf("%d password guesses and %d unknown-user findings; want the guest's login an unknown user's, no guess", guesses, unknown)
	}
}

// #21 §3: the failures records keep accounts under a hash keyed with the
// deployment's key (Store.AccountHashKey), so that an attacker who knows
// the scheme cannot choose login names whose hashes collide. The same
// failed logins kept by two deployments with different keys share no
// account hash, and neither is the unkeyed FNV-1a of the name; a run
// judges with its store's key (the guess across runs still holds).
func TestAccountsAreKeptUnderTheDeploymentsKeyedHash(t *testing.T) {
	const office = "198.51.100.22"
	var evs []ipguard.LoginEvent
	for i := 0; i < 3; i++ {
		f := at(int64(10+i), "", 1013, office, 11*time.Minute+time.Duration(i)*time.Second)
		f.Login = "alice@example.com"
		evs = append(evs, f)
	}
	// alice's own success from an address outside her allowlist, read by a
	// run that no longer reads the failed attempts (they come from the store).
	ok := at(20, "alice", 1010, office, 24*time.Minute)
	ok.Login = "alice@example.com"
	evs = append(evs, ok)
	hashes := map[string]bool{}
	for _, key := range []string{"deployment one's 32-byte key....", "deployment two's 32-byte key...."} {
		s, _, st, _ := newAudit(evs...)
		st.AccountKey = []byte(key)
		var now time.Time
		s.Now = func() time.Time { return now }
		guesses := 0
		for d := 15 * time.Minute; d <= 25*time.Minute; d += 5 * time.Minute {
			now = t0.Add(d + 30*time.Second)
			res, err := s.Run(context.Background(), trig(d))
			if err != nil || !res.Complete {
				t.Fatalf("run to %s: %+v, %v", d, res, err)
			}
			guesses += res.Counts[KindPasswordGuessSucceeded]
		}
		if guesses != 1 {
			t.Errorf("key %q: %d password guesses; want alice's login after three failed attempts one", key, guesses)
		}
		for _, r := range st.failures[office] {
			for _, x := range r.Accounts {
				if len(x.Failed) > 0 {
					hashes[x.Account] = true
				}
			}
		}
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte("alice@example.com"))
	if len(hashes) != 2 || hashes[fmt.Sprintf("%016x", h.Sum64())] {
		t.Errorf("account hashes kept %v; want one per key, neither the unkeyed FNV-1a", hashes)
	}
}
