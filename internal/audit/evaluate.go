package audit

import (
	"encoding/json"
	"fmt"
	"hash"
	"math/big"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"time"

	"ipguard/internal/allowlist"
	"ipguard/internal/humantext"
	"ipguard/internal/ipguard"
)

// Finding kinds and severities.
const (
	KindIPNotAllowed           = "ip_not_allowed"
	KindUnknownUser            = "unknown_user"
	KindUnverifiableIP         = "unverifiable_ip"
	KindFailedLoginBurst       = "failed_login_burst"
	KindPasswordGuessSucceeded = "password_guess_succeeded"
	// KindCoverageLost: logins the audit could not evaluate (see coverage.go).
	KindCoverageLost = "coverage_lost"

	SeverityCritical = "critical"
	SeverityHigh     = "high"
	SeverityMedium   = "medium"
)

// Kinds lists every finding kind, in the order alerts present them.
// (The behaviour kinds follow them in alerts: see BehaviourKinds.)
var Kinds = []string{KindPasswordGuessSucceeded, KindCoverageLost, KindIPNotAllowed, KindUnknownUser, KindUnverifiableIP, KindFailedLoginBurst}

// Severities lists every severity, highest first. Each run sends one message
// (or more, when it must split) per severity, so that a subscription filter
// policy on the message attribute "severity" can route them.
// Low is only ever a behaviour finding's (new_device).
var Severities = []string{SeverityCritical, SeverityHigh, SeverityMedium, SeverityLow}

// MaxListedIDs is how many event ids a burst finding lists; Count says how
// many events it has and Capped says when the list is cut.
const MaxListedIDs = 50

// maxListedLogins is how many distinct login names a burst finding lists.
const maxListedLogins = 10

// maxBurstRaw is how many raw events a burst finding carries.
const maxBurstRaw = 3

// Finding is one thing to alert about, in the shape of the alert's JSON.
// A single-event finding carries EventID; a burst carries EventIDs (at most
// MaxListedIDs of them), Count, FirstAt and Capped. A reason that pairs the
// login with another one names it in Reason.EventID.
//
// Every string field but Kind, Severity and Reason may hold text the portal
// or an attacker chose; the JSON keeps it raw, and the e-mail, the SMS and
// the subject show it only through Clean.
type Finding struct {
	EventID  int64   `json:"eventId,omitempty"`
	EventIDs []int64 `json:"eventIds,omitempty"`
	Count    int     `json:"count,omitempty"`
	Capped   bool    `json:"capped,omitempty"` // EventIDs lists only the first MaxListedIDs of Count
	Kind     string  `json:"kind"`
	Severity string  `json:"severity"`
	Reason   string  `json:"reason"`
	UserID   string  `json:"userId,omitempty"`
	Email    string  `json:"email,omitempty"`
	User     string  `json:"user,omitempty"`
	Login    string  `json:"login,omitempty"`
	// Logins are the distinct login names a burst tried (at most 10).
	Logins []string `json:"logins,omitempty"`
	// Addresses is, for a burst that sums up many addresses (more than
	// MaxBurstAddresses burst in one window), how many it covers; IPs lists
	// the first few of them.
	Addresses int      `json:"addresses,omitempty"`
	IPs       []string `json:"ips,omitempty"`
	// FailedAttempts is, for password_guess_succeeded, how many failed
	// logins came from the same address in the same window, and FromKind
	// the kind the login had before it was raised (ip_not_allowed,
	// unknown_user or unverifiable_ip).
	FailedAttempts int `json:"failedAttempts,omitempty"`
	// Cause says, for coverage_lost, why logins were not evaluated
	// (second_unread, plan_fallback, unreadable_rows,
	// clock_skew, no_progress); Count is how many (UpTo: at most that many), FirstAt and
	// Date the span of login dates concerned.
	Cause    string          `json:"cause,omitempty"`
	UpTo     bool            `json:"upTo,omitempty"`
	FromKind string          `json:"fromKind,omitempty"`
	IP       string          `json:"ip"`
	Country  string          `json:"country,omitempty"`
	City     string          `json:"city,omitempty"`
	Browser  string          `json:"browser,omitempty"`
	Platform string          `json:"platform,omitempty"`
	Date     string          `json:"date"`                // RFC3339, UTC; a burst's last event
	FirstAt  string          `json:"firstDate,omitempty"` // a burst's first event
	Action   string          `json:"action,omitempty"`
	ActionID int             `json:"actionId,omitempty"`
	Raw      json.RawMessage `json:"raw,omitempty"` // the event as the API returned it; a burst: an array of its first few
	// Response is what was done about the login (see Responder); nil when
	// nothing applies (no responder, or a kind that is never enforced).
	Response *Response `json:"response,omitempty"`
	// Reasons are every rule the login broke once behaviour rules judged it
	// (package behaviour; absent otherwise), and Explanation says in plain
	// words what is new and what the user's normal is. (A password_spray
	// lists its accounts in Logins, its addresses in IPs and counts them
	// in Addresses.)
	Reasons     []Reason `json:"reasons,omitempty"`
	Explanation string   `json:"explanation,omitempty"`
	// NotMessaged: below BEHAVIOUR_MIN_SEVERITY, the finding is counted,
	// logged and kept for the digest, but sent in no message.
	NotMessaged bool `json:"notMessaged,omitempty"`
	// Episode is the episode of a login outside its user's allowlist and
	// Familiar why it was demoted to low (ALERT_MODE=grouped; episode.go).
	// Digest: the finding goes to the daily digest instead of a message of
	// its own (it is still published, recorded and counted).
	Episode  *Episode  `json:"episode,omitempty"`
	Familiar *Familiar `json:"familiar,omitempty"`
	Digest   bool      `json:"digest,omitempty"`
	// Trip: the login was told low as a probable trip (ProbableTrip).
	Trip *ProbableTrip `json:"trip,omitempty"`
	// DigestOnly (UNKNOWN_USER_POLICY=digest): an unknown_user finding
	// told in the daily digest's list of people without an allowlist, not
	// in a message of its own (whatever DIGEST_SEVERITIES says). It is
	// still counted, recorded as alerted and sent to the findings bus
	// (WHERE-ISSUES-MEET §1). A behaviour reason at or above
	// BEHAVIOUR_MIN_SEVERITY, or the guessing rule, makes it a message again.
	DigestOnly bool `json:"digestOnly,omitempty"`
	// UserType is the portal's type of the user (package docspace: guest,
	// user, room_admin, docspace_admin, owner) where the audit looked it up:
	// for DigestOnly findings, so that the digest names guests as guests.
	UserType string `json:"userType,omitempty"`

	// span is a burst's time span: every failed login from IP in it is
	// covered by the finding (recorded as one alerted span).
	span *ipguard.TimeSpan
	// clipped: the text fields were cut to fit one message.
	clipped bool
}

// spanKey is the key under which a span finding is remembered: the burst's
// address, or a lost-coverage cause's key.
func (f Finding) spanKey() string {
	switch {
	case f.Kind == KindCoverageLost:
		return coverageKey(f.Cause)
	case f.Kind == KindFailedLoginBurst && f.Addresses > 0:
		return burstSummaryKey
	}
	return f.IP
}

// burstSummaryKey remembers the spans of failed logins alerted in a burst
// summary (every address over MaxBurstAddresses in a window).
const burstSummaryKey = "bursts/summary"

// MaxBurstAddresses is how many addresses a window alerts as bursts one by
// one; the failed logins of any more are summed up in one finding per
// piece, so messages and alerted records stay bounded.
const MaxBurstAddresses = 20

// ids returns the alerted-record ids of a single-login finding, or nil for
// a burst (a burst is remembered by its address and span, not by ids). A
// login raised to password_guess_succeeded is also recorded under −id: a
// login alerted at a lower severity before its failed attempts were seen
// (they were read later: the walk reads newest first) is alerted once more,
// as critical, and only once.
func (f Finding) ids() []int64 {
	if f.span != nil {
		return nil
	}
	if f.Kind == KindPasswordGuessSucceeded {
		return []int64{f.EventID, -f.EventID}
	}
	return []int64{f.EventID}
}

// alertedBy reports whether alerted (by record id) holds f.
func (f Finding) alertedBy(alerted map[int64]bool) bool {
	if f.Kind == KindPasswordGuessSucceeded {
		return alerted[-f.EventID]
	}
	return alerted[f.EventID]
}

// The values of Policy.UnknownUsers (UNKNOWN_USER_POLICY as ALERT_MODE
// leaves it in force).
const (
	UnknownAlert  = "alert"
	UnknownDigest = "digest"
	UnknownIgnore = "ignore"
)

// Policy are the evaluation rules.
type Policy struct {
	// UnknownUsers says what a successful login by a user without an
	// allowlist gives: UnknownAlert, an unknown_user finding in the
	// messages; UnknownDigest, the same finding marked DigestOnly (counted,
	// recorded, on the findings bus, told in the daily digest's list of
	// people without an allowlist instead of a message); UnknownIgnore (or
	// empty), no unknown_user finding. Whatever the policy, such a login
	// that follows failed attempts from its address is
	// password_guess_succeeded, and the behaviour rules judge it like any
	// other.
	UnknownUsers string
	// FailedLoginThreshold: this many failed logins or more from one address
	// in one window, each against an account that may not use that address
	// (or no stored account), make a burst finding; 0 turns the burst
	// finding off (password_guess_succeeded stays on).
	FailedLoginThreshold int
}

// Allowlists answers, per user, which addresses are allowed. It loads users
// as the audit meets them and keeps them for the run.
type Allowlists struct {
	users map[string]*userList // by canonical user id
	// byLogin maps a lower-cased e-mail to its user, for judging failed
	// logins by the account they targeted; nil until needed.
	byLogin map[string]*userList
	all     func() ([]ipguard.User, error)
	// stored are the users as stored, history their allowlist histories.
	stored  map[string]ipguard.User
	history map[string]ipguard.AllowlistHistory
	// Warnings are the stored entries that no longer parse (skipped).
	Warnings []string
}

type userList struct {
	id    string
	email string
	set   allowlist.Set // entries that count for every login the audit reads
	timed []timedEntry  // entries that count only for some logins (by their time)
	// offboardedAt, when set, says the user has no stored record since then:
	// the list is what the history says the user had before.
	offboardedAt time.Time
	// info are the current entries with what they were onboarded with
	// (DeclaredEntry), each counting in [from, until).
	info []entryInfo
}

// entryInfo is one current entry of a user for Allowlists.DeclaredEntry.
type entryInfo struct {
	DeclaredEntry
	entry       allowlist.Entry
	size        *big.Int
	from, until time.Time
}

// timedEntry is entries that count for logins dated in [from, until): a
// travel-mode entry (until its expiry), one added after some logins (from
// when it was added), one removed since (until then). Zero: unbounded.
type timedEntry struct {
	set         allowlist.Set
	from, until time.Time
}

// allows reports whether the user may log in from addr at the time at, by
// the allowlist in force then: an entry counts only for logins after it was
// added and before it expired or was removed, even when the audit reads
// them later (a backlog, a backfill, a slow run).
func (ul *userList) allows(addr allowlist.Addr, at time.Time) bool {
	if ul.set.Contains(addr) {
		return true
	}
	for _, t := range ul.timed {
		if (t.from.IsZero() || !at.Before(t.from)) && (t.until.IsZero() || at.Before(t.until)) && t.set.Contains(addr) {
			return true
		}
	}
	return false
}

// NewAllowlists builds per-user sets from stored users. all returns every
// stored user (it is called at most once, when a failed login has to be
// judged). A stored entry that no longer parses is skipped with a warning,
// so the logins it would have allowed are alerted, never silently allowed.
func NewAllowlists(users map[string]ipguard.User, all func() ([]ipguard.User, error)) *Allowlists {
	a := &Allowlists{users: map[string]*userList{}, all: all}
	a.Add(users)
	return a
}

// Add adds stored users (keyed by id) to the lists.
func (a *Allowlists) Add(users map[string]ipguard.User) {
	if a.stored == nil {
		a.stored = map[string]ipguard.User{}
	}
	for _, u := range users {
		id := ipguard.CanonicalUserID(u.ID)
		a.stored[id] = u
		a.users[id] = a.build(u)
	}
}

// Known reports whether the user id was added (whether or not it has a user).
func (a *Allowlists) has(id string) bool { _, ok := a.users[id]; return ok }

// markMissing records that id has no stored user.
func (a *Allowlists) markMissing(id string) { a.users[id] = nil }

func (a *Allowlists) build(u ipguard.User) *userList {
	return a.buildWith(u, a.history[ipguard.CanonicalUserID(u.ID)])
}

// buildWith builds u's list with its allowlist history h (the zero value:
// none): entries whose start or end the history knows count by time.
func (a *Allowlists) buildWith(u ipguard.User, h ipguard.AllowlistHistory) *userList {
	var entries []allowlist.Entry
	groups := map[[2]time.Time][]allowlist.Entry{}
	var order [][2]time.Time
	addTimed := func(from, until time.Time, es []allowlist.Entry) {
		k := [2]time.Time{from, until}
		if groups[k] == nil {
			order = append(order, k)
		}
		groups[k] = append(groups[k], es...)
	}
	if u.Unreadable != "" {
		a.Warnings = append(a.Warnings, fmt.Sprintf("stored user %s cannot be read (%s); every login of the user is alerted until it is onboarded again", humantext.Line(u.ID, 80), humantext.Line(u.Unreadable, 200)))
	}
	parse := func(raw string) ([]allowlist.Entry, bool) {
		es, err := allowlist.ParseStored([]string{raw})
		if err != nil {
			a.Warnings = append(a.Warnings, fmt.Sprintf("stored allowlist entry %s of user %s no longer parses and is skipped (logins it would allow are alerted): %s",
				humantext.Line(fmt.Sprintf("%q", raw), 120), humantext.Line(u.ID, 80), humantext.Line(err.Error(), 200)))
			return nil, false
		}
		return es, true
	}
	var info []entryInfo
	since := map[string]time.Time{} // current entries: when they started counting
	for _, sp := range h.Spans {
		if sp.Until.IsZero() && !sp.From.IsZero() {
			since[sp.Entry] = sp.From
		}
	}
	for _, raw := range u.Entries {
		es, ok := parse(raw)
		if !ok {
			continue
		}
		var until time.Time
		if d, ok := u.Details[raw]; ok && !d.ExpiresAt.IsZero() {
			until = d.ExpiresAt
		}
		for _, e := range es {
			d := u.Details[raw]
			info = append(info, entryInfo{DeclaredEntry: DeclaredEntry{Entry: raw, Place: d.Place, Note: d.Note},
				entry: e, size: e.NumAddresses(), from: since[raw], until: until})
		}
		if from := since[raw]; !from.IsZero() || !until.IsZero() {
			addTimed(from, until, es)
			continue
		}
		entries = append(entries, es...)
	}
	// Entries that stopped counting: removed or offboarded (the history),
	// expired travel entries a reconcile took off the list.
	for _, sp := range h.Spans {
		if sp.Until.IsZero() {
			continue
		}
		if es, err := allowlist.ParseStored([]string{sp.Entry}); err == nil {
			addTimed(sp.From, sp.Until, es)
		}
	}
	for _, x := range u.Expired {
		if es, err := allowlist.ParseStored([]string{x.Entry}); err == nil && !x.ExpiresAt.IsZero() {
			addTimed(time.Time{}, x.ExpiresAt, es)
		}
	}
	ul := &userList{id: u.ID, email: u.Email, set: allowlist.NewSet(entries), info: info}
	if ul.email == "" {
		ul.email = h.Email
	}
	for _, k := range order {
		ul.timed = append(ul.timed, timedEntry{set: allowlist.NewSet(groups[k]), from: k[0], until: k[1]})
	}
	return ul
}

// AddHistory gives the lists the allowlist histories of users (by id, as
// the store returns them): stored users among them are built again with
// theirs, and a user with no stored record whose history says it was
// offboarded is judged by the list it had before.
func (a *Allowlists) AddHistory(hist map[string]ipguard.AllowlistHistory) {
	if a.history == nil {
		a.history = map[string]ipguard.AllowlistHistory{}
	}
	for id, h := range hist {
		id = ipguard.CanonicalUserID(id)
		a.history[id] = h
		switch ul, ok := a.users[id]; {
		case ok && ul != nil && ul.offboardedAt.IsZero() && a.stored[id].ID != "":
			a.users[id] = a.buildWith(a.stored[id], h)
		case (!ok || ul == nil) && !h.OffboardedAt.IsZero():
			past := a.buildWith(ipguard.User{ID: id}, h)
			past.offboardedAt = h.OffboardedAt
			a.users[id] = past
		}
	}
}

// target returns the stored account a failed login was aimed at: the user
// whose e-mail equals the login name typed, or the event's own user id.
func (a *Allowlists) target(ev ipguard.LoginEvent) (*userList, error) {
	if ul := a.users[ipguard.CanonicalUserID(ev.UserID)]; ul != nil {
		return ul, nil
	}
	login := strings.ToLower(strings.TrimSpace(ev.Login))
	if login == "" {
		return nil, nil
	}
	if a.byLogin == nil {
		a.byLogin = map[string]*userList{}
		if a.all != nil {
			all, err := a.all()
			if err != nil {
				return nil, ipguard.Errorf(ipguard.ErrorCode(err), "audit: load all allowlists: %w", err)
			}
			for _, u := range all {
				if u.Email != "" {
					a.byLogin[strings.ToLower(u.Email)] = a.build(u)
				}
			}
		}
	}
	return a.byLogin[login], nil
}

// Evaluator judges the login events of one window, piece by piece, in the
// order the walk reads them (newest first). It never keeps the events
// themselves. Per failing address it keeps a counter of a few dozen bytes
// (how many failed logins, how many count toward a burst, their first and
// last second); the details a burst alert shows (a sample event, up to
// MaxListedIDs ids, up to 10 login names, 3 raw events) only for addresses
// that reached the threshold. So a window of 250,000 failing addresses
// costs a few megabytes, not one event each.
type Evaluator struct {
	lists  *Allowlists
	policy Policy
	// counters, one per failing address in the order first seen; failed
	// indexes the whole addresses, cut the text the portal cut (an IPv6
	// address at its first colon), which never correlates and is a burst
	// key of its own. extra holds what few addresses need (alerted spans,
	// a burst's details), by index.
	counters []counter
	failed   addrIndex
	cut      map[string]int32
	extra    map[int32]*counterExtra
	// raised: successful logins from a whole address judged before failed
	// logins from it within GuessWindow before them were seen (the walk
	// reads newest first, so older failed attempts may come in a later
	// piece, or, past a cursor, in the next run: PendingGuesses), by
	// address; a failed login from that address dated within GuessWindow
	// before one of them, seen later, raises it. At most maxRemembered in
	// all; ForgetUnraisable drops those no failed login still to be read
	// can raise.
	raised     map[addrKey][]Finding
	remembered int
	// pendingAt: addresses of logins a cursor carried, whose kept failed
	// logins the next StoredFailuresWanted asks for (the newest login each).
	pendingAt map[addrKey]time.Time
	// stored are failed logins remembered by earlier runs (see
	// SetStoredFailures), by address: one record per time bucket.
	stored map[addrKey]storedFailures
	// GuessWindow is how far back a failed login makes a successful login
	// from the same address password_guess_succeeded: failed logins dated
	// within [login − GuessWindow, login] count, whatever the run's window
	// (0: DefaultGuessWindow).
	GuessWindow time.Duration
	// BurstWindow is SPRAY_WINDOW for failed_login_burst (burst.go; 0:
	// DefaultBurstWindow), and Since the start of the run's window: the
	// counted failed logins earlier runs kept are asked for only for failed
	// logins within a burst window of it.
	BurstWindow time.Duration
	Since       time.Time
	// AccountKey keys the hash the password-guess rule keeps accounts
	// under (guess.go accountHash; Store.AccountHashKey). Every run of a
	// deployment must use the same key, or the accounts earlier runs kept
	// within GUESS_WINDOW are not recognised (nil: an empty HMAC key, for
	// tests).
	AccountKey []byte
	mac        hash.Hash         // HMAC-SHA256 keyed with AccountKey, made at first use
	hashes     map[string]uint64 // accountHash's recent answers (bounded)
	// AlreadyAlerted counts failed logins skipped because a stored alerted
	// span covers them.
	AlreadyAlerted int
	// summarised are the spans alerted in burst summaries (SetSummarised);
	// burstAddrs counts the addresses alerted one by one in this window.
	summarised []ipguard.TimeSpan
	burstAddrs int
	// flushed are bursts told before Bursts was called: an older burst
	// from the same address began more than SPRAY_WINDOW before them.
	flushed []Finding
	// buckets are the failed logins to remember, per bucket start (unix)
	// and address, until FailuresToRemember hands them out.
	buckets map[int64]map[addrKey]*bucketCount
}

// SetSummarised gives the evaluator the spans of failed logins already
// alerted in burst summaries: failed logins dated within them count as
// alerted, whatever their address.
func (e *Evaluator) SetSummarised(spans []ipguard.TimeSpan) { e.summarised = spans }

// addrKey is a whole address as 16 bytes (IPv4 mapped), a map key without
// pointers.
type addrKey [16]byte

// counter is what the evaluator keeps of the failed logins from one
// address: 24 bytes, no pointers (its address is the key that indexes it).
type counter struct {
	seen            int32  // every failed login from the address in the window so far
	counted         int32  // those that count toward the threshold (published or not)
	pending         int32  // counted and not yet published
	first, last     uint32 // unix seconds of the pending ones
	whole, lookedUp bool
}

// counterExtra is what only a few addresses need.
type counterExtra struct {
	text    string // the address as alerts show it (set for cut addresses and bursts)
	alerted []ipguard.TimeSpan
	burst   *burstDetail // once counted reaches the threshold
}

// burstDetail is what a burst alert shows beyond the counts.
type burstDetail struct {
	ids    []int64
	logins []string
	raws   []json.RawMessage
	sample ipguard.LoginEvent
}

// NewEvaluator starts the evaluation of one window.
func NewEvaluator(lists *Allowlists, p Policy) *Evaluator {
	return &Evaluator{lists: lists, policy: p, failed: addrIndex{v4: map[uint32]int32{}, v6: map[addrKey]int32{}}, cut: map[string]int32{},
		extra: map[int32]*counterExtra{}, buckets: map[int64]map[addrKey]*bucketCount{}}
}

// parseAddr returns the whole address of a login's address text.
func parseAddr(ip string) (addrKey, allowlist.Addr, bool) {
	a, ok := allowlist.ParseLoginIP(ip)
	if !ok {
		return addrKey{}, a, false
	}
	return addrKey(a.As16()), a, true
}

// lookup returns the index of ip's counter (-1 when there is none and
// create is not set).
func (e *Evaluator) lookup(ip string, create bool) int32 {
	k, _, whole := parseAddr(ip)
	if whole {
		i, ok := e.failed.get(k)
		if !ok {
			if !create {
				return -1
			}
			i = int32(len(e.counters))
			e.counters = append(e.counters, counter{whole: true})
			e.failed.put(k, i)
		}
		return i
	}
	i, ok := e.cut[ip]
	if !ok {
		if !create {
			return -1
		}
		i = int32(len(e.counters))
		e.counters = append(e.counters, counter{})
		e.cut[ip] = i
		e.more(i).text = ip
	}
	return i
}

// more returns the extra of counter i, creating it.
func (e *Evaluator) more(i int32) *counterExtra {
	x := e.extra[i]
	if x == nil {
		x = &counterExtra{}
		e.extra[i] = x
	}
	return x
}

// text is counter i's address as alerts show it (known for cut addresses
// and for those that reached the burst threshold).
func (e *Evaluator) text(i int32) string {
	if x := e.extra[i]; x != nil {
		return x.text
	}
	return ""
}

func keyText(k addrKey) string { return netip.AddrFrom16(k).Unmap().String() }

// FailedAddresses returns the addresses of failed logins in evs whose stored
// alerted spans the evaluator has not been given yet (see SetAlerted) and
// that may reach the burst threshold with this piece: an address below it
// can raise no burst, so its spans are not needed.
func (e *Evaluator) FailedAddresses(evs []ipguard.LoginEvent) []string {
	if e.policy.FailedLoginThreshold <= 0 {
		return nil
	}
	inPiece := map[string]int{}
	var order []string
	for _, ev := range evs {
		if !ev.IsFailedLogin() {
			continue
		}
		text := ev.IP
		if _, a, whole := parseAddr(ev.IP); whole {
			text = a.String()
		}
		if inPiece[text] == 0 {
			order = append(order, text)
		}
		inPiece[text]++
	}
	var out []string
	for _, text := range order {
		i := e.lookup(text, false)
		before := 0
		if i >= 0 {
			if e.counters[i].lookedUp {
				continue
			}
			before = int(e.counters[i].counted)
		}
		if k, _, whole := parseAddr(text); whole {
			before += e.storedCounted(k) // what earlier runs counted (burst.go)
		}
		if before+inPiece[text] >= e.policy.FailedLoginThreshold {
			out = append(out, text)
		}
	}
	return out
}

// SetAlerted gives the evaluator the spans already alerted for ip.
func (e *Evaluator) SetAlerted(ip string, spans []ipguard.TimeSpan) {
	i := e.lookup(ip, true)
	e.counters[i].lookedUp = true
	if len(spans) > 0 {
		e.more(i).alerted = spans
	}
}

// storedFailures is what earlier runs remembered of one address's failed
// logins dated from `from` on (one record per time bucket).
type storedFailures struct {
	from time.Time
	recs []ipguard.AddressFailures
}

func (e *Evaluator) guessWindow() time.Duration {
	if e.GuessWindow > 0 {
		return e.GuessWindow
	}
	return DefaultGuessWindow
}

// StoredFailuresWanted returns the whole addresses of successful logins in
// evs whose failed logins remembered by earlier runs, from GuessWindow
// before the oldest of evs on, were not asked for yet, and the span to ask
// for: [from, to].
func (e *Evaluator) StoredFailuresWanted(evs []ipguard.LoginEvent) (ips []string, from, to time.Time) {
	seen := map[addrKey]bool{}
	first, last := piecedates(evs)
	from = first.Add(-e.guessWindow())
	for _, ev := range evs {
		if !ev.IsSuccessfulLogin() {
			continue
		}
		k, a, whole := parseAddr(ev.IP)
		if !whole || seen[k] {
			continue
		}
		seen[k] = true
		if st, asked := e.stored[k]; asked && !from.Before(st.from) {
			continue
		}
		ips = append(ips, a.String())
	}
	if e.policy.FailedLoginThreshold > 0 {
		// Failed logins that a burst window may join with what earlier
		// runs read (those within a window of the run's start).
		reach := time.Duration(e.burstBuckets()+1) * FailureBucket
		for _, ev := range evs {
			if !ev.IsFailedLogin() || (!e.Since.IsZero() && !ev.Date.Before(e.Since.Add(reach))) {
				continue
			}
			k, a, whole := parseAddr(ev.IP)
			if !whole || seen[k] {
				continue
			}
			seen[k] = true
			if ev.Date.Add(-reach).Before(from) {
				from = ev.Date.Add(-reach)
			}
			if st, asked := e.stored[k]; asked && !from.Before(st.from) {
				continue
			}
			ips = append(ips, a.String())
		}
	}
	// Logins a cursor carried (SetPendingGuesses): what earlier runs kept
	// within GUESS_WINDOW before them, asked for once.
	for k, at := range e.pendingAt {
		if at.Add(-e.guessWindow()).Before(from) {
			from = at.Add(-e.guessWindow())
		}
		if at.After(last) {
			last = at
		}
		if !seen[k] {
			seen[k] = true
			ips = append(ips, keyText(k))
		}
	}
	e.pendingAt = nil
	return ips, from, last
}

// SetStoredFailures gives the evaluator what earlier runs remembered of the
// failed logins from the addresses asked for, dated from `from` on
// (absent: none).
func (e *Evaluator) SetStoredFailures(asked []string, got map[string][]ipguard.AddressFailures, from time.Time) {
	if e.stored == nil {
		e.stored = map[addrKey]storedFailures{}
	}
	for _, ip := range asked {
		k, _, whole := parseAddr(ip)
		if !whole {
			continue
		}
		// United with what was read before for the address (a newer span,
		// which logins remembered to be raised still look at); a bucket
		// read again is taken as read now.
		st := e.stored[k]
		if st.from.IsZero() || from.Before(st.from) {
			st.from = from
		}
		fresh := got[ip]
		kept := fresh
		for _, r := range st.recs {
			b := r.Last.Truncate(FailureBucket)
			if !slices.ContainsFunc(fresh, func(x ipguard.AddressFailures) bool { return x.Last.Truncate(FailureBucket).Equal(b) }) {
				kept = append(kept, r)
			}
		}
		st.recs = kept
		e.stored[k] = st // none: asked, nothing remembered
	}
}

// ForgetUnraisable drops the remembered successful logins that no failed
// login still to be read can raise: every row dated after done was read,
// so a login dated after done + GuessWindow has all its window read.
func (e *Evaluator) ForgetUnraisable(done time.Time) {
	if done.IsZero() {
		return
	}
	for k, fs := range e.raised {
		kept := fs[:0]
		for _, f := range fs {
			if at, err := time.Parse(time.RFC3339, f.Date); err == nil && !at.Add(-e.guessWindow()).After(done) {
				kept = append(kept, f)
			}
		}
		e.remembered -= len(fs) - len(kept)
		if len(kept) == 0 {
			delete(e.raised, k)
			continue
		}
		e.raised[k] = kept
	}
}

// MaxPendingGuesses bounds the logins a cursor carries to the next run
// (see PendingGuesses).
const MaxPendingGuesses = 200

// PendingGuesses returns the successful logins (their findings, without
// the raw event) that failed logins dated at or below done could still
// raise: those within GuessWindow after done, oldest first, at most
// MaxPendingGuesses. A run that stops at a cursor saves them with it, so
// that the next run, which reads the older rows, raises a login whose
// failed attempts lie on the other side of the cut (#16 §6, #21 §3).
// The second result counts those left out by the bound.
func (e *Evaluator) PendingGuesses(done time.Time) ([]Finding, int) {
	var out []Finding
	for _, fs := range e.raised {
		for _, f := range fs {
			if at, err := time.Parse(time.RFC3339, f.Date); err == nil && !at.Add(-e.guessWindow()).After(done) {
				f.Raw = nil
				out = append(out, f)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Date != out[j].Date {
			return out[i].Date < out[j].Date
		}
		return out[i].EventID < out[j].EventID
	})
	if len(out) > MaxPendingGuesses {
		return out[:MaxPendingGuesses], len(out) - MaxPendingGuesses
	}
	return out, 0
}

// SetPendingGuesses gives the evaluator the logins an earlier run left
// for failed logins below its cursor to raise (PendingGuesses).
func (e *Evaluator) SetPendingGuesses(fs []Finding) {
	for _, f := range fs {
		k, _, whole := parseAddr(f.IP)
		if !whole || e.remembered >= maxRemembered {
			continue
		}
		if e.raised == nil {
			e.raised = map[addrKey][]Finding{}
		}
		e.raised[k] = append(e.raised[k], f)
		e.remembered++
		if at, err := time.Parse(time.RFC3339, f.Date); err == nil {
			if e.pendingAt == nil {
				e.pendingAt = map[addrKey]time.Time{}
			}
			if at.After(e.pendingAt[k]) {
				e.pendingAt[k] = at
			}
		}
	}
}

// FailureBucket is how the failed logins to remember are grouped by date:
// a bucket is handed out (FailuresToRemember) once the walk is past it.
const FailureBucket = 10 * time.Minute

// bucketCount is one address's failed logins within one bucket (n, and
// the span of everything it holds), and per account (guess.go) when they
// and its successful logins from the address came.
type bucketCount struct {
	n           int32
	first, last uint32
	accts       []acctTimes
	more        int32 // failed logins of accounts beyond maxMemAccounts (guess.go)
	// counted are the failed logins that count toward a burst, per second
	// (burst.go; at most the bucket's 600 seconds).
	counted []ipguard.SecondCount
}

// FailuresToRemember returns, per whole address and bucket, the failed
// logins (and the successes that may resolve them: guess.go) of the
// buckets that lie wholly after done + GuessWindow or a burst window
// (every row dated after done was read, and no login still to be judged,
// raised or counted into a burst looks at them),
// or of every bucket when done is zero (the window ended or stopped), and
// forgets them: what is held at once is a few buckets of a flood, never
// the whole window.
func (e *Evaluator) FailuresToRemember(done time.Time) []ipguard.AddressFailures {
	var out []ipguard.AddressFailures
	var keys []int64
	for b := range e.buckets {
		if done.IsZero() || b > done.Add(e.holdFor()).Unix() {
			keys = append(keys, b)
		}
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	for _, b := range keys {
		for k, c := range e.buckets[b] {
			if r, ok := e.storedRecord(k, c); ok {
				out = append(out, r)
			}
		}
	}
	for _, b := range keys {
		delete(e.buckets, b)
	}
	return out
}

// addrIndex indexes counters by whole address: IPv4 by 4 bytes (most
// floods), the rest by 16.
type addrIndex struct {
	v4 map[uint32]int32
	v6 map[addrKey]int32
}

func v4of(k addrKey) (uint32, bool) {
	for _, b := range k[:10] {
		if b != 0 {
			return 0, false
		}
	}
	if k[10] != 0xff || k[11] != 0xff {
		return 0, false
	}
	return uint32(k[12])<<24 | uint32(k[13])<<16 | uint32(k[14])<<8 | uint32(k[15]), true
}

func (x addrIndex) get(k addrKey) (int32, bool) {
	if v, ok := v4of(k); ok {
		i, found := x.v4[v]
		return i, found
	}
	i, found := x.v6[k]
	return i, found
}

func (x addrIndex) put(k addrKey, i int32) {
	if v, ok := v4of(k); ok {
		x.v4[v] = i
		return
	}
	x.v6[k] = i
}

// maxRemembered bounds the successful logins the evaluator keeps to raise
// when their address's failed attempts come later.
const maxRemembered = 5000

// Add evaluates one piece of events (the users of its successful logins must
// have been added to the lists) and returns its single-login findings, in
// event order, then the logins of earlier pieces this piece's failed logins
// raise to password_guess_succeeded. Failed logins are counted per address;
// Bursts returns the bursts that are due. Logouts and other non-login
// actions are ignored.
func (e *Evaluator) Add(evs []ipguard.LoginEvent) ([]Finding, error) {
	// The piece's successes first: one may resolve a failed login of its
	// account in this piece (guess.go).
	for _, ev := range evs {
		if !ev.IsSuccessfulLogin() {
			continue
		}
		if k, _, whole := parseAddr(ev.IP); whole {
			for _, h := range e.ownAccounts(ev.Login, ev.UserID, e.emailOf(ev.UserID)) {
				e.noteLogin(k, ev.Date, h, false)
			}
		}
	}
	var touched []addrKey
	seen := map[addrKey]bool{}
	for _, ev := range evs {
		if !ev.IsFailedLogin() {
			continue
		}
		if err := e.addFailed(ev); err != nil {
			return nil, err
		}
		if k, _, whole := parseAddr(ev.IP); whole && !seen[k] {
			seen[k] = true
			touched = append(touched, k)
		}
	}
	// Logins of earlier pieces that these older failed logins make guesses.
	var raised []Finding
	for _, k := range touched {
		raised = append(raised, e.rejudge(k)...)
	}
	var out []Finding
	for _, ev := range evs {
		if !ev.IsSuccessfulLogin() {
			continue
		}
		if f, ok := e.evaluateLogin(ev); ok {
			out = append(out, f)
		}
	}
	return append(out, raised...), nil
}

// addFailed counts a failed login toward the correlation (always: it only
// needs a counter per address) and, when bursts are on, toward its
// address's burst.
func (e *Evaluator) addFailed(ev ipguard.LoginEvent) error {
	i := e.lookup(ev.IP, true)
	c := &e.counters[i]
	c.seen++
	secs := uint32(max(0, ev.Date.Unix()))
	k, _, whole := parseAddr(ev.IP)
	if whole {
		e.noteLogin(k, ev.Date, e.failedAccount(ev), true)
	}
	if e.policy.FailedLoginThreshold <= 0 {
		return nil // bursts are off: a counter is all the correlation needs
	}
	if c.whole {
		ul, err := e.lists.target(ev)
		if err != nil {
			return err
		}
		c = &e.counters[i]
		if addr, ok := allowlist.ParseLoginIP(ev.IP); ok && ul != nil && ul.allows(addr, ev.Date) {
			return nil // the targeted account may use this address: a forgotten password, not an attack
		}
		// It counts toward the burst window (burst.go), alerted or not.
		e.noteCounted(k, ev.Date)
	}
	for _, s := range e.summarised {
		if !ev.Date.Before(s.From) && !ev.Date.After(s.To) {
			c.counted++
			e.AlreadyAlerted++
			return nil
		}
	}
	if x := e.extra[i]; x != nil {
		for _, s := range x.alerted {
			// Within an alerted burst, or within SPRAY_WINDOW after it: the
			// same burst going on, told once (a burst that spans runs).
			// Within SPRAY_WINDOW before it too: the walk reads newest
			// first, so a run that reads a burst in several pieces alerts
			// its newest part first and meets the older part afterwards,
			// which one piece would have told as the same burst.
			if !ev.Date.Before(s.From.Add(-e.burstWindow())) && !ev.Date.After(s.To.Add(e.burstWindow())) {
				c.counted++
				e.AlreadyAlerted++
				return nil
			}
		}
	}
	if c.pending > 0 && int64(secs)+int64(e.burstWindow()/time.Second) < int64(c.first) {
		// More than SPRAY_WINDOW before the pending failed logins (the walk
		// reads newest first): those are a burst of their own, told now,
		// or none (forgotten).
		if x := e.extra[i]; x != nil && x.burst != nil {
			e.burstAddrs++
			e.told(i)
			e.flushed = append(e.flushed, e.burst(i))
			x.burst = nil
		}
		c.pending = 0
	}
	c.counted++
	c.pending++
	if c.pending == 1 || secs < c.first {
		c.first = secs
	}
	if c.pending == 1 || secs > c.last {
		c.last = secs
	}
	reached := c.counted >= int32(e.policy.FailedLoginThreshold) // a cut address: within the run
	if whole {
		reached = e.burstCount(k, ev.Date) >= e.policy.FailedLoginThreshold
	}
	if !reached && (e.extra[i] == nil || e.extra[i].burst == nil) {
		return nil // below the threshold: the counter is all that is kept
	}
	x := e.more(i)
	if x.burst == nil {
		x.burst = &burstDetail{sample: ev}
		if x.text == "" {
			x.text = ev.IP
			if whole {
				x.text = keyText(k)
			}
		}
	}
	b := x.burst
	if len(b.ids) < MaxListedIDs {
		b.ids = append(b.ids, ev.ID)
	}
	if l := strings.TrimSpace(ev.Login); l != "" && len(b.logins) < maxListedLogins && !slices.Contains(b.logins, l) {
		b.logins = append(b.logins, l)
	}
	if len(b.raws) < maxBurstRaw && len(ev.Raw) > 0 {
		b.raws = append(b.raws, ev.Raw)
	}
	return nil
}

// Bursts returns a finding for each address whose failed logins reached the
// threshold and has some not yet returned, and forgets those: the next call
// returns only failed logins added since (a burst that goes on).
func (e *Evaluator) Bursts() []Finding {
	if e.policy.FailedLoginThreshold <= 0 {
		return nil
	}
	out := e.flushed
	e.flushed = nil
	// Only addresses that reached the threshold have a burst's details.
	idx := make([]int32, 0, len(e.extra))
	for i, x := range e.extra {
		if x.burst != nil {
			idx = append(idx, i)
		}
	}
	due := idx[:0]
	for _, i := range idx {
		if c := &e.counters[i]; c.pending > 0 {
			due = append(due, i) // the burst detail exists once the threshold was reached
		}
	}
	// The largest first; beyond MaxBurstAddresses in the window, one sum.
	sort.Slice(due, func(a, b int) bool {
		ca, cb := e.counters[due[a]].pending, e.counters[due[b]].pending
		if ca != cb {
			return ca > cb
		}
		return due[a] < due[b]
	})
	var rest []int32
	for _, i := range due {
		if e.burstAddrs >= MaxBurstAddresses {
			rest = append(rest, i)
			continue
		}
		e.burstAddrs++
		e.told(i)
		out = append(out, e.burst(i))
		e.counters[i].pending = 0
		e.extra[i].burst = nil
	}
	if len(rest) > 0 {
		out = append(out, e.summary(rest))
	}
	return out
}

// told remembers counter i's pending failed logins, about to be told as
// a burst, as an alerted span of its address (as Store.AlertedSpans gives a
// later run): the failed logins of the same burst that later pieces of
// this window read (older ones: the walk reads newest first) continue it
// and are not told again as "more failed logins".
func (e *Evaluator) told(i int32) {
	c := &e.counters[i]
	x := e.more(i)
	x.alerted = append(x.alerted, ipguard.TimeSpan{From: time.Unix(int64(c.first), 0).UTC(), To: time.Unix(int64(c.last), 0).UTC()})
}

// summary sums up the bursts of the addresses rest in one finding.
func (e *Evaluator) summary(rest []int32) Finding {
	f := Finding{Kind: KindFailedLoginBurst, Severity: SeverityMedium, Addresses: len(rest)}
	var first, last uint32
	for k, i := range rest {
		c := &e.counters[i]
		b := e.extra[i].burst
		if k == 0 || c.first < first {
			first = c.first
		}
		if k == 0 || c.last > last {
			last = c.last
		}
		f.Count += int(c.pending)
		e.told(i)
		if len(f.IPs) < maxListedLogins {
			f.IPs = append(f.IPs, e.text(i))
		}
		for _, id := range b.ids {
			if len(f.EventIDs) < MaxListedIDs {
				f.EventIDs = append(f.EventIDs, id)
			}
		}
		for _, l := range b.logins {
			if len(f.Logins) < maxListedLogins && !slices.Contains(f.Logins, l) {
				f.Logins = append(f.Logins, l)
			}
		}
		c.pending = 0
		e.extra[i].burst = nil
	}
	sort.Slice(f.EventIDs, func(a, b int) bool { return f.EventIDs[a] < f.EventIDs[b] })
	from, to := time.Unix(int64(first), 0).UTC(), time.Unix(int64(last), 0).UTC()
	f.FirstAt, f.Date = from.Format(time.RFC3339), to.Format(time.RFC3339)
	f.Capped = f.Count > len(f.EventIDs)
	f.IP = fmt.Sprintf("%d addresses", len(rest))
	f.span = &ipguard.TimeSpan{From: from, To: to}
	f.Reason = fmt.Sprintf("%d failed logins from %d more addresses, each at or over the threshold (%d); more than %d addresses burst in this window, so these are summed up here (the first %d are listed)",
		f.Count, len(rest), e.policy.FailedLoginThreshold, MaxBurstAddresses, len(f.IPs))
	return f
}

func (e *Evaluator) burst(i int32) Finding {
	c := &e.counters[i]
	b := e.extra[i].burst
	sort.Slice(b.ids, func(i, j int) bool { return b.ids[i] < b.ids[j] })
	first, last := time.Unix(int64(c.first), 0).UTC(), time.Unix(int64(c.last), 0).UTC()
	n := int(c.pending)
	f := Finding{Kind: KindFailedLoginBurst, Severity: SeverityMedium, IP: e.text(i),
		FirstAt: first.Format(time.RFC3339), Date: last.Format(time.RFC3339),
		UserID: b.sample.UserID, User: b.sample.User, Login: b.sample.Login, Action: b.sample.Action,
		Country: b.sample.Country, City: b.sample.City, Browser: b.sample.Browser, Platform: b.sample.Platform,
		EventIDs: append([]int64(nil), b.ids...), Count: n, Capped: n > len(b.ids),
		Logins: append([]string(nil), b.logins...),
		span:   &ipguard.TimeSpan{From: first, To: last}}
	f.Reason = fmt.Sprintf("%d failed logins (threshold %d) from an address that none of the targeted accounts may use", n, e.policy.FailedLoginThreshold)
	if !c.whole {
		f.Reason += "; the portal cut this address (an IPv6 address at its first colon), so the failed logins may come from many addresses that share its beginning"
	}
	if int(c.counted) > n {
		f.Reason = fmt.Sprintf("%d more failed logins from an address already reported for a burst in this window (%d in all)", n, c.counted)
	}
	f.Raw, _ = json.Marshal(b.raws)
	return f
}

func (e *Evaluator) evaluateLogin(ev ipguard.LoginEvent) (Finding, bool) {
	f := single(ev)
	id := ipguard.CanonicalUserID(ev.UserID)
	ul := e.lists.users[id]
	var found, ignored bool
	switch {
	case ul == nil || (!ul.offboardedAt.IsZero() && !ev.Date.Before(ul.offboardedAt)):
		// Under ignore the finding is only kept for the guessing rule: it
		// is returned (raised) only when failed attempts came first.
		ignored = e.policy.UnknownUsers != UnknownAlert && e.policy.UnknownUsers != UnknownDigest
		f.DigestOnly = e.policy.UnknownUsers == UnknownDigest
		f.Kind, f.Severity = KindUnknownUser, SeverityMedium
		f.Reason = "successful login by a user who has no allowlist (never onboarded)"
		if ul != nil {
			f.Email = ul.email
			f.Reason = "successful login by a user who has no allowlist (offboarded at " + ul.offboardedAt.UTC().Format(time.RFC3339) + ", before this login)"
			// Someone who left, or was taken out on purpose, is not a
			// person never onboarded: their account in use is a message
			// of its own, not a line of the next digest.
			f.DigestOnly = false
		}
		found = true
	default:
		f.Email = ul.email
		addr, ok := allowlist.ParseLoginIP(ev.IP)
		switch {
		case !ok:
			f.Kind, f.Severity = KindUnverifiableIP, SeverityMedium
			if ev.IP == "" {
				f.Reason = "successful login without an address; it cannot be checked"
			} else {
				f.Reason = "successful login from an address that is not whole (the portal cuts IPv6 addresses at the first colon); it cannot be checked"
			}
			found = true
		case ul.allows(addr, ev.Date):
			return Finding{}, false
		default:
			f.IP = addr.String()
			f.Kind, f.Severity = KindIPNotAllowed, SeverityHigh
			f.Reason = "successful login from an address outside the user's allowlist"
			if !ul.offboardedAt.IsZero() {
				f.Reason = "successful login from an address outside the allowlist the user had then (the user was offboarded at " + ul.offboardedAt.UTC().Format(time.RFC3339) + ")"
			}
			found = true
		}
	}
	if !found {
		return Finding{}, false
	}
	// Only a whole address correlates: text the portal cut (an IPv6
	// address at its first colon) is shared by unrelated addresses.
	key, _, whole := parseAddr(ev.IP)
	if !whole {
		return f, !ignored
	}
	if g := e.judgeGuess(key, ev.Date, e.ownAccounts(ev.Login, ev.UserID, f.Email)); g.guessing() {
		return raise(f, g, e.guessWindow(), ""), true
	}
	if e.remembered < maxRemembered {
		if e.raised == nil {
			e.raised = map[addrKey][]Finding{}
		}
		e.raised[key] = append(e.raised[key], f)
		e.remembered++
	}
	return f, !ignored
}

func single(ev ipguard.LoginEvent) Finding {
	return Finding{
		EventID: ev.ID, UserID: ev.UserID, User: ev.User, Login: ev.Login, IP: ev.IP,
		Country: ev.Country, City: ev.City, Browser: ev.Browser, Platform: ev.Platform,
		Date: ev.Date.UTC().Format(time.RFC3339), Action: ev.Action, ActionID: ev.ActionID, Raw: ev.Raw,
	}
}

// Evaluate checks a whole window at once (one piece) and returns its
// single-login findings in event order, then its bursts.
func Evaluate(events []ipguard.LoginEvent, lists *Allowlists, p Policy) ([]Finding, error) {
	e := NewEvaluator(lists, p)
	out, err := e.Add(events)
	if err != nil {
		return nil, err
	}
	return append(out, e.Bursts()...), nil
}

// dropAlerted removes single-login findings whose event was alerted before
// (bursts were already filtered by their stored spans). It returns the kept
// findings and how many were dropped.
func dropAlerted(fs []Finding, alerted map[int64]bool) ([]Finding, int) {
	var out []Finding
	dropped := 0
	for _, f := range fs {
		if f.span == nil && f.alertedBy(alerted) {
			dropped++
			continue
		}
		out = append(out, f)
	}
	return out, dropped
}
