package onboard

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
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
	// portal's audit trail); Attribution says when that is unavailable.
	Changes     []ChangeView `json:"changes"`
	Attribution string       `json:"attribution,omitempty"`
	Since       string       `json:"since,omitempty"`
}

// ChangeView is one allowlist change of the audit trail, made safe to show.
type ChangeView struct {
	When   string `json:"when"`
	User   string `json:"user"`
	UserID string `json:"userId,omitempty"`
	IP     string `json:"ip"`
}

// detectDrift compares the portal with the list and setting the last
// reconcile left (st). Nothing is drift before the first reconcile.
func detectDrift(st ipguard.PortalState, current []ipguard.Restriction, enabled bool, r Settings) *Drift {
	if !st.Reconciled {
		return nil
	}
	d := &Drift{MissingOwned: []string{}, Unknown: []ipguard.Restriction{}, Restored: []string{}, Changes: []ChangeView{}}
	d.SwitchedOff = r.Enforce && st.LastEnabled && !enabled
	have := map[string]bool{}
	for _, c := range current {
		if !c.ForAdmin {
			have[c.IP] = true
		}
	}
	wasThere := map[string]bool{}
	for _, c := range st.LastSeen {
		if !c.ForAdmin {
			wasThere[c.IP] = true
		}
	}
	for _, a := range st.Owned {
		if wasThere[a] && !have[a] {
			d.MissingOwned = append(d.MissingOwned, a)
		}
	}
	d.Unknown = append(d.Unknown, diffList(current, st.LastSeen)...)
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
// (prev). The trail has second precision: it is read from the second after
// prev (the last reconcile's own save is in prev's second or before), and the
// newest ownPuts saves are this reconcile's own and are left out.
func (s *Service) attribute(ctx context.Context, d *Drift, prev time.Time, ownPuts int) {
	if s.Trail == nil {
		d.Attribution = "unavailable: this deployment reads no audit trail"
		return
	}
	since := prev.UTC().Truncate(time.Second).Add(time.Second)
	changes, err := s.Trail.AllowlistChanges(ctx, since)
	if err != nil {
		d.Attribution = "unavailable: the portal's audit trail of allowlist changes could not be read (" + humantext.Line(err.Error(), 200) + "); it needs DocSpace 3.7.1 or later and the audit feature"
		return
	}
	changes = changes[:max(len(changes)-ownPuts, 0)] // oldest first: ours are the last
	for _, c := range changes {
		d.Changes = append(d.Changes, ChangeView{When: c.When.UTC().Format(time.RFC3339), User: humantext.Line(c.User, 100),
			UserID: humantext.Line(c.UserID, 64), IP: humantext.Line(c.IP, 64)})
	}
	if len(d.Changes) == 0 {
		d.Attribution = "the portal's audit trail shows no allowlist save since " + since.Format(time.RFC3339) + " but the tool's own"
	}
}

// alertDrift sends one allowlist_drift alert (severity high).
func (s *Service) alertDrift(ctx context.Context, d *Drift) {
	var what []string
	if d.SwitchedOff {
		if d.Reenabled {
			what = append(what, "IP restrictions were switched off; switched back on (PORTAL_DRIFT_REPAIR=true)")
		} else {
			what = append(what, "IP restrictions were switched off; left off (PORTAL_DRIFT_REPAIR=false)")
		}
	}
	if len(d.MissingOwned) > 0 {
		what = append(what, fmt.Sprintf("%d address(es) this tool manages were removed: %s; put back", len(d.MissingOwned), humantext.Line(strings.Join(d.MissingOwned, ", "), 400)))
	}
	if len(d.Unknown) > 0 {
		what = append(what, fmt.Sprintf("%d entry(ies) this tool does not know were added: %s; kept (never removed by the tool)", len(d.Unknown), humantext.Line(describeAll(d.Unknown), 400)))
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
	for _, c := range d.Changes {
		fmt.Fprintf(&b, "  - %s by %s (user id %s) from %s\n", c.When, c.User, c.UserID, c.IP)
	}
	b.WriteString("\nWhat to do: check with that person whether the change was intended. Addresses the tool manages are put back automatically; entries it does not know are never removed by it.\n")
	body := map[string]any{"kind": "allowlist_drift", "severity": "high", "portal": s.PortalName, "drift": d}
	def, _ := json.Marshal(body)
	sms := "DocSpace alert: IP allowlist changed outside IP Guard"
	if d.SwitchedOff {
		sms += " (restrictions off)"
	}
	sms += ". See email."
	s.publish(ctx, ipguard.Alert{Subject: "DocSpace: IP allowlist changed outside IP Guard (drift)", Default: string(def), Email: b.String(), SMS: sms,
		Severity: "high", Kinds: []string{"allowlist_drift"}})
}

// alertLockout tells once per episode (and reason) why restrictions were
// not switched on; the reconcile that finds the condition gone clears the
// record, so a later episode is told again.
func (s *Service) alertLockout(ctx context.Context, why string) {
	st, err := s.Store.PortalState(ctx)
	if err != nil || st.LockoutNotice == why {
		return
	}
	st.LockoutNotice = why
	if err := s.Store.PutPortalState(ctx, st); err != nil {
		s.log().Warn("record the lock-out notice", "error", err)
		return
	}
	def, _ := json.Marshal(map[string]any{"kind": "allowlist_lockout_risk", "severity": "high", "portal": s.PortalName, "reason": why})
	s.publish(ctx, ipguard.Alert{
		Subject: "DocSpace: IP restrictions not switched on (lock-out risk)",
		Default: string(def),
		Email: "DocSpace IP Guard did not switch IP restrictions on for " + humantext.Line(s.PortalName, 200) + ":\n\n  " + humantext.Line(why, 600) +
			"\n\nThe users' addresses are on the portal's list; restrictions stay as they are until this is fixed.\n",
		SMS:      "DocSpace IP Guard: restrictions NOT switched on (lock-out risk). Set PORTAL_BREAKGLASS_IPS. See email.",
		Severity: "high",
		Kinds:    []string{"allowlist_lockout_risk"},
	})
}

// publish sends a with its subject one safe line and its SMS printable
// ASCII, each within SNS's bound (humantext).
func (s *Service) publish(ctx context.Context, a ipguard.Alert) {
	a.Subject, a.SMS = humantext.Line(a.Subject, snsmessage.MaxSubjectRunes), humantext.ASCII(a.SMS, snsmessage.MaxSMSBytes)
	if s.Alerts == nil {
		s.log().Warn("alert not sent: no alert topic configured", "subject", a.Subject)
		return
	}
	if _, err := s.Alerts.Publish(ctx, a); err != nil {
		s.log().Error("send alert", "subject", a.Subject, "error", err)
	}
}
