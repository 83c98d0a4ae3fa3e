package dynamo_test

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"ipguard/internal/dynamo"
	"ipguard/internal/ipguard"
	"ipguard/internal/onboard"
	"ipguard/internal/testbed/localaws"
)

// tearing answers the first BatchGetItem that asks for the portal state's
// #sent item without it (unprocessed, as DynamoDB may under load) and runs
// between before answering: a write that lands between the batch's reads
// of the two items, which the store's retry of the unprocessed key then
// reads. Any other call goes through.
type tearing struct {
	dynamo.API
	between func()
}

func (c *tearing) BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
	if c.between == nil {
		return c.API.BatchGetItem(ctx, in, opts...)
	}
	var table string
	var ka types.KeysAndAttributes
	for table, ka = range in.RequestItems {
	}
	var send, keep []map[string]types.AttributeValue
	for _, k := range ka.Keys {
		if pk, _ := k["pk"].(*types.AttributeValueMemberS); pk != nil && pk.Value == "state#portal-allowlist#sent" {
			keep = append(keep, k)
		} else {
			send = append(send, k)
		}
	}
	if len(keep) == 0 {
		return c.API.BatchGetItem(ctx, in, opts...)
	}
	first := ka
	first.Keys = send
	out, err := c.API.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: map[string]types.KeysAndAttributes{table: first}}, opts...)
	if err != nil {
		return nil, err
	}
	between := c.between
	c.between = nil
	between()
	left := ka
	left.Keys = keep
	out.UnprocessedKeys = map[string]types.KeysAndAttributes{table: left}
	return out, nil
}

// marked is a portal state whose two parts say the same thing: the list
// last seen and the PUT in flight are both ip and then n-1 more entries
// (n large: lists the store cannot keep in one item with the rest).
func marked(ip string, n int) ipguard.PortalState {
	l := []ipguard.Restriction{{IP: ip}}
	for i := 1; i < n; i++ {
		l = append(l, ipguard.Restriction{IP: fmt.Sprintf("2001:db8:aaaa:bbbb:cccc:dddd:%04x:%04x", i/65536, i%65536)})
	}
	return ipguard.PortalState{Applied: 1, Reconciled: true, LastSeen: l, Sent: l, SentOutcome: ipguard.SentUnknown}
}

// bigList is a list length whose state (list last seen and PUT in flight)
// takes more than half of a DynamoDB item: a store that keeps a small state
// in one item must use both for it.
const bigList = 3000

// The portal state is two items written in one transaction; a read of both
// with BatchGetItem is consistent per item only. A write that landed
// between the reads of the two items gave the list last seen of one write
// with the PUT in flight of the other (before: returned as is). Each read
// now returns one write's whole state: the earlier or the later.
func TestPortalStateIsNeverReadTorn(t *testing.T) {
	const table = "torn"
	db := localaws.MotoTableT(t, table)
	ctx := context.Background()
	writer := dynamo.New(db, table)
	reads := []struct {
		name string
		read func(*dynamo.Store) (ipguard.PortalState, error)
	}{
		{"PortalState", func(s *dynamo.Store) (ipguard.PortalState, error) { return s.PortalState(ctx) }},
		{"ChangeRead", func(s *dynamo.Store) (ipguard.PortalState, error) {
			cs, err := s.ChangeRead(ctx, "u1", time.Now())
			return cs.State, err
		}},
	}
	i := 0
	for _, size := range []int{1, bigList} {
		for _, r := range reads {
			i++
			t.Run(fmt.Sprintf("%s, lists of %d", r.name, size), func(t *testing.T) {
				tornRead(t, writer, db, table, r.read, marked(fmt.Sprintf("203.0.113.%d", 2*i+1), size), marked(fmt.Sprintf("203.0.113.%d", 2*i+2), size))
			})
		}
	}
}

// tornRead writes before, then reads through a store whose batch lands
// after between its reads of the two items, and checks that the read is
// one write's whole state.
func tornRead(t *testing.T, writer *dynamo.Store, db dynamo.API, table string, read func(*dynamo.Store) (ipguard.PortalState, error), before, after ipguard.PortalState) {
	t.Helper()
	if err := writer.PutPortalState(context.Background(), before); err != nil {
		t.Fatal(err)
	}
	api := &tearing{API: db, between: func() {
		if err := writer.PutPortalState(context.Background(), after); err != nil {
			t.Fatal(err)
		}
	}}
	got, err := read(dynamo.New(api, table))
	if err != nil {
		t.Fatal(err)
	}
	if api.between != nil {
		t.Fatal("the write did not land between the reads of the two items")
	}
	if len(got.LastSeen) != len(before.LastSeen) || len(got.Sent) != len(got.LastSeen) || got.LastSeen[0].IP != got.Sent[0].IP {
		t.Errorf("read the list last seen (%d, first %v) with the PUT in flight (%d, first %v): half of each of two writes",
			len(got.LastSeen), got.LastSeen[:min(1, len(got.LastSeen))], len(got.Sent), got.Sent[:min(1, len(got.Sent))])
	}
}

// The state item alone restored from a backup (or edited by hand) carries
// another write's id than its #sent item: no race, so reading again would
// never help. It is read (no wedged reconciler), the state item winning and
// the #sent item set aside, as after a rollback to a version before the
// split; the next write pairs them again.
func TestPortalStateItemsNotWrittenTogetherAreRead(t *testing.T) {
	const table = "tornrestored"
	db := localaws.MotoTableT(t, table)
	ctx := context.Background()
	s := dynamo.New(db, table)
	if err := s.PutPortalState(ctx, marked("203.0.113.1", bigList)); err != nil {
		t.Fatal(err)
	}
	_, err := db.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(table),
		Key:                       map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "state#portal-allowlist"}},
		UpdateExpression:          aws.String("SET writeId = :w"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":w": &types.AttributeValueMemberS{Value: "restored"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.PortalState(ctx)
	if err != nil || len(got.LastSeen) != bigList || got.Sent != nil || got.Applied != 1 {
		t.Fatalf("state = %+v, %v; want the state item's fields, nothing in flight", got, err)
	}
	if err := s.PutPortalState(ctx, marked("203.0.113.2", 1)); err != nil {
		t.Fatal(err)
	}
	if got, err := s.PortalState(ctx); err != nil || len(got.Sent) != 1 || got.Sent[0].IP != "203.0.113.2" {
		t.Fatalf("after the next write: %+v, %v; want its PUT in flight", got, err)
	}
}

// keyByKey reads a BatchGetItem's keys one call each, in order, letting
// other goroutines run between them: a batch as DynamoDB may serve it (each
// item read consistently, not the batch as one), where moto, behind the
// harness's one-call-at-a-time front, reads a batch as one. Under it the
// store is held to onboardcontract.SnapshotContract.
type keyByKey struct{ dynamo.API }

func (k keyByKey) BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
	out := &dynamodb.BatchGetItemOutput{Responses: map[string][]map[string]types.AttributeValue{}}
	for table, ka := range in.RequestItems {
		for _, key := range ka.Keys {
			one := ka
			one.Keys = []map[string]types.AttributeValue{key}
			got, err := k.API.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: map[string]types.KeysAndAttributes{table: one}}, opts...)
			if err != nil {
				return nil, err
			}
			out.Responses[table] = append(out.Responses[table], got.Responses[table]...)
			runtime.Gosched()
		}
	}
	return out, nil
}

var _ onboard.ChangeReader = (*dynamo.Store)(nil)
