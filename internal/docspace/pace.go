package docspace

import (
	"context"
	"sync"
	"time"

	"ipguard/internal/ipguard"
)

// pacer is shared by every call of one Client, so that requests made at the
// same time (the audit's concurrent walk) keep to one rate ceiling and one
// back-off: when the portal answers 429 or 503, every request of the client
// waits, not only the one that was refused.
type pacer struct {
	mu       sync.Mutex
	interval time.Duration // 0: no ceiling
	next     time.Time     // earliest start of the next request
	paused   time.Time     // no request starts before this
}

func newPacer(perMinute int) *pacer {
	p := &pacer{}
	if perMinute > 0 {
		p.interval = time.Minute / time.Duration(perMinute)
	}
	return p
}

// wait blocks until the next request may start, or ctx ends. When a pause
// (the portal's Retry-After) holds the request past ctx's deadline it
// returns at once a *ipguard.WaitPastDeadlineError.
func (p *pacer) wait(ctx context.Context) error {
	p.mu.Lock()
	now := time.Now()
	at := now
	if p.next.After(at) {
		at = p.next
	}
	if p.paused.After(at) {
		at = p.paused
	}
	if dl, ok := ctx.Deadline(); ok && at.Equal(p.paused) && at.After(dl) {
		// Held by the portal's Retry-After past the caller's deadline:
		// return at once, typed, rather than wait into the deadline.
		p.mu.Unlock()
		return &ipguard.WaitPastDeadlineError{Wait: at.Sub(now), Left: dl.Sub(now)}
	}
	p.next = at.Add(p.interval)
	p.mu.Unlock()
	return waitFor(ctx, at.Sub(now))
}

// pause holds every request for d from now (a longer pause already set wins).
func (p *pacer) pause(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if until := time.Now().Add(d); until.After(p.paused) {
		p.paused = until
	}
}
