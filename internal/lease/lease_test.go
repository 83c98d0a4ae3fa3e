package lease_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"ipguard/internal/ipguard"
	"ipguard/internal/lease"
	"ipguard/internal/lease/leasetest"
)

func newMem() *leasetest.Backend { return &leasetest.Backend{} }

// The shared fake keeps the promises the DynamoDB store keeps.
func TestFakeBackendKeepsTheContract(t *testing.T) {
	leasetest.BackendContract(t, func(*testing.T) lease.Backend { return newMem() })
}

// mustAcquire takes the lease name on b, failing the test if it cannot.
func mustAcquire(t *testing.T, b lease.Backend, name string, o lease.Options) *lease.Held {
	t.Helper()
	h, err := lease.Acquire(context.Background(), b, name, o)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestAcquireRelease(t *testing.T) {
	b := newMem()
	ctx := context.Background()
	h := mustAcquire(t, b, "portal", lease.Options{})
	if _, err := lease.Acquire(ctx, b, "portal", lease.Options{}); ipguard.ErrorCode(err) != ipguard.EConflict {
		t.Fatalf("second Acquire err = %v, want EConflict", err)
	}
	if err := h.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := lease.Acquire(ctx, b, "portal", lease.Options{}); err != nil {
		t.Fatalf("Acquire after Release: %v", err)
	}
}

func TestLeaseUntilFollowsDeadline(t *testing.T) {
	b := newMem()
	dl := time.Now().Add(40 * time.Second)
	ctx, cancel := context.WithDeadline(context.Background(), dl)
	defer cancel()
	h, err := lease.Acquire(ctx, b, "x", lease.Options{Grace: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if !h.Until.Equal(dl.Add(3 * time.Second)) {
		t.Errorf("Until = %v, want deadline+grace %v", h.Until, dl.Add(3*time.Second))
	}
}

func TestExpiredLeaseIsTakenOver(t *testing.T) {
	b := newMem()
	now := time.Now()
	clock := func() time.Time { return now }
	mustAcquire(t, b, "x", lease.Options{Duration: time.Minute, Now: clock})
	now = now.Add(2 * time.Minute) // the holder crashed; its lease ran out
	if _, err := lease.Acquire(context.Background(), b, "x", lease.Options{Now: clock}); err != nil {
		t.Fatalf("expired lease not taken over: %v", err)
	}
}

func TestWaitsForRelease(t *testing.T) {
	b := newMem()
	ctx := context.Background()
	h := mustAcquire(t, b, "x", lease.Options{})
	go func() {
		time.Sleep(50 * time.Millisecond)
		h.Release(ctx)
	}()
	if _, err := lease.Acquire(ctx, b, "x", lease.Options{Wait: 10 * time.Second}); err != nil {
		t.Fatalf("waiter did not get the released lease: %v", err)
	}
}

func TestStoreFailureIsReturned(t *testing.T) {
	b := newMem()
	b.Err = errors.New("boom")
	if _, err := lease.Acquire(context.Background(), b, "x", lease.Options{Wait: time.Second}); err == nil || err.Error() != "boom" {
		t.Fatalf("err = %v", err)
	}
}

func TestMutualExclusion(t *testing.T) {
	b := newMem()
	var mu sync.Mutex
	inside, maxInside := 0, 0
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h, err := lease.Acquire(context.Background(), b, "x", lease.Options{Wait: 30 * time.Second, MaxPoll: 20 * time.Millisecond})
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			inside++
			if inside > maxInside {
				maxInside = inside
			}
			mu.Unlock()
			time.Sleep(time.Millisecond)
			mu.Lock()
			inside--
			mu.Unlock()
			h.Release(context.Background())
		}()
	}
	wg.Wait()
	if maxInside != 1 {
		t.Fatalf("%d holders at once", maxInside)
	}
}

// ctxBackend fails like a real store once the context has ended.
type ctxBackend struct{ *leasetest.Backend }

func (c ctxBackend) TryAcquireLease(ctx context.Context, name, owner string, until, now time.Time) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	return c.Backend.TryAcquireLease(ctx, name, owner, until, now)
}

func TestWaitIntoTheDeadlineIsAConflict(t *testing.T) {
	b := ctxBackend{newMem()}
	mustAcquire(t, b, "x", lease.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 80*time.Millisecond)
	defer cancel()
	frozen := time.Now()
	// A frozen clock never reaches the give-up time: only the deadline ends the wait.
	_, err := lease.Acquire(ctx, b, "x", lease.Options{Wait: time.Hour, Now: func() time.Time { return frozen }})
	if ipguard.ErrorCode(err) != ipguard.EConflict || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v (code %s), want Conflict wrapping the deadline", err, ipguard.ErrorCode(err))
	}
}

func TestCancelledWaitReturnsTheContextError(t *testing.T) {
	b := newMem()
	mustAcquire(t, b, "x", lease.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(30*time.Millisecond, cancel)
	if _, err := lease.Acquire(ctx, b, "x", lease.Options{Wait: time.Hour}); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}
