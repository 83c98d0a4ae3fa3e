package integration

import (
	"strings"
	"testing"

	"ipguard/internal/testbed/devportal"
	"ipguard/internal/testbed/localdeploy"
)

// The users-left check that cannot run is told to a person, once per
// episode. A proxy answers people/{id} with its own 404 page (a
// ConfigurationError, never "gone"): with OFFBOARD_REMOVED_USERS=true the
// sync can offboard nobody, however many users left, while the allowlist
// itself still syncs. So the first sync that finds the check failing sends
// an allowlist_users_left alert saying so (and what to check); the syncs
// after it, failing the same way, send none; a sync whose check works ends
// the episode, and the next failure is alerted again. (Before: only a
// warning in the result of a scheduled invocation, which nobody reads; the
// sync counted as completed and no alarm fired.)
func TestUsersLeftCheckThatCannotRunIsAlertedOncePerEpisode(t *testing.T) {
	s := deploy(t, "OFFBOARD_REMOVED_USERS=true")
	if err := s.Portal.PutUsers(devportal.User{ID: alice, DisplayName: "Alice", Email: "alice@example.com", Status: devportal.StatusActive}); err != nil {
		t.Fatal(err)
	}
	svc := onboardService(t)
	mustDo(t, svc, `{"id":"`+alice+`","email":"alice@example.com","allowedIps":["203.0.113.10"]}`)
	proxy404 := devportal.Fault{Method: "GET", Path: "/people/", Status: 404,
		Body: "<html><head><title>404 Not Found</title></head><body><center><h1>404 Not Found</h1></center><hr><center>nginx</center></body></html>"}
	s.Portal.InjectFault(proxy404)
	for range 3 {
		mustDo(t, svc, `{"action":"sync"}`)
	}
	if got := checkAlerts(s); len(got) != 1 || !strings.Contains(got[0].Email, "users who left") {
		t.Fatalf("alerts about the users-left check after 3 failing syncs: %d (%+v); want 1", len(got), got)
	}
	s.Portal.ClearFaults()
	mustDo(t, svc, `{"action":"sync"}`) // the check works again: the episode ends
	s.Portal.InjectFault(proxy404)
	mustDo(t, svc, `{"action":"sync"}`)
	if got := checkAlerts(s); len(got) != 2 {
		t.Errorf("alerts about the users-left check after it failed again: %d; want 2", len(got))
	}
}

// checkAlerts are the published alerts saying the users-left check fails.
func checkAlerts(s *localdeploy.Stack) []localdeploy.Published {
	var out []localdeploy.Published
	for _, p := range s.Published() {
		if strings.Contains(p.Default, "allowlist_users_left") && strings.Contains(p.Default, "could not check") {
			out = append(out, p)
		}
	}
	return out
}
