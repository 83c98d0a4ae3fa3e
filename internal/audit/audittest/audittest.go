// Package audittest holds the one in-memory audit store every test uses and
// StoreContract, the table of promises both it and the DynamoDB store must
// pass, so that no test passes against store behaviour production never has
// (alerted records that never expire, errors nobody can classify).
//
// It does not import package audit, so that audit's own (in-package) tests
// can use it; AuditStore below is audit.Store's method set, and an external
// test in audit checks that the two stay the same set.
package audittest

import (
	"context"
	"maps"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"ipguard/internal/ipguard"
	"ipguard/internal/lease/leasetest"
)

// AuditStore is the method set of audit.Store, the port Store stands in for.
// Its promises are audit.Store's: every method returns a classified error;
// Users returns the stored users among ids (absent ids absent, undecodable
// items with Unreadable set); AllUsers returns every stored user, seeing
// every write completed before the call; Progress
// returns the saved progress (zero before the first save), strongly
// consistent; SetProgress replaces it; Alerted reports the ids whose alerted
// record has not expired at now; RecordAlerted records ids as alerted at at,
// for keep, idempotently; AlertedSpans returns, per address, the alerted
// burst spans remembered at now; RecordAlertedSpan remembers one for keep.
type AuditStore interface {
	Users(ctx context.Context, ids []string) (map[string]ipguard.User, error)
	AllUsers(ctx context.Context) ([]ipguard.User, error)
	Progress(ctx context.Context) (ipguard.AuditProgress, error)
	SetProgress(ctx context.Context, p ipguard.AuditProgress) error
	Alerted(ctx context.Context, ids []int64, now time.Time) (map[int64]bool, error)
	RecordAlerted(ctx context.Context, ids []int64, at time.Time, keep time.Duration) error
	AlertedSpans(ctx context.Context, ips []string, now time.Time) (map[string][]ipguard.TimeSpan, error)
	RecordAlertedSpan(ctx context.Context, ip string, span ipguard.TimeSpan, at time.Time, keep time.Duration) error
}

// maxSpans is how many spans one address keeps (the newest-expiring), as in
// the DynamoDB store.
const maxSpans = 500

// Store is the in-memory audit store, and the lease backend an audit run
// holds (the embedded leasetest.Backend), as the DynamoDB store is both.
// Expiry is kept as DynamoDB keeps it: in whole epoch seconds, compared with
// now by the reader. Make it with NewStore; it is safe for concurrent use.
// The exported fields may be read and set between calls, not during them.
type Store struct {
	leasetest.Backend

	mu sync.Mutex
	// UserItems are the stored users by id.
	UserItems map[string]ipguard.User
	// Saved is the saved progress; Saves counts SetProgress calls.
	Saved ipguard.AuditProgress
	Saves int
	// AlertedUntil holds, per alerted event id, when its record expires.
	AlertedUntil map[int64]time.Time
	spans        map[string][]storedSpan
	// Writes counts RecordAlerted and RecordAlertedSpan calls.
	Writes int
	// FailWrites makes RecordAlerted and RecordAlertedSpan fail with an
	// EUnavailable error, as an unavailable table would.
	FailWrites bool
}

type storedSpan struct {
	ipguard.TimeSpan
	expires int64 // epoch seconds
}

var _ AuditStore = (*Store)(nil)

// NewStore returns an empty store holding users.
func NewStore(users ...ipguard.User) *Store {
	s := &Store{UserItems: map[string]ipguard.User{}, AlertedUntil: map[int64]time.Time{}, spans: map[string][]storedSpan{}}
	for _, u := range users {
		s.UserItems[u.ID] = u
	}
	return s
}

// PutUser stores u (a test's seed; the audit never writes users).
func (s *Store) PutUser(u ipguard.User) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.UserItems[u.ID] = u
}

// Users implements audit.Store.
func (s *Store) Users(_ context.Context, ids []string) (map[string]ipguard.User, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]ipguard.User{}
	for _, id := range ids {
		if u, ok := s.UserItems[id]; ok {
			out[id] = u
		}
	}
	return out, nil
}

// AllUsers implements audit.Store.
func (s *Store) AllUsers(context.Context) ([]ipguard.User, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Collect(maps.Values(s.UserItems)), nil
}

// Progress implements audit.Store.
func (s *Store) Progress(context.Context) (ipguard.AuditProgress, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return copyProgress(s.Saved), nil
}

// SetProgress implements audit.Store.
func (s *Store) SetProgress(_ context.Context, p ipguard.AuditProgress) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Saved = copyProgress(p)
	s.Saves++
	return nil
}

func copyProgress(p ipguard.AuditProgress) ipguard.AuditProgress {
	if p.Cursor != nil {
		c := *p.Cursor
		p.Cursor = &c
	}
	return p
}

// Alerted implements audit.Store.
func (s *Store) Alerted(_ context.Context, ids []int64, now time.Time) (map[int64]bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[int64]bool{}
	for _, id := range ids {
		if exp, ok := s.AlertedUntil[id]; ok && exp.Unix() > now.Unix() {
			out[id] = true
		}
	}
	return out, nil
}

// RecordAlerted implements audit.Store.
func (s *Store) RecordAlerted(_ context.Context, ids []int64, at time.Time, keep time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.FailWrites {
		return unavailable("record alerted events")
	}
	s.Writes++
	for _, id := range ids {
		s.AlertedUntil[id] = time.Unix(at.Add(keep).Unix(), 0).UTC()
	}
	return nil
}

// AlertedSpans implements audit.Store.
func (s *Store) AlertedSpans(_ context.Context, ips []string, now time.Time) (map[string][]ipguard.TimeSpan, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string][]ipguard.TimeSpan{}
	for _, ip := range ips {
		if _, done := out[ip]; done {
			continue
		}
		for _, sp := range s.spans[ip] {
			if sp.expires > now.Unix() {
				out[ip] = append(out[ip], sp.TimeSpan)
			}
		}
	}
	return out, nil
}

// RecordAlertedSpan implements audit.Store. Like DynamoDB it keeps whole
// seconds: From rounded down, To up.
func (s *Store) RecordAlertedSpan(_ context.Context, ip string, span ipguard.TimeSpan, at time.Time, keep time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.FailWrites {
		return unavailable("record alerted burst from " + ip)
	}
	s.Writes++
	var live []storedSpan
	for _, sp := range s.spans[ip] {
		if sp.expires > at.Unix() {
			live = append(live, sp)
		}
	}
	to := span.To.Unix()
	if span.To.Nanosecond() > 0 {
		to++
	}
	live = append(live, storedSpan{
		TimeSpan: ipguard.TimeSpan{From: time.Unix(span.From.Unix(), 0).UTC(), To: time.Unix(to, 0).UTC()},
		expires:  at.Add(keep).Unix(),
	})
	sort.SliceStable(live, func(i, j int) bool { return live[i].expires > live[j].expires })
	s.spans[ip] = live[:min(len(live), maxSpans)]
	return nil
}

func unavailable(op string) error {
	return ipguard.Errorf(ipguard.EUnavailable, "dynamodb: %s: service unavailable", op)
}

// StoreContract checks the promises of audit.Store on stores made by
// newStore (each call a fresh, empty one), which also returns how to seed a
// user into it.
func StoreContract(t *testing.T, newStore func(t *testing.T) (AuditStore, func(ipguard.User))) {
	ctx := context.Background()
	t0 := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)

	t.Run("users: the stored ones among ids, and all of them", func(t *testing.T) {
		s, put := newStore(t)
		alice := ipguard.User{ID: "alice", Email: "alice@example.com", Entries: []string{"203.0.113.10"}, CreatedAt: t0, UpdatedAt: t0}
		bob := ipguard.User{ID: "bob", Email: "bob@example.com", Entries: []string{"198.51.100.0/30"}, CreatedAt: t0, UpdatedAt: t0}
		put(alice)
		put(bob)
		got, err := s.Users(ctx, []string{"alice", "nobody", "alice"})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got["alice"].Email != alice.Email || !slices.Equal(got["alice"].Entries, alice.Entries) {
			t.Errorf("Users = %+v; want alice alone", got)
		}
		if got, err := s.Users(ctx, nil); err != nil || len(got) != 0 {
			t.Errorf("Users(none) = %v, %v; want empty", got, err)
		}
		all, err := s.AllUsers(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, u := range all {
			ids = append(ids, u.ID)
		}
		slices.Sort(ids)
		if !slices.Equal(ids, []string{"alice", "bob"}) {
			t.Errorf("AllUsers ids = %v; want alice, bob", ids)
		}
	})

	t.Run("progress: zero first, then what was saved, cursor and all", func(t *testing.T) {
		s, _ := newStore(t)
		p, err := s.Progress(ctx)
		if err != nil || !p.Until.IsZero() || p.Cursor != nil {
			t.Fatalf("Progress before any save = %+v, %v; want zero", p, err)
		}
		want := ipguard.AuditProgress{Until: t0.Add(123456789), Cursor: &ipguard.AuditCursor{
			From: t0.Add(time.Second), To: t0.Add(15 * time.Minute), Below: t0.Add(10*time.Minute + 1)}}
		if err := s.SetProgress(ctx, want); err != nil {
			t.Fatal(err)
		}
		want.Cursor.Below = t0 // the store holds a copy, not the caller's cursor
		got, err := s.Progress(ctx)
		if err != nil || !got.Until.Equal(t0.Add(123456789)) || got.Cursor == nil ||
			!got.Cursor.From.Equal(t0.Add(time.Second)) || !got.Cursor.To.Equal(t0.Add(15*time.Minute)) || !got.Cursor.Below.Equal(t0.Add(10*time.Minute+1)) {
			t.Fatalf("Progress = %+v (cursor %+v), %v", got, got.Cursor, err)
		}
		if err := s.SetProgress(ctx, ipguard.AuditProgress{Until: t0.Add(15 * time.Minute)}); err != nil {
			t.Fatal(err)
		}
		if got, err := s.Progress(ctx); err != nil || got.Cursor != nil || !got.Until.Equal(t0.Add(15*time.Minute)) {
			t.Errorf("Progress after a save without cursor = %+v, %v; want the cursor gone", got, err)
		}
	})

	t.Run("alerted records count until they expire", func(t *testing.T) {
		s, _ := newStore(t)
		if err := s.RecordAlerted(ctx, []int64{1, 2, 2}, t0, time.Hour); err != nil {
			t.Fatal(err)
		}
		if err := s.RecordAlerted(ctx, []int64{1}, t0, time.Hour); err != nil {
			t.Fatalf("recording again (idempotent): %v", err)
		}
		if err := s.RecordAlerted(ctx, []int64{3}, t0, 2*time.Hour); err != nil {
			t.Fatal(err)
		}
		if err := s.RecordAlerted(ctx, nil, t0, time.Hour); err != nil {
			t.Fatalf("recording nothing: %v", err)
		}
		steps := []struct {
			name string
			now  time.Time
			want []int64
		}{
			{"while they live", t0.Add(59 * time.Minute), []int64{1, 2, 3}},
			{"a second before the end", t0.Add(time.Hour - time.Second), []int64{1, 2, 3}},
			{"at the end", t0.Add(time.Hour), []int64{3}},
			{"after the longer keep", t0.Add(2 * time.Hour), nil},
		}
		for _, st := range steps {
			got, err := s.Alerted(ctx, []int64{1, 2, 3, 4, 1}, st.now)
			if err != nil {
				t.Fatalf("%s: %v", st.name, err)
			}
			var ids []int64
			for id, ok := range got {
				if ok {
					ids = append(ids, id)
				}
			}
			slices.Sort(ids)
			if !slices.Equal(ids, st.want) {
				t.Errorf("%s: alerted %v; want %v", st.name, ids, st.want)
			}
		}
		if got, err := s.Alerted(ctx, nil, t0); err != nil || len(got) != 0 {
			t.Errorf("Alerted(none) = %v, %v; want empty", got, err)
		}
	})

	t.Run("alerted spans: whole seconds, per address, until they expire", func(t *testing.T) {
		s, _ := newStore(t)
		a := ipguard.TimeSpan{From: t0.Add(500 * time.Millisecond), To: t0.Add(10*time.Second + 1)}
		b := ipguard.TimeSpan{From: t0.Add(time.Minute), To: t0.Add(2 * time.Minute)}
		if err := s.RecordAlertedSpan(ctx, "198.51.100.7", a, t0, time.Hour); err != nil {
			t.Fatal(err)
		}
		if err := s.RecordAlertedSpan(ctx, "198.51.100.7", b, t0.Add(time.Minute), 2*time.Hour); err != nil {
			t.Fatal(err)
		}
		got, err := s.AlertedSpans(ctx, []string{"198.51.100.7", "203.0.113.9", "198.51.100.7"}, t0.Add(30*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := got["203.0.113.9"]; ok || len(got) != 1 {
			t.Errorf("AlertedSpans = %v; want the one address with spans", got)
		}
		wantA := ipguard.TimeSpan{From: t0, To: t0.Add(11 * time.Second)}
		spans := got["198.51.100.7"]
		if len(spans) != 2 || !hasSpan(spans, wantA) || !hasSpan(spans, b) {
			t.Errorf("spans = %v; want %v (whole seconds, widened) and %v", spans, wantA, b)
		}
		got, err = s.AlertedSpans(ctx, []string{"198.51.100.7"}, t0.Add(time.Hour))
		if err != nil || len(got["198.51.100.7"]) != 1 || !hasSpan(got["198.51.100.7"], b) {
			t.Errorf("after the first expired: %v, %v; want only %v", got, err, b)
		}
		got, err = s.AlertedSpans(ctx, []string{"198.51.100.7"}, t0.Add(3*time.Hour))
		if err != nil || len(got["198.51.100.7"]) != 0 {
			t.Errorf("after both expired: %v, %v; want none", got, err)
		}
	})
}

func hasSpan(spans []ipguard.TimeSpan, want ipguard.TimeSpan) bool {
	for _, s := range spans {
		if s.From.Equal(want.From) && s.To.Equal(want.To) {
			return true
		}
	}
	return false
}
