package ipguard

// Alert is one message to a person: one body per protocol (its SNS shape
// and limits are package snsmessage's). Default is the JSON body
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
	// Digest marks findings that go to the daily digest, not in a message
	// of their own (issue #21 §2: episodes' repeats, familiar places). The
	// digest step keeps them (package behaviour marks them only when the
	// digest is on).
	Digest bool
}
