package dynamo_test

import (
	"context"
	"fmt"
	"testing"
	"time"

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
	if err := s.RecordFailures(context.Background(), fs, time.Hour); err != nil {
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
