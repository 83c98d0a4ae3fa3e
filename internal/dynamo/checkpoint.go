package dynamo

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Checkpoint returns the instant up to which the audit has finished, with ok
// false if no audit has recorded one yet. The read is strongly consistent.
func (s *Store) Checkpoint(ctx context.Context) (until time.Time, ok bool, err error) {
	const op = "get audit checkpoint"
	item, err := s.getItem(ctx, op, checkpointPK)
	if err != nil {
		return time.Time{}, false, err
	}
	v, ok, err := getS(item, "until")
	if err != nil {
		return time.Time{}, false, s.corrupt(op, err)
	}
	if !ok {
		return time.Time{}, false, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, false, s.corrupt(op, fmt.Errorf("attribute until: %w", err))
	}
	return t.UTC(), true, nil
}

// SetCheckpoint records t (kept to the nanosecond, in UTC) as the instant up
// to which the audit has finished, replacing any earlier value
// unconditionally: the caller holds the audit lease.
func (s *Store) SetCheckpoint(ctx context.Context, t time.Time) error {
	return s.putItem(ctx, "set audit checkpoint", map[string]types.AttributeValue{
		"pk":        str(checkpointPK),
		"until":     str(t.UTC().Format(time.RFC3339Nano)),
		"updatedAt": str(time.Now().UTC().Format(time.RFC3339)),
	})
}
