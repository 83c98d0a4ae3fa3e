package dynamo_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"ipguard/internal/audit/audittest"
	"ipguard/internal/dynamo"
	"ipguard/internal/ipguard"
	"ipguard/internal/onboard/onboardtest"
	"ipguard/internal/testbed/localaws"
)

// TestAuditStoreKeepsTheContract holds the DynamoDB store to the same table
// of promises as the in-memory audit store the audit tests use.
func TestAuditStoreKeepsTheContract(t *testing.T) {
	localaws.MotoT(t)
	cfg, err := localaws.Config(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	db := dynamodb.NewFromConfig(cfg)
	n := 0
	audittest.StoreContract(t, func(t *testing.T) (audittest.AuditStore, func(ipguard.User)) {
		n++
		table := fmt.Sprintf("audit-%d", n)
		createTable(t, db, table)
		s := dynamo.New(db, table)
		return s, func(u ipguard.User) {
			if err := s.PutUser(context.Background(), u); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// TestOnboardStoreKeepsTheContract holds the DynamoDB store to the same
// table of promises as the in-memory onboarding store the onboard tests use.
func TestOnboardStoreKeepsTheContract(t *testing.T) {
	localaws.MotoT(t)
	cfg, err := localaws.Config(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	db := dynamodb.NewFromConfig(cfg)
	n := 0
	onboardtest.StoreContract(t, func(t *testing.T) onboardtest.OnboardStore {
		n++
		table := fmt.Sprintf("onboard-%d", n)
		createTable(t, db, table)
		return dynamo.New(db, table)
	})
}
