package ipguard

import (
	"context"
	"log/slog"
)

// LoggerOrDiscard returns l, or a logger that drops everything when l is
// nil, so that a zero-valued service field still works.
func LoggerOrDiscard(l *slog.Logger) *slog.Logger {
	if l != nil {
		return l
	}
	return slog.New(slog.DiscardHandler)
}

type loggerKey struct{}

// WithLogger returns ctx carrying l (e.g. a logger that adds the Lambda
// request id to every line); LoggerFrom gives it back.
func WithLogger(ctx context.Context, l *slog.Logger) context.Context {
	return context.WithValue(ctx, loggerKey{}, l)
}

// LoggerFrom returns the logger ctx carries, else fallback, else a logger
// that drops everything.
func LoggerFrom(ctx context.Context, fallback *slog.Logger) *slog.Logger {
	if l, ok := ctx.Value(loggerKey{}).(*slog.Logger); ok && l != nil {
		return l
	}
	return LoggerOrDiscard(fallback)
}
