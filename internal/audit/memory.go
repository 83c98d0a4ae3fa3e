package audit

import (
	"time"

	"ipguard/internal/ipguard"
)

// The alert memory: how far back alert records still live. Each record
// lives for the ALERT_RETENTION in force when it was written, so raising
// ALERT_RETENTION does not bring back records that expired under the old
// value: the progress keeps the history (AuditProgress.Memory), and a
// backfill judges by it.
//
//	 records written:   ──── K0 ────┼──── K1 ────┼── K2 ── now
//	                       S0          S1          S2
//	 a record written at t lives while t + K(t) > now; the memory floor is
//	 the latest t whose record is gone: before it, logins may be alerted again.

// maxMemory bounds the retention history kept in the progress item.
const maxMemory = 16

// noteRetention adds the retention in force to the history when it changed,
// and drops the oldest entries past maxMemory.
func noteRetention(hist []ipguard.RetentionSince, keep time.Duration, now time.Time) []ipguard.RetentionSince {
	if n := len(hist); n == 0 || hist[n-1].Keep != keep {
		hist = append(hist, ipguard.RetentionSince{Since: now.UTC().Truncate(time.Second), Keep: keep})
	}
	if len(hist) > maxMemory {
		hist = hist[len(hist)-maxMemory:]
	}
	return hist
}

// memoryFloor returns the latest time whose alert records have expired at
// now: logins alerted before it may be alerted again. Before the first
// entry of hist (or with none) records are taken to have lived for keep,
// the retention in force now.
func memoryFloor(hist []ipguard.RetentionSince, keep time.Duration, now time.Time) time.Time {
	if len(hist) == 0 {
		return now.Add(-keep)
	}
	floor := minTime(hist[0].Since, now.Add(-hist[0].Keep)) // records older than the history
	for i, h := range hist {
		end := now
		if i+1 < len(hist) {
			end = hist[i+1].Since
		}
		dead := minTime(end, now.Add(-h.Keep)) // records of [Since, dead] are gone
		if dead.After(h.Since) && dead.After(floor) {
			floor = dead
		}
	}
	return floor
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
