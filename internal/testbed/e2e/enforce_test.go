package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"ipguard/internal/audit"
)

// The real bootstrap, deployed with EnforcementMode=end-session, ends the
// violating login's session once, before alerting, and says so; a bad mode
// is a ConfigurationError naming the variable.
func TestAuditEndsTheViolatingSession(t *testing.T) {
	s := deployWithJane(t)
	fn := startFunction(t, "audit", s.FunctionEnv("ENFORCEMENT_MODE=end-session"))
	now := time.Now()
	ids := s.Portal.AddLoginEvents(janeLogin(now.Add(-2*time.Minute), "203.0.113.10"), janeLogin(now.Add(-time.Minute), "192.0.2.77"))

	var res audit.Result
	fn.invoke(t, scheduledEvent(now)).result(t, &res)
	if res.SessionEnded != 1 || res.Responses[audit.OutcomeEnded] != 1 || res.AlertsPublished != 1 {
		t.Errorf("result %s; want 1 session ended and alerted", jsonText(res))
	}
	allowed, _ := s.Portal.Session(ids[0])
	violating, _ := s.Portal.Session(ids[1])
	if !allowed.Active || violating.Active || len(s.Portal.Logouts()) != 1 {
		t.Errorf("sessions: allowed %+v, violating %+v, logout calls %v", allowed, violating, s.Portal.Logouts())
	}
	if _, err := s.Mail(context.Background(), mailQuiet); err != nil {
		t.Fatal(err)
	}

	fn.invoke(t, scheduledEvent(now.Add(time.Second))).result(t, &res)
	if len(s.Portal.Logouts()) != 1 {
		t.Errorf("the next run acted again: %v", s.Portal.Logouts())
	}
}

func TestAuditRejectsAnUnknownEnforcementMode(t *testing.T) {
	s := deploy(t)
	fn := startFunction(t, "audit", s.FunctionEnv("ENFORCEMENT_MODE=lockout"))
	r := fn.invoke(t, scheduledEvent(time.Now()))
	if r.ErrorType != "ConfigurationError" || !strings.Contains(r.ErrorMessage, `ENFORCEMENT_MODE must be report, end-session or end-all-sessions (got "lockout")`) {
		t.Errorf("answer %s; want a ConfigurationError naming ENFORCEMENT_MODE and its value", r.Raw)
	}
}
