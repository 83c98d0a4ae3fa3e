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

// fakePortal is the portal's list with optional latency, failures and a hook
// that runs right after each PUT (a hand edit landing meanwhile).
type fakePortal struct {
	mu       sync.Mutex
	list     []ipguard.Restriction
	enabled  bool
	puts     int
	putErr   error
	latency  time.Duration
	afterPut func(f *fakePortal)
}

func (f *fakePortal) IPRestrictions(context.Context) ([]ipguard.Restriction, error) {
	time.Sleep(f.latency)
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.list), nil
}

func (f *fakePortal) IPRestrictionsEnabled(context.Context) (bool, error) {
	time.Sleep(f.latency)
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.enabled, nil
}

func (f *fakePortal) PutIPRestrictions(_ context.Context, l []ipguard.Restriction, enable bool) error {
	time.Sleep(f.latency)
	f.mu.Lock()
	if f.putErr != nil {
		f.mu.Unlock()
		return f.putErr
	}
	f.puts++
	f.list, f.enabled = slices.Clone(l), enable
	hook := f.afterPut
	f.afterPut = nil
	f.mu.Unlock()
	if hook != nil {
		hook(f)
	}
	return nil
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
}

func (d *fakeDirectory) KeyCreator(context.Context) (string, error) { return d.creator, nil }
func (d *fakeDirectory) Person(_ context.Context, id string) (Person, bool, error) {
	if err := d.errs[id]; err != nil {
		return Person{}, false, err
	}
	p, ok := d.people[id]
	return p, ok, nil
}

type fakeAlerts struct {
	mu   sync.Mutex
	sent []ipguard.Alert
}

func (a *fakeAlerts) Publish(_ context.Context, al ipguard.Alert) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.sent = append(a.sent, al)
	return "m", nil
}

type fakeTrail struct{ changes []Change }

func (t *fakeTrail) AllowlistChanges(context.Context, time.Time) ([]Change, error) {
	return t.changes, nil
}

type fakeLogins struct{ events []ipguard.LoginEvent }

func (l *fakeLogins) LoginEvents(_ context.Context, _ time.Time, start, count int) ([]ipguard.LoginEvent, error) {
	if start >= len(l.events) {
		return nil, nil
	}
	return l.events[start:min(start+count, len(l.events))], nil
}
