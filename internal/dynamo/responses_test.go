package dynamo_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"ipguard/internal/dynamo"
	"ipguard/internal/enforce"
	"ipguard/internal/enforce/enforcetest"
	"ipguard/internal/testbed/localaws"
)

var _ enforce.Store = (*dynamo.Store)(nil)

// TestEnforcementRecordsKeepTheContract holds the DynamoDB store to the same
// table of promises as the in-memory fake the enforce tests use.
func TestEnforcementRecordsKeepTheContract(t *testing.T) {
	localaws.MotoT(t)
	cfg, err := localaws.Config(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	db := dynamodb.NewFromConfig(cfg)
	n := 0
	enforcetest.StoreContract(t, func(t *testing.T) enforce.Store {
		n++
		table := fmt.Sprintf("enforce-%d", n)
		createTable(t, db, table)
		return dynamo.New(db, table)
	})
}
