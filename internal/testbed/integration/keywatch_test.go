package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"ipguard/internal/config"
	"ipguard/internal/ipguard"
	"ipguard/internal/keywatch"
	"ipguard/internal/testbed/devportal"
	"ipguard/internal/testbed/localdeploy"
	"os"
	"strings"
	"testing"
	"time"
)

// setKey changes the portal's description of the deployment's key.
func setKey(t *testing.T, s *localdeploy.Stack, change func(expires *time.Time) (*time.Time, bool)) {
	t.Helper()
	k, ok := s.Portal.Key(s.APIKey)
	if !ok {
		t.Fatal("the portal does not know the deployment's key")
	}
	k.Name = "ipguard audit"
	var exp time.Time
	if k.ExpiresAt != nil {
		exp = *k.ExpiresAt
	}
	k.ExpiresAt, k.IsActive = change(&exp)
	if err := s.Portal.PutKey(k); err != nil {
		t.Fatal(err)
	}
}

func expiresIn(d time.Duration) func(*time.Time) (*time.Time, bool) {
	return func(*time.Time) (*time.Time, bool) { at := time.Now().Add(d); return &at, true }
}

// keyAlerts are the api_key_expiring alerts published so far, by severity.
func keyAlerts(t *testing.T, s *localdeploy.Stack) []string {
	t.Helper()
	var sev []string
	for _, p := range s.Published() {
		var body map[string]any
		if json.Unmarshal([]byte(p.Default), &body) == nil && body["kind"] == keywatch.Kind {
			sev = append(sev, body["severity"].(string))
			if strings.Contains(p.Default+p.Email+p.SMS+p.Subject, s.APIKey[:12]) {
				t.Errorf("alert shows the key: %+v", p)
			}
		}
	}
	return sev
}

func TestKeyExpiryIsAlertedOncePerThreshold(t *testing.T) {
	s := deploy(t)
	audit := auditService(t)
	run := func() []string {
		t.Helper()
		res, err := audit.Handle(context.Background(), scheduled(time.Now()))
		if err != nil {
			t.Fatalf("audit run: %v", err)
		}
		return res.Warnings
	}

	setKey(t, s, expiresIn(30*24*time.Hour))
	run()
	if got := keyAlerts(t, s); len(got) != 0 {
		t.Fatalf("a key with 30 days left was alerted: %v", got)
	}

	setKey(t, s, expiresIn(10*24*time.Hour)) // past the 14-day threshold
	warnings := run()
	run() // the same threshold again: no second alert
	if got := keyAlerts(t, s); len(got) != 1 || got[0] != "medium" {
		t.Fatalf("alerts after two runs past 14 days = %v, want one medium", got)
	}
	if !strings.Contains(strings.Join(warnings, " "), `"ipguard audit"`) {
		t.Errorf("the run's warnings %q do not name the key", warnings)
	}

	setKey(t, s, expiresIn(3*24*time.Hour)) // past 7 days
	run()
	setKey(t, s, expiresIn(20*time.Hour)) // past 1 day: high
	run()
	run()
	if got := keyAlerts(t, s); strings.Join(got, ",") != "medium,medium,high" {
		t.Fatalf("alerts = %v, want medium (14 d), medium (7 d), high (1 d), once each", got)
	}
}

func TestInactiveOrRefusedKeyIsAConfigurationErrorNamingIt(t *testing.T) {
	s := deploy(t)
	audit := auditService(t)
	setKey(t, s, expiresIn(100*24*time.Hour))
	auditRun(t, audit, time.Now())
	k, _ := s.Portal.Key(s.APIKey)
	setKey(t, s, func(e *time.Time) (*time.Time, bool) { return e, false }) // deactivated
	_, err := audit.Handle(context.Background(), scheduled(time.Now()))
	if ipguard.ErrorCode(err) != ipguard.EConfig {
		t.Fatalf("err = %v, want a ConfigurationError", err)
	}
	msg := err.Error()
	if !strings.Contains(msg, `"ipguard audit"`) || !strings.Contains(msg, k.KeyPostfix) || !strings.Contains(msg, "DOCSPACE_API_KEY_SECRET_ID") {
		t.Errorf("error %q does not name the key (name, postfix) and what to do", msg)
	}
	for i := 0; i+8 <= len(s.APIKey); i++ {
		if strings.Contains(msg, s.APIKey[i:i+8]) {
			t.Fatalf("error shows part of the key: %s", msg)
		}
	}
}

func TestPortalWithoutKeysSelfIsAWarning(t *testing.T) {
	s := deploy(t)
	s.Portal.SetKeysSelfAvailable(false)
	res, err := auditService(t).Handle(context.Background(), scheduled(time.Now()))
	if err != nil {
		t.Fatalf("a portal older than v3.1.1 failed the run: %v", err)
	}
	if !strings.Contains(strings.Join(res.Warnings, " "), "not watched") {
		t.Errorf("warnings %q do not say the key is not watched", res.Warnings)
	}
}

// An expired key on the very first run: the portal refuses it (401) and
// cannot describe it, so the error names it by its last characters.
func TestExpiredKeyOnTheFirstRunIsNamedByItsPostfix(t *testing.T) {
	s := deploy(t)
	setKey(t, s, expiresIn(-time.Hour))
	k, _ := s.Portal.Key(s.APIKey)
	_, err := auditService(t).Handle(context.Background(), scheduled(time.Now()))
	if ipguard.ErrorCode(err) != ipguard.EConfig || !strings.Contains(err.Error(), "ending in "+k.KeyPostfix) {
		t.Fatalf("err = %v, want a ConfigurationError naming the key ending in %s", err, k.KeyPostfix)
	}
}

// Issue 16 §8: the key-expiry check runs even when the audit part of a run
// fails: a key about to expire is alerted whatever else is wrong.
func TestKeyExpiryIsAlertedEvenWhenTheAuditFails(t *testing.T) {
	s := deploy(t)
	audit := auditService(t)
	setKey(t, s, expiresIn(10*24*time.Hour))
	s.Portal.InjectFault(devportal.Fault{Status: 500, Path: "/security/audit/login/filter"})
	if _, err := audit.Handle(context.Background(), scheduled(time.Now())); err == nil {
		t.Fatal("the audit did not fail")
	}
	if got := keyAlerts(t, s); len(got) != 1 || got[0] != "medium" {
		t.Fatalf("key alerts after a failed audit = %v, want one medium", got)
	}
}

// The key-expiry alert's chat copy is counted like every other alert's: a
// chat topic that refuses it makes the run's metrics line declare
// ChatUndelivered (ChatUndeliveredAlarm). Before, the key watch had a
// publisher chain of its own whose chat failures no line counted (attack
// review of the audit path).
func TestAKeyAlertsFailedChatCopyIsCounted(t *testing.T) {
	s := deploy(t)
	topic := os.Getenv("ALERT_TOPIC_ARN")
	i := strings.LastIndex(topic, ":")
	t.Setenv("CHAT_TOPIC_ARN", topic[:i+1]+"no-such-chat-topic") // publishing to it fails
	setKey(t, s, expiresIn(10*24*time.Hour))                     // past the 14-day threshold: one alert
	d := loadQuiet(t, config.Audit)
	var lines bytes.Buffer
	d.MetricsOut = &lines
	if _, err := d.AuditHandler()(context.Background(), scheduled(time.Now())); err != nil {
		t.Fatal(err)
	}
	if got := keyAlerts(t, s); len(got) != 1 {
		t.Fatalf("key alerts %v; want one", got)
	}
	if l := lines.String(); !strings.Contains(l, `{"Name":"ChatUndelivered"`) || strings.Contains(l, `"ChatUndelivered":0`) {
		t.Errorf("metrics line %s; want ChatUndelivered declared above 0 for the key alert's failed chat copy", l)
	}
}
