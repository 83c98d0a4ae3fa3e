package e2e

import (
	"fmt"
	"testing"
	"time"

	"ipguard/internal/audit"
	"ipguard/internal/behaviour/behaviourtest"
	"ipguard/internal/testbed/devportal"
)

// BenchmarkAuditBehaviourRSS100kEvents runs the real audit bootstrap under
// the Lambda emulator over the same 100,000-event window (1,000 users, 10
// countries, 4 devices, 1 % failed logins; moto for DynamoDB) twice in one
// run: with BEHAVIOUR_RULES=none (today's audit) and with all four rules
// on (the default), each on a fresh deployment. It reports each run's time
// and the bootstrap's peak RSS (VmHWM), and the ratio of the times; the
// targets are 1.1× and 64 MB. It also reports the bootstrap's CPU time
// (user and system) of each and their ratio, steadier than the times on a
// shared machine. About three minutes: run it with make bench.
func BenchmarkAuditBehaviourRSS100kEvents(b *testing.B) {
	const events = 100_000
	countries := [][2]string{{"Germany", "Berlin"}, {"France", "Paris"}, {"United States", "New York"}, {"Brazil", "São Paulo"}, {"Japan", "Tokyo"},
		{"India", "Kolkata"}, {"Australia", "Sydney"}, {"United Kingdom", "London"}, {"Spain", "Madrid"}, {"Italy", "Rome"}}
	browsers := [][2]string{{"Firefox 126.0", "Windows 10"}, {"Chrome 125.0", "Mac OS X 10.15"}, {"Safari 17.4", "iOS 17.4"}, {"Edge 120", "Windows 11"}}
	run := func(rules string) (time.Duration, time.Duration, int, audit.Result) {
		s := deploy(b)
		end := time.Now().UTC().Truncate(time.Second).Add(-time.Minute)
		evs := make([]devportal.LoginEvent, events)
		for i := range evs {
			u := i % 1000
			c := countries[(u+i/50_000)%len(countries)]
			if i%997 == 0 {
				c = countries[(u+3)%len(countries)]
			}
			br := browsers[(u+i/30_000)%len(browsers)]
			evs[i] = devportal.LoginEvent{Date: end.Add(-time.Duration(i) * time.Second), UserID: fmt.Sprintf("user-%04d", u), User: "User",
				Login: fmt.Sprintf("user%04d@example.com", u), ActionID: loginSuccess, IP: fmt.Sprintf("198.51.%d.%d", u/250, u%250),
				Country: c[0], City: c[1], Browser: br[0], Platform: br[1]}
			if i%100 == 0 {
				evs[i].ActionID, evs[i].IP = loginFail, fmt.Sprintf("192.0.2.%d", i%200)
			}
		}
		s.Portal.AddLoginEvents(evs...)
		fn := startFunctionTimeout(b, "audit", s.FunctionEnv("AUDIT_LOOKBACK=30h", "PORTAL_REQUESTS_PER_MINUTE=1500", "UNKNOWN_USER_POLICY=ignore",
			"FAILED_LOGIN_THRESHOLD=0", "BEHAVIOUR_RULES="+rules), "300")
		start := time.Now()
		var res audit.Result
		fn.invoke(b, scheduledEvent(end)).result(b, &res)
		took := time.Since(start)
		if res.EventsScanned != events || !res.Complete {
			b.Fatalf("result %s: want all %d events scanned, complete", jsonText(res), events)
		}
		kb, err := peakRSS(fn.emu.PID)
		if err != nil {
			b.Fatal(err)
		}
		cpu, err := bootstrapCPU(fn.emu.PID)
		if err != nil {
			b.Fatal(err)
		}
		if err := fn.stop(); err != nil {
			b.Fatal(err)
		}
		return took, cpu, kb, res
	}
	for b.Loop() {
		offTook, offCPU, offKB, _ := run("none")
		onTook, onCPU, onKB, on := run("impossible_travel,new_country,new_device,password_spray")
		behaviourtest.ReportCost(b, behaviourtest.Cost{Took: offTook, CPU: offCPU}, behaviourtest.Cost{Took: onTook, CPU: onCPU}, on.BehaviourReasons)
		b.ReportMetric(float64(offKB)/1024, "off-RSS-MB")
		b.ReportMetric(float64(onKB)/1024, "on-RSS-MB")
		b.ReportMetric(float64(on.AlertsPublished), "on-alerts-published")
		b.ReportMetric(float64(on.NotMessaged), "on-not-messaged")
	}
}
