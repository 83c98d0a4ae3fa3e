package audit

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"ipguard/internal/humantext"
	"ipguard/internal/ipguard"
)

// The walk: reading a live, newest-first list whose order within one second
// changes from request to request, without missing or repeating a row.
//
// Positions (startIndex) only ever move down: new rows are inserted at the
// top (ids grow in insertion order, dates are "now"), so a row read at
// position p is later at p+d, d ≥ 0. The walk therefore never trusts a
// position; it trusts dates. The boundary between two pages is the tail
// second D of the page read last, the oldest second it holds, whose rows may
// continue on the next page (and, with ties shuffled per request, may sit in
// any order on both):
//
//	page k     [ ... E E D D ]            D = tail second, G = where D starts
//	page k+1          [ E D D D D C C B ... ]
//	                    ^ j: first row dated ≤ D (row j-1 is newer: anchor)
//
// Page k+1 is requested at G−1, so it starts with one row newer than D and
// then holds the second D whole. It is accepted only when
//   - j ≥ 1 (the anchor is there: nothing of D lies before the page),
//   - a row older than D follows the rows of D, or the page is short (end of
//     the list): D is whole,
//   - it shares at least one id with page k (continuity is proved).
//
// Then every row of page k+1 dated (C_last, D] is handed on: nothing dated
// after D is handed on twice, nothing dated D or older is handed on before
// its second was read whole. A page that fails the check is read again:
//
//	all rows newer than D (rows were inserted above: a storm) → at start+len−1
//	first row already ≤ D (asked too far down)               → at G−1, then further up
//	D not whole, j > 1                                       → at start+j−1
//	D not whole, j ≤ 1 (one second holds a page or more)     → read on in steps,
//	    collecting D's rows by id, and warn naming the second and the count
//
// Several pages may be in flight at once: the walk asks for the next pages at
// predicted positions before it needs them, and checks each exactly as above
// when its turn comes; a wrong guess costs one request, never a row.

// errOutOfTime says the walk stopped at its deadline margin.
var errOutOfTime = errors.New("out of time")

// walker reads the events dated [from, below] once each, newest first.
type walker struct {
	src  Source
	from time.Time
	size int // page size
	conc int // pages in flight at most (1: strictly sequential)
	warn func(string)

	below    time.Time       // the walk's upper bound (set by walk)
	reported map[string]bool // unreadable rows already reported, by rowKey
	busyOnce sync.Once       // the portal's Retry-After past the deadline, warned once

	mu       sync.Mutex
	inflight map[int]*fetch
	requests int // pages requested
	rereads  int // pages read again because a check failed
	rows     int // rows received
}

type fetch struct {
	done chan struct{}
	evs  []ipguard.LoginEvent
	err  error
}

// page is one answer, with each row's date (an unreadable row takes a
// neighbour's, see dated, so that positions stay meaningful).
type page struct {
	start int
	evs   []ipguard.LoginEvent
	dates []time.Time
}

func (w *walker) start(ctx context.Context, s int) *fetch {
	w.mu.Lock()
	defer w.mu.Unlock()
	if f, ok := w.inflight[s]; ok {
		return f
	}
	f := &fetch{done: make(chan struct{})}
	w.inflight[s] = f
	w.requests++
	go func() {
		f.evs, f.err = w.src.LoginEvents(ctx, w.from, s, w.size)
		w.mu.Lock()
		w.rows += len(f.evs)
		w.mu.Unlock()
		close(f.done)
	}()
	return f
}

// counts returns the requests made, the pages read again and the rows
// received so far (requests ahead of need may still be arriving).
func (w *walker) counts() (requests, rereads, rows int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.requests, w.rereads, w.rows
}

// prefetch asks for the pages at starts ahead of need, up to conc in flight.
func (w *walker) prefetch(ctx context.Context, starts ...int) {
	for _, s := range starts {
		w.mu.Lock()
		n := len(w.inflight)
		_, have := w.inflight[s]
		w.mu.Unlock()
		if n >= w.conc || s < 0 {
			return
		}
		if !have {
			w.start(ctx, s)
		}
	}
}

// lattice is how many rows consecutive pages of the concurrent walk share
// when the seconds at their boundaries are small.
const lattice = 6

// inFlightAtOrBelow returns the greatest start in flight in (lo, hi], or hi.
func (w *walker) inFlightAtOrBelow(lo, hi int) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	best := -1
	for s := range w.inflight {
		if s > lo && s <= hi && s > best {
			best = s
		}
	}
	if best < 0 {
		return hi
	}
	return best
}

// get returns the page at start s (waiting for it if it is in flight) and
// forgets requests in flight for positions at or above s, which can no
// longer be needed.
func (w *walker) get(ctx context.Context, s int) (page, error) {
	if ctx.Err() != nil {
		return page{}, errOutOfTime
	}
	f := w.start(ctx, s)
	select {
	case <-f.done:
	case <-ctx.Done():
		return page{}, errOutOfTime
	}
	w.mu.Lock()
	for k := range w.inflight {
		if k <= s {
			delete(w.inflight, k)
		}
	}
	w.mu.Unlock()
	if f.err != nil {
		if ctx.Err() != nil {
			return page{}, errOutOfTime
		}
		var past *ipguard.WaitPastDeadlineError
		if errors.As(f.err, &past) {
			// The portal asked (Retry-After) for a wait that passes the
			// deadline margin: stop like at the margin, keeping what was
			// committed; the next run goes on from the cursor.
			w.busyOnce.Do(func() {
				w.warn(fmt.Sprintf("the portal asked to wait %s before the next request (its Retry-After), longer than this run has left before its deadline margin (%s); stopped reading here: %s",
					past.Wait.Round(time.Second), past.Left.Round(time.Second), humantext.Line(f.err.Error(), 300)))
			})
			return page{}, errOutOfTime
		}
		return page{}, ipguard.Errorf(ipguard.ErrorCode(f.err), "audit: read login events (startIndex %d): %w", s, f.err)
	}
	p := w.dated(s, f.evs)
	w.reportUnreadable(p)
	return p, nil
}

// reportUnreadable warns, once per row and run, about each unreadable row of
// p placed in the window. It is done when the page is read, not when its band
// is handed on: a row without a date of its own may sit in a different place
// of its second on every request, and so fall between two bands.
func (w *walker) reportUnreadable(p page) {
	for i, ev := range p.evs {
		if ev.Unreadable == "" || p.dates[i].Before(w.from) || (!w.below.IsZero() && p.dates[i].After(w.below)) {
			continue
		}
		k := rowKey(ev)
		if w.reported[k] {
			continue
		}
		if w.reported == nil {
			w.reported = map[string]bool{}
		}
		w.reported[k] = true
		if w.warn != nil {
			w.warn(fmt.Sprintf("unreadable login event skipped: %s; raw: %s", humantext.Line(ev.Unreadable, 200), humantext.Line(string(ev.Raw), 300)))
		}
	}
}

// dated makes the page at start s of evs. A row without a date of its own
// (unreadable) takes the date of the first row after it that has one (it is
// at least as new as that row); at the end of the page, of the row before
// it; on a page where no row has one, the window's start. A row placed with
// the rows after it is handed on with them, or with the second it was
// deferred with, so that it is reported: never dropped in silence because it
// looked newer than the band being handed on.
func (w *walker) dated(s int, evs []ipguard.LoginEvent) page {
	p := page{start: s, evs: evs, dates: make([]time.Time, len(evs))}
	own := func(ev ipguard.LoginEvent) bool { return ev.Unreadable == "" || !ev.Date.IsZero() }
	next := time.Time{} // the date of the nearest row below with one
	for i := len(evs) - 1; i >= 0; i-- {
		if own(evs[i]) {
			next = evs[i].Date
		}
		p.dates[i] = next
	}
	prev := w.from
	for i, ev := range evs {
		switch {
		case own(ev):
			prev = ev.Date
		case p.dates[i].IsZero():
			p.dates[i] = prev // no row below has a date
		}
	}
	return p
}

// firstAtOrBelow is the index of the first row dated ≤ d, or len.
func (p page) firstAtOrBelow(d time.Time) int {
	for i, t := range p.dates {
		if !t.After(d) {
			return i
		}
	}
	return len(p.dates)
}

// ids are the identities of a page's rows: the id, or for a row whose id
// could not be read, its raw JSON.
func (p page) ids() map[string]bool {
	m := make(map[string]bool, len(p.evs))
	for _, ev := range p.evs {
		m[rowKey(ev)] = true
	}
	return m
}

func rowKey(ev ipguard.LoginEvent) string {
	if ev.ID != 0 || ev.Unreadable == "" {
		return strconv.FormatInt(ev.ID, 10)
	}
	return "raw:" + string(ev.Raw)
}

// emitFunc receives the rows dated (done, previous done] in read order;
// after it returns, every row dated after done has been handed on. final
// says the walk is complete (done is then meaningless).
type emitFunc func(evs []ipguard.LoginEvent, done time.Time, final bool) error

// walk hands on every event dated [w.from, below] exactly once, in bands.
// It returns errOutOfTime when ctx ends (what was handed on stays handed on),
// and a classified error when the portal fails.
func (w *walker) walk(ctx context.Context, below time.Time, emit emitFunc) error {
	w.inflight = map[int]*fetch{}
	w.below = below
	p, err := w.locate(ctx, below)
	if err != nil {
		return err
	}
	type boundary struct {
		d     time.Time
		ids   map[string]bool // rows of the page before; nil: nothing to share with
		exact int             // where the page after it should start (G−1); -1 unknown
	}
	b := boundary{d: below, exact: -1}
	fixes, chases := 0, 0
	for {
		n := len(p.evs)
		short := n < w.size
		j := p.firstAtOrBelow(b.d)
		switch {
		case j == n && !short: // every row is newer than D: rows were inserted above (a storm)
			w.rereads++
			if p, err = w.get(ctx, p.start+n-1); err != nil {
				return err
			}
			continue
		case j == 0 && p.start > 0: // asked too far down: D may begin above the page
			w.rereads++
			fixes++
			next := p.start - w.size/2
			if b.exact >= 0 && b.exact < p.start {
				next, b.exact = b.exact, -1
			}
			if fixes > 50 {
				return ipguard.Errorf(ipguard.EUnavailable, "audit: could not prove continuity of the login list around startIndex %d (second %s); the walk stopped", p.start, b.d.Format(time.RFC3339))
			}
			if p, err = w.get(ctx, max(0, next)); err != nil {
				return err
			}
			continue
		}
		if b.ids != nil && !shares(p, b.ids) {
			w.rereads++
			fixes++
			if fixes > 50 {
				return ipguard.Errorf(ipguard.EUnavailable, "audit: two pages of the login list around startIndex %d share no event; the walk stopped", p.start)
			}
			if p, err = w.get(ctx, max(0, p.start-w.size/2)); err != nil {
				return err
			}
			continue
		}
		whole := short
		for i := j; i < n && !whole; i++ {
			whole = p.dates[i].Before(b.d)
		}
		if !whole {
			if j > 1 && chases < maxChases { // D may fit in a page that starts just above it
				// Rows written since the last request shift the list down:
				// a page asked for "just above D" that again starts j−1
				// rows above it saw that many arrive, so ask as much
				// further down. A second that still does not fit (larger
				// than a page, or rows arriving too fast) is read like one
				// larger than a page.
				next := p.start + j - 1
				if chases > 0 {
					next += j - 1
				}
				chases++
				w.rereads++
				if p, err = w.get(ctx, next); err != nil {
					return err
				}
				continue
			}
			moving := chases > 0
			chases = 0
			if p, err = w.bigSecond(ctx, p, j, b.d, moving, emit); err != nil {
				return err
			}
			b = boundary{d: b.d.Add(-time.Nanosecond), exact: -1}
			continue
		}
		fixes, chases = 0, 0
		if short || p.dates[n-1].Before(w.from) {
			// The end of the list, or of the window (a portal that applies
			// from inside the page answers short; one that ignores it
			// answers with older rows, which are left out here).
			return emit(inWindow(p.evs[j:], p.dates[j:], w.from, b.d), time.Time{}, true)
		}
		tail := p.dates[n-1]
		g := p.firstAtOrBelow(tail)
		if g == 0 { // the top page is one second, which may go on below it
			if p, err = w.bigSecond(ctx, p, 0, tail, false, emit); err != nil {
				return err
			}
			b = boundary{d: tail.Add(-time.Nanosecond), exact: -1}
			continue
		}
		if err := emit(between(p.evs[j:g], p.dates[j:g], tail, b.d), tail, false); err != nil {
			return err
		}
		next := p.start + g - 1
		if w.conc > 1 {
			// A lattice of starts a fixed step apart: each page used starts
			// on it, so the pages asked for ahead are the ones needed next.
			// A page that starts above the exact next start only overlaps
			// more, and is checked like any other.
			step := min(w.size-lattice, g-1)
			ahead := make([]int, 0, w.conc)
			for k := 1; k <= w.conc; k++ {
				ahead = append(ahead, p.start+k*step)
			}
			w.prefetch(ctx, ahead...)
			next = w.inFlightAtOrBelow(p.start, next)
		}
		b = boundary{d: tail, ids: p.ids(), exact: next}
		if p, err = w.get(ctx, next); err != nil {
			return err
		}
	}
}

// bigSecond reads a second d that holds more rows than a page. p is a page
// whose row j (≤ 1) is d's first; the second's size is known from positions
// (its first row and the first row after it), and since the portal orders
// its rows differently on each request, the pages over it are read again
// until every row was seen by id (or maxSecondReads requests were spent).
// It hands the rows on, warns naming the second and the count, and returns
// the first page that reaches past the second. moving says rows were seen
// arriving above the second meanwhile: positions then shift between
// requests, so the size known from them is an upper bound.
func (w *walker) bigSecond(ctx context.Context, p page, j int, d time.Time, moving bool, emit emitFunc) (page, error) {
	seen := map[int64]bool{}
	var rows []ipguard.LoginEvent
	collect := func(p page) {
		for i, ev := range p.evs {
			if p.dates[i].Equal(d) && !seen[ev.ID] {
				seen[ev.ID] = true
				rows = append(rows, ev)
			}
		}
	}
	first := p.start + j
	collect(p)
	for {
		n := len(p.evs)
		if k := p.firstAtOrBelow(d.Add(-time.Nanosecond)); k < n || n < w.size {
			break
		}
		var err error
		if p, err = w.get(ctx, p.start+w.size-10); err != nil {
			return page{}, err
		}
		collect(p)
	}
	after := p // the first page past the second
	size := after.start + after.firstAtOrBelow(d.Add(-time.Nanosecond)) - first
	for reads := 0; len(rows) < size && reads < maxSecondReads; {
		for s := max(0, first-1); s < first+size && reads < maxSecondReads; s += w.size - 2 {
			q, err := w.get(ctx, s)
			if err != nil {
				return page{}, err
			}
			reads++
			w.rereads++
			collect(q)
		}
	}
	msg := fmt.Sprintf("%d login events share the second %s, more than a page of %d holds; the portal orders them differently on each request, so they were read by repeated requests",
		size, d.UTC().Format(time.RFC3339), w.size)
	switch {
	case len(rows) < size && moving:
		msg = fmt.Sprintf("%d login events of the second %s were read by repeated requests (more than fit in a page of %d while rows were being written above them); positions count up to %d, which includes rows written meanwhile, so up to %d of the second may not have been evaluated",
			len(rows), d.UTC().Format(time.RFC3339), w.size, size, size-len(rows))
	case len(rows) < size:
		msg += fmt.Sprintf("; %d of them could not be read and were not evaluated", size-len(rows))
	}
	w.warn(msg)
	return after, emit(inWindow(rows, dates(rows, d), w.from, d), d.Add(-time.Nanosecond), false)
}

// maxSecondReads bounds the extra requests spent on one second larger than
// a page.

// maxChases bounds the re-reads that try to fit a second cut by a page
// boundary into one page while rows keep arriving above it.
const maxChases = 3
const maxSecondReads = 40

func dates(evs []ipguard.LoginEvent, d time.Time) []time.Time {
	out := make([]time.Time, len(evs))
	for i := range out {
		out[i] = d
	}
	return out
}

func shares(p page, ids map[string]bool) bool {
	for _, ev := range p.evs {
		if ids[rowKey(ev)] {
			return true
		}
	}
	return false
}

// between returns the rows dated (lo, hi].
func between(evs []ipguard.LoginEvent, ds []time.Time, lo, hi time.Time) []ipguard.LoginEvent {
	var out []ipguard.LoginEvent
	for i, ev := range evs {
		if ds[i].After(lo) && !ds[i].After(hi) {
			out = append(out, ev)
		}
	}
	return out
}

// inWindow returns the rows dated [from, hi].
func inWindow(evs []ipguard.LoginEvent, ds []time.Time, from, hi time.Time) []ipguard.LoginEvent {
	var out []ipguard.LoginEvent
	for i, ev := range evs {
		if !ds[i].Before(from) && !ds[i].After(hi) {
			out = append(out, ev)
		}
	}
	return out
}

// locate finds the first page to read: one that starts above the rows dated
// ≤ below (or at the top of the list), searching by date since positions
// are monotonic in it: a gallop down from the top, then a bisection. A
// scheduled run finds it at once (the newest rows are its own); a resumed or
// a backfill run skips the newer rows in a few requests instead of reading
// them all.
func (w *walker) locate(ctx context.Context, below time.Time) (page, error) {
	p, err := w.get(ctx, 0)
	if err != nil {
		return page{}, err
	}
	if len(p.evs) < w.size {
		if len(p.evs) > 0 {
			if err := w.probeFallback(ctx, p); err != nil {
				return page{}, err
			}
		}
		return p, nil
	}
	if j := p.firstAtOrBelow(below); j < len(p.evs) {
		return p, nil
	}
	lo, hi := len(p.evs)-1, -1 // lo: a position dated after below; hi: one at or below it (or past the end)
	for step := w.size; hi < 0; step *= 2 {
		s := lo + step
		q, err := w.get(ctx, s)
		if err != nil {
			return page{}, err
		}
		j := q.firstAtOrBelow(below)
		switch {
		case j == 0:
			hi = s
		case j < len(q.evs):
			return q, nil
		case len(q.evs) < w.size:
			return q, nil // the list ends with rows newer than below: nothing to read
		default:
			lo = s + len(q.evs) - 1
		}
	}
	for hi-lo >= w.size {
		mid := lo + (hi-lo)/2
		q, err := w.get(ctx, mid)
		if err != nil {
			return page{}, err
		}
		j := q.firstAtOrBelow(below)
		switch {
		case j == 0:
			hi = mid
		case j < len(q.evs):
			return q, nil
		case len(q.evs) < w.size:
			return q, nil
		default:
			lo = mid + len(q.evs) - 1
		}
	}
	return w.get(ctx, lo)
}

// probeFallback asks for the page after a short first page. A portal whose
// plan lacks the audit feature answers every query with the same 20 newest
// events; an honest one answers with nothing.
func (w *walker) probeFallback(ctx context.Context, first page) error {
	next, err := w.get(ctx, w.size)
	if err != nil {
		return err
	}
	if shares(next, first.ids()) {
		w.warn("plan fallback: the portal answers the login filter with the same newest events whatever the paging (its plan lacks the audit feature), so logins of this window may be missing; upgrade the plan or audit more often")
	}
	return nil
}
