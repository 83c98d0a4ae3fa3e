package audit

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"ipguard/internal/ipguard"
)

// The password-guess rule (password_guess_succeeded, #21 §3 and its typo
// false alerts).
//
// A successful login that would be a finding (outside the allowlist, an
// unknown user, an address that cannot be checked) is raised to
// password_guess_succeeded, critical, when the failed logins from its
// whole address within GUESS_WINDOW before it show guessing:
//
//   - at least GuessMinFailures failed logins on the login's own account
//     (several wrong passwords for the account that then got in), or
//   - failed logins on at least GuessMinAccounts other accounts that no
//     successful login of theirs from that address resolved: after an
//     account's latest failed login in the window, that account did not
//     log in from the address up to the login judged (credential stuffing:
//     many names tried, one got in).
//
// A typo is neither: the account's own one or two failed attempts,
// resolved by its own success; at a shared address (an office NAT, a
// guest network), other people's typos are resolved by their own
// successes and do not count for anyone else.
//
// Why these numbers: a typo is one or two attempts; the third wrong
// password on one account is no longer a slip of the finger, and a
// guesser that must stay under the portal's lockout (Entra's and Okta's
// defaults lock at 10) has a few tries at most. Five other accounts with
// unresolved failures from one address within 15 minutes do not happen at
// an office NAT, where each typo is followed by its owner's success.
//
// What is kept: per address and FailureBucket, per account (a keyed 64-bit
// hash of the login name typed, else the user id: accountHash) the distinct seconds of its
// failed logins and of its successful logins (ipguard.AccountFailures,
// bounded), in memory and across runs in the bounded failures# items
// (Store.RecordFailures). The judgement depends only on the logins within
// GUESS_WINDOW before the login, never on how they were cut into runs or
// pieces: it is made on what is read, and again whenever older failed
// logins are read (the walk reads newest first); since every success that
// could resolve a failure is newer than it, it is read before that failure
// is, so a judgement once true stays true.
const (
	GuessMinFailures = ipguard.KeepFailed
	GuessMinAccounts = 5
)

// accountHash is the 64-bit hash an account is kept under (0: none): the
// first 8 bytes of HMAC-SHA256 keyed with the deployment's account-hash key
// (Evaluator.AccountKey, Store.AccountHashKey: random, made at first use,
// never derived from the API key). Unkeyed, an attacker who knows the
// scheme could choose login names whose hashes collide with a victim's (or
// with each other) and so hide failed attempts or resolve them with another
// account's success; without the key they cannot.
func (e *Evaluator) accountHash(key string) uint64 {
	if key == "" {
		return 0
	}
	if v, ok := e.hashes[key]; ok {
		return v
	}
	if e.mac == nil {
		e.mac = hmac.New(sha256.New, e.AccountKey)
	}
	e.mac.Reset()
	_, _ = e.mac.Write([]byte(key))
	var sum [sha256.Size]byte
	v := max(1, binary.BigEndian.Uint64(e.mac.Sum(sum[:0])))
	if len(e.hashes) >= maxCachedHashes {
		clear(e.hashes)
	}
	if e.hashes == nil {
		e.hashes = map[string]uint64{}
	}
	e.hashes[strings.Clone(key)] = v // not pinning the page the name came in
	return v
}

// maxCachedHashes bounds the account hashes an evaluator remembers (the
// same users log in again and again; a flood of names only refills it).
const maxCachedHashes = 4096

func hashText(h uint64) string { return fmt.Sprintf("%016x", h) }

func hashOf(text string) uint64 {
	v, err := strconv.ParseUint(text, 16, 64)
	if err != nil {
		return 0
	}
	return v
}

// failedAccount is the account a failed login tried: the login name typed
// (lower case), else the user id.
func (e *Evaluator) failedAccount(ev ipguard.LoginEvent) uint64 {
	if l := strings.ToLower(strings.TrimSpace(ev.Login)); l != "" {
		return e.accountHash(l)
	}
	return e.accountHash(ipguard.CanonicalUserID(ev.UserID))
}

// ownAccounts are the keys a successful login's account may have been
// tried under: its login name, its user id and its stored e-mail (the
// portal names a failed login by the name typed, a success by the user).
func (e *Evaluator) ownAccounts(login, userID, email string) []uint64 {
	var out []uint64
	for _, k := range []string{strings.ToLower(strings.TrimSpace(login)), ipguard.CanonicalUserID(userID), strings.ToLower(strings.TrimSpace(email))} {
		if h := e.accountHash(k); h != 0 && !slices.Contains(out, h) {
			out = append(out, h)
		}
	}
	return out
}

// emailOf is the stored e-mail of a login's user, where the lists have it.
func (e *Evaluator) emailOf(userID string) string {
	if ul := e.lists.users[ipguard.CanonicalUserID(userID)]; ul != nil {
		return ul.email
	}
	return ""
}

// acctTimes is one account's logins from one address within one bucket.
type acctTimes struct {
	h        uint64
	fail, ok []int64
}

// maxMemAccounts bounds the accounts a bucket tracks per address in
// memory. It is above what a record keeps (ipguard.MaxRecordAccounts) so
// that a busy office NAT, where more people log in within a bucket than a
// record holds, has its typos resolved by their own successes rather than
// counted as unresolved failed logins of untracked accounts (which made any
// login with a finding from the office a critical password guess); the
// record keeps the unresolved accounts first (storedRecord).
const maxMemAccounts = 2 * ipguard.MaxRecordAccounts

// account returns c's entry for h (nil: the record is full).
func (c *bucketCount) account(h uint64) *acctTimes {
	for i := range c.accts {
		if c.accts[i].h == h {
			return &c.accts[i]
		}
	}
	if len(c.accts) >= maxMemAccounts {
		return nil
	}
	c.accts = append(c.accts, acctTimes{h: h})
	return &c.accts[len(c.accts)-1]
}

// noteLogin keeps a failed (or successful) login of account h from k in
// its date's bucket.
func (e *Evaluator) noteLogin(k addrKey, at time.Time, h uint64, failed bool) {
	secs := uint32(max(0, at.Unix()))
	c := e.bucketAt(k, at)
	if failed {
		c.n++
	}
	var a *acctTimes
	if h != 0 {
		a = c.account(h)
	}
	switch {
	case a == nil && failed:
		c.more++
	case a == nil:
	case failed:
		a.fail = ipguard.AddSecond(a.fail, int64(secs), ipguard.KeepFailed)
	default:
		a.ok = ipguard.AddSecond(a.ok, int64(secs), ipguard.KeepSucceeded)
	}
}

// guessCount is what the failed logins within GUESS_WINDOW before a login
// say: failed attempts on its own account, other accounts with failed
// attempts no success of theirs resolved, and the failed attempts counted.
type guessCount struct {
	own, others, failures int
}

func (g guessCount) guessing() bool {
	return g.own >= GuessMinFailures || g.others >= GuessMinAccounts
}

// judgeGuess counts, for a successful login of the accounts own from k at
// at, the failed logins known (this run's and those earlier runs kept)
// within [at − GuessWindow, at].
func (e *Evaluator) judgeGuess(k addrKey, at time.Time, own []uint64) guessCount {
	gw := e.guessWindow()
	lo, hi := at.Add(-gw).Unix(), at.Unix()
	// This run's and earlier runs' seconds per account, united as two
	// reads of the same logins (a re-read overlap counts once).
	memF, memS, stoF, stoS := map[uint64][]int64{}, map[uint64][]int64{}, map[uint64][]int64{}, map[uint64][]int64{}
	within := func(dst map[uint64][]int64, h uint64, ts []int64) {
		for _, t := range ts {
			if t >= lo && t <= hi {
				dst[h] = ipguard.AddSecond(dst[h], t, 1<<30)
			}
		}
	}
	overlaps := func(first, last int64) bool { return first <= hi && last >= lo }
	memMore, storedMore := 0, 0
	for b := at.Add(-gw).Truncate(FailureBucket); !b.After(at); b = b.Add(FailureBucket) {
		c := e.buckets[b.Unix()][k]
		if c == nil {
			continue
		}
		if c.more > 0 && overlaps(int64(c.first), int64(c.last)) {
			memMore += int(c.more)
		}
		for _, a := range c.accts {
			within(memF, a.h, a.fail)
			within(memS, a.h, a.ok)
		}
	}
	for _, r := range e.stored[k].recs {
		if !overlaps(r.First.Unix(), r.Last.Unix()) {
			continue
		}
		storedMore += r.MoreAccounts
		if r.Count > 0 && len(r.Accounts) == 0 && r.MoreAccounts == 0 {
			storedMore++ // a record of an earlier version: accounts unknown
		}
		for _, x := range r.Accounts {
			if h := hashOf(x.Account); h != 0 {
				within(stoF, h, x.Failed)
				within(stoS, h, x.Succeeded)
			}
		}
	}
	fails, oks := map[uint64][]int64{}, map[uint64][]int64{}
	for _, m := range []map[uint64][]int64{memF, stoF} {
		for h := range m {
			fails[h] = ipguard.UnionSeconds(memF[h], stoF[h], 1<<30)
		}
	}
	for _, m := range []map[uint64][]int64{memS, stoS} {
		for h := range m {
			oks[h] = ipguard.UnionSeconds(memS[h], stoS[h], 1<<30)
		}
	}
	var g guessCount
	mine := map[uint64]bool{}
	for _, h := range own {
		mine[h] = true
		g.own += len(fails[h])
	}
	g.failures = g.own
	for h, fl := range fails {
		if mine[h] {
			continue
		}
		last, resolved := fl[len(fl)-1], false
		for _, s := range oks[h] {
			if s >= last {
				resolved = true
				break
			}
		}
		if !resolved {
			g.others++
			g.failures += len(fl)
		}
	}
	more := max(memMore, storedMore)
	g.others += more
	g.failures += more
	return g
}

// failedWithin reports whether account h has a failed login from k known
// within [lo, hi].
func (e *Evaluator) failedWithin(k addrKey, h uint64, lo, hi time.Time) bool {
	in := func(ts []int64) bool {
		for _, t := range ts {
			if t >= lo.Unix() && t <= hi.Unix() {
				return true
			}
		}
		return false
	}
	for b := lo.Truncate(FailureBucket); !b.After(hi); b = b.Add(FailureBucket) {
		if c := e.buckets[b.Unix()][k]; c != nil {
			if a := c.find(h); a != nil && in(a.fail) {
				return true
			}
		}
	}
	ht := hashText(h)
	for _, r := range e.stored[k].recs {
		for _, x := range r.Accounts {
			if x.Account == ht && in(x.Failed) {
				return true
			}
		}
	}
	return false
}

func (c *bucketCount) find(h uint64) *acctTimes {
	for i := range c.accts {
		if c.accts[i].h == h {
			return &c.accts[i]
		}
	}
	return nil
}

// rejudge raises the logins remembered at k that the failed logins now
// known make guesses (older failed logins were read after them).
func (e *Evaluator) rejudge(k addrKey) []Finding {
	fs, ok := e.raised[k]
	if !ok {
		return nil
	}
	var out []Finding
	kept := fs[:0]
	for _, f := range fs {
		at, err := time.Parse(time.RFC3339, f.Date)
		if err == nil {
			if g := e.judgeGuess(k, at, e.ownAccounts(f.Login, f.UserID, f.Email)); g.guessing() {
				out = append(out, raise(f, g, e.guessWindow(), " (read after the login was first alerted)"))
				continue
			}
		}
		kept = append(kept, f)
	}
	e.remembered -= len(fs) - len(kept)
	if len(kept) == 0 {
		delete(e.raised, k)
	} else {
		e.raised[k] = kept
	}
	return out
}

// raise makes f a password_guess_succeeded finding.
func raise(f Finding, g guessCount, window time.Duration, note string) Finding {
	f.FailedAttempts, f.FromKind = g.failures, f.Kind
	f.Kind, f.Severity = KindPasswordGuessSucceeded, SeverityCritical
	f.DigestOnly = false // a guessed password is always a message
	if g.own >= GuessMinFailures {
		f.Reason = fmt.Sprintf("%s, after %d failed attempts on this account from that address within %s before it%s",
			f.Reason, g.own, window, note)
	} else {
		f.Reason = fmt.Sprintf("%s, after failed attempts on %d other accounts from that address within %s before it that no successful login of theirs followed (%d failed attempts in all; credential stuffing)%s",
			f.Reason, g.others, window, g.failures, note)
	}
	return f
}

// storedRecord converts a bucket's record to what the store keeps, with
// the successes that resolve nothing left out.
func (e *Evaluator) storedRecord(k addrKey, c *bucketCount) (ipguard.AddressFailures, bool) {
	r := ipguard.AddressFailures{IP: keyText(k), Count: int(c.n), MoreAccounts: int(c.more)}
	first, last := int64(-1), int64(-1)
	see := func(t int64) {
		if first < 0 || t < first {
			first = t
		}
		if t > last {
			last = t
		}
	}
	gw := e.guessWindow()
	for _, a := range c.accts {
		x := ipguard.AccountFailures{Account: hashText(a.h), Failed: append([]int64(nil), a.fail...)}
		for _, s := range a.ok {
			// A success is kept only when it may resolve a failed login of
			// its account from this address (within GUESS_WINDOW before it).
			at := time.Unix(s, 0).UTC()
			if e.failedWithin(k, a.h, at.Add(-gw), at) {
				x.Succeeded = append(x.Succeeded, s)
			}
		}
		if len(x.Failed) == 0 && len(x.Succeeded) == 0 {
			continue
		}
		for _, t := range x.Failed {
			see(t)
		}
		for _, t := range x.Succeeded {
			see(t)
		}
		r.Accounts = append(r.Accounts, x)
	}
	// Beyond the bound, the unresolved accounts are kept first and only
	// the unresolved ones left out are counted (ipguard.CapAccounts).
	r = ipguard.CapAccounts(r)
	if c.n > 0 {
		see(int64(c.first))
		see(int64(c.last))
	}
	r.Counted = append([]ipguard.SecondCount(nil), c.counted...)
	if c.n == 0 && len(r.Accounts) == 0 {
		return r, false
	}
	r.First, r.Last = time.Unix(first, 0).UTC(), time.Unix(last, 0).UTC()
	return r, true
}
