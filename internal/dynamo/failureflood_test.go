package dynamo_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"ipguard/internal/ipguard"
)

// Under a flood of failed logins from more addresses than a bucket's items
// keep, the fewest failures give way, and with them a guesser's three
// attempts (its record is gone for the next run's correlation). The store
// says how many addresses gave way, so the audit tells the loss
// (coverage_lost, failures_forgotten); it says 0 when every address is
// kept (attack review of the audit path).
func TestRecordFailuresSaysHowManyAddressesGaveWay(t *testing.T) {
	ctx := context.Background()
	s := tableStore(t, motoDB(t), "failflood")
	b := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	const guesser = "203.0.113.77"
	fs := []ipguard.AddressFailures{{IP: guesser, Count: 3, First: b.Add(time.Minute), Last: b.Add(time.Minute + 2*time.Second)}}
	n, err := s.RecordFailures(ctx, fs, time.Hour)
	if err != nil || n != 0 {
		t.Fatalf("one address: forgotten %d, %v; want 0", n, err)
	}
	var flood []ipguard.AddressFailures
	a := netip.MustParseAddr("172.16.0.1")
	for range 18_000 {
		flood = append(flood, ipguard.AddressFailures{IP: a.String(), Count: 4, First: b.Add(2 * time.Minute), Last: b.Add(3 * time.Minute)})
		a = a.Next()
	}
	n, err = s.RecordFailures(ctx, flood, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if want := 18_001 - 4*4000; n < want {
		t.Errorf("forgotten %d; want at least %d (4 items of 4,000 addresses keep at most 16,000)", n, want)
	}
	got, err := s.Failures(ctx, []string{guesser}, b, b.Add(10*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if len(got[guesser]) != 0 {
		t.Logf("the guesser's record survived this flood (its shard held fewer than 4,000 flood addresses): %+v", got[guesser])
	}
}
