package dynamo

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
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

// saveConcurrency is how many BatchWriteItem calls SaveBaselines has in flight.
const saveConcurrency = 4

// SaveBaselines implements behaviour.Store: BatchWriteItem in chunks of 25,
// up to 4 at once. On error some baselines may be written (each whole).
func (s *Store) SaveBaselines(ctx context.Context, bs []behaviour.Baseline) error {
	now := time.Now().UTC()
	var chunks [][]types.WriteRequest
	var reqs []types.WriteRequest
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
			chunks, reqs = append(chunks, reqs), nil
		}
	}
	if len(reqs) > 0 {
		chunks = append(chunks, reqs)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		next  = make(chan []types.WriteRequest)
	)
	for range min(saveConcurrency, len(chunks)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range next {
				if err := s.batchWrite(ctx, "write baselines", c); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	for _, c := range chunks {
		mu.Lock()
		failed := first != nil
		mu.Unlock()
		if failed {
			break
		}
		next <- c
	}
	close(next)
	wg.Wait()
	return first
}
