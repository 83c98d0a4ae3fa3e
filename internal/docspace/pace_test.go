package docspace

import (
	"context"
	"errors"
	"testing"
	"time"
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
