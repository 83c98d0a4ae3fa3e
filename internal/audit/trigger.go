// Package audit reads the portal's login events of a window, checks each
// against the user's allowlist, and publishes the violations once.
package audit

import (
	"encoding/json"
	"sort"
	"strconv"
	"strings"
	"time"

	"ipguard/internal/ipguard"
)

// Trigger is what started a run: the end of the window, or an explicit
// window for a backfill.
type Trigger struct {
	To       time.Time
	From     time.Time // set only for a backfill
	Backfill bool
}

// DecodeTrigger reads the invocation payload (an EventBridge event's detail
// when the function was invoked through EventBridge) and at, the event's time
// (zero when there was no event envelope):
//
//   - a scheduled run: the window ends at at, or now when at is zero (an
//     EventBridge Scheduler Input such as {});
//   - a backfill {"from": RFC3339, "to": RFC3339}: exactly that window.
//
// {"action": "audit"} is a scheduled run asked for by name. Anything else is
// EInvalid naming the field, so that a payload meant for something else
// never runs an audit that moves the checkpoint: malformed JSON (naming the
// position), a value that is not an object, another action, or a field
// other than from, to and action. A window end in the future is pulled
// back to now. Malformed times are EInvalid errors naming the field.
func DecodeTrigger(payload []byte, at, now time.Time) (Trigger, error) {
	now = now.UTC()
	var obj map[string]json.RawMessage
	if len(strings.TrimSpace(string(payload))) > 0 && string(payload) != "null" {
		if err := ipguard.CheckJSON("event", payload); err != nil {
			return Trigger{}, err
		}
		if err := json.Unmarshal(payload, &obj); err != nil {
			return Trigger{}, ipguard.Invalid("event", string(payload), "must be a JSON object (a scheduled event or {\"from\": ..., \"to\": ...})")
		}
	}
	if err := checkTriggerFields(obj); err != nil {
		return Trigger{}, err
	}
	t := Trigger{To: now}
	if !at.IsZero() {
		t.To = at.UTC()
	}
	if has(obj, "from") || has(obj, "to") {
		from, err := timeField(obj, "from")
		if err != nil {
			return Trigger{}, err
		}
		to, err := timeField(obj, "to")
		if err != nil {
			return Trigger{}, err
		}
		if !from.Before(to) {
			return Trigger{}, ipguard.Invalid("from", from.Format(time.RFC3339), "must be before to (%s)", to.Format(time.RFC3339))
		}
		t = Trigger{From: from, To: to, Backfill: true}
	}
	if t.To.After(now) {
		t.To = now
	}
	if t.Backfill && !t.From.Before(t.To) {
		return Trigger{}, ipguard.Invalid("from", t.From.Format(time.RFC3339), "is in the future")
	}
	return t, nil
}

// ActionAudit is the one "action" a run accepts: an audit run by name.
const ActionAudit = "audit"

// digestID reports whether a Publisher's message id is a daily digest's
// (DigestMessagePrefix): the batch waits for the digest, no message was sent.
func digestID(id string) bool { return strings.HasPrefix(id, DigestMessagePrefix) }

// onboardActions are the OnboardFunction's actions, named as such when sent here.
var onboardActions = map[string]bool{"add": true, "remove": true, "offboard": true, "get": true, "sync": true, "preview": true, "replace": true, "onboard": true}

// checkTriggerFields refuses fields a run does not know (see DecodeTrigger).
func checkTriggerFields(obj map[string]json.RawMessage) error {
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		switch k {
		case "from", "to":
		case "action":
			var a string
			if err := json.Unmarshal(obj[k], &a); err != nil || !strings.EqualFold(strings.TrimSpace(a), ActionAudit) {
				if err != nil {
					a = string(obj[k]) // not a string: the JSON as sent
				}
				if onboardActions[strings.ToLower(strings.TrimSpace(a))] {
					return ipguard.Invalid("action", a, "is an action of the OnboardFunction: invoke that function with it; this one takes status, test-alert, learn or audit (or no action: a scheduled run; {\"from\", \"to\"}: a backfill)")
				}
				return ipguard.Invalid("action", a, "is not an action of the audit function; use status, test-alert, learn or audit (or no action: a scheduled run; {\"from\", \"to\"}: a backfill)")
			}
		default:
			return ipguard.Invalid(fieldName(k), string(obj[k]), "is not a field of an audit run: send {} or a scheduled event for a run, {\"from\": RFC3339, \"to\": RFC3339} for a backfill, or {\"action\": \"status\"|\"test-alert\"}, or {\"action\": \"learn\", \"days\": N, \"dryRun\": true}")
		}
	}
	return nil
}

// fieldName names a caller's field in an error: as it is, or quoted when
// it is blank (so that the error still names one).
func fieldName(k string) string {
	if strings.TrimSpace(k) == "" {
		return strconv.Quote(k)
	}
	return k
}

func timeField(obj map[string]json.RawMessage, key string) (time.Time, error) {
	raw, ok := obj[key]
	if !ok {
		return time.Time{}, ipguard.Invalid(key, "", "is required for a backfill (RFC3339, e.g. 2026-11-25T09:00:00Z)")
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return time.Time{}, ipguard.Invalid(key, string(raw), "must be an RFC3339 time string")
	}
	at, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(s))
	if err != nil {
		return time.Time{}, ipguard.Invalid(key, s, "must be an RFC3339 time such as 2026-11-25T09:00:00Z")
	}
	return at.UTC(), nil
}

func has(obj map[string]json.RawMessage, key string) bool {
	_, ok := obj[key]
	return ok
}
