package audit

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"ipguard/internal/ipguard"
)

// Limits of one SNS message (docs: Subject ≤ 100 characters, the whole
// message ≤ 256 KB; one SMS part is 140 ASCII bytes).
const (
	MaxSubjectRunes = ipguard.AlertMaxSubjectRunes
	MaxMessageBytes = ipguard.AlertMaxMessageBytes
	MaxSMSBytes     = ipguard.AlertMaxSMSBytes
	// emailListed is how many findings the e-mail text spells out; the rest
	// are counted ("and N more") and stay in full in the JSON.
	emailListed = 25
)

// Window is the audited span of time.
type Window struct {
	From, To time.Time
}

// Batch is one SNS message and the events it alerts about.
type Batch struct {
	Alert    ipguard.Alert
	EventIDs []int64
	Findings []Finding
}

// Payload is the "default" (JSON) body of an alert: the seed's payload.
type Payload struct {
	Portal string `json:"portal"`
	From   string `json:"from"`
	To     string `json:"to"`
	Part   int    `json:"part,omitempty"`  // set when the alert was split
	Parts  int    `json:"parts,omitempty"` // into several messages
	// Notices are run-wide messages, e.g. that enforcement was suspended.
	Notices []string  `json:"notices,omitempty"`
	Events  []Finding `json:"events"`
}

// RenderAlerts turns findings into as few SNS messages as fit: one, unless
// one message would pass maxBytes (the structured message as SNS counts it).
// Notices (run-wide messages) head every message.
func RenderAlerts(portal string, w Window, fs []Finding, maxBytes int, notices ...string) ([]Batch, error) {
	if len(fs) == 0 {
		return nil, nil
	}
	chunks, err := split(portal, w, fs, maxBytes, notices)
	if err != nil {
		return nil, err
	}
	out := make([]Batch, 0, len(chunks))
	for i, c := range chunks {
		part, parts := 0, 0
		if len(chunks) > 1 {
			part, parts = i+1, len(chunks)
		}
		a, err := render(portal, w, c, part, parts, notices)
		if err != nil {
			return nil, err
		}
		b := Batch{Alert: a, Findings: c}
		for _, f := range c {
			b.EventIDs = append(b.EventIDs, f.ids()...)
		}
		out = append(out, b)
	}
	return out, nil
}

// split halves a chunk until each fits. A lone finding too large even alone
// (a huge burst) loses its raw events, which the e-mail never showed anyway.
func split(portal string, w Window, fs []Finding, maxBytes int, notices []string) ([][]Finding, error) {
	a, err := render(portal, w, fs, 99, 99, notices) // worst case: part numbers present
	if err != nil {
		return nil, err
	}
	if size(a) <= maxBytes {
		return [][]Finding{fs}, nil
	}
	if len(fs) == 1 {
		if fs[0].Raw == nil {
			return nil, ipguard.Errorf(ipguard.EInternal, "alert for event(s) %v does not fit in one SNS message", fs[0].ids())
		}
		f := fs[0]
		f.Raw = nil
		return split(portal, w, []Finding{f}, maxBytes, notices)
	}
	left, err := split(portal, w, fs[:len(fs)/2], maxBytes, notices)
	if err != nil {
		return nil, err
	}
	right, err := split(portal, w, fs[len(fs)/2:], maxBytes, notices)
	if err != nil {
		return nil, err
	}
	return append(left, right...), nil
}

// size is the byte length of the structured message SNS receives.
func size(a ipguard.Alert) int { return len(a.StructuredMessage()) }

func render(portal string, w Window, fs []Finding, part, parts int, notices []string) (ipguard.Alert, error) {
	body, err := json.Marshal(Payload{Portal: portal, From: w.From.UTC().Format(time.RFC3339), To: w.To.UTC().Format(time.RFC3339),
		Part: part, Parts: parts, Notices: notices, Events: fs})
	if err != nil {
		return ipguard.Alert{}, ipguard.Errorf(ipguard.EInternal, "render alert: %w", err)
	}
	return ipguard.Alert{
		Subject: subject(fs, part, parts),
		Default: string(body),
		Email:   emailText(portal, w, fs, part, parts, notices),
		SMS:     smsText(fs, w),
	}, nil
}

func countKinds(fs []Finding) map[string]int {
	n := map[string]int{}
	for _, f := range fs {
		n[f.Kind]++
	}
	return n
}

var kindPhrase = map[string][2]string{ // singular, plural
	KindIPNotAllowed:     {"login from a non-allowlisted IP", "logins from non-allowlisted IPs"},
	KindUnknownUser:      {"login by a user with no allowlist", "logins by users with no allowlist"},
	KindUnverifiableIP:   {"login from an unverifiable address", "logins from unverifiable addresses"},
	KindFailedLoginBurst: {"failed-login burst", "failed-login bursts"},
}

func phrase(kind string, n int) string {
	p := kindPhrase[kind]
	if n == 1 {
		return "1 " + p[0]
	}
	return fmt.Sprintf("%d %s", n, p[1])
}

// subject is e.g. "DocSpace: 3 logins from non-allowlisted IPs", at most
// MaxSubjectRunes runes.
func subject(fs []Finding, part, parts int) string {
	n := countKinds(fs)
	var s string
	if len(n) == 1 {
		s = "DocSpace: " + phrase(fs[0].Kind, len(fs))
	} else {
		s = fmt.Sprintf("DocSpace: %d login security findings (%d high)", len(fs), n[KindIPNotAllowed])
	}
	if parts > 1 {
		s += fmt.Sprintf(" [%d/%d]", part, parts)
	}
	return clipRunes(s, MaxSubjectRunes)
}

func emailText(portal string, w Window, fs []Finding, part, parts int, notices []string) string {
	var b strings.Builder
	n := countKinds(fs)
	fmt.Fprintf(&b, "DocSpace IP Guard checked the logins on %s\nfrom %s to %s (UTC) and found:\n\n",
		portal, w.From.UTC().Format("2006-01-02 15:04:05"), w.To.UTC().Format("2006-01-02 15:04:05"))
	for _, k := range Kinds {
		if n[k] > 0 {
			fmt.Fprintf(&b, "  - %s\n", phrase(k, n[k]))
		}
	}
	if parts > 1 {
		fmt.Fprintf(&b, "\n(This is part %d of %d of this run's alert.)\n", part, parts)
	}
	for _, n := range notices {
		fmt.Fprintf(&b, "\n!! %s\n", oneLine(n, 600))
	}
	b.WriteString("\n")
	for i, f := range fs {
		if i == emailListed {
			fmt.Fprintf(&b, "... and %d more (the full list is in the JSON alert).\n\n", len(fs)-emailListed)
			break
		}
		fmt.Fprintf(&b, "%d. [%s] %s\n", i+1, strings.ToUpper(f.Severity), f.Reason)
		who := f.User
		if f.Email != "" {
			who = strings.TrimSpace(who + " <" + f.Email + ">")
		} else if f.Login != "" && f.Login != f.User {
			who = strings.TrimSpace(who + " (login " + f.Login + ")")
		}
		if who == "" {
			who = "unknown"
		}
		if f.UserID != "" {
			who += ", user id " + f.UserID
		}
		fmt.Fprintf(&b, "   Who:   %s\n", who)
		fmt.Fprintf(&b, "   From:  %s\n", orUnknown(f.IP))
		if f.FirstAt != "" && f.FirstAt != f.Date {
			fmt.Fprintf(&b, "   When:  %s to %s\n", f.FirstAt, f.Date)
		} else {
			fmt.Fprintf(&b, "   When:  %s\n", f.Date)
		}
		if f.EventIDs != nil {
			fmt.Fprintf(&b, "   Events: %d failed logins, ids %s\n", f.Count, joinIDs(f.EventIDs, 20))
		} else {
			fmt.Fprintf(&b, "   Event: %d (%s)\n", f.EventID, orUnknown(f.Action))
		}
		if f.Response != nil {
			fmt.Fprintf(&b, "   Response: %s\n", responseText(f.Response))
			if e := f.Response.Escalation; e != nil {
				fmt.Fprintf(&b, "   User:  %s\n", escalationText(e))
			}
		}
		b.WriteString("\n")
	}
	b.WriteString("What to do:\n")
	if countOutcome(fs, OutcomeEnded) > 0 {
		b.WriteString("  - An ended session only logs the user out; they can sign in again. If a login was not\n    theirs, disable the user and reset the password.\n")
	}
	if n[KindIPNotAllowed]+n[KindUnverifiableIP] > 0 {
		b.WriteString("  - Ask each user whether the login was theirs. If not, block the user in DocSpace,\n    end their sessions and reset the password.\n")
		b.WriteString("  - If the address is legitimate, onboard it for that user so it stops alerting.\n")
	}
	if n[KindUnknownUser] > 0 {
		b.WriteString("  - Users with no allowlist were never onboarded: onboard them, or set\n    UNKNOWN_USER_POLICY=ignore if that is expected.\n")
	}
	if n[KindFailedLoginBurst] > 0 {
		b.WriteString("  - Repeated failed logins from one address look like password guessing:\n    check the portal's brute-force settings and block the address upstream.\n")
	}
	b.WriteString("\nSent by DocSpace IP Guard. Each login is alerted once.\n")
	return b.String()
}

// smsText is one ASCII line of at most MaxSMSBytes.
func smsText(fs []Finding, w Window) string {
	n := countKinds(fs)
	var parts []string
	short := map[string]string{KindIPNotAllowed: "bad IP", KindUnknownUser: "unknown user", KindUnverifiableIP: "unverifiable IP", KindFailedLoginBurst: "failed-login burst"}
	for _, k := range Kinds {
		if n[k] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n[k], short[k]))
		}
	}
	if ended := countOutcome(fs, OutcomeEnded); ended == 1 {
		parts = append(parts, "session ended")
	} else if ended > 1 {
		parts = append(parts, fmt.Sprintf("%d sessions ended", ended))
	}
	for _, f := range fs {
		if f.Response != nil && f.Response.Guard == GuardCircuitBreaker {
			parts = append(parts, "enforcement suspended")
			break
		}
	}
	first := fs[0]
	who := first.Email
	if who == "" {
		who = first.User
	}
	s := fmt.Sprintf("DocSpace alert %s-%sZ: %s. First: %s from %s. See email.",
		w.From.UTC().Format("15:04"), w.To.UTC().Format("15:04"), strings.Join(parts, ", "), who, orUnknown(first.IP))
	return clipASCII(s, MaxSMSBytes)
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

func joinIDs(ids []int64, max int) string {
	var b strings.Builder
	for i, id := range ids {
		if i == max {
			fmt.Fprintf(&b, " and %d more", len(ids)-max)
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprint(&b, id)
	}
	return b.String()
}

func clipRunes(s string, max int) string {
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	r := []rune(s)
	return string(r[:max-3]) + "..."
}

// clipASCII replaces anything outside printable ASCII with '?' and cuts to max bytes.
func clipASCII(s string, max int) string {
	b := make([]byte, 0, len(s))
	for _, r := range s {
		if r < 0x20 || r > 0x7e {
			r = '?'
		}
		b = append(b, byte(r))
	}
	if len(b) > max {
		b = append(b[:max-3], "..."...)
	}
	return string(b)
}

func countOutcome(fs []Finding, outcome string) int {
	n := 0
	for _, f := range fs {
		if f.Response != nil && f.Response.Outcome == outcome {
			n++
		}
	}
	return n
}

var guardPhrase = map[string]string{
	GuardBackfill:       "a backfill never acts",
	GuardAPIKeyUser:     "the user is the one the API key acts as",
	GuardOwner:          "the user is the portal owner",
	GuardCircuitBreaker: "enforcement was suspended for this run (circuit breaker)",
	GuardClaimedEarlier: "an earlier run took this event on and recorded no outcome",
}

// responseText is e.g. "session ended 12:03:10 UTC" or "would have ended (report mode)".
func responseText(r *Response) string {
	what, whose := "session", "the session"
	if r.Action == "end-all-sessions" {
		what, whose = "all of the user's sessions", "the user's sessions"
	}
	at := clock(r.At)
	switch r.Outcome {
	case OutcomeEnded:
		return strings.TrimSpace(what + " ended " + at)
	case OutcomeNotActive:
		return strings.TrimSpace("session had already ended (checked " + at + ")")
	case OutcomeWouldEnd:
		if r.Action == "end-all-sessions" {
			return "would have ended all of the user's sessions (report mode)"
		}
		return "would have ended (report mode)"
	case OutcomeRefused:
		return "the portal refused to end " + whose + ": " + oneLine(r.Error, 300)
	case OutcomeFailed:
		return "ending " + whose + " failed: " + oneLine(r.Error, 300)
	case OutcomeSkipped:
		g, ok := guardPhrase[r.Guard]
		if !ok {
			g = oneLine(r.Guard, 100)
		}
		return "not acted on: " + g
	}
	return oneLine(r.Outcome, 100)
}

func escalationText(e *Escalation) string {
	switch e.Outcome {
	case OutcomeDisabled:
		return strings.TrimSpace(fmt.Sprintf("disabled %s after %d violations in 24 hours", clock(e.At), e.Violations))
	case OutcomeRefused:
		return fmt.Sprintf("the portal refused to disable the user after %d violations in 24 hours: %s", e.Violations, oneLine(e.Error, 300))
	default:
		return fmt.Sprintf("disabling the user after %d violations in 24 hours failed: %s", e.Violations, oneLine(e.Error, 300))
	}
}

// clock turns an RFC3339 UTC time into "12:03:10 UTC"; empty stays empty.
func clock(rfc string) string {
	t, err := time.Parse(time.RFC3339, rfc)
	if err != nil {
		return ""
	}
	return t.UTC().Format("15:04:05") + " UTC"
}

// oneLine makes text from the portal safe for one line of an e-mail:
// control characters become spaces, and it is cut to max runes.
func oneLine(s string, max int) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == 0x2028 || r == 0x2029 {
			return ' '
		}
		return r
	}, s)
	return clipRunes(strings.TrimSpace(s), max)
}
