// Package behaviourtest is the one in-memory behaviour.Store (baselines) and
// behaviour.EpisodeStore (open episodes), for the tests of the packages that
// run the behaviour rules (audit, digest). Contract is the table of their
// promises that both these and the DynamoDB store pass (internal/dynamo's
// tests run it under moto). ReportCost is what the behaviour benchmarks
// report.
package behaviourtest

import (
	"context"
	"sync"
	"time"

	"ipguard/internal/behaviour"
)

// BaselineStore keeps baselines in memory. It is safe for concurrent use.
type BaselineStore struct {
	mu    sync.Mutex
	Items map[string]behaviour.Baseline // by user id
	// Reads counts the batched reads (one per 100 ids, as DynamoDB's
	// BatchGetItem); Writes the baselines written.
	Reads, Writes int
}

// NewBaselines returns an empty store.
func NewBaselines() *BaselineStore { return &BaselineStore{Items: map[string]behaviour.Baseline{}} }

// Baselines implements behaviour.Store: ids without one are absent.
func (m *BaselineStore) Baselines(_ context.Context, ids []string) (map[string]behaviour.Baseline, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.Reads += (len(ids) + 99) / 100
	return pick(m.Items, ids, func(behaviour.Baseline) bool { return true }), nil
}

// SaveBaselines implements behaviour.Store: each replaces its user's.
func (m *BaselineStore) SaveBaselines(_ context.Context, bs []behaviour.Baseline) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, b := range bs {
		m.Items[b.UserID] = b
	}
	m.Writes += len(bs)
	return nil
}

// EpisodeStore keeps users' open episodes in memory. It is safe for concurrent
// use.
type EpisodeStore struct {
	mu    sync.Mutex
	Items map[string]behaviour.Episodes // by user id
	// Expires is when each user's item expires (Episodes.Expires(hours) of
	// the last save; the save's time when all its episodes closed).
	Expires map[string]time.Time
	// Now, when set, is the clock against which items expire (as the
	// DynamoDB store compares expiresAt with now: an expired item is
	// absent); nil keeps every item.
	Now func() time.Time
}

// NewEpisodes returns an empty store whose items never expire.
func NewEpisodes() *EpisodeStore {
	return &EpisodeStore{Items: map[string]behaviour.Episodes{}, Expires: map[string]time.Time{}}
}

// Episodes implements behaviour.EpisodeStore: ids without one, or whose
// item has expired, are absent.
func (m *EpisodeStore) Episodes(_ context.Context, ids []string) (map[string]behaviour.Episodes, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return pick(m.Items, ids, func(e behaviour.Episodes) bool {
		return m.Now == nil || m.Expires[e.UserID].After(m.Now())
	}), nil
}

// SaveEpisodes implements behaviour.EpisodeStore.
func (m *EpisodeStore) SaveEpisodes(_ context.Context, es []behaviour.Episodes, hours int) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range es {
		m.Items[e.UserID] = e
		exp := e.Expires(hours)
		if exp.IsZero() && m.Now != nil {
			exp = m.Now()
		}
		m.Expires[e.UserID] = exp
	}
	return nil
}

// pick is the items of ids that keep.
func pick[T any](items map[string]T, ids []string, keep func(T) bool) map[string]T {
	out := map[string]T{}
	for _, id := range ids {
		if x, ok := items[id]; ok && keep(x) {
			out[id] = x
		}
	}
	return out
}
