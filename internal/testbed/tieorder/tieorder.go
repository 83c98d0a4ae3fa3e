// Package tieorder plays the one freedom the portal's login history has in
// its order: the real query sorts by a date of whole seconds with no
// tie-breaker, so the rows of one second may come in another order on each
// request. The dev portal and the audit's in-memory login source both use it,
// so that both play that freedom the same way.
package tieorder

import (
	"math/rand/v2"
	"time"
)

// Window returns a copy of sorted[start:end] (sorted by date) after the
// rows of every second that touches the window have been shuffled with rng
// over the second's whole extent: rows of a second cut by the window swap
// in and out of it, as they may between two page requests. start < end <=
// len(sorted).
func Window[E any](sorted []E, start, end int, date func(E) time.Time, rng *rand.Rand) []E {
	lo, hi := start, end
	for lo > 0 && date(sorted[lo-1]).Equal(date(sorted[start])) {
		lo--
	}
	for hi < len(sorted) && date(sorted[hi]).Equal(date(sorted[end-1])) {
		hi++
	}
	ext := append([]E(nil), sorted[lo:hi]...)
	for i := 0; i < len(ext); {
		j := i
		for j < len(ext) && date(ext[j]).Equal(date(ext[i])) {
			j++
		}
		g := ext[i:j]
		rng.Shuffle(len(g), func(a, b int) { g[a], g[b] = g[b], g[a] })
		i = j
	}
	return ext[start-lo : end-lo]
}
