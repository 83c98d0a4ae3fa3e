package onboard

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"ipguard/internal/humantext"
	"ipguard/internal/ipguard"
	"ipguard/internal/snsalert/snsmessage"
)

// Drift is a difference between the portal and what the last reconcile
// left there that the tool did not make: restrictions switched off while
// PORTAL_ENFORCE=true, owned addresses missing, entries the tool does not
// know added.
type Drift struct {
	SwitchedOff  bool                  `json:"switchedOff"`
	MissingOwned []string              `json:"missingOwned"`
	Unknown      []ipguard.Restriction `json:"unknownEntries"`
	// Restored are the missing owned addresses put back; Reenabled says
	// whether restrictions were switched back on (PORTAL_DRIFT_REPAIR).
	Restored  []string `json:"restored"`
	Reenabled bool     `json:"reenabled"`
	// Changes name who changed the allowlist since the last reconcile (the
	// portal's audit trail); Attribution says when that is unavailable,
	// and that saves of the last TrailLag may not show yet.
	Changes     []ChangeView `json:"changes"`
	Attribution string       `json:"attribution,omitempty"`
	Since       string       `json:"since,omitempty"`
	// Overwritten, when set, is the list the tool read just before its own
	// write overwrote the saves named in Changes (made between that read
	// and the write): what to look at to redo them.
	Overwritten []ipguard.Restriction `json:"overwrittenList,omitempty"`
	// OverwrittenCount, when more than Overwritten holds, is how many
	// entries that list had (it was clipped to MaxAlertList when it was
	// kept for the second look in the trail).
	OverwrittenCount int `json:"overwrittenCount,omitempty"`
	// overwrittenAsKept: Overwritten is the list as the write kept it (a
	// late landing: the read itself is not kept), without the addresses
	// the tool removed in it.
	overwrittenAsKept bool
}

// ChangeView is one allowlist change of the audit trail, made safe to show.
type ChangeView struct {
	When   string `json:"when"`
	User   string `json:"user"`
	UserID string `json:"userId,omitempty"`
	IP     string `json:"ip"`
}

// detectDrift compares the portal (current, enabled) with what the tool
// expects it to hold without anyone else's doing (base, baseEnabled: the
// list the last reconcile left, or the one its PUT in flight sent, see
// settle). Nothing is drift before the first reconcile.
func detectDrift(st ipguard.PortalState, base []ipguard.Restriction, baseEnabled bool, current []ipguard.Restriction, enabled bool, r Settings) *Drift {
	if !st.Reconciled {
		return nil
	}
	d := &Drift{MissingOwned: []string{}, Unknown: []ipguard.Restriction{}, Restored: []string{}, Changes: []ChangeView{}}
	d.SwitchedOff = r.Enforce && baseEnabled && !enabled
	have := map[string]bool{}
	for _, c := range current {
		if !c.ForAdmin {
			have[c.IP] = true
		}
	}
	wasThere := map[string]bool{}
	for _, c := range base {
		if !c.ForAdmin {
			wasThere[c.IP] = true
		}
	}
	for _, a := range st.Owned {
		if wasThere[a] && !have[a] {
			d.MissingOwned = append(d.MissingOwned, a)
		}
	}
	d.Unknown = append(d.Unknown, diffList(current, base)...)
	if !d.SwitchedOff && len(d.MissingOwned) == 0 && len(d.Unknown) == 0 {
		return nil
	}
	if !st.LastReconcile.IsZero() {
		d.Since = st.LastReconcile.UTC().Format(time.RFC3339)
	}
	return d
}

// fingerprint identifies a drift episode: the same drift seen again is not
// alerted again. A nil drift has the empty fingerprint.
func (d *Drift) fingerprint() string {
	if d == nil {
		return ""
	}
	parts := []string{fmt.Sprint("off=", d.SwitchedOff)}
	m := append([]string(nil), d.MissingOwned...)
	sort.Strings(m)
	parts = append(parts, "missing="+strings.Join(m, ","))
	u := make([]string, len(d.Unknown))
	for i, r := range d.Unknown {
		u[i] = describe(r)
	}
	sort.Strings(u)
	parts = append(parts, "unknown="+strings.Join(u, ","))
	// Hashed: it is only compared, and it lives in the state item, which
	// must stay small whatever the drift.
	sum := sha256.Sum256([]byte(strings.Join(parts, ";")))
	return hex.EncodeToString(sum[:])
}

// attribute fills in who changed the allowlist since the last reconcile
// (prev), by facts: every save in the trail from prev's second on that is
// not one of the tool's own (saves: the portal's Date of its PUT answers,
// see foreign) is named.
func (s *Service) attribute(ctx context.Context, d *Drift, prev time.Time, saves []time.Time, windows []ipguard.SaveWindow) {
	if s.Trail == nil {
		d.Attribution = "unavailable: this deployment reads no audit trail"
		return
	}
	since := prev.UTC().Truncate(time.Second)
	changes, err := s.Trail.AllowlistChanges(ctx, since)
	if err != nil {
		d.Attribution = "unavailable: the portal's audit trail of allowlist changes could not be read (" + humantext.Line(err.Error(), 200) + "); it needs DocSpace 3.7.1 or later and the audit feature"
		return
	}
	for _, c := range s.foreign(ctx, changes, saves, false, windows) {
		d.Changes = append(d.Changes, changeView(c))
	}
	// The portal writes its audit trail late (TrailLag): the save behind
	// this drift, mostly made just before this reconcile, may not show
	// yet. Said, with since when, never "no save but the tool's own" alone.
	late := fmt.Sprintf("the portal writes its audit trail up to a minute late, so a save made after %s may not show in it yet: look for it later in the portal's audit trail (IP restrictions saved)",
		s.now().Add(-TrailLag).UTC().Truncate(time.Second).Format(time.RFC3339))
	if len(d.Changes) == 0 {
		d.Attribution = "the portal's audit trail shows no allowlist save since " + since.Format(time.RFC3339) + " but the tool's own; " + late
	} else {
		d.Attribution = "these are the saves the trail showed; " + late
	}
}

func changeView(c Change) ChangeView {
	return ChangeView{When: c.When.UTC().Format(time.RFC3339), User: humantext.Line(c.User, 100), UserID: humantext.Line(c.UserID, 64), IP: humantext.Line(c.IP, 64)}
}

// MaxAlertList bounds each list an alert carries (the rest is counted), so
// that an alert fits its outbox record and SNS.
const MaxAlertList = 50

func clipList[T any](xs []T) []T {
	if len(xs) > MaxAlertList {
		return xs[:MaxAlertList]
	}
	return xs
}

// driftAlert is the allowlist_drift alert (severity high) for d.
func (s *Service) driftAlert(d *Drift) ipguard.Alert {
	var what []string
	if d.SwitchedOff {
		if d.Reenabled {
			what = append(what, "IP restrictions were switched off; switched back on (PORTAL_DRIFT_REPAIR=true)")
		} else {
			what = append(what, "IP restrictions were switched off; left off (PORTAL_DRIFT_REPAIR=false)")
		}
	}
	if len(d.MissingOwned) > 0 {
		what = append(what, fmt.Sprintf("%d address(es) this tool manages were removed: %s; put back", len(d.MissingOwned), humantext.Line(strings.Join(clipList(d.MissingOwned), ", "), 400)))
	}
	if len(d.Unknown) > 0 {
		what = append(what, fmt.Sprintf("%d entry(ies) this tool does not know were added: %s; kept (never removed by the tool)", len(d.Unknown), humantext.Line(describeAll(clipList(d.Unknown)), 400)))
	}
	if d.Overwritten != nil {
		what = append(what, "someone saved the allowlist between the tool's read and its own write, so the tool's write overwrote that save: redo the change if it is still wanted")
	}
	var b strings.Builder
	fmt.Fprintf(&b, "DocSpace IP Guard found the IP allowlist of %s changed outside the tool", humantext.Line(s.PortalName, 200))
	if d.Since != "" {
		fmt.Fprintf(&b, " since %s", d.Since)
	}
	b.WriteString(":\n\n")
	for _, w := range what {
		fmt.Fprintf(&b, "  - %s\n", w)
	}
	b.WriteString("\nWho changed the allowlist (portal audit trail, action 6094):\n")
	if len(d.Changes) == 0 {
		fmt.Fprintf(&b, "  %s\n", d.Attribution)
	}
	for _, c := range clipList(d.Changes) {
		fmt.Fprintf(&b, "  - %s by %s (user id %s) from %s\n", c.When, c.User, c.UserID, c.IP)
	}
	if len(d.Changes) > MaxAlertList {
		fmt.Fprintf(&b, "  ... and %d more\n", len(d.Changes)-MaxAlertList)
	}
	if len(d.Changes) > 0 && d.Attribution != "" {
		fmt.Fprintf(&b, "  (%s)\n", d.Attribution)
	}
	if d.Overwritten != nil {
		// Clipped to MaxAlertList with its count, whether the list was
		// clipped when it was kept (the second look) or not (right after).
		n, list := max(len(d.Overwritten), d.OverwrittenCount), clipList(d.Overwritten)
		shown := humantext.Line(describeAll(list), 2000)
		if n > len(list) {
			shown += fmt.Sprintf(" ... and %d more", n-len(list))
		}
		if d.overwrittenAsKept {
			fmt.Fprintf(&b, "\nThe list the tool read just before its write, as that write kept it (%d entries; addresses the tool itself removed in it are not shown): %s\n", n, shown)
		} else {
			fmt.Fprintf(&b, "\nThe list the tool read just before its write (%d entries): %s\n", n, shown)
		}
	}
	b.WriteString("\nWhat to do: check with that person whether the change was intended. Addresses the tool manages are put back automatically; entries it does not know are never removed by it.\n")
	c := *d
	c.MissingOwned, c.Unknown, c.Restored, c.Changes, c.Overwritten = clipList(c.MissingOwned), clipList(c.Unknown), clipList(c.Restored), clipList(c.Changes), clipList(c.Overwritten)
	if n := max(len(d.Overwritten), d.OverwrittenCount); n > len(c.Overwritten) {
		c.OverwrittenCount = n // its promise: set when the list holds fewer
	}
	body := map[string]any{"kind": "allowlist_drift", "severity": "high", "portal": s.PortalName, "drift": c}
	def, _ := json.Marshal(body)
	sms := "DocSpace alert: IP allowlist changed outside IP Guard"
	if d.SwitchedOff {
		sms += " (restrictions off)"
	}
	sms += ". See email."
	return ipguard.Alert{Subject: "DocSpace: IP allowlist changed outside IP Guard (drift)", Default: string(def), Email: b.String(), SMS: sms,
		Severity: "high", Kinds: []string{"allowlist_drift"}}
}

// lockoutAlert is the alert that restrictions were not switched on; it is
// recorded once per episode, keyed by the refusal's kind (never its text).
func (s *Service) lockoutAlert(why string) ipguard.Alert {
	def, _ := json.Marshal(map[string]any{"kind": "allowlist_lockout_risk", "severity": "high", "portal": s.PortalName, "reason": why})
	return ipguard.Alert{
		Subject: "DocSpace: IP restrictions not switched on (lock-out risk)",
		Default: string(def),
		Email: "DocSpace IP Guard did not switch IP restrictions on for " + humantext.Line(s.PortalName, 200) + ":\n\n  " + humantext.Line(why, 600) +
			"\n\nThe users' addresses are on the portal's list; restrictions stay as they are until this is fixed.\n",
		SMS:      "DocSpace IP Guard: restrictions NOT switched on (lock-out risk). Set PORTAL_BREAKGLASS_IPS. See email.",
		Severity: "high",
		Kinds:    []string{"allowlist_lockout_risk"},
	}
}

// MaxOutbox bounds the alerts due at once; past it the oldest is dropped
// (and logged as an error).
const MaxOutbox = 16

// MaxOutboxBytes bounds the due alerts' size together (as stored, with
// their attribute names and claims): the outbox is one DynamoDB item (400
// KB), and one drift alert at its largest takes hundreds of KB. Past it
// the oldest are dropped (and logged as errors); the newest is kept.
const MaxOutboxBytes = 300 * 1024

// dueBytes is the size d takes in the outbox item: its JSON, and room for
// its attribute names and its claim (token and end).
func dueBytes(d ipguard.DueAlert) int {
	b, _ := json.Marshal(d)
	return len(b) + 64
}

// due records a as due under key (its episode) before anything is
// published; flushDue sends what is due and clears each alert only once
// the topic accepted it, so a throttled publish is sent by a later
// reconcile instead of being lost. Without a topic the alert is logged.
func (s *Service) due(ctx context.Context, key string, a ipguard.Alert) {
	if s.Alerts == nil {
		s.log().Warn("alert not sent: no alert topic configured", "subject", a.Subject)
		return
	}
	next := ipguard.DueAlert{Key: key, Alert: a, Since: s.now().UTC()}
	if all, err := s.Store.DueAlerts(ctx); err == nil {
		// The alert under key is replaced: it neither counts nor is dropped.
		all = slices.DeleteFunc(all, func(d ipguard.DueAlert) bool { return d.Key == key })
		size := dueBytes(next)
		for _, d := range all {
			size += dueBytes(d)
		}
		for i := 0; i < len(all) && (len(all)-i >= MaxOutbox || size > MaxOutboxBytes); i++ {
			s.log().Error("alert outbox full: dropping the oldest due alert", "subject", all[i].Alert.Subject)
			undelivered(ctx)
			_ = s.Store.ClearDueAlert(ctx, all[i].Key)
			size -= dueBytes(all[i])
		}
	}
	if err := s.Store.AddDueAlert(ctx, next); err != nil {
		// Not recorded: send it now at least.
		s.log().Error("record a due alert", "subject", a.Subject, "error", err)
		s.publish(ctx, a)
	}
}

// AlertDelivery counts, for one invocation, the alerts of onboarding that
// did not reach the alert topic: a due alert whose publish failed (it
// stays due: the next reconcile sends it), one dropped from a full outbox,
// one that could not be recorded and whose direct publish failed. The
// wiring writes it as the metric AlertsUndelivered, which an alarm reads
// (a failed publish is an alarm, not only a log line).
type AlertDelivery struct{ n atomic.Int64 }

// Undelivered is the count so far.
func (d *AlertDelivery) Undelivered() int64 { return d.n.Load() }

type deliveryKey struct{}

// WithAlertDelivery returns a context in which the service counts into d.
func WithAlertDelivery(ctx context.Context, d *AlertDelivery) context.Context {
	return context.WithValue(ctx, deliveryKey{}, d)
}

// undelivered counts one alert that did not reach the topic.
func undelivered(ctx context.Context) {
	if d, ok := ctx.Value(deliveryKey{}).(*AlertDelivery); ok && d != nil {
		d.n.Add(1)
	}
}

// SendDueAlerts publishes the alerts recorded as due (see flushDue) and
// reports whether any is still due. Every reconcile calls it; it is
// exported for the store contract's concurrent flushers.
func (s *Service) SendDueAlerts(ctx context.Context) bool { return s.flushDue(ctx) }

// flushDue publishes every due alert, oldest first, and clears each one the
// topic accepted. It reports whether any is still due.
//
// Two invocations may flush at once (the flush runs after the lease is
// released), so each alert is claimed first (Store.ClaimDueAlert, a
// conditional write, for DueClaim): only the claimer publishes it, then
// clears it (sent) or gives the claim back (the publish failed, so the next
// flush sends it). An alert claimed by another flusher counts as still due
// here: if that flusher dies, its claim runs out and a later flush sends
// it. A message is sent once, unless a flusher dies between the publish and
// the clear (then once more after DueClaim: at least once, never lost).
func (s *Service) flushDue(ctx context.Context) bool {
	return s.flushDueBy(ctx, time.Time{})
}

// flushDueBy is flushDue that publishes nothing past by (zero: no bound
// but the context's), nor within flushAnswerMargin of the context's
// deadline, so that a topic that does not answer holds neither the lease
// (see reconcile) nor the invocation's answer. What it did not send stays
// due.
func (s *Service) flushDueBy(ctx context.Context, by time.Time) bool {
	if s.Alerts == nil {
		return false
	}
	if dl, ok := ctx.Deadline(); ok {
		// The margin is at most a quarter of the time left (a short
		// deadline still sends what it can).
		if end := dl.Add(-min(flushAnswerMargin, time.Until(dl)/4)); by.IsZero() || end.Before(by) {
			by = end
		}
	}
	all, err := s.Store.DueAlerts(ctx)
	if err != nil {
		s.log().Error("read the due alerts", "error", err)
		return true
	}
	token := claimToken()
	left := false
	for _, d := range all {
		if !by.IsZero() && !time.Now().Before(by) {
			left = true // out of time: the next flush sends it
			continue
		}
		now := s.now()
		a, ok, err := s.Store.ClaimDueAlert(ctx, d.Key, token, now.Add(DueClaim), now)
		if err != nil {
			s.log().Error("claim a due alert (still due; the next reconcile sends it)", "subject", d.Alert.Subject, "error", err)
			left = true
			continue
		}
		if !ok {
			// Another flusher is sending it (or sent it meanwhile): still
			// due as far as this one knows, so the next reconcile looks again.
			left = true
			continue
		}
		// The publish ends well before the claim does: a publish that
		// outlasted it could be sent again by a flusher that claimed it
		// meanwhile.
		end := time.Now().Add(DueClaim - PublishMargin)
		if !by.IsZero() && by.Before(end) {
			end = by
		}
		pctx, cancel := context.WithDeadline(ctx, end)
		_, err = s.Alerts.Publish(pctx, sendable(a.Alert))
		cancel()
		if err != nil {
			s.log().Error("send alert (still due; the next reconcile sends it again)", "subject", a.Alert.Subject, "error", err)
			undelivered(ctx)
			left = true
			if err := s.Store.SettleDueAlert(ctx, a.Key, token, false); err != nil {
				s.log().Error("give back the claim on a due alert (sent again once the claim runs out)", "subject", a.Alert.Subject, "error", err)
			}
			continue
		}
		if err := s.Store.SettleDueAlert(ctx, a.Key, token, true); err != nil {
			s.log().Error("clear a sent alert", "subject", a.Alert.Subject, "error", err)
		}
	}
	return left
}

// DueClaim is how long a flusher holds its claim on a due alert: longer
// than one publish with its retries, which is given DueClaim less
// PublishMargin at most (the margin leaves room to clear the alert while
// the claim is still its own).
const (
	DueClaim      = 2 * time.Minute
	PublishMargin = time.Minute
)

// claimToken names one flush's claims.
func claimToken() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// sendable is a with its subject one safe line and its SMS printable
// ASCII, each within SNS's bound (humantext).
func sendable(a ipguard.Alert) ipguard.Alert {
	a.Subject, a.SMS = humantext.Line(a.Subject, snsmessage.MaxSubjectRunes), humantext.ASCII(a.SMS, snsmessage.MaxSMSBytes)
	return a
}

// publish sends a with its subject one safe line and its SMS printable
// ASCII, each within SNS's bound (humantext).
func (s *Service) publish(ctx context.Context, a ipguard.Alert) {
	a = sendable(a)
	if s.Alerts == nil {
		s.log().Warn("alert not sent: no alert topic configured", "subject", a.Subject)
		return
	}
	if _, err := s.Alerts.Publish(ctx, a); err != nil {
		s.log().Error("send alert", "subject", a.Subject, "error", err)
		undelivered(ctx)
	}
}

// maxFlushUnderLease bounds the flush of alerts still due at a reconcile's
// start, which runs under the lease: a topic that does not answer holds
// the allowlist back no longer than this; what is left is sent after the
// lease (and stays due when the topic still does not take it).
var maxFlushUnderLease = 2 * time.Second

// flushAnswerMargin is the time a flush leaves before the invocation's
// deadline (at most a quarter of the time left): a topic that does not
// answer never makes the function miss its own answer (Lambda would time
// the invocation out).
var flushAnswerMargin = time.Second
