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
// make a burst, whether one run read them or several. The window is
// counted in FailureBucket steps: a failed login is in a burst when the
// buckets of some SPRAY_WINDOW's worth of consecutive buckets around it
// (ceil(SPRAY_WINDOW / FailureBucket) of them, the login's among them)
// hold the threshold. The counts come from this run's buckets and from
// those earlier runs kept in the failures# items (AddressFailures.Counted:
// the seconds of the counted failed logins, so that two runs that read the
// same logins count them once), so the answer depends on the logins, not
// on how time was cut into runs. A burst is told once: failed logins from
// an address within an alerted burst's span, or within SPRAY_WINDOW after
// it, continue that burst (Store.AlertedSpans) and are not told again. An
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
	c.cn++
	c.counted = ipguard.AddSecond(c.counted, at.Unix(), ipguard.KeepCounted)
}

// bucketCounted is how many counted failed logins from k the bucket
// starting at b holds: this run's and earlier runs' united.
func (e *Evaluator) bucketCounted(k addrKey, b time.Time) int {
	var mem []int64
	n := 0
	if c := e.buckets[b.Unix()][k]; c != nil {
		mem, n = c.counted, int(c.cn)
	}
	var sto []int64
	for _, r := range e.stored[k].recs {
		if r.Last.Truncate(FailureBucket).Equal(b) {
			sto = ipguard.UnionSeconds(sto, r.Counted, ipguard.KeepCounted)
		}
	}
	return max(n, len(ipguard.UnionSeconds(mem, sto, 1<<30)))
}

// burstCount is the most counted failed logins from k within one window
// of burstBuckets consecutive buckets that holds at's bucket.
func (e *Evaluator) burstCount(k addrKey, at time.Time) int {
	nb := e.burstBuckets()
	bt := at.Truncate(FailureBucket)
	counts := make([]int, 2*nb-1) // buckets bt-(nb-1) .. bt+(nb-1)
	for j := range counts {
		counts[j] = e.bucketCounted(k, bt.Add(time.Duration(j-(nb-1))*FailureBucket))
	}
	best := 0
	for end := nb - 1; end < len(counts); end++ {
		sum := 0
		for j := end - nb + 1; j <= end; j++ {
			sum += counts[j]
		}
		best = max(best, sum)
	}
	return best
}

// storedCounted is how many counted failed logins from k earlier runs
// kept, as far as asked for.
func (e *Evaluator) storedCounted(k addrKey) int {
	n := 0
	for _, r := range e.stored[k].recs {
		n += len(r.Counted)
	}
	return n
}
