package integration

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"ipguard/internal/config"
)

// An onboarding alert that SNS does not take is an alarm, not only a log
// line: the real handler's metrics line declares AlertsUndelivered (read by
// OnboardAlertsUndeliveredAlarm), and once SNS takes it again the next sync
// sends it and the line no longer declares it. (Before: the failed publish
// was only logged.)
func TestOnboardAlertSNSRefusedIsAMetric(t *testing.T) {
	s := deploy(t)
	s.Portal.SetRestrictions(manual, false)
	d := loadQuiet(t, config.Onboard)
	var lines bytes.Buffer
	d.MetricsOut = &lines
	svc := d.OnboardHandler()
	if _, err := svc(context.Background(), []byte(`{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.10"]}`)); err != nil {
		t.Fatal(err)
	}
	list, _ := s.Portal.Restrictions()
	s.Portal.SetRestrictions(list, false) // switched off by hand: a drift alert is due
	s.FailPublish(true)
	lines.Reset()
	if _, err := svc(context.Background(), []byte(`{"action":"sync"}`)); err != nil {
		t.Fatal(err)
	}
	if l := lines.String(); !strings.Contains(l, `{"Name":"AlertsUndelivered"`) || strings.Contains(l, `"AlertsUndelivered":0`) {
		t.Fatalf("sync with SNS refusing: metrics line %s; want AlertsUndelivered declared above 0", l)
	}
	s.FailPublish(false)
	lines.Reset()
	if _, err := svc(context.Background(), []byte(`{"action":"sync"}`)); err != nil {
		t.Fatal(err)
	}
	if l := lines.String(); strings.Contains(l, `{"Name":"AlertsUndelivered"`) || !strings.Contains(l, `"AlertsUndelivered":0`) {
		t.Errorf("sync after SNS recovered: metrics line %s; want AlertsUndelivered 0, not declared", l)
	}
}
