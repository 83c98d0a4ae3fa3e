package dynamo_test

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"ipguard/internal/dynamo"
	"ipguard/internal/ipguard"
)

// #21 §3 / WHERE §10: a failures# item stays within DynamoDB's 400 KB
// whatever a flood writes into one bucket: every address at its bounds
// (the busiest with ipguard.MaxRecordAccounts accounts with all their
// seconds, all with a counted failed login in every second of the bucket,
// several in each). Every item holds its 4,000 addresses; the busiest
// keep their details, the others at least their count and span.
func TestAFailuresItemStaysUnderDynamoDBsItemLimitUnderAFlood(t *testing.T) {
	s := tableStore(t, motoDB(t), "failsize")
	b := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	secs := func(n int) []int64 {
		var out []int64
		for i := 0; i < n; i++ {
			out = append(out, b.Unix()+int64(i))
		}
		return out
	}
	var counted []ipguard.SecondCount
	for i := 0; i < 600; i++ {
		counted = append(counted, ipguard.SecondCount{At: b.Unix() + int64(i), N: 1 + i%3})
	}
	var fs []ipguard.AddressFailures
	var ips []string
	for a := 0; a < 20000; a++ {
		f := ipguard.AddressFailures{IP: fmt.Sprintf("10.%d.%d.%d", a/65536, (a/256)%256, a%256), Count: 100000 - a,
			First: b, Last: b.Add(5 * time.Minute), Counted: counted}
		for k := 0; k < ipguard.MaxRecordAccounts && (a < 100 || k == 0); k++ {
			f.Accounts = append(f.Accounts, ipguard.AccountFailures{Account: fmt.Sprintf("%016x", a*100+k),
				Failed: secs(2 * ipguard.KeepFailed), Succeeded: secs(2 * ipguard.KeepSucceeded)})
		}
		fs = append(fs, f)
		ips = append(ips, f.IP)
	}
	if _, err := s.RecordFailures(context.Background(), fs, time.Hour); err != nil {
		t.Fatalf("RecordFailures: %v", err)
	}
	got, err := s.Failures(context.Background(), ips, b, b.Add(10*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	top := got[fs[0].IP]
	if len(got) != 4*4000 || len(top) != 1 || len(top[0].Accounts) != ipguard.MaxRecordAccounts || len(top[0].Counted) != 600 || ipguard.CountedTotal(top[0].Counted) != ipguard.CountedTotal(counted) {
		t.Errorf("%d addresses kept; the busiest %+v; want every item at 4,000 addresses, the busiest with its details", len(got), top)
	}
}

// #21 §3: an item written before the counted failed logins were kept per
// second (a second listed once per login) reads as the same logins, and a
// concurrent first use of the account-hash key gives every caller one key.
func TestFailuresOfTheEarlierFormatReadAsTheSameLogins(t *testing.T) {
	db := motoDB(t)
	s := tableStore(t, db, "failold")
	b := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	n := func(v int64) types.AttributeValue {
		return &types.AttributeValueMemberN{Value: strconv.FormatInt(v, 10)}
	}
	old := &types.AttributeValueMemberL{Value: []types.AttributeValue{n(4), n(b.Unix()), n(b.Unix() + 5),
		&types.AttributeValueMemberM{Value: map[string]types.AttributeValue{}}, n(0),
		&types.AttributeValueMemberL{Value: []types.AttributeValue{n(b.Unix()), n(b.Unix()), n(b.Unix()), n(b.Unix() + 5)}}}}
	for shard := 0; shard < 4; shard++ {
		_, err := db.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: aws.String(dynamo.Table(s)), Item: map[string]types.AttributeValue{
			"pk": &types.AttributeValueMemberS{Value: fmt.Sprintf("failures#%d#%d", b.Unix(), shard)},
			"a":  &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"198.51.100.30": old}}}})
		if err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Failures(context.Background(), []string{"198.51.100.30"}, b, b.Add(10*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	want := []ipguard.SecondCount{{At: b.Unix(), N: 3}, {At: b.Unix() + 5, N: 1}}
	if r := got["198.51.100.30"]; len(r) != 1 || fmt.Sprint(r[0].Counted) != fmt.Sprint(want) {
		t.Errorf("Failures = %+v; want the counted logins %v", r, want)
	}

	keys := make(chan []byte, 4)
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k, err := dynamo.New(db, dynamo.Table(s)).AccountHashKey(context.Background())
			if err != nil {
				t.Error(err)
			}
			keys <- k
		}()
	}
	wg.Wait()
	close(keys)
	var first []byte
	for k := range keys {
		if first == nil {
			first = k
		}
		if len(k) != 32 || !bytes.Equal(k, first) {
			t.Errorf("concurrent first uses gave keys of %d bytes, %x and %x; want one 32-byte key", len(k), first, k)
		}
	}
}
