// Package eventbridge unwraps the EventBridge event envelope that both
// functions may be invoked with, so that the domain packages see only their
// own payloads:
//
//	{"version": "0", "id": "...", "detail-type": "Scheduled Event", "source": "aws.events",
//	 "time": "2026-11-25T09:15:00Z", "detail": {...}, "account": "...", "region": "...", "resources": [...]}
//
// Only an object with all six fields version, id, detail-type, source, time
// and detail (the first five strings) is an envelope: EventBridge always sends
// them, while a pipeline's own payload may well carry a "source" or an "id"
// of its own.
package eventbridge

import (
	"bytes"
	"encoding/json"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"ipguard/internal/ipguard"
)

// envelopeFields are the fields every EventBridge event has.
var envelopeFields = []string{"version", "id", "detail-type", "source", "time", "detail"}

// Event is the envelope as aws-lambda-go decodes it.
type Event = events.EventBridgeEvent

// Unwrap returns the payload a function acts on and the event's time.
//
// An EventBridge event (see the package comment) yields its "detail" — an
// object, or the JSON a string holds (EventBridge Scheduler sends the string
// "{}"); null is the empty object — and its "time" in UTC. A "time" that is
// not an RFC3339 string is an EInvalid error naming the field. Any other
// payload, including an object that has only some of the envelope's fields,
// comes back unchanged with a zero time.
func Unwrap(payload []byte) (detail []byte, at time.Time, err error) {
	ev, ok, err := Decode(payload)
	if err != nil || !ok {
		return payload, time.Time{}, err
	}
	detail = bytes.TrimSpace(ev.Detail)
	var s string
	if json.Unmarshal(detail, &s) == nil {
		detail = bytes.TrimSpace([]byte(s))
	}
	if len(detail) == 0 || string(detail) == "null" {
		detail = []byte("{}")
	}
	return detail, ev.Time, nil
}

// Decode reports whether payload is an EventBridge envelope (see the package
// comment) and, if so, returns it decoded with its Time in UTC.
func Decode(payload []byte) (Event, bool, error) {
	var fields map[string]json.RawMessage
	if json.Unmarshal(payload, &fields) != nil || fields == nil {
		return Event{}, false, nil
	}
	for _, name := range envelopeFields {
		raw, ok := fields[name]
		if !ok {
			return Event{}, false, nil
		}
		if name == "detail" {
			continue
		}
		var s string
		if json.Unmarshal(raw, &s) != nil {
			if name == "time" {
				return Event{}, false, ipguard.Invalid("time", string(raw), "must be an RFC3339 time")
			}
			return Event{}, false, nil // not EventBridge's shape: someone's own payload
		}
		if name == "time" {
			if _, err := time.Parse(time.RFC3339Nano, s); err != nil {
				return Event{}, false, ipguard.Invalid("time", s, "must be an RFC3339 time")
			}
		}
	}
	var ev Event
	if err := json.Unmarshal(payload, &ev); err != nil {
		// The six fields were checked above; what fails here is an optional
		// one of the wrong type (e.g. "resources" not a list of strings).
		return Event{}, false, ipguard.Invalid("event", string(payload), "is an EventBridge event with a malformed field: %v", err)
	}
	ev.Time = ev.Time.UTC()
	return ev, true, nil
}
