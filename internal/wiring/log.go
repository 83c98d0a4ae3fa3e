package wiring

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"

	"ipguard/internal/redact"
)

// NewLogger returns the JSON logger of both functions, writing to w at level.
// Every line carries
//
//   - "functionName" (AWS_LAMBDA_FUNCTION_NAME) and, while an invocation
//     runs, its "requestId": from the context when the line is logged with
//     one (InfoContext, ...), otherwise from the invocation Start is serving;
//   - durations in milliseconds, under the attribute's key plus "Ms"
//     ("waited" → "waitedMs": 200.5);
//   - no secret: the message, every string (also inside lists, maps and
//     structs) and every error are cleaned by
//     package redact.
//
// Services built once at start share this logger and still get the request
// id of each invocation: Lambda runs one invocation per process at a time.
func NewLogger(w io.Writer, level slog.Leveler) *slog.Logger {
	inner := slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level, ReplaceAttr: replaceAttr})
	var h slog.Handler = invocationHandler{inner}
	if lambdacontext.FunctionName != "" {
		h = h.WithAttrs([]slog.Attr{slog.String("functionName", lambdacontext.FunctionName)})
	}
	return slog.New(h)
}

// currentRequest is the request id of the invocation being served ("" between invocations).
var currentRequest atomic.Pointer[string]

// invocationStart is when the invocation being served began (nil between
// invocations): the time of its metrics line.
var invocationStart atomic.Pointer[time.Time]

// beginInvocation records ctx's request id for the log lines of this
// invocation, and its start for its metrics line, and returns the function
// that clears them.
func beginInvocation(ctx context.Context) (requestID string, end func()) {
	if lc, ok := lambdacontext.FromContext(ctx); ok {
		requestID = lc.AwsRequestID
	}
	start := time.Now()
	currentRequest.Store(&requestID)
	invocationStart.Store(&start)
	return requestID, func() { currentRequest.Store(nil); invocationStart.Store(nil) }
}

func requestID(ctx context.Context) string {
	if ctx != nil {
		if lc, ok := lambdacontext.FromContext(ctx); ok && lc.AwsRequestID != "" {
			return lc.AwsRequestID
		}
	}
	if p := currentRequest.Load(); p != nil {
		return *p
	}
	return ""
}

// invocationHandler adds the request id and cleans the message.
type invocationHandler struct{ inner slog.Handler }

func (h invocationHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.inner.Enabled(ctx, l)
}

func (h invocationHandler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, redact.Clean(r.Message), r.PC)
	if id := requestID(ctx); id != "" {
		out.AddAttrs(slog.String("requestId", id))
	}
	r.Attrs(func(a slog.Attr) bool { out.AddAttrs(a); return true })
	return h.inner.Handle(ctx, out)
}

func (h invocationHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return invocationHandler{h.inner.WithAttrs(as)}
}

func (h invocationHandler) WithGroup(name string) slog.Handler {
	return invocationHandler{h.inner.WithGroup(name)}
}

// replaceAttr writes durations in milliseconds and cleans strings and errors.
func replaceAttr(_ []string, a slog.Attr) slog.Attr {
	switch a.Value.Kind() {
	case slog.KindDuration:
		return slog.Float64(a.Key+"Ms", Milliseconds(a.Value.Duration()))
	case slog.KindString:
		if s := a.Value.String(); len(s) >= redact.MinRun {
			if c := redact.Clean(s); c != s {
				return slog.String(a.Key, c)
			}
		}
	case slog.KindAny:
		v := a.Value.Any()
		if err, ok := v.(error); ok {
			return slog.String(a.Key, redact.Clean(err.Error()))
		}
		// Strings inside a list, map or struct: cleaned in the value's
		// JSON, which keeps its shape unless a removed run held a quote.
		if b, err := json.Marshal(v); err == nil {
			if c := redact.Clean(string(b)); c != string(b) {
				if json.Valid([]byte(c)) {
					return slog.Any(a.Key, json.RawMessage(c))
				}
				return slog.String(a.Key, c)
			}
		}
	}
	return a
}

// Milliseconds is d in milliseconds, to the microsecond.
func Milliseconds(d time.Duration) float64 {
	return float64(d.Microseconds()) / 1000
}
