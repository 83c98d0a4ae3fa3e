package ipguard

import (
	"encoding/json"
	"strings"
)

// SNS limits an Alert must fit (SNS counts the Subject in characters and the
// whole structured message in bytes; one SMS part is 140 ASCII bytes).
const (
	AlertMaxSubjectRunes = 100
	AlertMaxMessageBytes = 256 * 1024
	AlertMaxSMSBytes     = 140
)

// Alert is one SNS message: one body per protocol. Default is the JSON body
// every other protocol (and the SQS/Lambda subscribers) receives.
//
// Severity (the highest severity of the findings in it: "critical", "high",
// "medium") and Kinds (the finding kinds in it) travel as message attributes
// "severity" and "kinds", so that a subscription's filter policy can route
// the message (e.g. SMS only for high and critical).
type Alert struct {
	Subject  string
	Default  string
	Email    string
	SMS      string
	Severity string
	Kinds    []string
}

// StructuredMessage is the Message SNS receives with MessageStructure
// "json": {"default", "email", "sms"}, without the empty protocol bodies.
// Its length is what counts against AlertMaxMessageBytes.
func (a Alert) StructuredMessage() string {
	body := struct {
		Default string `json:"default"`
		Email   string `json:"email,omitempty"`
		SMS     string `json:"sms,omitempty"`
	}{a.Default, a.Email, a.SMS}
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // SNS counts the bytes we send; keep them few and readable
	_ = enc.Encode(body)     // strings always encode
	return strings.TrimSuffix(b.String(), "\n")
}
