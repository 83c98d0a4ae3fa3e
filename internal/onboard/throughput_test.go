package onboard

import (
	"context"
	"fmt"
	"slices"
	"sync"
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
			if _, _, err := e.st.BumpVersionAdding(ctx, n); err != nil {
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

// peekStore adds the small poll read (StateLeasePeeker) to the fake: only
// the state's progress, as the DynamoDB store reads it.
type peekStore struct {
	*fakeStore
	peeks int
}

func (p *peekStore) PortalStateAndLease(ctx context.Context, _ string, _ time.Time) (ipguard.PortalState, bool, error) {
	p.peeks++
	st, err := p.fakeStore.PortalState(ctx)
	progress := ipguard.PortalState{Version: st.Version, Applied: st.Applied, Adds: st.Adds, AddsApplied: st.AddsApplied,
		Pending: st.Pending, PendingCode: st.PendingCode, PendingVersion: st.PendingVersion,
		LastSeen: st.LastSeen, LastEnabled: st.LastEnabled, Reconciled: st.Reconciled}
	return progress, true, err
}

// A sync's further pass (the version moved during its first) starts from
// the state the first pass wrote, reading again only the version and the
// count (#15 §6: one full read of the state less per pass). It must come
// to what a full read would: the change that landed during the first pass
// is applied, its address owned, the state's list the portal's, and no
// drift alerted about the tool's own PUTs.
func TestSyncsFurtherPassStartsFromTheStateItWrote(t *testing.T) {
	ctx := context.Background()
	e := newEnv()
	e.do(t, `{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.10"]}`)
	ps := &peekStore{fakeStore: e.st}
	e.s.Store = ps
	store := e.otherChange(t)   // another container's change, stored and bumped
	store("u3", "203.0.113.30") // waiting for the sync's first pass
	// Another container's change lands during the first pass.
	e.p.afterPut = func(*fakePortal) { store("u2", "203.0.113.20") }
	puts := e.p.puts
	if _, err := e.s.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if got := ips(e.p.list); got != "192.0.2.1!,203.0.113.10,203.0.113.30,203.0.113.20" {
		t.Errorf("portal = %s; want the change that landed during the first pass applied by the second", got)
	}
	st := *e.st.state
	if ps.peeks == 0 || e.p.puts-puts != 2 {
		t.Errorf("%d small reads, %d PUTs; want the second pass started from the written state, one PUT each", ps.peeks, e.p.puts-puts)
	}
	if st.Applied != st.Version || st.AddsApplied != st.Adds || !slices.Contains(st.Owned, "203.0.113.20") || ips(st.LastSeen) != ips(e.p.list) {
		t.Errorf("state after the sync: applied %d of %d, adds %d of %d, owned %v, last seen %s; want everything applied, owned and seen",
			st.Applied, st.Version, st.AddsApplied, st.Adds, st.Owned, ips(st.LastSeen))
	}
	if k := e.alerts.kinds(); len(k) != 0 {
		t.Errorf("alerts %v; want none (the passes saw only the tool's own PUTs)", k)
	}
}

// watchStore adds the poll that also says since when the lease's holder
// has held it (HolderWatcher). The holder's pass is simulated: the first
// poll at or after since+pass finds it done (the change applied, the lease
// released).
type watchStore struct {
	*fakeStore
	since time.Time
	pass  time.Duration
	held  *lease.Held
	addr  string
	polls int
	// unmeasured: the state has no LastPass yet (no pass measured since
	// deployment), though the holder's pass takes pass.
	unmeasured bool
}

func (w *watchStore) PortalStateAndHolder(ctx context.Context, _ string, _ time.Time) (ipguard.PortalState, bool, time.Time, error) {
	w.polls++
	if w.held != nil && !time.Now().Before(w.since.Add(w.pass)) {
		// The holder's pass ends: everything stored is applied (the
		// waiter is the only caller of the store meanwhile).
		w.state.Applied, w.state.LastSeen = w.state.Version, append(w.state.LastSeen, ipguard.Restriction{IP: w.addr})
		if err := w.held.Release(ctx); err != nil {
			return ipguard.PortalState{}, false, time.Time{}, err
		}
		w.held = nil
	}
	st, err := w.fakeStore.PortalState(ctx)
	st.LastPass = w.pass
	if w.unmeasured {
		st.LastPass = 0
	}
	if w.held == nil {
		return st, true, time.Time{}, err
	}
	return st, false, w.since, err
}

func (w *watchStore) PortalStateAndLease(ctx context.Context, name string, now time.Time) (ipguard.PortalState, bool, error) {
	st, free, _, err := w.PortalStateAndHolder(ctx, name, now)
	return st, free, err
}

// A change that waits for another holder's pass (#15 §6: the waiters'
// polls were a third of moto's calls under load) reads, besides whether
// the lease is free, since when its holder has held it, and with the last
// pass's length sleeps until that pass is due to end: one poll to learn
// it and one after it, not one every 100–200 ms of the pass. A count of
// polls, not a timing: no sleep ends early, so no third poll is needed.
func TestWaitingChangeSleepsUntilItsHoldersPassEnds(t *testing.T) {
	ctx := context.Background()
	e := newEnv()
	e.do(t, `{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.10"]}`)
	held, err := lease.Acquire(ctx, e.s.Leases, LeaseName, lease.Options{})
	if err != nil {
		t.Fatal(err)
	}
	w := &watchStore{fakeStore: e.st, since: time.Now(), pass: 700 * time.Millisecond, held: held, addr: "203.0.113.20"}
	e.s.Store = w
	res := e.do(t, `{"id":"u2","email":"b@example.com","allowedIps":["203.0.113.20"]}`)
	if res.Portal != PortalApplied || res.AppliedBy != "another request" {
		t.Fatalf("result %+v; want applied by the holder", res)
	}
	if w.polls > 2 {
		t.Errorf("%d polls while the holder's %s pass ran; want at most 2 (one to learn when it ends, one after)", w.polls, w.pass)
	}
}

// The pass length waiting changes sleep by (PortalState.LastPass) follows
// a faster pass at once and a slower one a quarter of the way, and the
// first, cold pass of a process is not recorded: a waiter that sleeps past
// its holder's pass only waits longer (#15 §6: a cold first pass made the
// next pass's waiters oversleep).
func TestLastPassFollowsFasterPassesAtOnce(t *testing.T) {
	ms := time.Millisecond
	for _, c := range []struct{ last, took, want time.Duration }{
		{0, 900 * ms, 900 * ms},
		{800 * ms, 400 * ms, 400 * ms},
		{400 * ms, 800 * ms, 500 * ms},
	} {
		if got := nextLastPass(c.last, c.took); got != c.want {
			t.Errorf("nextLastPass(%s, %s) = %s; want %s", c.last, c.took, got, c.want)
		}
	}
	e := newEnv()
	e.do(t, `{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.10"]}`)
	if e.st.state.LastPass != 0 {
		t.Errorf("after the process's first pass: LastPass %s; want none recorded (a cold pass)", e.st.state.LastPass)
	}
	e.do(t, `{"id":"u2","email":"b@example.com","allowedIps":["203.0.113.20"]}`)
	if e.st.state.LastPass <= 0 {
		t.Error("after its second pass: no LastPass recorded")
	}
}

// A sync's further pass starts only while its PUT could still pass the
// fence (#15 §2): one that could not would read the portal and the users
// for nothing and then store its change as pending ("not sent: less than
// one write attempt ... is left"), so the sync, whose first pass applied
// everything it read, would answer pending and its heartbeat would not
// beat. Here the first pass leaves less lease than a write needs (modelled
// by the write attempt growing during its PUT, not by a clock); the change
// that landed meanwhile is left to its own caller (or the next sync).
// (Before: a further pass started while 10 s of lease were left, however
// long a write needs.)
func TestSyncsFurtherPassStartsOnlyWhileItsPUTCouldPassTheFence(t *testing.T) {
	ctx := context.Background()
	e := newEnv()
	e.do(t, `{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.10"]}`)
	e.s.WriteAttempt = 20 * time.Second // the lease (2m without a deadline) fits one write
	store := e.otherChange(t)           // another container's change, stored and bumped
	store("u3", "203.0.113.30")         // waiting for the sync's first pass
	e.p.afterPut = func(*fakePortal) {
		store("u2", "203.0.113.20")        // another container's change lands during the first pass
		e.s.WriteAttempt = 2 * time.Minute // and now less lease is left than a write needs
	}
	puts := e.p.puts
	res, err := e.s.Sync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Portal != PortalApplied || e.p.puts-puts != 1 {
		t.Errorf("sync: portal %s (%s), %d PUTs; want its first pass applied and no pass that cannot write", res.Portal, res.PortalReason, e.p.puts-puts)
	}
	if st := e.state(); st.Pending != "" {
		t.Errorf("state pending %q; want nothing pending from a pass that could not write", st.Pending)
	}
}

// otherChange stores a user as another container's change does (its record,
// then the version bump), for a pass to find waiting.
func (e *env) otherChange(t *testing.T) func(id, ip string) {
	return func(id, ip string) {
		ctx := context.Background()
		u := ipguard.User{ID: id, Email: id + "@example.com", Entries: []string{ip}, Rev: 1, CreatedAt: t0, UpdatedAt: t0}
		if ok, err := e.st.PutUserIf(ctx, u, 0); !ok || err != nil {
			t.Error(ok, err)
		}
		if _, _, err := e.st.BumpVersionAdding(ctx, 1); err != nil {
			t.Error(err)
		}
	}
}

// aheadPortal records when the reconcile asked it to get ready (its share
// of the request budget) against its first read.
type aheadPortal struct {
	*fakePortal
	mu     sync.Mutex
	events []string
}

func (p *aheadPortal) ReserveAhead(context.Context) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.events = append(p.events, "ahead")
}

func (p *aheadPortal) IPRestrictions(ctx context.Context) ([]ipguard.Restriction, error) {
	p.mu.Lock()
	p.events = append(p.events, "get")
	p.mu.Unlock()
	return p.fakePortal.IPRestrictions(ctx)
}

// A reconcile that took the lease asks the portal client to get ready for
// its requests (the shared budget's tokens) before its state read and its
// first portal read, once per pass; a change another holder applied takes
// no lease and asks nothing.
func TestTheLeaseHolderReservesTheBudgetAheadOfItsPortalReads(t *testing.T) {
	e := newEnv()
	p := &aheadPortal{fakePortal: e.p}
	e.s.Portal = p
	e.do(t, `{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.10"]}`)
	if len(p.events) < 2 || p.events[0] != "ahead" || slices.Index(p.events, "ahead") > slices.Index(p.events, "get") {
		t.Fatalf("events %v; want the reservation ahead first, before the portal read", p.events)
	}
	if n := len(slices.DeleteFunc(slices.Clone(p.events), func(s string) bool { return s != "ahead" })); n != 1 {
		t.Errorf("%d reservations ahead in one pass, want 1", n)
	}
}
