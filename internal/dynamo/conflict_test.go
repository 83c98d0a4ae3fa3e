package dynamo_test

import (
	"cmp"
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"ipguard/internal/config"
	"ipguard/internal/dynamo"
	"ipguard/internal/ipguard"
)

// conflicting answers the first conflicts writes to the state item as
// DynamoDB does while a concurrent write holds it: a transaction is
// cancelled (TransactionConflict), a single write is TransactionConflictException.
type conflicting struct {
	dynamo.API
	conflicts int
	calls     int
	reason    string // the cancellation reason of the transaction; TransactionConflict when ""
}

func (c *conflicting) TransactWriteItems(context.Context, *dynamodb.TransactWriteItemsInput, ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	c.calls++
	if c.calls <= c.conflicts {
		return nil, &types.TransactionCanceledException{Message: aws.String("Transaction cancelled"),
			CancellationReasons: []types.CancellationReason{{Code: aws.String(cmp.Or(c.reason, "TransactionConflict"))}, {Code: aws.String("None")}}}
	}
	return &dynamodb.TransactWriteItemsOutput{}, nil
}

func (c *conflicting) UpdateItem(context.Context, *dynamodb.UpdateItemInput, ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	c.calls++
	if c.calls <= c.conflicts {
		return nil, &types.TransactionConflictException{Message: aws.String("Transaction is ongoing for the item")}
	}
	return &dynamodb.UpdateItemOutput{Attributes: map[string]types.AttributeValue{"version": &types.AttributeValueMemberN{Value: "7"}}}, nil
}

// Every change bumps the version (an UpdateItem of the state item) while a
// reconcile may be writing the state in a transaction: DynamoDB refuses
// whichever comes second as a conflict, which the SDK does not retry. A
// conflict is a passing race, not a failed change or reconcile: both
// writes are tried again (a bounded number of times).
func TestPortalStateWritesRideOutTransactionConflicts(t *testing.T) {
	ops := []struct {
		name   string
		reason string
		do     func(*dynamo.Store) error
	}{
		{"PutPortalState (one item)", "", func(s *dynamo.Store) error {
			return s.PutPortalState(context.Background(), ipguard.PortalState{Applied: 1})
		}},
		{"PutPortalState (two items, a transaction)", "", func(s *dynamo.Store) error {
			return s.PutPortalState(context.Background(), largestState(config.MaxPortalEntries))
		}},
		// A transaction throttled is cancelled (the SDK retries only a
		// throttled single write): as a passing outage, never a bug.
		{"PutPortalState (two items) throttled", "ThrottlingError", func(s *dynamo.Store) error {
			return s.PutPortalState(context.Background(), largestState(config.MaxPortalEntries))
		}},
		{"BumpVersion", "", func(s *dynamo.Store) error { _, err := s.BumpVersion(context.Background()); return err }},
	}
	for _, op := range ops {
		t.Run(op.name, func(t *testing.T) {
			api := &conflicting{conflicts: 2, reason: op.reason}
			if err := op.do(dynamo.New(api, "t")); err != nil || api.calls != 3 {
				t.Fatalf("err = %v after %d calls; want success on the third (two conflicts)", err, api.calls)
			}
			// Past the bound it is an outage that a later try may end
			// (DependencyUnavailable), not an unexpected answer.
			api = &conflicting{conflicts: 1000, reason: op.reason}
			if err := op.do(dynamo.New(api, "t")); ipguard.ErrorCode(err) != ipguard.EUnavailable || api.calls > 20 {
				t.Fatalf("err = %v (%s) after %d calls; want DependencyUnavailable after a bounded number of tries", err, ipguard.ErrorCode(err), api.calls)
			}
		})
	}
}
