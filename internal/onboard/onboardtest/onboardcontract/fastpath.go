package onboardcontract

import (
	"context"
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
