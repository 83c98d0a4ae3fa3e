// Package auditalert gives the tests of the packages downstream of the
// audit's publisher (the findings bus, chat) an alert exactly as the audit
// renders it, so that none of them writes its own rendering.
package auditalert

import (
	"testing"
	"time"

	"ipguard/internal/audit"
	"ipguard/internal/ipguard"
)

// Portal is the portal the rendered alerts name.
const Portal = "portal.example.com"

// Render is the alert the audit publishes for findings fs found in the five
// minutes up to now on Portal; anything but one message is t.Fatal.
func Render(t testing.TB, now time.Time, fs ...audit.Finding) ipguard.Alert {
	t.Helper()
	bs, err := audit.RenderAlerts(audit.Meta{Portal: Portal, Window: audit.Window{From: now.Add(-5 * time.Minute), To: now}}, fs, audit.MaxMessageBytes)
	if err != nil || len(bs) != 1 {
		t.Fatalf("render: %v (%d batches)", err, len(bs))
	}
	return bs[0].Alert
}
