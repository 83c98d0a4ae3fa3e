package audit_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"ipguard/internal/audit"
	"ipguard/internal/audit/audittest"
	"ipguard/internal/behaviour"
	"ipguard/internal/behaviour/behaviourtest"
	"ipguard/internal/ipguard"
)

type recordingPublisher struct {
	mu     sync.Mutex
	alerts []ipguard.Alert
}

func (p *recordingPublisher) Publish(_ context.Context, a ipguard.Alert) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.alerts = append(p.alerts, a)
	return "m", nil
}

// A run of the audit hands the behaviour hook each declared login's entry
// with its stored place (#21 §4): alice logs in from New York, and 45
// minutes later her credentials are used through the shared Berlin office
// address (GeoIP wrongly says New York for it): one impossible_travel
// message naming both logins and the Berlin office entry.
func TestAuditRunJudgesTravelThroughTheEntrysDeclaredPlace(t *testing.T) {
	end := time.Date(2026, 11, 2, 12, 0, 0, 0, time.UTC)
	ev := func(id int64, at time.Time, ip string) ipguard.LoginEvent {
		return ipguard.LoginEvent{ID: id, Date: at, UserID: "alice", User: "alice", Login: "alice@example.com", ActionID: 1010,
			Action: "Login Success", IP: ip, Country: "United States", City: "New York", Browser: "Firefox 126.0", Platform: "Windows 10"}
	}
	src := audittest.NewSource(ev(2, end.Add(-10*time.Minute), "203.0.113.40"), ev(1, end.Add(-55*time.Minute), "198.18.0.9"))
	st := audittest.NewStore(ipguard.User{ID: "alice", Email: "alice@example.com", Entries: []string{"203.0.113.0/24", "198.18.0.9"},
		Details: map[string]ipguard.EntryDetail{"203.0.113.0/24": {Note: "office", Place: "Berlin, DE"}}})
	pub := &recordingPublisher{}
	s := &audit.Service{Source: src, Store: st, Publisher: pub, Leases: st,
		Behaviour: &behaviour.Detector{Store: behaviourtest.NewBaselines()},
		Settings: audit.Settings{Portal: "https://portal.example.com", Overlap: 5 * time.Minute, Lookback: 2 * time.Hour,
			AlertRetention: 24 * time.Hour, Policy: audit.Policy{FailedLoginThreshold: 5}}}
	res, err := s.Run(context.Background(), audit.Trigger{To: end})
	if err != nil {
		t.Fatal(err)
	}
	if res.Counts[audit.KindImpossibleTravel] != 1 || len(pub.alerts) != 1 {
		t.Fatalf("result %+v, %d messages; want one impossible_travel", res.Counts, len(pub.alerts))
	}
	for _, want := range []string{"11:05 UTC from New York, United States (through the user's own entry 198.18.0.9), 11:50 UTC through the Berlin office entry 203.0.113.0/24",
		"one of the two is not alice"} {
		if !strings.Contains(pub.alerts[0].Email, want) {
			t.Errorf("message lacks %q:\n%s", want, pub.alerts[0].Email)
		}
	}
}
