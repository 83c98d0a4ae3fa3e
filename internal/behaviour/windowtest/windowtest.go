// Package windowtest is the one in-memory behaviour.WindowStore and
// Contract, the table of its promises that both it and the DynamoDB store
// pass (internal/dynamo's tests run it under moto).
package windowtest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"ipguard/internal/behaviour"
)

// Store keeps spray buckets in memory, merged as DynamoDB merges them.
type Store struct {
	mu      sync.Mutex
	Buckets map[int64]behaviour.SprayBucket
	// Reads and Writes count the calls (each a batch).
	Reads, Writes int
}

// New returns an empty store.
func New() *Store { return &Store{Buckets: map[int64]behaviour.SprayBucket{}} }

// SprayBuckets implements behaviour.WindowStore.
func (s *Store) SprayBuckets(_ context.Context, starts []time.Time) (map[int64]behaviour.SprayBucket, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Reads++
	out := map[int64]behaviour.SprayBucket{}
	for _, st := range starts {
		if b, ok := s.Buckets[st.Unix()]; ok {
			out[st.Unix()] = behaviour.MergeSprayBuckets(b, behaviour.SprayBucket{}) // a copy
		}
	}
	return out, nil
}

// SaveSprayBuckets implements behaviour.WindowStore.
func (s *Store) SaveSprayBuckets(_ context.Context, bs []behaviour.SprayBucket, _ time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Writes++
	for _, b := range bs {
		s.Buckets[b.Start.Unix()] = behaviour.MergeSprayBuckets(s.Buckets[b.Start.Unix()], b)
	}
	return nil
}

var _ behaviour.WindowStore = (*Store)(nil)

// Contract holds a WindowStore to its promises.
func Contract(t *testing.T, newStore func(t *testing.T) behaviour.WindowStore) {
	ctx := context.Background()
	t0 := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	t.Run("buckets come back merged: the larger count, the wider span, told logins united", func(t *testing.T) {
		s := newStore(t)
		a := behaviour.SprayBucket{Start: t0, Accounts: map[string]behaviour.SprayCount{
			"alice@example.com": {N: 1, First: t0.Add(10 * time.Second), Last: t0.Add(10 * time.Second)}}}
		b := behaviour.SprayBucket{Start: t0, Accounts: map[string]behaviour.SprayCount{
			"alice@example.com": {N: 2, First: t0.Add(5 * time.Second), Last: t0.Add(20 * time.Second)},
			"bob@example.com":   {N: 1, First: t0.Add(30 * time.Second), Last: t0.Add(30 * time.Second)}},
			Told: []behaviour.SprayTold{{EventID: 7, At: t0.Add(30 * time.Second)}}}
		if err := s.SaveSprayBuckets(ctx, []behaviour.SprayBucket{a}, time.Hour); err != nil {
			t.Fatal(err)
		}
		if err := s.SaveSprayBuckets(ctx, []behaviour.SprayBucket{b, b}, time.Hour); err != nil {
			t.Fatal(err)
		}
		got, err := s.SprayBuckets(ctx, []time.Time{t0, t0.Add(time.Minute)})
		if err != nil {
			t.Fatal(err)
		}
		g, ok := got[t0.Unix()]
		if !ok || len(got) != 1 {
			t.Fatalf("SprayBuckets = %+v; want the one bucket at %s", got, t0)
		}
		al := g.Accounts["alice@example.com"]
		if !g.Start.Equal(t0) || len(g.Accounts) != 2 || al.N != 2 || !al.First.Equal(t0.Add(5*time.Second)) || !al.Last.Equal(t0.Add(20*time.Second)) ||
			len(g.Told) != 1 || g.Told[0].EventID != 7 || !g.Told[0].At.Equal(t0.Add(30*time.Second)) {
			t.Errorf("bucket %+v", g)
		}
	})
	t.Run("a bucket keeps at most MaxBucketAccounts accounts and counts the rest", func(t *testing.T) {
		s := newStore(t)
		b := behaviour.SprayBucket{Start: t0, Accounts: map[string]behaviour.SprayCount{}}
		for i := 0; i < behaviour.MaxBucketAccounts+50; i++ {
			b.Accounts[fmt.Sprintf("user%05d@example.com", i)] = behaviour.SprayCount{N: 1, First: t0, Last: t0}
		}
		if err := s.SaveSprayBuckets(ctx, []behaviour.SprayBucket{b}, time.Hour); err != nil {
			t.Fatal(err)
		}
		got, err := s.SprayBuckets(ctx, []time.Time{t0})
		if err != nil {
			t.Fatal(err)
		}
		if g := got[t0.Unix()]; len(g.Accounts) != behaviour.MaxBucketAccounts || g.More != 50 {
			t.Errorf("%d accounts, %d more; want %d and 50", len(g.Accounts), g.More, behaviour.MaxBucketAccounts)
		}
	})
}
