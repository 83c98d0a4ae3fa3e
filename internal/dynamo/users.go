package dynamo

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"ipguard/internal/ipguard"
)

// GetUser returns the user with id, with ok false if there is none.
// The read is strongly consistent.
func (s *Store) GetUser(ctx context.Context, id string) (u ipguard.User, ok bool, err error) {
	op := "get user " + id
	out, err := s.api.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(s.table),
		Key:            key(userPrefix + id),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return ipguard.User{}, false, s.fail(op, err)
	}
	if out.Item == nil {
		return ipguard.User{}, false, nil
	}
	u, err = decodeUser(out.Item)
	if err != nil {
		return ipguard.User{}, false, s.corrupt(op, err)
	}
	return u, true, nil
}

// PutUser replaces the whole item of u.ID with u. CreatedAt and UpdatedAt are
// stored in UTC to the second (RFC 3339); a nil Entries is stored as an
// empty list.
func (s *Store) PutUser(ctx context.Context, u ipguard.User) error {
	_, err := s.api.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(s.table),
		Item:      encodeUser(u),
	})
	if err != nil {
		return s.fail("put user "+u.ID, err)
	}
	return nil
}

// Users returns the stored users among ids, keyed by id; ids with no user
// are absent from the map. An item that cannot be decoded comes back as a
// user with only ID and Unreadable set, so one bad item cannot stop the
// audit. Duplicates in ids are read once. Reads are
// strongly consistent, 100 keys per call; keys DynamoDB leaves unprocessed
// are retried with backoff with backoff at most 10 times per call (fewer when ctx ends first).
func (s *Store) Users(ctx context.Context, ids []string) (map[string]ipguard.User, error) {
	users := make(map[string]ipguard.User, len(ids))
	seen := make(map[string]bool, len(ids))
	var keys []map[string]types.AttributeValue
	flush := func() error {
		if len(keys) == 0 {
			return nil
		}
		op := fmt.Sprintf("get %d users", len(keys))
		items, err := s.batchGet(ctx, op, keys)
		if err != nil {
			return err
		}
		for _, item := range items {
			u := decodeOrMark(item)
			users[u.ID] = u
		}
		keys = keys[:0]
		return nil
	}
	for _, id := range ids {
		if seen[id] {
			continue
		}
		seen[id] = true
		keys = append(keys, key(userPrefix+id))
		if len(keys) == maxBatchGet {
			if err := flush(); err != nil {
				return nil, err
			}
		}
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return users, nil
}

// AllUsers returns every stored user, in no particular order (an item that
// cannot be decoded: as in Users). It scans the
// whole table (all pages), so it is for the audit and the demo, not for a
// request path.
func (s *Store) AllUsers(ctx context.Context) ([]ipguard.User, error) {
	const op = "scan users"
	var users []ipguard.User
	in := &dynamodb.ScanInput{
		TableName:                 aws.String(s.table),
		FilterExpression:          aws.String("begins_with(pk, :user)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":user": str(userPrefix)},
	}
	for {
		out, err := s.api.Scan(ctx, in)
		if err != nil {
			return nil, s.fail(op, err)
		}
		for _, item := range out.Items {
			users = append(users, decodeOrMark(item))
		}
		if len(out.LastEvaluatedKey) == 0 {
			return users, nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}

func encodeUser(u ipguard.User) map[string]types.AttributeValue {
	ips := make([]types.AttributeValue, len(u.Entries))
	for i, e := range u.Entries {
		ips[i] = str(e)
	}
	return map[string]types.AttributeValue{
		"pk":         str(userPrefix + u.ID),
		"id":         str(u.ID),
		"email":      str(u.Email),
		"allowedIps": &types.AttributeValueMemberL{Value: ips},
		"createdAt":  str(u.CreatedAt.UTC().Format(time.RFC3339)),
		"updatedAt":  str(u.UpdatedAt.UTC().Format(time.RFC3339)),
	}
}

func decodeUser(item map[string]types.AttributeValue) (ipguard.User, error) {
	pk, _, err := getS(item, "pk")
	if err != nil {
		return ipguard.User{}, err
	}
	id, ok, err := getS(item, "id")
	if err != nil {
		return ipguard.User{}, fmt.Errorf("item %s: %w", pk, err)
	}
	if !ok {
		id = strings.TrimPrefix(pk, userPrefix)
	}
	u := ipguard.User{ID: id}
	if u.Email, _, err = getS(item, "email"); err != nil {
		return ipguard.User{}, fmt.Errorf("item %s: %w", pk, err)
	}
	if v, ok := item["allowedIps"]; ok {
		l, isL := v.(*types.AttributeValueMemberL)
		if !isL {
			return ipguard.User{}, fmt.Errorf("item %s: attribute allowedIps is %T, want a list", pk, v)
		}
		u.Entries = make([]string, 0, len(l.Value))
		for i, e := range l.Value {
			s, isS := e.(*types.AttributeValueMemberS)
			if !isS {
				return ipguard.User{}, fmt.Errorf("item %s: allowedIps[%d] is %T, want a string", pk, i, e)
			}
			u.Entries = append(u.Entries, s.Value)
		}
	}
	for _, f := range []struct {
		name string
		dst  *time.Time
	}{{"createdAt", &u.CreatedAt}, {"updatedAt", &u.UpdatedAt}} {
		v, ok, err := getS(item, f.name)
		if err != nil {
			return ipguard.User{}, fmt.Errorf("item %s: %w", pk, err)
		}
		if !ok || v == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return ipguard.User{}, fmt.Errorf("item %s: attribute %s: %w", pk, f.name, err)
		}
		*f.dst = t.UTC()
	}
	return u, nil
}

// decodeOrMark decodes item, or returns a user with Unreadable set.
func decodeOrMark(item map[string]types.AttributeValue) ipguard.User {
	u, err := decodeUser(item)
	if err == nil {
		return u
	}
	pk, _, _ := getS(item, "pk")
	id, _, _ := getS(item, "id")
	if id == "" {
		id = strings.TrimPrefix(pk, userPrefix)
	}
	return ipguard.User{ID: id, Unreadable: err.Error()}
}
