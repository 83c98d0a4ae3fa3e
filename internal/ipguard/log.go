package ipguard

import "log/slog"

// The request id and function name reach every line through the logger
// itself (wiring.NewLogger reads them from the context a line is logged
// with), so no logger travels in a context.

// LoggerOrDiscard returns l, or a logger that drops everything when l is
// nil, so that a zero-valued service field still works.
func LoggerOrDiscard(l *slog.Logger) *slog.Logger {
	if l != nil {
		return l
	}
	return slog.New(slog.DiscardHandler)
}
