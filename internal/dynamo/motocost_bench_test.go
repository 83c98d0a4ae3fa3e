package dynamo_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"ipguard/internal/dynamo"
	"ipguard/internal/ipguard"
	"ipguard/internal/onboard"
	"ipguard/internal/testbed/localaws"
)

// BenchmarkOnboardCallsOnMoto times, one at a time, each DynamoDB call of
// the onboarding path against moto (the stand-in the load test runs on)
// with 100 users stored and a portal state of 100 entries: the floor that
// moto, not the code, sets on a change (README, Onboarding throughput).
// The reads of every user come before the writes that add users.
func BenchmarkOnboardCallsOnMoto(b *testing.B) {
	db := dynamodb.NewFromConfig(localaws.MotoConfigT(b))
	localaws.TableT(b, db, "bench")
	s := dynamo.New(db, "bench")
	ctx := context.Background()
	now := time.Now().UTC()
	var seen []ipguard.Restriction
	for i := range 100 {
		u := ipguard.User{ID: fmt.Sprintf("load-%03d", i), Email: fmt.Sprintf("load%d@example.com", i),
			Entries: []string{fmt.Sprintf("198.18.0.%d", i+1)}, CreatedAt: now, UpdatedAt: now, Rev: 1}
		if ok, err := s.PutUserIf(ctx, u, 0); err != nil || !ok {
			b.Fatal(ok, err)
		}
		seen = append(seen, ipguard.Restriction{IP: u.Entries[0]})
	}
	if _, err := s.BumpVersion(ctx); err != nil {
		b.Fatal(err)
	}
	st := ipguard.PortalState{Applied: 1, Owned: []string{}, LastSeen: seen, Reconciled: true, LastReconcile: now}
	for _, r := range seen {
		st.Owned = append(st.Owned, r.IP)
	}
	if err := s.PutPortalState(ctx, st); err != nil {
		b.Fatal(err)
	}
	calls := []struct {
		name string
		call func(i int) error
	}{
		{"GetUser", func(int) error { _, _, err := s.GetUser(ctx, "load-007"); return err }},
		{"Offboarded", func(int) error { _, _, err := s.Offboarded(ctx, "load-x", now); return err }},
		{"ChangeRead", func(int) error { _, err := s.ChangeRead(ctx, "load-007", now); return err }},
		{"PortalState", func(int) error { _, err := s.PortalState(ctx); return err }},
		{"PortalStateAndLease", func(int) error { _, _, err := s.PortalStateAndLease(ctx, onboard.LeaseName, now); return err }},
		{"AllUsers", func(int) error { _, err := s.AllUsers(ctx); return err }},
		{"PutUserIf", func(i int) error {
			_, err := s.PutUserIf(ctx, ipguard.User{ID: fmt.Sprintf("new-%d", i), Email: "n@example.com", Entries: []string{"198.19.0.1"}, CreatedAt: now, UpdatedAt: now, Rev: 1}, 0)
			return err
		}},
		{"BumpVersion", func(int) error { _, err := s.BumpVersion(ctx); return err }},
		{"PutPortalState", func(int) error { return s.PutPortalState(ctx, st) }},
		{"TryAcquireLease", func(i int) error {
			_, err := s.TryAcquireLease(ctx, "bench", fmt.Sprint(i), now.Add(time.Minute), now.Add(time.Duration(i)*time.Hour))
			return err
		}},
	}
	for _, c := range calls {
		b.Run(c.name, func(b *testing.B) {
			i := 0
			for b.Loop() {
				i++
				if err := c.call(i); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
