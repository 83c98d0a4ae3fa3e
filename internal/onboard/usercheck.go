package onboard

import (
	"context"
	"slices"
	"sort"
	"sync"
	"time"
)

// The users-left rotation: which stored users each sync asks the portal
// about. Its place is kept in the store (CheckCursorStore), so that cold
// starts and several containers continue one pass over the users instead of
// starting again at the first id:
//
//	ids in byte order:  a  b  c | d  e  f | g  h  i | a  b  c ...
//	sync 1 checks ──────────────┘         │         │
//	sync 2 (any container) ───────────────┘         │
//	sync 3 wraps round ─────────────────────────────┘
//
// Each sync checks a batch sized so that every stored user is checked at
// least once per Within (default 12 hours: twice a day) at the sync's
// interval, never more than Max (the bound of one sync's cost: Max portal
// GETs, and two reads and one write of the cursor). Users to check "first"
// (suspects: a user seen gone once is checked again in the next sync, see
// WHERE-ISSUES-MEET §14) come before the batch and on top of it.

// Defaults of UserChecks.
const (
	DefaultSyncInterval = 15 * time.Minute // the template's SyncSchedule default
	DefaultCheckWithin  = 12 * time.Hour
	DefaultChecksMin    = 10
	DefaultChecksMax    = 200
)

// CheckCursor is where the rotation stands.
type CheckCursor struct {
	// After is the last user id checked by the rotation ("" before the first).
	After string
	// At is when the rotation last moved (zero before the first).
	At time.Time
	// Notice is the kind of the users-left check's failure last alerted
	// (an ipguard error code), "" when none: one alert per episode, which
	// a sync whose check works ends.
	Notice string
	// Offboarded counts the users who left that syncs offboarded since
	// OffboardedSince (within one Within: a pass of the rotation), the
	// blast radius's budget; Halted is when a sync last found more users
	// gone than the budget left (alerted once per Within).
	Offboarded      int
	OffboardedSince time.Time
	Halted          time.Time
}

// CheckCursorStore keeps the rotation's place. Both methods return
// classified errors (EUnavailable when the store fails).
type CheckCursorStore interface {
	// UserCheckCursor reads the cursor; the zero value when none is stored.
	UserCheckCursor(ctx context.Context) (CheckCursor, error)
	// SaveUserCheckCursor stores it (last writer wins: two syncs at once
	// at worst check some users twice).
	SaveUserCheckCursor(ctx context.Context, c CheckCursor) error
}

// UserChecks is the rotation. The zero value keeps its place in this
// process only, checks at the default interval and bounds; it is safe for
// concurrent use.
type UserChecks struct {
	// Store keeps the place across cold starts and containers; nil: in
	// memory only.
	Store CheckCursorStore
	// Every is the sync's interval (SYNC_SCHEDULE); 0: DefaultSyncInterval.
	// A longer gap since the previous sync (a cron schedule, a paused
	// schedule) is measured from the cursor and used instead.
	Every time.Duration
	// Within: every stored user is checked at least once in this span
	// (when the users fit Max per sync); 0: DefaultCheckWithin.
	Within time.Duration
	// Min and Max bound the batch per sync; 0: the defaults.
	Min, Max int

	mu  sync.Mutex
	mem CheckCursor
}

// CheckPlan is one sync's share of the rotation.
type CheckPlan struct {
	// IDs are the users to check, in order: first the ones asked for
	// first (still stored), then the batch.
	IDs []string
	// Batch is how many of IDs come from the rotation (after those asked
	// for first; a user both asked for first and due counts once, first).
	Batch int
	// Capacity is how many users the rotation can check per Within at this
	// batch size; fewer than the stored users means some wait longer.
	Capacity int
	cursor   CheckCursor
	due      []string // the rotation's share, in order (some may also be first)
	notice   string   // the Notice Done stores
}

// Notice is the users-left check's failure last alerted ("" none).
func (p *CheckPlan) Notice() string { return p.notice }

// SetNotice makes Done store notice as the failure last alerted.
func (p *CheckPlan) SetNotice(notice string) { p.notice = notice }

// Stale reports whether the rotation last moved longer ago than within
// before now (every user was due by then); false when it never moved.
func (p *CheckPlan) Stale(now time.Time, within time.Duration) bool {
	return !p.cursor.At.IsZero() && now.Sub(p.cursor.At) > within
}

// Plan chooses the users to check now among ids (every stored user id),
// first those of first that are stored. A cursor that cannot be read is
// returned as err with a plan from this process's last place (the start of
// the ids in a new process): the sync goes on.
func (u *UserChecks) Plan(ctx context.Context, ids, first []string, now time.Time) (CheckPlan, error) {
	ids = slices.Clone(ids)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	cur, err := u.cursor(ctx)
	every := u.every()
	if !cur.At.IsZero() {
		if gap := now.Sub(cur.At); gap > every {
			every = gap
		}
	}
	within := u.within()
	n := len(ids)
	if every < within {
		// ceil(len·every/within): one pass per Within.
		n = int((int64(len(ids))*int64(every) + int64(within) - 1) / int64(within))
	}
	n = max(n, u.min())
	n = min(n, u.max(), len(ids))
	capacity := len(ids)
	if every < within {
		capacity = u.max() * int(within/every)
	}

	plan := CheckPlan{Capacity: capacity, cursor: cur, notice: cur.Notice}
	stored := make(map[string]bool, len(ids))
	for _, id := range ids {
		stored[id] = true
	}
	seen := map[string]bool{}
	for _, id := range first {
		if stored[id] && !seen[id] {
			seen[id] = true
			plan.IDs = append(plan.IDs, id)
		}
	}
	start := sort.SearchStrings(ids, cur.After)
	if start < len(ids) && ids[start] == cur.After {
		start++
	}
	for i := 0; i < n; i++ {
		id := ids[(start+i)%len(ids)]
		plan.due = append(plan.due, id)
		if !seen[id] {
			seen[id] = true
			plan.IDs = append(plan.IDs, id)
			plan.Batch++
		}
	}
	return plan, err
}

// Done moves the rotation past the users of plan's share that were
// checked, up to the first one that was not (a sync cut by its deadline goes
// on from there next time); users asked for first move it only where they
// were also due. Nothing of the share checked leaves the cursor as it was.
func (u *UserChecks) Done(ctx context.Context, plan CheckPlan, checked []string, now time.Time) error {
	was := make(map[string]bool, len(checked))
	for _, id := range checked {
		was[id] = true
	}
	last := ""
	for _, id := range plan.due {
		if !was[id] {
			break
		}
		last = id
	}
	if last == "" && plan.notice == plan.cursor.Notice {
		return nil
	}
	// Only the rotation's own fields are written, over the cursor as
	// stored now: the budget (Offboarded, Halted) that syncs count meanwhile,
	// or that the plan could not read, is never reset by moving it.
	return u.update(ctx, func(c *CheckCursor) bool {
		if last != "" {
			c.After, c.At = last, now.UTC()
		}
		c.Notice = plan.notice
		return true
	})
}

// OffboardedWithin is how many users syncs offboarded in the current
// window of the budget (one Within from the first of them; 0 once it
// passed).
func (u *UserChecks) OffboardedWithin(ctx context.Context, now time.Time) (int, error) {
	c, err := u.cursor(ctx)
	if err != nil {
		return 0, err
	}
	if c.OffboardedSince.IsZero() || now.Sub(c.OffboardedSince) >= u.within() {
		return 0, nil
	}
	return c.Offboarded, nil
}

// NoteOffboarded adds n users offboarded at now to the budget's window
// (a new window when the last one passed).
func (u *UserChecks) NoteOffboarded(ctx context.Context, n int, now time.Time) error {
	return u.update(ctx, func(c *CheckCursor) bool {
		if c.OffboardedSince.IsZero() || now.Sub(c.OffboardedSince) >= u.within() {
			c.Offboarded, c.OffboardedSince = 0, now.UTC()
		}
		c.Offboarded += n
		return true
	})
}

// Halt records that a sync at now found more users gone than the budget
// left; first is true when no sync did so within the last Within (alert).
func (u *UserChecks) Halt(ctx context.Context, now time.Time) (first bool, err error) {
	err = u.update(ctx, func(c *CheckCursor) bool {
		if !c.Halted.IsZero() && now.Sub(c.Halted) < u.within() {
			return false
		}
		c.Halted, first = now.UTC(), true
		return true
	})
	return first, err
}

// update reads the cursor, applies change and stores it when change says
// so (last writer wins, like Done).
func (u *UserChecks) update(ctx context.Context, change func(*CheckCursor) bool) error {
	c, err := u.cursor(ctx)
	if err != nil {
		return err
	}
	if !change(&c) {
		return nil
	}
	return u.save(ctx, c)
}

// save keeps c in memory and, with a Store, stores it.
func (u *UserChecks) save(ctx context.Context, c CheckCursor) error {
	u.mu.Lock()
	u.mem = c
	u.mu.Unlock()
	if u.Store == nil {
		return nil
	}
	return u.Store.SaveUserCheckCursor(ctx, c)
}

func (u *UserChecks) cursor(ctx context.Context) (CheckCursor, error) {
	if u.Store != nil {
		c, err := u.Store.UserCheckCursor(ctx)
		if err == nil {
			return c, nil
		}
		u.mu.Lock()
		defer u.mu.Unlock()
		return u.mem, err
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.mem, nil
}

func (u *UserChecks) every() time.Duration {
	if u.Every > 0 {
		return u.Every
	}
	return DefaultSyncInterval
}

func (u *UserChecks) within() time.Duration {
	if u.Within > 0 {
		return u.Within
	}
	return DefaultCheckWithin
}

func (u *UserChecks) min() int {
	if u.Min > 0 {
		return u.Min
	}
	return DefaultChecksMin
}

func (u *UserChecks) max() int {
	if u.Max > 0 {
		return u.Max
	}
	return DefaultChecksMax
}

// userChecks is the service's rotation.
func (s *Service) userChecks() *UserChecks {
	if s.UserChecks != nil {
		return s.UserChecks
	}
	s.preflight.Lock()
	defer s.preflight.Unlock()
	if s.checks == nil {
		s.checks = &UserChecks{}
	}
	return s.checks
}
