package onboard

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"ipguard/internal/lease/leasetest"
)

// gateTrail says when the audit trail's read started.
type gateTrail struct {
	*fakeTrail
	once    sync.Once
	started chan struct{}
}

func (g *gateTrail) AllowlistChanges(ctx context.Context, from time.Time) ([]Change, error) {
	g.once.Do(func() { close(g.started) })
	return g.fakeTrail.AllowlistChanges(ctx, from)
}

// gateRelease's release of the lease waits until the trail's read has
// started (at most a few seconds, so that code that reads it later is
// reported, not hung), and says whether it saw that.
type gateRelease struct {
	*leasetest.Backend
	trailStarted chan struct{}
	overlapped   bool
}

func (g *gateRelease) ReleaseLease(ctx context.Context, name, owner string) error {
	select {
	case <-g.trailStarted:
		g.overlapped = true
	case <-time.After(3 * time.Second):
	}
	return g.Backend.ReleaseLease(ctx, name, owner)
}

// The holder's read of the audit trail for saves by someone else during
// its write (#15 §5) is sent once its PUT is answered, and is out while the
// state is written and the lease released (#15 §6: it was a portal round
// trip after the release on the holder's answer); the result still names
// a save by someone else inside the write. An order of events, not a timing.
func TestHolderReadsTheTrailWhileItReleases(t *testing.T) {
	e := newEnv()
	trail := e.withTrail()
	started := make(chan struct{})
	e.s.Trail = &gateTrail{fakeTrail: trail, started: started}
	rel := &gateRelease{Backend: &leasetest.Backend{}, trailStarted: started}
	e.s.Leases = rel
	// An admin's save in the same second as the tool's, inside its write.
	trail.add(Change{When: e.now, User: "admin", IP: "198.51.100.7"})
	res := e.do(t, `{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.10"]}`)
	if !rel.overlapped {
		t.Error("the lease was released before the trail's read started; want the read out while the state is written and the lease released")
	}
	if res.Portal != PortalApplied || ips(e.p.list) != "192.0.2.1!,203.0.113.10" {
		t.Errorf("result %+v, portal %s; want the change applied", res, ips(e.p.list))
	}
	named := false
	for _, w := range res.Warnings {
		if strings.Contains(w, "admin") {
			named = true
		}
	}
	if !named {
		t.Errorf("warnings %q; want the admin's save inside the write named", res.Warnings)
	}
}
