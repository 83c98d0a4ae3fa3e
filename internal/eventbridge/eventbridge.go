// Package eventbridge unwraps the EventBridge event envelope that both
// functions may be invoked with, so that the domain packages see only their
// own payloads:
//
//	{"version": "0", "id": "...", "detail-type": "Scheduled Event", "source": "aws.events",
//	 "time": "2026-11-25T09:15:00Z", "detail": {...}}
package eventbridge

import (
	"bytes"
	"encoding/json"
	"time"

	"ipguard/internal/ipguard"
)

// Unwrap returns the payload a function acts on and the event's time.
//
// An EventBridge event (a JSON object with "detail-type" or "source") yields
// its "detail" — an object, or the JSON a string holds (EventBridge Scheduler
// sends the string "{}") — and its "time" (zero when absent); no detail is
// the empty object. Any other payload comes back unchanged with a zero time.
// A "time" that is not RFC3339 is an EInvalid error naming the field.
func Unwrap(payload []byte) (detail []byte, at time.Time, err error) {
	var env map[string]json.RawMessage
	if json.Unmarshal(payload, &env) != nil || env == nil {
		return payload, time.Time{}, nil
	}
	_, typed := env["detail-type"]
	_, sourced := env["source"]
	if !typed && !sourced {
		return payload, time.Time{}, nil
	}
	if raw, ok := env["time"]; ok {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, time.Time{}, ipguard.Invalid("time", string(raw), "must be an RFC3339 time")
		}
		if at, err = time.Parse(time.RFC3339Nano, s); err != nil {
			return nil, time.Time{}, ipguard.Invalid("time", s, "must be an RFC3339 time")
		}
		at = at.UTC()
	}
	detail = bytes.TrimSpace(env["detail"])
	var s string
	if json.Unmarshal(detail, &s) == nil {
		detail = []byte(s)
	}
	if len(bytes.TrimSpace(detail)) == 0 || string(detail) == "null" {
		detail = []byte("{}")
	}
	return detail, at, nil
}
