package integration

import (
	"context"
	"slices"
	"strings"
	"testing"

	"ipguard/internal/ipguard"
)

// #15 §1, "refused: nothing sent because the invariant check refused", on
// the real wiring, moto and the dev portal. The reconcile checks the plan
// again before any PUT: a hand edit filled the portal list to
// PORTAL_MAX_ENTRIES after the change passed its own cap check, so the
// plan (additions only) would pass the cap and is refused. Then:
//   - no PUT reached the portal;
//   - the state stores it as refused: pending with its kind
//     (ConfigurationError), nothing in flight (not "unknown"), the version
//     not applied;
//   - no address became owned (the admin adding it later keeps it);
//   - a person is told: the function fails with ConfigurationError (its
//     metrics line counts a failure of that type: OnboardErrorsAlarm), and
//     the hand edit past the cap is a drift alert on the topic.
//
// Once the admin's entry is gone, the next sync applies the change.
func TestRefusedPlanSendsNothingAndOwnsNothing(t *testing.T) {
	s := deploy(t, "PORTAL_MAX_ENTRIES=4")
	s.Portal.SetRestrictions(manual, true)
	svc, lines := meteredOnboardService(t)
	ctx := context.Background()
	if _, err := svc(ctx, []byte(`{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.10"]}`)); err != nil {
		t.Fatal(err)
	}
	// An admin fills the list to the cap by hand.
	list, _ := s.Portal.Restrictions()
	s.Portal.SetRestrictions(append(list, ipguard.Restriction{IP: "198.51.100.1"}), true)
	before, err := s.Store.PortalState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	putsBefore, published := puts(s), len(s.Published())
	lines.Reset()

	_, err = svc(ctx, []byte(`{"id":"u2","email":"b@example.com","allowedIps":["203.0.113.20"]}`))

	if ipguard.ErrorCode(err) != ipguard.EConfig || !strings.Contains(err.Error(), "PORTAL_MAX_ENTRIES") {
		t.Errorf("err = %v; want a ConfigurationError naming PORTAL_MAX_ENTRIES", err)
	}
	if n := puts(s) - putsBefore; n != 0 {
		t.Errorf("%d PUT(s) reached the portal; a refused plan sends nothing", n)
	}
	if got := portalIPs(s); slices.Contains(got, "203.0.113.20") {
		t.Errorf("portal = %v", got)
	}
	st, err := s.Store.PortalState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Sent != nil || st.SentOutcome != "" {
		t.Errorf("state after a refused plan: sent %v (%q); want nothing in flight (refused, not unknown)", st.Sent, st.SentOutcome)
	}
	if st.Pending == "" || st.PendingCode != ipguard.EConfig || st.Applied >= st.Version || st.Applied != before.Applied {
		t.Errorf("state: pending %q (%s), applied %d of version %d (was %d); want refused and pending, not applied",
			st.Pending, st.PendingCode, st.Applied, st.Version, before.Applied)
	}
	if slices.Contains(st.Owned, "203.0.113.20") || slices.Contains(st.Owned, "198.51.100.1") {
		t.Errorf("owned %v after a refused plan", st.Owned)
	}
	if l := lines.String(); !strings.Contains(l, `"Failures":1`) || !strings.Contains(l, `"errorType":"ConfigurationError"`) || !strings.Contains(l, `"PortalPending":1`) {
		t.Errorf("metrics line %s; want a ConfigurationError failure and the change counted as pending (it is stored)", l)
	}
	var drift bool
	for _, p := range s.Published()[published:] {
		drift = drift || strings.Contains(p.Default, "198.51.100.1")
	}
	if !drift {
		t.Errorf("published %+v; want a drift alert naming the hand edit past the cap", s.Published()[published:])
	}

	// The admin takes the entry away again: the next sync applies the change.
	s.Portal.SetRestrictions(list, true)
	if _, err := svc(ctx, []byte(`{"action":"sync"}`)); err != nil {
		t.Fatal(err)
	}
	if got := portalIPs(s); !slices.Contains(got, "203.0.113.20") {
		t.Errorf("portal after the sync = %v", got)
	}
	if st, _ := s.Store.PortalState(ctx); !slices.Contains(st.Owned, "203.0.113.20") || st.Pending != "" {
		t.Errorf("after the sync: owned %v, pending %q", st.Owned, st.Pending)
	}
}
