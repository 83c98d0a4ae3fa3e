package dynamo

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Alerted reports which of the login event ids have been alerted on: the map
// holds true for each id with a record whose expiresAt is after now.Unix();
// other ids are absent. A record past its expiry counts as not alerted even
// before TTL deletes it, and so does a record that cannot be read. Reads are
// strongly consistent, 100 keys per call, with unprocessed keys retried with
// backoff at most 10 times per call (fewer when ctx ends first).
func (s *Store) Alerted(ctx context.Context, ids []int64, now time.Time) (map[int64]bool, error) {
	alerted := make(map[int64]bool)
	pks := make([]string, len(ids))
	for i, id := range ids {
		pks[i] = alertedPK(id)
	}
	err := s.getItems(ctx, "alerted records", pks, func(item map[string]types.AttributeValue) {
		// A record that no longer parses counts as not alerted: the worst
		// outcome is one more alert, never a silenced one.
		pk, _, err := getS(item, "pk")
		if err != nil {
			return
		}
		digits, isAlerted := strings.CutPrefix(pk, alertedPrefix)
		id, err := strconv.ParseInt(digits, 10, 64)
		if !isAlerted || err != nil {
			return
		}
		if exp, ok, err := getN(item, "expiresAt"); err == nil && ok && exp > now.Unix() {
			alerted[id] = true
		}
	})
	if err != nil {
		return nil, err
	}
	return alerted, nil
}

// RecordAlerted records that the login events ids were alerted on at at; the
// records count for keep (expiresAt = at+keep, after which TTL deletes them).
// Writing an id again replaces its record. Writes go 25 per call, with
// unprocessed items retried with backoff at most 10 times per call (fewer when ctx ends first); on error some ids may be recorded.
func (s *Store) RecordAlerted(ctx context.Context, ids []int64, at time.Time, keep time.Duration) error {
	distinct := dedupe(ids)
	reqs := make([]types.WriteRequest, len(distinct))
	for i, id := range distinct {
		reqs[i] = types.WriteRequest{PutRequest: &types.PutRequest{Item: map[string]types.AttributeValue{
			"pk":        str(alertedPK(id)),
			"eventId":   num(id),
			"alertedAt": str(at.UTC().Format(time.RFC3339)),
			"expiresAt": num(at.Add(keep).Unix()),
		}}}
	}
	return s.writeItems(ctx, "record alerted events", reqs, 1)
}

func alertedPK(id int64) string { return alertedPrefix + strconv.FormatInt(id, 10) }

// dedupe returns ids without repeats, in first-seen order (DynamoDB rejects a
// batch with a key twice).
func dedupe(ids []int64) []int64 {
	seen := make(map[int64]bool, len(ids))
	out := make([]int64, 0, len(ids))
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}
