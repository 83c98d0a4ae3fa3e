package audit

import (
	"encoding/json"
	"fmt"
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

	SeverityCritical = "critical"
	SeverityHigh     = "high"
	SeverityMedium   = "medium"
)

// Kinds lists every finding kind, in the order alerts present them.
var Kinds = []string{KindPasswordGuessSucceeded, KindIPNotAllowed, KindUnknownUser, KindUnverifiableIP, KindFailedLoginBurst}

// Severities lists every severity, highest first. Each run sends one message
// (or more, when it must split) per severity, so that a subscription filter
// policy on the message attribute "severity" can route them.
var Severities = []string{SeverityCritical, SeverityHigh, SeverityMedium}

// MaxListedIDs is how many event ids a burst finding lists; Count says how
// many events it has and Capped says when the list is cut.
const MaxListedIDs = 50

// maxListedLogins is how many distinct login names a burst finding lists.
const maxListedLogins = 10

// maxBurstRaw is how many raw events a burst finding carries.
const maxBurstRaw = 3

// Finding is one thing to alert about, in the shape of the alert's JSON.
// A single-event finding carries EventID; a burst carries EventIDs (at most
// MaxListedIDs of them), Count, FirstAt and Capped.
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
	// FailedAttempts is, for password_guess_succeeded, how many failed
	// logins came from the same address in the same window, and FromKind
	// the kind the login had before it was raised (ip_not_allowed,
	// unknown_user or unverifiable_ip).
	FailedAttempts int             `json:"failedAttempts,omitempty"`
	FromKind       string          `json:"fromKind,omitempty"`
	IP             string          `json:"ip"`
	Country        string          `json:"country,omitempty"`
	City           string          `json:"city,omitempty"`
	Browser        string          `json:"browser,omitempty"`
	Platform       string          `json:"platform,omitempty"`
	Date           string          `json:"date"`                // RFC3339, UTC; a burst's last event
	FirstAt        string          `json:"firstDate,omitempty"` // a burst's first event
	Action         string          `json:"action,omitempty"`
	ActionID       int             `json:"actionId,omitempty"`
	Raw            json.RawMessage `json:"raw,omitempty"` // the event as the API returned it; a burst: an array of its first few
	// Response is what was done about the login (see Responder); nil when
	// nothing applies (no responder, or a kind that is never enforced).
	Response *Response `json:"response,omitempty"`

	// span is a burst's time span: every failed login from IP in it is
	// covered by the finding (recorded as one alerted span).
	span *ipguard.TimeSpan
	// clipped: the text fields were cut to fit one message.
	clipped bool
}

// ids returns the single event id a finding covers, or nil for a burst
// (a burst is remembered by its address and span, not by ids).
func (f Finding) ids() []int64 {
	if f.span != nil {
		return nil
	}
	return []int64{f.EventID}
}

// Policy are the evaluation rules.
type Policy struct {
	// AlertUnknownUsers reports successful logins by users without an allowlist.
	AlertUnknownUsers bool
	// FailedLoginThreshold: this many failed logins or more from one address
	// in one window, each against an account that may not use that address
	// (or no stored account), make a burst finding; 0 turns it off.
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
	// Warnings are the stored entries that no longer parse (skipped).
	Warnings []string
}

type userList struct {
	id    string
	email string
	set   allowlist.Set // entries without an expiry
	timed []timedEntry  // time-bound ("travel mode") entries
}

// timedEntry is a time-bound entry: it allows logins before until.
type timedEntry struct {
	set   allowlist.Set
	until time.Time
}

// allows reports whether the user may log in from addr at the time at: a
// time-bound entry counts only for logins before it expired, even before a
// reconcile removed it from the stored allowlist.
func (ul *userList) allows(addr allowlist.Addr, at time.Time) bool {
	if ul.set.Contains(addr) {
		return true
	}
	for _, t := range ul.timed {
		if at.Before(t.until) && t.set.Contains(addr) {
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
	for _, u := range users {
		a.users[ipguard.CanonicalUserID(u.ID)] = a.build(u)
	}
}

// Known reports whether the user id was added (whether or not it has a user).
func (a *Allowlists) has(id string) bool { _, ok := a.users[id]; return ok }

// markMissing records that id has no stored user.
func (a *Allowlists) markMissing(id string) { a.users[id] = nil }

func (a *Allowlists) build(u ipguard.User) *userList {
	var entries []allowlist.Entry
	var timed []timedEntry
	if u.Unreadable != "" {
		a.Warnings = append(a.Warnings, fmt.Sprintf("stored user %s cannot be read (%s); every login of the user is alerted until it is onboarded again", humantext.Line(u.ID, 80), humantext.Line(u.Unreadable, 200)))
	}
	for _, raw := range u.Entries {
		es, err := allowlist.ParseStored([]string{raw})
		if err != nil {
			a.Warnings = append(a.Warnings, fmt.Sprintf("stored allowlist entry %s of user %s no longer parses and is skipped (logins it would allow are alerted): %s",
				humantext.Line(fmt.Sprintf("%q", raw), 120), humantext.Line(u.ID, 80), humantext.Line(err.Error(), 200)))
			continue
		}
		if d, ok := u.Details[raw]; ok && !d.ExpiresAt.IsZero() {
			timed = append(timed, timedEntry{set: allowlist.NewSet(es), until: d.ExpiresAt})
			continue
		}
		entries = append(entries, es...)
	}
	return &userList{id: u.ID, email: u.Email, set: allowlist.NewSet(entries), timed: timed}
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
// order the walk reads them (newest first). It keeps per address what a
// burst needs (counts, a span, a few ids), never the events themselves, so
// its memory grows with the number of distinct failing addresses, not with
// the window.
type Evaluator struct {
	lists  *Allowlists
	policy Policy
	failed map[string]*burstAgg
	order  []string
	// AlreadyAlerted counts failed logins skipped because a stored alerted
	// span covers them.
	AlreadyAlerted int
}

// burstAgg is what the evaluator keeps of the failed logins from one address.
type burstAgg struct {
	ip       string
	addr     allowlist.Addr
	parsed   bool
	seen     int // every failed login from the address in the window so far
	counted  int // those that count toward the threshold (published or not)
	pending  int // counted and not yet published
	first    time.Time
	last     time.Time
	ids      []int64
	logins   []string
	raws     []json.RawMessage
	sample   ipguard.LoginEvent
	alerted  []ipguard.TimeSpan // spans stored as alerted before this run
	lookedUp bool
}

// NewEvaluator starts the evaluation of one window.
func NewEvaluator(lists *Allowlists, p Policy) *Evaluator {
	return &Evaluator{lists: lists, policy: p, failed: map[string]*burstAgg{}}
}

// FailedAddresses returns the addresses of failed logins in evs whose stored
// alerted spans the evaluator has not been given yet (see SetAlerted).
func (e *Evaluator) FailedAddresses(evs []ipguard.LoginEvent) []string {
	var out []string
	seen := map[string]bool{}
	for _, ev := range evs {
		if !IsFailedLogin(ev.ActionID) || e.policy.FailedLoginThreshold <= 0 {
			continue
		}
		key, _, _ := addrKey(ev.IP)
		if g := e.failed[key]; (g == nil || !g.lookedUp) && !seen[key] {
			seen[key] = true
			out = append(out, key)
		}
	}
	return out
}

// SetAlerted gives the evaluator the spans already alerted for ip.
func (e *Evaluator) SetAlerted(ip string, spans []ipguard.TimeSpan) {
	g := e.agg(ip)
	g.alerted, g.lookedUp = spans, true
}

func (e *Evaluator) agg(key string) *burstAgg {
	g := e.failed[key]
	if g == nil {
		_, addr, ok := addrKey(key)
		g = &burstAgg{ip: key, addr: addr, parsed: ok}
		e.failed[key] = g
		e.order = append(e.order, key)
	}
	return g
}

func addrKey(ip string) (string, allowlist.Addr, bool) {
	addr, ok := allowlist.ParseLoginIP(ip)
	if ok {
		return addr.String(), addr, true
	}
	return ip, addr, false
}

// Add evaluates one piece of events (the users of its successful logins must
// have been added to the lists) and returns its single-login findings, in
// event order. Failed logins are aggregated per address; Bursts returns the
// bursts that are due. Logouts and other non-login actions are ignored.
func (e *Evaluator) Add(evs []ipguard.LoginEvent) ([]Finding, error) {
	if e.policy.FailedLoginThreshold > 0 {
		for _, ev := range evs {
			if !IsFailedLogin(ev.ActionID) {
				continue
			}
			if err := e.addFailed(ev); err != nil {
				return nil, err
			}
		}
	}
	var out []Finding
	for _, ev := range evs {
		if !IsSuccessfulLogin(ev.ActionID) {
			continue
		}
		if f, ok := e.evaluateLogin(ev); ok {
			out = append(out, f)
		}
	}
	return out, nil
}

func (e *Evaluator) addFailed(ev ipguard.LoginEvent) error {
	key, _, _ := addrKey(ev.IP)
	g := e.agg(key)
	g.seen++
	for _, s := range g.alerted {
		if !ev.Date.Before(s.From) && !ev.Date.After(s.To) {
			g.counted++
			e.AlreadyAlerted++
			return nil
		}
	}
	if g.parsed {
		ul, err := e.lists.target(ev)
		if err != nil {
			return err
		}
		if ul != nil && ul.allows(g.addr, ev.Date) {
			return nil // the targeted account may use this address: a forgotten password, not an attack
		}
	}
	g.counted++
	g.pending++
	if g.pending == 1 {
		g.first, g.last, g.ids, g.logins, g.raws, g.sample = ev.Date, ev.Date, nil, nil, nil, ev
	}
	if ev.Date.Before(g.first) {
		g.first = ev.Date
	}
	if ev.Date.After(g.last) {
		g.last = ev.Date
	}
	if len(g.ids) < MaxListedIDs {
		g.ids = append(g.ids, ev.ID)
	}
	if l := strings.TrimSpace(ev.Login); l != "" && len(g.logins) < maxListedLogins && !contains(g.logins, l) {
		g.logins = append(g.logins, l)
	}
	if len(g.raws) < maxBurstRaw && len(ev.Raw) > 0 {
		g.raws = append(g.raws, ev.Raw)
	}
	return nil
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// Bursts returns a finding for each address whose failed logins reached the
// threshold and has some not yet returned, and forgets those: the next call
// returns only failed logins added since (a burst that goes on).
func (e *Evaluator) Bursts() []Finding {
	var out []Finding
	for _, key := range e.order {
		g := e.failed[key]
		if g.pending == 0 || g.counted < e.policy.FailedLoginThreshold {
			continue
		}
		out = append(out, e.burst(g))
		g.pending = 0
	}
	return out
}

func (e *Evaluator) burst(g *burstAgg) Finding {
	sort.Slice(g.ids, func(i, j int) bool { return g.ids[i] < g.ids[j] })
	f := Finding{Kind: KindFailedLoginBurst, Severity: SeverityMedium, IP: g.ip,
		FirstAt: g.first.UTC().Format(time.RFC3339), Date: g.last.UTC().Format(time.RFC3339),
		UserID: g.sample.UserID, User: g.sample.User, Login: g.sample.Login, Action: g.sample.Action,
		Country: g.sample.Country, City: g.sample.City, Browser: g.sample.Browser, Platform: g.sample.Platform,
		EventIDs: append([]int64(nil), g.ids...), Count: g.pending, Capped: g.pending > len(g.ids),
		Logins: append([]string(nil), g.logins...),
		span:   &ipguard.TimeSpan{From: g.first, To: g.last}}
	f.Reason = fmt.Sprintf("%d failed logins (threshold %d) from an address that none of the targeted accounts may use", g.pending, e.policy.FailedLoginThreshold)
	if g.counted > g.pending {
		f.Reason = fmt.Sprintf("%d more failed logins from an address already reported for a burst in this window (%d in all)", g.pending, g.counted)
	}
	f.Raw, _ = json.Marshal(g.raws)
	return f
}

func (e *Evaluator) evaluateLogin(ev ipguard.LoginEvent) (Finding, bool) {
	f := single(ev)
	id := ipguard.CanonicalUserID(ev.UserID)
	ul := e.lists.users[id]
	var found bool
	switch {
	case ul == nil:
		if !e.policy.AlertUnknownUsers {
			return Finding{}, false
		}
		f.Kind, f.Severity = KindUnknownUser, SeverityMedium
		f.Reason = "successful login by a user who has no allowlist (never onboarded)"
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
			found = true
		}
	}
	if !found {
		return Finding{}, false
	}
	key, _, _ := addrKey(ev.IP)
	if g := e.failed[key]; g != nil && g.seen > 0 {
		f.FailedAttempts, f.FromKind = g.seen, f.Kind
		f.Kind, f.Severity = KindPasswordGuessSucceeded, SeverityCritical
		f.Reason = fmt.Sprintf("%s, after %d failed attempts from that address in the same window", f.Reason, g.seen)
	}
	return f, true
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
		if f.span == nil && alerted[f.EventID] {
			dropped++
			continue
		}
		out = append(out, f)
	}
	return out, dropped
}
