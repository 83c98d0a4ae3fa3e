package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"ipguard/internal/ipguard"
	"ipguard/internal/onboard"
	"ipguard/internal/testbed/devportal"
)

// The allowlist as desired state: a travel-mode entry that expires, a hand
// edit reported as drift and repaired, and an offboarding.

const travelIP = "192.0.2.150"

// handAdded are entries the demo's "admin" adds by hand later on.
var handAdded = map[ipguard.Restriction]bool{}

func (d *demo) stepTravelMode(ctx context.Context, n int) error {
	step(d.out, n, "Travel mode: Alice gets a hotel address for a few seconds")
	exp := time.Now().Add(3 * time.Second).UTC().Truncate(time.Second)
	req := map[string]any{"action": "add", "id": aliceID, "allowedIps": []any{
		map[string]any{"ip": travelIP, "expiresAt": exp.Format(time.RFC3339), "note": "conference hotel"}}}
	fmt.Fprintf(d.out, "Invoke OnboardFunction with %s\n", jsonText(req))
	var res onboard.Result
	if err := invoke(ctx, d.onboard, req, &res); err != nil {
		return fmt.Errorf("add: %w", err)
	}
	table(d.out, nil, [][]string{
		{"entries added", strings.Join(res.Added, ", ")},
		{"portal", res.Portal + " (" + res.AppliedBy + ")"},
		{"addresses added to the portal", strings.Join(res.PortalAdded, ", ")},
	})
	if !slices.Contains(portalAddrs(d.stack.Portal), travelIP) {
		return fmt.Errorf("the travel-mode address %s is not on the portal", travelIP)
	}
	fmt.Fprintf(d.out, "\nWaiting until %s, when the entry expires ...\n", exp.Format("15:04:05Z"))
	time.Sleep(time.Until(exp.Add(time.Second)))
	fmt.Fprintln(d.out, `The scheduled reconcile runs: invoke OnboardFunction with {"action": "sync"}`)
	var sync onboard.Result
	if err := invoke(ctx, d.onboard, map[string]any{"action": "sync"}, &sync); err != nil {
		return fmt.Errorf("sync: %w", err)
	}
	var rows [][]string
	for _, x := range sync.Expired {
		rows = append(rows, []string{x.Entry, x.ExpiresAt, x.Note})
	}
	table(d.out, []string{"expired entry", "expired at", "note"}, rows)
	fmt.Fprintf(d.out, "Removed from the portal: %s\n", strings.Join(sync.PortalRemoved, ", "))
	if len(sync.Expired) != 1 || slices.Contains(portalAddrs(d.stack.Portal), travelIP) {
		return fmt.Errorf("the expired entry is still on the portal (sync result %s)", jsonText(sync))
	}
	fmt.Fprintln(d.out, "\n✓ The time-bound entry left the portal and Alice's stored allowlist when it expired; a login from it is now a violation.")
	return nil
}

func (d *demo) stepDrift(ctx context.Context, n int) error {
	step(d.out, n, "Someone edits the allowlist by hand: drift")
	time.Sleep(1100 * time.Millisecond) // the audit trail has second precision
	list, _ := d.stack.Portal.Restrictions()
	removed := "198.51.100.21"
	var edited []ipguard.Restriction
	for _, r := range list {
		if r.IP != removed {
			edited = append(edited, r)
		}
	}
	edited = append(edited, ipguard.Restriction{IP: "203.0.113.99"})
	handAdded[ipguard.Restriction{IP: "203.0.113.99"}] = true
	d.stack.Portal.SetRestrictions(edited, false)
	d.stack.Portal.AddAuditEvents(devportal.AuditEvent{Date: time.Now(), UserID: devportal.OwnerID, User: "Mallory Admin", ActionID: 6094, IP: "198.51.100.66"})
	fmt.Fprintf(d.out, "In the portal's settings, an admin switched restrictions off, deleted Alice's %s and added 203.0.113.99.\n", removed)
	before := len(d.stack.Published())
	fmt.Fprintln(d.out, `The scheduled reconcile runs: invoke OnboardFunction with {"action": "sync"}`)
	var res onboard.Result
	if err := invoke(ctx, d.onboard, map[string]any{"action": "sync"}, &res); err != nil {
		return fmt.Errorf("sync: %w", err)
	}
	pubs := d.stack.Published()[before:]
	if len(pubs) != 1 || res.Drift == nil {
		return fmt.Errorf("want one drift alert, got %d messages and drift %s", len(pubs), jsonText(res.Drift))
	}
	fmt.Fprintln(d.out, "\nThe alert an e-mail subscriber receives:")
	box(d.out, "Subject: "+pubs[0].Subject+"\n\n"+pubs[0].Email)
	fmt.Fprintln(d.out, "\nThe portal's allowlist after the reconcile:")
	printAllowlist(d.out, d.stack.Portal)
	if !slices.Contains(portalAddrs(d.stack.Portal), removed) || !slices.Contains(portalAddrs(d.stack.Portal), "203.0.113.99") {
		return fmt.Errorf("want %s put back and the unknown entry kept", removed)
	}
	fmt.Fprintln(d.out, "\n✓ Alerted once, naming who changed the allowlist and from where; the deleted address is back, the unknown entry is kept,")
	fmt.Fprintln(d.out, "  and restrictions stay off (PORTAL_DRIFT_REPAIR=false: an admin may have switched them off on purpose).")
	return nil
}

func (d *demo) stepOffboard(ctx context.Context, n int) error {
	step(d.out, n, "Alice leaves: offboarding")
	req := map[string]any{"action": "offboard", "id": aliceID}
	fmt.Fprintf(d.out, "Invoke OnboardFunction with %s\n", jsonText(req))
	var res onboard.Result
	if err := invoke(ctx, d.onboard, req, &res); err != nil {
		return fmt.Errorf("offboard: %w", err)
	}
	fmt.Fprintf(d.out, "Removed from the portal: %d addresses (%s)\n", len(res.PortalRemoved), strings.Join(res.PortalRemoved, ", "))
	fmt.Fprintln(d.out, "\nThe portal's allowlist after:")
	list := printAllowlist(d.out, d.stack.Portal)
	for _, m := range manual {
		if !slices.Contains(list, m) {
			return fmt.Errorf("the manual entry %v was removed", m)
		}
	}
	if _, ok, _ := d.stack.Store.GetUser(ctx, aliceID); ok || slices.Contains(portalAddrs(d.stack.Portal), "203.0.113.10") {
		return errors.New("user Alice is still stored or her address is still on the portal")
	}
	fmt.Fprintln(d.out, "\n✓ Exactly the addresses the tool added for Alice left the portal; the entries added by hand stayed.")
	return nil
}

func portalAddrs(p *devportal.Portal) []string {
	list, _ := p.Restrictions()
	out := make([]string, len(list))
	for i, r := range list {
		out[i] = r.IP
	}
	return out
}
