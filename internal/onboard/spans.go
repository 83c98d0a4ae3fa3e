package onboard

import (
	"context"
	"sort"
	"sync"
	"time"
)

// spans times the phases of one request (store, lease tries, waiting
// polls, reconcile passes, portal and state calls), so that the log line of
// each change says where its time went. It is logged, never asserted.
type spans struct {
	mu sync.Mutex
	d  map[string]time.Duration
	n  map[string]int
}

type spansKey struct{}

func withSpans(ctx context.Context) (context.Context, *spans) {
	sp := &spans{d: map[string]time.Duration{}, n: map[string]int{}}
	return context.WithValue(ctx, spansKey{}, sp), sp
}

// span records that the phase name, started at start, ended now (a nil
// context's or one without spans: nothing).
func span(ctx context.Context, name string, start time.Time) {
	sp, _ := ctx.Value(spansKey{}).(*spans)
	if sp == nil {
		return
	}
	sp.mu.Lock()
	sp.d[name] += time.Since(start)
	sp.n[name]++
	sp.mu.Unlock()
}

// logArgs are the spans as slog key/value pairs: name=ms, name#=count.
func (sp *spans) logArgs() []any {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	names := make([]string, 0, len(sp.d))
	for k := range sp.d {
		names = append(names, k)
	}
	sort.Strings(names)
	var out []any
	for _, k := range names {
		out = append(out, "ms_"+k, sp.d[k].Milliseconds(), "n_"+k, sp.n[k])
	}
	return out
}
