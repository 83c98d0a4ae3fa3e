package behaviour

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"ipguard/internal/audit"
	"ipguard/internal/ipguard"
)

// Bounds of a password_spray finding and of what a run keeps.
const (
	maxSprayListed = 20      // accounts and addresses a finding names
	maxSprayIDs    = 50      // event ids a finding lists
	maxFailures    = 200_000 // failed logins kept in one run (about 10 MB)
)

// failure is what the spray rule keeps of one failed login.
type failure struct {
	at      time.Time
	id      int64
	account string // the login name typed (lower case), else the user id
	ip      string
	raw     json.RawMessage
}

// sprayer finds password sprays: failed logins against at least min
// distinct accounts within a sliding window, from one address or many.
// Failed logins from an address the targeted account may use (one of its
// own entries) are forgotten passwords and do not count.
//
// It is fed pieces newest first (the walk's order) and emits an episode as
// soon as no older failed login can join it, or at the end of the window.
type sprayer struct {
	min     int
	window  time.Duration
	fails   []failure
	success map[string]time.Time // account (login or user id) → its latest successful login
	dropped int                  // failures not kept (over maxFailures)
}

func newSprayer(min int, window time.Duration) *sprayer {
	return &sprayer{min: min, window: window, success: map[string]time.Time{}}
}

func accountOf(ev ipguard.LoginEvent) string {
	if l := strings.ToLower(strings.TrimSpace(ev.Login)); l != "" {
		return boundedAccount(l)
	}
	return boundedAccount(ipguard.CanonicalUserID(ev.UserID))
}

// maxAccountKey bounds the key an account is counted and kept under: the
// login name is what was typed, of any length, and a spray bucket keeps up
// to MaxBucketAccounts of them in one DynamoDB item (400 KB).
const maxAccountKey = 64

// boundedAccount is k, or for a longer k its beginning and a hash of the
// whole (distinct names stay distinct).
func boundedAccount(k string) string {
	if len(k) <= maxAccountKey {
		return k
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte(k))
	head := k[:maxAccountKey-20]
	for !utf8.ValidString(head) {
		head = head[:len(head)-1]
	}
	return fmt.Sprintf("%s…#%016x", head, h.Sum64())
}

// add takes a piece's events.
func (s *sprayer) add(evs []ipguard.LoginEvent, declared func(ipguard.LoginEvent) bool) {
	for _, ev := range evs {
		switch {
		case ev.IsSuccessfulLogin():
			for _, k := range []string{strings.ToLower(strings.TrimSpace(ev.Login)), ipguard.CanonicalUserID(ev.UserID)} {
				if k = boundedAccount(k); k != "" && ev.Date.After(s.success[k]) {
					s.success[k] = ev.Date
				}
			}
		case ev.IsFailedLogin():
			acc := accountOf(ev)
			if acc == "" || (declared != nil && declared(ev)) {
				continue
			}
			if len(s.fails) >= maxFailures {
				s.dropped++
				continue
			}
			s.fails = append(s.fails, failure{at: ev.Date, id: ev.ID, account: acc, ip: strings.TrimSpace(ev.IP), raw: ev.Raw})
		}
	}
}

// episodes returns the sprays among the kept failures whose oldest failure
// is after closedAfter + window (nothing older can join them; zero
// closedAfter: all), removes them and forgets the failures that can no
// longer be part of one.
func (s *sprayer) episodes(closedAfter time.Time, final bool) [][]failure {
	sort.Slice(s.fails, func(i, j int) bool {
		if !s.fails[i].at.Equal(s.fails[j].at) {
			return s.fails[i].at.Before(s.fails[j].at)
		}
		return s.fails[i].id < s.fails[j].id
	})
	// Sliding window: every index range [i, j] within the window with at
	// least min distinct accounts is in a spray; overlapping ranges merge.
	type span struct{ from, to int }
	var spans []span
	count := map[string]int{}
	i := 0
	for j, f := range s.fails {
		count[f.account]++
		for f.at.Sub(s.fails[i].at) > s.window {
			if count[s.fails[i].account]--; count[s.fails[i].account] == 0 {
				delete(count, s.fails[i].account)
			}
			i++
		}
		if len(count) >= s.min {
			if n := len(spans); n > 0 && i <= spans[n-1].to+1 {
				spans[n-1].to = j
			} else {
				spans = append(spans, span{i, j})
			}
		}
	}
	limit := closedAfter.Add(s.window)
	var out [][]failure
	keep := make([]bool, len(s.fails))
	for _, sp := range spans {
		if final || s.fails[sp.from].at.After(limit) {
			out = append(out, append([]failure(nil), s.fails[sp.from:sp.to+1]...))
			continue
		}
		for k := sp.from; k <= sp.to; k++ {
			keep[k] = true // an episode that older failures may still join
		}
	}
	if final {
		s.fails = nil
		return out
	}
	kept := s.fails[:0]
	for k, f := range s.fails {
		if keep[k] || !f.at.After(limit) {
			kept = append(kept, f)
		}
	}
	s.fails = kept
	return out
}

// finding renders an episode: the accounts (at most 20) and addresses (at
// most 20), whether any of those accounts logged in successfully after the
// spray began (then critical). Its EventID is its newest failed login, so
// that an overlap that reads the same episode again is dropped as alerted.
func (s *sprayer) finding(ep []failure) audit.Finding {
	var accounts, addrs []string
	seenAcc, seenIP := map[string]bool{}, map[string]bool{}
	var ids []int64
	var raws []json.RawMessage
	var succeeded []string
	first, last := ep[0], ep[len(ep)-1]
	real := 0
	for _, f := range ep {
		if f.id == 0 {
			// A stand-in for what an earlier run read: it counts as an
			// account tried, nothing more.
			if f.account != "" && f.account[0] != 0 && !seenAcc[f.account] && len(accounts) < maxSprayListed {
				accounts = append(accounts, f.account)
			}
			seenAcc[f.account] = true
			continue
		}
		real++
		if !seenAcc[f.account] {
			seenAcc[f.account] = true
			if len(accounts) < maxSprayListed {
				accounts = append(accounts, f.account)
			}
			if at, ok := s.success[f.account]; ok && at.After(first.at) && len(succeeded) < maxSprayListed {
				succeeded = append(succeeded, f.account)
			}
		}
		if f.ip != "" && !seenIP[f.ip] {
			seenIP[f.ip] = true
			if len(addrs) < maxSprayListed {
				addrs = append(addrs, f.ip)
			}
		}
		if len(ids) < maxSprayIDs {
			ids = append(ids, f.id)
		}
		if len(raws) < 3 && len(f.raw) > 0 {
			raws = append(raws, f.raw)
		}
	}
	sev := Severity[RulePasswordSpray]
	where := fmt.Sprintf("from %d addresses", len(seenIP))
	if len(seenIP) == 1 {
		where = "from one address"
	}
	reason := fmt.Sprintf("%d failed logins against %d distinct accounts within %s %s (threshold %d accounts)",
		real, len(seenAcc), ago(s.window), where, s.min)
	if real < len(ep) {
		reason += "; some accounts were tried in logins an earlier run read"
	}
	expl := fmt.Sprintf("A password spray tries a few common passwords on many accounts, staying under the portal's per-account lockout. Accounts tried: %s",
		strings.Join(accounts, ", "))
	if len(seenAcc) > len(accounts) {
		expl += fmt.Sprintf(" and %d more", len(seenAcc)-len(accounts))
	}
	expl += "."
	if len(succeeded) > 0 {
		sev = audit.SeverityCritical
		reason += fmt.Sprintf("; afterwards %d of these accounts logged in successfully", len(succeeded))
		expl += " Logged in successfully after the spray began: " + strings.Join(succeeded, ", ") + "."
	}
	ip := ""
	if len(addrs) > 0 {
		ip = addrs[0]
	}
	f := audit.Finding{
		EventID: last.id, EventIDs: ids, Count: real, Capped: real > len(ids),
		Kind: RulePasswordSpray, Severity: sev, Reason: reason, Logins: accounts, IPs: addrs, Addresses: len(seenIP), IP: ip,
		FirstAt: first.at.UTC().Format(time.RFC3339), Date: last.at.UTC().Format(time.RFC3339),
		Reasons:     []audit.Reason{{Kind: RulePasswordSpray, Severity: sev, Text: reason}},
		Explanation: expl,
	}
	f.Raw, _ = json.Marshal(raws)
	return f
}
