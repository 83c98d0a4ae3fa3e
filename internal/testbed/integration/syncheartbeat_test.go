package integration

import (
	"context"
	"strings"
	"testing"

	"ipguard/internal/onboard"
	"ipguard/internal/testbed/devportal"
)

// The sync heartbeat (Syncs, read by SyncHeartbeatAlarm: "expired travel
// entries stay on the portal") beats only for a sync that reached the
// portal. While the portal does not answer, a sync stores nothing wrong
// and fails nobody (the change waits, pending), but it did not sync: its
// metrics line carries no Syncs, so an outage that lasts two periods
// raises the alarm. (Before: every such sync counted as completed, and a
// portal down for days never showed.)
func TestSyncHeartbeatBeatsOnlyWhenThePortalWasReached(t *testing.T) {
	s := deploy(t)
	s.Portal.SetRestrictions(manual, true)
	svc, lines := meteredOnboardService(t)
	ctx := context.Background()
	if _, err := svc(ctx, []byte(`{"action":"sync"}`)); err != nil {
		t.Fatal(err)
	}
	if l := lines.String(); !strings.Contains(l, `"Syncs":1`) {
		t.Fatalf("a sync that reached the portal: metrics line %s; want Syncs 1", l)
	}
	s.Portal.InjectFault(devportal.Fault{Path: "/settings/iprestrictions", Status: 503})
	lines.Reset()
	res, err := svc(ctx, []byte(`{"action":"sync"}`))
	if err != nil || res.Portal != onboard.PortalPending {
		t.Fatalf("sync while the portal is down: %+v, %v; want pending", res, err)
	}
	if l := lines.String(); strings.Contains(l, `"Syncs":1`) {
		t.Errorf("a sync that could not reach the portal: metrics line %s; want no Syncs", l)
	}
}
