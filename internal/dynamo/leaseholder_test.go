package dynamo_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"ipguard/internal/dynamo"
	"ipguard/internal/ipguard"
	"ipguard/internal/lease"
	"ipguard/internal/testbed/localaws"
)

// A refused take of the lease says, from the refusal itself (no read of its
// own), since when the holder has held it: a waiting change sleeps until the
// holder's pass is due to end instead of pausing and polling to learn it.
// A free lease is taken as before, and a refusal never takes it.
func TestRefusedLeaseTakeSaysSinceWhenItIsHeld(t *testing.T) {
	localaws.MotoT(t)
	cfg, err := localaws.Config(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	db := dynamodb.NewFromConfig(cfg)
	localaws.TableT(t, db, "lease-holder")
	s := dynamo.New(db, "lease-holder")
	ctx := context.Background()
	taken := time.Now().Add(-300 * time.Millisecond).Truncate(time.Millisecond)
	ok, since, err := s.TryAcquireLeaseOrHolder(ctx, "portal-allowlist", "first", taken.Add(time.Minute), taken)
	if err != nil || !ok || !since.IsZero() {
		t.Fatalf("take a free lease: ok %v, since %v, %v; want taken, no holder", ok, since, err)
	}
	now := time.Now()
	ok, since, err = s.TryAcquireLeaseOrHolder(ctx, "portal-allowlist", "second", now.Add(time.Minute), now)
	if err != nil || ok {
		t.Fatalf("take a held lease: ok %v, %v; want refused", ok, err)
	}
	if !since.Equal(taken) {
		t.Errorf("refused take says held since %v, want %v (when the holder took it)", since, taken)
	}
	// Through lease.Acquire: its EConflict carries it.
	_, err = lease.Acquire(ctx, s, "portal-allowlist", lease.Options{})
	if ipguard.ErrorCode(err) != ipguard.EConflict || !lease.HeldSince(err).Equal(taken) {
		t.Errorf("Acquire of a held lease: %v, held since %v; want Conflict since %v", err, lease.HeldSince(err), taken)
	}
	// The refusal took nothing: the first holder's record stands.
	if _, free, holder, err := s.PortalStateAndHolder(ctx, "portal-allowlist", time.Now()); err != nil || free || !holder.Equal(taken) {
		t.Errorf("after the refusals: free %v, held since %v, %v; want still the first holder's since %v", free, holder, err, taken)
	}
}
