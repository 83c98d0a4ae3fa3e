package onboard

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"ipguard/internal/ipguard"
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
// state is written (#15 §6: it was a portal round trip after the release on
// the holder's answer), answered before the lease is released; the result still names
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

// nextHolderTrail's read is answered only after the lease was released and
// the next holder's save (by the key's user, in the same second) landed.
type nextHolderTrail struct {
	*fakeTrail
	released chan struct{}
	save     Change
}

func (n *nextHolderTrail) AllowlistChanges(ctx context.Context, from time.Time) ([]Change, error) {
	select {
	case <-n.released:
		n.fakeTrail.add(n.save)
	case <-time.After(3 * time.Second):
	}
	return n.fakeTrail.AllowlistChanges(ctx, from)
}

type signalRelease struct {
	*leasetest.Backend
	released chan struct{}
}

func (g *signalRelease) ReleaseLease(ctx context.Context, name, owner string) error {
	err := g.Backend.ReleaseLease(ctx, name, owner)
	close(g.released)
	return err
}

// A save the tool's next lease holder makes after this holder released the
// lease could be in the answer of this holder's trail read if that answer
// came after the release; by the key's user and in the same second, no fact
// tells it from a save inside this write. So the answer is awaited before
// the release: no warning, no overwritten alert (attack review).
func TestTrailReadInFlightAtReleaseDoesNotBlameTheNextHolder(t *testing.T) {
	e := newEnv()
	trail := e.withTrail()
	released := make(chan struct{})
	e.s.Trail = &nextHolderTrail{fakeTrail: trail, released: released,
		save: Change{When: e.now.UTC().Truncate(time.Second), User: "IP Guard key", UserID: "o", IP: "192.0.2.250"}}
	e.s.Leases = &signalRelease{Backend: &leasetest.Backend{}, released: released}
	res := e.do(t, `{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.10"]}`)
	if res.Portal != PortalApplied {
		t.Fatalf("result %+v; want the change applied", res)
	}
	for _, w := range res.Warnings {
		if strings.Contains(w, "someone else") {
			t.Errorf("warning %q: the next holder's save, after the release, blamed on someone else inside this write", w)
		}
	}
	for _, a := range e.alerts.sent {
		if strings.Contains(fmt.Sprintf("%+v", a), "verwrit") {
			t.Errorf("alert %+v: the next holder's save alerted as one this write overwrote", a)
		}
	}
}

// failingTrail is the audit trail whose reads fail while fail is set.
type failingTrail struct {
	*fakeTrail
	mu   sync.Mutex
	fail error
}

func (f *failingTrail) AllowlistChanges(ctx context.Context, from time.Time) ([]Change, error) {
	f.mu.Lock()
	err := f.fail
	f.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return f.fakeTrail.AllowlistChanges(ctx, from)
}

// An admin's save inside the tool's write is found only in the audit
// trail (#15 §3, §5). When the trail cannot be read after the tool's PUT,
// that check did not run: a lost coverage a person must know of (an
// alert, once per episode, naming the write's span so the trail can be
// checked by hand; and the result says so), not silence. A trail that
// answers again ends the episode; the next failure is alerted again.
// (Before: the check was skipped without a word, not even a log line.)
func TestUncheckedWriteIsAlertedWhenTheTrailCannotBeRead(t *testing.T) {
	e := newEnv()
	trail := &failingTrail{fakeTrail: e.withTrail()}
	e.s.Trail = trail
	unchecked := func() int { return notCheckedAlerts(e) }
	trail.fail = ipguard.Errorf(ipguard.EUnavailable, "get audit events: HTTP 503")
	// An admin's save between the tool's read and its write: overwritten.
	trail.add(Change{When: e.now, User: "Ada Admin", UserID: "adm", IP: "192.0.2.66"})
	res := e.do(t, `{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.10"]}`)
	if w := strings.Join(res.Warnings, " "); !strings.Contains(w, "audit trail") || !strings.Contains(w, "not checked") {
		t.Errorf("warnings %q; want the unchecked write said", w)
	}
	if n := unchecked(); n != 1 {
		t.Fatalf("%d alerts of an unchecked write, want 1 (kinds %v)", n, e.alerts.kinds())
	}
	if a := e.alerts.sent[len(e.alerts.sent)-1]; !strings.Contains(a.Email, t0.Format(time.RFC3339)) {
		t.Errorf("alert %q; want the write's span named", a.Email)
	}
	e.now = t0.Add(time.Minute)
	e.do(t, `{"id":"u2","email":"b@example.com","allowedIps":["203.0.113.20"]}`)
	if n := unchecked(); n != 1 {
		t.Errorf("%d alerts after a second unchecked write of the same episode, want still 1", n)
	}
	trail.mu.Lock()
	trail.fail = nil
	trail.mu.Unlock()
	e.now = t0.Add(2 * time.Minute)
	e.do(t, `{"id":"u3","email":"c@example.com","allowedIps":["203.0.113.30"]}`)
	trail.mu.Lock()
	trail.fail = ipguard.Errorf(ipguard.EUnavailable, "get audit events: HTTP 503")
	trail.mu.Unlock()
	e.now = t0.Add(3 * time.Minute)
	e.do(t, `{"id":"u4","email":"d@example.com","allowedIps":["203.0.113.40"]}`)
	if n := unchecked(); n != 2 {
		t.Errorf("%d alerts after the trail answered and failed again, want 2", n)
	}
}

// readBackGate is the portal whose read-back (the first read after a PUT)
// waits until the audit trail's read has started (at most a few seconds,
// so that code that sends it later is reported, not hung), says whether it
// saw that, and then runs land (a save by someone else landing just then).
type readBackGate struct {
	*fakePortal
	trailStarted chan struct{}
	land         func()
	mu           sync.Mutex
	afterPut     bool
	overlapped   bool
}

func (g *readBackGate) SaveIPRestrictions(ctx context.Context, l []ipguard.Restriction, enable bool) (time.Time, error) {
	at, err := g.fakePortal.SaveIPRestrictions(ctx, l, enable)
	g.mu.Lock()
	g.afterPut = err == nil
	g.mu.Unlock()
	return at, err
}

func (g *readBackGate) IPRestrictions(ctx context.Context) ([]ipguard.Restriction, error) {
	g.mu.Lock()
	readBack := g.afterPut
	g.afterPut = false
	g.mu.Unlock()
	if readBack {
		select {
		case <-g.trailStarted:
			g.mu.Lock()
			g.overlapped = true
			g.mu.Unlock()
		case <-time.After(3 * time.Second):
		}
		if g.land != nil {
			g.land()
			g.land = nil
		}
	}
	return g.fakePortal.IPRestrictions(ctx)
}

// snapshotTrail answers its first read with the trail as it stood when
// that read started, after waiting (at most a few seconds) for done: a read
// served before a save landed, answered after it.
type snapshotTrail struct {
	*fakeTrail
	once    sync.Once
	started chan struct{}
	done    chan struct{}
}

func (s *snapshotTrail) AllowlistChanges(ctx context.Context, from time.Time) ([]Change, error) {
	first := false
	s.once.Do(func() { first = true })
	if !first {
		return s.fakeTrail.AllowlistChanges(ctx, from)
	}
	changes, err := s.fakeTrail.AllowlistChanges(ctx, from)
	close(s.started)
	select {
	case <-s.done:
	case <-time.After(3 * time.Second):
	}
	return changes, err
}

// The audit trail's read goes out with the read-back of the PUT, not after
// it (#15 §6: the holder then waits for neither in turn before it writes the
// state and releases the lease). An order of events, not a timing: the
// read-back waits for the trail read to start, which the code before sent
// only after the read-back's answer.
func TestTrailReadGoesOutWithTheReadBack(t *testing.T) {
	e := newEnv()
	trail := e.withTrail()
	started := make(chan struct{})
	e.s.Trail = &gateTrail{fakeTrail: trail, started: started}
	gate := &readBackGate{fakePortal: e.p, trailStarted: started}
	e.s.Portal = gate
	res := e.do(t, `{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.10"]}`)
	if !gate.overlapped {
		t.Error("the read-back was answered before the audit trail's read started; want the trail read out with the read-back")
	}
	if res.Portal != PortalApplied || ips(e.p.list) != "192.0.2.1!,203.0.113.10" {
		t.Errorf("result %+v, portal %s; want the change applied", res, ips(e.p.list))
	}
	for _, w := range res.Warnings {
		if strings.Contains(w, "someone else") || strings.Contains(w, "hand edit") {
			t.Errorf("warning %q: the tool's own save taken for someone else's", w)
		}
	}
}

// A save by someone else that lands between the tool's PUT and its
// read-back shows in the read-back; the trail read sent with the read-back
// may have been served before it and miss it. That answer is dropped and
// the trail read again, so the result names the admin, never "no save by
// anyone but the key's user" (a possible hand edit of the key's own user).
func TestSaveSeenByTheReadBackIsNamedFromTheTrailReadAgain(t *testing.T) {
	e := newEnv()
	e.p.enabled = true // on already: the list read back needs no second PUT
	trail := e.withTrail()
	started, done := make(chan struct{}), make(chan struct{})
	e.s.Trail = &snapshotTrail{fakeTrail: trail, started: started, done: done}
	gate := &readBackGate{fakePortal: e.p, trailStarted: started}
	gate.land = func() {
		// The admin adds an entry by hand just after the tool's PUT.
		e.p.set(append(e.p.list, ipguard.Restriction{IP: "198.51.100.77"}), e.p.enabled)
		trail.add(Change{When: e.now.UTC().Truncate(time.Second), User: "admin", UserID: "a", IP: "198.51.100.7"})
		close(done)
	}
	e.s.Portal = gate
	res := e.do(t, `{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.10"]}`)
	if res.Portal != PortalApplied || e.p.puts != 1 || !strings.Contains(ips(e.p.list), "198.51.100.77") || !strings.Contains(ips(e.p.list), "203.0.113.10") {
		t.Fatalf("result %+v, portal %s after %d PUTs; want the change applied in one PUT and the admin's entry kept", res, ips(e.p.list), e.p.puts)
	}
	named := false
	for _, w := range res.Warnings {
		if strings.Contains(w, "admin") {
			named = true
		}
		if strings.Contains(w, "no save by anyone but the user the key acts as") {
			t.Errorf("warning %q: the admin's save, missing from a trail answer served before it, taken for the key user's", w)
		}
	}
	if !named {
		t.Errorf("warnings %q; want the admin's save named", res.Warnings)
	}
}

// The key is rotated to one created by another admin (its creator left the
// company: a terminated user's keys stop working, so "create it as the same
// user" cannot be followed). A warm container had asked keys/@self before
// the rotation; the tool's saves are now the new creator's. They are still
// the tool's own: nothing in the result names them as someone else's save,
// and no "overwritten" drift alert is sent about the tool's own write.
// (Before: the key's user was asked once per process and never again, so
// every save of the tool after the rotation was named as someone else's and
// alerted as a change the tool's write overwrote, once per reconcile.)
func TestToolsOwnSavesAfterAKeyRotationToAnotherUserAreItsOwn(t *testing.T) {
	e := newEnv()
	e.withTrail()
	e.do(t, `{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.10"]}`)
	// The rotation: the new key acts as admin "b".
	e.p.keyUser = "b"
	e.s.Directory = &fakeDirectory{creator: "b", people: map[string]Person{"b": {ID: "b", IsAdmin: true}}}
	for i, ip := range []string{"203.0.113.20", "203.0.113.30"} {
		e.now = t0.Add(time.Duration(i+1) * time.Minute)
		res := e.do(t, `{"id":"u`+ip[len(ip)-2:]+`","email":"b@example.com","allowedIps":["`+ip+`"]}`)
		if w := strings.Join(res.Warnings, " "); strings.Contains(w, "someone else") {
			t.Errorf("change %d: warnings %q; the tool's own save is no one else's", i+1, w)
		}
	}
	if n := countKind(e.alerts, "allowlist_drift"); n != 0 {
		t.Errorf("%d drift alert(s) about the tool's own saves after the key rotation", n)
	}
}

// datedLater is the portal whose PUT answers are dated one second after
// the save (the portal stamps the event while it works and dates the
// answer once done, here across a second's boundary).
type datedLater struct{ *fakePortal }

func (p datedLater) SaveIPRestrictions(ctx context.Context, l []ipguard.Restriction, enable bool) (time.Time, error) {
	at, err := p.fakePortal.SaveIPRestrictions(ctx, l, enable)
	if err == nil {
		at = at.Add(time.Second)
	}
	return at, err
}

// Attribution by facts needs who the key acts as (#15 §3). A fresh
// container whose keys/@self fails (a passing outage) still knows it: the
// state keeps the key's user as the last reconcile that knew it found it.
// So an admin's save in the second the tool's answer is dated is named,
// and the tool's own save (stamped in the second before) is not. (Before:
// with the key's user unknown, any save at an own instant was taken for
// the tool's, whoever made it: the admin's was hidden and the tool's own
// named as someone else's.)
func TestAdminSaveIsNamedWhenAFreshContainerCannotAskWhoTheKeyIs(t *testing.T) {
	e := newEnv()
	e.withTrail()
	trail := e.p.trail
	// A warm container knows the key's user (asked once) and reconciles.
	e.do(t, `{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.10"]}`)
	e.now = t0.Add(time.Minute)
	e.do(t, `{"id":"u2","email":"b@example.com","allowedIps":["203.0.113.20"]}`)
	// A fresh container, keys/@self failing.
	cold := &Service{Store: e.st, Portal: datedLater{e.p}, Leases: e.s.Leases, Alerts: e.alerts, LeaseWait: e.s.LeaseWait,
		WriteAttempt: e.s.WriteAttempt, Settings: e.s.Settings, Now: e.s.Now, Trail: e.s.Trail,
		Directory: &fakeDirectory{keyErr: func() error { return fmt.Errorf("keys/@self: HTTP 502") }}}
	e.now = t0.Add(2 * time.Minute)
	// The admin saves in the second after the tool's save, the one its
	// answer is dated: between the tool's read and its write.
	trail.add(Change{When: e.now.Add(time.Second), User: "Ada Admin", UserID: "adm", IP: "192.0.2.66"})
	res, err := cold.Handle(context.Background(), []byte(`{"id":"u3","email":"c@example.com","allowedIps":["203.0.113.30"]}`))
	if err != nil {
		t.Fatal(err)
	}
	w := strings.Join(res.Warnings, " ")
	if !strings.Contains(w, "Ada Admin") {
		t.Errorf("warnings %q; want the admin's save named", w)
	}
	if strings.Contains(w, "IP Guard key") {
		t.Errorf("warnings %q name the tool's own save", w)
	}
}

// A PUT of the tool that went unanswered and is found landed by a later
// reconcile overwrote, unseen, any save by someone else while it was out
// (checkLateLanded). When the audit trail cannot be read then, that check
// did not run: a lost coverage a person must know of, as for an answered
// write whose trail is unreadable (an alert naming the span, so the trail
// can be checked by hand). (Before: a log line, no alert: the admin's
// overwritten save was lost without a word.)
func TestLateLandingIsAlertedUncheckedWhenTheTrailCannotBeRead(t *testing.T) {
	e := newEnv()
	trail := &failingTrail{fakeTrail: e.withTrail()}
	e.s.Trail = trail
	e.p.set(restr("192.0.2.1!,198.51.100.7"), true)
	e.p.lostAnswer = 1 // the PUT lands, its answer is lost
	if res, err := e.handle(`{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.10"]}`); err != nil || res.Portal != PortalPending {
		t.Fatalf("portal %q, err %v; want pending (outcome unknown)", res.Portal, err)
	}
	// An admin's save while it was out: overwritten by its landing.
	trail.add(Change{When: t0, User: "Ada Admin", UserID: "adm", IP: "192.0.2.66"})
	trail.mu.Lock()
	trail.fail = ipguard.Errorf(ipguard.EUnavailable, "get audit events: HTTP 503")
	trail.mu.Unlock()
	e.now = t0.Add(time.Minute)
	e.do(t, `{"action":"sync"}`)
	unchecked := 0
	for _, a := range e.alerts.sent {
		if strings.Contains(a.Subject, "not checked") && strings.Contains(a.Email, t0.Format(time.RFC3339)) {
			unchecked++
		}
	}
	if unchecked != 1 {
		t.Fatalf("%d alerts of the late landing left unchecked, want 1 naming its span (sent %+v)", unchecked, e.alerts.kinds())
	}
	e.now = t0.Add(2 * time.Minute)
	e.do(t, `{"action":"sync"}`)
	if n := countKind(e.alerts, "allowlist_drift"); n != 1 {
		t.Errorf("%d drift alerts after another sync; want the one", n)
	}
}
