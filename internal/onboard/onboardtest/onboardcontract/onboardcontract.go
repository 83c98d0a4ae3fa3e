// Package onboardcontract holds StoreContract, the promises of onboard.Store
// as a table that every implementation must pass: the in-memory
// onboardtest.Store (its own test) and the DynamoDB store (internal/dynamo,
// under moto).
package onboardcontract

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"ipguard/internal/ipguard"
	"ipguard/internal/onboard"
)

// StoreContract checks the promises of onboard.Store on stores made by
// newStore (each call a fresh, empty one).
func StoreContract(t *testing.T, newStore func(t *testing.T) onboard.Store) {
	ctx := context.Background()
	t0 := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	user := func(rev int64, entries ...string) ipguard.User {
		return ipguard.User{ID: "u1", Email: "a@example.com", Entries: entries, Rev: rev, CreatedAt: t0, UpdatedAt: t0.Add(time.Duration(rev) * time.Second)}
	}

	t.Run("an offboarding is remembered until it expires; an older one never replaces it", func(t *testing.T) {
		s := newStore(t)
		tomb, ok := s.(onboard.Tombstones)
		if !ok {
			t.Fatalf("%T does not remember offboardings (onboard.Tombstones)", s)
		}
		now := time.Now().UTC().Truncate(time.Millisecond)
		if _, ok, err := tomb.Offboarded(ctx, "u1", now); ok || err != nil {
			t.Fatalf("before any offboarding: %v, %v", ok, err)
		}
		at := now.Add(-time.Hour)
		for _, put := range []time.Time{at, at.Add(-time.Minute)} {
			if err := tomb.PutOffboarded(ctx, "u1", put, now.Add(onboard.OffboardedKeep)); err != nil {
				t.Fatal(err)
			}
		}
		if got, ok, err := tomb.Offboarded(ctx, "u1", now); !ok || err != nil || !got.Equal(at) {
			t.Errorf("Offboarded = %v, %v, %v; want %v", got, ok, err, at)
		}
		if _, ok, _ := tomb.Offboarded(ctx, "u1", now.Add(onboard.OffboardedKeep+time.Minute)); ok {
			t.Error("remembered after its expiry")
		}
	})

	// One precision end to end (onboard.RequestTime): a store keeps the
	// request times it is given to the millisecond, no finer and no
	// coarser, so the fake and DynamoDB order the same requests alike.
	t.Run("request times are kept to the millisecond", func(t *testing.T) {
		s := newStore(t)
		at := time.Date(2026, 11, 25, 9, 0, 0, 900_400_000, time.UTC)
		want := time.Date(2026, 11, 25, 9, 0, 0, 900_000_000, time.UTC)
		u := user(1, "203.0.113.7")
		u.Touched = map[string]time.Time{"203.0.113.7": at, "203.0.113.8": at.Add(-time.Second)}
		if ok, err := s.PutUserIf(ctx, u, 0); !ok || err != nil {
			t.Fatalf("PutUserIf = %v, %v", ok, err)
		}
		got, _, err := s.GetUser(ctx, "u1")
		if err != nil || !got.Touched["203.0.113.7"].Equal(want) || !got.Touched["203.0.113.8"].Equal(want.Add(-time.Second)) {
			t.Errorf("Touched = %v, %v; want %v (the millisecond)", got.Touched, err, want)
		}
		tomb, ok := s.(onboard.Tombstones)
		if !ok {
			t.Fatalf("%T does not remember offboardings", s)
		}
		now := time.Now()
		if err := tomb.PutOffboarded(ctx, "u2", at, now.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if off, ok, err := tomb.Offboarded(ctx, "u2", now); !ok || err != nil || !off.Equal(want) {
			t.Errorf("Offboarded = %v, %v, %v; want %v (the millisecond)", off, ok, err, want)
		}
	})

	// Lambda's retry of an asynchronous invocation keeps its request id:
	// its first arrival is what dates a direct payload without requestedAt.
	t.Run("an invocation's first arrival is kept by its request id", func(t *testing.T) {
		s := newStore(t)
		arr, ok := s.(onboard.Arrivals)
		if !ok {
			t.Fatalf("%T does not remember first arrivals (onboard.Arrivals)", s)
		}
		t1 := time.Now().UTC().Add(-2 * time.Minute)
		steps := []struct {
			id   string
			now  time.Time
			want time.Time
		}{
			{"r1", t1, t1},                                   // first arrival
			{"r1", t1.Add(time.Minute), t1},                  // Lambda's retry: the first one stands
			{"r2", t1.Add(time.Minute), t1.Add(time.Minute)}, // another invocation
			{"r1", t1.Add(2 * time.Minute), t1},              // and again
		}
		for i, st := range steps {
			got, err := arr.FirstArrival(ctx, st.id, st.now, onboard.ArrivalKeep)
			if err != nil || !got.Equal(st.want.Truncate(time.Millisecond)) {
				t.Fatalf("step %d: FirstArrival(%s) = %v, %v; want %v (to the millisecond)", i, st.id, got, err, st.want)
			}
		}
	})

	t.Run("a user is written only over the rev it was read at", func(t *testing.T) {
		s := newStore(t)
		if _, ok, err := s.GetUser(ctx, "u1"); ok || err != nil {
			t.Fatalf("GetUser before any write: %v, %v; want false, nil", ok, err)
		}
		steps := []struct {
			name string
			u    ipguard.User
			prev int64
			want bool
		}{
			{"create over no record", user(1, "203.0.113.7"), 0, true},
			{"a second create finds the record", user(1, "203.0.113.8"), 0, false},
			{"an update over the stored rev", user(2, "203.0.113.9"), 1, true},
			{"an update over an older rev", user(3, "198.51.100.1"), 1, false},
		}
		for _, st := range steps {
			ok, err := s.PutUserIf(ctx, st.u, st.prev)
			if err != nil || ok != st.want {
				t.Fatalf("%s: %v, %v; want %v, nil", st.name, ok, err, st.want)
			}
		}
		got, ok, err := s.GetUser(ctx, "u1")
		if err != nil || !ok || got.Rev != 2 || !slices.Equal(got.Entries, []string{"203.0.113.9"}) || got.Email != "a@example.com" ||
			!got.CreatedAt.Equal(t0) || !got.UpdatedAt.Equal(t0.Add(2*time.Second)) {
			t.Errorf("GetUser = %+v, %v, %v; want the rev 2 write", got, ok, err)
		}
	})

	t.Run("an entry's details are kept: expiry, note and declared place (#21 §4)", func(t *testing.T) {
		s := newStore(t)
		u := user(1, "203.0.113.0/24", "198.51.100.7", "192.0.2.9")
		u.Details = map[string]ipguard.EntryDetail{
			"203.0.113.0/24": {Note: "office", Place: "Berlin, DE"},
			"198.51.100.7":   {ExpiresAt: t0.Add(48 * time.Hour), Note: "trip", Place: "52.52,13.405"},
			"192.0.2.9":      {Place: "anywhere"},
		}
		if ok, err := s.PutUserIf(ctx, u, 0); !ok || err != nil {
			t.Fatalf("put: %v, %v", ok, err)
		}
		got, ok, err := s.GetUser(ctx, "u1")
		if err != nil || !ok {
			t.Fatalf("GetUser: %v, %v", ok, err)
		}
		for e, d := range u.Details {
			if g := got.Details[e]; g.Note != d.Note || g.Place != d.Place || !g.ExpiresAt.Equal(d.ExpiresAt) {
				t.Errorf("entry %s: details %+v, want %+v", e, g, d)
			}
		}
	})

	t.Run("delete, and every completed write is seen by AllUsers", func(t *testing.T) {
		s := newStore(t)
		for _, id := range []string{"a", "b", "c"} {
			if ok, err := s.PutUserIf(ctx, ipguard.User{ID: id, Email: id + "@example.com", Entries: []string{}, Rev: 1, CreatedAt: t0, UpdatedAt: t0}, 0); !ok || err != nil {
				t.Fatalf("put %s: %v, %v", id, ok, err)
			}
		}
		if err := s.DeleteUser(ctx, "b"); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteUser(ctx, "nobody"); err != nil {
			t.Errorf("deleting a user not stored: %v; want nil", err)
		}
		if _, ok, err := s.GetUser(ctx, "b"); ok || err != nil {
			t.Errorf("GetUser after delete: %v, %v; want false, nil", ok, err)
		}
		all, err := s.AllUsers(ctx)
		stored := map[string]bool{}
		for _, u := range all {
			stored[u.ID] = true
		}
		if err != nil || len(all) != 2 || !stored["a"] || !stored["c"] {
			t.Errorf("AllUsers = %d users %v, %v; want a and c", len(all), stored, err)
		}
	})

	t.Run("a conditional delete never erases a newer write", func(t *testing.T) {
		s := newStore(t)
		u := ipguard.User{ID: "a", Email: "a@example.com", Entries: []string{}, Rev: 1, CreatedAt: t0, UpdatedAt: t0}
		if ok, err := s.PutUserIf(ctx, u, 0); !ok || err != nil {
			t.Fatalf("put: %v, %v", ok, err)
		}
		u.Rev = 2
		if ok, err := s.PutUserIf(ctx, u, 1); !ok || err != nil {
			t.Fatalf("put rev 2: %v, %v", ok, err)
		}
		if ok, err := s.DeleteUserIf(ctx, "a", 1); ok || err != nil {
			t.Errorf("delete at the old rev: %v, %v; want false, nil", ok, err)
		}
		if _, found, _ := s.GetUser(ctx, "a"); !found {
			t.Error("a delete at the old rev erased the newer record")
		}
		if ok, err := s.DeleteUserIf(ctx, "a", 2); !ok || err != nil {
			t.Errorf("delete at the stored rev: %v, %v; want true, nil", ok, err)
		}
		// The resend of a delete whose answer was lost finds nothing: fine.
		if ok, err := s.DeleteUserIf(ctx, "a", 2); !ok || err != nil {
			t.Errorf("delete of a user not stored: %v, %v; want true, nil", ok, err)
		}
	})

	t.Run("concurrent version bumps get distinct values", func(t *testing.T) {
		s := newStore(t)
		const n = 8
		versions := make(chan int64, n)
		var wg sync.WaitGroup
		for range n {
			wg.Go(func() {
				v, err := s.BumpVersion(ctx)
				if err != nil {
					t.Error(err)
				}
				versions <- v
			})
		}
		wg.Wait()
		close(versions)
		seen := map[int64]bool{}
		for v := range versions {
			if seen[v] || v < 1 || v > n {
				t.Errorf("version %d given twice or out of 1..%d", v, n)
			}
			seen[v] = true
		}
	})

	t.Run("portal state: every field but Version, Applied never down", func(t *testing.T) {
		s := newStore(t)
		if st, err := s.PortalState(ctx); err != nil || !reflect.DeepEqual(st, ipguard.PortalState{}) {
			t.Fatalf("PortalState before any write = %+v, %v; want the zero value", st, err)
		}
		if _, err := s.BumpVersion(ctx); err != nil {
			t.Fatal(err)
		}
		want := ipguard.PortalState{
			Version: 99, Applied: 5, Owned: []string{"203.0.113.7", "198.51.100.0/30"},
			LastSeen:    []ipguard.Restriction{{IP: "203.0.113.7"}, {IP: "192.0.2.1", ForAdmin: true}},
			LastEnabled: true, Reconciled: true, Pending: "HTTP 503", PendingCode: ipguard.EUnavailable, PendingVersion: 6,
			LastReconcile: t0.Add(1500 * time.Millisecond), DriftEpisode: "d1", LockoutNotice: "n1", TrailNotice: "unavailable", RecordNotice: "unavailable", HandOff: true,
			Sent: []ipguard.Restriction{{IP: "203.0.113.7"}, {IP: "203.0.113.8"}}, SentAdded: []string{"203.0.113.8"},
			SentEnable: true, SentOutcome: ipguard.SentUnknown, SentAt: t0.Add(2 * time.Second),
			LateSent: []string{"h1 192.0.2.1"}, AlertsDue: true,
			OwnSaves: []time.Time{t0, t0.Add(250 * time.Millisecond)}, KeyUser: "key-user",
			UnansweredSaves: []ipguard.SaveWindow{{From: t0.Add(time.Second), Until: t0.Add(21 * time.Second)}},
			RecheckDue:      t0.Add(77*time.Second + 250*time.Millisecond),
		}
		if err := s.PutPortalState(ctx, want); err != nil {
			t.Fatal(err)
		}
		got, err := s.PortalState(ctx)
		want.Version = 1 // only BumpVersion moves it
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("PortalState = %+v, %v\nwant %+v", got, err, want)
		}
		older := want
		older.Applied, older.Pending, older.Owned = 3, "", []string{"203.0.113.7"}
		if err := s.PutPortalState(ctx, older); err != nil {
			t.Fatal(err)
		}
		got, err = s.PortalState(ctx)
		if err != nil || got.Applied != 5 || got.Pending != "" || !slices.Equal(got.Owned, older.Owned) {
			t.Errorf("after an older write: %+v, %v; want Applied kept at 5, the rest replaced", got, err)
		}
	})

	// The fence (#15): a pass whose lease ran out never replaces the state
	// a newer pass wrote; its own writes and a write over the state it read
	// go through; a write that names no pass is not fenced.
	t.Run("portal state: a write is fenced by the pass it started from", func(t *testing.T) {
		s := newStore(t)
		put := func(pass, base string, applied int64, owned ...string) error {
			return s.PutPortalState(ctx, ipguard.PortalState{Pass: pass, Base: base, Applied: applied, Owned: owned, Reconciled: true})
		}
		steps := []struct {
			name, pass, base string
			applied          int64
			owned            []string
			superseded       bool
		}{
			{"the first pass over no state", "a", "", 1, []string{"203.0.113.1"}, false},
			{"the same pass again (in flight, then its result)", "a", "", 1, []string{"203.0.113.1", "203.0.113.9"}, false},
			{"a newer pass started from a's state", "b", "a", 2, []string{"203.0.113.1", "203.0.113.2"}, false},
			{"a late pass started from a's state too", "c", "a", 1, []string{"203.0.113.1"}, true},
			{"a late pass with a higher applied", "c", "a", 3, []string{"203.0.113.1"}, true},
			{"a late pass that started from nothing", "d", "", 1, nil, true},
			{"b's own write goes on", "b", "a", 2, []string{"203.0.113.2"}, false},
			// A fenced write with an older applied (a pass that failed
			// after another stored more) keeps the newer applied and
			// writes the rest; before, the store's second write named an
			// applied it no longer set, and DynamoDB refused it.
			{"b's own write with an older applied", "b", "a", 1, []string{"203.0.113.2"}, false},
		}
		for _, st := range steps {
			err := put(st.pass, st.base, st.applied, st.owned...)
			if st.superseded != errors.Is(err, onboard.ErrSuperseded) || !st.superseded && err != nil {
				t.Fatalf("%s: err = %v; want superseded %v", st.name, err, st.superseded)
			}
		}
		got, err := s.PortalState(ctx)
		if err != nil || got.Pass != "b" || got.Applied != 2 || !slices.Equal(got.Owned, []string{"203.0.113.2"}) {
			t.Errorf("after the late writes: %+v, %v; want b's state (applied 2, owned 203.0.113.2)", got, err)
		}
		if err := s.PutPortalState(ctx, ipguard.PortalState{Owned: []string{"192.0.2.1"}}); err != nil {
			t.Errorf("a write that names no pass: %v", err)
		}
	})

	// Alerts recorded due outside a reconcile (no lease) mark the state:
	// a read shows AlertsDue until a state read after the mark is written,
	// and a write of a state read before it never erases it.
	t.Run("portal state: a due mark outlives writes of states read before it", func(t *testing.T) {
		s := newStore(t)
		before, err := s.PortalState(ctx)
		if err != nil || before.AlertsDue {
			t.Fatalf("fresh: %+v, %v", before, err)
		}
		if err := s.MarkAlertsDue(ctx); err != nil {
			t.Fatal(err)
		}
		after, err := s.PortalState(ctx)
		if err != nil || !after.AlertsDue || after.DueMarks != 1 {
			t.Fatalf("after a mark: AlertsDue %v, DueMarks %d, %v; want true, 1", after.AlertsDue, after.DueMarks, err)
		}
		if err := s.PutPortalState(ctx, before); err != nil { // read before the mark, flushed nothing of it
			t.Fatal(err)
		}
		if st, _ := s.PortalState(ctx); !st.AlertsDue {
			t.Error("a write of a state read before the mark erased it")
		}
		after.AlertsDue = false // its reconcile flushed the outbox empty
		if err := s.PutPortalState(ctx, after); err != nil {
			t.Fatal(err)
		}
		if st, _ := s.PortalState(ctx); st.AlertsDue {
			t.Error("a write of a state read after the mark, flushed, left AlertsDue")
		}
		if _, err := s.BumpVersion(ctx); err != nil {
			t.Fatal(err)
		}
		if err := s.MarkAlertsDue(ctx); err != nil {
			t.Fatal(err)
		}
		if st, _ := s.PortalState(ctx); !st.AlertsDue || st.Version != 1 || st.DueMarks != 2 {
			t.Errorf("after a second mark: %+v", st)
		}
	})

	t.Run("a read returns a copy", func(t *testing.T) {
		s := newStore(t)
		if err := s.PutPortalState(ctx, ipguard.PortalState{Owned: []string{"203.0.113.7"}}); err != nil {
			t.Fatal(err)
		}
		st, _ := s.PortalState(ctx)
		st.Owned[0] = "changed"
		if again, _ := s.PortalState(ctx); fmt.Sprint(again.Owned) != "[203.0.113.7]" {
			t.Errorf("changing a read changed the store: %v", again.Owned)
		}
	})

	// The outbox of onboarding's own alerts (#15): an alert is recorded as
	// due before it is published and cleared only once SNS accepted it, so
	// the store must keep every due alert, whole, until it is cleared.
	alert := func(key string, since time.Duration, subject string) ipguard.DueAlert {
		return ipguard.DueAlert{Key: key, Since: t0.Add(since), Alert: ipguard.Alert{
			Subject: subject, Default: `{"kind":"drift"}`, Email: subject + "\n\nbody", SMS: subject, Severity: "high", Kinds: []string{"drift", "lockout"},
		}}
	}
	dueKeys := func(t *testing.T, s onboard.Store) []string {
		t.Helper()
		due, err := s.DueAlerts(ctx)
		if err != nil {
			t.Fatalf("DueAlerts: %v", err)
		}
		keys := []string{}
		for _, a := range due {
			keys = append(keys, a.Key)
		}
		return keys
	}

	t.Run("outbox: due alerts come back whole, oldest first, one per key", func(t *testing.T) {
		s := newStore(t)
		if keys := dueKeys(t, s); len(keys) != 0 {
			t.Fatalf("DueAlerts of a new store = %v; want none", keys)
		}
		// Keys are episode keys: any text, however long, each its own entry.
		long := "drift#" + strings.Repeat("ü/ #.", 200)
		for _, a := range []ipguard.DueAlert{
			alert("lockout#u1", 3*time.Minute, "c"),
			alert(long, time.Minute, "a"),
			alert("drift#restrictions off", 2*time.Minute, "b"),
		} {
			if err := s.AddDueAlert(ctx, a); err != nil {
				t.Fatalf("AddDueAlert(%q): %v", a.Key, err)
			}
		}
		if got, want := dueKeys(t, s), []string{long, "drift#restrictions off", "lockout#u1"}; !slices.Equal(got, want) {
			t.Fatalf("DueAlerts keys = %q; want oldest first %q", got, want)
		}
		// The same key again replaces the due alert, whatever its time.
		again := alert("drift#restrictions off", 4*time.Minute, "b2")
		again.Alert.Kinds = nil
		if err := s.AddDueAlert(ctx, again); err != nil {
			t.Fatal(err)
		}
		due, err := s.DueAlerts(ctx)
		want := []ipguard.DueAlert{alert(long, time.Minute, "a"), alert("lockout#u1", 3*time.Minute, "c"), again}
		if err != nil || !reflect.DeepEqual(due, want) {
			t.Fatalf("DueAlerts after replacing one = %+v, %v\nwant %+v", due, err, want)
		}
	})

	t.Run("outbox: an alert stays due until cleared, by its key only", func(t *testing.T) {
		s := newStore(t)
		for i, k := range []string{"k1", "k2", "k3"} {
			if err := s.AddDueAlert(ctx, alert(k, time.Duration(i)*time.Second, k)); err != nil {
				t.Fatal(err)
			}
		}
		// Reading does not consume; the portal state is another item.
		dueKeys(t, s)
		if err := s.PutPortalState(ctx, ipguard.PortalState{AlertsDue: false}); err != nil {
			t.Fatal(err)
		}
		if got := dueKeys(t, s); !slices.Equal(got, []string{"k1", "k2", "k3"}) {
			t.Fatalf("after a read and a portal state write: %q; want all three still due", got)
		}
		if st, err := s.PortalState(ctx); err != nil || st.AlertsDue {
			t.Errorf("PortalState = %+v, %v; the outbox does not set AlertsDue", st, err)
		}
		steps := []struct {
			clear string
			want  []string
		}{
			{"k2", []string{"k1", "k3"}},
			{"k2", []string{"k1", "k3"}},      // cleared twice (a retried clear): fine
			{"unknown", []string{"k1", "k3"}}, // never due: fine
			{"k", []string{"k1", "k3"}},       // a prefix of keys clears nothing
			{"k1", []string{"k3"}},
			{"k3", []string{}},
		}
		for _, st := range steps {
			if err := s.ClearDueAlert(ctx, st.clear); err != nil {
				t.Fatalf("ClearDueAlert(%q): %v; want nil", st.clear, err)
			}
			if got := dueKeys(t, s); !slices.Equal(got, st.want) {
				t.Fatalf("after clearing %q: %q; want %q", st.clear, got, st.want)
			}
		}
	})

	t.Run("outbox: what is stored and what is read are copies", func(t *testing.T) {
		s := newStore(t)
		a := alert("k1", 0, "subject")
		if err := s.AddDueAlert(ctx, a); err != nil {
			t.Fatal(err)
		}
		a.Alert.Kinds[0] = "changed after AddDueAlert"
		due, _ := s.DueAlerts(ctx)
		if len(due) != 1 || due[0].Alert.Kinds[0] != "drift" {
			t.Fatalf("changing the added alert changed the store: %+v", due)
		}
		due[0].Alert.Kinds[0] = "changed after DueAlerts"
		if again, _ := s.DueAlerts(ctx); len(again) != 1 || again[0].Alert.Kinds[0] != "drift" {
			t.Errorf("changing a read changed the store: %+v", again)
		}
	})
	// Two invocations flush the outbox at once (a reconcile's flush runs
	// after its lease is released, so nothing else keeps them apart): each
	// due alert must reach the topic once. The first publish waits until
	// the other flusher either publishes too (the defect) or has finished.
	t.Run("outbox: two concurrent flushers send each due alert once", func(t *testing.T) {
		s := newStore(t)
		for i, k := range []string{"drift#1", "lockout#not-owner"} {
			if err := s.AddDueAlert(ctx, alert(k, time.Duration(i)*time.Second, k)); err != nil {
				t.Fatal(err)
			}
		}
		pub := &blockingPublisher{sent: map[string]int{}, other: make(chan struct{}), done: make(chan struct{}, 2)}
		flushers := []*onboard.Service{{Store: s, Alerts: pub}, {Store: s, Alerts: pub}}
		var wg sync.WaitGroup
		for _, f := range flushers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				f.SendDueAlerts(ctx)
				pub.done <- struct{}{}
			}()
		}
		wg.Wait()
		for _, k := range []string{"drift#1", "lockout#not-owner"} {
			if n := pub.count(k); n != 1 {
				t.Errorf("alert %q published %d times by two concurrent flushers; want once", k, n)
			}
		}
		if left := dueKeys(t, s); len(left) != 0 {
			t.Errorf("still due after both flushers: %q", left)
		}
		// Nothing is lost: a flusher that finds an alert claimed by the
		// other leaves it to that one, and a refused publish keeps it due.
		if err := s.AddDueAlert(ctx, alert("drift#2", 0, "again")); err != nil {
			t.Fatal(err)
		}
		failing := &onboard.Service{Store: s, Alerts: refusingPublisher{}}
		if left := failing.SendDueAlerts(ctx); !left {
			t.Error("a refused publish reported nothing left due")
		}
		if got := dueKeys(t, s); !slices.Equal(got, []string{"drift#2"}) {
			t.Fatalf("after a refused publish: %q; want drift#2 still due", got)
		}
		again := &blockingPublisher{sent: map[string]int{}, other: make(chan struct{}), done: make(chan struct{}, 2)}
		close(again.done)
		if left := (&onboard.Service{Store: s, Alerts: again}).SendDueAlerts(ctx); left || again.count("again") != 1 {
			t.Errorf("the next flush after a refused publish: left %v, sent %d; want it sent once, nothing left", left, again.count("again"))
		}
	})

	t.Run("outbox: a claim is one flusher's until it ends; a newer alert drops it", func(t *testing.T) {
		s := newStore(t)
		now := t0
		if _, ok, err := s.ClaimDueAlert(ctx, "none", "t1", now.Add(time.Minute), now); ok || err != nil {
			t.Fatalf("claim of an alert not due = %v, %v; want false, nil", ok, err)
		}
		if err := s.AddDueAlert(ctx, alert("k1", 0, "first")); err != nil {
			t.Fatal(err)
		}
		steps := []struct {
			name  string
			token string
			at    time.Time
			want  bool
		}{
			{"the first claim", "t1", now, true},
			{"another flusher while it runs", "t2", now.Add(30 * time.Second), false},
			{"the same flusher again while it runs", "t1", now.Add(time.Minute), false},
			{"another flusher once it ran out", "t2", now.Add(time.Minute + time.Millisecond), true},
		}
		for _, st := range steps {
			a, ok, err := s.ClaimDueAlert(ctx, "k1", st.token, st.at.Add(time.Minute), st.at)
			if err != nil || ok != st.want || ok && a.Alert.Subject != "first" {
				t.Fatalf("%s: %+v, %v, %v; want %v", st.name, a, ok, err, st.want)
			}
		}
		// t1's claim ran out and t2 took it: t1's late settle changes nothing.
		if err := s.SettleDueAlert(ctx, "k1", "t1", true); err != nil {
			t.Fatal(err)
		}
		if got := dueKeys(t, s); !slices.Equal(got, []string{"k1"}) {
			t.Fatalf("a settle by a flusher whose claim was taken over cleared it: %q", got)
		}
		// A newer alert of the same key while t2 sends the older: it is due
		// again, unclaimed, and t2's settle leaves it.
		if err := s.AddDueAlert(ctx, alert("k1", time.Second, "newer")); err != nil {
			t.Fatal(err)
		}
		if err := s.SettleDueAlert(ctx, "k1", "t2", true); err != nil {
			t.Fatal(err)
		}
		a, ok, err := s.ClaimDueAlert(ctx, "k1", "t3", now.Add(2*time.Minute), now.Add(time.Minute))
		if err != nil || !ok || a.Alert.Subject != "newer" {
			t.Fatalf("the newer alert after the older one was sent: %+v, %v, %v; want it due and claimable", a, ok, err)
		}
		// Given back (publish failed): due, and claimable at once.
		if err := s.SettleDueAlert(ctx, "k1", "t3", false); err != nil {
			t.Fatal(err)
		}
		if _, ok, err := s.ClaimDueAlert(ctx, "k1", "t4", now.Add(2*time.Minute), now.Add(time.Minute)); !ok || err != nil {
			t.Fatalf("claim after a claim was given back = %v, %v; want true", ok, err)
		}
		if err := s.SettleDueAlert(ctx, "k1", "t4", true); err != nil {
			t.Fatal(err)
		}
		if got := dueKeys(t, s); len(got) != 0 {
			t.Errorf("after the claimer settled it as sent: %q; want none", got)
		}
	})

	// The writes recorded for a second look in the audit trail (#15 §5):
	// whole, oldest first, one per key; alerted keys only ever added (also
	// concurrently); a put may drop others in the same write (a merge).
	t.Run("rechecks: records come back whole, oldest first; alerted keys add up; a put drops", func(t *testing.T) {
		s := newStore(t)
		rs, ok := s.(onboard.Rechecks)
		if !ok {
			t.Fatalf("%T keeps no writes for a second look in the trail (onboard.Rechecks)", s)
		}
		if got, err := rs.Rechecks(ctx); err != nil || len(got) != 0 {
			t.Fatalf("Rechecks of a new store = %v, %v; want none", got, err)
		}
		rec := func(k string, at time.Duration, body string, alerted ...string) ipguard.Recheck {
			return ipguard.Recheck{Key: k, From: t0.Add(at), Body: body, Alerted: alerted}
		}
		keys := func(rs []ipguard.Recheck) []string {
			var out []string
			for _, r := range rs {
				out = append(out, r.Key)
			}
			return out
		}
		long := strings.Repeat(`{"seen":"ü #."}`, 300)
		for _, r := range []ipguard.Recheck{rec("w3", 3*time.Second, "c"), rec("w1", time.Second, long), rec("w2", 2*time.Second, "b", "x#1")} {
			all, err := rs.PutRecheck(ctx, r, nil)
			if err != nil {
				t.Fatalf("PutRecheck(%s): %v", r.Key, err)
			}
			if !slices.Contains(keys(all), r.Key) {
				t.Fatalf("PutRecheck(%s) returned %v; want every record stored after it", r.Key, keys(all))
			}
		}
		var wg sync.WaitGroup
		for _, k := range []string{"y#2", "a#0", "x#1"} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := rs.AddRecheckAlerted(ctx, "w2", []string{k}); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if err := rs.AddRecheckAlerted(ctx, "gone", []string{"z#9"}); err != nil {
			t.Fatal(err)
		}
		got, err := rs.Rechecks(ctx)
		want := []ipguard.Recheck{rec("w1", time.Second, long), rec("w2", 2*time.Second, "b", "a#0", "x#1", "y#2"), rec("w3", 3*time.Second, "c")}
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("Rechecks = %+v, %v\nwant %+v (alerted sorted, added concurrently; none made for a record not stored)", got, err, want)
		}
		// A merge: w1 replaced (its alerted keys kept and added to), w2 dropped.
		all, err := rs.PutRecheck(ctx, rec("w1", time.Second, "merged", "a#0", "x#1"), []string{"w2"})
		want = []ipguard.Recheck{rec("w1", time.Second, "merged", "a#0", "x#1"), rec("w3", 3*time.Second, "c")}
		if err != nil || !reflect.DeepEqual(all, want) {
			t.Fatalf("PutRecheck with a drop = %+v, %v\nwant %+v", all, err, want)
		}
		if err := rs.ClearRechecks(ctx, []string{"w3", "unknown"}); err != nil {
			t.Fatal(err)
		}
		if got, err := rs.Rechecks(ctx); err != nil || !slices.Equal(keys(got), []string{"w1"}) {
			t.Errorf("after clearing w3: %v, %v; want w1 alone", keys(got), err)
		}
		// A merge under a key of its own (onboard's merged records): the
		// dropped records' alerted keys do not carry over, only its own.
		all, err = rs.PutRecheck(ctx, rec("merged w1", time.Second, "merged", "x#1"), []string{"w1"})
		want = []ipguard.Recheck{rec("merged w1", time.Second, "merged", "x#1")}
		if err != nil || !reflect.DeepEqual(all, want) {
			t.Errorf("PutRecheck under a new key dropping the old = %+v, %v\nwant %+v", all, err, want)
		}
	})

	// A write over a record read (expiry, the users-left check, a change
	// of a stored user) never brings back one deleted meanwhile, also when
	// it was written before revs (rev 0: PutUserIf's "none" as well).
	t.Run("a replace writes only over a record still stored", func(t *testing.T) {
		s := newStore(t)
		r, ok := s.(onboard.UserReplacer)
		if !ok {
			t.Fatalf("%T has no write over a stored record only (onboard.UserReplacer)", s)
		}
		steps := []struct {
			name   string
			do     func() (bool, error)
			want   bool
			stored int64 // the rev stored after, -1: none
		}{
			{"a record before revs", func() (bool, error) { return s.PutUserIf(ctx, user(0, "203.0.113.7"), 0) }, true, 0},
			{"replaced over it", func() (bool, error) { return r.ReplaceUserIf(ctx, user(1, "203.0.113.8"), 0) }, true, 1},
			{"replaced over its rev", func() (bool, error) { return r.ReplaceUserIf(ctx, user(2), 1) }, true, 2},
			{"not over an older rev", func() (bool, error) { return r.ReplaceUserIf(ctx, user(3), 1) }, false, 2},
			{"deleted", func() (bool, error) { return s.DeleteUserIf(ctx, "u1", 2) }, true, -1},
			{"not over none (rev 0)", func() (bool, error) { return r.ReplaceUserIf(ctx, user(1, "203.0.113.8"), 0) }, false, -1},
			{"not over none (rev 2)", func() (bool, error) { return r.ReplaceUserIf(ctx, user(3), 2) }, false, -1},
		}
		for _, st := range steps {
			if ok, err := st.do(); ok != st.want || err != nil {
				t.Fatalf("%s: %v, %v; want %v, nil", st.name, ok, err, st.want)
			}
			if got, found, err := s.GetUser(ctx, "u1"); err != nil || found != (st.stored >= 0) || found && got.Rev != st.stored {
				t.Fatalf("after %s: stored %v at rev %d, %v; want rev %d", st.name, found, got.Rev, err, st.stored)
			}
		}
	})
}

// blockingPublisher counts publishes by subject; the first one waits until
// a second publish starts or a flusher has finished (done), so two
// flushers are both under way when the first message goes out.
type blockingPublisher struct {
	mu    sync.Mutex
	sent  map[string]int
	n     int
	other chan struct{}
	done  chan struct{}
}

func (p *blockingPublisher) Publish(_ context.Context, a ipguard.Alert) (string, error) {
	p.mu.Lock()
	p.sent[a.Subject]++
	p.n++
	n := p.n
	p.mu.Unlock()
	switch n {
	case 1:
		select {
		case <-p.other:
		case <-p.done:
		}
	case 2:
		close(p.other)
	}
	return fmt.Sprint("m", n), nil
}

func (p *blockingPublisher) count(subject string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sent[subject]
}

type refusingPublisher struct{}

func (refusingPublisher) Publish(context.Context, ipguard.Alert) (string, error) {
	return "", ipguard.Errorf(ipguard.EUnavailable, "sns: throttled")
}

// FastPathContract checks the promises of onboard.AddsCounter (the count
// behind the cap check's bound); OneReadContract holds the optional reads.
func FastPathContract(t *testing.T, newStore func(t *testing.T) onboard.Store) {
	ctx := context.Background()
	t.Run("the version bump counts the addresses added; only the bump moves the count", func(t *testing.T) {
		s := newStore(t)
		c, ok := s.(onboard.AddsCounter)
		if !ok {
			t.Fatalf("%T does not count added addresses (onboard.AddsCounter)", s)
		}
		total := int64(0)
		for i, adds := range []int{3, 5, 0} {
			total += int64(adds)
			// The count is its answer only for a bump that adds: DynamoDB
			// returns an attribute an ADD of 0 left unchanged, moto not.
			if v, counted, err := c.BumpVersionAdding(ctx, adds); err != nil || v != int64(i+1) || adds > 0 && counted != total {
				t.Fatalf("BumpVersionAdding(%d) = %d, %d, %v; want version %d, count %d (every bump's so far)", adds, v, counted, err, i+1, total)
			}
		}
		if _, err := s.BumpVersion(ctx); err != nil {
			t.Fatal(err)
		}
		if err := s.PutPortalState(ctx, ipguard.PortalState{Applied: 2, Adds: 99, AddsApplied: 8, Reconciled: true}); err != nil {
			t.Fatal(err)
		}
		st, err := s.PortalState(ctx)
		if err != nil || st.Version != 4 || st.Adds != 8 || st.AddsApplied != 8 || st.Applied != 2 {
			t.Fatalf("after bumps adding 3, 5, 0 and a plain bump, then a state write: %+v, %v; want version 4, adds 8 (the write does not move it), addsApplied 8", st, err)
		}
		// AddsApplied goes with Applied: an older writer does not move it back.
		if err := s.PutPortalState(ctx, ipguard.PortalState{Applied: 1, AddsApplied: 3}); err != nil {
			t.Fatal(err)
		}
		if st, err = s.PortalState(ctx); err != nil || st.Applied != 2 || st.AddsApplied != 8 {
			t.Errorf("after an older write: applied %d, addsApplied %d, %v; want 2 and 8 kept", st.Applied, st.AddsApplied, err)
		}
	})
}

// OneReadContract holds a store that has the optional fast-path reads to
// them: onboard.ChangeReader's one read answers as the three reads it
// replaces, and onboard.StateLeasePeeker's poll reads every field a
// waiting change uses. The service works without them (three reads, a
// full state read), so the fake has none and is not held to this; a
// store this is run against must have both.
func OneReadContract(t *testing.T, newStore func(t *testing.T) onboard.Store) {
	ctx := context.Background()
	t.Run("a change's one read answers as the three reads it replaces", func(t *testing.T) {
		s := newStore(t)
		r, ok := s.(onboard.ChangeReader)
		if !ok {
			t.Fatalf("%T has no one-read change start (onboard.ChangeReader)", s)
		}
		tomb := s.(onboard.Tombstones)
		now := time.Now().UTC().Truncate(time.Millisecond)
		if cs, err := r.ChangeRead(ctx, "u1", now); err != nil || !reflect.DeepEqual(cs, onboard.ChangeStart{}) {
			t.Fatalf("empty store: %+v, %v; want nothing found", cs, err)
		}
		u := ipguard.User{ID: "u1", Email: "a@example.com", Entries: []string{"203.0.113.7"}, Rev: 1, CreatedAt: now.Truncate(time.Second), UpdatedAt: now.Truncate(time.Second)}
		if ok, err := s.PutUserIf(ctx, u, 0); !ok || err != nil {
			t.Fatal(ok, err)
		}
		if _, err := s.BumpVersion(ctx); err != nil {
			t.Fatal(err)
		}
		if err := s.PutPortalState(ctx, ipguard.PortalState{Applied: 1, LastSeen: []ipguard.Restriction{{IP: "203.0.113.7"}}, Owned: []string{"203.0.113.7"}, Reconciled: true,
			Sent: []ipguard.Restriction{{IP: "203.0.113.7"}, {IP: "203.0.113.8"}}, SentAdded: []string{"203.0.113.8"}, SentOutcome: ipguard.SentInFlight, SentAt: now}); err != nil {
			t.Fatal(err)
		}
		if err := tomb.PutOffboarded(ctx, "u1", now.Add(-time.Hour), now.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		for _, at := range []time.Time{now, now.Add(2 * time.Hour)} { // remembered, then expired
			cs, err := r.ChangeRead(ctx, "u1", at)
			if err != nil {
				t.Fatal(err)
			}
			wantU, wantFound, _ := s.GetUser(ctx, "u1")
			wantSt, _ := s.PortalState(ctx)
			wantOff, wantWas, _ := tomb.Offboarded(ctx, "u1", at)
			want := onboard.ChangeStart{User: wantU, Found: wantFound, State: wantSt, Offboarded: wantOff, WasOffboarded: wantWas}
			if !reflect.DeepEqual(cs, want) {
				t.Errorf("at %s: ChangeRead = %+v\nwant %+v", at, cs, want)
			}
		}
	})
	t.Run("a waiting change's poll reads what it uses", func(t *testing.T) {
		s := newStore(t)
		p, ok := s.(onboard.StateLeasePeeker)
		if !ok {
			t.Fatalf("%T has no one-read poll (onboard.StateLeasePeeker)", s)
		}
		if _, _, err := s.(onboard.AddsCounter).BumpVersionAdding(ctx, 2); err != nil {
			t.Fatal(err)
		}
		full := ipguard.PortalState{Applied: 1, AddsApplied: 1, LastSeen: []ipguard.Restriction{{IP: "203.0.113.7"}, {IP: "192.0.2.1", ForAdmin: true}},
			LastEnabled: true, Reconciled: true, Pending: "HTTP 503", PendingCode: ipguard.EUnavailable, PendingVersion: 1,
			Owned: []string{"203.0.113.7"}, LateSent: []string{"h1 "}, OwnSaves: []time.Time{time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)}}
		if err := s.PutPortalState(ctx, full); err != nil {
			t.Fatal(err)
		}
		got, free, err := p.PortalStateAndLease(ctx, onboard.LeaseName, time.Now())
		if err != nil || !free {
			t.Fatalf("PortalStateAndLease: free %v, %v", free, err)
		}
		want := ipguard.PortalState{Version: 1, Applied: 1, Adds: 2, AddsApplied: 1, LastSeen: full.LastSeen, LastEnabled: true, Reconciled: true,
			Pending: full.Pending, PendingCode: full.PendingCode, PendingVersion: 1}
		got.Owned, got.LateSent, got.OwnSaves = nil, nil, nil // may be read or not
		if !reflect.DeepEqual(got, want) {
			t.Errorf("poll read %+v\nwant %+v", got, want)
		}
	})
}
