package onboard

import (
	"context"
	"sync"
	"testing"
	"time"

	"ipguard/internal/ipguard"
)

// gateStore's read of every user waits until the portal's GET of the list
// has started (at most a few seconds, so that code that reads the users
// first is reported, not hung), and says whether it saw that GET start.
type gateStore struct {
	*fakeStore
	getStarted chan struct{}
	overlapped bool
}

func (g *gateStore) AllUsers(ctx context.Context) ([]ipguard.User, error) {
	select {
	case <-g.getStarted:
		g.overlapped = true
	case <-time.After(3 * time.Second):
	}
	return g.fakeStore.AllUsers(ctx)
}

type gatePortal struct {
	*fakePortal
	once    sync.Once
	started chan struct{}
}

func (g *gatePortal) IPRestrictions(ctx context.Context) ([]ipguard.Restriction, error) {
	g.once.Do(func() { close(g.started) })
	return g.fakePortal.IPRestrictions(ctx)
}

// A pass reads every user while its two GETs are out (#15 §6: the scan,
// the slowest store call of a pass, cost a round trip of its own before
// them), and the pass still applies what it read. An order of events,
// not a timing.
func TestPassReadsUsersWhileItsGETsAreOut(t *testing.T) {
	e := newEnv()
	started := make(chan struct{})
	g := &gateStore{fakeStore: e.st, getStarted: started}
	e.s.Store = g
	e.s.Portal = &gatePortal{fakePortal: e.p, started: started}
	res := e.do(t, `{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.10"]}`)
	if !g.overlapped {
		t.Error("the pass read every user before its GET of the list started; want the read while the GETs are out")
	}
	if res.Portal != PortalApplied || ips(e.p.list) != "192.0.2.1!,203.0.113.10" {
		t.Errorf("result %+v, portal %s; want the change applied", res, ips(e.p.list))
	}
}

// countingPortal counts the GETs of the list.
type countingPortal struct {
	*fakePortal
	mu    sync.Mutex
	lists int
}

func (c *countingPortal) IPRestrictions(ctx context.Context) ([]ipguard.Restriction, error) {
	c.mu.Lock()
	c.lists++
	c.mu.Unlock()
	return c.fakePortal.IPRestrictions(ctx)
}

// A scan that ends longer after the GETs than maxScanOverhang (here: any
// later at all) is followed by the GETs again: the window in which a hand
// edit is overwritten does not grow with the number of users. A count of
// GETs, not a timing.
func TestLongScanIsFollowedByTheGETsAgain(t *testing.T) {
	saved := maxScanOverhang
	t.Cleanup(func() { maxScanOverhang = saved })
	for _, c := range []struct {
		overhang time.Duration
		want     int
	}{{-time.Second, 2}, {time.Hour, 1}} {
		maxScanOverhang = c.overhang
		e := newEnv()
		p := &countingPortal{fakePortal: e.p}
		e.s.Portal = p
		res := e.do(t, `{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.10"]}`)
		// One GET of the list for the read-back after the PUT besides.
		if got := p.lists - 1; got != c.want {
			t.Errorf("overhang bound %s: %d GETs of the list before the PUT; want %d", c.overhang, got, c.want)
		}
		if res.Portal != PortalApplied || ips(e.p.list) != "192.0.2.1!,203.0.113.10" {
			t.Errorf("overhang bound %s: result %+v, portal %s; want the change applied", c.overhang, res, ips(e.p.list))
		}
	}
}
