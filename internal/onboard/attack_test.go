package onboard

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"ipguard/internal/ipguard"
)

// raceStore runs afterRead once, right after the next GetUser (or
// ChangeRead) of the user it names has answered: another request's write lands between this
// request's read and its write.
type raceStore struct {
	*fakeStore
	id        string
	afterRead func()
}

func (r *raceStore) GetUser(ctx context.Context, id string) (ipguard.User, bool, error) {
	u, ok, err := r.fakeStore.GetUser(ctx, id)
	if f := r.afterRead; f != nil && id == r.id {
		r.afterRead = nil
		f()
	}
	return u, ok, err
}

// ChangeRead is the one read a change starts with: the hook runs after it
// too, as after GetUser.
func (r *raceStore) ChangeRead(ctx context.Context, id string, now time.Time) (ChangeStart, error) {
	cs, err := r.fakeStore.ChangeRead(ctx, id, now)
	if f := r.afterRead; f != nil && id == r.id {
		r.afterRead = nil
		f()
	}
	return cs, err
}

// An offboarding never deletes a record that a newer request wrote after
// the offboarding read it: the delete is conditional like every other
// write, so the newer request's entries stay (keepNewer) and reach the
// portal. (Before: DeleteUser was unconditional, and a newer add that
// landed between the offboarding's read and its delete was erased from
// the store and then from the portal, though its caller was told it was
// applied.)
func TestOffboardingNeverDeletesANewerWriteThatLandedAfterItsRead(t *testing.T) {
	for _, tc := range []struct {
		name  string
		newer string // the request that lands between the read and the delete
		want  string // the portal afterwards
	}{
		{"a newer add", `{"action":"add","id":"u1","requestedAt":"` + t0.Add(-time.Minute).Format(time.RFC3339) + `","allowedIps":["203.0.113.20"]}`, "192.0.2.1!,203.0.113.20"},
		{"a newer onboarding (replace)", `{"id":"u1","email":"a@example.com","requestedAt":"` + t0.Add(-time.Minute).Format(time.RFC3339) + `","allowedIps":["203.0.113.21"]}`, "192.0.2.1!,203.0.113.21"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv()
			e.do(t, `{"id":"u1","email":"a@example.com","requestedAt":"`+t0.Add(-time.Hour).Format(time.RFC3339)+`","allowedIps":["203.0.113.10"]}`)
			rs := &raceStore{fakeStore: e.st, id: "u1"}
			e.s.Store = rs
			rs.afterRead = func() {
				if res, err := e.s.Handle(context.Background(), []byte(tc.newer)); err != nil || !res.Stored {
					t.Errorf("the newer request: %v stored=%v", err, res.Stored)
				}
			}
			res, err := e.handle(`{"action":"offboard","id":"u1","requestedAt":"` + t0.Add(-30*time.Minute).Format(time.RFC3339) + `"}`)
			if err != nil {
				t.Fatalf("offboard: %v", err)
			}
			u, found, _ := e.st.GetUser(context.Background(), "u1")
			if !found || strings.Join(u.Entries, ",") != strings.TrimPrefix(tc.want, "192.0.2.1!,") {
				t.Errorf("stored %v (found %v); the newer request's entry was erased (result %+v)", u.Entries, found, res)
			}
			if got := ips(e.p.list); got != tc.want {
				t.Errorf("portal = %s, want %s", got, tc.want)
			}
		})
	}
}

// A stale offboarding never deletes a record that holds changes newer than
// it, even when no entry is left (a newer remove took the last one): the
// record's tombstones are what keep an older replay from giving back what
// that newer remove took. (Before: the stale offboarding found no entry to
// keep, deleted the record with its tombstones, and a replay of the
// onboarding that came between the two was applied again: the removed
// address was back on the portal.)
func TestStaleOffboardingKeepsARecordWithNewerChanges(t *testing.T) {
	at := func(d time.Duration) string { return t0.Add(d).Format(time.RFC3339) }
	e := newEnv()
	e.do(t, `{"id":"u1","email":"a@example.com","requestedAt":"`+at(-4*time.Hour)+`","allowedIps":["203.0.113.10"]}`)
	reonboard := `{"id":"u1","email":"a@example.com","requestedAt":"` + at(-2*time.Hour) + `","allowedIps":["203.0.113.11"]}`
	e.do(t, reonboard)
	if _, err := e.handle(`{"action":"remove","id":"u1","requestedAt":"` + at(-time.Hour) + `","allowedIps":["203.0.113.11"]}`); err != nil {
		t.Fatalf("remove the last entry: %v", err)
	}
	// The offboarding of -3h arrives late (a replay from the failure queue).
	if _, err := e.handle(`{"action":"offboard","id":"u1","requestedAt":"` + at(-3*time.Hour) + `"}`); err != nil {
		t.Fatalf("stale offboarding: %v", err)
	}
	if _, err := e.handle(reonboard); err != nil { // its replay
		t.Fatalf("replay: %v", err)
	}
	if got := ips(e.p.list); strings.Contains(got, "203.0.113.11") {
		t.Errorf("portal = %s; the replay gave back the address removed by a newer request", got)
	}
}

// The users-left offboarding deletes a user only at the rev it read: a
// request that wrote the user between that read and the delete is not
// erased; the sync warns and the next one checks again.
func TestUsersLeftNeverErasesAWriteThatLandedDuringTheSync(t *testing.T) {
	e := usersLeftEnv(t, 1)
	e.do(t, `{"action":"sync"}`) // u00 seen gone once
	rs := &raceStore{fakeStore: e.st, id: "u00"}
	e.s.Store = rs
	rs.afterRead = func() {
		if _, err := e.s.Handle(context.Background(), []byte(`{"action":"add","id":"u00","allowedIps":["203.0.113.99"]}`)); err != nil {
			t.Errorf("the add during the sync: %v", err)
		}
	}
	res := e.do(t, `{"action":"sync"}`)
	if u, found, _ := e.st.GetUser(context.Background(), "u00"); !found || !slices.Contains(u.Entries, "203.0.113.99") {
		t.Errorf("user u00 %v (found %v): the add that landed during the sync was erased", u.Entries, found)
	}
	if !strings.Contains(strings.Join(res.Warnings, " "), "changed by a request during this sync") {
		t.Errorf("warnings %v; want the skipped offboarding named", res.Warnings)
	}
}

// A change read a user whose record an older version wrote (no rev), and an
// offboarding newer than the change deleted it before the change wrote: the
// write over "rev 0" (none, or a record before revs) found no record and
// wrote the user back, its old entries with the change's: the offboarded
// user allowed again. A write over a record read lands only while it is
// stored; the change reads again and is then the stale change it is.
func TestChangeNeverBringsBackAUserOffboardedAfterItsRead(t *testing.T) {
	at := func(d time.Duration) string { return t0.Add(d).Format(time.RFC3339) }
	e := newEnv()
	e.st.users["u1"] = ipguard.User{ID: "u1", Email: "a@example.com", Entries: []string{"203.0.113.10"}, CreatedAt: t0, UpdatedAt: t0}
	e.do(t, `{"action":"sync"}`)
	rs := &raceStore{fakeStore: e.st, id: "u1"}
	e.s.Store = rs
	rs.afterRead = func() {
		if _, err := e.s.Handle(context.Background(), []byte(`{"action":"offboard","id":"u1","requestedAt":"`+at(-time.Minute)+`"}`)); err != nil {
			t.Errorf("the offboarding: %v", err)
		}
	}
	_, err := e.handle(`{"action":"add","id":"u1","requestedAt":"` + at(-30*time.Minute) + `","allowedIps":["198.51.100.5"]}`)
	if u, found, _ := e.st.GetUser(context.Background(), "u1"); found {
		t.Errorf("the offboarded user is stored again: %+v (the change: %v)", u, err)
	}
	if got := ips(e.p.list); got != "192.0.2.1!" {
		t.Errorf("portal = %s; want the offboarded user's addresses gone", got)
	}
}
