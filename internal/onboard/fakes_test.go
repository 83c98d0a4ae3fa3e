package onboard

import (
	"context"
	"slices"
	"sync"
	"time"

	"ipguard/internal/ipguard"
)

// fakeStore keeps the Store promises in memory.
type fakeStore struct {
	mu     sync.Mutex
	users  map[string]ipguard.User
	state  ipguard.PortalState
	writes int
	fail   error
	// loseAnswers: the next PutUserIf calls are applied, but report that
	// the condition failed (DynamoDB applied the write, the answer was
	// lost, and the SDK's resend found the record already changed).
	loseAnswers int
}

func newFakeStore() *fakeStore { return &fakeStore{users: map[string]ipguard.User{}} }

func (f *fakeStore) GetUser(_ context.Context, id string) (ipguard.User, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	u, ok := f.users[id]
	return u, ok, f.fail
}

func (f *fakeStore) PutUserIf(_ context.Context, u ipguard.User, prev int64) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return false, f.fail
	}
	if f.users[u.ID].Rev != prev {
		return false, nil
	}
	f.writes++
	f.users[u.ID] = u
	if f.loseAnswers > 0 {
		f.loseAnswers--
		return false, nil
	}
	return true, nil
}

func (f *fakeStore) DeleteUser(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.writes++
	delete(f.users, id)
	return nil
}

func (f *fakeStore) AllUsers(context.Context) ([]ipguard.User, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []ipguard.User
	for _, u := range f.users {
		out = append(out, u)
	}
	return out, f.fail
}

func (f *fakeStore) BumpVersion(context.Context) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.state.Version++
	return f.state.Version, nil
}

func (f *fakeStore) PortalState(context.Context) (ipguard.PortalState, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := f.state
	st.Owned, st.LastSeen = slices.Clone(st.Owned), slices.Clone(st.LastSeen)
	return st, nil
}

func (f *fakeStore) PutPortalState(_ context.Context, st ipguard.PortalState) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	st.Version = f.state.Version
	st.Applied = max(st.Applied, f.state.Applied)
	f.state = st
	return nil
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
