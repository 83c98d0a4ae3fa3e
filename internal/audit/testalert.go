package audit

import (
	"encoding/json"
	"fmt"
	"time"

	"ipguard/internal/humantext"
	"ipguard/internal/ipguard"
)

// KindTestAlert is the kind of the message {"action": "test-alert"} sends.
const KindTestAlert = "test_alert"

// TestPayload is the JSON body of a test alert. Test is always true: routing
// rules and consumers tell a test from a finding by it (and by the message
// attribute "test").
type TestPayload struct {
	Test      bool   `json:"test"`
	Kind      string `json:"kind"` // KindTestAlert
	Portal    string `json:"portal"`
	SentAt    string `json:"sentAt"`
	RequestID string `json:"requestId,omitempty"`
	Message   string `json:"message"`
}

// TestAlert renders the one message of {"action": "test-alert"}: it proves
// that alerts reach every subscriber, and says plainly that it is a test.
// It travels with the attributes test=true and severity critical, so that
// every subscription whose filter passes some finding (e.g. SMS for high
// and critical) receives it too; a filter that must not, excludes test.
func TestAlert(portal string, at time.Time, requestID string) (ipguard.Alert, error) {
	portal = humantext.Line(portal, 200)
	at = at.UTC()
	msg := "This is a test of DocSpace IP Guard's alert delivery for " + portal + ". Nothing happened on the portal; no action is needed. If you read this, alerts reach you."
	body, err := json.Marshal(TestPayload{Test: true, Kind: KindTestAlert, Portal: portal, SentAt: at.Format(time.RFC3339), RequestID: humantext.Line(requestID, 100), Message: msg})
	if err != nil {
		return ipguard.Alert{}, ipguard.Errorf(ipguard.EInternal, "render test alert: %w", err)
	}
	email := msg + "\n\nSent at " + at.Format(time.RFC3339) + " by {\"action\": \"test-alert\"} on the audit function"
	if requestID != "" {
		email += " (request " + humantext.Line(requestID, 100) + ")"
	}
	email += ".\nIt is recorded nowhere: no alert record, no finding, no metric of findings.\n"
	return ipguard.Alert{
		Subject:  humantext.Line("DocSpace TEST alert: delivery check, no action needed", MaxSubjectRunes),
		Default:  string(body),
		Email:    email,
		SMS:      humantext.ASCII(fmt.Sprintf("DocSpace IP Guard TEST alert %sZ: delivery works, no action needed.", at.Format("2006-01-02 15:04")), MaxSMSBytes),
		Severity: SeverityCritical,
		Kinds:    []string{KindTestAlert},
		Test:     true,
	}, nil
}
