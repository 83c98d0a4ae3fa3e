package dynamo

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"ipguard/internal/ipguard"
)

// Key prefixes of the revised JSON items (#18): the findings bus outbox and
// the daily digests.
const (
	OutboxPrefix = "outbox#" // outbox#bus: events the findings bus refused, sent again by the next audit run
	DigestPrefix = "digest#" // digest#<yyyy-mm-dd>: the low-severity findings of one digest day
)

// LoadRevised decodes the JSON item pk (attribute "data") into v and
// returns its revision ("rev"); rev 0 and ok false when there is none.
// Strongly consistent.
func (s *Store) LoadRevised(ctx context.Context, pk string, v any) (rev int64, ok bool, err error) {
	item, err := s.getItem(ctx, "get "+pk, pk)
	if err != nil || len(item) == 0 {
		return 0, false, err
	}
	if n, isN := item["rev"].(*types.AttributeValueMemberN); isN {
		if rev, err = strconv.ParseInt(n.Value, 10, 64); err != nil {
			return 0, false, s.corrupt("get "+pk, err)
		}
	}
	data, ok, err := getS(item, "data")
	if err != nil || !ok {
		return rev, false, s.corrupt("get "+pk, errors.Join(err, errors.New("no data")))
	}
	if err := json.Unmarshal([]byte(data), v); err != nil {
		return rev, false, s.corrupt("get "+pk, err)
	}
	return rev, true, nil
}

// SaveRevised writes v as the JSON item pk with revision rev+1, only if its
// revision is still rev (0: the item must not exist); otherwise it fails
// with EConflict and writes nothing. expires (zero: never) sets expiresAt.
func (s *Store) SaveRevised(ctx context.Context, pk string, v any, rev int64, expires time.Time) error {
	b, err := json.Marshal(v)
	if err != nil {
		return s.corrupt("put "+pk, err)
	}
	item := map[string]types.AttributeValue{
		"pk": str(pk), "data": str(string(b)), "rev": num(rev + 1),
		"updatedAt": str(time.Now().UTC().Format(time.RFC3339)),
	}
	if !expires.IsZero() {
		item["expiresAt"] = num(expires.Unix())
	}
	in := &dynamodb.PutItemInput{TableName: aws.String(s.table), Item: item}
	if rev == 0 {
		in.ConditionExpression = aws.String("attribute_not_exists(pk)")
	} else {
		in.ConditionExpression = aws.String("rev = :rev")
		in.ExpressionAttributeValues = map[string]types.AttributeValue{":rev": num(rev)}
	}
	if _, err := s.api.PutItem(ctx, in); err != nil {
		if isConditionFailed(err) {
			return ipguard.Errorf(ipguard.EConflict, "dynamodb: put %s: changed meanwhile (revision is no longer %d)", pk, rev)
		}
		return s.fail("put "+pk, err)
	}
	return nil
}
