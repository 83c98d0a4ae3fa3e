package dynamo

import (
	"context"
	"encoding/json"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"ipguard/internal/behaviour"
)

// SprayBucketPrefix keys one minute of the failed logins password_spray
// counts across runs: "window#spray#<start unix>", with `data` S (the JSON
// of behaviour.SprayBucket: at most behaviour.MaxBucketAccounts accounts,
// each a count and its first and last date), `updatedAt` S and `expiresAt`
// N (the minute's end + behaviour.SprayKeep: twice SPRAY_WINDOW and a
// margin). A few items per minute of failed logins, never one per address
// or account (WHERE §10).
const SprayBucketPrefix = behaviour.SprayBucketPrefix

func sprayKey(start time.Time) string { return unixKey(SprayBucketPrefix, start) }

// unixKey is the key of an item of one time window: prefix and the
// window's start in unix seconds.
func unixKey(prefix string, start time.Time) string {
	return prefix + strconv.FormatInt(start.Unix(), 10)
}

// SprayBuckets implements behaviour.WindowStore: one BatchGetItem per 100
// minutes. An item that cannot be decoded is absent. One that outlived its
// expiresAt (TTL deletes late) is still read: its facts about that minute
// are true, and only runs that read logins of that minute ask for it.
func (s *Store) SprayBuckets(ctx context.Context, starts []time.Time) (map[int64]behaviour.SprayBucket, error) {
	out := map[int64]behaviour.SprayBucket{}
	pks := make([]string, len(starts))
	for i, st := range starts {
		pks[i] = sprayKey(st)
	}
	err := s.getItems(ctx, "spray buckets", pks, func(it map[string]types.AttributeValue) {
		pk, _, _ := getS(it, "pk")
		data, ok, _ := getS(it, "data")
		unix, err := strconv.ParseInt(strings.TrimPrefix(pk, SprayBucketPrefix), 10, 64)
		var b behaviour.SprayBucket
		if !ok || err != nil || json.Unmarshal([]byte(data), &b) != nil {
			return
		}
		b.Start = time.Unix(unix, 0).UTC()
		out[unix] = b
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// SaveSprayBuckets implements behaviour.WindowStore: the stored buckets are
// read (BatchGetItem), merged with bs (behaviour.MergeSprayBuckets) and
// written back (BatchWriteItem, 25 at a time); the caller holds the audit
// lease. On error some buckets may be written (each whole).
func (s *Store) SaveSprayBuckets(ctx context.Context, bs []behaviour.SprayBucket, keep time.Duration) error {
	if len(bs) == 0 {
		return nil
	}
	starts := make([]time.Time, len(bs))
	for i, b := range bs {
		starts[i] = b.Start
	}
	have, err := s.SprayBuckets(ctx, starts)
	if err != nil {
		return err
	}
	merged := map[int64]behaviour.SprayBucket{}
	for _, b := range bs {
		u := b.Start.Unix()
		if m, ok := merged[u]; ok {
			merged[u] = behaviour.MergeSprayBuckets(m, b)
			continue
		}
		merged[u] = behaviour.MergeSprayBuckets(have[u], b)
	}
	us := make([]int64, 0, len(merged))
	for u := range merged {
		us = append(us, u)
	}
	sort.Slice(us, func(i, j int) bool { return us[i] < us[j] })
	now := time.Now().UTC()
	var reqs []types.WriteRequest
	for _, u := range us {
		b := merged[u]
		data, err := json.Marshal(b)
		if err != nil {
			return s.corrupt("write spray bucket", err)
		}
		reqs = append(reqs, jsonItemPut(sprayKey(b.Start), data, now, b.Start.Add(behaviour.SprayBucketLength+keep)))
	}
	return s.writeItems(ctx, "write spray buckets", reqs, 1)
}
