package integration

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"ipguard/internal/audit"
)

// #21 §4 end to end with the real adapters: an entry's place goes through
// the onboarding function into DynamoDB (never to the portal), and the
// audit judges travel with it. Alice logs in from New York, and 10 minutes
// later her credentials are used through the shared Berlin office address
// (whose GeoIP wrongly says New York): one impossible_travel finding naming
// both logins and the Berlin office entry.
func TestDeclaredPlaceFromOnboardingToTravel(t *testing.T) {
	s := deploy(t)
	ctx := context.Background()
	res, err := onboardService(t).Handle(ctx, []byte(`{"id":"`+alice+`","email":"alice@example.com","allowedIps":[`+
		`{"ip":"203.0.113.0/24","note":"office","place":"Berlin"},"198.51.100.7"]}`))
	if err != nil || !res.Stored {
		t.Fatalf("onboard: %+v, %v", res, err)
	}
	list, _ := s.Portal.Restrictions()
	for _, r := range list {
		if strings.Contains(r.IP, "Berlin") || strings.Contains(r.IP, ",") {
			t.Errorf("the portal got %q", r.IP)
		}
	}
	ny := func(ip string, ago time.Duration) {
		ev := login(alice, 1010, ip, ago)
		ev.Country, ev.City = "United States", "New York"
		s.Portal.AddLoginEvents(ev)
	}
	ny("198.51.100.7", 12*time.Minute)
	ny("203.0.113.40", 2*time.Minute)
	r, err := auditService(t).Handle(ctx, scheduled(time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	if r.Counts[audit.KindImpossibleTravel] != 1 || r.Counts[audit.KindIPNotAllowed] != 0 {
		t.Fatalf("counts %v, want one impossible_travel", r.Counts)
	}
	evs := alerted(t, s)
	if len(evs) != 1 || !strings.Contains(fmt.Sprint(evs[0]["reasons"]), "through the Berlin office entry 203.0.113.0/24") {
		t.Fatalf("alerted %v", evs)
	}
}
