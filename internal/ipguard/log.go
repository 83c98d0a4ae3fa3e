package ipguard

import "log/slog"

// LoggerOrDiscard returns l, or a logger that drops everything when l is
// nil, so that a zero-valued service field still works.
func LoggerOrDiscard(l *slog.Logger) *slog.Logger {
	if l != nil {
		return l
	}
	return slog.New(slog.DiscardHandler)
}
