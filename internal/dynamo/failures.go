package dynamo

import (
	"context"
	"crypto/rand"
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
//	failures#<bucket unix>#<shard>   a: {<address>: [count, first unix, last unix, {<account hash>: [[failed unix…], [succeeded unix…]]}, more, [counted unix…]]}, expiresAt
//
// A bucket is failureBucket long (by each address's last failed login);
// each bucket has failureShards items (by a hash of the address), and each
// item holds at most maxFailureAddrs addresses: when more come, those with
// the fewest failures give way. So storage is bounded per bucket whatever a
// flood of addresses does, and every item expires on its own (TTL). The
// accounts of an address (ipguard.AccountFailures: at most 16, a hash each,
// a few seconds each) and its counted seconds count against
// maxFailureItemBytes per item: beyond it, the addresses with the fewest
// failures keep only their count and span (their accounts then count as
// tried and unresolved), so an item stays under DynamoDB's 400 KB.
const (
	failureBucket       = 10 * time.Minute
	failureShards       = 4
	maxFailureAddrs     = 4000
	maxFailureItemBytes = 350_000
)

// failureSize over-estimates the bytes DynamoDB counts for one address's
// entry (names, numbers of 10 digits in at most 8 bytes, list and map overheads).
func failureSize(f ipguard.AddressFailures) int {
	n := len(f.IP) + 3 + 4*8 + 3 + 8
	for _, x := range f.Accounts {
		n += len(x.Account) + 3 + 3*3 + 8*(len(x.Failed)+len(x.Succeeded))
	}
	for _, c := range f.Counted {
		n += 8 // one login at a second: a number
		if c.N > 1 {
			n += 3 + 3 + 8 // more: a list [second, how many]
		}
	}
	return n + 3
}

func failureKey(bucket time.Time, ip string) string {
	h := fnv.New32a()
	_, _ = h.Write([]byte(ip))
	return fmt.Sprintf("%s%d#%d", failuresPrefix, bucket.Unix(), h.Sum32()%failureShards)
}

// RecordFailures implements audit.Store: per item touched, one consistent
// read and one write (the caller holds the audit lease).
func (s *Store) RecordFailures(ctx context.Context, fs []ipguard.AddressFailures, keep time.Duration) (forgotten int, err error) {
	byItem := map[string][]ipguard.AddressFailures{}
	var keys []string
	for _, f := range fs {
		if (f.Count <= 0 && len(f.Accounts) == 0 && len(f.Counted) == 0) || f.IP == "" {
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
			return forgotten, err
		}
		m := decodeFailures(item)
		var exp int64
		if v, ok, err := getN(item, "expiresAt"); err == nil && ok {
			exp = v
		}
		for _, f := range byItem[k] {
			have, ok := m[f.IP]
			if !ok {
				have = ipguard.MergeAddressFailures(ipguard.AddressFailures{}, f)
			} else {
				have = ipguard.MergeAddressFailures(have, f)
			}
			m[f.IP] = have
			exp = max(exp, have.Last.Add(keep).Unix())
		}
		list := make([]ipguard.AddressFailures, 0, len(m))
		for _, f := range m {
			list = append(list, f)
		}
		sort.Slice(list, func(i, j int) bool {
			if list[i].Count != list[j].Count {
				return list[i].Count > list[j].Count
			}
			return list[i].IP < list[j].IP
		})
		if len(list) > maxFailureAddrs {
			forgotten += len(list) - maxFailureAddrs
			list = list[:maxFailureAddrs]
		}
		// Every address keeps its count and span; the details (accounts,
		// counted seconds) go to the busiest first, as the room allows
		// (past it an address's accounts count as tried and unresolved).
		room := maxFailureItemBytes
		for _, f := range list {
			room -= failureSize(ipguard.AddressFailures{IP: f.IP})
		}
		a := make(map[string]types.AttributeValue, len(list))
		for _, f := range list {
			if extra := failureSize(f) - failureSize(ipguard.AddressFailures{IP: f.IP}); extra > room {
				f.MoreAccounts += len(f.Accounts)
				f.Accounts, f.Counted = nil, nil
			} else {
				room -= extra
			}
			a[f.IP] = encodeFailures(f)
		}
		if err := s.putItem(ctx, op, map[string]types.AttributeValue{
			"pk": str(k), "a": &types.AttributeValueMemberM{Value: a}, "expiresAt": num(exp),
		}); err != nil {
			return forgotten, err
		}
	}
	return forgotten, nil
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

func encodeFailures(f ipguard.AddressFailures) types.AttributeValue {
	v := []types.AttributeValue{num(int64(f.Count)), num(f.First.Unix()), num(ceilUnix(f.Last))}
	if len(f.Accounts) > 0 || f.MoreAccounts > 0 || len(f.Counted) > 0 {
		accs := make(map[string]types.AttributeValue, len(f.Accounts))
		for _, x := range f.Accounts {
			accs[x.Account] = &types.AttributeValueMemberL{Value: []types.AttributeValue{nums(x.Failed), nums(x.Succeeded)}}
		}
		v = append(v, &types.AttributeValueMemberM{Value: accs}, num(int64(f.MoreAccounts)))
	}
	if len(f.Counted) > 0 {
		l := make([]types.AttributeValue, len(f.Counted))
		for i, c := range f.Counted {
			l[i] = num(c.At)
			if c.N > 1 {
				l[i] = &types.AttributeValueMemberL{Value: []types.AttributeValue{num(c.At), num(int64(c.N))}}
			}
		}
		v = append(v, &types.AttributeValueMemberL{Value: l})
	}
	return &types.AttributeValueMemberL{Value: v}
}

// countedOf reads the counted failed logins: each element a second (one
// login) or [second, how many]; the items written before the counts were
// kept per second list a second once per login, which reads the same. A
// list that cannot be read is left out.
func countedOf(v types.AttributeValue) []ipguard.SecondCount {
	l, ok := v.(*types.AttributeValueMemberL)
	if !ok {
		return nil
	}
	var out []ipguard.SecondCount
	for _, x := range l.Value {
		at, n := int64(0), int64(1)
		if pair, ok := x.(*types.AttributeValueMemberL); ok && len(pair.Value) == 2 {
			var ok1, ok2 bool
			at, ok1 = numOf(pair.Value[0])
			n, ok2 = numOf(pair.Value[1])
			if !ok1 || !ok2 || n < 1 || n > 1<<30 {
				return nil
			}
		} else if at, ok = numOf(x); !ok {
			return nil
		}
		out = ipguard.AddCounted(out, at, int(n))
	}
	return out
}

func nums(ts []int64) types.AttributeValue {
	l := make([]types.AttributeValue, len(ts))
	for i, t := range ts {
		l[i] = num(t)
	}
	return &types.AttributeValueMemberL{Value: l}
}

func numOf(v types.AttributeValue) (int64, bool) {
	n, ok := v.(*types.AttributeValueMemberN)
	if !ok {
		return 0, false
	}
	x, err := strconv.ParseInt(strings.TrimSpace(n.Value), 10, 64)
	return x, err == nil
}

func numsOf(v types.AttributeValue) ([]int64, bool) {
	l, ok := v.(*types.AttributeValueMemberL)
	if !ok {
		return nil, false
	}
	var out []int64
	for _, x := range l.Value {
		n, ok := numOf(x)
		if !ok {
			return nil, false
		}
		out = append(out, n)
	}
	return out, true
}

// decodeFailures reads an item's records; an entry that cannot be read is
// left out, an account that cannot be read counts in MoreAccounts.
func decodeFailures(item map[string]types.AttributeValue) map[string]ipguard.AddressFailures {
	out := map[string]ipguard.AddressFailures{}
	m, ok := item["a"].(*types.AttributeValueMemberM)
	if !ok {
		return out
	}
	for ip, v := range m.Value {
		l, ok := v.(*types.AttributeValueMemberL)
		if !ok || len(l.Value) < 3 {
			continue
		}
		var n [3]int64
		good := true
		for i, x := range l.Value[:3] {
			if n[i], ok = numOf(x); !ok {
				good = false
				break
			}
		}
		if !good {
			continue
		}
		f := ipguard.AddressFailures{IP: ip, Count: int(n[0]), First: time.Unix(n[1], 0).UTC(), Last: time.Unix(n[2], 0).UTC()}
		if len(l.Value) >= 5 {
			if accs, ok := l.Value[3].(*types.AttributeValueMemberM); ok {
				keys := make([]string, 0, len(accs.Value))
				for k := range accs.Value {
					keys = append(keys, k)
				}
				sort.Strings(keys)
				for _, k := range keys {
					pair, ok := accs.Value[k].(*types.AttributeValueMemberL)
					var fl, sc []int64
					if ok && len(pair.Value) == 2 {
						var ok1, ok2 bool
						fl, ok1 = numsOf(pair.Value[0])
						sc, ok2 = numsOf(pair.Value[1])
						ok = ok1 && ok2
					}
					if !ok {
						f.MoreAccounts++
						continue
					}
					f.Accounts = append(f.Accounts, ipguard.AccountFailures{Account: k, Failed: fl, Succeeded: sc})
				}
			}
			if more, ok := numOf(l.Value[4]); ok {
				f.MoreAccounts += int(more)
			}
		}
		if len(l.Value) >= 6 {
			f.Counted = countedOf(l.Value[5])
		}
		out[ip] = f
	}
	return out
}

// failureHashKeyPK keys the account-hash key (under the failures# prefix
// the audit may write: the key of what the failures# items keep).
const failureHashKeyPK = failuresPrefix + "hashkey"

// accountHashKeyBytes is the length of the account-hash key.
const accountHashKeyBytes = 32

// AccountHashKey implements audit.Store: the deployment's account-hash key,
// 32 random bytes made at the first call (crypto/rand, written only if
// absent, so that two first runs agree on the winner's key) and read with
// a consistent read at every later one. It never expires; deleting the
// item makes a new key, and the failures# records kept within the windows
// then no longer match (they expire within KeepFailures). The key is
// never logged.
func (s *Store) AccountHashKey(ctx context.Context) ([]byte, error) {
	const op = "read the account-hash key"
	for attempt := 0; attempt < 2; attempt++ {
		item, err := s.getItem(ctx, op, failureHashKeyPK)
		if err != nil {
			return nil, err
		}
		if b, ok := item["k"].(*types.AttributeValueMemberB); ok && len(b.Value) >= 16 {
			return b.Value, nil
		}
		if len(item) > 0 {
			return nil, &ipguard.Error{Code: ipguard.EConfig, Message: "dynamodb: the account-hash key item " + failureHashKeyPK + " is not 16 or more bytes; delete it to make a new key"}
		}
		key := make([]byte, accountHashKeyBytes)
		if _, err := rand.Read(key); err != nil {
			return nil, &ipguard.Error{Code: ipguard.EInternal, Message: "no random bytes for the account-hash key"}
		}
		_, err = s.api.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.table),
			Item:                map[string]types.AttributeValue{"pk": str(failureHashKeyPK), "k": &types.AttributeValueMemberB{Value: key}},
			ConditionExpression: aws.String("attribute_not_exists(pk)")})
		if ok, err := s.conditional("make the account-hash key", err); err != nil {
			return nil, err
		} else if ok {
			return key, nil
		}
		// Another run made it first: read theirs.
	}
	return nil, &ipguard.Error{Code: ipguard.EUnavailable, Message: "dynamodb: the account-hash key was neither read nor made"}
}
