package audit

import (
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"ipguard/internal/allowlist"
	"ipguard/internal/ipguard"
)

// Finding kinds and severities.
const (
	KindIPNotAllowed     = "ip_not_allowed"
	KindUnknownUser      = "unknown_user"
	KindUnverifiableIP   = "unverifiable_ip"
	KindFailedLoginBurst = "failed_login_burst"

	SeverityHigh   = "high"
	SeverityMedium = "medium"
)

// Kinds lists every finding kind, in the order alerts present them.
var Kinds = []string{KindIPNotAllowed, KindUnknownUser, KindUnverifiableIP, KindFailedLoginBurst}

// Finding is one thing to alert about, in the shape of the alert's JSON.
// A single-event finding carries EventID; a burst carries EventIDs and Count.
type Finding struct {
	EventID  int64           `json:"eventId,omitempty"`
	EventIDs []int64         `json:"eventIds,omitempty"`
	Count    int             `json:"count,omitempty"`
	Kind     string          `json:"kind"`
	Severity string          `json:"severity"`
	Reason   string          `json:"reason"`
	UserID   string          `json:"userId,omitempty"`
	Email    string          `json:"email,omitempty"`
	User     string          `json:"user,omitempty"`
	Login    string          `json:"login,omitempty"`
	IP       string          `json:"ip"`
	Date     string          `json:"date"`                // RFC3339, UTC; a burst's last event
	FirstAt  string          `json:"firstDate,omitempty"` // a burst's first event
	Action   string          `json:"action,omitempty"`
	ActionID int             `json:"actionId,omitempty"`
	Raw      json.RawMessage `json:"raw,omitempty"` // the event as the API returned it; a burst: an array of them
	// Response is what was done about the login (see Responder); nil when
	// nothing applies (no responder, or a kind that is never enforced).
	Response *Response `json:"response,omitempty"`

	// A burst's events and threshold, to rebuild it from a subset.
	events    []ipguard.LoginEvent
	threshold int
}

// ids returns the event ids the finding covers.
func (f Finding) ids() []int64 {
	if f.EventIDs != nil {
		return f.EventIDs
	}
	return []int64{f.EventID}
}

// Policy are the evaluation rules.
type Policy struct {
	// AlertUnknownUsers reports successful logins by users without an allowlist.
	AlertUnknownUsers bool
	// FailedLoginThreshold: this many failed logins or more from one address
	// that no user may use make one burst finding; 0 turns it off.
	FailedLoginThreshold int
}

// Allowlists answers, per user, which addresses are allowed.
type Allowlists struct {
	users map[string]userList
	// anyUser is the union of every user's entries, for failed-login bursts;
	// nil until needed.
	anyUser func() (allowlist.Set, error)
}

type userList struct {
	email string
	set   allowlist.Set
}

// NewAllowlists builds per-user sets from stored users. anyUser returns the
// union of all users' entries (it may load them lazily).
func NewAllowlists(users map[string]ipguard.User, anyUser func() (allowlist.Set, error)) (Allowlists, error) {
	a := Allowlists{users: make(map[string]userList, len(users)), anyUser: anyUser}
	for id, u := range users {
		entries, err := allowlist.ParseStored(u.Entries)
		if err != nil {
			return Allowlists{}, ipguard.Errorf(ipguard.EInternal, "user %s: %w", id, err)
		}
		a.users[id] = userList{email: u.Email, set: allowlist.NewSet(entries)}
	}
	return a, nil
}

// Evaluate checks each event of the window and returns the findings in event
// order (bursts last). Logouts and other non-login actions are ignored.
func Evaluate(events []ipguard.LoginEvent, lists Allowlists, p Policy) ([]Finding, error) {
	var out []Finding
	type group struct {
		ip     string
		addr   allowlist.Addr
		parsed bool
		events []ipguard.LoginEvent
	}
	failed := map[string]*group{}
	var order []string
	for _, ev := range events {
		switch {
		case IsSuccessfulLogin(ev.ActionID):
			if f, ok := evaluateLogin(ev, lists, p); ok {
				out = append(out, f)
			}
		case IsFailedLogin(ev.ActionID) && p.FailedLoginThreshold > 0:
			addr, ok := allowlist.ParseLoginIP(ev.IP)
			key := ev.IP
			if ok {
				key = addr.String()
			}
			g := failed[key]
			if g == nil {
				g = &group{ip: key, addr: addr, parsed: ok}
				failed[key] = g
				order = append(order, key)
			}
			g.events = append(g.events, ev)
		}
	}
	var union *allowlist.Set
	for _, key := range order {
		g := failed[key]
		if len(g.events) < p.FailedLoginThreshold {
			continue
		}
		if g.parsed {
			if union == nil {
				s, err := lists.anyUser()
				if err != nil {
					return nil, err
				}
				union = &s
			}
			if union.Contains(g.addr) {
				continue // someone may use this address: a forgotten password, not an attack
			}
		}
		out = append(out, burst(g.ip, g.events, p.FailedLoginThreshold))
	}
	return out, nil
}

func evaluateLogin(ev ipguard.LoginEvent, lists Allowlists, p Policy) (Finding, bool) {
	f := single(ev)
	ul, known := lists.users[ipguard.CanonicalUserID(ev.UserID)]
	if !known {
		if !p.AlertUnknownUsers {
			return Finding{}, false
		}
		f.Kind, f.Severity = KindUnknownUser, SeverityMedium
		f.Reason = "successful login by a user who has no allowlist (never onboarded)"
		return f, true
	}
	f.Email = ul.email
	addr, ok := allowlist.ParseLoginIP(ev.IP)
	if !ok {
		f.Kind, f.Severity = KindUnverifiableIP, SeverityMedium
		if ev.IP == "" {
			f.Reason = "successful login without an address; it cannot be checked"
		} else {
			f.Reason = fmt.Sprintf("successful login from %q, which is not a whole address (the portal cuts IPv6 addresses at the first colon); it cannot be checked", ev.IP)
		}
		return f, true
	}
	if ul.set.Contains(addr) {
		return Finding{}, false
	}
	f.IP = addr.String()
	f.Kind, f.Severity = KindIPNotAllowed, SeverityHigh
	f.Reason = "successful login from an address outside the user's allowlist"
	return f, true
}

func single(ev ipguard.LoginEvent) Finding {
	return Finding{
		EventID: ev.ID, UserID: ev.UserID, User: ev.User, Login: ev.Login, IP: ev.IP,
		Date: ev.Date.UTC().Format(time.RFC3339), Action: ev.Action, ActionID: ev.ActionID, Raw: ev.Raw,
	}
}

func burst(ip string, evs []ipguard.LoginEvent, threshold int) Finding {
	sort.Slice(evs, func(i, j int) bool {
		return evs[i].Date.Before(evs[j].Date) || evs[i].Date.Equal(evs[j].Date) && evs[i].ID < evs[j].ID
	})
	f := Finding{Kind: KindFailedLoginBurst, Severity: SeverityMedium, IP: ip,
		FirstAt: evs[0].Date.UTC().Format(time.RFC3339), Date: evs[len(evs)-1].Date.UTC().Format(time.RFC3339),
		UserID: evs[0].UserID, User: evs[0].User, Login: evs[0].Login, Action: evs[0].Action,
		events: evs, threshold: threshold}
	raws := make([]json.RawMessage, 0, len(evs))
	for _, ev := range evs {
		f.EventIDs = append(f.EventIDs, ev.ID)
		raw := ev.Raw
		if len(raw) == 0 {
			raw = json.RawMessage("null")
		}
		raws = append(raws, raw) // index-aligned with EventIDs
	}
	f.Count = len(f.EventIDs)
	f.Reason = fmt.Sprintf("%d failed logins (threshold %d) from an address that is in no user's allowlist", f.Count, threshold)
	f.Raw, _ = json.Marshal(raws)
	return f
}

// dropAlerted removes findings whose events were all alerted before; a burst
// keeps only its events not yet alerted. It returns the kept findings and how
// many were dropped.
func dropAlerted(fs []Finding, alerted map[int64]bool) ([]Finding, int) {
	var out []Finding
	dropped := 0
	for _, f := range fs {
		if f.EventIDs == nil {
			if alerted[f.EventID] {
				dropped++
				continue
			}
			out = append(out, f)
			continue
		}
		var fresh []ipguard.LoginEvent
		for _, ev := range f.events {
			if !alerted[ev.ID] {
				fresh = append(fresh, ev)
			}
		}
		if len(fresh) == 0 {
			dropped++
			continue
		}
		if len(fresh) < len(f.events) {
			reason := fmt.Sprintf("%s; %d of them not alerted before", f.Reason, len(fresh))
			f = burst(f.IP, fresh, f.threshold)
			f.Reason = reason
		}
		out = append(out, f)
	}
	return out, dropped
}
