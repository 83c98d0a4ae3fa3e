package docspace

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"ipguard/internal/ipguard"
)

// The pacer spaces request starts by the ceiling and holds every request
// while a pause is on; a cancelled wait returns the context's error. (No
// timing is asserted: starts are read from the pacer's own schedule.)
func TestPacerSpacesStartsAndSharesThePause(t *testing.T) {
	p := newPacer(1500)
	if p.interval != time.Minute/1497 {
		t.Fatalf("interval %v, want a minute / 1497 for 1500 a minute (three of them at once)", p.interval)
	}
	before := time.Now()
	for range 3 {
		if err := p.wait(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if got := p.next.Sub(before); got < 3*p.interval {
		t.Errorf("after 3 starts the next is %v ahead, want at least 3 intervals", got)
	}
	p.pause(time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := p.wait(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("wait during a pause with a cancelled context = %v", err)
	}
	if !p.next.After(time.Now().Add(59 * time.Minute)) {
		t.Errorf("a request scheduled during the pause would start at %v, before the pause ends", p.next)
	}
	p.pause(time.Second) // a shorter pause does not cut a longer one
	if p.paused.Before(time.Now().Add(59 * time.Minute)) {
		t.Errorf("a shorter pause replaced the longer one")
	}
	if newPacer(0).interval != 0 {
		t.Errorf("no ceiling must mean no spacing")
	}
}

// Three requests may start at once (the reconcile's two GETs; its read-back
// and the audit-trail read sent with it), yet in any minute no more start
// than the ceiling, also right after a pause, when one starts alone. The
// starts are the pacer's schedule, not measured times.
func TestPacerLetsABurstStartTogetherWithinTheCeiling(t *testing.T) {
	for _, perMinute := range []int{1, 2, 3, 60, 1200, 1500} {
		p := newPacer(perMinute)
		now := time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)
		take := func() time.Time {
			at := p.start(now)
			p.next = later(p.next, at).Add(p.interval)
			return at
		}
		starts := make([]time.Time, 0, 3*perMinute)
		for range 3 * perMinute {
			starts = append(starts, take())
		}
		if perMinute > pacerBurst && (!starts[1].Equal(starts[0]) || !starts[2].Equal(starts[0])) {
			t.Errorf("%d a minute: the second and third requests start %v and %v after the first, want together", perMinute, starts[1].Sub(starts[0]), starts[2].Sub(starts[0]))
		}
		// Any minute: the starts in [starts[i], starts[i]+1m) are at most perMinute.
		for i := range starts {
			n := 0
			for _, s := range starts[i:] {
				if s.Before(starts[i].Add(time.Minute)) {
					n++
				}
			}
			if n > perMinute {
				t.Fatalf("%d a minute: %d starts in the minute from %v", perMinute, n, starts[i].Sub(now))
			}
		}
	}
	p := newPacer(1200)
	p.pause(time.Hour)
	p.mu.Lock()
	first := p.start(time.Now())
	p.next = later(p.next, first).Add(p.interval)
	second := p.start(time.Now())
	p.mu.Unlock()
	if !first.Equal(p.paused) || second.Sub(first) < p.interval {
		t.Errorf("after a pause: starts at +%v and +%v of its end, want one at its end and the next an interval later", first.Sub(p.paused), second.Sub(p.paused))
	}
}

// A request already waiting for its slot when the portal answers another
// one 429 with a Retry-After does not start inside that pause: the pause
// holds every request of the client, also those scheduled before it.
func TestPacerQueuedRequestWaitsOutALaterPause(t *testing.T) {
	p := newPacer(1200)
	p.mu.Lock()
	p.next = time.Now().Add(300 * time.Millisecond).Add(p.burst) // the next slot is 300 ms away
	before := p.next
	p.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- p.wait(ctx) }()
	for { // until the waiter has taken its slot
		p.mu.Lock()
		taken := !p.next.Equal(before)
		p.mu.Unlock()
		if taken {
			break
		}
		time.Sleep(time.Millisecond)
	}
	p.pause(time.Hour) // another request's 429: Retry-After one hour
	if err := <-done; err == nil {
		t.Errorf("a request scheduled before a one-hour Retry-After started inside it")
	}
}

// memBudget is the shared budget as the DynamoDB item keeps it: per window
// a count that grants never take past max (a grant is the chunk or what is
// left). fail makes every call an error (the store is down).
type memBudget struct {
	mu    sync.Mutex
	used  map[int64]int
	calls int
	fail  bool
}

func (m *memBudget) Reserve(_ context.Context, w time.Time, n, limit int) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls++
	if m.fail {
		return 0, errors.New("dynamodb: ServiceUnavailable")
	}
	if m.used == nil {
		m.used = map[int64]int{}
	}
	g := max(0, min(n, limit-m.used[w.UnixNano()]))
	m.used[w.UnixNano()] += g
	return g, nil
}

// Several containers (clients) share one budget: whatever the request
// times, every sliding minute of starts, of all clients together, holds at
// most the ceiling P. Each client keeps its own pacer (burst and spacing)
// and a start needs its pacer slot and a token of the window it starts in
// (a window of 10 s grants floor(P/7); a minute meets at most 7 windows).
// A busy client asks the store about once a window, not once a request.
// The starts are the pacer's schedule under a simulated clock, not
// measured times.
func TestPacerAndSharedBudgetKeepEverySlidingMinuteWithinTheCeiling(t *testing.T) {
	for _, tt := range []struct {
		perMinute, clients, requests int
		spread                       time.Duration // arrivals fall at random in [0, spread)
	}{
		{perMinute: 7, clients: 3, requests: 20, spread: time.Minute},
		{perMinute: 70, clients: 2, requests: 200, spread: 3 * time.Minute},
		{perMinute: 100, clients: 4, requests: 150, spread: 30 * time.Second}, // far more than the ceiling: they queue
		{perMinute: 1200, clients: 10, requests: 400, spread: 2 * time.Minute},
		{perMinute: 1500, clients: 3, requests: 1000, spread: 90 * time.Second},
	} {
		t.Run(fmt.Sprintf("%d a minute, %d clients", tt.perMinute, tt.clients), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(tt.perMinute), uint64(tt.clients)))
			origin := time.Date(2026, 12, 5, 0, 0, 3, 0, time.UTC) // not on a window's start
			budget := &memBudget{}
			type client struct {
				p        *pacer
				g        *budgetGate
				clock    time.Time
				arrivals []time.Time
				asks     time.Time // when its next request asks (its arrival, or the next window)
			}
			clients := make([]*client, tt.clients)
			for i := range clients {
				c := &client{p: newPacer(tt.perMinute)}
				c.g = newBudgetGate(budget, tt.perMinute, slog.New(slog.DiscardHandler))
				c.g.now = func() time.Time { return c.clock }
				for range tt.requests {
					c.arrivals = append(c.arrivals, origin.Add(time.Duration(rng.Int64N(int64(tt.spread)))))
				}
				slices.SortFunc(c.arrivals, func(a, b time.Time) int { return a.Compare(b) })
				clients[i] = c
			}
			var starts []time.Time
			clientWindows := map[string]bool{}
			for {
				var c *client // the client whose request asks first
				for _, x := range clients {
					if len(x.arrivals) > 0 && (c == nil || later(x.asks, x.arrivals[0]).Before(later(c.asks, c.arrivals[0]))) {
						c = x
					}
				}
				if c == nil {
					break
				}
				at := c.p.start(later(c.asks, c.arrivals[0]))
				c.p.next = later(c.p.next, at).Add(c.p.interval)
				c.clock = at
				next, ok, err := c.g.admit(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				if !ok {
					if !next.After(at) {
						t.Fatalf("refused at %v, told to ask again at %v", at, next)
					}
					c.asks = next // its pacer slot is left unused
					continue
				}
				starts = append(starts, at)
				clientWindows[fmt.Sprintf("%p %d", c, windowOf(at, BudgetWindow).Unix())] = true
				c.asks = at // one request after the other per client
				c.arrivals = c.arrivals[1:]
			}
			if len(starts) != tt.clients*tt.requests {
				t.Fatalf("%d starts, want %d", len(starts), tt.clients*tt.requests)
			}
			slices.SortFunc(starts, func(a, b time.Time) int { return a.Compare(b) })
			for i := range starts {
				j, _ := slices.BinarySearchFunc(starts, starts[i].Add(time.Minute), func(a, b time.Time) int { return a.Compare(b) })
				if n := j - i; n > tt.perMinute {
					t.Fatalf("%d starts in the minute from %v, want at most %d", n, starts[i].Sub(origin), tt.perMinute)
				}
			}
			// At most one call per client and window to start, one per
			// chunk after (4, 8, then 16 at a time) and one that finds
			// the window used up: never one per request.
			if limit := 2*len(clientWindows) + len(starts)/budgetChunkMin; budget.calls > limit {
				t.Errorf("%d calls to the store for %d starts in %d client-windows, want at most %d", budget.calls, len(starts), len(clientWindows), limit)
			}
		})
	}
	if budgetPerWindow(6) != 0 || budgetPerWindow(7) != 1 || budgetPerWindow(1200) != 171 || budgetPerWindow(1500) != 214 {
		t.Errorf("per window: %d, %d, %d, %d; want 0, 1, 171, 214 for 6, 7, 1200, 1500 a minute",
			budgetPerWindow(6), budgetPerWindow(7), budgetPerWindow(1200), budgetPerWindow(1500))
	}
	if newBudgetGate(&memBudget{}, 6, nil) != nil {
		t.Errorf("a ceiling under 7 cannot be kept by windows of 10 s: the budget must not be used (it would grant nothing)")
	}
}

// A container that sends a few requests a window asks the store once per
// window; one that uses its chunk up asks for a bigger one (4, 8, 16).
func TestSharedBudgetAsksOncePerWindowAndGrowsItsChunk(t *testing.T) {
	budget := &memBudget{}
	g := newBudgetGate(budget, 1200, slog.New(slog.DiscardHandler))
	w0 := time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)
	for k := range 6 { // 3 requests in each of 6 windows
		for i := range 3 {
			g.now = func() time.Time { return w0.Add(time.Duration(k)*BudgetWindow + time.Duration(i)*time.Second) }
			if _, ok, err := g.admit(context.Background()); !ok || err != nil {
				t.Fatalf("window %d request %d: ok %v, %v", k, i, ok, err)
			}
		}
	}
	if budget.calls != 6 {
		t.Errorf("%d calls for 3 requests in each of 6 windows, want 6 (one a window)", budget.calls)
	}
	budget.calls = 0
	g.now = func() time.Time { return w0.Add(time.Hour) }
	for range 28 { // 4 + 8 + 16
		if _, ok, err := g.admit(context.Background()); !ok || err != nil {
			t.Fatalf("ok %v, %v", ok, err)
		}
	}
	if budget.calls != 3 || g.chunk != budgetChunkMax {
		t.Errorf("28 requests in one window: %d calls, chunk %d; want 3 (4, 8, 16), 16", budget.calls, g.chunk)
	}
}

// When the budget's store fails, the container's requests go on with its
// pacer alone for that window (the product is not blocked), with one
// warning and one count per window; a window used up holds a request past
// its deadline with a typed error at once, naming the budget.
func TestSharedBudgetFallsBackToThePacerAndRefusesAWaitPastTheDeadline(t *testing.T) {
	var logs bytes.Buffer
	budget := &memBudget{fail: true}
	g := newBudgetGate(budget, 1200, slog.New(slog.NewTextHandler(&logs, nil)))
	w0 := time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)
	for k := range 3 {
		for i := range 5 {
			g.now = func() time.Time { return w0.Add(time.Duration(k)*BudgetWindow + time.Duration(i)*time.Second) }
			if _, ok, err := g.admit(context.Background()); !ok || err != nil {
				t.Fatalf("window %d, store down: ok %v, %v; want through on the pacer", k, ok, err)
			}
		}
	}
	if n := strings.Count(logs.String(), "shared request budget could not be read"); n != 3 || budget.calls != 3 {
		t.Errorf("%d warnings, %d calls for 3 windows with the store down; want 3 and 3\n%s", n, budget.calls, logs.String())
	}
	if n := g.takeFallbacks(); n != 3 || g.takeFallbacks() != 0 {
		t.Errorf("fallback windows %d, want 3, then 0 once taken", n)
	}

	full := &memBudget{}
	g = newBudgetGate(full, 70, nil)
	g.log = slog.New(slog.DiscardHandler)
	ahead := time.Now().Add(2 * time.Hour) // a window whose end is past any deadline below
	g.now = func() time.Time { return ahead }
	full.used = map[int64]int{windowOf(ahead, BudgetWindow).UnixNano(): g.max}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := waitBoth(ctx, newPacer(70), g)
	var past *ipguard.WaitPastDeadlineError
	if !errors.As(err, &past) || !strings.Contains(err.Error(), "shared request budget") {
		t.Errorf("window used up, its end past the deadline: %v; want a *WaitPastDeadlineError naming the budget", err)
	}
}

// Two clients (two containers) share one budget against a portal: the
// requests both start never pass the budget. The budget is scaled down so
// that the test is short (windows of 1 s of 5 requests; each client's own
// pacer would start 20 a second): any 2*5+1 requests the portal receives
// one after the other meet three windows, so the first and the last are
// more than a window apart, minus the loopback's delay (checked with half
// a window to spare). Only a lower bound on time, from the ordering.
func TestTwoClientsSharingABudgetStayWithinIt(t *testing.T) {
	var mu sync.Mutex
	var arrived []time.Time
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		arrived = append(arrived, time.Now())
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"response":[],"status":0,"statusCode":200}`))
	}))
	defer srv.Close()
	const span, perWindow, each = time.Second, 5, 10
	budget := &memBudget{}
	var wg sync.WaitGroup
	errs := make(chan error, 2*each)
	for range 2 {
		c, err := New(Options{BaseURL: srv.URL, AllowHTTP: true, Keys: fuzzKeys{}, RequestsPerMinute: 1200, Budget: budget})
		if err != nil {
			t.Fatal(err)
		}
		c.budget.span, c.budget.max = span, perWindow
		for range each {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- c.do(context.Background(), call{op: "get test", method: http.MethodGet, path: "/api/2.0/test"})
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(arrived) != 2*each {
		t.Fatalf("the portal received %d requests, want %d", len(arrived), 2*each)
	}
	slices.SortFunc(arrived, func(a, b time.Time) int { return a.Compare(b) })
	for i := 0; i+2*perWindow < len(arrived); i++ {
		if d := arrived[i+2*perWindow].Sub(arrived[i]); d < span/2 {
			t.Errorf("requests %d and %d arrived %v apart: more than %d in two windows of %v", i, i+2*perWindow, d, 2*perWindow, span)
		}
	}
}

// A redirect the client follows is a request to the portal too: each hop
// starts only with its pacer slot and a token of the shared budget, so the
// portal never receives more requests than the budget granted (WHERE §17:
// one request budget per portal).
func TestARedirectHopTakesATokenOfTheSharedBudget(t *testing.T) {
	var mu sync.Mutex
	hits := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits++
		mu.Unlock()
		if r.URL.Path == "/api/2.0/old" {
			http.Redirect(w, r, "/api/2.0/test", http.StatusFound)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"response":[],"status":0,"statusCode":200}`))
	}))
	defer srv.Close()
	budget := &memBudget{}
	c, err := New(Options{BaseURL: srv.URL, AllowHTTP: true, Keys: fuzzKeys{}, RequestsPerMinute: 1200, Budget: budget})
	if err != nil {
		t.Fatal(err)
	}
	c.budget.span, c.budget.max = 20*time.Millisecond, 1
	if err := c.do(context.Background(), call{op: "get test", method: http.MethodGet, path: "/api/2.0/old"}); err != nil {
		t.Fatal(err)
	}
	budget.mu.Lock()
	granted := 0
	for _, n := range budget.used {
		granted += n
	}
	budget.mu.Unlock()
	if hits != 2 || granted < hits {
		t.Fatalf("the portal received %d requests (want 2: the redirect and its target) on %d tokens granted by the shared budget", hits, granted)
	}
}

// A reservation ahead (a reconcile that took the lease) takes the window's
// chunk before the requests come, without a token: the chunk's requests
// then start without calling the store, and the window's grants still add
// up to at most its tokens. Ahead is a no-op while the gate holds tokens,
// knows the window used up, or a reservation is under way.
func TestReservingAheadTakesTheChunkBeforeTheRequestsAndNoToken(t *testing.T) {
	budget := &memBudget{}
	g := newBudgetGate(budget, 70, slog.New(slog.DiscardHandler)) // 10 tokens a window
	w0 := time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)
	g.now = func() time.Time { return w0.Add(time.Second) }
	g.ahead(context.Background())
	if budget.calls != 1 || g.left != budgetChunkMin {
		t.Fatalf("ahead: %d store calls, %d tokens held; want 1, %d", budget.calls, g.left, budgetChunkMin)
	}
	g.ahead(context.Background()) // tokens held: no call
	for i := range budgetChunkMin {
		if _, ok, err := g.admit(context.Background()); !ok || err != nil {
			t.Fatalf("request %d: ok %v, %v", i, ok, err)
		}
	}
	if budget.calls != 1 {
		t.Errorf("%d store calls for the chunk reserved ahead and its %d requests, want 1", budget.calls, budgetChunkMin)
	}
	started := budgetChunkMin
	for {
		_, ok, err := g.admit(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		started++
	}
	if started != 10 {
		t.Errorf("%d requests started in the window, want its 10 tokens (ahead takes none)", started)
	}
	calls := budget.calls
	g.ahead(context.Background()) // the window is used up: no call
	g.lock <- struct{}{}          // a reservation under way: no call, no wait
	g.now = func() time.Time { return w0.Add(BudgetWindow) }
	g.ahead(context.Background())
	<-g.lock
	if budget.calls != calls {
		t.Errorf("ahead called the store %d times with the window used up or a reservation under way, want 0", budget.calls-calls)
	}
}
