package audit

import (
	"context"
	"errors"
	"math/rand/v2"
	"sort"
	"sync"
	"time"

	"ipguard/internal/ipguard"
)

// fakeSource pages like the real server: newest first by date, Skip/Take on
// the sorted list first, the from filter inside the page. With shuffle,
// rows of one second come in a new order on every request (the real query
// has no tie-breaker). beforeCall runs before the n-th request (1-based),
// e.g. to insert a storm of rows between two requests.
type fakeSource struct {
	mu         sync.Mutex
	events     []ipguard.LoginEvent // kept sorted newest first, ties by id
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

// add inserts events (callers hold f.mu or own f).
func (f *fakeSource) add(evs ...ipguard.LoginEvent) {
	f.events = append(f.events, evs...)
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
	all := f.events
	if f.fallback {
		return append([]ipguard.LoginEvent(nil), all[:min(20, len(all))]...), nil
	}
	if start >= len(all) {
		return []ipguard.LoginEvent{}, nil
	}
	end := min(start+count, len(all))
	var window []ipguard.LoginEvent
	if f.shuffle {
		// Shuffle every second that touches the window, over its whole
		// extent, then cut: rows of a second cut by the window may swap
		// in and out of it.
		lo, hi := start, end
		for lo > 0 && all[lo-1].Date.Equal(all[start].Date) {
			lo--
		}
		for hi < len(all) && all[hi].Date.Equal(all[end-1].Date) {
			hi++
		}
		ext := append([]ipguard.LoginEvent(nil), all[lo:hi]...)
		for i := 0; i < len(ext); {
			j := i
			for j < len(ext) && ext[j].Date.Equal(ext[i].Date) {
				j++
			}
			g := ext[i:j]
			f.rng.Shuffle(len(g), func(a, b int) { g[a], g[b] = g[b], g[a] })
			i = j
		}
		window = ext[start-lo : end-lo]
	} else {
		window = all[start:end]
	}
	out := []ipguard.LoginEvent{}
	for _, e := range window {
		if f.ignoreFrom || e.Unreadable != "" || !e.Date.Before(from) {
			out = append(out, e)
		}
	}
	return out, nil
}

type fakeStore struct {
	mu         sync.Mutex
	users      map[string]ipguard.User
	progress   ipguard.AuditProgress
	saves      int
	alerted    map[int64]time.Time
	spans      map[string][]ipguard.TimeSpan
	writes     int // RecordAlerted + RecordAlertedSpan calls
	lease      string
	failRecord bool
	failures   map[string]ipguard.AddressFailures
	history    map[string]ipguard.AllowlistHistory
}

func (f *fakeStore) AllowlistHistory(_ context.Context, ids []string) (map[string]ipguard.AllowlistHistory, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]ipguard.AllowlistHistory{}
	for _, id := range ids {
		if h, ok := f.history[id]; ok {
			out[id] = h
		}
	}
	return out, nil
}

func newFakeStore() *fakeStore {
	return &fakeStore{users: map[string]ipguard.User{}, alerted: map[int64]time.Time{}, spans: map[string][]ipguard.TimeSpan{}}
}

func (f *fakeStore) Users(_ context.Context, ids []string) (map[string]ipguard.User, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]ipguard.User{}
	for _, id := range ids {
		if u, ok := f.users[id]; ok {
			out[id] = u
		}
	}
	return out, nil
}
func (f *fakeStore) AllUsers(context.Context) ([]ipguard.User, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []ipguard.User
	for _, u := range f.users {
		out = append(out, u)
	}
	return out, nil
}
func (f *fakeStore) Progress(context.Context) (ipguard.AuditProgress, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := f.progress
	if p.Cursor != nil {
		c := *p.Cursor
		p.Cursor = &c
	}
	return p, nil
}
func (f *fakeStore) SetProgress(_ context.Context, p ipguard.AuditProgress) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if p.Cursor != nil {
		c := *p.Cursor
		p.Cursor = &c
	}
	f.progress = p
	f.saves++
	return nil
}
func (f *fakeStore) Alerted(_ context.Context, ids []int64, now time.Time) (map[int64]bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[int64]bool{}
	for _, id := range ids {
		if exp, ok := f.alerted[id]; ok && exp.After(now) {
			out[id] = true
		}
	}
	return out, nil
}
func (f *fakeStore) RecordAlerted(_ context.Context, ids []int64, at time.Time, keep time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failRecord {
		return errors.New("dynamodb down")
	}
	f.writes++
	for _, id := range ids {
		f.alerted[id] = at.Add(keep)
	}
	return nil
}
func (f *fakeStore) AlertedSpans(_ context.Context, ips []string, now time.Time) (map[string][]ipguard.TimeSpan, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string][]ipguard.TimeSpan{}
	for _, ip := range ips {
		out[ip] = append(out[ip], f.spans[ip]...)
	}
	return out, nil
}
func (f *fakeStore) RecordAlertedSpan(_ context.Context, ip string, s ipguard.TimeSpan, at time.Time, keep time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failRecord {
		return errors.New("dynamodb down")
	}
	f.writes++
	f.spans[ip] = append(f.spans[ip], s)
	return nil
}
func (f *fakeStore) RecordFailures(_ context.Context, fs []ipguard.AddressFailures, keep time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failures == nil {
		f.failures = map[string]ipguard.AddressFailures{}
	}
	for _, x := range fs {
		have, ok := f.failures[x.IP]
		if !ok {
			f.failures[x.IP] = x
			continue
		}
		have.Count = max(have.Count, x.Count)
		if x.First.Before(have.First) {
			have.First = x.First
		}
		if x.Last.After(have.Last) {
			have.Last = x.Last
		}
		f.failures[x.IP] = have
	}
	return nil
}

func (f *fakeStore) Failures(_ context.Context, ips []string, from, to time.Time) (map[string]ipguard.AddressFailures, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]ipguard.AddressFailures{}
	for _, ip := range ips {
		if x, ok := f.failures[ip]; ok && !x.Last.Before(from) && !x.Last.After(to) {
			out[ip] = x
		}
	}
	return out, nil
}

func (f *fakeStore) TryAcquireLease(_ context.Context, name, owner string, until, now time.Time) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.lease != "" {
		return false, nil
	}
	f.lease = owner
	return true, nil
}
func (f *fakeStore) ReleaseLease(_ context.Context, name, owner string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.lease == owner {
		f.lease = ""
	}
	return nil
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
	return "m" + fmtInt(int64(len(f.sent))), nil
}
