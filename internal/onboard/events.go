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
	if !known && detailType != "" && !namesAction(detail) {
		// Another event's detail that names neither an action nor a user
		// (a schedule's {}) would be taken as a replace and answered "id is
		// required": name the event. A detail that names a user is a
		// change, of whatever detail-type a pipeline's own rule sends: it
		// runs as a direct payload does.
		hint := "the rule sends UserOnboarded, UserOffboarded or UserAllowlistChanged, or a detail with its \"action\""
		if detailType == "Scheduled Event" {
			hint = "a schedule of this function sends {\"action\": \"sync\"} as its input (SyncSchedule); " + hint
		}
		return Result{}, ipguard.Invalid("detail-type", detailType, "is not an onboarding event and its detail names no action; %s", hint)
	}
	req, err := decodeRequest(detail, implied)
	if err != nil {
		return Result{}, err
	}
	if req.RequestedAt.IsZero() && !at.IsZero() && fieldsOf[req.Action]["requestedAt"] {
		req.RequestedAt, req.timeField = RequestTime(at), "time"
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

// namesAction reports whether detail is an object with an "action" or a
// user ("id", "userId"; in any spelling of the key); a malformed detail is
// left to decodeRequest.
func namesAction(detail []byte) bool {
	props, err := ipguard.ObjectMembers(detail, "detail")
	if err != nil {
		return true
	}
	obj, err := ipguard.ByKnownName(props, []string{"action", "id", "userId"}, "")
	return err != nil || len(obj) > 0
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

// Arrivals is optional on a Store: it remembers when each invocation first
// arrived, by its request id. Lambda retries a failed asynchronous
// invocation (after 1 and 2 minutes; a throttled one for up to 6 hours)
// with the same payload and the same request id, so a direct payload
// without requestedAt is dated by its first arrival, which a retry keeps,
// not by the retry's own arrival (which would make an old request newer
// than a change made meanwhile).
type Arrivals interface {
	// FirstArrival records now as the first arrival of requestID unless
	// one is recorded (kept at least keep), and returns the recorded one.
	FirstArrival(ctx context.Context, requestID string, now time.Time, keep time.Duration) (time.Time, error)
}

// ArrivalKeep is how long a first arrival is remembered: longer than
// Lambda keeps an asynchronous event (6 hours at most), and than the
// failure queue keeps a message (14 days), so that a replay from it
// (Request.ReplayOf) is dated by its invocation's first arrival.
const ArrivalKeep = 15 * 24 * time.Hour

type requestIDKey struct{}

// WithRequestID returns ctx carrying the invocation's request id (Lambda's
// aws_request_id; the same on Lambda's retries of an asynchronous
// invocation).
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

func requestIDFrom(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// firstArrival is when the invocation behind ctx first arrived (see
// Arrivals), zero when unknown (no request id, or a store without it).
func (s *Service) firstArrival(ctx context.Context, now time.Time) (time.Time, error) {
	id := requestIDFrom(ctx)
	arr, ok := s.Store.(Arrivals)
	if id == "" || !ok {
		return time.Time{}, nil
	}
	return arr.FirstArrival(ctx, id, now, ArrivalKeep)
}

// arrivalOf is the first arrival of the invocation requestID, as
// remembered (Arrivals), or at when that is earlier; when it is not
// remembered (any more), at is remembered as its arrival and returned.
// Zero without an Arrivals store.
func (s *Service) arrivalOf(ctx context.Context, requestID string, at time.Time) (time.Time, error) {
	arr, ok := s.Store.(Arrivals)
	if !ok {
		return time.Time{}, nil
	}
	first, err := arr.FirstArrival(ctx, requestID, at, ArrivalKeep)
	if err != nil || first.After(at) {
		return at, err
	}
	return first, nil
}
