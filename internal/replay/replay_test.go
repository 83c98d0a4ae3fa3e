package replay

import (
	"encoding/json"
	"testing"
)

// A direct change request replayed from the on-failure queue keeps its
// time: when it carries no requestedAt, the record's timestamp (when it
// finally failed, at most the function's maximum event age after it was
// sent) becomes its requestedAt, so that a change made after the failure
// (an offboarding, a remove) is newer than the replay and is not undone.
// (Before: the payload went out as it was, the function took "now" as its
// time, and a replay days later re-onboarded a user offboarded since, or
// gave back an address removed since.) EventBridge events keep their own
// time; actions without a time, and payloads that carry one, are unchanged.
func TestPayloadKeepsTheOriginalTimeOfADirectChange(t *testing.T) {
	const ts = "2026-12-01T10:00:00.123Z"
	rec := func(payload string) string {
		return `{"version":"1.0","timestamp":"` + ts + `","requestContext":{"condition":"RetriesExhausted","approximateInvokeCount":3},"requestPayload":` + payload + `,"responsePayload":null}`
	}
	for _, tc := range []struct {
		name, body string
		wantAt     string // "" : no requestedAt added
	}{
		{"onboarding without a time", rec(`{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.1"]}`), ts},
		{"replace named without a time", rec(`{"action":"replace","id":"u1","email":"a@example.com","allowedIps":["203.0.113.1"]}`), ts},
		{"add without a time", rec(`{"action":"add","id":"u1","allowedIps":["203.0.113.1"]}`), ts},
		{"remove without a time", rec(`{"action":"remove","id":"u1","allowedIps":["203.0.113.1"]}`), ts},
		{"offboarding without a time", rec(`{"action":"offboard","id":"u1"}`), ts},
		{"a payload with its own time keeps it", rec(`{"action":"add","id":"u1","allowedIps":["203.0.113.1"],"requestedAt":"2026-11-30T09:00:00Z"}`), "2026-11-30T09:00:00Z"},
		{"sync takes no time", rec(`{"action":"sync"}`), ""},
		{"an EventBridge event keeps its own time", rec(`{"version":"0","detail-type":"UserAllowlistChanged","time":"2026-11-30T09:00:00Z","detail":{"id":"u1"}}`), ""},
		{"a dead-lettered event is sent as it is", `{"version":"0","detail-type":"UserAllowlistChanged","time":"2026-11-30T09:00:00Z","detail":{"id":"u1"}}`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			payload, _ := Payload(tc.body)
			var obj map[string]any
			if err := json.Unmarshal(payload, &obj); err != nil {
				t.Fatalf("payload %s: %v", payload, err)
			}
			got, _ := obj["requestedAt"].(string)
			if got != tc.wantAt {
				t.Errorf("requestedAt = %q, want %q (payload %s)", got, tc.wantAt, payload)
			}
		})
	}
}

// A direct change replayed from the on-failure queue names the invocation
// it sends again ("replayOf": the record's requestContext.requestId), so
// that the function dates it by that invocation's first arrival, not by
// the failure: a remove made while Lambda was still retrying it stays newer
// (attack review, #15 §5). EventBridge events and payloads with their own
// time carry no replayOf; a record without a request id adds none.
func TestPayloadNamesTheInvocationItReplays(t *testing.T) {
	const ts = "2026-12-01T10:00:00.123Z"
	rec := func(requestID, payload string) string {
		return `{"version":"1.0","timestamp":"` + ts + `","requestContext":{"requestId":"` + requestID + `","condition":"RetriesExhausted","approximateInvokeCount":3},"requestPayload":` + payload + `,"responsePayload":null}`
	}
	for _, tc := range []struct {
		name, body, want string
	}{
		{"add without a time", rec("e4b46cbf-b738-4ee6-8880-a18cdf61200e", `{"action":"add","id":"u1","allowedIps":["203.0.113.1"]}`), "e4b46cbf-b738-4ee6-8880-a18cdf61200e"},
		{"onboarding without a time", rec("r-2", `{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.1"]}`), "r-2"},
		{"a payload with its own time", rec("r-3", `{"action":"add","id":"u1","allowedIps":["203.0.113.1"],"requestedAt":"2026-11-30T09:00:00Z"}`), ""},
		{"no request id in the record", rec("", `{"action":"add","id":"u1","allowedIps":["203.0.113.1"]}`), ""},
		{"an EventBridge event", rec("r-4", `{"version":"0","id":"e","source":"s","detail-type":"UserAllowlistChanged","time":"2026-11-30T09:00:00Z","detail":{"id":"u1"}}`), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			payload, _ := Payload(tc.body)
			var obj map[string]any
			if err := json.Unmarshal(payload, &obj); err != nil {
				t.Fatalf("payload %s: %v", payload, err)
			}
			if got, _ := obj["replayOf"].(string); got != tc.want {
				t.Errorf("replayOf = %q, want %q (payload %s)", got, tc.want, payload)
			}
		})
	}
}
