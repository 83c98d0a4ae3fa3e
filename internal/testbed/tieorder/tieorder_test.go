package tieorder

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

type row struct {
	id int
	at time.Time
}

// The window keeps its length and its seconds; only rows of one second
// trade places, and a second cut by the window may bring in rows from
// beyond it, never rows of another second.
func TestWindowShufflesOnlyWithinASecond(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
	var sorted []row
	for i, sec := range []int{5, 5, 5, 4, 4, 4, 4, 3, 2, 2} { // newest first
		sorted = append(sorted, row{i, t0.Add(time.Duration(sec) * time.Second)})
	}
	date := func(r row) time.Time { return r.at }
	rng := rand.New(rand.NewPCG(1, 2))
	tests := []struct{ start, end int }{{0, 10}, {1, 5}, {4, 8}, {9, 10}, {3, 4}}
	moved := false
	for _, tt := range tests {
		for range 20 {
			got := Window(sorted, tt.start, tt.end, date, rng)
			if len(got) != tt.end-tt.start {
				t.Fatalf("Window(%d, %d) has %d rows", tt.start, tt.end, len(got))
			}
			for i, r := range got {
				want := sorted[tt.start+i]
				if !r.at.Equal(want.at) {
					t.Fatalf("Window(%d, %d)[%d] is of %v, want a row of %v", tt.start, tt.end, i, r.at, want.at)
				}
				moved = moved || r.id != want.id
			}
		}
	}
	if !moved {
		t.Error("no row ever moved: the same-second order is never shuffled")
	}
	if ids := []int{0, 1, 2}; !slices.Equal([]int{sorted[0].id, sorted[1].id, sorted[2].id}, ids) {
		t.Error("Window changed its argument")
	}
}
