package audit

import (
	"fmt"
	"testing"
	"time"

	"ipguard/internal/ipguard"
)

// BenchmarkEvaluate10kEvents measures checking a busy window: 10,000 login
// events of 500 users with 10 entries each.
func BenchmarkEvaluate10kEvents(b *testing.B) {
	users := map[string]ipguard.User{}
	for u := 0; u < 500; u++ {
		id := fmt.Sprintf("user-%d", u)
		var entries []string
		for e := 0; e < 10; e++ {
			entries = append(entries, fmt.Sprintf("10.%d.%d.0/24", u%250, e))
		}
		users[id] = ipguard.User{ID: id, Entries: entries}
	}
	lists := NewAllowlists(users, func() ([]ipguard.User, error) { return nil, nil })
	events := make([]ipguard.LoginEvent, 10_000)
	for i := range events {
		events[i] = ipguard.LoginEvent{ID: int64(i), Date: time.Unix(int64(i), 0), UserID: fmt.Sprintf("user-%d", i%500),
			ActionID: []int{1010, 1000, 1013, 1006}[i%4], IP: fmt.Sprintf("10.%d.%d.%d", (i%500)%250, i%12, i%250)}
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Evaluate(events, lists, Policy{UnknownUsers: UnknownAlert, FailedLoginThreshold: 5}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRenderAlerts measures rendering and sizing the alert for 1,000
// findings (it splits into several SNS messages).
func BenchmarkRenderAlerts(b *testing.B) {
	fs := make([]Finding, 1000)
	for i := range fs {
		fs[i] = Finding{EventID: int64(i + 1), Kind: KindIPNotAllowed, Severity: SeverityHigh, Reason: "outside", UserID: "u", User: "User", IP: "203.0.113.1",
			Date: "2026-11-25T09:00:00Z", Raw: []byte(`{"id":1,"ip":"203.0.113.1","browser":"Firefox 126.0","platform":"Linux","page":"https://portal.example.com/login"}`)}
	}
	w := Window{From: time.Unix(0, 0), To: time.Unix(900, 0)}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := RenderAlerts(Meta{Portal: "https://portal.example.com", Window: w}, fs, MaxMessageBytes); err != nil {
			b.Fatal(err)
		}
	}
}
