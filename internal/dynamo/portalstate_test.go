package dynamo_test

import (
	"context"
	"testing"
	"time"

	"ipguard/internal/dynamo"
	"ipguard/internal/ipguard"
	"ipguard/internal/testbed/localaws"
)

func TestDesiredStateItems(t *testing.T) {
	db := motoDB(t)
	localaws.TableT(t, db, "desired")
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

	t.Run("a PUT in flight, own saves, late PUTs and the key's user round-trip", func(t *testing.T) {
		st := ipguard.PortalState{Applied: 10, Reconciled: true, LastSeen: []ipguard.Restriction{{IP: "192.0.2.1", ForAdmin: true}, {IP: "odd\nname%0A"}},
			Sent: []ipguard.Restriction{{IP: "192.0.2.1", ForAdmin: true}, {IP: "203.0.113.1"}, {IP: "203.0.113.2"}}, SentAdded: []string{"203.0.113.2"},
			SentEnable: true, SentOutcome: ipguard.SentUnknown, SentAt: exp, OwnSaves: []time.Time{exp, exp}, KeyUser: "k1", LateSent: []string{"h1"}}
		if err := s.PutPortalState(ctx, st); err != nil {
			t.Fatal(err)
		}
		got, err := s.PortalState(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(got.LastSeen) != 2 || got.LastSeen[1].IP != "odd\nname%0A" || len(got.Sent) != 3 || !got.Sent[0].ForAdmin || len(got.SentAdded) != 1 || got.SentAdded[0] != "203.0.113.2" ||
			!got.SentEnable || got.SentOutcome != ipguard.SentUnknown || !got.SentAt.Equal(exp) || len(got.OwnSaves) != 2 || got.KeyUser != "k1" || len(got.LateSent) != 1 {
			t.Errorf("state = %+v", got)
		}
		st.Sent, st.SentAdded, st.SentOutcome = nil, nil, ""
		if err := s.PutPortalState(ctx, st); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.PortalState(ctx); got.Sent != nil || got.SentOutcome != "" {
			t.Errorf("sent not cleared: %+v", got.Sent)
		}
	})

	t.Run("the outbox: add, replace, list oldest first, clear", func(t *testing.T) {
		a := ipguard.DueAlert{Key: "drift#1", Since: exp, Alert: ipguard.Alert{Subject: "s1", Kinds: []string{"allowlist_drift"}}}
		b := ipguard.DueAlert{Key: "lockout#not-owner", Since: exp.Add(-time.Hour), Alert: ipguard.Alert{Subject: "s2"}}
		for _, x := range []ipguard.DueAlert{a, b, a} {
			if err := s.AddDueAlert(ctx, x); err != nil {
				t.Fatal(err)
			}
		}
		due, err := s.DueAlerts(ctx)
		if err != nil || len(due) != 2 || due[0].Key != b.Key || due[1].Alert.Subject != "s1" {
			t.Fatalf("due = %+v, %v", due, err)
		}
		if err := s.ClearDueAlert(ctx, b.Key); err != nil {
			t.Fatal(err)
		}
		if err := s.ClearDueAlert(ctx, "unknown"); err != nil {
			t.Fatal(err)
		}
		if due, _ := s.DueAlerts(ctx); len(due) != 1 || due[0].Key != a.Key {
			t.Errorf("after clearing: %+v", due)
		}
	})
}
