package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"testing"
	"time"

	"ipguard/internal/ipguard"
)

// Issue 16 §4: the evaluator's memory does not grow with one event per
// failing address. A credential-stuffing window of 500,000 failed logins
// from 250,000 addresses (two each, below the burst threshold), fed in
// pieces of 2,000 as the walk does, keeps a counter per address: at most
// 24 MiB of heap (the old per-address sample event, raw JSON and names cost
// about 1.2 KB each, some 300 MB).
func TestEvaluatorMemoryForAQuarterMillionFailingAddresses(t *testing.T) {
	if testing.Short() {
		t.Skip("feeds 500,000 events; skipped in -short (the memory benchmark in make bench measures the bootstrap)")
	}
	l := lists(t, map[string][]string{"alice": {"203.0.113.10"}})
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	e := NewEvaluator(l, Policy{UnknownUsers: UnknownAlert, FailedLoginThreshold: 5})
	start := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	piece := make([]ipguard.LoginEvent, 0, 2000)
	const n = 500_000
	for i := 0; i < n; i++ {
		a := i % 250_000
		piece = append(piece, ipguard.LoginEvent{ID: int64(i + 1), Date: start.Add(-time.Duration(i/10) * time.Second), UserID: guest, // newest first, as the walk reads
			User: "Guest", Login: fmt.Sprintf("victim%d@example.com", i%1000), ActionID: 1013,
			IP: fmt.Sprintf("10.%d.%d.%d", a/65536, (a/256)%256, a%256), Browser: "curl", Platform: "Linux",
			Raw: json.RawMessage(fmt.Sprintf(`{"id":%d,"action":"LoginFailViaApi","ip":"10.%d.%d.%d","browser":"curl","platform":"Linux","page":"https://portal.example.com/api/2.0/authentication"}`, i+1, a/65536, (a/256)%256, a%256))})
		if len(piece) == cap(piece) {
			if _, err := e.Add(piece); err != nil {
				t.Fatal(err)
			}
			if bs := e.Bursts(); len(bs) != 0 {
				t.Fatalf("%d bursts below the threshold", len(bs))
			}
			_ = e.FailuresToRemember(piece[len(piece)-1].Date) // handed to the store as the walk passes a bucket
			piece = piece[:0]
		}
	}
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	grew := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("heap grew %.1f MiB for 250,000 failing addresses", float64(grew)/(1<<20))
	if grew > 24<<20 {
		t.Errorf("heap grew %.1f MiB, want at most 24 MiB", float64(grew)/(1<<20))
	}
	runtime.KeepAlive(e)
}

// Issue 16 §4: bursts from many addresses are summed up beyond
// MaxBurstAddresses, so that messages and alerted records stay bounded; the
// counts still cover every failed login, and the next run that reads them
// again sends nothing twice.
func TestBurstsFromManyAddressesStayBounded(t *testing.T) {
	var evs []ipguard.LoginEvent
	id := int64(1)
	for a := 0; a < 300; a++ {
		for k := 0; k < 6; k++ { // over the threshold of 5
			evs = append(evs, at(id, guest, 1013, fmt.Sprintf("198.18.%d.%d", a/250, a%250), 10*time.Minute+time.Duration(a)*time.Second))
			id++
		}
	}
	s, _, st, pub := newAudit(evs...)
	res, err := s.Run(context.Background(), trig(15*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	total, listed, summaries := 0, 0, 0
	for _, a := range pub.sent {
		for _, f := range findingsOf(t, a) {
			if f.Kind != KindFailedLoginBurst {
				continue
			}
			total += f.Count
			if f.Addresses > 0 {
				summaries++
				if len(f.IPs) == 0 || f.IPs[0] == "" {
					t.Errorf("summary lists no address: %+v", f)
				}
			} else {
				listed++
			}
		}
	}
	if total != 1800 || listed != MaxBurstAddresses || summaries == 0 {
		t.Errorf("bursts cover %d failed logins (want 1800), %d listed one by one (want %d), %d summaries", total, listed, MaxBurstAddresses, summaries)
	}
	if st.Writes > MaxBurstAddresses+5 || len(pub.sent) > 3 {
		t.Errorf("%d alert records and %d messages for 300 bursting addresses; want bounded", st.Writes, len(pub.sent))
	}
	rerunSendsNothing(t, s, pub)
	_ = res
}
