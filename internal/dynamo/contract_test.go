package dynamo_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"ipguard/internal/audit"
	"ipguard/internal/audit/audittest/auditcontract"
	"ipguard/internal/behaviour"
	"ipguard/internal/behaviour/behaviourtest"
	"ipguard/internal/behaviour/windowtest"
	"ipguard/internal/dynamo"
	"ipguard/internal/enforce"
	"ipguard/internal/enforce/enforcetest"
	"ipguard/internal/ipguard"
	"ipguard/internal/lease"
	"ipguard/internal/lease/leasetest"
	"ipguard/internal/onboard"
	"ipguard/internal/onboard/onboardtest/onboardcontract"
	"ipguard/internal/testbed/localaws"
)

// The DynamoDB store is held to the same tables of promises as the
// in-memory fakes every other package's tests use: one contract per port.
func TestStoreKeepsEveryPortsContract(t *testing.T) {
	db := motoDB(t)
	newStore := freshStores(db)
	t.Run("lease.Backend", func(t *testing.T) {
		leasetest.BackendContract(t, func(t *testing.T) lease.Backend { return newStore(t) })
	})
	t.Run("audit.Store", func(t *testing.T) {
		auditcontract.StoreContract(t, func(t *testing.T) (audit.Store, func(ipguard.User)) {
			s := newStore(t)
			return s, func(u ipguard.User) {
				if err := s.PutUser(context.Background(), u); err != nil {
					t.Fatal(err)
				}
			}
		})
	})
	t.Run("onboard.Store", func(t *testing.T) {
		onboardcontract.StoreContract(t, func(t *testing.T) onboard.Store { return newStore(t) })
	})
	// Read with each batch served key by key, as DynamoDB may (moto behind
	// the harness reads a batch as one): the portal state is still read whole.
	t.Run("onboard portal state snapshot", func(t *testing.T) {
		onboardcontract.SnapshotContract(t, func(t *testing.T) onboard.Store {
			return dynamo.New(keyByKey{db}, dynamo.Table(newStore(t)))
		})
	})
	t.Run("onboard fast path", func(t *testing.T) {
		onboardcontract.FastPathContract(t, func(t *testing.T) onboard.Store { return newStore(t) })
		onboardcontract.OneReadContract(t, func(t *testing.T) onboard.Store { return newStore(t) })
	})
	t.Run("behaviour.Store and EpisodeStore", func(t *testing.T) {
		behaviourtest.Contract(t, func(t *testing.T) behaviourtest.Stores { return newStore(t) })
	})
	t.Run("behaviour.WindowStore", func(t *testing.T) {
		windowtest.Contract(t, func(t *testing.T) behaviour.WindowStore { return newStore(t) })
	})
	t.Run("enforce.Store", func(t *testing.T) {
		enforcetest.StoreContract(t, func(t *testing.T) enforce.Store { return newStore(t) })
	})
	// A waiting onboarding's poll: the portal state and whether the lease
	// is free, in one consistent read.
	t.Run("onboard.StateLeasePeeker", func(t *testing.T) {
		ctx := context.Background()
		s := newStore(t)
		var _ onboard.StateLeasePeeker = s
		now := time.Now()
		peek := func() (int64, bool) {
			t.Helper()
			st, free, err := s.PortalStateAndLease(ctx, onboard.LeaseName, now)
			if err != nil {
				t.Fatal(err)
			}
			return st.Version, free
		}
		if v, free := peek(); v != 0 || !free {
			t.Errorf("empty table: version %d, free %v", v, free)
		}
		if _, err := s.BumpVersion(ctx); err != nil {
			t.Fatal(err)
		}
		if ok, err := s.TryAcquireLease(ctx, onboard.LeaseName, "a", now.Add(time.Minute), now); !ok || err != nil {
			t.Fatal(ok, err)
		}
		if v, free := peek(); v != 1 || free {
			t.Errorf("held: version %d, free %v", v, free)
		}
		// The poll also says since when the holder has held it, and the
		// state how long the last pass held it (onboard.HolderWatcher).
		var _ onboard.HolderWatcher = s
		if err := s.PutPortalState(ctx, ipguard.PortalState{LastPass: 420 * time.Millisecond}); err != nil {
			t.Fatal(err)
		}
		if st, free, since, err := s.PortalStateAndHolder(ctx, onboard.LeaseName, now); err != nil || free || since.UnixMilli() != now.UnixMilli() || st.LastPass != 420*time.Millisecond {
			t.Errorf("held: since %v (want %v), last pass %s, free %v, %v", since, now, st.LastPass, free, err)
		}
		now = now.Add(2 * time.Minute) // the lease ended
		if _, free := peek(); !free {
			t.Error("an expired lease is not free")
		}
		if _, _, since, err := s.PortalStateAndHolder(ctx, onboard.LeaseName, now); err != nil || !since.IsZero() {
			t.Errorf("free: since %v, %v; want zero", since, err)
		}
	})
}

// motoDB starts a moto server for t and returns a DynamoDB client of it.
func motoDB(t *testing.T) *dynamodb.Client {
	t.Helper()
	return dynamodb.NewFromConfig(localaws.MotoConfigT(t))
}

// freshStores returns a maker of stores, each on a table of its own shaped
// as DEVELOPERS.md describes.
func freshStores(db *dynamodb.Client) func(t *testing.T) *dynamo.Store {
	n := 0
	return func(t *testing.T) *dynamo.Store {
		t.Helper()
		n++
		return tableStore(t, db, fmt.Sprintf("contract-%d", n))
	}
}

// tableStore creates the table named table on db, shaped as DEVELOPERS.md
// describes, and returns a Store over it.
func tableStore(t *testing.T, db *dynamodb.Client, table string) *dynamo.Store {
	t.Helper()
	localaws.TableT(t, db, table)
	return dynamo.New(db, table)
}
