// Package ipguard holds the domain types shared by onboarding and auditing:
// users and their allowlists, portal restrictions, login events, and the
// error codes every other package classifies its failures with. It knows
// nothing of AWS or HTTP.
package ipguard

import (
	"encoding/json"
	"errors"
	"sort"
	"strings"
	"time"
)

// User is one onboarded DocSpace user as stored in the source of truth.
// Entries are the user's canonical allowlist entries (see package allowlist)
// that have not been expired by a reconcile yet: the audit checks logins
// against them. Details holds the optional expiry and note of an entry
// (keyed by the canonical entry); Expired the time-bound entries a reconcile
// already removed. Rev counts the record's writes (0 for a user never
// stored), so that concurrent read-modify-writes cannot lose each other.
//
// Unreadable is set by a store that found the user's item but could not
// decode it (the audit reports it and treats the user as having no entries).
type User struct {
	ID         string
	Email      string
	Entries    []string
	Details    map[string]EntryDetail
	Expired    []ExpiredEntry
	Rev        int64
	CreatedAt  time.Time
	UpdatedAt  time.Time
	Unreadable string
	// Touched is, per entry (present or removed), the time of the request
	// that last added, removed or changed it (its requestedAt or
	// EventBridge time). A request older than an entry's time does not
	// undo that newer change. Removed entries stay as tombstones (bounded).
	Touched map[string]time.Time
	// GoneChecks counts the consecutive checks of this user that found it
	// deleted or terminated on the portal (0: seen present, or never checked).
	GoneChecks int
}

// AllowlistHistory is when each of a user's entries started and stopped
// counting, so that a login is judged by the allowlist in force when it
// happened (not when the audit reads it), and when the user was offboarded.
type AllowlistHistory struct {
	UserID       string
	Email        string
	Spans        []EntrySpan
	OffboardedAt time.Time // zero: not offboarded
}

// EntrySpan: Entry counted from From (zero: before the history began) until
// Until (zero: it still counts).
type EntrySpan struct {
	Entry       string
	From, Until time.Time
}

// AddressFailures is what is remembered across runs of the failed logins
// from one whole address (canonical text) within one time bucket: how many,
// and the dates of the first and the last (of everything the record holds,
// successes included), and per account tried (Accounts) when its failed
// attempts were made and when that account then logged in successfully from
// the same address, so that a typo resolved by its own success is told
// apart from guessing (#21). Count may be 0 for a record that holds only
// such successes.
type AddressFailures struct {
	IP          string
	Count       int
	First, Last time.Time
	// Accounts are at most MaxRecordAccounts accounts (each a keyed hash
	// of the login name typed, never the name itself), those whose failed
	// logins no success of theirs in the record followed first
	// (CapAccounts); MoreAccounts counts the unresolved ones left out (a
	// flood of more than MaxRecordAccounts accounts from one address within
	// one bucket), which count as accounts tried and never resolved.
	// Accounts left out whose failures were resolved are not counted: they
	// raise nothing.
	Accounts     []AccountFailures
	MoreAccounts int
	// Counted are the failed logins that count toward failed_login_burst
	// (against an account that may not use the address), per second: every
	// second with such a failed login, oldest first, and how many. A record
	// covers one FailureBucket (10 minutes), so the list is bounded by its
	// 600 seconds whatever the number of logins, and a count over any
	// window is exact (FAILED_LOGIN_THRESHOLD up to its maximum).
	Counted []SecondCount
}

// SecondCount is N failed logins within the unix second At.
type SecondCount struct {
	At int64
	N  int
}

// CountedTotal is how many failed logins cs holds.
func CountedTotal(cs []SecondCount) int {
	n := 0
	for _, c := range cs {
		n += c.N
	}
	return n
}

// AddCounted adds n failed logins at t to the per-second list cs (kept
// oldest first).
func AddCounted(cs []SecondCount, t int64, n int) []SecondCount {
	i := sort.Search(len(cs), func(i int) bool { return cs[i].At >= t })
	if i < len(cs) && cs[i].At == t {
		cs[i].N += n
		return cs
	}
	cs = append(cs, SecondCount{})
	copy(cs[i+1:], cs[i:])
	cs[i] = SecondCount{At: t, N: n}
	return cs
}

// UnionCounted unites two per-second lists of the same logins seen by two
// reads (a re-read overlap): each second with the larger count.
func UnionCounted(a, b []SecondCount) []SecondCount {
	var out []SecondCount
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case j >= len(b) || (i < len(a) && a[i].At < b[j].At):
			out = append(out, a[i])
			i++
		case i >= len(a) || b[j].At < a[i].At:
			out = append(out, b[j])
			j++
		default:
			out = append(out, SecondCount{At: a[i].At, N: max(a[i].N, b[j].N)})
			i++
			j++
		}
	}
	return out
}

// AccountFailures is one account's failed and successful logins from one
// address within one bucket, as unix seconds, oldest first (a second
// repeats for each login in it): at most the earliest and the latest
// KeepFailed failed ones and the earliest and the latest KeepSucceeded
// successful ones (so a count up to KeepFailed within any window that
// starts or ends inside the bucket is exact).
type AccountFailures struct {
	Account   string
	Failed    []int64
	Succeeded []int64
}

// Bounds of an AddressFailures record.
const (
	KeepFailed    = 3
	KeepSucceeded = 2
	// MaxRecordAccounts bounds the accounts a record keeps (a busy office
	// NAT has a few tens of people within one bucket; an item stays under
	// DynamoDB's limit by the adapter's size rule).
	MaxRecordAccounts = 64
)

// AddSecond inserts t into the sorted list ts (a multiset: one entry per
// login), keeping at most the earliest keep and the latest keep.
func AddSecond(ts []int64, t int64, keep int) []int64 {
	i := 0
	for i < len(ts) && ts[i] <= t {
		i++
	}
	ts = append(ts, 0)
	copy(ts[i+1:], ts[i:])
	ts[i] = t
	if len(ts) > 2*keep {
		ts = append(ts[:keep], ts[keep+1:]...)
	}
	return ts
}

// UnionSeconds unites two sorted lists of the same logins seen by two
// reads (a re-read overlap): each second as often as the list that has it
// more often, then cut to keep as AddSecond does.
func UnionSeconds(a, b []int64, keep int) []int64 {
	var out []int64
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		var t int64
		switch {
		case j >= len(b) || (i < len(a) && a[i] < b[j]):
			t = a[i]
		default:
			t = b[j]
		}
		na, nb := 0, 0
		for i < len(a) && a[i] == t {
			i++
			na++
		}
		for j < len(b) && b[j] == t {
			j++
			nb++
		}
		for k := 0; k < max(na, nb); k++ {
			out = append(out, t)
		}
	}
	if len(out) > 2*keep {
		out = append(out[:keep], out[len(out)-keep:]...)
	}
	return out
}

// MergeAddressFailures merges two records of the same address and bucket:
// the larger count, the wider span, the accounts' and the counted seconds
// united; then CapAccounts. An account in both records is one account, so
// a failure in one record and its own success in the other resolve each
// other. MoreAccounts merges by the larger (two reads of the same logins
// count once), a lower bound of the unresolved accounts left out, which
// only a flood of more than MaxRecordAccounts unresolved accounts has.
// Merging an overlap read again changes nothing, except that in such a
// flood MoreAccounts may grow (it only ever over-counts accounts of an
// address that already shows more than GuessMinAccounts unresolved ones).
func MergeAddressFailures(a, b AddressFailures) AddressFailures {
	out := AddressFailures{IP: a.IP, Count: max(a.Count, b.Count), First: a.First, Last: a.Last, MoreAccounts: max(a.MoreAccounts, b.MoreAccounts)}
	if out.IP == "" {
		out.IP = b.IP
	}
	if out.First.IsZero() || (!b.First.IsZero() && b.First.Before(out.First)) {
		out.First = b.First
	}
	if b.Last.After(out.Last) {
		out.Last = b.Last
	}
	out.Counted = UnionCounted(a.Counted, b.Counted)
	idx := map[string]int{}
	for _, r := range [][]AccountFailures{a.Accounts, b.Accounts} {
		for _, x := range r {
			i, ok := idx[x.Account]
			if !ok {
				idx[x.Account] = len(out.Accounts)
				out.Accounts = append(out.Accounts, AccountFailures{Account: x.Account})
				i = len(out.Accounts) - 1
			}
			have := &out.Accounts[i]
			have.Failed = UnionSeconds(have.Failed, x.Failed, KeepFailed)
			have.Succeeded = UnionSeconds(have.Succeeded, x.Succeeded, KeepSucceeded)
		}
	}
	return CapAccounts(out)
}

// Unresolved reports whether x has a failed login that no success of its
// own in the record followed.
func (x AccountFailures) Unresolved() bool {
	return len(x.Failed) > 0 && (len(x.Succeeded) == 0 || x.Succeeded[len(x.Succeeded)-1] < x.Failed[len(x.Failed)-1])
}

// CapAccounts cuts r's accounts to MaxRecordAccounts: the unresolved ones
// are kept first (in their order), then the others; of those left out,
// only the unresolved count in MoreAccounts (a resolved typo left out
// raises nothing, and an unresolved account left out is still counted).
func CapAccounts(r AddressFailures) AddressFailures {
	if len(r.Accounts) <= MaxRecordAccounts {
		return r
	}
	accs := append([]AccountFailures(nil), r.Accounts...)
	sort.SliceStable(accs, func(i, j int) bool { return accs[i].Unresolved() && !accs[j].Unresolved() })
	for _, x := range accs[MaxRecordAccounts:] {
		if x.Unresolved() {
			r.MoreAccounts++
		}
	}
	r.Accounts = accs[:MaxRecordAccounts]
	return r
}

// TimeSpan is the closed interval [From, To].
type TimeSpan struct {
	From, To time.Time
}

// AuditProgress is the audit's saved position (see docs/audit-progress.md).
//
// Until: every login event dated up to Until was read, evaluated, alerted
// and recorded (zero before the first run). Cursor, when not nil, is a
// window the audit has started and not finished.
type AuditProgress struct {
	Until  time.Time
	Cursor *AuditCursor
	// Memory is how long scheduled runs kept their alert records, oldest
	// first: from each Since on, records were written to live for Keep
	// (ALERT_RETENTION then). A backfill reads it to tell which of its
	// logins' records may have expired. Bounded (see audit).
	Memory []RetentionSince
	// CoverageDue (opaque to the store: the audit's JSON, a few KB at most)
	// is the lost coverage found but not yet sent: saved with the progress
	// that moves the cursor past it, so that an alert whose publish fails
	// (or a run cut off before it) is sent by the next run, also when that
	// run never meets the cause again.
	CoverageDue string
}

// RetentionSince says alert records written from Since on live for Keep.
type RetentionSince struct {
	Since time.Time
	Keep  time.Duration
}

// AuditCursor is a window [From, To] whose events dated after Below are
// done (read, evaluated, alerted, recorded); those dated From..Below are
// not yet. Below never claims a row that was not read: the walk reads each
// second whole before it moves Below past it.
type AuditCursor struct {
	From, To, Below time.Time
	// SecondTries counts the runs that stopped at Below because the second
	// there holds more rows than a page and not all of them could be seen
	// yet; each try gives that second twice the reads of the one before.
	SecondTries int
	// Guesses (opaque to the store: the audit's JSON, at most a few tens
	// of KB) are the successful logins above Below that failed logins
	// below it, not read yet, may still raise to password_guess_succeeded
	// (GUESS_WINDOW): the next run, which reads them, raises them.
	Guesses string
	// Attempts counts the runs that began at Below (the one under way
	// included), counted before each reads anything; a run that moves Below
	// sets it to 0. A run that finds it above 0 knows that many runs ended
	// here without progress: cut off by the function timeout, failed, or
	// stopped at the deadline margin before finishing a piece.
	Attempts int
	// Piece is how many events the runs of this window evaluate, alert and
	// commit at a time (0: the audit's default): made smaller after a run
	// that made no progress, larger again as pieces get through.
	Piece int
	// ArchivedBelow is how far down the login archive has written this
	// window: its events dated after it (and at or below To) are archived
	// (zero: as far as Below). It runs ahead of Below while logins are
	// held above the cursor, so that the pieces after never write them
	// again, nor under one name.
	ArchivedBelow time.Time
}

// EntryDetail is the optional part of an allowlist entry: a time-bound
// exception ("travel mode") expires at ExpiresAt (zero: never); Note says why;
// Place, when set, is where logins through the entry come from (#21 §4: a
// city of the place table, "lat,lon", or "anywhere"; canonical, as package
// behaviour's ParsePlace returns it). The portal never gets Note or Place.
type EntryDetail struct {
	ExpiresAt time.Time
	Note      string
	Place     string
}

// ExpiredEntry is a time-bound entry whose time ran out.
type ExpiredEntry struct {
	Entry     string
	ExpiresAt time.Time
	Note      string
}

// ActiveEntries returns the entries that have not expired at now.
func (u User) ActiveEntries(now time.Time) []string {
	out := make([]string, 0, len(u.Entries))
	for _, e := range u.Entries {
		if d, ok := u.Details[e]; ok && !d.ExpiresAt.IsZero() && !now.Before(d.ExpiresAt) {
			continue
		}
		out = append(out, e)
	}
	return out
}

// SaveWindow is a span of time in which a save of the tool may have landed.
type SaveWindow struct{ From, Until time.Time }

// PortalState is the tool's memory of the portal allowlist, kept next to the
// desired state (the users). Version counts stored changes; Applied is the
// highest version a reconcile brought onto the portal. Owned are the portal
// addresses this tool added (it removes nothing else). LastSeen and
// LastEnabled are the portal as the last reconcile left it, to tell drift
// from the tool's own doing. A failed reconcile leaves Pending (why) and
// PendingVersion (the version it tried).
type PortalState struct {
	Version        int64
	Applied        int64
	Owned          []string
	LastSeen       []Restriction
	LastEnabled    bool
	Reconciled     bool // a reconcile has completed at least once (LastSeen is meaningful)
	Pending        string
	PendingCode    Code // the kind of the failure behind Pending
	PendingVersion int64
	LastReconcile  time.Time
	DriftEpisode   string // fingerprint of the drift last alerted; "" when none
	LockoutNotice  string // the lock-out preflight refusal last alerted; "" when none
	// TrailNotice is the kind (an error code) of the audit-trail failure
	// last alerted: the trail could not be read after a PUT of the tool, so
	// that write was not checked for a save by someone else it overwrote;
	// "" when the last such read answered (the episode is over).
	TrailNotice string
	// RecordNotice is the kind (an error code) of the failure last alerted
	// of storing a write's record for the second look in the audit trail
	// (onboard.Rechecks); "" when the last such record was stored (the
	// episode is over).
	RecordNotice string
	// HandOff: restrictions were switched off outside the tool while it
	// enforced them, and left off (PORTAL_DRIFT_REPAIR=false); later
	// reconciles leave them off until they are on again.
	HandOff bool

	// Sent is the list of the tool's last PUT whose landing was not seen
	// yet (SentOutcome says why), nil when none: the next reconcile takes
	// the portal holding it for the tool's own doing, not drift, and owns
	// SentAdded only once it sees them on the portal.
	Sent        []Restriction
	SentAdded   []string
	SentEnable  bool
	SentOutcome string // "in flight", "unknown" or "unconfirmed"
	SentAt      time.Time
	// LateSent fingerprints the lists of the tool's recent PUTs (bounded):
	// an attempt of one may still land late, after newer ones, and the
	// reconcile that finds it on the portal repairs it as its own doing,
	// not as drift. Each is "hash ip1,ip2,...": the non-admin entries of
	// others that PUT kept (they stay theirs when it lands; the rest of
	// what it brings back is the tool's).
	LateSent []string
	// AlertsDue: an alert may be due in the outbox (set when one is
	// recorded, cleared by the reconcile that found the outbox empty).
	AlertsDue bool
	// DueMarks counts the alerts recorded as due outside a reconcile (after
	// the lease was released: Store.MarkAlertsDue); a read shows AlertsDue
	// while a mark is newer than the DueMarks of the last state written
	// (the marks its reconcile had read before it flushed the outbox).
	DueMarks int64
	// Pass names the reconcile pass (its lease token) that last wrote the
	// state, or that writes it; Base is the Pass of the state the writing
	// pass started from. A write whose Pass is set is fenced: refused
	// (onboard.ErrSuperseded) when another pass wrote since Base, so a
	// pass whose lease ran out never replaces a newer pass's fields. Base
	// is never stored.
	Pass, Base string
	// OwnSaves are the portal's Date of the answers to the tool's recent
	// PUTs (oldest first, bounded); KeyUser is the portal user the key acts
	// as. A trail event is the tool's own only when it is by KeyUser at one
	// of these instants.
	OwnSaves []time.Time
	KeyUser  string
	// UnansweredSaves are the spans (the function's clock, oldest first,
	// bounded) in which a PUT of the tool that no answer dated (its answer
	// lost, a timeout or 5xx, or an attempt unanswered before a retry was
	// answered) may have landed: from its sending until the fence's end of
	// its landing. A trail event by KeyUser at no own instant but inside
	// one of them may be that landing, the tool's own.
	UnansweredSaves []SaveWindow
	// LastPass is how long the last reconcile pass held the lease before
	// it wrote its result (from taking the lease, or from the start of a
	// further pass of the same holder): a change waiting for a holder
	// sleeps until that holder's pass is due to end (onboard.HolderWatcher)
	// instead of polling the store every pause. Zero: not known.
	LastPass time.Duration
	// Adds counts the addresses the stored changes may have added, each
	// counted when its change bumped the version (like Version, only the
	// bump moves it: onboard.AddsCounter). AddsApplied is Adds as the last
	// reconcile that applied everything it read found it (never down, with
	// Applied). Adds − AddsApplied bounds what the changes stored since may
	// add to LastSeen: the cap check's bound without reading every user.
	Adds        int64
	AddsApplied int64
	// RecheckDue is when the earliest of the tool's writes recorded for a
	// second look in the audit trail (Recheck) is due: the trail is written
	// up to a minute late, so a save by someone else that a write overwrote
	// may show only then. Zero: none outstanding. The first reconcile that
	// starts at or after it checks them (#15 §5).
	RecheckDue time.Time
}

// Recheck is one write of the tool (a reconcile that PUT) recorded so that
// the audit trail is looked at again once it has caught up, for a save by
// someone else the write overwrote (#15 §5). The store keeps it whole and
// does not read Body (the onboarding service's record, a few KB); Alerted
// grows by concurrent adds (the keys of overwritten saves already alerted).
type Recheck struct {
	Key     string    // names the write; one record per key
	From    time.Time // the write's window start: records come back oldest first
	Body    string
	Alerted []string
}

// What became of the tool's last PUT (PortalState.SentOutcome). A refused
// PUT (4xx, or never sent) is not remembered at all: it was not applied.
const (
	SentInFlight    = "in flight"   // recorded before sending; no answer yet
	SentUnknown     = "unknown"     // sent, no definite answer (timeout, lost connection, 5xx): it may land later
	SentUnconfirmed = "unconfirmed" // answered 2xx, but the read-back failed
)

// ErrNotApplied is in the chain of a write's error when the write is known
// not to have been applied: refused with a 4xx answer on every attempt, or
// never sent (the lease fence). Any other write error leaves the outcome
// unknown.
var ErrNotApplied = errors.New("the write was not applied")

// ErrSuperseded is in the chain of a portal state write that was fenced
// off: another reconcile pass wrote the state since the writing pass read
// it (its lease ran out and a newer holder took over), so the newer pass's
// fields stand (PortalState.Pass).
var ErrSuperseded = errors.New("a newer reconcile pass wrote the portal allowlist state")

// DueAlert is an alert recorded before it is published; Key names its
// episode (kind and cause, never error text).
type DueAlert struct {
	Key   string
	Alert Alert
	Since time.Time
}

// Restriction is one entry of the portal's IP allowlist as the portal stores
// it: a single address compared as an exact string, optionally for admins only.
type Restriction struct {
	IP       string `json:"ip"`
	ForAdmin bool   `json:"forAdmin"`
}

// LoginEvent is one row of the portal's login history.
// Date is an instant (the portal's UTC offset already applied).
// IP is the text the portal returned: IPv6 addresses arrive cut at the first colon.
// Country, City, Browser and Platform are the portal's enrichment (GeoIP and
// User-Agent at read time), empty when it gave none. Every string is text the
// portal or an attacker chose: make it safe before showing it to a person.
// Raw is the event exactly as the API returned it.
//
// Unreadable is set (with Raw, and ID/Date when they could be read) for an
// event the adapter could not decode; such an event is reported and skipped,
// never evaluated.
type LoginEvent struct {
	ID         int64           `json:"id"`
	Date       time.Time       `json:"date"`
	User       string          `json:"user,omitempty"`
	UserID     string          `json:"userId,omitempty"`
	Login      string          `json:"login,omitempty"`
	Action     string          `json:"action,omitempty"`
	ActionID   int             `json:"actionId"`
	IP         string          `json:"ip,omitempty"`
	Country    string          `json:"country,omitempty"`
	City       string          `json:"city,omitempty"`
	Browser    string          `json:"browser,omitempty"`
	Platform   string          `json:"platform,omitempty"`
	Page       string          `json:"page,omitempty"`
	Raw        json.RawMessage `json:"-"`
	Unreadable string          `json:"-"`
}

// CanonicalUserID trims a user id and lower-cases it when it is a GUID, the
// form the portal's login events carry, so that ids from the onboarding
// pipeline and from the portal meet.
func CanonicalUserID(id string) string {
	id = strings.TrimSpace(id)
	if isGUID(id) {
		return strings.ToLower(id)
	}
	return id
}

func isGUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, r := range s {
		switch i {
		case 8, 13, 18, 23:
			if r != '-' {
				return false
			}
		default:
			if !('0' <= r && r <= '9' || 'a' <= r && r <= 'f' || 'A' <= r && r <= 'F') {
				return false
			}
		}
	}
	return true
}
