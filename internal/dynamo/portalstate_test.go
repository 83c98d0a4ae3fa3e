package dynamo_test

import (
	"context"
	"testing"
	"time"

	"ipguard/internal/dynamo"
	"ipguard/internal/ipguard"
)

func TestDesiredStateItems(t *testing.T) {
	db := motoDB(t)
	createTable(t, db, "desired")
	s := dynamo.New(db, "desired")
	ctx := context.Background()
	exp := time.Date(2026, 12, 1, 18, 0, 0, 0, time.UTC)

	t.Run("user details, expired entries and rev round-trip; PutUserIf is conditional", func(t *testing.T) {
		u := ipguard.User{ID: "u1", Email: "a@example.com", Entries: []string{"203.0.113.1", "198.51.100.7"}, Rev: 1,
			Details: map[string]ipguard.EntryDetail{"198.51.100.7": {ExpiresAt: exp, Note: "conference"}},
			Expired: []ipguard.ExpiredEntry{{Entry: "192.0.2.9", ExpiresAt: exp.Add(-48 * time.Hour), Note: "old trip"}}}
		if ok, err := s.PutUserIf(ctx, u, 0); !ok || err != nil {
			t.Fatalf("first write = %v, %v", ok, err)
		}
		if ok, err := s.PutUserIf(ctx, u, 0); ok || err != nil {
			t.Fatalf("a second writer from rev 0 = %v, %v; want false", ok, err)
		}
		got, _, err := s.GetUser(ctx, "u1")
		if err != nil || got.Rev != 1 || got.Details["198.51.100.7"] != u.Details["198.51.100.7"] || len(got.Expired) != 1 || got.Expired[0] != u.Expired[0] {
			t.Fatalf("got %+v, %v", got, err)
		}
		u.Rev = 2
		if ok, err := s.PutUserIf(ctx, u, 1); !ok || err != nil {
			t.Fatalf("write from rev 1 = %v, %v", ok, err)
		}
		if err := s.DeleteUser(ctx, "u1"); err != nil {
			t.Fatal(err)
		}
		if _, ok, _ := s.GetUser(ctx, "u1"); ok {
			t.Error("deleted user still there")
		}
	})

	t.Run("version counter and portal state", func(t *testing.T) {
		// One after the other: DynamoDB makes ADD atomic under concurrency,
		// moto does not promise it, so concurrency is not tested here.
		for want := int64(1); want <= 10; want++ {
			if v, err := s.BumpVersion(ctx); err != nil || v != want {
				t.Fatalf("BumpVersion = %d, %v; want %d", v, err, want)
			}
		}
		st := ipguard.PortalState{Applied: 7, Owned: []string{"203.0.113.1"}, LastSeen: []ipguard.Restriction{{IP: "192.0.2.1", ForAdmin: true}, {IP: "203.0.113.1"}},
			LastEnabled: true, Reconciled: true, LastReconcile: exp, DriftEpisode: "x", LockoutNotice: "y", HandOff: true, Pending: "p", PendingCode: ipguard.EConfig}
		if err := s.PutPortalState(ctx, st); err != nil {
			t.Fatal(err)
		}
		st.Applied = 3 // an older writer
		if err := s.PutPortalState(ctx, st); err != nil {
			t.Fatal(err)
		}
		got, err := s.PortalState(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got.Version != 10 || got.Applied != 7 || len(got.Owned) != 1 || len(got.LastSeen) != 2 || !got.LastSeen[0].ForAdmin ||
			!got.LastEnabled || !got.Reconciled || !got.LastReconcile.Equal(exp) || got.DriftEpisode != "x" || got.LockoutNotice != "y" || !got.HandOff || got.Pending != "p" || got.PendingCode != ipguard.EConfig {
			t.Errorf("state = %+v", got)
		}
	})
}
