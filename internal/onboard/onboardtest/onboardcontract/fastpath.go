package onboardcontract

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"ipguard/internal/ipguard"
	"ipguard/internal/onboard"
)

// FastPathContract checks the promises of onboard.AddsCounter (the count
// behind the cap check's bound) and, where the store has them, that
// onboard.ChangeReader's one read answers as the three reads it replaces
// and that onboard.StateLeasePeeker's poll reads every field a waiting
// change uses.
func FastPathContract(t *testing.T, newStore func(t *testing.T) onboard.Store) {
	ctx := context.Background()
	t.Run("the version bump counts the addresses added; only the bump moves the count", func(t *testing.T) {
		s := newStore(t)
		c, ok := s.(onboard.AddsCounter)
		if !ok {
			t.Fatalf("%T does not count added addresses (onboard.AddsCounter)", s)
		}
		for i, adds := range []int{3, 5, 0} {
			if v, err := c.BumpVersionAdding(ctx, adds); err != nil || v != int64(i+1) {
				t.Fatalf("BumpVersionAdding(%d) = %d, %v; want version %d", adds, v, err, i+1)
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
	t.Run("the change log names the user of each bump since its reset, bounded", func(t *testing.T) {
		s := newStore(t)
		cl, ok := s.(onboard.ChangeLogStore)
		if !ok {
			t.Fatalf("%T keeps no change log (onboard.ChangeLogStore)", s)
		}
		since := func(v int64) ([]string, bool) {
			t.Helper()
			st, err := s.PortalState(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return st.ChangedSince(v)
		}
		if _, err := cl.BumpVersionFor(ctx, "u0", 0); err != nil {
			t.Fatal(err)
		}
		if ids, ok := since(0); ok {
			t.Fatalf("a log never reset says it covers version 0 on: %v", ids)
		}
		if err := cl.ResetChangeLog(ctx); err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{"u1", "u2", "u1"} {
			if _, err := cl.BumpVersionFor(ctx, id, 1); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.PutPortalState(ctx, ipguard.PortalState{Applied: 2, Reconciled: true}); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			v    int64
			want []string
			ok   bool
		}{
			{1, []string{"u1", "u2"}, true}, // versions 2, 3, 4 (after the reset at 1)
			{2, []string{"u2", "u1"}, true},
			{4, nil, true},
			{0, nil, false}, // before the reset: not covered
			{5, nil, false}, // past the version
		} {
			if ids, ok := since(c.v); ok != c.ok || !reflect.DeepEqual(ids, c.want) {
				t.Errorf("ChangedSince(%d) = %v, %v; want %v, %v (a state write does not move the log)", c.v, ids, ok, c.want, c.ok)
			}
		}
		if _, err := s.BumpVersion(ctx); err != nil {
			t.Fatal(err)
		}
		if ids, ok := since(4); ok {
			t.Errorf("after a bump that names no user, ChangedSince(4) = %v, true; want not covered (read every user)", ids)
		}
		if ids, ok := since(5); !ok || len(ids) != 0 {
			t.Errorf("ChangedSince(5) right after it = %v, %v; want none, covered", ids, ok)
		}
		for i := range 210 {
			if _, err := cl.BumpVersionFor(ctx, fmt.Sprintf("n%03d", i), 0); err != nil {
				t.Fatal(err)
			}
		}
		st, err := s.PortalState(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(st.Changed) > 200 || st.ChangedBase+int64(len(st.Changed)) != st.Version {
			t.Errorf("after 210 more bumps the log holds %d entries from base %d at version %d; want at most 200, ending at the version", len(st.Changed), st.ChangedBase, st.Version)
		}
		if ids, ok := st.ChangedSince(st.Version - 2); !ok || !reflect.DeepEqual(ids, []string{"n208", "n209"}) {
			t.Errorf("the last two bumps: %v, %v; want [n208 n209]", ids, ok)
		}
		u := ipguard.User{ID: "u1", Email: "a@example.com", Entries: []string{"203.0.113.7"}, Rev: 1,
			CreatedAt: time.Now().UTC().Truncate(time.Second), UpdatedAt: time.Now().UTC().Truncate(time.Second)}
		if ok, err := s.PutUserIf(ctx, u, 0); err != nil || !ok {
			t.Fatal(ok, err)
		}
		got, err := cl.GetUsers(ctx, []string{"u1", "nobody"})
		if err != nil || len(got) != 1 || got[0].ID != "u1" || !reflect.DeepEqual(got[0].Entries, u.Entries) || got[0].Rev != 1 {
			t.Errorf("GetUsers(u1, nobody) = %+v, %v; want u1 as stored, nobody left out", got, err)
		}
	})
	t.Run("a change's one read answers as the three reads it replaces", func(t *testing.T) {
		s := newStore(t)
		r, ok := s.(onboard.ChangeReader)
		if !ok {
			t.Skipf("%T has no one-read change start (optional)", s)
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
			t.Skipf("%T has no one-read poll (optional)", s)
		}
		if _, err := s.(onboard.AddsCounter).BumpVersionAdding(ctx, 2); err != nil {
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
