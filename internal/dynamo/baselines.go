package dynamo

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"ipguard/internal/behaviour"
)

// BaselinePrefix keys a user's behaviour baseline: "baseline#<userId>",
// with `data` S (the JSON of behaviour.Baseline, bounded: at most 50
// countries and 50 devices of at most 64 characters, a few KB), `updatedAt`
// S and `expiresAt` N (a year after the user's newest login: the baseline
// of someone who left goes away on its own).
const BaselinePrefix = behaviour.BaselinePrefix

// baselineKeep is how long a baseline outlives its user's newest login.
const baselineKeep = 365 * 24 * time.Hour

// Baselines implements behaviour.Store: one BatchGetItem per 100 ids.
// An item that cannot be decoded is treated as absent (the user learns
// again) rather than failing the run.
func (s *Store) Baselines(ctx context.Context, ids []string) (map[string]behaviour.Baseline, error) {
	out := map[string]behaviour.Baseline{}
	seen := map[string]bool{}
	var keys []map[string]types.AttributeValue
	flush := func() error {
		if len(keys) == 0 {
			return nil
		}
		items, err := s.batchGet(ctx, "read baselines", keys)
		if err != nil {
			return err
		}
		for _, it := range items {
			pk, _, _ := getS(it, "pk")
			data, ok, _ := getS(it, "data")
			if !ok {
				continue
			}
			var b behaviour.Baseline
			if json.Unmarshal([]byte(data), &b) != nil {
				continue
			}
			id := strings.TrimPrefix(pk, BaselinePrefix)
			b.UserID = id
			out[id] = b
		}
		keys = keys[:0]
		return nil
	}
	for _, id := range ids {
		if id == "" || seen[id] {
			continue
		}
		seen[id] = true
		keys = append(keys, key(BaselinePrefix+id))
		if len(keys) == maxBatchGet {
			if err := flush(); err != nil {
				return nil, err
			}
		}
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return out, nil
}

// SaveBaselines implements behaviour.Store: BatchWriteItem in chunks of 25.
func (s *Store) SaveBaselines(ctx context.Context, bs []behaviour.Baseline) error {
	now := time.Now().UTC()
	var reqs []types.WriteRequest
	flush := func() error {
		if len(reqs) == 0 {
			return nil
		}
		err := s.batchWrite(ctx, "write baselines", reqs)
		reqs = reqs[:0]
		return err
	}
	for _, b := range bs {
		if b.UserID == "" {
			return s.corrupt("write baseline", fmt.Errorf("a baseline without a user id"))
		}
		data, err := json.Marshal(b)
		if err != nil {
			return s.corrupt("write baseline "+b.UserID, err)
		}
		keepFrom := b.Newest
		if keepFrom.IsZero() {
			keepFrom = now
		}
		reqs = append(reqs, types.WriteRequest{PutRequest: &types.PutRequest{Item: map[string]types.AttributeValue{
			"pk":        str(BaselinePrefix + b.UserID),
			"data":      str(string(data)),
			"updatedAt": str(now.Format(time.RFC3339)),
			"expiresAt": num(keepFrom.Add(baselineKeep).Unix()),
		}}})
		if len(reqs) == maxBatchWrite {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}
