package audittest

import (
	"context"
	"maps"
	"sort"
	"sync"
	"time"

	"ipguard/internal/ipguard"
)

// Source is the audit's login history (audit.Source, also the learner's)
// over a fixed list, served as the portal serves it: newest first by date,
// ties by id descending, from inclusive, skipping start rows and returning
// at most count. Make it with NewSource; it is safe for concurrent use and
// counts the pages asked for.
type Source struct {
	mu     sync.Mutex
	events []ipguard.LoginEvent
	sorted bool
	calls  int
}

// NewSource serves evs, in any order.
func NewSource(evs ...ipguard.LoginEvent) *Source {
	return &Source{events: append([]ipguard.LoginEvent(nil), evs...)}
}

// Add writes more login events, as the portal does between runs.
func (s *Source) Add(evs ...ipguard.LoginEvent) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, evs...)
	s.sorted = false
}

// Calls is how many pages have been asked for.
func (s *Source) Calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// LoginEvents implements audit.Source.
func (s *Source) LoginEvents(_ context.Context, from time.Time, start, count int) ([]ipguard.LoginEvent, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if !s.sorted {
		sort.SliceStable(s.events, func(i, j int) bool {
			if !s.events[i].Date.Equal(s.events[j].Date) {
				return s.events[i].Date.After(s.events[j].Date)
			}
			return s.events[i].ID > s.events[j].ID
		})
		s.sorted = true
	}
	var out []ipguard.LoginEvent
	for _, e := range s.events {
		if e.Date.Before(from) {
			break // newest first: every later row is older still
		}
		if start > 0 {
			start--
			continue
		}
		if len(out) == count {
			break
		}
		out = append(out, e)
	}
	return out, nil
}

// People is audit.People over a map of user types by user id (an id not in
// it has the type ""), failing every lookup with Err when set. It counts
// its lookups and is safe for concurrent use; set its fields before the
// first call.
type People struct {
	Types map[string]string
	Err   error
	mu    sync.Mutex
	calls map[string]int
	total int
}

// UserType implements audit.People.
func (p *People) UserType(_ context.Context, id string) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.calls == nil {
		p.calls = map[string]int{}
	}
	p.calls[id]++
	p.total++
	if p.Err != nil {
		return "", p.Err
	}
	return p.Types[id], nil
}

// Lookups is how many lookups there were, of every user.
func (p *People) Lookups() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.total
}

// Calls is how many lookups there were, by user id.
func (p *People) Calls() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return maps.Clone(p.calls)
}
