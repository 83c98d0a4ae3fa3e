package audit

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"ipguard/internal/humantext"
	"ipguard/internal/ipguard"
	"ipguard/internal/snsalert/snsmessage"
)

// Limits of one SNS message (docs: Subject < 100 characters, the whole
// message ≤ 256 KB; one SMS part is 140 ASCII bytes).
const (
	MaxSubjectRunes = snsmessage.MaxSubjectRunes
	MaxMessageBytes = snsmessage.MaxMessageBytes
	MaxSMSBytes     = snsmessage.MaxSMSBytes
	// emailListed is how many findings the e-mail text spells out; the rest
	// are counted ("and N more") and stay in full in the JSON.
	emailListed = 25
	// fieldBytes bounds each untrusted value shown in the e-mail.
	fieldBytes = 120
)

// Window is the audited span of time.
type Window struct {
	From, To time.Time
}

// Meta is what every message of a run says besides its findings.
type Meta struct {
	Portal   string
	Window   Window
	Backfill bool
	// Note is a line the e-mail shows first (e.g. that a backfill reaches
	// further back than the alert memory).
	Note string
	// MayRepeat says the window reaches further back than the alert memory
	// (the subject says so).
	MayRepeat bool
	// Notices are run-wide messages (e.g. that enforcement was suspended);
	// they head every message.
	Notices []string
}

// Batch is one SNS message and the findings it alerts about.
type Batch struct {
	Alert    ipguard.Alert
	Findings []Finding
}

// EventIDs returns the ids of the single-login findings of b (bursts are
// remembered by address and span instead).
func (b Batch) EventIDs() []int64 {
	var out []int64
	for _, f := range b.Findings {
		out = append(out, f.ids()...)
	}
	return out
}

// Payload is the "default" (JSON) body of an alert: the seed's payload.
type Payload struct {
	Portal   string `json:"portal"`
	From     string `json:"from"`
	To       string `json:"to"`
	Backfill bool   `json:"backfill,omitempty"`
	Severity string `json:"severity"`        // the highest in this message
	Part     int    `json:"part,omitempty"`  // set when the alert was split
	Parts    int    `json:"parts,omitempty"` // into several messages
	// Notices are run-wide messages, e.g. that enforcement was suspended.
	Notices []string  `json:"notices,omitempty"`
	Events  []Finding `json:"events"`
}

// RenderAlerts turns findings into SNS messages: one per severity class
// (critical, high, medium, in that order), each split into numbered parts
// only when one message would pass maxBytes (the structured message and its
// attributes, as SNS counts them). A finding is never too large: bursts list at most
// MaxListedIDs ids and a few raw events.
//
// DigestOnly findings (UNKNOWN_USER_POLICY=digest) come last, in batches of
// their own: every finding of such a batch is DigestOnly, so that the
// digest step of the publisher chain takes the whole batch into the daily
// digest (package digest) and the findings bus still gets each finding.
func RenderAlerts(m Meta, fs []Finding, maxBytes int) ([]Batch, error) {
	var out []Batch
	// Findings for the digest (Digest: issue #21 §2's episode repeats and
	// familiar places) travel in batches of their own, marked Alert.Digest,
	// after the messages.
	own, toDigest := partition(fs, func(f Finding) bool { return f.Digest })
	for _, set := range []struct {
		fs     []Finding
		digest bool
	}{{own, false}, {toDigest, true}} {
		for _, class := range messageClasses {
			var group []Finding
			for _, f := range set.fs {
				if f.Severity == class.severity && f.DigestOnly == class.digestOnly {
					group = append(group, f)
				}
			}
			if len(group) == 0 {
				continue
			}
			chunks, err := split(m, group, maxBytes)
			if err != nil {
				return nil, err
			}
			for i, c := range chunks {
				part, parts := 0, 0
				if len(chunks) > 1 {
					part, parts = i+1, len(chunks)
				}
				a, err := render(m, c, part, parts)
				if err != nil {
					return nil, err
				}
				a.Digest = set.digest
				out = append(out, Batch{Alert: a, Findings: c})
			}
		}
	}
	return out, nil
}

// messageClasses are the batches RenderAlerts makes, in order: each
// severity, then each severity's DigestOnly findings.
var messageClasses = func() []struct {
	severity   string
	digestOnly bool
} {
	var out []struct {
		severity   string
		digestOnly bool
	}
	for _, d := range []bool{false, true} {
		for _, s := range Severities {
			out = append(out, struct {
				severity   string
				digestOnly bool
			}{s, d})
		}
	}
	return out
}()

// split halves a chunk until each fits. A lone finding too large even alone
// loses its raw event(s), which the e-mail never showed anyway.
func split(m Meta, fs []Finding, maxBytes int) ([][]Finding, error) {
	a, err := render(m, fs, 999, 999) // worst case: part numbers present
	if err != nil {
		return nil, err
	}
	if size(a) <= maxBytes {
		return [][]Finding{fs}, nil
	}
	if len(fs) == 1 {
		f := fs[0]
		switch {
		case f.Raw != nil:
			f.Raw = nil
		case !f.clipped:
			f = clipFields(f) // absurdly long values from the portal
		default:
			return nil, ipguard.Errorf(ipguard.EInternal, "alert for event %d (%s) does not fit in one SNS message", f.EventID, f.Kind)
		}
		return split(m, []Finding{f}, maxBytes)
	}
	left, err := split(m, fs[:len(fs)/2], maxBytes)
	if err != nil {
		return nil, err
	}
	right, err := split(m, fs[len(fs)/2:], maxBytes)
	if err != nil {
		return nil, err
	}
	return append(left, right...), nil
}

// maxFieldBytes bounds each text field of a finding that would not fit in
// a message otherwise.
const maxFieldBytes = 1000

// clipFields cuts every text field of f to maxFieldBytes (with "…", see
// humantext.Clip: the JSON keeps the raw text), so that no finding can be
// too large for one message: the login's fields, and what repeats them
// (reasons, explanation, episode, familiar place, trip, a spray's
// addresses).
func clipFields(f Finding) Finding {
	clip := func(p *string) { *p = humantext.Clip(*p, maxFieldBytes) }
	for _, p := range []*string{&f.User, &f.Login, &f.Email, &f.UserID, &f.IP, &f.Country, &f.City, &f.Browser, &f.Platform, &f.Action, &f.Reason,
		&f.Explanation, &f.UserType, &f.FromKind, &f.Cause, &f.Date, &f.FirstAt} {
		clip(p)
	}
	f.Logins = append([]string(nil), f.Logins...)
	for i := range f.Logins {
		clip(&f.Logins[i])
	}
	f.IPs = append([]string(nil), f.IPs...)
	for i := range f.IPs {
		clip(&f.IPs[i])
	}
	f.Reasons = append([]Reason(nil), f.Reasons...)
	for i := range f.Reasons {
		clip(&f.Reasons[i].Text)
	}
	if f.Episode != nil {
		e := *f.Episode
		for _, p := range []*string{&e.Key, &e.Network, &e.Country, &e.First} {
			clip(p)
		}
		f.Episode = &e
	}
	if f.Familiar != nil {
		m := *f.Familiar
		for _, p := range []*string{&m.Network, &m.Place, &m.Device} {
			clip(p)
		}
		f.Familiar = &m
	}
	if f.Trip != nil {
		t := *f.Trip
		for _, p := range []*string{&t.Place, &t.Device, &t.Since} {
			clip(p)
		}
		f.Trip = &t
	}
	f.clipped = true
	return f
}

// ClipFields is f with every text field cut to a bound (see clipFields),
// for a destination with a size limit of its own (the findings bus).
func ClipFields(f Finding) Finding { return clipFields(f) }

// size is what SNS counts against its limit: the structured message and
// the message attributes.
func size(a ipguard.Alert) int { return snsmessage.Size(a) }

func render(m Meta, fs []Finding, part, parts int) (ipguard.Alert, error) {
	sev := highest(fs)
	body, err := json.Marshal(Payload{Portal: m.Portal, From: m.Window.From.UTC().Format(time.RFC3339), To: m.Window.To.UTC().Format(time.RFC3339),
		Backfill: m.Backfill, Severity: sev, Part: part, Parts: parts, Notices: m.Notices, Events: fs})
	if err != nil {
		return ipguard.Alert{}, ipguard.Errorf(ipguard.EInternal, "render alert: %w", err)
	}
	var kinds []string
	n := countKinds(fs)
	for _, k := range alertKinds {
		if n[k] > 0 {
			kinds = append(kinds, k)
		}
	}
	return ipguard.Alert{
		Subject:  subject(m, fs, part, parts),
		Default:  string(body),
		Email:    emailText(m, fs, part, parts),
		SMS:      smsText(m, fs),
		Severity: sev,
		Kinds:    kinds,
	}, nil
}

// highest is the highest severity among fs.
func highest(fs []Finding) string {
	for _, s := range Severities {
		for _, f := range fs {
			if f.Severity == s {
				return s
			}
		}
	}
	return SeverityMedium
}

func countKinds(fs []Finding) map[string]int {
	n := map[string]int{}
	for _, f := range fs {
		n[f.Kind]++
	}
	return n
}

var kindPhrase = map[string][2]string{ // singular, plural
	KindPasswordGuessSucceeded: {"login that succeeded after failed attempts", "logins that succeeded after failed attempts"},
	KindIPNotAllowed:           {"login from a non-allowlisted IP", "logins from non-allowlisted IPs"},
	KindUnknownUser:            {"login by a user with no allowlist", "logins by users with no allowlist"},
	KindUnverifiableIP:         {"login from an unverifiable address", "logins from unverifiable addresses"},
	KindFailedLoginBurst:       {"failed-login burst", "failed-login bursts"},
	KindCoverageLost:           {"stretch of logins not evaluated (lost coverage)", "stretches of logins not evaluated (lost coverage)"},
	KindPasswordSpray:          {"password spray", "password sprays"},
	KindImpossibleTravel:       {"impossible travel", "impossible travels"},
	KindNewCountry:             {"login from a new country", "logins from new countries"},
	KindNewDevice:              {"login from a new device", "logins from new devices"},
}

func phrase(kind string, n int) string {
	p := kindPhrase[kind]
	if n == 1 {
		return "1 " + p[0]
	}
	return fmt.Sprintf("%d %s", n, p[1])
}

// subject is e.g. "DocSpace: 3 logins from non-allowlisted IPs", at most
// MaxSubjectRunes runes; "DocSpace backfill: ..." for a backfill and
// "DocSpace CRITICAL: ..." when a critical finding is in it.
func subject(m Meta, fs []Finding, part, parts int) string {
	n := countKinds(fs)
	s := "DocSpace"
	if highest(fs) == SeverityCritical {
		s += " CRITICAL"
	}
	if m.Backfill {
		s += " backfill " + m.Window.From.UTC().Format("2006-01-02")
	}
	if m.MayRepeat {
		s += " (may repeat)"
	}
	if len(n) == 1 {
		s += ": " + phrase(fs[0].Kind, len(fs))
	} else {
		s += fmt.Sprintf(": %d login security findings (%s)", len(fs), highest(fs))
	}
	if parts > 1 {
		s += fmt.Sprintf(" [%d/%d]", part, parts)
	}
	return humantext.Line(s, MaxSubjectRunes)
}

func emailText(m Meta, fs []Finding, part, parts int) string {
	var b strings.Builder
	n := countKinds(fs)
	if m.Note != "" {
		fmt.Fprintf(&b, "NOTE: %s\n\n", humantext.Line(m.Note, 600))
	}
	what := "checked the logins"
	if m.Backfill {
		what = "checked past logins (backfill)"
	}
	fmt.Fprintf(&b, "DocSpace IP Guard %s on %s\nfrom %s to %s (UTC) and found:\n\n",
		what, humantext.Line(m.Portal, 200), m.Window.From.UTC().Format("2006-01-02 15:04:05"), m.Window.To.UTC().Format("2006-01-02 15:04:05"))
	for _, k := range alertKinds {
		if n[k] > 0 {
			fmt.Fprintf(&b, "  - %s\n", phrase(k, n[k]))
		}
	}
	if parts > 1 {
		fmt.Fprintf(&b, "\n(This is part %d of %d of this run's %s alert.)\n", part, parts, highest(fs))
	}
	for _, n := range m.Notices {
		fmt.Fprintf(&b, "\n!! %s\n", oneLine(n, 600))
	}
	b.WriteString("\n")
	for i, f := range fs {
		if i == emailListed {
			fmt.Fprintf(&b, "... and %d more (the full list is in the JSON alert).\n\n", len(fs)-emailListed)
			break
		}
		writeFinding(&b, i+1, f)
	}
	b.WriteString("What to do:\n")
	if countOutcome(fs, OutcomeEnded) > 0 {
		b.WriteString("  - An ended session only logs the user out; they can sign in again. If a login was not\n    theirs, disable the user and reset the password.\n")
	}
	if n[KindPasswordGuessSucceeded] > 0 {
		b.WriteString("  - CRITICAL: someone logged in from an address that first failed to log in.\n" +
			"    Treat the account as taken over: block the user in DocSpace, end their sessions,\n" +
			"    reset the password and check what the session did.\n")
	}
	if n[KindIPNotAllowed]+n[KindUnverifiableIP] > 0 {
		b.WriteString("  - Ask each user whether the login was theirs. If not, block the user in DocSpace,\n    end their sessions and reset the password.\n")
		b.WriteString("  - If the address is legitimate, send the user's onboarding again with ALL of their\n" +
			"    addresses plus this one: an onboarding replaces the user's stored list, it does\n" +
			"    not add to it, so a request with only the new address drops the old ones.\n")
	}
	if n[KindUnknownUser] > 0 {
		b.WriteString("  - Users with no allowlist were never onboarded: onboard them, or set\n    UNKNOWN_USER_POLICY=ignore if that is expected.\n")
	}
	if n[KindCoverageLost] > 0 {
		b.WriteString("  - Lost coverage: logins of the span named were not checked. Follow the cause in the\n" +
			"    README (Limits); a login hidden there is alerted only once it can be read.\n")
	}
	if n[KindFailedLoginBurst] > 0 {
		b.WriteString("  - Repeated failed logins from one address look like password guessing:\n    check the portal's brute-force settings and block the address upstream.\n")
	}
	writeBehaviourAdvice(&b, n)
	b.WriteString("\nSent by DocSpace IP Guard. Each login is alerted once (see README, \"Alert guarantee\").\n" +
		"Values from the portal are shown escaped (\\uXXXX for control and invisible characters).\n")
	return b.String()
}

func writeFinding(b *strings.Builder, i int, f Finding) {
	fmt.Fprintf(b, "%d. [%s] %s\n", i, strings.ToUpper(f.Severity), f.Reason)
	c := func(s string) string { return humantext.Line(s, fieldBytes) }
	if f.Kind == KindCoverageLost {
		fmt.Fprintf(b, "   Cause: %s\n   Logins dated: %s to %s\n", f.Cause, f.FirstAt, f.Date)
		switch {
		case f.Count > 0 && f.UpTo:
			fmt.Fprintf(b, "   Not evaluated: up to %d logins\n", f.Count)
		case f.Count > 0:
			fmt.Fprintf(b, "   Not evaluated: %d logins\n", f.Count)
		default:
			b.WriteString("   Not evaluated: unknown how many\n")
		}
		b.WriteString("\n")
		return
	}
	writeReasons(b, f)
	writeEpisode(b, f)
	if f.Kind == KindFailedLoginBurst || f.Kind == KindPasswordSpray {
		targets := "none given"
		if len(f.Logins) > 0 {
			var ls []string
			for _, l := range f.Logins {
				ls = append(ls, c(l))
			}
			targets = strings.Join(ls, ", ")
			if f.Count > len(f.Logins) && len(f.Logins) == maxListedLogins {
				targets += ", ..."
			}
		}
		fmt.Fprintf(b, "   Tried: %s\n", targets)
	} else {
		who := c(f.User)
		if f.Email != "" {
			who = strings.TrimSpace(who + " <" + c(f.Email) + ">")
		} else if f.Login != "" && f.Login != f.User {
			who = strings.TrimSpace(who + " (login " + c(f.Login) + ")")
		}
		if who == "" {
			who = "unknown"
		}
		if f.UserID != "" {
			who += ", user id " + c(f.UserID)
		}
		fmt.Fprintf(b, "   Who:   %s\n", who)
	}
	fmt.Fprintf(b, "   From:  %s\n", orUnknown(c(f.IP)))
	if where := join(c(f.City), c(f.Country)); where != "" {
		fmt.Fprintf(b, "   Where: %s\n", where)
	}
	if client := join(c(f.Browser), c(f.Platform)); client != "" {
		fmt.Fprintf(b, "   Client: %s\n", client)
	}
	if f.FirstAt != "" && f.FirstAt != f.Date {
		fmt.Fprintf(b, "   When:  %s to %s\n", f.FirstAt, f.Date)
	} else {
		fmt.Fprintf(b, "   When:  %s\n", f.Date)
	}
	switch {
	case f.Kind == KindFailedLoginBurst || f.Kind == KindPasswordSpray:
		more := ""
		if f.Capped {
			more = fmt.Sprintf(" (first %d of %d)", len(f.EventIDs), f.Count)
		}
		fmt.Fprintf(b, "   Events: %d failed logins, ids %s%s\n", f.Count, joinIDs(f.EventIDs, 20), more)
	default:
		fmt.Fprintf(b, "   Event: %d (%s)\n", f.EventID, orUnknown(c(f.Action)))
		var others []int64 // the other logins its reasons pair it with
		for _, r := range f.Reasons {
			if r.EventID != 0 && r.EventID != f.EventID && !slices.Contains(others, r.EventID) {
				others = append(others, r.EventID)
			}
		}
		if len(others) > 0 {
			fmt.Fprintf(b, "   With:  event %s\n", joinIDs(others, 20))
		}
	}
	if f.Response != nil {
		fmt.Fprintf(b, "   Response: %s\n", responseText(f.Response))
		if e := f.Response.Escalation; e != nil {
			fmt.Fprintf(b, "   User:  %s\n", escalationText(e))
		}
	}
	b.WriteString("\n")
}

func join(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + ", " + b
}

// smsText is one ASCII line of at most MaxSMSBytes; a backfill's says so
// and carries its date.
func smsText(m Meta, fs []Finding) string {
	n := countKinds(fs)
	var parts []string
	short := map[string]string{KindPasswordGuessSucceeded: "GUESSED PASSWORD", KindIPNotAllowed: "bad IP", KindUnknownUser: "unknown user",
		KindUnverifiableIP: "unverifiable IP", KindFailedLoginBurst: "failed-login burst", KindCoverageLost: "LOST COVERAGE",
		KindPasswordSpray: "PASSWORD SPRAY", KindImpossibleTravel: "impossible travel", KindNewCountry: "new country", KindNewDevice: "new device"}
	for _, k := range alertKinds {
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
	// No user- or portal-supplied text in an SMS (a login name is whatever
	// the attacker typed): counts, kinds, the first finding's severity and
	// its address, and only an address that parses as one, without its
	// zone (the text after '%', which may be anything).
	first := fs[0]
	addr := "unknown"
	if ip, err := netip.ParseAddr(strings.TrimSpace(first.IP)); err == nil {
		addr = ip.WithZone("").String()
	}
	head := "DocSpace alert"
	if m.Backfill {
		head = "DocSpace backfill " + m.Window.From.UTC().Format("2006-01-02")
	}
	s := fmt.Sprintf("%s %s-%sZ: %s. First: %s from %s. See email.", head,
		m.Window.From.UTC().Format("15:04"), m.Window.To.UTC().Format("15:04"), strings.Join(parts, ", "),
		severityWord(first.Severity), addr)
	return humantext.ASCII(s, MaxSMSBytes)
}

// severityWord is a known severity, else "a finding" (never the raw value).
func severityWord(sev string) string {
	for _, s := range append([]string{"low"}, Severities...) {
		if sev == s {
			return s
		}
	}
	return "a finding"
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

// oneLine makes a notice (which may quote the portal) one line of an
// e-mail of at most max bytes: see humantext.Words.
func oneLine(s string, max int) string { return humantext.Words(s, max) }
