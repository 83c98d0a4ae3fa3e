package audit

import (
	"context"
	"fmt"
	"strings"
	"time"

	"ipguard/internal/allowlist"
	"ipguard/internal/humantext"
	"ipguard/internal/ipguard"
)

// Behaviour finding kinds (issue #17; package behaviour judges them).
const (
	KindImpossibleTravel = "impossible_travel"
	KindNewCountry       = "new_country"
	KindNewDevice        = "new_device"
	KindPasswordSpray    = "password_spray"

	SeverityLow = "low"
)

// BehaviourKinds lists the behaviour finding kinds, in the order alerts present them.
var BehaviourKinds = []string{KindPasswordSpray, KindImpossibleTravel, KindNewCountry, KindNewDevice}

// alertKinds is the order of every kind in an alert: Kinds, then BehaviourKinds.
var alertKinds = append(append([]string{}, Kinds...), BehaviourKinds...)

// IsBehaviourKind reports whether k is a behaviour rule's kind.
func IsBehaviourKind(k string) bool {
	for _, b := range BehaviourKinds {
		if b == k {
			return true
		}
	}
	return false
}

// SeverityRank orders severities: critical 4, high 3, medium 2, low 1, other 0.
func SeverityRank(s string) int {
	switch s {
	case SeverityCritical:
		return 4
	case SeverityHigh:
		return 3
	case SeverityMedium:
		return 2
	case SeverityLow:
		return 1
	}
	return 0
}

// Reason is one rule a login broke. A finding lists all of them (one
// finding per login, WHERE-ISSUES-MEET §3): its Kind and Severity are those
// of the allowlist rule when the login broke it, else of the highest reason.
type Reason struct {
	Kind     string `json:"kind"`
	Severity string `json:"severity"`
	Text     string `json:"text"`
	// EventID, for a reason that pairs the login with another one
	// (impossible_travel; new_country when the login contradicts a trip of
	// one login, package behaviour), is the other login's event id: either
	// of the two may be the takeover (#21 §4), so the finding names both.
	EventID int64 `json:"eventId,omitempty"`
}

// Piece is what the Behaviour hook sees of one piece of a run.
type Piece struct {
	// Events are the piece's readable events, in the walk's order (newest
	// first); the hook sorts what it needs by time.
	Events []ipguard.LoginEvent
	// Done: after this piece, every event of the window dated after Done
	// has been handed over (Final: the whole window has).
	Done  time.Time
	Final bool
	// Last: the run stops after this piece (Final, or it stopped at its
	// deadline margin or at a second it could not read whole). A hook
	// that holds logins for a later piece of the run (Holder) judges them
	// here.
	Last bool
	// First: the first piece of a run's walk of a window (a run that
	// walks two windows hands each its own First). Everything a hook kept
	// of pieces before it belongs to another run, whether that run ended,
	// stopped at its deadline or failed (in the same warm process): the
	// hook starts anew here and never infers a new run from dates.
	First bool
	// Backfill is true for a backfill run.
	Backfill bool
	// Declared reports whether a login came through one of its user's own
	// allowlist entries (for a failed login: of the account it targeted).
	Declared func(ipguard.LoginEvent) bool
	// Entry returns the entry a login came through when Declared says it
	// did (ok false otherwise): with the entry's declared place (#21 §4),
	// which the hook uses instead of the portal's GeoIP. Optional (nil:
	// no entry known beyond Declared).
	Entry func(ipguard.LoginEvent) (DeclaredEntry, bool)
}

// DeclaredEntry is one of a user's allowlist entries as onboarded: what a
// login through it says about where it came from.
type DeclaredEntry struct {
	// Entry is the canonical entry ("" when only the allowlist history
	// knows it: a removed or expired entry, whose place is not kept).
	Entry string
	// Place is the entry's declared place as stored ("" none: the
	// portal's GeoIP; "anywhere": its exits move; a city or "lat,lon").
	Place string
	// Note is the entry's note ("office"), for messages.
	Note string
}

// Holder is optional on a Behaviour that may hold a login's judgement for a
// later (older) piece of the run, so that each user's logins are judged in
// time order (package behaviour: the users met in a run's earlier pieces
// are judged once the run has read their older logins). Holding returns the date of the
// newest login held (zero: none). After a piece the cursor is not moved
// below it: a run that fails or stops before the held logins are judged
// leaves them to be read again, so nothing held is lost.
type Holder interface {
	Holding() time.Time
}

// Noter is optional on a Behaviour: Notes returns what the hook has to
// tell the run since the last call (each becomes a warning of the run's
// result), e.g. that held logins were judged at once, out of time order.
type Noter interface {
	Notes() []string
}

// Behaviour judges each piece's logins by each user's learned normal
// (package behaviour). Optional on Service.
type Behaviour interface {
	// Judge is called once per piece, after evaluation and before the
	// already-alerted drop and the Responder. It returns the piece's
	// findings with behaviour reasons merged into the findings of the same
	// login (one finding per login) and new findings appended. It sets
	// NotMessaged on findings below the configured minimum severity: they
	// are counted in the result, logged and handed to the Responder, but not
	// sent as messages. An error fails the run (nothing of the piece was
	// sent; the next run reads it again).
	Judge(ctx context.Context, p Piece, fs []Finding) ([]Finding, error)
	// Settle is called once per piece after its messages were sent and
	// recorded: the hook saves what it learned (baselines), so that a piece
	// whose alerts failed is judged again by the next run against the same
	// baselines.
	Settle(ctx context.Context) error
}

// Declared reports whether ev's address is one of its user's allowlist
// entries at ev's time: for a successful login the user's, for a failed one
// the targeted account's (false when neither is stored or the address is
// not whole). Users of successful logins must have been loaded.
func (a *Allowlists) Declared(ev ipguard.LoginEvent) bool {
	addr, ok := allowlist.ParseLoginIP(ev.IP)
	if !ok {
		return false
	}
	ul := a.users[ipguard.CanonicalUserID(ev.UserID)]
	if ul == nil && ev.IsFailedLogin() {
		ul, _ = a.target(ev)
	}
	return ul != nil && ul.allows(addr, ev.Date)
}

// DeclaredEntry returns the entry of its user's allowlist that ev came
// through at ev's time (as Declared decides it), the narrowest when several
// hold the address; ok false when Declared is false.
func (a *Allowlists) DeclaredEntry(ev ipguard.LoginEvent) (DeclaredEntry, bool) {
	addr, ok := allowlist.ParseLoginIP(ev.IP)
	if !ok {
		return DeclaredEntry{}, false
	}
	ul := a.users[ipguard.CanonicalUserID(ev.UserID)]
	if ul == nil && ev.IsFailedLogin() {
		ul, _ = a.target(ev)
	}
	if ul == nil || !ul.allows(addr, ev.Date) {
		return DeclaredEntry{}, false
	}
	var best *entryInfo
	for i := range ul.info {
		x := &ul.info[i]
		if !x.entry.IPRange().Contains(addr) || (!x.until.IsZero() && !ev.Date.Before(x.until)) || (!x.from.IsZero() && ev.Date.Before(x.from)) {
			continue
		}
		if best == nil || x.size.Cmp(best.size) < 0 {
			best = x
		}
	}
	if best == nil {
		return DeclaredEntry{}, true
	}
	return best.DeclaredEntry, true
}

// writeReasons adds a behaviour finding's reasons and explanation to its
// e-mail entry (portal text in them goes through Clean).
func writeReasons(b *strings.Builder, f Finding) {
	if len(f.Reasons) > 1 || (len(f.Reasons) == 1 && f.Reasons[0].Text != f.Reason) {
		for _, r := range f.Reasons {
			fmt.Fprintf(b, "   - %s (%s): %s\n", r.Kind, r.Severity, humantext.Line(r.Text, 300))
		}
	}
	if f.Explanation != "" {
		fmt.Fprintf(b, "   Why:   %s\n", humantext.Line(f.Explanation, 1200))
	}
	if f.Kind == KindPasswordSpray && len(f.IPs) > 0 {
		var as []string
		for _, a := range f.IPs {
			as = append(as, humantext.Line(a, 60))
		}
		fmt.Fprintf(b, "   Addresses: %s\n", strings.Join(as, ", "))
	}
}

// writeBehaviourAdvice is the "What to do" of behaviour findings.
func writeBehaviourAdvice(b *strings.Builder, n map[string]int) {
	if n[KindPasswordSpray] > 0 {
		b.WriteString("  - A password spray tried many accounts with few attempts each: block the addresses\n" +
			"    upstream, and reset the password of every listed account that then logged in.\n")
	}
	if n[KindImpossibleTravel]+n[KindNewCountry]+n[KindNewDevice] > 0 {
		b.WriteString("  - A login unlike the user's normal (travel, country, device): ask the user whether it\n" +
			"    was theirs. If not, block the user, end their sessions and reset the password.\n")
	}
}

// partition separates fs into those for which taken is false and those
// for which it is true, each in order.
func partition(fs []Finding, taken func(Finding) bool) (rest, took []Finding) {
	for _, f := range fs {
		if taken(f) {
			took = append(took, f)
		} else {
			rest = append(rest, f)
		}
	}
	return rest, took
}

// countQuiet counts and logs the findings that are sent in no message (they
// are never dropped: WHERE-ISSUES-MEET §4).
func (p *piecer) countQuiet(ctx context.Context, fs []Finding) {
	r := p.run
	for _, f := range fs {
		r.res.Counts[f.Kind]++
		r.res.Severities[f.Severity]++
		r.res.NotMessaged++
		countReasons(r.res, f)
		p.logFinding(ctx, f, "")
	}
}

// countReasons counts a finding's behaviour reasons (or its behaviour kind).
func countReasons(res *Result, f Finding) {
	kinds := map[string]bool{}
	if IsBehaviourKind(f.Kind) {
		kinds[f.Kind] = true
	}
	for _, r := range f.Reasons {
		if IsBehaviourKind(r.Kind) {
			kinds[r.Kind] = true
		}
	}
	for k := range kinds {
		if res.BehaviourReasons == nil {
			res.BehaviourReasons = map[string]int{}
		}
		res.BehaviourReasons[k]++
	}
}

// behaviourLogArgs are a finding's behaviour fields for its log line.
func behaviourLogArgs(f Finding) []any {
	var args []any
	if len(f.Reasons) > 0 {
		var ks []string
		for _, r := range f.Reasons {
			ks = append(ks, r.Kind)
		}
		args = append(args, "reasons", ks)
	}
	if f.NotMessaged {
		args = append(args, "notMessaged", true)
	}
	if f.Episode != nil { // #21 §2: the episode and why it went to the digest
		args = append(args, "episode", f.Episode.Key, "episodeCount", f.Episode.Count, "repeat", f.Episode.Repeat)
	}
	if f.Familiar != nil {
		args = append(args, "familiarNetwork", f.Familiar.Network)
	}
	if f.Digest {
		args = append(args, "toDigest", true)
	}
	return args
}
