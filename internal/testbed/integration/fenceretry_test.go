package integration

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"ipguard/internal/ipguard"
	"ipguard/internal/onboard"
	"ipguard/internal/testbed/devportal"
	"ipguard/internal/testbed/localdeploy"
)

// The fence's retry path (#15 §2), through the real DocSpace client, the
// dev portal and the lease in moto: a first PUT attempt whose outcome is
// unknown (read by the portal, not answered before the client's attempt
// timeout, applied by the portal a little later), then either a retry
// (enough lease left) or none (too little left).

// fenceStack deploys the onboarding with a client attempt timeout of
// timeout (DOCSPACE_TIMEOUT) and no lease wait, the manual entries on the
// portal, switched on, and its next list PUT unanswered: read, held until
// the client gives up, and applied late after that.
func fenceStack(t *testing.T, timeout string, late time.Duration) (*localdeploy.Stack, handler[onboard.Result]) {
	t.Helper()
	s := deploy(t, "DOCSPACE_TIMEOUT="+timeout, "LEASE_WAIT=0s")
	s.Portal.SetRestrictions(manual, true)
	svc := onboardService(t)
	s.Portal.InjectFault(devportal.Fault{Method: "PUT", Path: "/settings/iprestrictions", Times: 1, ApplyLate: late})
	return s, svc
}

// leaseFreeAt reads whether the portal allowlist lease is free at instant at.
func leaseFreeAt(t *testing.T, s *localdeploy.Stack, at time.Time) bool {
	t.Helper()
	_, free, err := s.Store.PortalStateAndLease(context.Background(), onboard.LeaseName, at)
	if err != nil {
		t.Fatal(err)
	}
	return free
}

// waitFor polls cond (a fact of the stack, not a time) for at most limit.
func waitFor(t *testing.T, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(limit); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("%s: not within %s", what, limit)
		}
	}
}

// (i) Enough lease left: the client retries the unanswered PUT and the
// retry is answered. The change is applied and owned, nothing stays in
// flight, and the lease is still kept until the unanswered first attempt
// could have landed (one attempt's time after it went unanswered): the
// portal may still apply it, and nobody may write under it. (Before: the
// answered retry released the lease at once, so the next change could PUT
// its list and the first attempt, landing after it, put the older list
// back on the portal; and the first attempt's trail event, at an instant no
// answer dated, was named as a save by someone else that the tool's write
// may have overwritten.)
func TestFenceRetriesAnUnansweredPUTAndKeepsTheLeaseUntilItCouldLand(t *testing.T) {
	const attempt = 1500 * time.Millisecond
	s, svc := fenceStack(t, "1500ms", time.Millisecond)
	ctx := context.Background()

	start, published := time.Now(), len(s.Published())
	res, err := svc.Handle(ctx, []byte(`{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.10"]}`))
	if err != nil {
		t.Fatal(err)
	}
	if n := puts(s); n != 2 || res.Portal != onboard.PortalApplied {
		t.Fatalf("%d PUT attempt(s) reached the portal, result %+v; want the unanswered one and its retry, applied", n, res)
	}
	// Its unanswered attempt, landed at an instant no answer dated, is the
	// tool's own save, not someone else's.
	for _, w := range res.Warnings {
		if strings.Contains(w, "someone else") || strings.Contains(w, "hand edit") {
			t.Errorf("warning %q about the tool's own unanswered attempt", w)
		}
	}
	if p := s.Published()[published:]; len(p) != 0 {
		t.Errorf("published %+v about the tool's own unanswered attempt", p)
	}
	st, err := s.Store.PortalState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Sent != nil || !slices.Contains(st.Owned, "203.0.113.10") || st.Applied != st.Version {
		t.Errorf("state: sent %v (%q), owned %v, applied %d of %d; want applied, owned, nothing in flight",
			st.Sent, st.SentOutcome, st.Owned, st.Applied, st.Version)
	}
	// The first attempt went unanswered no earlier than start+attempt; it
	// may land until one attempt's time after that.
	if leaseFreeAt(t, s, start.Add(2*attempt-10*time.Millisecond)) {
		t.Errorf("the lease is free before the unanswered first attempt could have landed (%s after the request started)", 2*attempt)
	}

	// Once it could have landed, the next holder finds the tool's own list:
	// no drift, and a later change is applied on top of it.
	waitFor(t, "the lease ends", 10*time.Second, func() bool { return leaseFreeAt(t, s, time.Now()) })
	res, err = svc.Handle(ctx, []byte(`{"id":"u2","email":"b@example.com","allowedIps":["203.0.113.20"]}`))
	if err != nil || res.Portal != onboard.PortalApplied {
		t.Fatalf("next change: %+v, %v", res, err)
	}
	if got := portalIPs(s); !slices.Contains(got, "203.0.113.10") || !slices.Contains(got, "203.0.113.20") {
		t.Errorf("portal = %v; want both changes", got)
	}
	res, err = svc.Handle(ctx, []byte(`{"action":"sync"}`))
	if err != nil || res.Drift != nil {
		t.Errorf("sync: drift %+v, err %v; the tool's own late PUT is no drift", res.Drift, err)
	}
}

// (ii) Too little lease left: the first attempt went unanswered and no
// retry starts (less than one attempt's timeout is left before the lease's
// fence). The outcome is unknown: the change is pending, the in-flight
// record stays (the list, "unknown"), nothing is owned, and the lease is
// kept until the attempt could have landed, so a change arriving meanwhile
// writes nothing. The portal applies the attempt late; the next holder
// reads it as the tool's own (owned, no drift) and repairs after it: the
// user offboarded meanwhile loses the address that landed late.
func TestFenceSendsNoRetryWithTooLittleLeaseAndTheNextHolderRepairs(t *testing.T) {
	const attempt = 3 * time.Second
	s, svc := fenceStack(t, "3s", time.Second)
	ctx := context.Background()

	// The invocation's deadline leaves room for one attempt, not two: the
	// first starts with at least one attempt's time left (its path to the
	// PUT may take up to 2.9 s), a retry never could.
	inv, cancel := context.WithTimeout(ctx, 2*attempt-100*time.Millisecond)
	res, err := svc.Handle(inv, []byte(`{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.10"]}`))
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	if n := puts(s); n != 1 || res.Portal != onboard.PortalPending {
		t.Fatalf("%d PUT attempt(s), result %+v; want the one unanswered attempt, no retry, pending", n, res)
	}
	st, err := s.Store.PortalState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.SentOutcome != ipguard.SentUnknown || !holdsIP(st.Sent, "203.0.113.10") || slices.Contains(st.Owned, "203.0.113.10") {
		t.Fatalf("state: sent %v (%q), owned %v; want the list kept in flight as unknown, nothing owned", st.Sent, st.SentOutcome, st.Owned)
	}
	if st.Applied >= st.Version || st.Pending == "" {
		t.Errorf("state: applied %d of %d, pending %q; want pending", st.Applied, st.Version, st.Pending)
	}
	if leaseFreeAt(t, s, time.Now()) {
		t.Fatal("the lease was released while the unanswered attempt may still land")
	}

	// Offboarded meanwhile: stored, but nothing written under the kept lease.
	before := puts(s)
	res, err = svc.Handle(ctx, []byte(`{"action":"offboard","id":"u1"}`))
	if err != nil {
		t.Fatal(err)
	}
	if puts(s) != before {
		t.Errorf("a change wrote the portal while the unanswered attempt could still land (result %+v)", res)
	}

	// The portal applies the attempt late; then the lease ends.
	waitFor(t, "the late PUT lands", 10*time.Second, func() bool { return slices.Contains(portalIPs(s), "203.0.113.10") })
	waitFor(t, "the lease ends", 15*time.Second, func() bool { return leaseFreeAt(t, s, time.Now()) })

	res, err = svc.Handle(ctx, []byte(`{"action":"sync"}`))
	if err != nil {
		t.Fatal(err)
	}
	if res.Drift != nil {
		t.Errorf("drift %+v; the tool's own late PUT is no drift", res.Drift)
	}
	if got := portalIPs(s); slices.Contains(got, "203.0.113.10") || !slices.Contains(got, "192.0.2.2") {
		t.Errorf("portal = %v; want the late-landed address of the offboarded user removed, the manual entries kept", got)
	}
	if st, _ := s.Store.PortalState(ctx); st.Sent != nil || slices.Contains(st.Owned, "203.0.113.10") || st.Pending != "" {
		t.Errorf("after the repair: sent %v (%q), owned %v, pending %q", st.Sent, st.SentOutcome, st.Owned, st.Pending)
	}
}

func holdsIP(list []ipguard.Restriction, ip string) bool {
	return slices.ContainsFunc(list, func(r ipguard.Restriction) bool { return r.IP == ip && !r.ForAdmin })
}
