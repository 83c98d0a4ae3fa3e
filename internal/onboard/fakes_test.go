package onboard

import (
	"context"
	"slices"
	"sync"
	"time"

	"ipguard/internal/ipguard"
	"ipguard/internal/onboard/onboardtest"
)

// fakeStore is the shared in-memory onboarding store (onboardtest.Store,
// held to the DynamoDB store's contract), with the short names these tests
// use for what they read and set.
type fakeStore struct {
	*onboardtest.Store
	users map[string]ipguard.User // the Store's UserItems
	state *ipguard.PortalState    // the Store's State
}

func newFakeStore() *fakeStore {
	s := onboardtest.NewStore()
	return &fakeStore{Store: s, users: s.UserItems, state: &s.State}
}

// ChangeRead implements ChangeReader (one read, as the DynamoDB store's):
// GetUser's, PortalState's and Offboarded's answers at once.
func (s *fakeStore) ChangeRead(ctx context.Context, id string, now time.Time) (ChangeStart, error) {
	var cs ChangeStart
	cs.User, cs.Found, _ = s.GetUser(ctx, id)
	cs.State, _ = s.PortalState(ctx)
	cs.Offboarded, cs.WasOffboarded, _ = s.Offboarded(ctx, id, now)
	return cs, nil
}

// fakePortal is the portal's list with optional latency, failures and a hook
// that runs right after each PUT (a hand edit landing meanwhile).
//
// Faults: putErr fails every PUT unapplied-unknown (as a timeout: it does
// not land); refuse answers the next PUTs 4xx (not applied); late makes the
// next PUT time out unapplied and land when landLate is called; readErrs
// fails the next GETs of the list; lostAnswer applies the next PUT but
// answers with a timeout.
type fakePortal struct {
	mu         sync.Mutex
	list       []ipguard.Restriction
	enabled    bool
	puts       int
	putErr     error
	latency    time.Duration
	afterPut   func(f *fakePortal)
	refuse     int
	late       int
	lateList   []lateWrite
	readErrs   int
	lostAnswer int
	clock      func() time.Time
	trail      *fakeTrail // when set, every applied PUT is a trail event by keyUser
	keyUser    string
	// applied holds every address a PUT of the tool ever brought onto the
	// portal; history the lists of the tool's PUTs that landed.
	applied map[string]bool
	history []lateWrite
}

type lateWrite struct {
	list   []ipguard.Restriction
	enable bool
}

var errTimeout = ipguard.Errorf(ipguard.EUnavailable, "no answer within 10s")

type notApplied struct{ error }

func (notApplied) Is(t error) bool { return t == ipguard.ErrNotApplied }

func (f *fakePortal) IPRestrictions(context.Context) ([]ipguard.Restriction, error) {
	time.Sleep(f.latency)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.readErrs > 0 {
		f.readErrs--
		return nil, errTimeout
	}
	return slices.Clone(f.list), nil
}

func (f *fakePortal) IPRestrictionsEnabled(context.Context) (bool, error) {
	time.Sleep(f.latency)
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.enabled, nil
}

func (f *fakePortal) now() time.Time {
	if f.clock != nil {
		return f.clock()
	}
	return time.Now()
}

func (f *fakePortal) applyLocked(l []ipguard.Restriction, enable bool) time.Time {
	f.puts++
	f.list, f.enabled = slices.Clone(l), enable
	if f.applied == nil {
		f.applied = map[string]bool{}
	}
	for _, r := range l {
		f.applied[r.IP] = true
	}
	f.history = append(f.history, lateWrite{slices.Clone(l), enable})
	at := f.now().UTC().Truncate(time.Second)
	if f.trail != nil {
		f.trail.add(Change{When: at, User: "IP Guard key", UserID: f.keyUser, IP: "192.0.2.250"})
	}
	return at
}

func (f *fakePortal) SaveIPRestrictions(_ context.Context, l []ipguard.Restriction, enable bool) (time.Time, error) {
	time.Sleep(f.latency)
	f.mu.Lock()
	switch {
	case f.putErr != nil:
		f.mu.Unlock()
		return time.Time{}, f.putErr
	case f.refuse > 0:
		f.refuse--
		f.mu.Unlock()
		return time.Time{}, notApplied{ipguard.Errorf(ipguard.EInvalid, "HTTP 400: refused")}
	case f.late > 0:
		f.late--
		f.lateList = append(f.lateList, lateWrite{slices.Clone(l), enable})
		f.mu.Unlock()
		return time.Time{}, errTimeout
	}
	at := f.applyLocked(l, enable)
	lost := f.lostAnswer > 0
	if lost {
		f.lostAnswer--
	}
	hook := f.afterPut
	f.afterPut = nil
	f.mu.Unlock()
	if hook != nil {
		hook(f)
	}
	if lost {
		return time.Time{}, errTimeout
	}
	return at, nil
}

// landLate applies the PUTs held back by late, oldest first.
func (f *fakePortal) landLate() { f.landAll(&f.lateList) }

// landAll applies the writes of ws, oldest first, and empties it.
func (f *fakePortal) landAll(ws *[]lateWrite) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, w := range *ws {
		f.applyLocked(w.list, w.enable)
	}
	*ws = nil
}

// savedAfterPut is a hook for afterPut: someone adds ip by hand right
// after the tool's PUT, and the trail shows their save c.
func savedAfterPut(trail *fakeTrail, ip string, c Change) func(*fakePortal) {
	return func(f *fakePortal) {
		f.mu.Lock()
		f.list = append(f.list, ipguard.Restriction{IP: ip})
		f.mu.Unlock()
		trail.add(c)
	}
}

func (f *fakePortal) set(l []ipguard.Restriction, enabled bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.list, f.enabled = slices.Clone(l), enabled
}

type fakeDirectory struct {
	creator string
	people  map[string]Person
	errs    map[string]error // Person(id) fails with errs[id]
	keyErr  func() error     // KeyCreator fails with its answer when not nil
}

func (d *fakeDirectory) KeyCreator(context.Context) (string, error) {
	if d.keyErr != nil {
		if err := d.keyErr(); err != nil {
			return "", err
		}
	}
	return d.creator, nil
}
func (d *fakeDirectory) Person(_ context.Context, id string) (Person, bool, error) {
	if err := d.errs[id]; err != nil {
		return Person{}, false, err
	}
	p, ok := d.people[id]
	return p, ok, nil
}

type fakeAlerts struct {
	mu       sync.Mutex
	sent     []ipguard.Alert
	throttle int // the next publishes fail (SNS throttling)
}

func (a *fakeAlerts) Publish(_ context.Context, al ipguard.Alert) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.throttle > 0 {
		a.throttle--
		return "", ipguard.Errorf(ipguard.EUnavailable, "sns: Throttling: Rate exceeded")
	}
	a.sent = append(a.sent, al)
	return "m", nil
}

func (a *fakeAlerts) kinds() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for _, al := range a.sent {
		out = append(out, al.Kinds...)
	}
	return out
}

// fakeTrail is the audit trail: changes, oldest first; AllowlistChanges
// returns those from from's second on (as the portal filters). With lag
// (and clock), a change shows only lag after it was made, as the real
// portal writes its trail late (TrailLag).
type fakeTrail struct {
	mu      sync.Mutex
	changes []Change
	lag     time.Duration
	clock   func() time.Time
}

func (t *fakeTrail) add(c Change) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.changes = append(t.changes, c)
}

func (t *fakeTrail) AllowlistChanges(_ context.Context, from time.Time) ([]Change, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []Change
	for _, c := range t.changes {
		if t.lag > 0 && t.clock().Before(c.When.Add(t.lag)) {
			continue // not written to the trail yet
		}
		if !c.When.Before(from.Truncate(time.Second)) {
			out = append(out, c)
		}
	}
	return out, nil
}

type fakeLogins struct{ events []ipguard.LoginEvent }

func (l *fakeLogins) LoginEvents(_ context.Context, _ time.Time, start, count int) ([]ipguard.LoginEvent, error) {
	if start >= len(l.events) {
		return nil, nil
	}
	return l.events[start:min(start+count, len(l.events))], nil
}

// scanGate holds the next scan of every user (a reconcile's) after it
// read, until release is closed; the ChangeRead of user gateID after
// armed releases it (the retry has read the state).
type scanGate struct {
	*fakeStore
	mu      sync.Mutex
	hold    bool
	scanned chan struct{}
	release chan struct{}
	armed   bool
	gateID  string
}

func (g *scanGate) AllUsers(ctx context.Context) ([]ipguard.User, error) {
	users, err := g.fakeStore.AllUsers(ctx)
	g.mu.Lock()
	hold := g.hold
	g.hold = false
	g.mu.Unlock()
	if hold {
		close(g.scanned)
		<-g.release
	}
	return users, err
}

func (g *scanGate) ChangeRead(ctx context.Context, id string, now time.Time) (ChangeStart, error) {
	cs, err := g.fakeStore.ChangeRead(ctx, id, now)
	g.mu.Lock()
	release := g.armed && id == g.gateID
	g.armed = g.armed && !release
	g.mu.Unlock()
	if release {
		close(g.release)
	}
	return cs, err
}
