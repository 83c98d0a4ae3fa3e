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
	if p.interval != 40*time.Millisecond {
		t.Fatalf("interval %v, want 40ms for 1500 a minute", p.interval)
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
