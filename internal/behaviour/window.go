package behaviour

import (
	"context"
	"slices"
	"sort"
	"time"

	"ipguard/internal/audit"
	"ipguard/internal/ipguard"
)

// Password sprays across runs (#21 §3, WHERE §9–§10).
//
// A failed login at t is in a spray when the failed logins within
// [t − SPRAY_WINDOW, t] target at least SPRAY_MIN_ACCOUNTS distinct
// accounts. Time is cut into aligned periods of SPRAY_WINDOW; each period
// in which some failed login is in a spray gives one password_spray
// finding, named by the earliest such failed login of the period (its
// EventID), unless that login comes within SPRAY_WINDOW of the previous
// period's earliest one: then the period continues a spray already told
// (a spray that lasts gives one finding, not one per period). Whether a failed login is in a spray depends only on the
// failed logins up to it, so the finding, its id and the period it stands
// for are the same whether the logins were audited by one backfill or by
// many short runs: what earlier runs read comes from SprayBuckets, one
// bounded item per minute, and a period already told by an earlier run is
// not told again.

// SprayBucketLength is the time one SprayBucket covers. It is shorter than
// any SPRAY_WINDOW (at least a minute), so a bucket's first and last
// failed login of an account tell exactly whether the account has a
// failed login within a window.
const SprayBucketLength = time.Minute

// MaxBucketAccounts bounds the accounts one bucket keeps (an item of a few
// tens of KB); further accounts are only counted (More). A bucket that
// overflows holds a spray whatever the threshold.
const MaxBucketAccounts = 1000

// sprayMargin is how far beyond SPRAY_WINDOW below a run's newest failed
// login its buckets are saved, and how long beyond twice the window they
// live: room for the overlap a next run reads again.
const sprayMargin = 15 * time.Minute

// SprayKeep is how long a bucket lives after it ends: a run decides a
// period with SPRAY_WINDOW before it, and a period lasts SPRAY_WINDOW.
func SprayKeep(window time.Duration) time.Duration { return 2*window + sprayMargin }

// SprayBucketPrefix is the key prefix of the buckets' items
// ("window#spray#<start unix>"); the DynamoDB adapter and the template's
// IAM condition use it.
const SprayBucketPrefix = "window#spray#"

// SprayBucket is one minute of the failed logins that count toward
// password_spray, as kept across runs.
type SprayBucket struct {
	Start    time.Time
	Accounts map[string]SprayCount
	// More counts the accounts beyond MaxBucketAccounts.
	More int
	// Told are the failed logins of this minute that named a finding
	// (each the earliest of its period in a spray).
	Told []SprayTold
}

// SprayCount is one account's failed logins within a bucket.
type SprayCount struct {
	N           int
	First, Last time.Time
}

// SprayTold is the earliest failed login in a spray of its period: it
// named a password_spray finding, or (Continued) its period went on a
// spray already told.
type SprayTold struct {
	EventID   int64
	At        time.Time
	Continued bool `json:",omitempty"`
}

// WindowStore keeps the sliding windows' state across runs: a few bounded
// items per minute that expire after the window (TTL). Errors are
// classified (EUnavailable, EConfig).
type WindowStore interface {
	// SprayBuckets returns the stored buckets among those starting at
	// starts (absent: none), by start (unix seconds). Batched.
	SprayBuckets(ctx context.Context, starts []time.Time) (map[int64]SprayBucket, error)
	// SaveSprayBuckets merges bs into what is stored (MergeSprayBuckets),
	// each item living for keep after its bucket ends. Batched.
	SaveSprayBuckets(ctx context.Context, bs []SprayBucket, keep time.Duration) error
}

// MergeSprayBuckets merges b into a (the same minute): per account the
// larger count and the wider span, the told logins united, at most
// MaxBucketAccounts accounts (the most recent stay; the others count in
// More). Merging is idempotent, so a re-read overlap changes nothing.
func MergeSprayBuckets(a, b SprayBucket) SprayBucket {
	out := SprayBucket{Start: a.Start, Accounts: map[string]SprayCount{}, More: max(a.More, b.More)}
	if out.Start.IsZero() {
		out.Start = b.Start
	}
	for _, m := range []map[string]SprayCount{a.Accounts, b.Accounts} {
		for k, c := range m {
			have, ok := out.Accounts[k]
			if !ok {
				out.Accounts[k] = c
				continue
			}
			have.N = max(have.N, c.N)
			if c.First.Before(have.First) {
				have.First = c.First
			}
			if c.Last.After(have.Last) {
				have.Last = c.Last
			}
			out.Accounts[k] = have
		}
	}
	if len(out.Accounts) > MaxBucketAccounts {
		keys := make([]string, 0, len(out.Accounts))
		for k := range out.Accounts {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(i, j int) bool {
			ci, cj := out.Accounts[keys[i]], out.Accounts[keys[j]]
			if !ci.Last.Equal(cj.Last) {
				return ci.Last.After(cj.Last)
			}
			return keys[i] < keys[j]
		})
		for _, k := range keys[MaxBucketAccounts:] {
			delete(out.Accounts, k)
		}
		out.More += len(keys) - MaxBucketAccounts
	}
	seen := map[int64]bool{}
	for _, t := range append(append([]SprayTold(nil), a.Told...), b.Told...) {
		if !seen[t.EventID] {
			seen[t.EventID] = true
			out.Told = append(out.Told, t)
		}
	}
	sort.Slice(out.Told, func(i, j int) bool { return out.Told[i].At.Before(out.Told[j].At) })
	return out
}

// windowSprayer finds sprays over a sliding window that spans runs. It is
// fed a run's pieces newest first (the walk's order) and decides a period
// once every failed login its findings depend on was read: those of this
// run (kept, bounded) and those earlier runs kept in buckets.
type windowSprayer struct {
	*sprayer
	// top is the newest failed login of the run: buckets within the
	// window (and the overlap) below it are saved for the next runs.
	top time.Time
	// buckets: this run's failed logins per minute, to save (only the
	// minutes a later run can need: see keepFrom).
	buckets map[int64]*SprayBucket
	// stored: what earlier runs kept, by minute (loaded once each).
	stored map[int64]SprayBucket
	// told: per period start (unix), the failed login that named its
	// finding (from earlier runs or this one).
	told map[int64]SprayTold
	// decided: periods this run has decided.
	decided map[int64]bool
	// horizon: how far below top a later run may still look (window +
	// overlap margin).
	horizon time.Duration
	// raws: per period, how many failed logins keep their raw event (a
	// finding shows at most 3).
	raws map[int64]int
	// pending: per period judged, the earliest failed login in a spray
	// and the finding it would name (bounded: 20 accounts, 50 ids, 3 raw
	// events). Whether it is told (and not a continuation of the period
	// before, or told by an earlier run) is decided oldest first, at the
	// run's last piece (tell).
	pending []candidate
}

// candidate is a period's earliest failed login in a spray and the finding
// it names unless an earlier run told the period or it continues the
// period before.
type candidate struct {
	id int64
	at time.Time
	fd audit.Finding
}

func newWindowSprayer(min int, window time.Duration) *windowSprayer {
	return &windowSprayer{sprayer: newSprayer(min, window), buckets: map[int64]*SprayBucket{},
		stored: map[int64]SprayBucket{}, told: map[int64]SprayTold{}, decided: map[int64]bool{}, horizon: window + sprayMargin, raws: map[int64]int{}}
}

// add takes a piece's events (as sprayer.add) and counts the failed
// logins kept into their minutes.
func (w *windowSprayer) add(evs []ipguard.LoginEvent, declared func(ipguard.LoginEvent) bool) {
	n := len(w.fails)
	w.sprayer.add(evs, declared)
	for i := n; i < len(w.fails); i++ {
		f := &w.fails[i]
		if f.at.After(w.top) {
			w.top = f.at
		}
		if p := w.period(f.at); w.raws[p] < 3 {
			w.raws[p]++
		} else {
			f.raw = nil
		}
	}
	for _, f := range w.fails[n:] {
		if f.at.Before(w.top.Add(-w.horizon)) {
			continue
		}
		start := f.at.Truncate(SprayBucketLength)
		b := w.buckets[start.Unix()]
		if b == nil {
			b = &SprayBucket{Start: start, Accounts: map[string]SprayCount{}}
			w.buckets[start.Unix()] = b
		}
		c, ok := b.Accounts[f.account]
		if !ok {
			if len(b.Accounts) >= MaxBucketAccounts {
				b.More++
				continue
			}
			c = SprayCount{First: f.at, Last: f.at}
		}
		c.N++
		if f.at.Before(c.First) {
			c.First = f.at
		}
		if f.at.After(c.Last) {
			c.Last = f.at
		}
		b.Accounts[f.account] = c
	}
}

// period is the start of the period of SPRAY_WINDOW that t lies in.
func (w *windowSprayer) period(t time.Time) int64 { return t.Truncate(w.window).Unix() }

// wanted returns the minutes not loaded yet that deciding the periods due
// at done (zero with final: all) needs: SPRAY_WINDOW before each of them.
func (w *windowSprayer) wanted(done time.Time, final bool) []time.Time {
	var out []time.Time
	seen := map[int64]bool{}
	for _, p := range w.due(done, final) {
		from := time.Unix(p, 0).UTC().Add(-w.window).Truncate(SprayBucketLength)
		to := time.Unix(p, 0).UTC().Add(w.window)
		for m := from; m.Before(to); m = m.Add(SprayBucketLength) {
			if _, ok := w.stored[m.Unix()]; ok || seen[m.Unix()] {
				continue
			}
			seen[m.Unix()] = true
			out = append(out, m)
		}
	}
	return out
}

// setStored gives the sprayer the buckets earlier runs kept among the
// minutes asked for (absent: none).
func (w *windowSprayer) setStored(asked []time.Time, got map[int64]SprayBucket) {
	for _, m := range asked {
		b := got[m.Unix()]
		w.stored[m.Unix()] = b
		for _, t := range b.Told {
			p := w.period(t.At)
			if have, ok := w.told[p]; !ok || t.At.Before(have.At) {
				w.told[p] = t
			}
		}
	}
}

// due returns the periods with failed logins of this run not decided yet
// whose every failed login, and SPRAY_WINDOW before each, was read: the
// period starts more than SPRAY_WINDOW after done (or the run is final).
func (w *windowSprayer) due(done time.Time, final bool) []int64 {
	set := map[int64]bool{}
	for _, f := range w.fails {
		p := w.period(f.at)
		if w.decided[p] || set[p] {
			continue
		}
		if final || time.Unix(p, 0).Add(-w.window).After(done) {
			set[p] = true
		}
	}
	out := make([]int64, 0, len(set))
	for p := range set {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// decide judges the periods due at done: for each, the earliest failed
// login in a spray and its finding (kept in pending), and forgets the
// failed logins no later judgement of this run needs, so what a run keeps
// is the failed logins within about twice SPRAY_WINDOW of the walk's
// front, not all of the run (#16 §4). Judging a period needs only the
// failed logins from SPRAY_WINDOW before it to its end, all read once it
// is due, so judging it early gives what judging it at the end would. At
// the run's last piece (final) it returns the findings told (tell).
func (w *windowSprayer) decide(done time.Time, final bool) []audit.Finding {
	w.judge(done, final)
	if !final {
		return nil
	}
	return w.tell()
}

// judge adds to pending the candidates of the periods due at done.
func (w *windowSprayer) judge(done time.Time, final bool) {
	due := w.due(done, final)
	if len(due) == 0 {
		return
	}
	isDue := map[int64]bool{}
	for _, p := range due {
		isDue[p] = true
	}
	// This run's failed logins and, for what earlier runs read, each
	// stored account's first and last failed login of a minute (a stand-in
	// with no id: it counts, it never names a finding).
	// Without stand-ins the kept failed logins are sorted in place (no
	// copy of the window at its largest).
	all := w.fails
	stand := 0
	for _, b := range w.stored {
		stand += len(b.Accounts) + b.More
	}
	if stand > 0 {
		all = append(make([]failure, 0, len(w.fails)+2*stand), w.fails...)
	}
	for _, b := range w.stored {
		for acc, c := range b.Accounts {
			all = append(all, failure{at: c.First, account: acc}, failure{at: c.Last, account: acc})
		}
		for i := 0; i < min(b.More, w.min); i++ {
			acc := "\x00more#" + b.Start.Format(time.RFC3339) + "#" + string(rune('a'+i%26)) + string(rune('a'+i/26))
			all = append(all, failure{at: b.Start, account: acc})
		}
	}
	sort.Slice(all, func(i, j int) bool {
		if !all[i].at.Equal(all[j].at) {
			return all[i].at.Before(all[j].at)
		}
		if (all[i].id == 0) != (all[j].id == 0) {
			return all[i].id == 0 // stand-ins first: they count for a login at the same second
		}
		return all[i].id < all[j].id
	})
	count := map[string]int{}
	lo := 0
	for j, f := range all {
		count[f.account]++
		for all[lo].at.Before(f.at.Add(-w.window)) {
			if count[all[lo].account]--; count[all[lo].account] == 0 {
				delete(count, all[lo].account)
			}
			lo++
		}
		p := w.period(f.at)
		if f.id == 0 || !isDue[p] || len(count) < w.min {
			continue
		}
		isDue[p] = false // the earliest of its period
		// The finding shows the failed logins from SPRAY_WINDOW before the
		// one that names it to the end of its period, as far as read.
		end := j + 1
		for end < len(all) && w.period(all[end].at) == p {
			end++
		}
		fd := w.finding(all[lo:end])
		fd.EventID = f.id
		w.pending = append(w.pending, candidate{id: f.id, at: f.at, fd: fd})
	}
	for _, p := range due {
		w.decided[p] = true
	}
	if final {
		w.fails = nil
		return
	}
	// Failed logins of decided periods are needed no more: older periods
	// decided later look only below their own start.
	oldest := due[0]
	kept := w.fails[:0]
	for _, f := range w.fails {
		if f.at.Before(time.Unix(oldest, 0)) {
			kept = append(kept, f)
		}
	}
	w.fails = kept
	if cap(kept) > 2*len(kept)+1024 {
		w.fails = slices.Clone(kept) // give back what a burst grew
	}
}

// tell returns the findings of the candidates judged, oldest period first:
// a period an earlier run told earlier is not told again, and a period
// whose spray began within SPRAY_WINDOW of the previous period's is a
// continuation (marked, not told).
func (w *windowSprayer) tell() []audit.Finding {
	sort.Slice(w.pending, func(i, j int) bool { return w.pending[i].at.Before(w.pending[j].at) })
	var out []audit.Finding
	for _, c := range w.pending {
		p := w.period(c.at)
		if t, ok := w.told[p]; ok && t.At.Before(c.at) {
			continue // an earlier run told this period
		}
		mark := SprayTold{EventID: c.id, At: c.at}
		if prev, ok := w.told[w.period(c.at.Add(-w.window))]; ok && !prev.At.Before(c.at.Add(-w.window)) {
			mark.Continued = true
		}
		w.told[p] = mark
		if b := w.buckets[c.at.Truncate(SprayBucketLength).Unix()]; b != nil {
			b.Told = append(b.Told, mark)
		}
		if !mark.Continued {
			out = append(out, c.fd)
		}
	}
	w.pending = nil
	return out
}

// toSave returns this run's buckets a later run may need.
func (w *windowSprayer) toSave() []SprayBucket {
	var out []SprayBucket
	for _, b := range w.buckets {
		if !b.Start.Before(w.top.Add(-w.horizon)) {
			out = append(out, *b)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Start.Before(out[j].Start) })
	return out
}
