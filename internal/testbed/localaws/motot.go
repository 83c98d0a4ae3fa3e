package localaws

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// The one way a test asks for moto and the project's table, so that no
// package's tests write the set-up again.

// MotoConfigT starts a moto server for t (MotoT: skipped only under
// -short, stopped when t ends) and returns the AWS configuration the
// functions would load, pointing at it (Config). A failure is t.Fatal.
func MotoConfigT(t testing.TB) aws.Config {
	t.Helper()
	MotoT(t)
	cfg, err := Config(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// MotoTableT starts a moto server for t and returns a DynamoDB client of it
// with table created as TableT makes it.
func MotoTableT(t testing.TB, table string) *dynamodb.Client {
	t.Helper()
	db := dynamodb.NewFromConfig(MotoConfigT(t))
	TableT(t, db, table)
	return db
}

// TableT creates table on db shaped as the template's table (and
// DEVELOPERS.md) describes: one string hash key pk, on demand, TTL on
// expiresAt. A failure is t.Fatal naming the table.
func TableT(t testing.TB, db *dynamodb.Client, table string) {
	t.Helper()
	ctx := context.Background()
	_, err := db.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String(table),
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("pk"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("pk"), KeyType: types.KeyTypeHash}},
		BillingMode:          types.BillingModePayPerRequest,
	})
	if err != nil {
		t.Fatalf("create table %s: %v", table, err)
	}
	_, err = db.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
		TableName:               aws.String(table),
		TimeToLiveSpecification: &types.TimeToLiveSpecification{AttributeName: aws.String("expiresAt"), Enabled: aws.Bool(true)},
	})
	if err != nil {
		t.Fatalf("enable TTL on %s: %v", table, err)
	}
}
