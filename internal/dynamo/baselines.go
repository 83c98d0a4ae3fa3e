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
	return readUserItems(ctx, s, "baselines", BaselinePrefix, ids, false, func(b *behaviour.Baseline, id string) { b.UserID = id })
}

// readUserItems reads the JSON `data` of the "<prefix><id>" items of ids
// (each id once, its id set by setID), one BatchGetItem per 100 ids. An item that cannot be
// decoded, or with skipExpired one whose expiresAt has passed but that
// DynamoDB has not deleted yet, is treated as absent.
func readUserItems[T any](ctx context.Context, s *Store, noun, prefix string, ids []string, skipExpired bool, setID func(*T, string)) (map[string]T, error) {
	out := map[string]T{}
	now := time.Now().Unix()
	err := s.getItems(ctx, noun, prefixed(prefix, ids), func(it map[string]types.AttributeValue) {
		if exp, ok, _ := getN(it, "expiresAt"); skipExpired && ok && exp < now {
			return
		}
		pk, _, _ := getS(it, "pk")
		data, ok, _ := getS(it, "data")
		if !ok {
			return
		}
		var v T
		if json.Unmarshal([]byte(data), &v) != nil {
			return
		}
		id := strings.TrimPrefix(pk, prefix)
		setID(&v, id)
		out[id] = v
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// jsonItemPut is the put of the item pk with its JSON data.
func jsonItemPut(pk string, data []byte, now, expires time.Time) types.WriteRequest {
	return types.WriteRequest{PutRequest: &types.PutRequest{Item: map[string]types.AttributeValue{
		"pk":        str(pk),
		"data":      str(string(data)),
		"updatedAt": str(now.Format(time.RFC3339)),
		"expiresAt": num(expires.Unix()),
	}}}
}

// saveConcurrency is how many BatchWriteItem calls SaveBaselines has in flight.
const saveConcurrency = 4

// SaveBaselines implements behaviour.Store: BatchWriteItem in chunks of 25,
// up to 4 at once. On error some baselines may be written (each whole).
func (s *Store) SaveBaselines(ctx context.Context, bs []behaviour.Baseline) error {
	return writeUserItems(ctx, s, "baseline", BaselinePrefix, bs, func(b behaviour.Baseline, now time.Time) (string, time.Time) {
		keepFrom := b.Newest
		if keepFrom.IsZero() {
			keepFrom = now
		}
		return b.UserID, keepFrom.Add(baselineKeep)
	}, saveConcurrency)
}

// writeUserItems writes each of xs as the JSON `data` of its user's
// "<prefix><id>" item, expiring when user says (given the time of writing),
// concurrency batches at once. An x without a user id, or that does not
// encode, is an error before anything is written.
func writeUserItems[T any](ctx context.Context, s *Store, noun, prefix string, xs []T, user func(x T, now time.Time) (id string, expires time.Time), concurrency int) error {
	now := time.Now().UTC()
	reqs := make([]types.WriteRequest, 0, len(xs))
	for _, x := range xs {
		id, expires := user(x, now)
		if id == "" {
			return s.corrupt("write "+noun, fmt.Errorf("a %s without a user id", noun))
		}
		data, err := json.Marshal(x)
		if err != nil {
			return s.corrupt("write "+noun+" "+id, err)
		}
		reqs = append(reqs, jsonItemPut(prefix+id, data, now, expires))
	}
	return s.writeItems(ctx, "write "+noun+"s", reqs, concurrency)
}
