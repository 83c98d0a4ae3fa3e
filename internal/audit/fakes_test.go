package audit

import (
	"context"
	"math/rand/v2"
	"sort"
	"strconv"
	"sync"
	"time"

	"ipguard/internal/audit/audittest"
	"ipguard/internal/ipguard"
	"ipguard/internal/testbed/tieorder"
)

// fakeSource pages like the real server: newest first by date, Skip/Take on
// the sorted list first, the from filter inside the page. With shuffle,
// rows of one second come in a new order on every request (the real query
// has no tie-breaker). beforeCall runs before the n-th request (1-based),
// e.g. to insert a storm of rows between two requests.
type fakeSource struct {
	mu         sync.Mutex
	events     []ipguard.LoginEvent // kept sorted newest first, ties by id
	newest     []ipguard.LoginEvent // above events: a flood (addNewest), oldest first
	fail       int                  // fail this many calls
	fallback   bool
	calls      int
	hang       bool // wait for the context to end, as a stalled portal would
	hangAfter  int  // hang from this call on (0: never)
	shuffle    bool
	ignoreFrom bool // a portal that does not apply from at all
	latency    time.Duration
	beforeCall func(n int, s *fakeSource)
	rng        *rand.Rand
	// busyAfter: from this call on (0: never) the portal answers busy with
	// a Retry-After longer than the caller's deadline allows (busy).
	busyAfter int
	busy      error
}

func newFakeSource(evs ...ipguard.LoginEvent) *fakeSource {
	f := &fakeSource{rng: rand.New(rand.NewPCG(1, 2))}
	f.add(evs...)
	return f
}

// stallAfter lets the portal answer n more calls, then hang until the
// caller's context ends.
func (f *fakeSource) stallAfter(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hangAfter = f.calls + n
}

// add inserts events (callers hold f.mu or own f).
func (f *fakeSource) add(evs ...ipguard.LoginEvent) {
	f.events = append(f.events, evs...)
	f.events = append(f.events, f.newest...)
	f.newest = nil
	sort.SliceStable(f.events, func(i, j int) bool {
		if !f.events[i].Date.Equal(f.events[j].Date) {
			return f.events[i].Date.After(f.events[j].Date)
		}
		return f.events[i].ID > f.events[j].ID
	})
}

func (f *fakeSource) LoginEvents(ctx context.Context, from time.Time, start, count int) ([]ipguard.LoginEvent, error) {
	f.mu.Lock()
	f.calls++
	n := f.calls
	hang := f.hang || f.hangAfter > 0 && n >= f.hangAfter
	if f.busyAfter > 0 && n >= f.busyAfter {
		f.mu.Unlock()
		return nil, f.busy
	}
	if f.beforeCall != nil {
		f.beforeCall(n, f)
	}
	f.mu.Unlock()
	if hang {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if f.latency > 0 {
		select {
		case <-time.After(f.latency):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail > 0 {
		f.fail--
		return nil, &ipguard.Error{Code: ipguard.EUnavailable, Message: "docspace: HTTP 503"}
	}
	total := len(f.newest) + len(f.events)
	at := func(i int) ipguard.LoginEvent { // the i-th row, newest first
		if i < len(f.newest) {
			return f.newest[len(f.newest)-1-i]
		}
		return f.events[i-len(f.newest)]
	}
	rows := func(lo, hi int) []ipguard.LoginEvent {
		out := make([]ipguard.LoginEvent, 0, hi-lo)
		for i := lo; i < hi; i++ {
			out = append(out, at(i))
		}
		return out
	}
	if f.fallback {
		return rows(0, min(20, total)), nil
	}
	if start >= total {
		return []ipguard.LoginEvent{}, nil
	}
	end := min(start+count, total)
	var window []ipguard.LoginEvent
	if f.shuffle {
		// Rows of a second cut by the window may swap in and out of it:
		// the seconds that touch the window, whole, are shuffled by the
		// one shuffle the dev portal uses too.
		lo, hi := start, end
		for lo > 0 && at(lo-1).Date.Equal(at(start).Date) {
			lo--
		}
		for hi < total && at(hi).Date.Equal(at(end-1).Date) {
			hi++
		}
		window = tieorder.Window(rows(lo, hi), start-lo, end-lo, func(e ipguard.LoginEvent) time.Time { return e.Date }, f.rng)
	} else {
		window = rows(start, end)
	}
	out := []ipguard.LoginEvent{}
	for _, e := range window {
		if f.ignoreFrom || e.Unreadable != "" || !e.Date.Before(from) {
			out = append(out, e)
		}
	}
	return out, nil
}

// fakeStore is the shared in-memory audit store and lease backend
// (audittest.Store, held to the DynamoDB store's contract), with the short
// names these tests use for what they read and set.
type fakeStore struct {
	*audittest.Store
	users    map[string]ipguard.User              // the Store's UserItems
	progress *ipguard.AuditProgress               // the Store's Saved
	alerted  map[int64]time.Time                  // the Store's AlertedUntil
	failures map[string][]ipguard.AddressFailures // the Store's FailureItems
	history  map[string]ipguard.AllowlistHistory  // the Store's HistoryItems
}

func newFakeStore() *fakeStore {
	s := audittest.NewStore()
	return &fakeStore{Store: s, users: s.UserItems, progress: &s.Saved, alerted: s.AlertedUntil, failures: s.FailureItems, history: s.HistoryItems}
}

// fakePublisher records what it sends. loseAnswer makes the next publish
// reach subscribers but fail for the caller (SNS accepted, answer lost).
type fakePublisher struct {
	mu         sync.Mutex
	sent       []ipguard.Alert
	fail       bool
	loseAnswer int
}

func (f *fakePublisher) Publish(_ context.Context, a ipguard.Alert) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail {
		return "", &ipguard.Error{Code: ipguard.EUnavailable, Message: "sns down"}
	}
	f.sent = append(f.sent, a)
	if f.loseAnswer > 0 {
		f.loseAnswer--
		return "", &ipguard.Error{Code: ipguard.EUnavailable, Message: "sns: connection reset before the answer"}
	}
	return "m" + strconv.Itoa(len(f.sent)), nil
}

// addNewest inserts events newer than every stored one (a flood written
// now) without sorting the whole list again (callers hold f.mu or own f).
func (f *fakeSource) addNewest(evs ...ipguard.LoginEvent) {
	sort.SliceStable(evs, func(i, j int) bool { // oldest first
		if !evs[i].Date.Equal(evs[j].Date) {
			return evs[i].Date.Before(evs[j].Date)
		}
		return evs[i].ID < evs[j].ID
	})
	f.newest = append(f.newest, evs...)
}
