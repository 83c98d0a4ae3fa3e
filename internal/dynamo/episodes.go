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

// EpisodePrefix keys a user's open episodes of logins outside the
// allowlist (#21 §2): "episode#<userId>", with `data` S (the JSON of
// behaviour.Episodes: at most behaviour.MaxEpisodes episodes, a few KB),
// `updatedAt` S and `expiresAt` N (EPISODE_HOURS after the newest episode's
// last miss: a closed episode goes away on its own).
const EpisodePrefix = behaviour.EpisodePrefix

// Episodes implements behaviour.EpisodeStore: one BatchGetItem per 100
// ids. An item that cannot be decoded, or has expired but is not deleted
// yet, is treated as absent.
func (s *Store) Episodes(ctx context.Context, ids []string) (map[string]behaviour.Episodes, error) {
	out := map[string]behaviour.Episodes{}
	seen := map[string]bool{}
	now := time.Now().Unix()
	var keys []map[string]types.AttributeValue
	flush := func() error {
		if len(keys) == 0 {
			return nil
		}
		items, err := s.batchGet(ctx, "read episodes", keys)
		if err != nil {
			return err
		}
		for _, it := range items {
			if exp, ok, _ := getN(it, "expiresAt"); ok && exp < now {
				continue
			}
			pk, _, _ := getS(it, "pk")
			data, ok, _ := getS(it, "data")
			if !ok {
				continue
			}
			var es behaviour.Episodes
			if json.Unmarshal([]byte(data), &es) != nil {
				continue
			}
			id := strings.TrimPrefix(pk, EpisodePrefix)
			es.UserID = id
			out[id] = es
		}
		keys = keys[:0]
		return nil
	}
	for _, id := range ids {
		if id == "" || seen[id] {
			continue
		}
		seen[id] = true
		keys = append(keys, key(EpisodePrefix+id))
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

// SaveEpisodes implements behaviour.EpisodeStore: BatchWriteItem in chunks
// of 25. A user whose episodes all closed has an item that expires now.
func (s *Store) SaveEpisodes(ctx context.Context, es []behaviour.Episodes, hours int) error {
	now := time.Now().UTC()
	var reqs []types.WriteRequest
	for _, e := range es {
		if e.UserID == "" {
			return s.corrupt("write episodes", fmt.Errorf("episodes without a user id"))
		}
		data, err := json.Marshal(e)
		if err != nil {
			return s.corrupt("write episodes "+e.UserID, err)
		}
		exp := e.Expires(hours)
		if exp.IsZero() {
			exp = now
		}
		reqs = append(reqs, types.WriteRequest{PutRequest: &types.PutRequest{Item: map[string]types.AttributeValue{
			"pk":        str(EpisodePrefix + e.UserID),
			"data":      str(string(data)),
			"updatedAt": str(now.Format(time.RFC3339)),
			"expiresAt": num(exp.Unix()),
		}}})
		if len(reqs) == maxBatchWrite {
			if err := s.batchWrite(ctx, "write episodes", reqs); err != nil {
				return err
			}
			reqs = nil
		}
	}
	if len(reqs) > 0 {
		return s.batchWrite(ctx, "write episodes", reqs)
	}
	return nil
}
