package audit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
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

// errSecondUnread says the walk stopped at a second larger than a page
// whose rows it could not all see within its read budget: it handed on the
// rows it saw and claims nothing of that second (walker.unread names it).
var errSecondUnread = errors.New("a second could not be read whole")

// UnreadSecond is a second the walk stopped at because it could not see
// every row of it: the cursor stays at it, and the next run reads it again
// with twice the budget.
type UnreadSecond struct {
	Second string `json:"second"` // RFC3339
	Rows   int    `json:"rows"`   // rows the second holds, from positions
	Seen   int    `json:"seen"`   // distinct rows seen (and evaluated)
	Reads  int    `json:"reads"`  // requests spent on it in this run
	// RowsUpTo: rows kept arriving above the second while it was read, so
	// Rows (from positions) is an upper bound; the walk claims the second
	// only once it has proven its size (two reads with no arrival between
	// them, or a quiet list).
	RowsUpTo bool `json:"rowsUpTo,omitempty"`
}

// walker reads the events dated [from, below] once each, newest first.
type walker struct {
	src  Source
	from time.Time
	size int // page size
	conc int // pages in flight at most (1: strictly sequential)
	warn func(string)

	// tries is how many earlier runs stopped at a second larger than a page
	// without seeing all of it (the cursor's SecondTries): the read budget
	// for such a second doubles with each.
	tries int
	// lose, optional, is told about logins the walk could not evaluate.
	lose func(lostCoverage)

	below    time.Time       // the walk's upper bound (set by walk)
	drift    int             // rows written above the walk per request, as last measured
	unread   *UnreadSecond   // the second the walk stopped at, unread (see errSecondUnread)
	reported map[string]bool // unreadable rows already reported, by rowKey
	busyOnce sync.Once       // the portal's Retry-After past the deadline, warned once

	mu       sync.Mutex
	inflight map[int]*fetch
	clock    int // ticks at each request sent and each answer received
	requests int // pages requested
	rereads  int // pages read again because a check failed
	rows     int // rows received
}

type fetch struct {
	done chan struct{}
	evs  []ipguard.LoginEvent
	err  error
	// sent and answered order requests in time (walker.clock): a page
	// answered before another was sent shows the list as it was earlier.
	sent, answered int
	req            int // requests made when it was sent (1-based)
}

// page is one answer, with each row's date (an unreadable row takes a
// neighbour's, see dated, so that positions stay meaningful).
type page struct {
	start int
	evs   []ipguard.LoginEvent
	dates []time.Time
	// sent and answered: when the request went out and when its answer
	// came, on the walker's clock (zero for a page not from a request);
	// req: the requests made when it was sent.
	sent, answered, req int
}

func (w *walker) start(ctx context.Context, s int) *fetch {
	w.mu.Lock()
	defer w.mu.Unlock()
	if f, ok := w.inflight[s]; ok {
		return f
	}
	w.clock++
	w.requests++
	f := &fetch{done: make(chan struct{}), sent: w.clock, req: w.requests}
	w.inflight[s] = f
	go func() {
		f.evs, f.err = w.src.LoginEvents(ctx, w.from, s, w.size)
		w.mu.Lock()
		w.rows += len(f.evs)
		w.clock++
		f.answered = w.clock
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
			// Or the portal's request budget, shared by all containers,
			// is used up until a window that starts past it (past.By).
			who := "the portal asked to wait %s before the next request (its Retry-After)"
			if past.By != "" {
				who = past.By + " asks to wait %s before the next request (other containers used this window's requests)"
			}
			w.busyOnce.Do(func() {
				w.warn(fmt.Sprintf(who+", longer than this run has left before its deadline margin (%s); stopped reading here: %s",
					past.Wait.Round(time.Second), past.Left.Round(time.Second), humantext.Line(f.err.Error(), 300)))
			})
			return page{}, errOutOfTime
		}
		return page{}, ipguard.Errorf(ipguard.ErrorCode(f.err), "audit: read login events (startIndex %d): %w", s, f.err)
	}
	p := w.dated(s, f.evs)
	p.sent, p.answered, p.req = f.sent, f.answered, f.req
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
		k := reportKey(ev)
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
		if w.lose != nil {
			w.lose(lostCoverage{cause: CauseUnreadableRows, from: p.dates[i], to: p.dates[i], count: 1, rows: []string{k},
				reason: "1 login event in the portal's history could not be read (the warning names it), so it was not evaluated"})
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

// reportKey is rowKey, short: a raw row's JSON is hashed (the key of an
// unreadable row counted as lost coverage is kept with the progress).
func reportKey(ev ipguard.LoginEvent) string {
	k := rowKey(ev)
	if len(k) <= 40 {
		return k
	}
	h := sha256.Sum256([]byte(k))
	return "h:" + hex.EncodeToString(h[:16])
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
// errSecondUnread when it stopped at a second it could not read whole (the
// rows of that second it saw were handed on, with done at that second), and
// a classified error when the portal fails.
//
// Rows written above the walk while it reads (a flood) shift every position
// down between two requests. The walk measures that drift (rows per request)
// each time it finds a boundary again and aims its next request that much
// further down; a request that still lands above the boundary makes the next
// one go twice as far (a gallop, then a bisection between the last position
// known to hold a newer row and the first known to be too far), so the walk
// gets ahead of any flood the portal's rate limit allows.
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
		pos   int             // where D started when it was seen last; -1 unknown
		req   int             // requests made by then
	}
	b := boundary{d: below, exact: -1, pos: -1}
	fixes, chases := 0, 0
	// lo: the greatest position known to hold a row newer than D (such a
	// position stays newer for good: rows are only inserted above); hi: a
	// position whose page began at or below D (may go stale); step: the
	// gallop's next stride.
	lo, hi, step := -1, -1, 0
	for {
		n := len(p.evs)
		short := n < w.size
		j := p.firstAtOrBelow(b.d)
		switch {
		case j == n && !short: // every row is newer than D: rows were inserted above (a storm, a flood)
			w.rereads++
			lo = max(lo, p.start+n-1)
			if b.pos >= 0 {
				if reqs := w.requestCount() - b.req; reqs > 0 {
					w.drift = max(w.drift, (lo+1-b.pos)/reqs)
				}
			}
			next := lo + w.aim()
			if step > 0 {
				next = lo + step
			}
			step = max(w.size, 2*step)
			if hi > lo && next >= hi {
				next = lo + (hi-lo)/2 + w.aim()
			}
			if p, err = w.get(ctx, next); err != nil {
				return err
			}
			continue
		case j == 0 && p.start > 0: // asked too far down: D may begin above the page
			w.rereads++
			fixes++
			hi = p.start
			w.drift /= 2 // aimed past it: fewer rows arrive than measured
			next := p.start - w.size/2
			switch {
			case b.exact >= 0 && b.exact < p.start:
				next, b.exact = b.exact, -1
			case lo >= 0 && lo < hi:
				next = lo + (hi-lo)/2
			}
			if next >= hi {
				next = hi - 1
			}
			if fixes > 50 {
				return ipguard.Errorf(ipguard.EUnavailable, "audit: could not prove continuity of the login list around startIndex %d (second %s); the walk stopped", p.start, b.d.Format(time.RFC3339))
			}
			if p, err = w.get(ctx, max(0, next)); err != nil {
				return err
			}
			continue
		}
		// D begins in this page (or the list ends first): measure how far
		// it moved since it was seen last.
		if j < n && b.pos >= 0 {
			if reqs := w.requestCount() - b.req; reqs > 0 {
				got := max(0, p.start+j-b.pos) / reqs
				if w.drift > 0 {
					got = (got + w.drift) / 2
				}
				w.drift = got
			}
		}
		step, hi = 0, -1
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
				next := p.start + j - 1 + w.aim()
				if chases > 0 {
					next += j - 1
				}
				chases++
				w.rereads++
				b.pos, b.req = p.start+j, w.requestCount()
				lo = max(lo, p.start+j-1)
				if p, err = w.get(ctx, next); err != nil {
					return err
				}
				continue
			}
			moving := w.drift > 0 // a chase on a quiet list lands at j = 1: no arrivals measured
			chases = 0
			if p, err = w.bigSecond(ctx, p, j, b.d, moving, emit); err != nil {
				return err
			}
			b = boundary{d: b.d.Add(-time.Nanosecond), exact: -1, pos: -1}
			lo = -1
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
			if p, err = w.bigSecond(ctx, p, 0, tail, w.drift > 0, emit); err != nil {
				return err
			}
			b = boundary{d: tail.Add(-time.Nanosecond), exact: -1, pos: -1}
			lo = -1
			continue
		}
		if err := emit(between(p.evs[j:g], p.dates[j:g], tail, b.d), tail, false); err != nil {
			return err
		}
		next := p.start + g - 1
		if w.conc > 1 && w.drift == 0 {
			// A lattice of starts a fixed step apart: each page used starts
			// on it, so the pages asked for ahead are the ones needed next.
			// A page that starts above the exact next start only overlaps
			// more, and is checked like any other. (Under a flood, pages
			// asked for ahead would land above where they are needed: the
			// walk then reads one page at a time, aimed by the drift.)
			step := min(w.size-lattice, g-1)
			ahead := make([]int, 0, w.conc)
			for k := 1; k <= w.conc; k++ {
				ahead = append(ahead, p.start+k*step)
			}
			w.prefetch(ctx, ahead...)
			next = w.inFlightAtOrBelow(p.start, next)
		}
		b = boundary{d: tail, ids: p.ids(), exact: next, pos: p.start + g, req: w.requestCount()}
		lo = p.start + g - 1
		if p, err = w.get(ctx, next+w.aim()); err != nil {
			return err
		}
	}
}

// aim is how much further down than where it last was the walk asks for a
// boundary: three quarters of the measured drift, so that a page lands a
// little above the boundary rather than past it.
func (w *walker) aim() int { return w.drift * 3 / 4 }

// requestCount is the number of pages requested so far.
func (w *walker) requestCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.requests
}

// bigSecond reads a second d that holds more rows than a page. p is a page
// whose row j (≤ 1) is d's first. Since the portal orders the second's rows
// differently on each request, the pages over it are read again until every
// row was seen by id, within a read budget that doubles with each run that
// tried before (walker.tries). It returns the first page that reaches past
// the second.
//
// "Every row" is counted from positions (edges): the second is claimed
// whole only when at least as many distinct rows of it were seen as a
// proven upper bound of its size. On a quiet list the first page and the
// page past the second give the size exactly. While rows are written above
// (a flood), positions shift between any two requests and the bound is
// exact only when two reads bracket the second with no arrival in between;
// the walk tries for such a bracket after every sweep (the top edge, then
// at once the bottom edge). The portal's date filters do not help here: the
// real API applies from and to inside the page window, after paging
// (docs/audit-progress.md), so a request bounded to the second shifts like
// any other.
//
// A second whose rows were not all seen (or whose size could not be proven
// while rows kept arriving) is never claimed: the rows seen are handed on
// with done at d (so the cursor stays there), the walk stops with
// errSecondUnread (errOutOfTime at the deadline), and the next run reads the
// second again with twice the requests. moving says rows were seen arriving
// above the second before it was reached.
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
	e := secondEdges{bound: -1}
	observe := func(q page) {
		collect(q)
		if moved := e.observe(q, d, w.size); moved >= 0 {
			if moved > 0 {
				moving = true
				w.drift = moved
			} else {
				w.drift /= 2
			}
		}
	}
	first, firstReq := p.start+j, p.req
	observe(p)
	reads := 0
	stop := func(err error) (page, error) {
		if errors.Is(err, errOutOfTime) {
			// The deadline came while reading the second: keep what was
			// seen and claim nothing of it.
			return page{}, w.stopAt(d, e.size(first), moving, rows, reads, emit, err)
		}
		return page{}, err
	}
	for {
		n := len(p.evs)
		if k := p.firstAtOrBelow(d.Add(-time.Nanosecond)); k < n || n < w.size {
			break
		}
		if p.firstAtOrBelow(d) == n {
			// The whole page is newer than the second: rows arrive faster
			// than the steps go down; step further.
			w.drift = max(2*w.drift, w.size/2)
		}
		var err error
		if p, err = w.get(ctx, p.start+w.size-10+w.aim()); err != nil {
			return stop(err)
		}
		reads++
		observe(p)
	}
	after := p // the first page past the second
	est := e.size(first)
	// Every request shows a page of the second's rows in a new order: about
	// 8 sweeps over it see each row with high probability; each earlier try
	// doubles that.
	sweeps := (est + w.size - 3) / (w.size - 2)
	budget := reads + max(maxSecondReads, secondSweeps*sweeps)<<min(w.tries, 10) // after the reads down to the page past it
	need := func() bool { return e.bound < 0 || len(rows) < e.bound }
	// top is where the second's first row is expected for the next
	// request: where it was seen last, moved by the drift for each request
	// since (rows arrive before each), corrected by the pages that missed it.
	top := func() int {
		pos, r := first, firstReq
		if e.top.ok {
			pos, r = e.top.pos, e.top.req
		}
		return max(0, pos+w.drift*(w.requestCount()+1-r)+e.miss)
	}
	read := func(at int) (page, error) {
		q, err := w.get(ctx, max(0, at))
		if err == nil {
			reads++
			w.rereads++
			observe(q)
			if n := len(q.evs); !moving && n == w.size && q.firstAtOrBelow(d) == n && q.start >= first {
				// Rows above the second where its rows were: rows arrived.
				moving, w.drift = true, max(w.drift, 1)
			}
		}
		return q, err
	}
	for k := 0; need() && reads < budget; k++ {
		if !moving {
			// A sweep over the second's positions.
			for off := -1; off < e.size(first) && reads < budget && need() && !moving; off += w.size - 2 {
				if _, err := read(top() + off); err != nil {
					return stop(err)
				}
			}
			continue
		}
		// Rows arrive above the second: look for its top edge where the
		// drift puts it, and when a page shows it, read at once the page
		// where the bottom edge is if no row arrives in between (a
		// bracket: when none did, the bound it gives is the size).
		q, err := read(top() - w.size/2)
		if err != nil {
			return stop(err)
		}
		switch n := len(q.evs); {
		case e.top.ok && e.top.req == q.req:
			if reads < budget {
				if _, err := read(e.top.pos + len(rows) - 5); err != nil {
					return stop(err)
				}
			}
		case q.firstAtOrBelow(d) == n && n == w.size:
			e.miss += w.size // wholly above the second: more rows arrived than the drift says
		default:
			e.miss -= w.size / 2 // inside the second or below it: fewer arrived
		}
		// And, every other time, a page over the second for its rows (so
		// that the brackets do not keep the same step with the flood).
		if span := e.size(first); k%2 == 0 && reads < budget && span > 0 {
			if _, err := read(top() + (k*(w.size-2))%span); err != nil {
				return stop(err)
			}
		}
	}
	day := d.UTC().Format(time.RFC3339)
	if need() {
		return page{}, w.stopAt(d, e.size(first), moving, rows, reads, emit, errSecondUnread)
	}
	w.warn(fmt.Sprintf("%d login events share the second %s, more than a page of %d holds; the portal orders them differently on each request, so they were read by repeated requests (%d), every one of them",
		len(rows), day, w.size, reads))
	return after, emit(inWindow(rows, dates(rows, d), w.from, d), d.Add(-time.Nanosecond), false)
}

// secondEdges keeps what pages showed of a second's two edges: top, the
// position of its first row (how many rows are dated after it), and end,
// the position of the first row after it. Rows are only inserted above the
// second (a flood is dated now), so both edges move down together and
// end − top is the second's size at every instant. Two edges read at
// different instants bound it: a top read in a page answered before the
// page showing the end was asked for is at most the top at that instant,
// so end − that top is at least the size. bound is the least such bound,
// the size itself when no row arrived between the two reads (on a quiet
// list always; in one page showing both edges always).
type secondEdges struct {
	tops     []edgeSeen // every top seen, in the order read
	top, end edgeSeen   // the last of each seen
	bound    int        // least proven upper bound of the size; -1: none yet
	miss     int        // correction of the expected top from pages that missed it (reset when seen)
}

type edgeSeen struct {
	pos      int
	answered int // on the walker's clock
	req      int // requests made when it was asked for
	ok       bool
}

// observe records the edges q shows and returns how many rows per request
// the top moved since it was seen last (-1: not measured).
func (e *secondEdges) observe(q page, d time.Time, size int) int {
	top, tOK := q.edge(d, size)
	end, eOK := q.edge(d.Add(-time.Nanosecond), size)
	if tOK && eOK && (e.bound < 0 || end-top < e.bound) {
		e.bound = end - top
	}
	if eOK {
		best := -1
		for _, t := range e.tops {
			if t.answered < q.sent && t.pos > best {
				best = t.pos
			}
		}
		if best >= 0 && (e.bound < 0 || end-best < e.bound) {
			e.bound = end - best
		}
		e.end = edgeSeen{pos: end, answered: q.answered, req: q.req, ok: true}
	}
	moved := -1
	if tOK {
		if e.top.ok && q.req > e.top.req {
			moved = max(0, top-e.top.pos) / (q.req - e.top.req)
		}
		e.top = edgeSeen{pos: top, answered: q.answered, req: q.req, ok: true}
		e.tops = append(e.tops, e.top)
		e.miss = 0
	}
	return moved
}

// size is the second's size as best known: the proven bound, else the
// last bottom edge seen less the top (an estimate), else a page.
func (e *secondEdges) size(first int) int {
	switch {
	case e.bound >= 0:
		return e.bound
	case e.end.ok && e.top.ok:
		return max(0, e.end.pos-e.top.pos)
	case e.end.ok:
		return max(0, e.end.pos-first)
	}
	return 0
}

// edge is the position of the first row of q dated ≤ at, when q shows it:
// the row before it is newer (or q starts at the top of the list), both
// rows are readable (an unreadable row's date is a neighbour's guess), or
// q is a short page (the list or the window ends) whose rows are all newer.
func (q page) edge(at time.Time, size int) (int, bool) {
	n := len(q.evs)
	i := q.firstAtOrBelow(at)
	switch {
	case i == n:
		if n < size && (n > 0 && q.evs[n-1].Unreadable == "" || q.start == 0) {
			return q.start + n, true
		}
		return 0, false
	case q.evs[i].Unreadable != "":
		return 0, false
	case i == 0:
		return q.start, q.start == 0
	case q.evs[i-1].Unreadable != "":
		return 0, false
	}
	return q.start + i, true
}

// stopAt ends the walk at second d, not all of whose rows were seen (size:
// the rows it holds, from positions; upTo: rows kept arriving above it, so
// size is an upper bound): the rows seen are handed on with done at d
// (nothing of d is claimed), the result says so, and why is returned
// (errSecondUnread or errOutOfTime).
func (w *walker) stopAt(d time.Time, size int, upTo bool, rows []ipguard.LoginEvent, reads int, emit emitFunc, why error) error {
	day := d.UTC().Format(time.RFC3339)
	size = max(size, len(rows))
	w.unread = &UnreadSecond{Second: day, Rows: size, Seen: len(rows), Reads: reads, RowsUpTo: upTo}
	holds := fmt.Sprintf("%d login events", size)
	if upTo {
		holds = fmt.Sprintf("up to %d login events (new events kept arriving above it, so positions give only a bound)", size)
	}
	w.warn(fmt.Sprintf("the second %s holds %s, more than a page of %d holds, and the portal orders them differently on each request; %d requests saw %d of them, so the walk stops at that second and claims nothing of it: the next run reads it again with twice the requests",
		day, holds, w.size, reads, len(rows)))
	if w.lose != nil && errors.Is(why, errSecondUnread) {
		w.lose(lostCoverage{cause: CauseSecondUnread, from: d, to: d, count: size - len(rows), upTo: upTo,
			reason: fmt.Sprintf("the second %s holds %s, more than a page, and %d requests saw %d of them; the audit stays at that second (logins older than it are not evaluated yet) and reads it again in the next run", day, holds, reads, len(rows))})
	}
	if err := emit(inWindow(rows, dates(rows, d), w.from, d), d, false); err != nil {
		return err
	}
	return why
}

// maxSecondReads is the least number of extra requests spent on one second
// larger than a page (more for a larger second, and twice as many for each
// run that tried before).
const maxSecondReads = 40

// secondSweeps is how many times a run reads over a second larger than a
// page, at the least (a variable so that a test can make one run's reads
// fall short).
var secondSweeps = 8

// maxChases bounds the re-reads that try to fit a second cut by a page
// boundary into one page while rows keep arriving above it.
const maxChases = 3

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
	// narrow reads the page at s and returns it, found, when it holds the
	// first row at or below below, or when the list ends in it with rows
	// newer than below (nothing to read); otherwise it moves hi (s is at or
	// below below) or lo (the page's last row is still after below).
	narrow := func(s int) (q page, found bool, err error) {
		q, err = w.get(ctx, s)
		if err != nil {
			return page{}, false, err
		}
		j := q.firstAtOrBelow(below)
		switch {
		case j == 0:
			hi = s
		case j < len(q.evs), len(q.evs) < w.size:
			return q, true, nil
		default:
			lo = s + len(q.evs) - 1
		}
		return page{}, false, nil
	}
	for step := w.size; hi < 0; step *= 2 {
		if q, found, err := narrow(lo + step); found || err != nil {
			return q, err
		}
	}
	for hi-lo >= w.size {
		if q, found, err := narrow(lo + (hi-lo)/2); found || err != nil {
			return q, err
		}
	}
	return w.get(ctx, lo)
}

// probeFallback asks, after a short first page, for one row. A portal whose
// plan lacks the audit feature ignores every parameter and answers with its
// 20 newest events; an honest one never answers with more rows than asked,
// whatever arrives meanwhile. (Comparing the page at startIndex 100 with
// the first one does not do: a flood between the two requests pushes the
// first page's rows past position 100 on an honest portal, and fills a
// fallback's 20 newest with rows the first page did not have.)
func (w *walker) probeFallback(ctx context.Context, first page) error {
	w.mu.Lock()
	w.clock++
	w.requests++
	w.mu.Unlock()
	evs, err := w.src.LoginEvents(ctx, w.from, 0, 1)
	if err != nil {
		var past *ipguard.WaitPastDeadlineError
		if ctx.Err() != nil || errors.As(err, &past) {
			return errOutOfTime
		}
		return ipguard.Errorf(ipguard.ErrorCode(err), "audit: read login events (startIndex 0, count 1, the plan-fallback probe): %w", err)
	}
	w.mu.Lock()
	w.rows += len(evs)
	w.mu.Unlock()
	if len(evs) > 1 && len(first.evs) > 1 {
		msg := "plan fallback: the portal answers the login filter with its newest events whatever the paging (asked for 1 event, it sent " + strconv.Itoa(len(evs)) + "; its plan lacks the audit feature), so logins of this window may be missing; upgrade the plan or audit more often"
		w.warn(msg)
		if w.lose != nil {
			w.lose(lostCoverage{cause: CausePlanFallback, from: w.from, to: w.below, reason: msg})
		}
	}
	return nil
}
