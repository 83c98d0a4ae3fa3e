package wiring

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"

	"ipguard/internal/ipguard"
	"ipguard/internal/redact"
)

// recovered turns a panic of the handler into an InternalError result: a
// handler defers it after its metrics line, so that the line says
// Failures: 1 and the crash counts as a failed invocation, never as a
// success. The panic and its stack are logged at ERROR (cleaned of secrets).
// It must be called directly by a deferred function (recover's rule).
func recovered(ctx context.Context, log *slog.Logger, p any, err *error) {
	if p == nil {
		return
	}
	if log != nil {
		log.ErrorContext(ctx, "handler panicked", "errorType", "InternalError", "panic", redact.Clean(fmt.Sprint(p)), "stack", redact.Clean(string(debug.Stack())))
	}
	*err = &ipguard.Error{Code: ipguard.EInternal, Message: "internal error: the handler crashed (a bug; see the log line \"handler panicked\"): " + redact.Clean(fmt.Sprint(p))}
}
