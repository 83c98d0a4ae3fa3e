package onboard

import (
	"context"
	"time"

	"ipguard/internal/ipguard"
)

// EventBridge detail-types of the onboarding function's rule, and the
// action each implies when the detail names none.
var detailTypeAction = map[string]string{
	"UserOnboarded":        ActionReplace,
	"UserOffboarded":       ActionOffboard,
	"UserAllowlistChanged": "", // the detail names add or remove (or none: replace)
}

// HandleEvent runs the detail of an EventBridge event of detailType ("" for
// a direct invocation, which is Handle). UserOffboarded means offboard when
// the detail names no action; an action that contradicts the detail-type
// (UserOffboarded with "add") is EInvalid.
func (s *Service) HandleEvent(ctx context.Context, detailType string, detail []byte) (Result, error) {
	return s.HandleEventAt(ctx, detailType, time.Time{}, detail)
}

// HandleEventAt is HandleEvent for an event sent at (the EventBridge
// event's "time"; zero for a direct invocation): a change without its own
// requestedAt was asked for then, so a replay keeps its original time.
func (s *Service) HandleEventAt(ctx context.Context, detailType string, at time.Time, detail []byte) (Result, error) {
	implied, known := detailTypeAction[detailType]
	req, err := decodeRequest(detail, implied)
	if err != nil {
		return Result{}, err
	}
	if req.RequestedAt.IsZero() && !at.IsZero() && fieldsOf[req.Action]["requestedAt"] {
		req.RequestedAt = RequestTime(at)
	}
	switch {
	case !known:
	case detailType == "UserAllowlistChanged" && req.Action != ActionAdd && req.Action != ActionRemove && req.Action != ActionReplace:
		return Result{}, ipguard.Invalid("action", req.Action, "does not fit detail-type UserAllowlistChanged (use add or remove, or none to replace the entries)")
	case detailType != "UserAllowlistChanged" && req.Action != implied:
		return Result{}, ipguard.Invalid("action", req.Action, "does not fit detail-type %s", detailType)
	}
	return s.Do(ctx, req)
}

// RequestTime is t at the one precision request times are ordered by, end
// to end (parsed, stored, compared): the millisecond, in UTC. An
// EventBridge event's time (whole seconds) is the first millisecond of its
// second. Within one millisecond the later arrival wins: a retry of the
// same request, or two requests no clock can order.
func RequestTime(t time.Time) time.Time { return t.UTC().Truncate(time.Millisecond) }

// fmtRequestTime names a request time in a warning: RFC 3339 with its
// milliseconds (none shown when zero).
func fmtRequestTime(t time.Time) string { return RequestTime(t).Format(time.RFC3339Nano) }
