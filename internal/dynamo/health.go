package dynamo

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"ipguard/internal/keywatch"
)

// Items that make the functions' health visible (see DEVELOPERS.md):
//
//	keyalert#<keyId>#<expiry epoch s>#<days>  an api_key_expiring alert sent; expiresAt = key expiry + 30 days
//	key#audit                                 the audit key's last description (data: JSON), never the key
//	lastrun#audit                             the last audit run's outcome (data: JSON)
const (
	keyAlertPrefix = "keyalert#"
	keyPK          = "key#audit"
	lastRunPK      = "lastrun#audit"
)

func keyAlertPK(k keywatch.Key, threshold int) string {
	return fmt.Sprintf("%s%s#%d#%d", keyAlertPrefix, k.ID, k.ExpiresAt.Unix(), threshold)
}

// KeyAlertSent implements keywatch.Store: whether the alert for threshold
// days before k's expiry was recorded (strongly consistent read).
func (s *Store) KeyAlertSent(ctx context.Context, k keywatch.Key, threshold int) (bool, error) {
	item, err := s.getItem(ctx, "get key alert record", keyAlertPK(k, threshold))
	return len(item) > 0, err
}

// RecordKeyAlert implements keywatch.Store; the record is kept until 30
// days after the key's expiry.
func (s *Store) RecordKeyAlert(ctx context.Context, k keywatch.Key, threshold int, at time.Time) error {
	return s.putItem(ctx, "put key alert record", map[string]types.AttributeValue{
		"pk":        str(keyAlertPK(k, threshold)),
		"alertedAt": str(at.UTC().Format(time.RFC3339)),
		"expiresAt": num(k.ExpiresAt.Add(30 * 24 * time.Hour).Unix()),
	})
}

// storedKey is the JSON of key#audit.
type storedKey struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Postfix   string    `json:"postfix"`
	ExpiresAt time.Time `json:"expiresAt,omitzero"`
	IsActive  bool      `json:"isActive"`
	Seen      time.Time `json:"seen"`
}

// SaveKey implements keywatch.Store.
func (s *Store) SaveKey(ctx context.Context, k keywatch.Key, seen time.Time) error {
	return s.putJSON(ctx, "save key description", keyPK, storedKey{k.ID, k.Name, k.Postfix, k.ExpiresAt.UTC(), k.IsActive, seen.UTC()})
}

// LastKey implements keywatch.Store.
func (s *Store) LastKey(ctx context.Context) (keywatch.Key, time.Time, bool, error) {
	var v storedKey
	ok, err := s.getJSON(ctx, "get key description", keyPK, &v)
	if err != nil || !ok {
		return keywatch.Key{}, time.Time{}, false, err
	}
	return keywatch.Key{ID: v.ID, Name: v.Name, Postfix: v.Postfix, ExpiresAt: v.ExpiresAt, IsActive: v.IsActive}, v.Seen, true, nil
}

// SaveLastRun keeps v (the last audit run's outcome) as JSON.
func (s *Store) SaveLastRun(ctx context.Context, v any) error {
	return s.putJSON(ctx, "save last run", lastRunPK, v)
}

// LastRun decodes the last SaveLastRun value into v; ok is false if none.
func (s *Store) LastRun(ctx context.Context, v any) (bool, error) {
	return s.getJSON(ctx, "get last run", lastRunPK, v)
}

// CountUsers returns how many users are stored (a paginated Scan that
// counts, reading no allowlists).
func (s *Store) CountUsers(ctx context.Context) (int, error) {
	n := 0
	var start map[string]types.AttributeValue
	for {
		out, err := s.api.Scan(ctx, &dynamodb.ScanInput{
			TableName:                 aws.String(s.table),
			Select:                    types.SelectCount,
			FilterExpression:          aws.String("begins_with(pk, :p)"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":p": str(userPrefix)},
			ExclusiveStartKey:         start,
			ConsistentRead:            aws.Bool(true),
		})
		if err != nil {
			return 0, s.fail("count users", err)
		}
		n += int(out.Count)
		if len(out.LastEvaluatedKey) == 0 {
			return n, nil
		}
		start = out.LastEvaluatedKey
	}
}

func (s *Store) putJSON(ctx context.Context, op, pk string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return s.corrupt(op, err)
	}
	return s.putItem(ctx, op, map[string]types.AttributeValue{
		"pk": str(pk), "data": str(string(b)),
		"updatedAt": str(time.Now().UTC().Format(time.RFC3339)),
	})
}

func (s *Store) getJSON(ctx context.Context, op, pk string, v any) (bool, error) {
	item, err := s.getItem(ctx, op, pk)
	if err != nil {
		return false, err
	}
	data, ok, err := getS(item, "data")
	if err != nil {
		return false, s.corrupt(op, err)
	}
	if !ok {
		return false, nil
	}
	if err := json.Unmarshal([]byte(data), v); err != nil {
		return false, s.corrupt(op, err)
	}
	return true, nil
}
