package dynamo

import (
	"context"
	"fmt"
	"hash/fnv"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"ipguard/internal/ipguard"
)

// Failed logins remembered across runs, for the password-guess correlation:
//
//	failures#<bucket unix>#<shard>   a: {<address>: [count, first unix, last unix]}, expiresAt
//
// A bucket is failureBucket long (by each address's last failed login);
// each bucket has failureShards items (by a hash of the address), and each
// item holds at most maxFailureAddrs addresses: when more come, those with
// the fewest failures give way. So storage is bounded per bucket whatever a
// flood of addresses does, and every item expires on its own (TTL).
const (
	failureBucket   = 10 * time.Minute
	failureShards   = 4
	maxFailureAddrs = 4000
)

func failureKey(bucket time.Time, ip string) string {
	h := fnv.New32a()
	_, _ = h.Write([]byte(ip))
	return fmt.Sprintf("%s%d#%d", failuresPrefix, bucket.Unix(), h.Sum32()%failureShards)
}

// RecordFailures implements audit.Store: per item touched, one consistent
// read and one write (the caller holds the audit lease).
func (s *Store) RecordFailures(ctx context.Context, fs []ipguard.AddressFailures, keep time.Duration) error {
	byItem := map[string][]ipguard.AddressFailures{}
	var keys []string
	for _, f := range fs {
		if f.Count <= 0 || f.IP == "" {
			continue
		}
		k := failureKey(f.Last.UTC().Truncate(failureBucket), f.IP)
		if byItem[k] == nil {
			keys = append(keys, k)
		}
		byItem[k] = append(byItem[k], f)
	}
	sort.Strings(keys)
	for _, k := range keys {
		op := "record failed logins " + k
		item, err := s.getItem(ctx, op, k)
		if err != nil {
			return err
		}
		m := decodeFailures(item)
		var exp int64
		if v, ok, err := getN(item, "expiresAt"); err == nil && ok {
			exp = v
		}
		for _, f := range byItem[k] {
			have, ok := m[f.IP]
			if !ok {
				have = f
			} else {
				have.Count = max(have.Count, f.Count)
				if f.First.Before(have.First) {
					have.First = f.First
				}
				if f.Last.After(have.Last) {
					have.Last = f.Last
				}
			}
			m[f.IP] = have
			exp = max(exp, have.Last.Add(keep).Unix())
		}
		list := make([]ipguard.AddressFailures, 0, len(m))
		for _, f := range m {
			list = append(list, f)
		}
		if len(list) > maxFailureAddrs {
			sort.Slice(list, func(i, j int) bool {
				if list[i].Count != list[j].Count {
					return list[i].Count > list[j].Count
				}
				return list[i].IP < list[j].IP
			})
			list = list[:maxFailureAddrs]
		}
		a := make(map[string]types.AttributeValue, len(list))
		for _, f := range list {
			a[f.IP] = &types.AttributeValueMemberL{Value: []types.AttributeValue{
				num(int64(f.Count)), num(f.First.Unix()), num(ceilUnix(f.Last))}}
		}
		_, err = s.api.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.table), Item: map[string]types.AttributeValue{
			"pk": str(k), "a": &types.AttributeValueMemberM{Value: a}, "expiresAt": num(exp),
		}})
		if err != nil {
			return s.fail(op, err)
		}
	}
	return nil
}

// Failures implements audit.Store: the items of the buckets [from, to] and
// the addresses' shards, 100 keys per read; one record per address and
// bucket; an entry that cannot be read is left out.
func (s *Store) Failures(ctx context.Context, ips []string, from, to time.Time) (map[string][]ipguard.AddressFailures, error) {
	out := map[string][]ipguard.AddressFailures{}
	want := map[string]bool{}
	var pks []string
	for _, ip := range ips {
		want[ip] = true
		for b := from.UTC().Truncate(failureBucket); !b.After(to); b = b.Add(failureBucket) {
			pks = append(pks, failureKey(b, ip))
		}
	}
	err := s.getItems(ctx, "failed-login buckets", pks, func(item map[string]types.AttributeValue) {
		for ip, f := range decodeFailures(item) {
			if want[ip] && !f.Last.Before(from) && !f.Last.After(to) {
				out[ip] = append(out[ip], f)
			}
		}
	})
	if err != nil {
		return nil, err
	}
	for _, recs := range out {
		sort.Slice(recs, func(i, j int) bool { return recs[i].Last.Before(recs[j].Last) })
	}
	return out, nil
}

func decodeFailures(item map[string]types.AttributeValue) map[string]ipguard.AddressFailures {
	out := map[string]ipguard.AddressFailures{}
	m, ok := item["a"].(*types.AttributeValueMemberM)
	if !ok {
		return out
	}
	for ip, v := range m.Value {
		l, ok := v.(*types.AttributeValueMemberL)
		if !ok || len(l.Value) != 3 {
			continue
		}
		var n [3]int64
		good := true
		for i, x := range l.Value {
			xn, ok := x.(*types.AttributeValueMemberN)
			if !ok {
				good = false
				break
			}
			v, err := strconv.ParseInt(strings.TrimSpace(xn.Value), 10, 64)
			if err != nil {
				good = false
				break
			}
			n[i] = v
		}
		if !good {
			continue
		}
		out[ip] = ipguard.AddressFailures{IP: ip, Count: int(n[0]), First: time.Unix(n[1], 0).UTC(), Last: time.Unix(n[2], 0).UTC()}
	}
	return out
}
