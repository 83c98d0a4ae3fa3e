package onboard

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"ipguard/internal/ipguard"
	"ipguard/internal/lease/leasetest"
)

// stateWriteFails is the store with the portal state write that records a
// PUT's unknown outcome failing (a throttled or unreachable table).
type stateWriteFails struct {
	*fakeStore
	failed atomic.Int32
}

func (s *stateWriteFails) PutPortalState(ctx context.Context, st ipguard.PortalState) error {
	if st.SentOutcome == ipguard.SentUnknown {
		s.failed.Add(1)
		return ipguard.Errorf(ipguard.EUnavailable, "put the portal allowlist state: throttled")
	}
	return s.fakeStore.PutPortalState(ctx, st)
}

// The fence holds when the store fails too: a PUT went unanswered (it may
// still land), and then the state write that records it as pending failed.
// The request fails (the store's error), but the lease is still kept until
// the PUT could have landed: nobody writes the portal under it. (Before:
// the store's error dropped the outcome, and with it the time the PUT may
// land until, so the lease was released at once.)
func TestLeaseIsKeptAfterAnUnansweredPUTAlsoWhenTheStateWriteFails(t *testing.T) {
	e := newEnv()
	leases := &leasetest.Backend{}
	e.s.Leases, e.s.WriteAttempt = leases, 30*time.Second
	st := &stateWriteFails{fakeStore: e.st} // the in-flight record is written, the pending one is not
	e.s.Store = st
	e.p.late = 1 // the PUT times out, and lands later
	if _, err := e.handle(`{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.10"]}`); err == nil {
		t.Fatal("no error although the state could not be written")
	}
	if len(e.p.lateList) != 1 || st.failed.Load() == 0 {
		t.Fatalf("%d PUTs in flight, %d failed state writes; want the one unanswered PUT and its state write failed", len(e.p.lateList), st.failed.Load())
	}
	if leases.Owner(LeaseName) == "" || !leases.Until(LeaseName).After(time.Now()) {
		t.Errorf("the lease was released while the unanswered PUT may still land")
	}
}

// resultWriteFails is the store whose portal state write after the PUT
// (the reconcile's result, once armed) fails.
type resultWriteFails struct {
	*fakeStore
	armed atomic.Bool
}

func (s *resultWriteFails) PutPortalState(ctx context.Context, st ipguard.PortalState) error {
	if s.armed.Load() && st.SentOutcome == "" {
		return ipguard.Errorf(ipguard.EUnavailable, "put the portal allowlist state: throttled")
	}
	return s.fakeStore.PutPortalState(ctx, st)
}

// The check of the tool's write in the audit trail (#15 §3: a save by
// someone else that the write overwrote) is not lost when the state write
// after the PUT fails: the PUT landed all the same, so the admin's save
// inside it is still alerted (the request fails with the store's error).
// (Before: the store's error dropped the outcome, and with it the PUT's
// saves and its trail read: nothing was checked, and nothing said so.)
func TestOverwrittenSaveIsAlertedAlsoWhenTheStateWriteAfterThePUTFails(t *testing.T) {
	e := newEnv()
	trail := e.withTrail()
	st := &resultWriteFails{fakeStore: e.st}
	e.s.Store = st
	e.p.afterPut = func(*fakePortal) { st.armed.Store(true) }
	trail.add(Change{When: t0, User: "Ada Admin", UserID: "adm", IP: "192.0.2.66"}) // between the read and the PUT
	if _, err := e.handle(`{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.10"]}`); err == nil {
		t.Fatal("no error although the state could not be written")
	}
	if e.p.puts != 1 {
		t.Fatalf("%d PUTs, want 1", e.p.puts)
	}
	alerted := false
	for _, a := range e.alerts.sent {
		if strings.Contains(a.Email, "Ada Admin") && strings.Contains(a.Email, "overwrote") {
			alerted = true
		}
	}
	if !alerted {
		t.Errorf("alerts %v; want the admin's save the write overwrote alerted", e.alerts.kinds())
	}
}

// A sync's further pass fails after its in-flight record was written (its
// PUT went unanswered, and the store refused the pending record): the
// state still says that list is in flight. The first pass's write is
// still checked in the audit trail (here unreadable: an episode to
// record), but nothing writes the first pass's state over the in-flight
// record of the second: the next holder must know to expect that list.
func TestAFailedFurtherPassKeepsItsInFlightRecord(t *testing.T) {
	ctx := context.Background()
	e := newEnv()
	trail := &failingTrail{fakeTrail: e.withTrail()}
	e.s.Trail = trail
	e.do(t, `{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.10"]}`)
	st := &stateWriteFails{fakeStore: e.st}
	e.s.Store = st
	trail.fail = ipguard.Errorf(ipguard.EUnavailable, "get audit events: HTTP 503")
	store := e.otherChange(t)   // another container's change, stored and bumped
	store("u3", "203.0.113.30") // for the sync's first pass
	e.p.afterPut = func(f *fakePortal) {
		store("u2", "203.0.113.20") // lands during the first pass: a second pass follows
		f.late = 1                  // whose PUT goes unanswered
	}
	if _, err := e.s.Sync(ctx); err == nil {
		t.Fatal("no error although the second pass's state could not be written")
	}
	if got := e.state(); got.Sent == nil || !strings.Contains(ips(got.Sent), "203.0.113.20") || got.SentOutcome != ipguard.SentInFlight {
		t.Errorf("state: sent %s (%q); want the second pass's list still recorded in flight", ips(got.Sent), got.SentOutcome)
	}
}
