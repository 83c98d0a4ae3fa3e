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
//
// The ceiling is per minute: in any minute at most perMinute requests start
// (the portal's limiter is a sliding window per minute). Three may start at
// once (a burst of pacerBurst: the reconcile's two GETs go out together, one
// 50 ms round trip instead of two at the default ceiling, and its read-back
// never waits behind the audit-trail read sent with it), the others one
// interval apart, the interval chosen so that the burst keeps within the
// ceiling: pacerBurst + one start per interval over a minute is perMinute.
type pacer struct {
	mu       sync.Mutex
	interval time.Duration // 0: no ceiling
	burst    time.Duration // how far ahead of its schedule a start may go: (pacerBurst-1) intervals
	next     time.Time     // the schedule: a start at t moves it to max(next, t) + interval
	paused   time.Time     // no request starts before this
}

// pacerBurst is how many requests may start at once.
const pacerBurst = 3

func newPacer(perMinute int) *pacer {
	p := &pacer{}
	switch {
	case perMinute > pacerBurst:
		p.interval = time.Minute / time.Duration(perMinute-pacerBurst)
		p.burst = (pacerBurst - 1) * p.interval
	case perMinute > 0:
		p.interval = time.Minute / time.Duration(perMinute)
	}
	return p
}

// wait blocks until the next request may start, or ctx ends. When a pause
// (the portal's Retry-After) holds the request past ctx's deadline it
// returns at once a *ipguard.WaitPastDeadlineError.
//
// A pause set while the request waits for its slot holds it too: it then
// takes a slot after the pause (the one it had is left unused), so that no
// request starts inside a Retry-After and one starts when it ends.
func (p *pacer) wait(ctx context.Context) error {
	for {
		p.mu.Lock()
		now := time.Now()
		at := p.start(now)
		if dl, ok := ctx.Deadline(); ok && at.Equal(p.paused) && at.After(dl) {
			// Held by the portal's Retry-After past the caller's deadline:
			// return at once, typed, rather than wait into the deadline.
			p.mu.Unlock()
			return &ipguard.WaitPastDeadlineError{Wait: at.Sub(now), Left: dl.Sub(now)}
		}
		p.next = later(p.next, at).Add(p.interval)
		pausedAt := p.paused
		p.mu.Unlock()
		if err := waitFor(ctx, at.Sub(now)); err != nil {
			return err
		}
		p.mu.Lock()
		repaused := p.paused.After(pausedAt) && p.paused.After(time.Now())
		p.mu.Unlock()
		if !repaused {
			return nil
		}
	}
}

// pause holds every request for d from now (a longer pause already set wins).
func (p *pacer) pause(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if until := time.Now().Add(d); until.After(p.paused) {
		p.paused = until
		// One request starts when the pause ends, not a burst.
		p.next = later(p.next, until.Add(p.burst))
	}
}

// start is when a request asked for at now may start (called with mu held):
// not before the pause ends, nor more than the burst ahead of the schedule.
func (p *pacer) start(now time.Time) time.Time {
	return later(later(now, p.next.Add(-p.burst)), p.paused)
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
