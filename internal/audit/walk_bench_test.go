package audit_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"ipguard/internal/audit"
	"ipguard/internal/audit/audittest"
	"ipguard/internal/docspace"
	"ipguard/internal/ipguard"
	"ipguard/internal/testbed/devportal"
)

type benchKey string

func (k benchKey) Key(context.Context) (string, error) { return string(k), nil }

// timedRun runs s up to end and returns how long it took; an error fails b.
func timedRun(b *testing.B, s *audit.Service, end time.Time) (time.Duration, audit.Result) {
	b.Helper()
	start := time.Now()
	res, err := s.Run(context.Background(), audit.Trigger{To: end})
	took := time.Since(start)
	if err != nil {
		b.Fatal(err)
	}
	return took, res
}

// BenchmarkWalk1000PagesAt150ms reads a window of 100,000 login events
// (1,000 pages) from the dev portal over loopback HTTP, each request held
// 150 ms, through the real DocSpace client, once strictly one page after the
// other and once with the default concurrency and rate ceiling, in the same
// run. It reports both times, the speed-up, and the floor
// max(pages × latency ÷ concurrency, pages ÷ rate ceiling) with the
// concurrent walk's ratio to it, and how many rows each walk missed.
// It takes about four minutes: run it with make bench.
func BenchmarkWalk1000PagesAt150ms(b *testing.B) {
	const (
		events  = 100_000
		latency = 150 * time.Millisecond
		perMin  = 1200 // PORTAL_REQUESTS_PER_MINUTE default
	)
	key := "sk-" + fmt.Sprintf("%064x", 7)
	portal := devportal.New(devportal.Options{AdminKeys: []string{key}})
	end := time.Now().UTC().Truncate(time.Second).Add(-time.Minute)
	evs := make([]devportal.LoginEvent, events)
	for i := range evs {
		evs[i] = devportal.LoginEvent{Date: end.Add(-time.Duration(i) * time.Second), UserID: "alice", User: "Alice",
			Login: "alice@example.com", ActionID: 1010, IP: "203.0.113.10", Country: "Germany", City: "Berlin", Browser: "Firefox 126.0", Platform: "Linux"}
	}
	portal.AddLoginEvents(evs...)
	portal.InjectFault(devportal.Fault{Path: "/security/audit/login/filter", Delay: latency})
	srv := httptest.NewServer(portal.Handler())
	defer srv.Close()

	walk := func(conc, rate int) (time.Duration, audit.Result) {
		client, err := docspace.New(docspace.Options{BaseURL: srv.URL, AllowHTTP: true, Keys: benchKey(key), RequestsPerMinute: rate})
		if err != nil {
			b.Fatal(err)
		}
		st, pub := audittest.NewStore(ipguard.User{ID: "alice", Email: "alice@example.com", Entries: []string{"203.0.113.10"}}), audit.BenchPublisher()
		s := &audit.Service{Source: client, Store: st, Publisher: pub, Leases: st,
			Settings: audit.Settings{Portal: srv.URL, Overlap: 5 * time.Minute, Lookback: time.Duration(events+30) * time.Second,
				AlertRetention: 24 * time.Hour, Concurrency: conc, Policy: audit.Policy{UnknownUsers: audit.UnknownAlert, FailedLoginThreshold: 5}}}
		took, res := timedRun(b, s, end)
		if res.EventsScanned != events {
			b.Errorf("concurrency %d: %d events scanned, want %d (%d missed)", conc, res.EventsScanned, events, events-res.EventsScanned)
		}
		return took, res
	}
	for b.Loop() {
		seqTook, seq := walk(1, 0)
		concTook, conc := walk(audit.DefaultConcurrency, perMin)
		pages := float64(conc.PagesFetched)
		floor := max(pages*latency.Seconds()/audit.DefaultConcurrency, pages/(perMin/60.0))
		b.ReportMetric(seqTook.Seconds(), "seq-s")
		b.ReportMetric(float64(seq.PagesFetched), "seq-pages")
		b.ReportMetric(concTook.Seconds(), "conc-s")
		b.ReportMetric(pages, "conc-pages")
		b.ReportMetric(seqTook.Seconds()/concTook.Seconds(), "speedup")
		b.ReportMetric(floor, "floor-s")
		b.ReportMetric(concTook.Seconds()/floor, "conc/floor")
		b.ReportMetric(float64(events-seq.EventsScanned+events-conc.EventsScanned), "missed")
	}
}
