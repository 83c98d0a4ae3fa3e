// Package snsmessage is the SNS side of an alert that the domain must know to
// shape one: SNS's limits (subject characters, message bytes, one SMS part)
// and the message SNS receives (the JSON of MessageStructure "json" and the
// message attributes), whose size counts against them. It imports no AWS
// package, so the domain packages that render alerts (audit, keywatch,
// onboard) may use it; package snsalert publishes through it.
package snsmessage

import (
	"encoding/json"
	"strings"

	"ipguard/internal/ipguard"
)

// SNS limits an alert must fit (SNS counts the Subject in characters and
// wants it "less than 100 characters long"; the whole structured message and
// its attributes in bytes; one SMS part is 140 ASCII bytes).
const (
	MaxSubjectRunes = 99
	MaxMessageBytes = 256 * 1024
	MaxSMSBytes     = 140
)

// Structured is the Message SNS receives with MessageStructure
// "json": {"default", "email", "sms"}, without the empty protocol bodies.
// Its length is what counts against MaxMessageBytes.
func Structured(a ipguard.Alert) string {
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

// Size is what SNS counts against MaxMessageBytes: the structured
// message plus every message attribute's name, data type and value (see
// Attributes).
func Size(a ipguard.Alert) int {
	n := len(Structured(a))
	for _, at := range Attributes(a) {
		n += len(at.Name) + len(at.DataType) + len(at.Value)
	}
	return n
}

// MessageAttribute is one SNS message attribute of an alert.
type MessageAttribute struct {
	Name, DataType, Value string
}

// Attributes are the message attributes an alert travels with: "severity"
// (String) when Severity is set and "kinds" (String.Array, a JSON list) when
// Kinds is not empty.
func Attributes(a ipguard.Alert) []MessageAttribute {
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
