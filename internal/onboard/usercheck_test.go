package onboard

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"ipguard/internal/allowlist"
	"ipguard/internal/ipguard"
	"ipguard/internal/lease/leasetest"
)

// memCursor is the CheckCursorStore in memory.
type memCursor struct {
	mu     sync.Mutex
	c      CheckCursor
	reads  int
	writes int
	fail   error
}

func (m *memCursor) UserCheckCursor(context.Context) (CheckCursor, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.reads++
	return m.c, m.fail
}

func (m *memCursor) SaveUserCheckCursor(_ context.Context, c CheckCursor) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.writes++
	if m.fail != nil {
		return m.fail
	}
	m.c = c
	return nil
}

// countingDirectory answers every user as active and counts the asks.
type countingDirectory struct {
	mu    sync.Mutex
	asked map[string]int
}

func (d *countingDirectory) KeyCreator(context.Context) (string, error) { return "owner", nil }
func (d *countingDirectory) Person(_ context.Context, id string) (Person, bool, error) {
	if id == "owner" { // the lock-out preflight's question
		return Person{ID: id, IsOwner: true, Status: 1}, true, nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.asked[id]++
	return Person{ID: id, Status: 1}, true, nil
}

// 500 stored users, the default schedule (a sync every 15 minutes) and a
// cold start before every sync (a new container each time, as Lambda may
// do): the rotation keeps its place in the store, so in one day every
// user is checked at least once (twice, by the default of 12 hours), and
// no sync asks the portal about more than ceil(500·15m/12h) = 11 users.
// The old rotation, kept in the process, began at the first user on every
// cold start: the later users were never checked.
func TestEveryStoredUserIsCheckedDailyAcrossColdStarts(t *testing.T) {
	const users = 500
	st := newFakeStore()
	for i := range users {
		id := fmt.Sprintf("user-%04d", i)
		st.users[id] = ipguard.User{ID: id, Email: id + "@example.com", Rev: 1}
	}
	cursor := &memCursor{}
	dir := &countingDirectory{asked: map[string]int{}}
	now := t0
	perSync := []int{}
	portal := &fakePortal{list: restr("192.0.2.1!"), enabled: true}
	for sync := 0; sync < 24*4; sync++ {
		before := total(dir)
		s := &Service{Store: st, Portal: portal, Leases: &leasetest.Backend{}, Alerts: &fakeAlerts{}, LeaseWait: 5 * time.Second,
			Settings: Settings{MaxRangeAddresses: 256, Enforce: true, Limits: allowlist.DefaultLimits}, Directory: dir,
			UserChecks: &UserChecks{Store: cursor}, Now: func() time.Time { return now }}
		res, err := s.Sync(context.Background())
		if err != nil {
			t.Fatalf("sync %d: %v", sync, err)
		}
		for _, w := range res.Warnings {
			t.Errorf("sync %d warns: %s", sync, w)
		}
		perSync = append(perSync, total(dir)-before)
		now = now.Add(15 * time.Minute)
	}
	least := users * 10
	for i := range users {
		least = min(least, dir.asked[fmt.Sprintf("user-%04d", i)])
	}
	if least < 2 {
		t.Errorf("a user was checked %d times in a day, want at least twice (12 h)", least)
	}
	if most := slices.Max(perSync); most > 11 {
		t.Errorf("a sync checked %d users, want at most 11 (bounded cost)", most)
	}
	if cursor.writes != 24*4 {
		t.Errorf("%d cursor writes in %d syncs, want one each", cursor.writes, 24*4)
	}
}

func total(d *countingDirectory) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, c := range d.asked {
		n += c
	}
	return n
}

func TestUserChecksPlan(t *testing.T) {
	ids := make([]string, 500)
	for i := range ids {
		ids[i] = fmt.Sprintf("u%03d", i)
	}
	tests := []struct {
		name      string
		cursor    CheckCursor
		first     []string
		wantFirst []string // the plan starts with these
		batch     int
		startAt   string // the batch's first id
	}{
		{"first sync", CheckCursor{}, nil, nil, 11, "u000"},
		{"goes on after the cursor", CheckCursor{After: "u250", At: t0.Add(-15 * time.Minute)}, nil, nil, 11, "u251"},
		{"wraps round", CheckCursor{After: "u495", At: t0.Add(-15 * time.Minute)}, nil, []string{"u496", "u497", "u498", "u499", "u000"}, 11, "u496"},
		{"a cursor on a deleted user", CheckCursor{After: "u100x", At: t0.Add(-15 * time.Minute)}, nil, nil, 11, "u101"},
		{"suspects first, not stored ones dropped", CheckCursor{After: "u010", At: t0.Add(-15 * time.Minute)}, []string{"u300", "gone", "u300", "u011"},
			[]string{"u300", "u011", "u012"}, 10, "u012"},
		{"a sparse schedule checks more per sync", CheckCursor{After: "u010", At: t0.Add(-3 * time.Hour)}, nil, nil, 125, "u011"},
		{"never more than Max", CheckCursor{After: "u010", At: t0.Add(-11 * time.Hour)}, nil, nil, DefaultChecksMax, "u011"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := &UserChecks{Store: &memCursor{c: tt.cursor}}
			p, err := u.Plan(context.Background(), ids, tt.first, t0)
			if err != nil {
				t.Fatal(err)
			}
			if p.Batch != tt.batch || len(p.IDs) < tt.batch || p.IDs[len(p.IDs)-p.Batch] != tt.startAt || !slices.Equal(p.IDs[:len(tt.wantFirst)], tt.wantFirst) {
				t.Errorf("plan %v (batch %d), want batch %d from %s, starting %v", p.IDs, p.Batch, tt.batch, tt.startAt, tt.wantFirst)
			}
		})
	}
}

// The cursor moves only past batch users actually checked (a sync cut by
// its deadline goes on from there); suspects checked first do not move it.
func TestUserChecksDoneMovesPastWhatWasChecked(t *testing.T) {
	ids := []string{"a", "b", "c", "d", "e", "f"}
	store := &memCursor{c: CheckCursor{After: "b", At: t0.Add(-time.Hour)}}
	u := &UserChecks{Store: store, Min: 3}
	p, _ := u.Plan(context.Background(), ids, []string{"f"}, t0)
	if !slices.Equal(p.IDs, []string{"f", "c", "d", "e"}) {
		t.Fatalf("plan %v", p.IDs)
	}
	if err := u.Done(context.Background(), p, []string{"f"}, t0); err != nil || store.c.After != "b" {
		t.Errorf("only a suspect checked: cursor %+v, %v; want it unmoved", store.c, err)
	}
	if err := u.Done(context.Background(), p, []string{"f", "c", "d"}, t0); err != nil || store.c.After != "d" || !store.c.At.Equal(t0) {
		t.Errorf("cut after d: cursor %+v, %v", store.c, err)
	}
	// A store that fails: the plan starts over, and the error is said.
	store.fail = errors.New("throttled")
	if _, err := u.Plan(context.Background(), ids, nil, t0); err == nil {
		t.Error("a cursor that cannot be read is not reported")
	}
}
