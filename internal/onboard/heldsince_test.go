package onboard

import (
	"context"
	"testing"
	"time"

	"ipguard/internal/lease"
	"ipguard/internal/lease/leasetest"
)

// reportingLeases is a lease backend whose refused take says since when the
// holder has held the lease (lease.HolderReporter), as DynamoDB's refused
// conditional write returns the record it found.
type reportingLeases struct {
	*leasetest.Backend
	since time.Time
}

func (r *reportingLeases) TryAcquireLeaseOrHolder(ctx context.Context, name, owner string, until, now time.Time) (bool, time.Time, error) {
	ok, err := r.TryAcquireLease(ctx, name, owner, until, now)
	if err != nil || ok {
		return ok, time.Time{}, err
	}
	return false, r.since, nil
}

// A change whose lease try is refused by a holder that says since when it
// holds the lease (#15 §6: the refused waiters' pause-and-poll was a call
// per waiter and pass under load) sleeps, with the last pass's length,
// until that pass is due to end and polls once, instead of pausing and
// polling to learn when it ends. Before any pass was measured (the first
// changes after deployment: the state has no LastPass) it goes by
// firstPassGuess the same way (the first wave of a load's changes noticed
// their pass up to 200 ms late). A count of polls, not a timing.
func TestRefusedChangeSleepsUntilTheHoldersPassEnds(t *testing.T) {
	for _, tt := range []struct {
		name       string
		lastPass   time.Duration // the state's LastPass (0: none measured yet)
		pass       time.Duration // how long the holder's pass takes
		unmeasured bool
	}{
		{"the last pass's length", 600 * time.Millisecond, 600 * time.Millisecond, false},
		{"before any pass was measured: the first-pass guess", 0, firstPassGuess, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			e := newEnv()
			e.do(t, `{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.10"]}`)
			leases := &reportingLeases{Backend: &leasetest.Backend{}, since: time.Now()}
			e.s.Leases = leases
			held, err := lease.Acquire(ctx, leases, LeaseName, lease.Options{})
			if err != nil {
				t.Fatal(err)
			}
			e.st.state.LastPass = tt.lastPass
			// The change's own read does not say the lease is held (no
			// since): it tries the lease, and the refusal says since when.
			w := &watchStore{fakeStore: e.st, since: leases.since, pass: tt.pass, held: held, addr: "203.0.113.20", unmeasured: tt.unmeasured}
			e.s.Store = w
			res := e.do(t, `{"id":"u2","email":"b@example.com","allowedIps":["203.0.113.20"]}`)
			if res.Portal != PortalApplied || res.AppliedBy != "another request" {
				t.Fatalf("result %+v; want applied by the holder", res)
			}
			if w.polls != 1 {
				t.Errorf("%d polls after the refused lease try; want 1 (after the holder's %s pass is due to end)", w.polls, tt.pass)
			}
		})
	}
}
