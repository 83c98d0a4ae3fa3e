package integration

import (
	"context"
	"slices"
	"testing"
	"time"

	"ipguard/internal/ipguard"
	"ipguard/internal/onboard"
	"ipguard/internal/testbed/devportal"
)

// The users-left check spends at most half of the sync's time, also when
// people/{id} hangs (a proxy holding the requests of one path): the
// reconcile gets the rest, so a change that waits is applied (and expired
// entries leave) whatever the people endpoint does. (Before: the half was
// checked only between calls; one call, retried on its timeouts, ran until
// the invocation's deadline, and no sync reconciled while it hung.)
func TestSyncReconcilesWhilePeopleHangs(t *testing.T) {
	s := deploy(t, "OFFBOARD_REMOVED_USERS=true", "DOCSPACE_TIMEOUT=1s")
	s.Portal.SetRestrictions(manual, true) // on already: no lock-out preflight (which asks people/ too)
	if err := s.Portal.PutUsers(devportal.User{ID: alice, DisplayName: "Alice", Email: "alice@example.com", Status: devportal.StatusActive}); err != nil {
		t.Fatal(err)
	}
	svc := onboardService(t)
	// The change is stored, but the portal refuses the PUT for now.
	s.Portal.InjectFault(devportal.Fault{Method: "PUT", Path: "/settings/iprestrictions", Status: 403, Times: 1})
	if _, err := svc.Handle(context.Background(), []byte(`{"id":"`+alice+`","email":"alice@example.com","allowedIps":["203.0.113.10"]}`)); err == nil {
		t.Fatal("the refused PUT was no error")
	}
	s.Portal.InjectFault(devportal.Fault{Method: "GET", Path: "/people/", Delay: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()
	res, err := svc.Handle(ctx, []byte(`{"action":"sync"}`))
	if err != nil || res.Portal != onboard.PortalApplied {
		t.Fatalf("sync while people/{id} hangs: %+v, %v; want the waiting change applied", res, err)
	}
	if got := portalIPs(s); !slices.Contains(got, "203.0.113.10") {
		t.Errorf("portal = %v; want the waiting change on it", got)
	}
}

// The lock-out preflight (asked only while restrictions are off and
// PORTAL_ENFORCE=true: keys/@self, then people/{creator}) is bounded too:
// when people/{id} hangs, the change is still applied, restrictions stay
// off (the preflight could not say it is safe) and the result says why.
// (Before: the preflight's call ran until the invocation's deadline, and
// no change reached the portal while people/{id} hung.)
func TestChangeIsAppliedWhileThePreflightsPeopleCallHangs(t *testing.T) {
	s := deploy(t, "DOCSPACE_TIMEOUT=2s", "PORTAL_ENFORCE=true")
	s.Portal.SetRestrictions(manual, false)
	svc := onboardService(t)
	s.Portal.InjectFault(devportal.Fault{Method: "GET", Path: "/people/", Delay: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()
	res, err := svc.Handle(ctx, []byte(`{"id":"`+alice+`","email":"alice@example.com","allowedIps":["203.0.113.10"]}`))
	if err != nil || res.Portal != onboard.PortalApplied {
		t.Fatalf("change while people/{id} hangs: %+v, %v; want it applied", res, err)
	}
	if got, enabled := s.Portal.Restrictions(); !slices.ContainsFunc(got, func(r ipguard.Restriction) bool { return r.IP == "203.0.113.10" }) || enabled {
		t.Errorf("portal = %v (enabled %v); want the change on it, restrictions left off", got, enabled)
	}
}
