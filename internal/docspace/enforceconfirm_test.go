package docspace_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"ipguard/internal/audit"
	"ipguard/internal/docspace"
	"ipguard/internal/enforce"
	"ipguard/internal/enforce/enforcetest"
	"ipguard/internal/testbed/devportal"
)

// A logout whose answer was lost is confirmed from the audit trail, whose
// "session ended" event (4035) names who ended a session, not which one, and
// is dated to the second. The run's own earlier logout, answered a moment
// before in the same second, is not the confirmation of a later logout that
// never reached the portal: that session is still active, and the alert must
// not say "session ended" (attack review of the audit path).
func TestALostLogoutIsNotConfirmedByTheRunsOwnEarlierLogout(t *testing.T) {
	ctx := context.Background()
	p := devportal.New(devportal.Options{})
	victim := "aaaaaaaa-1111-4111-8111-000000000004"
	if err := p.PutUsers(
		devportal.User{ID: admin, Status: devportal.StatusActive, IsAdmin: true},
		devportal.User{ID: someUser, Status: devportal.StatusActive},
		devportal.User{ID: victim, Status: devportal.StatusActive},
	); err != nil {
		t.Fatal(err)
	}
	if err := p.PutKey(devportal.APIKey{Key: enforceKey, CreateBy: admin, IsActive: true}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(p.Handler())
	defer srv.Close()
	c, err := docspace.New(docspace.Options{BaseURL: srv.URL, AllowHTTP: true, Keys: staticKey(enforceKey), MaxAttempts: 1, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ids := p.AddLoginEvents(
		devportal.LoginEvent{Date: time.Now(), UserID: someUser, ActionID: 1000, IP: "192.0.2.1"},
		devportal.LoginEvent{Date: time.Now(), UserID: victim, ActionID: 1000, IP: "192.0.2.2"},
	)
	// The second logout never reaches the portal: a proxy answers 502.
	p.InjectFault(devportal.Fault{Method: http.MethodPut, Path: fmt.Sprintf("/security/activeconnections/logout/%d", ids[1]), Status: http.StatusBadGateway, Times: 1})

	svc := &enforce.Service{Portal: docspace.EnforcePortal{Client: c}, Store: &enforcetest.Store{}, Settings: enforce.Settings{Mode: enforce.ModeEndSession}}
	fs := []audit.Finding{
		{EventID: ids[0], Kind: audit.KindIPNotAllowed, Severity: audit.SeverityHigh, UserID: someUser, IP: "192.0.2.1"},
		{EventID: ids[1], Kind: audit.KindIPNotAllowed, Severity: audit.SeverityHigh, UserID: victim, IP: "192.0.2.2"},
	}
	svc.Respond(ctx, fs, false)

	if s, _ := p.Session(ids[0]); s.Active || fs[0].Response == nil || fs[0].Response.Outcome != audit.OutcomeEnded {
		t.Fatalf("first logout: session %+v, response %+v; want it ended", s, fs[0].Response)
	}
	s, _ := p.Session(ids[1])
	if !s.Active {
		t.Fatalf("the second session was ended (%+v); the fault should have kept the logout from the portal", s)
	}
	if got := fs[1].Response; got == nil || got.Outcome != audit.OutcomeFailed {
		t.Errorf("second logout (never applied, answer lost) = %+v; want %q: the session is still active, and the run's own first logout in the same second is no confirmation", got, audit.OutcomeFailed)
	}
}
