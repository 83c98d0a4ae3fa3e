package ipguard

import (
	"encoding/json"
	"strings"
)

// SNS limits an Alert must fit (SNS counts the Subject in characters and
// wants it "less than 100 characters long"; the whole structured message and
// its attributes in bytes; one SMS part is 140 ASCII bytes).
const (
	AlertMaxSubjectRunes = 99
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
	// Test marks a test message ({"action": "test-alert"}): it travels with
	// the attribute "test" = "true", and its Default JSON says "test": true.
	Test bool
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

// Size is what SNS counts against AlertMaxMessageBytes: the structured
// message plus every message attribute's name, data type and value (see
// Attributes).
func (a Alert) Size() int {
	n := len(a.StructuredMessage())
	for _, at := range a.Attributes() {
		n += len(at.Name) + len(at.DataType) + len(at.Value)
	}
	return n
}

// MessageAttribute is one SNS message attribute of an Alert.
type MessageAttribute struct {
	Name, DataType, Value string
}

// Attributes are the message attributes an Alert travels with: "severity"
// (String) when Severity is set and "kinds" (String.Array, a JSON list) when
// Kinds is not empty, and "test" (String, "true") for a test message.
func (a Alert) Attributes() []MessageAttribute {
	var out []MessageAttribute
	if a.Test {
		out = append(out, MessageAttribute{"test", "String", "true"})
	}
	if a.Severity != "" {
		out = append(out, MessageAttribute{"severity", "String", a.Severity})
	}
	if len(a.Kinds) > 0 {
		b, _ := json.Marshal(a.Kinds) // strings always encode
		out = append(out, MessageAttribute{"kinds", "String.Array", string(b)})
	}
	return out
}
