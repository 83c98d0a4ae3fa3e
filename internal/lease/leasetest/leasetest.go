// Package leasetest holds the one in-memory lease.Backend every test uses and
// BackendContract, the table of promises both it and the DynamoDB store must
// pass, so that no test passes against lease behaviour production never has.
package leasetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"ipguard/internal/lease"
)

// Backend is an in-memory lease.Backend with the conditional semantics of
// the DynamoDB store: a take succeeds when nobody holds the lease, when the
// holder's lease ended before now, or when the holder is the caller (a
// resend after a lost answer); a release by anyone but the holder changes
// nothing. The zero value is ready; it is safe for concurrent use.
type Backend struct {
	mu     sync.Mutex
	leases map[string]Lease
	// Err, when set, is returned by every call, as a failing store's
	// classified error would be.
	Err error
}

// Lease is one held lease.
type Lease struct {
	Owner string
	Until time.Time
}

var _ lease.Backend = (*Backend)(nil)

// TryAcquireLease implements lease.Backend.
func (b *Backend) TryAcquireLease(_ context.Context, name, owner string, until, now time.Time) (bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.Err != nil {
		return false, b.Err
	}
	if l, ok := b.leases[name]; ok && l.Owner != owner && !l.Until.Before(now) {
		return false, nil
	}
	if b.leases == nil {
		b.leases = map[string]Lease{}
	}
	b.leases[name] = Lease{Owner: owner, Until: until}
	return true, nil
}

// ReleaseLease implements lease.Backend.
func (b *Backend) ReleaseLease(_ context.Context, name, owner string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.Err != nil {
		return b.Err
	}
	if l, ok := b.leases[name]; ok && l.Owner == owner {
		delete(b.leases, name)
	}
	return nil
}

// Hold makes owner the holder of lease name until until, as another run
// would be.
func (b *Backend) Hold(name, owner string, until time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.leases == nil {
		b.leases = map[string]Lease{}
	}
	b.leases[name] = Lease{Owner: owner, Until: until}
}

// Owner returns who holds lease name: "" when nobody does (an expired lease
// still names its last holder).
func (b *Backend) Owner(name string) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.leases[name].Owner
}

// Until returns when lease name ends (zero when nobody holds it).
func (b *Backend) Until(name string) time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.leases[name].Until
}

// BackendContract checks the promises of lease.Backend on backends made by
// newBackend (each call a fresh, empty one).
func BackendContract(t *testing.T, newBackend func(t *testing.T) lease.Backend) {
	ctx := context.Background()
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

	t.Run("acquire, held, resend, expired takeover, release", func(t *testing.T) {
		b := newBackend(t)
		take := func(name, owner string, until, now time.Time) func() (bool, error) {
			return func() (bool, error) { return b.TryAcquireLease(ctx, name, owner, until, now) }
		}
		release := func(name, owner string) func() (bool, error) {
			return func() (bool, error) { return true, b.ReleaseLease(ctx, name, owner) }
		}
		steps := []struct {
			name string
			do   func() (bool, error)
			want bool
		}{
			{"a acquires a free lease", take("audit", "a", t0.Add(time.Minute), t0), true},
			{"b cannot take it while it runs", take("audit", "b", t0.Add(2*time.Minute), t0.Add(30*time.Second)), false},
			{"b cannot take it at its very end", take("audit", "b", t0.Add(2*time.Minute), t0.Add(time.Minute)), false},
			{"a's own resend finds its own record and holds it", take("audit", "a", t0.Add(time.Minute), t0.Add(time.Second)), true},
			{"another name is independent", take("onboard", "b", t0.Add(time.Minute), t0), true},
			{"b takes it over once expired", take("audit", "b", t0.Add(3*time.Minute), t0.Add(time.Minute+time.Millisecond)), true},
			{"a's late release leaves b's lease", release("audit", "a"), true},
			{"so c still cannot take it", take("audit", "c", t0.Add(4*time.Minute), t0.Add(2*time.Minute)), false},
			{"b releases it", release("audit", "b"), true},
			{"a resent release finds nothing and is fine", release("audit", "b"), true},
			{"c takes the released lease at once", take("audit", "c", t0.Add(4*time.Minute), t0.Add(2*time.Minute)), true},
			{"releasing a lease nobody has is fine", release("nothing", "a"), true},
		}
		for _, st := range steps {
			got, err := st.do()
			if err != nil {
				t.Fatalf("%s: %v", st.name, err)
			}
			if got != st.want {
				t.Fatalf("%s: got %v, want %v", st.name, got, st.want)
			}
		}
	})

	t.Run("of concurrent acquirers exactly one wins", func(t *testing.T) {
		b := newBackend(t)
		var wg sync.WaitGroup
		var mu sync.Mutex
		var winners []string
		for i := range 20 {
			owner := fmt.Sprint("owner-", i)
			wg.Go(func() {
				ok, err := b.TryAcquireLease(ctx, "audit", owner, t0.Add(time.Minute), t0)
				if err != nil {
					t.Errorf("%s: %v", owner, err)
				}
				if ok {
					mu.Lock()
					winners = append(winners, owner)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if len(winners) != 1 {
			t.Errorf("winners %v; want exactly 1", winners)
		}
	})
}
