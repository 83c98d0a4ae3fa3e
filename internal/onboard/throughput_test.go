package onboard

import (
	"context"
	"fmt"
	"testing"
	"time"

	"ipguard/internal/ipguard"
	"ipguard/internal/lease"
)

// scanCounter counts the reads of every user.
type scanCounter struct {
	*fakeStore
	scans int
}

func (s *scanCounter) AllUsers(ctx context.Context) ([]ipguard.User, error) {
	s.scans++
	return s.fakeStore.AllUsers(ctx)
}

// The cap check before storing counts the changes stored but not yet on
// the portal (#15 §4) without reading every user while the count bounds
// them well under the cap (#15 §6: under load most changes arrive while
// others wait, and each read of every user is the slowest store call). The
// bound is the list the last reconcile left plus what the waiting changes
// counted at their version bump; past 90 % of the cap every user is read,
// and a change past the cap is InvalidInput with nothing stored.
func TestCapCheckBoundsWaitingChangesWithoutReadingEveryUser(t *testing.T) {
	cases := []struct {
		name       string
		maxEntries int
		waiting    string // another request's entry, stored and counted, not yet on the portal
		mine       string
		wantErr    bool
		wantScans  int
	}{
		// portal: 192.0.2.1 (admin) and u1's 203.0.113.10; bound 2 + 8 + 8 = 18 <= 36.
		{"well under the cap: no read of every user", 40, "10.0.1.0/29", "10.0.2.0/29", false, 0},
		// bound 2 + 16 + 8 = 26 > 23: read; 26 <= 26 fits.
		{"near the cap: every user read, and it fits", 26, "10.0.1.0/28", "10.0.2.0/29", false, 1},
		// bound 26 > 18: read; 26 > 20.
		{"past the cap with the waiting change: refused, nothing stored", 20, "10.0.1.0/28", "10.0.2.0/29", true, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			e := newEnv()
			e.s.Settings.MaxEntries = c.maxEntries
			e.do(t, `{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.10"]}`)
			// Another container's change: stored and bumped, its reconcile
			// still to come (another holder has the lease).
			waiting := ipguard.User{ID: "u2", Email: "b@example.com", Entries: []string{c.waiting}, Rev: 1, CreatedAt: t0, UpdatedAt: t0}
			if ok, err := e.st.PutUserIf(ctx, waiting, 0); !ok || err != nil {
				t.Fatal(ok, err)
			}
			n := len(DesiredState([]ipguard.User{waiting}, Settings{MaxRangeAddresses: 256}, t0).Addrs)
			if _, err := e.st.BumpVersionAdding(ctx, n); err != nil {
				t.Fatal(err)
			}
			if _, err := lease.Acquire(ctx, e.s.Leases, LeaseName, lease.Options{}); err != nil {
				t.Fatal(err)
			}
			counted := &scanCounter{fakeStore: e.st}
			e.s.Store, e.s.LeaseWait = counted, 30*time.Millisecond

			res, err := e.s.Handle(ctx, []byte(fmt.Sprintf(`{"id":"u3","email":"c@example.com","allowedIps":[%q]}`, c.mine)))
			_, stored, _ := e.st.GetUser(ctx, "u3")
			if c.wantErr {
				if ipguard.ErrorCode(err) != ipguard.EInvalid || stored {
					t.Errorf("err = %v, stored %v; want InvalidInput, nothing stored", err, stored)
				}
			} else if err != nil || !res.Stored || !stored {
				t.Errorf("err = %v, result %+v; want it stored", err, res)
			}
			if counted.scans != c.wantScans {
				t.Errorf("read every user %d times; want %d", counted.scans, c.wantScans)
			}
		})
	}
}
