package integration

import (
	"context"
	"testing"
	"time"
)

// Issue 16 §7, as the demo showed it: right after an offboarding the next
// run re-reads the overlap, where the user's earlier, allowed logins are.
// They were allowed when they happened, so nothing is alerted ("never
// onboarded" would be wrong); a login after the offboarding is.
func TestOffboardingDoesNotTurnEarlierLoginsIntoUnknownUsers(t *testing.T) {
	s := deploy(t, "UNKNOWN_USER_POLICY=alert") // each unknown user's login a message (the digest is #21's default)
	onboardAliceAndBob(t)
	audit := auditService(t)
	if _, err := audit.Handle(context.Background(), scheduled(time.Now().Add(-4*time.Minute))); err != nil {
		t.Fatal(err)
	}
	s.Portal.AddLoginEvents(
		login(alice, 1010, "203.0.113.10", 3*time.Minute),
		login(alice, 1010, "10.20.0.7", 2*time.Minute),
		login(alice, 1010, "198.51.100.9", 2*time.Minute))
	mustDo(t, onboardService(t), `{"action":"offboard","id":"`+alice+`"}`)
	time.Sleep(1100 * time.Millisecond) // the offboarding's second is past
	s.Portal.AddLoginEvents(login(alice, 1010, "203.0.113.10", 0))
	if _, err := audit.Handle(context.Background(), scheduled(time.Now().Add(time.Second))); err != nil {
		t.Fatal(err)
	}
	evs := alerted(t, s)
	if len(evs) != 1 || evs[0]["kind"] != "unknown_user" {
		t.Fatalf("alerts %v; want only the login after the offboarding, as unknown_user", summary(evs))
	}
}
