package audit

import (
	"context"
	"fmt"
	"hash/fnv"
	"testing"
	"time"

	"ipguard/internal/ipguard"
)

// #21: password_guess_succeeded tells a typo from guessing. A typo is the
// account's own one or two failed attempts resolved by its own success
// from the same address, also at an address many people share (an office
// NAT, a guest network); guessing is GuessMinFailures failed attempts on
// the account that got in, or failed attempts on GuessMinAccounts other
// accounts that no success of theirs resolved (credential stuffing). Each
// case is judged the same whether the events come in one piece, one piece
// per event newest first (the walk's order), or in two runs cut anywhere,
// the second re-reading an overlap, with what the first kept.
func TestGuessingIsToldFromTypos(t *testing.T) {
	const nat = "198.18.7.1" // outside every list: a success from it is a finding
	base := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	type step struct {
		user, login string // a failed login: login typed (user "" unless the portal knows it)
		ok          bool   // a successful login of user
		at          time.Duration
	}
	fail := func(login string, at time.Duration) step { return step{login: login, at: at} }
	ok := func(user string, at time.Duration) step {
		return step{user: user, login: user + "@example.com", ok: true, at: at}
	}
	many := func(n int, from time.Duration, name string) []step {
		var out []step
		for i := 0; i < n; i++ {
			out = append(out, fail(fmt.Sprintf("%s%d@example.com", name, i), from+time.Duration(i)*12*time.Second))
		}
		return out
	}
	cat := func(parts ...[]step) []step {
		var out []step
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	tests := []struct {
		name  string
		steps []step // the last is the login judged
		want  string
	}{
		{"a typo of one account at a shared NAT, colleagues logging in around it",
			[]step{ok("bob", 0), fail("alice@example.com", 2*time.Minute), ok("carol", 3*time.Minute), fail("alice@example.com", 3*time.Minute+30*time.Second), ok("alice", 4*time.Minute)},
			KindIPNotAllowed},
		{"two users' typos at one NAT within the window, interleaved",
			[]step{fail("bob@example.com", time.Minute), fail("alice@example.com", 2*time.Minute), fail("bob@example.com", 2*time.Minute+10*time.Second),
				ok("bob", 3*time.Minute), fail("alice@example.com", 4*time.Minute), ok("alice", 5*time.Minute)},
			KindIPNotAllowed},
		{"a guest's typo (not onboarded)",
			[]step{fail("guest.person@partner.example", time.Minute), fail("guest.person@partner.example", 90*time.Second), {user: "guest-7", login: "guest.person@partner.example", ok: true, at: 2 * time.Minute}},
			KindUnknownUser},
		{"a busy NAT: six colleagues' typos, each resolved by its own success, then one more login",
			cat(func() []step {
				var out []step
				for i, u := range []string{"u1", "u2", "u3", "u4", "u5", "u6"} {
					at := time.Duration(i) * time.Minute
					out = append(out, fail(u+"@example.com", at), ok(u, at+20*time.Second))
				}
				return out
			}(), []step{ok("alice", 8*time.Minute)}),
			KindIPNotAllowed},
		{"real guessing: five failed attempts on the account, then its success",
			[]step{fail("alice@example.com", time.Minute), fail("alice@example.com", 70*time.Second), fail("alice@example.com", 80*time.Second),
				fail("alice@example.com", 90*time.Second), fail("alice@example.com", 100*time.Second), ok("alice", 2*time.Minute)},
			KindPasswordGuessSucceeded},
		{"three failed attempts in one second on the account, then its success",
			[]step{fail("alice@example.com", time.Minute), fail("alice@example.com", time.Minute), fail("alice@example.com", time.Minute), ok("alice", 2*time.Minute)},
			KindPasswordGuessSucceeded},
		{"credential stuffing: 25 names, ten not accounts here, the last one gets in",
			cat(many(10, 0, "leaked"), many(14, 2*time.Minute, "victim"), []step{fail("alice@example.com", 5*time.Minute), ok("alice", 6*time.Minute)}),
			KindPasswordGuessSucceeded},
		{"four other accounts failed and never got in: below the threshold",
			cat(many(4, 0, "stray"), []step{fail("alice@example.com", 2*time.Minute), ok("alice", 3*time.Minute)}),
			KindIPNotAllowed},
		{"five other accounts failed and never got in: stuffing",
			cat(many(5, 0, "stray"), []step{ok("alice", 3*time.Minute)}),
			KindPasswordGuessSucceeded},
		{"guessing more than GUESS_WINDOW before the login is not counted",
			[]step{fail("alice@example.com", 0), fail("alice@example.com", time.Second), fail("alice@example.com", 2*time.Second), ok("alice", 16*time.Minute)},
			KindIPNotAllowed},
	}
	events := func(steps []step) []ipguard.LoginEvent {
		var out []ipguard.LoginEvent
		for i, s := range steps {
			e := ipguard.LoginEvent{ID: int64(i + 1), Date: base.Add(s.at), IP: nat, Login: s.login, UserID: guest, ActionID: 1013, Raw: []byte(`{}`)}
			if s.ok {
				e.UserID, e.User, e.ActionID = s.user, s.user, 1010
			}
			out = append(out, e)
		}
		return out
	}
	newEv := func(t *testing.T) *Evaluator {
		users := map[string][]string{"alice": {"203.0.113.10"}, "bob": {"203.0.113.11"}, "carol": {"203.0.113.12"}}
		for i := 1; i <= 6; i++ {
			users[fmt.Sprintf("u%d", i)] = []string{fmt.Sprintf("203.0.113.%d", 20+i)}
		}
		e := NewEvaluator(lists(t, users), Policy{UnknownUsers: UnknownAlert})
		e.GuessWindow = 15 * time.Minute
		return e
	}
	// final is the last word on the login judged: its highest kind.
	final := func(fs []Finding, id int64, have string) string {
		for _, f := range fs {
			if f.EventID == id && (have == "" || f.Kind == KindPasswordGuessSucceeded) {
				have = f.Kind
			}
		}
		return have
	}
	newestFirst := func(evs []ipguard.LoginEvent) []ipguard.LoginEvent {
		out := make([]ipguard.LoginEvent, len(evs))
		for i, e := range evs {
			out[len(evs)-1-i] = e
		}
		return out
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs := events(tt.steps)
			id := evs[len(evs)-1].ID
			// One piece.
			e := newEv(t)
			fs, err := e.Add(newestFirst(evs))
			if err != nil {
				t.Fatal(err)
			}
			if got := final(fs, id, ""); got != tt.want {
				t.Errorf("one piece: %q; want %q", got, tt.want)
			}
			// One piece per event, newest first.
			e, got := newEv(t), ""
			for _, ev := range newestFirst(evs) {
				fs, err := e.Add([]ipguard.LoginEvent{ev})
				if err != nil {
					t.Fatal(err)
				}
				got = final(fs, id, got)
			}
			if got != tt.want {
				t.Errorf("a piece per event: %q; want %q", got, tt.want)
			}
			// Two runs, cut before event c; the second re-reads two events.
			for c := 0; c < len(evs); c++ {
				kept := map[string]ipguard.AddressFailures{}
				got := ""
				if c > 0 {
					e := newEv(t)
					fs, err := e.Add(newestFirst(evs[:c]))
					if err != nil {
						t.Fatal(err)
					}
					got = final(fs, id, got)
					for _, r := range e.FailuresToRemember(time.Time{}) {
						k := r.IP + r.Last.Truncate(FailureBucket).String()
						kept[k] = ipguard.MergeAddressFailures(kept[k], r)
					}
				}
				e := newEv(t)
				second := newestFirst(evs[max(0, c-2):])
				var recs []ipguard.AddressFailures
				for _, r := range kept {
					recs = append(recs, r)
				}
				ips, from, _ := e.StoredFailuresWanted(second)
				if len(ips) > 0 {
					e.SetStoredFailures(ips, map[string][]ipguard.AddressFailures{nat: recs}, from)
				}
				fs, err := e.Add(second)
				if err != nil {
					t.Fatal(err)
				}
				if got = final(fs, id, got); got != tt.want {
					t.Errorf("two runs cut before event %d: %q; want %q", c+1, got, tt.want)
				}
			}
		})
	}
}

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
