// Package enforcetest holds an in-memory enforce.Store and the contract every
// enforce.Store must keep, so that the fake and the DynamoDB store are held
// to the same table of behaviours.
package enforcetest

import (
	"context"
	"sync"
	"testing"
	"time"

	"ipguard/internal/enforce"
	"ipguard/internal/ipguard"
)

// Store is an in-memory enforce.Store. The zero value is ready; it is safe
// for concurrent use.
type Store struct {
	mu         sync.Mutex
	records    map[string]ipguard.ResponseRecord
	violations map[string]map[int64]time.Time
	// FailClaims makes ClaimResponse fail, as an unavailable table would.
	FailClaims bool
}

var _ enforce.Store = (*Store)(nil)

// ClaimResponse implements enforce.Store.
func (s *Store) ClaimResponse(_ context.Context, rec ipguard.ResponseRecord) (ipguard.ResponseRecord, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.FailClaims {
		return ipguard.ResponseRecord{}, false, ipguard.Errorf(ipguard.EUnavailable, "dynamodb: claim %s: service unavailable", rec.Key)
	}
	if s.records == nil {
		s.records = map[string]ipguard.ResponseRecord{}
	}
	if old, ok := s.records[rec.Key]; ok && old.ExpiresAt.After(rec.ClaimedAt) {
		return old, false, nil
	}
	rec.Outcome, rec.Detail, rec.SettledAt = "", "", time.Time{}
	s.records[rec.Key] = rec
	return rec, true, nil
}

// SettleResponse implements enforce.Store.
func (s *Store) SettleResponse(_ context.Context, rec ipguard.ResponseRecord) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.records[rec.Key]
	if !ok || old.Token != rec.Token {
		return ipguard.Errorf(ipguard.EConflict, "settle %s: the record is not held by this run", rec.Key)
	}
	old.Outcome, old.Detail, old.SettledAt = rec.Outcome, rec.Detail, rec.SettledAt
	if !rec.ExpiresAt.IsZero() {
		old.ExpiresAt = rec.ExpiresAt
	}
	s.records[rec.Key] = old
	return nil
}

// ReadResponse implements enforce.Store.
func (s *Store) ReadResponse(_ context.Context, key string, at time.Time) (ipguard.ResponseRecord, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.FailClaims {
		return ipguard.ResponseRecord{}, false, ipguard.Errorf(ipguard.EUnavailable, "dynamodb: get response %s: service unavailable", key)
	}
	r, ok := s.records[key]
	if !ok || !r.ExpiresAt.After(at) {
		return ipguard.ResponseRecord{}, false, nil
	}
	return r, true, nil
}

// AddViolations implements enforce.Store.
func (s *Store) AddViolations(_ context.Context, userID string, ids []int64, at, since time.Time) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.violations == nil {
		s.violations = map[string]map[int64]time.Time{}
	}
	v := s.violations[userID]
	if v == nil {
		v = map[int64]time.Time{}
		s.violations[userID] = v
	}
	for _, id := range ids {
		if _, ok := v[id]; !ok {
			v[id] = at
		}
	}
	n := 0
	for _, t := range v {
		if !t.Before(since) {
			n++
		}
	}
	return n, nil
}

// Record returns the record of key, if any.
func (s *Store) Record(key string) (ipguard.ResponseRecord, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.records[key]
	return r, ok
}

// StoreContract checks the promises of enforce.Store on stores made by
// newStore (each call a fresh, empty one).
func StoreContract(t *testing.T, newStore func(t *testing.T) enforce.Store) {
	ctx := context.Background()
	t0 := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	rec := func(key, token string, at time.Time) ipguard.ResponseRecord {
		return ipguard.ResponseRecord{Key: key, Token: token, UserID: "u1", Action: "end-session",
			ClaimedAt: at, ExpiresAt: at.Add(time.Hour)}
	}

	t.Run("the first claim wins and a second gets the record", func(t *testing.T) {
		s := newStore(t)
		got, ok, err := s.ClaimResponse(ctx, rec("event#1", "a", t0))
		if err != nil || !ok || got.Token != "a" {
			t.Fatalf("first claim = %+v, %v, %v; want it taken", got, ok, err)
		}
		got, ok, err = s.ClaimResponse(ctx, rec("event#1", "b", t0.Add(time.Minute)))
		if err != nil || ok {
			t.Fatalf("second claim ok = %v, err = %v; want false, nil", ok, err)
		}
		if got.Token != "a" || got.UserID != "u1" || got.Action != "end-session" || got.Settled() || !got.ClaimedAt.Equal(t0) {
			t.Errorf("second claim returned %+v; want the first, unsettled", got)
		}
	})

	t.Run("a settled record returns its outcome to later claims", func(t *testing.T) {
		s := newStore(t)
		r := rec("event#2", "a", t0)
		if _, ok, err := s.ClaimResponse(ctx, r); !ok || err != nil {
			t.Fatalf("claim: %v, %v", ok, err)
		}
		r.Outcome, r.Detail, r.SettledAt = "failed", "HTTP 503", t0.Add(2*time.Second)
		if err := s.SettleResponse(ctx, r); err != nil {
			t.Fatal(err)
		}
		got, ok, err := s.ClaimResponse(ctx, rec("event#2", "b", t0.Add(time.Minute)))
		if ok || err != nil {
			t.Fatalf("claim after settle: %v, %v", ok, err)
		}
		if got.Outcome != "failed" || got.Detail != "HTTP 503" || !got.SettledAt.Equal(t0.Add(2*time.Second)) || got.Token != "a" {
			t.Errorf("record %+v", got)
		}
	})

	t.Run("settling with another token or no record is a conflict", func(t *testing.T) {
		s := newStore(t)
		r := rec("event#3", "a", t0)
		if _, _, err := s.ClaimResponse(ctx, r); err != nil {
			t.Fatal(err)
		}
		other := r
		other.Token, other.Outcome = "b", "ended"
		if err := s.SettleResponse(ctx, other); ipguard.ErrorCode(err) != ipguard.EConflict {
			t.Errorf("settle with another token: %v; want EConflict", err)
		}
		none := rec("event#404", "a", t0)
		none.Outcome = "ended"
		if err := s.SettleResponse(ctx, none); ipguard.ErrorCode(err) != ipguard.EConflict {
			t.Errorf("settle without a record: %v; want EConflict", err)
		}
		got, _, _ := s.ClaimResponse(ctx, rec("event#3", "c", t0))
		if got.Settled() {
			t.Errorf("a refused settle changed the record: %+v", got)
		}
	})

	t.Run("a read returns the live record, settled or not, and writes nothing", func(t *testing.T) {
		s := newStore(t)
		if _, ok, err := s.ReadResponse(ctx, "event#6", t0); ok || err != nil {
			t.Fatalf("read of no record: %v, %v; want false, nil", ok, err)
		}
		r := rec("event#6", "a", t0)
		if _, ok, err := s.ClaimResponse(ctx, r); !ok || err != nil {
			t.Fatalf("claim: %v, %v", ok, err)
		}
		got, ok, err := s.ReadResponse(ctx, "event#6", t0.Add(time.Minute))
		if err != nil || !ok || got.Token != "a" || got.UserID != "u1" || got.Action != "end-session" || got.Settled() {
			t.Fatalf("read of a claim = %+v, %v, %v; want it, unsettled", got, ok, err)
		}
		r.Outcome, r.Detail, r.SettledAt = "ended", "", t0.Add(time.Second)
		if err := s.SettleResponse(ctx, r); err != nil {
			t.Fatal(err)
		}
		got, ok, err = s.ReadResponse(ctx, "event#6", t0.Add(time.Minute))
		if err != nil || !ok || got.Outcome != "ended" || !got.SettledAt.Equal(t0.Add(time.Second)) {
			t.Fatalf("read of a settled record = %+v, %v, %v", got, ok, err)
		}
		if _, ok, err := s.ReadResponse(ctx, "event#6", t0.Add(time.Hour)); ok || err != nil {
			t.Errorf("read at expiry: %v, %v; want false, nil", ok, err)
		}
		if _, ok, _ := s.ReadResponse(ctx, "event#7", t0); ok {
			t.Error("a read created a record")
		}
		if _, ok, err := s.ClaimResponse(ctx, rec("event#7", "b", t0)); !ok || err != nil {
			t.Errorf("claim after a read of nothing: %v, %v; want it taken", ok, err)
		}
	})

	t.Run("an expired record can be claimed again", func(t *testing.T) {
		s := newStore(t)
		if _, ok, _ := s.ClaimResponse(ctx, rec("disable#u1", "a", t0)); !ok {
			t.Fatal("first claim refused")
		}
		if _, ok, err := s.ClaimResponse(ctx, rec("disable#u1", "b", t0.Add(time.Hour))); !ok || err != nil {
			t.Errorf("claim at expiry: %v, %v; want it taken", ok, err)
		}
	})

	// claimUntil claims key for token "a" at t0 until expires, or stops
	// the test.
	claimUntil := func(t *testing.T, s enforce.Store, key string, expires time.Time) ipguard.ResponseRecord {
		t.Helper()
		r := rec(key, "a", t0)
		r.ExpiresAt = expires
		if _, ok, err := s.ClaimResponse(ctx, r); !ok || err != nil {
			t.Fatalf("claim of %s: %v, %v", key, ok, err)
		}
		return r
	}

	t.Run("a settle moves the expiry when it names one", func(t *testing.T) {
		s := newStore(t)
		r := claimUntil(t, s, "disable#u1", t0.Add(24*time.Hour))
		// Settled to expire at once (a failed disable): claimable again.
		r.Outcome, r.Detail, r.SettledAt, r.ExpiresAt = "failed", "HTTP 503", t0.Add(2*time.Second), t0.Add(2*time.Second)
		if err := s.SettleResponse(ctx, r); err != nil {
			t.Fatal(err)
		}
		if _, ok, err := s.ReadResponse(ctx, "disable#u1", t0.Add(time.Minute)); ok || err != nil {
			t.Errorf("read after the settled expiry: %v, %v; want false, nil", ok, err)
		}
		if _, ok, err := s.ClaimResponse(ctx, rec("disable#u1", "b", t0.Add(time.Minute))); !ok || err != nil {
			t.Errorf("claim after the settled expiry: %v, %v; want it taken", ok, err)
		}
		// A settle without an expiry keeps the claim's.
		e := rec("event#8", "a", t0)
		if _, ok, err := s.ClaimResponse(ctx, e); !ok || err != nil {
			t.Fatalf("claim: %v, %v", ok, err)
		}
		e.Outcome, e.SettledAt, e.ExpiresAt = "ended", t0.Add(time.Second), time.Time{}
		if err := s.SettleResponse(ctx, e); err != nil {
			t.Fatal(err)
		}
		if got, ok, err := s.ReadResponse(ctx, "event#8", t0.Add(59*time.Minute)); !ok || err != nil || got.Outcome != "ended" {
			t.Errorf("read before the claim's expiry: %+v, %v, %v; want it settled", got, ok, err)
		}
	})

	t.Run("a settle lengthens a short claim to the expiry it names", func(t *testing.T) {
		s := newStore(t)
		// A disable is claimed for minutes and held 24 hours once its
		// outcome is recorded.
		r := claimUntil(t, s, "disable#u2", t0.Add(2*time.Minute))
		r.Outcome, r.SettledAt, r.ExpiresAt = "disabled", t0.Add(time.Second), t0.Add(24*time.Hour)
		if err := s.SettleResponse(ctx, r); err != nil {
			t.Fatal(err)
		}
		later := t0.Add(23 * time.Hour)
		if got, ok, err := s.ReadResponse(ctx, "disable#u2", later); !ok || err != nil || got.Outcome != "disabled" || !got.ExpiresAt.Equal(t0.Add(24*time.Hour)) {
			t.Errorf("read after the claim's own expiry: %+v, %v, %v; want it held 24 h", got, ok, err)
		}
		if got, ok, err := s.ClaimResponse(ctx, rec("disable#u2", "b", later)); ok || err != nil || got.Token != "a" {
			t.Errorf("claim within the lengthened expiry: %+v, %v, %v; want the settled record", got, ok, err)
		}
		// Unsettled, the short claim expires on its own.
		claimUntil(t, s, "disable#u3", t0.Add(2*time.Minute))
		if _, ok, err := s.ClaimResponse(ctx, rec("disable#u3", "b", t0.Add(5*time.Minute))); !ok || err != nil {
			t.Errorf("claim after an unsettled short claim expired: %v, %v; want it taken", ok, err)
		}
	})

	t.Run("of concurrent claims exactly one wins", func(t *testing.T) {
		s := newStore(t)
		const n = 8
		var wg sync.WaitGroup
		wins := make(chan string, n)
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				token := string(rune('a' + i))
				if _, ok, err := s.ClaimResponse(ctx, rec("event#5", token, t0)); err != nil {
					t.Error(err)
				} else if ok {
					wins <- token
				}
			}(i)
		}
		wg.Wait()
		close(wins)
		if len(wins) != 1 {
			t.Errorf("%d claims won; want exactly 1", len(wins))
		}
	})

	t.Run("violations count distinct ids within the window", func(t *testing.T) {
		s := newStore(t)
		steps := []struct {
			ids   []int64
			at    time.Time
			since time.Time
			want  int
		}{
			{[]int64{1}, t0, t0.Add(-24 * time.Hour), 1},
			{[]int64{1, 2}, t0.Add(time.Hour), t0.Add(-23 * time.Hour), 2},         // 1 again counts once
			{nil, t0.Add(time.Hour), t0.Add(-23 * time.Hour), 2},                   // nothing new
			{[]int64{3, 3}, t0.Add(25 * time.Hour), t0.Add(time.Hour), 2},          // 1 fell out of the window; 3 once
			{[]int64{4}, t0.Add(25 * time.Hour), t0.Add(25 * time.Hour), 2},        // since = at counts 3 and 4
			{[]int64{5}, t0.Add(50 * time.Hour), t0.Add(50*time.Hour + 1), 0},      // since after everything
			{[]int64{6, 7, 8}, t0.Add(100 * time.Hour), t0.Add(76 * time.Hour), 3}, // all old ones out
		}
		for i, st := range steps {
			got, err := s.AddViolations(ctx, "u1", st.ids, st.at, st.since)
			if err != nil || got != st.want {
				t.Fatalf("step %d AddViolations(%v) = %d, %v; want %d", i, st.ids, got, err, st.want)
			}
		}
		if got, err := s.AddViolations(ctx, "u2", []int64{1}, t0, t0.Add(-time.Hour)); got != 1 || err != nil {
			t.Errorf("another user: %d, %v; want 1 (users are counted apart)", got, err)
		}
	})
}
