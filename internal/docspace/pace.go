package docspace

import (
	"context"
	"log/slog"
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

// RequestBudget is the portal's request budget shared by every container of
// both functions (a store all of them reach: DynamoDB). Reserve takes up to
// n of the at most max requests the window starting at window may start,
// and returns how many it granted (0 when the window is used up). A grant
// is never more than asked, and the grants of one window never add up to
// more than max, whoever asks. An error says the store could not answer;
// the tokens of a failed call are not granted.
type RequestBudget interface {
	Reserve(ctx context.Context, window time.Time, n, max int) (granted int, err error)
}

// BudgetWindow is the length of the shared budget's windows: fixed, aligned
// to the Unix epoch (a window starts at a multiple of 10 s).
//
// Why any sliding minute stays within the ceiling P: a minute [t, t+60s)
// meets at most 7 windows of 10 s (6 whole ones and a part at each end,
// when t is not on a window's start; 6 when it is). Each window grants at
// most B = floor(P*w/(60s+w)) = floor(P/7) starts, and a start uses a token
// of the window it starts in (tokens left at a window's end are dropped,
// never carried over), so the minute holds at most 7*B <= P starts, from
// all containers together. (A start is when the client hands the request
// to HTTP, by the container's clock; Lambda's clocks are synchronised.)
const BudgetWindow = 10 * time.Second

// budgetPerWindow is B for the ceiling perMinute: floor(P/7); 0 below 7,
// where a budget of windows cannot keep the promise and is not used.
func budgetPerWindow(perMinute int) int {
	return int(int64(perMinute) * int64(BudgetWindow) / int64(time.Minute+BudgetWindow))
}

// The chunk of tokens a container reserves at once: 4, doubled (up to 16)
// each time it uses a chunk up within a window and asks again, halved at a
// new window when more than half of the last one was left unused. Ten
// containers of 16 (160) stay under the window's 171 at the default 1200 a
// minute, so none starves the others; a busy container asks about once a
// window, not once a request.
const (
	budgetChunkMin = 4
	budgetChunkMax = 16
)

// budgetCallTimeout bounds one reservation: a store that does not answer
// within it counts as failed (the window goes on with the pacer alone)
// rather than holding the portal requests back.
const budgetCallTimeout = 2 * time.Second

// budgetGate is one client's side of the shared budget: the tokens it holds
// for the current window. A request starts only with a token of the window
// it starts in and its pacer slot (the pacer keeps the burst and the
// spacing within the container). When the store fails, the gate lets the
// window's requests through on the pacer alone (the product is not blocked
// by its own bookkeeping), warns once per window and counts the window.
type budgetGate struct {
	store RequestBudget
	span  time.Duration // BudgetWindow (tests scale it down)
	max   int           // B: the tokens of one window for all containers together
	now   func() time.Time
	log   *slog.Logger
	lock  chan struct{} // one reservation at a time; waiting honours ctx

	// Under lock:
	window          time.Time // the window the tokens belong to
	left            int       // tokens of window not yet used
	chunk           int       // the next reservation's size
	asked           bool      // a chunk was reserved in window (a second one doubles)
	full            bool      // the store granted nothing in window: wait for the next
	fallback        bool      // the store failed in window: the pacer alone
	fallbackWindows int       // windows let through on the pacer alone, not yet taken
}

func newBudgetGate(store RequestBudget, perMinute int, log *slog.Logger) *budgetGate {
	b := budgetPerWindow(perMinute)
	if store == nil || b < 1 {
		return nil
	}
	return &budgetGate{store: store, span: BudgetWindow, max: b, now: time.Now, log: log, lock: make(chan struct{}, 1), chunk: budgetChunkMin}
}

// windowOf is the start of the window of length span holding t (windows
// are aligned to the Unix epoch).
func windowOf(t time.Time, span time.Duration) time.Time {
	u, d := t.UnixNano(), int64(span)
	return time.Unix(0, u-((u%d)+d)%d)
}

// admit takes a token for a request starting now. ok false says the window
// is used up: ask again at next (the start of the next window). It calls
// the store at most once per chunk. An error is ctx's.
func (g *budgetGate) admit(ctx context.Context) (next time.Time, ok bool, err error) {
	select {
	case g.lock <- struct{}{}:
	case <-ctx.Done():
		return time.Time{}, false, ctx.Err()
	}
	defer func() { <-g.lock }()
	for {
		w := g.roll()
		end := w.Add(g.span)
		switch {
		case g.fallback:
			return time.Time{}, true, nil
		case g.left > 0:
			g.left--
			return time.Time{}, true, nil
		case g.full:
			return end, false, nil
		}
		if !g.reserve(ctx, w) {
			if ctx.Err() != nil {
				return time.Time{}, false, ctx.Err()
			}
			continue // the window ended during the call: its tokens are dropped
		}
	}
}

// roll moves the gate to the window holding now (under lock) and returns
// it: at a new window the tokens left are dropped and the chunk halves when
// more than half of the last one went unused.
func (g *budgetGate) roll() time.Time {
	w := windowOf(g.now(), g.span)
	if !w.Equal(g.window) {
		if g.left > g.chunk/2 {
			g.chunk = max(budgetChunkMin, g.chunk/2)
		}
		g.window, g.left, g.asked, g.full, g.fallback = w, 0, false, false, false
	}
	return w
}

// reserve asks the store for a chunk of window w's tokens (under lock,
// when the gate holds none): it leaves them in left, or full (none
// granted), or fallback (the store failed: the pacer alone for w). false
// says the call outlasted w (or ctx ended): nothing was settled for w.
func (g *budgetGate) reserve(ctx context.Context, w time.Time) bool {
	if g.asked {
		g.chunk = min(budgetChunkMax, g.chunk*2)
	}
	rctx, cancel := context.WithTimeout(ctx, budgetCallTimeout)
	granted, err := g.store.Reserve(rctx, w, min(g.chunk, g.max), g.max)
	cancel()
	if ctx.Err() != nil {
		return false
	}
	if err != nil {
		g.fallback = true
		g.fallbackWindows++
		g.log.WarnContext(ctx, "docspace: the shared request budget could not be read; this window's requests are paced by this container alone",
			"window", w.UTC().Format(time.RFC3339), "error", err.Error())
		return true
	}
	g.asked = true
	if !g.now().Before(w.Add(g.span)) {
		return false // the window ended during the call: its tokens are dropped
	}
	g.left, g.full = granted, granted < 1
	return true
}

// ahead reserves the current window's chunk now, for requests about to
// follow (a reconcile that just took the lease calls it alongside its own
// store read), so that they do not wait for the store on their way to the
// portal. It takes no token, and returns at once when a reservation is
// under way or the gate already knows where it stands in this window
// (tokens held, the window used up, or the pacer alone).
func (g *budgetGate) ahead(ctx context.Context) {
	select {
	case g.lock <- struct{}{}:
	default:
		return // a reservation is under way
	}
	defer func() { <-g.lock }()
	g.roll()
	if g.fallback || g.left > 0 || g.full {
		return
	}
	g.reserve(ctx, g.window)
}

// takeFallbacks returns the windows let through on the pacer alone since
// the last call.
func (g *budgetGate) takeFallbacks() int {
	select {
	case g.lock <- struct{}{}:
	default:
		return 0 // a reservation is under way: counted at the next call
	}
	defer func() { <-g.lock }()
	n := g.fallbackWindows
	g.fallbackWindows = 0
	return n
}

// waitBoth waits for the pacer's slot and a token of the shared budget (if
// any): a request starts with both. A window used up holds the request until
// the next one, then it takes a new pacer slot (the one it had is left
// unused). A wait past ctx's deadline returns at once a
// *ipguard.WaitPastDeadlineError.
func waitBoth(ctx context.Context, p *pacer, g *budgetGate) error {
	for {
		if err := p.wait(ctx); err != nil {
			return err
		}
		if g == nil {
			return nil
		}
		next, ok, err := g.admit(ctx)
		if err != nil || ok {
			return err
		}
		now := time.Now()
		if dl, has := ctx.Deadline(); has && next.After(dl) {
			return &ipguard.WaitPastDeadlineError{Wait: next.Sub(now), Left: dl.Sub(now), By: "the shared request budget (PORTAL_REQUESTS_PER_MINUTE)"}
		}
		if err := waitFor(ctx, next.Sub(now)); err != nil {
			return err
		}
	}
}
