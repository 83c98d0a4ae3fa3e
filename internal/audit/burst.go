package audit

import (
	"time"

	"ipguard/internal/ipguard"
)

// failed_login_burst over a sliding window that spans runs (#21 §3,
// WHERE §9–§10).
//
// FAILED_LOGIN_THRESHOLD failed logins from one whole address, each
// against an account that may not use the address, within SPRAY_WINDOW
// make a burst, whether one run read them or several. The window slides
// to the second: a failed login is in a burst when some closed interval
// of SPRAY_WINDOW that holds it holds the threshold's counted failed
// logins, wherever the FailureBucket edges fall (burstCount). The counts
// come from this run's buckets and from those earlier runs kept in the
// failures# items (AddressFailures.Counted: every second of the counted
// failed logins with how many, so that two runs that read the same logins
// count them once, and a count is exact up to FAILED_LOGIN_THRESHOLD's
// maximum), so the answer depends on the logins, not on how time was cut
// into runs. A burst is told once: failed logins from
// an address within an alerted burst's span, or within SPRAY_WINDOW after
// it, continue that burst (Store.AlertedSpans) and are not told again; so
// do those within SPRAY_WINDOW before it (read after it: the walk reads
// newest first, a run's later pieces and a resumed cursor read older
// logins), as one piece holding them all would have told one burst. An
// address the portal cut (an IPv6 address at its first colon) is no
// address: its failed logins count within the run only, as before.

// DefaultBurstWindow is Settings.BurstWindow's default (SPRAY_WINDOW's).
const DefaultBurstWindow = 30 * time.Minute

func (e *Evaluator) burstWindow() time.Duration {
	if e.BurstWindow > 0 {
		return e.BurstWindow
	}
	return DefaultBurstWindow
}

// burstBuckets is how many buckets one window holds.
func (e *Evaluator) burstBuckets() int {
	return max(1, int((e.burstWindow()+FailureBucket-1)/FailureBucket))
}

// holdFor is how long past the walk's front a bucket is held in memory:
// the logins still to be judged or raised (GUESS_WINDOW) and the failed
// logins still to be counted into a burst window look that far ahead.
func (e *Evaluator) holdFor() time.Duration {
	return max(e.guessWindow(), time.Duration(e.burstBuckets())*FailureBucket)
}

// KeepFailures is how long the failures# records live after their last
// login: a later run judges a guess or counts a burst window with them.
func (e *Evaluator) KeepFailures() time.Duration {
	return max(e.guessWindow(), time.Duration(e.burstBuckets()+1)*FailureBucket)
}

// bucketAt returns k's record of the bucket at lies in (creating it).
func (e *Evaluator) bucketAt(k addrKey, at time.Time) *bucketCount {
	secs := uint32(max(0, at.Unix()))
	b := at.Truncate(FailureBucket).Unix()
	m := e.buckets[b]
	if m == nil {
		m = map[addrKey]*bucketCount{}
		e.buckets[b] = m
	}
	c := m[k]
	if c == nil {
		c = &bucketCount{first: secs, last: secs}
		m[k] = c
	}
	c.first, c.last = min(c.first, secs), max(c.last, secs)
	return c
}

// noteCounted keeps a failed login that counts toward a burst.
func (e *Evaluator) noteCounted(k addrKey, at time.Time) {
	c := e.bucketAt(k, at)
	c.counted = ipguard.AddCounted(c.counted, at.Unix(), 1)
}

// bucketCounted is the counted failed logins from k, per second, that the
// bucket starting at b holds: this run's and earlier runs' united (a
// re-read overlap counts once).
func (e *Evaluator) bucketCounted(k addrKey, b time.Time) []ipguard.SecondCount {
	var out []ipguard.SecondCount
	if c := e.buckets[b.Unix()][k]; c != nil {
		out = c.counted
	}
	for _, r := range e.stored[k].recs {
		if len(r.Counted) > 0 && r.Last.Truncate(FailureBucket).Equal(b) {
			out = ipguard.UnionCounted(out, r.Counted)
		}
	}
	return out
}

// burstCount is the most counted failed logins from k within one closed
// interval of SPRAY_WINDOW that holds at (a counted failed login): a
// sliding window, exact to the second whatever the bucket edges and
// whatever the count (each bucket keeps every second it has, with how many
// logins). The best interval containing at can be taken to start at a
// counted failed login no later than at, so those are the starts tried.
func (e *Evaluator) burstCount(k addrKey, at time.Time) int {
	w := e.burstWindow()
	lo, hi, t, ws := at.Add(-w).Unix(), at.Add(w).Unix(), at.Unix(), int64(w/time.Second)
	var all []ipguard.SecondCount
	for b := at.Add(-w).Truncate(FailureBucket); !b.After(at.Add(w)); b = b.Add(FailureBucket) {
		for _, c := range e.bucketCounted(k, b) {
			if c.At >= lo && c.At <= hi {
				all = append(all, c) // buckets in order, each oldest first
			}
		}
	}
	best, sum, j := 0, 0, 0
	for i := range all {
		if all[i].At > t {
			break
		}
		for j < len(all) && all[j].At <= all[i].At+ws {
			sum += all[j].N
			j++
		}
		if all[i].At+ws >= t {
			best = max(best, sum)
		}
		sum -= all[i].N
	}
	return best
}

// storedCounted is how many counted failed logins from k earlier runs
// kept, as far as asked for.
func (e *Evaluator) storedCounted(k addrKey) int {
	n := 0
	for _, r := range e.stored[k].recs {
		n += ipguard.CountedTotal(r.Counted)
	}
	return n
}
