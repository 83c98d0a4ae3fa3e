package audit_test

import (
	"fmt"
	"net/http/httptest"
	"runtime"
	"syscall"
	"testing"
	"time"

	"ipguard/internal/audit"
	"ipguard/internal/audit/audittest"
	"ipguard/internal/behaviour"
	"ipguard/internal/behaviour/behaviourtest"
	"ipguard/internal/docspace"
	"ipguard/internal/ipguard"
	"ipguard/internal/testbed/devportal"
)

// BenchmarkAuditBehaviourCost100kEvents audits one window of 100,000 login
// events (1,000 users, 10 countries, 4 devices, 1 % failed logins) from the
// dev portal over loopback HTTP with no added latency, through the real
// DocSpace client, twice in the same run: behaviour rules off (today's
// walk) and all four on. With no portal latency the walk is at its fastest,
// so the behaviour's share of the time is the largest it can be. It reports
// the fastest of three alternating runs of each, their ratio (the target is at most 1.1), the findings, and
// the least CPU time of each (steadier than the times on a
// shared machine), the baseline store's calls (bounded by the distinct users: one batched
// read per 100 users per piece, one write per changed baseline per piece).
func BenchmarkAuditBehaviourCost100kEvents(b *testing.B) {
	const (
		events = 100_000
		users  = 1000
	)
	key := "sk-" + fmt.Sprintf("%064x", 9)
	portal := devportal.New(devportal.Options{AdminKeys: []string{key}})
	end := time.Now().UTC().Truncate(time.Second).Add(-time.Minute)
	countries := [][2]string{{"Germany", "Berlin"}, {"France", "Paris"}, {"United States", "New York"}, {"Brazil", "São Paulo"}, {"Japan", "Tokyo"},
		{"India", "Kolkata"}, {"Australia", "Sydney"}, {"United Kingdom", "London"}, {"Spain", "Madrid"}, {"Italy", "Rome"}}
	browsers := [][2]string{{"Firefox 126.0", "Windows 10"}, {"Chrome 125.0", "Mac OS X 10.15"}, {"Safari 17.4", "iOS 17.4"}, {"Edge 120", "Windows 11"}}
	evs := make([]devportal.LoginEvent, events)
	for i := range evs {
		u := i % users
		c := countries[(u+i/50_000)%len(countries)]
		if i%997 == 0 {
			c = countries[(u+3)%len(countries)] // now and then somewhere else
		}
		br := browsers[(u+i/30_000)%len(browsers)]
		ev := devportal.LoginEvent{Date: end.Add(-time.Duration(i) * time.Second), UserID: fmt.Sprintf("user-%04d", u), User: "User",
			Login: fmt.Sprintf("user%04d@example.com", u), ActionID: 1010, IP: fmt.Sprintf("198.51.%d.%d", u/250, u%250), Country: c[0], City: c[1], Browser: br[0], Platform: br[1]}
		if i%100 == 0 {
			ev.ActionID, ev.IP = 1002, fmt.Sprintf("192.0.2.%d", i%200) // failed logins, spread
		}
		evs[i] = ev
	}
	portal.AddLoginEvents(evs...)
	srv := httptest.NewServer(portal.Handler())
	defer srv.Close()

	run := func(on bool) (time.Duration, time.Duration, audit.Result, *behaviourtest.BaselineStore) {
		client, err := docspace.New(docspace.Options{BaseURL: srv.URL, AllowHTTP: true, Keys: benchKey(key)})
		if err != nil {
			b.Fatal(err)
		}
		st, pub := audittest.NewStore(), audit.BenchPublisher()
		s := &audit.Service{Source: client, Store: st, Publisher: pub, Leases: st,
			Settings: audit.Settings{Portal: srv.URL, Overlap: 5 * time.Minute, Lookback: time.Duration(events+30) * time.Second,
				AlertRetention: 24 * time.Hour, Policy: audit.Policy{UnknownUsers: audit.UnknownIgnore, FailedLoginThreshold: 5}}}
		bs := behaviourtest.NewBaselines()
		if on {
			s.Behaviour = &behaviour.Detector{Store: bs}
		}
		runtime.GC()
		cpu0 := processCPU(b)
		took, res := timedRun(b, s, end)
		cpu := processCPU(b) - cpu0
		if res.EventsScanned != events {
			b.Fatalf("behaviour %v: %d events scanned, want %d", on, res.EventsScanned, events)
		}
		return took, cpu, res, bs
	}
	for b.Loop() {
		// Three of each, alternating, the fastest of each kept: the machine
		// is shared, and the quietest run is the fairest comparison.
		var offTook, onTook, offCPU, onCPU time.Duration
		var on audit.Result
		var bs *behaviourtest.BaselineStore
		for i := 0; i < 3; i++ {
			t1, c1, _, _ := run(false)
			t2, c2, r, s := run(true)
			if i == 0 || t1 < offTook {
				offTook = t1
			}
			if i == 0 || t2 < onTook {
				onTook, on, bs = t2, r, s
			}
			if i == 0 || c1 < offCPU {
				offCPU = c1
			}
			if i == 0 || c2 < onCPU {
				onCPU = c2
			}
		}
		behaviourtest.ReportCost(b, behaviourtest.Cost{Took: offTook, CPU: offCPU}, behaviourtest.Cost{Took: onTook, CPU: onCPU}, on.BehaviourReasons)
		b.ReportMetric(float64(bs.Reads), "baseline-reads")
		b.ReportMetric(float64(bs.Writes), "baseline-writes")
	}
}

var _ = ipguard.LoginEvent{}

// processCPU is the CPU time (user and system) this process has used: the
// audit's, the dev portal's and the collector's; on a shared machine a
// steadier measure of the work than the time it took.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
