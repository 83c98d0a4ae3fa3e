package onboard

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"ipguard/internal/allowlist"
	"ipguard/internal/humantext"
	"ipguard/internal/ipguard"
)

// LeftView is a stored user the portal no longer has, or has terminated.
type LeftView struct {
	UserID string `json:"userId"`
	Email  string `json:"email"`
	Why    string `json:"why"` // "deleted from the portal" or "terminated on the portal"
	// Confirmed: seen gone in this check and the one before (only then
	// may it be offboarded).
	Confirmed  bool `json:"confirmed"`
	Offboarded bool `json:"offboarded"`
	// rev is the record's rev as this check stored it (0: not stored,
	// another write came first): the offboarding deletes only that record.
	rev int64
}

// Sync reconciles now: it completes pending changes, expires time-bound
// entries, repairs drift, sends alerts still due, and reports (with
// OFFBOARD_REMOVED_USERS=true, offboards) stored users the portal no longer
// has or has terminated. It is what the schedule invokes with
// {"action": "sync"}. Its warnings are one safe line each (humantext.Line).
//
// Offboarding users who left is destructive automation with a bounded
// blast radius: a user is offboarded only when seen gone in two
// consecutive checks of that user (stored on the user), only after the
// allowlist endpoint answered in the same sync, and never more than
// max(OffboardMinUsers, OffboardMaxPercent% of the stored users) at once:
// past that, nobody is offboarded and an alert says so. The ids offboarded
// are logged, recorded as due and published at once (alertNow), before the
// reconcile: the alert leaves in this invocation also when the rest of the
// sync fails (a store error, a refused PUT, the lease held by another for
// the whole wait), and one the topic refused stays due for the next
// reconcile of any change.
func (s *Service) Sync(ctx context.Context) (Result, error) {
	res, err := s.sync(ctx)
	res.Warnings = safeWarnings(res.Warnings)
	return res, err
}

func (s *Service) sync(ctx context.Context) (Result, error) {
	res := newResult(ActionSync, "")
	left, checked, planned, total, skipped, err := s.usersLeft(ctx)
	res.Warnings = append(res.Warnings, skipped...)
	if err != nil {
		res.Warnings = append(res.Warnings, "could not check for users who left the portal: "+err.Error())
	} else if checked < planned {
		res.Warnings = append(res.Warnings, fmt.Sprintf("checked %d of this sync's %d stored users against the portal before the deadline; the next sync goes on from there", checked, planned))
	}
	var confirmed []int
	for i, l := range left {
		if l.Confirmed {
			confirmed = append(confirmed, i)
		}
	}
	limit := max(OffboardMinUsers, total*s.Settings.offboardMaxPercent()/100)
	// The limit holds per pass of the rotation, not per sync: each sync
	// sees only its share of the users, so a directory that makes everyone
	// look gone shows few per sync. Those offboarded in the budget's window
	// (one pass) count against it.
	rot, used := s.userChecks(), 0
	var usedErr error
	if s.Settings.OffboardRemovedUsers && len(confirmed) > 0 {
		used, usedErr = rot.OffboardedWithin(ctx, s.now())
	}
	switch {
	case !s.Settings.OffboardRemovedUsers || len(confirmed) == 0:
	case usedErr != nil:
		res.Warnings = append(res.Warnings, "users who left were not offboarded: how many were offboarded lately could not be read ("+humantext.Line(usedErr.Error(), 300)+"); the next sync tries again")
	case len(confirmed) > limit-used:
		w := fmt.Sprintf("%d stored users look gone from the portal, more than the %d that may be offboarded at once (OFFBOARD_MAX_PERCENT %d%%, at least %d, per %s: one pass over the users; %d offboarded in it so far): none was offboarded; check the portal and DOCSPACE_API_HOST, then offboard them by hand",
			len(confirmed), limit, s.Settings.offboardMaxPercent(), OffboardMinUsers, rot.within(), used)
		res.Warnings = append(res.Warnings, w)
		s.log().Error("users left: too many to offboard at once", "count", len(confirmed), "limit", limit, "offboardedLately", used)
		if first, err := rot.Halt(ctx, s.now()); first || err != nil {
			s.alertNow(ctx, "users-left#too-many", s.usersLeftAlert(w, nil))
		}
	default:
		// The offboarding's calls (and the allowlist's read before it) end
		// OffboardReserve before the deadline, so that whom it offboarded
		// is still reported (and counted against the budget) with the time
		// left, whatever fails or hangs.
		octx, ocancel := ctx, context.CancelFunc(func() {})
		if dl, ok := ctx.Deadline(); ok {
			octx, ocancel = context.WithDeadline(ctx, dl.Add(-OffboardReserve))
		}
		if _, err := s.Portal.IPRestrictions(octx); err != nil {
			ocancel()
			res.Warnings = append(res.Warnings, "users who left were not offboarded: the portal allowlist did not answer in this sync ("+humantext.Line(err.Error(), 300)+")")
			break
		}
		var ids []string
		reported := false
		report := func() {
			if reported {
				return
			}
			reported = true
			ocancel()
			s.reportOffboarded(ctx, ids)
			if len(ids) > 0 {
				if err := rot.NoteOffboarded(ctx, len(ids), s.now()); err != nil {
					s.log().Error("users left: count the users offboarded against the blast radius", "error", err)
					res.Warnings = append(res.Warnings, "could not count the users offboarded against OFFBOARD_MAX_PERCENT: "+humantext.Line(err.Error(), 300))
				}
			}
		}
		defer report()
		failed := func(id string, err error) (Result, error) {
			report()
			return Result{}, fmt.Errorf("offboarded users who left the portal (%s) but then failed at user %s: %w", strings.Join(ids, ", "), id, err)
		}
		for _, i := range confirmed {
			if octx.Err() != nil {
				res.Warnings = append(res.Warnings, "stopped offboarding users who left before the sync's deadline; the next sync goes on (they are still seen gone)")
				break
			}
			was, _, gerr := s.Store.GetUser(octx, left[i].UserID)
			if left[i].rev == 0 || gerr == nil && was.Rev != left[i].rev {
				// Written by a request since the check saw it gone (an
				// admin re-activated the user, the pipeline changed it):
				// that newer write stands; the next sync checks again.
				res.Warnings = append(res.Warnings, "user "+left[i].UserID+" looks gone from the portal but was changed by a request during this sync; not offboarded now, the next sync checks again")
				continue
			}
			now := s.now().UTC()
			if err := s.rememberOffboarding(octx, changeInput{id: left[i].UserID, at: now, now: now}); err != nil {
				return failed(left[i].UserID, err)
			}
			// Conditional on the record the check judged gone: a request
			// that wrote the user since is not erased; the next sync
			// checks the user again.
			deleted, err := s.Store.DeleteUserIf(octx, left[i].UserID, left[i].rev)
			if err != nil {
				return failed(left[i].UserID, err)
			}
			if !deleted {
				res.Warnings = append(res.Warnings, "user "+left[i].UserID+" looks gone from the portal but was changed by a request during this sync; not offboarded now, the next sync checks again")
				continue
			}
			left[i].Offboarded = true
			ids = append(ids, left[i].UserID)
			if gerr == nil {
				s.recordHistory(octx, &res, left[i].UserID, was.Email, nil, was.Entries, true, s.now())
			}
		}
		report()
		if _, err := s.Store.BumpVersion(ctx); err != nil {
			return Result{}, fmt.Errorf("offboarded users who left the portal (%s) but then failed: %w", strings.Join(ids, ", "), err)
		}
	}
	res.UsersLeft = left
	// A failure after offboarding names whom it offboarded (the error is
	// what the failure queue's record carries), keeping its kind.
	named := func(err error) error {
		var ids []string
		for _, l := range left {
			if l.Offboarded {
				ids = append(ids, l.UserID)
			}
		}
		if len(ids) == 0 {
			return err
		}
		return fmt.Errorf("offboarded users who left the portal (%s), then: %w", strings.Join(clipList(ids), ", "), err)
	}
	// The sync also reads the writes recorded for a second look in the
	// trail, due or not in the state (startRecheck).
	out, err := s.converge(withRecheckSweep(ctx), 0, true, nil, time.Time{}, 0)
	if err != nil {
		return Result{}, named(err)
	}
	if err := failure(out, "sync"); err != nil {
		return Result{}, named(err)
	}
	res.absorb(out)
	if len(left) > 0 && !s.Settings.OffboardRemovedUsers {
		res.Warnings = append(res.Warnings, "stored users left the portal (see usersLeft); offboard them, or set OFFBOARD_REMOVED_USERS=true")
	}
	s.log().Info("sync", "portal", res.Portal, "put", res.PortalUpdated, "expired", len(res.Expired), "usersLeft", len(left), "drift", res.Drift != nil)
	return res, nil
}

// OffboardMinUsers is the number of users who left that may always be
// offboarded at once, whatever OFFBOARD_MAX_PERCENT allows.
const OffboardMinUsers = 5

func (r Settings) offboardMaxPercent() int {
	if r.OffboardMaxPercent <= 0 {
		return 10
	}
	return r.OffboardMaxPercent
}

// reportOffboarded logs and alerts (through the outbox) the users offboarded.
func (s *Service) reportOffboarded(ctx context.Context, ids []string) {
	if len(ids) == 0 {
		return
	}
	s.log().Warn("offboarded users who left the portal", "userIds", ids)
	w := fmt.Sprintf("%d stored user(s) were deleted or terminated on the portal (seen so in two consecutive checks) and were offboarded: their allowlist entries are removed", len(ids))
	s.alertNow(ctx, "users-left#"+strings.Join(ids, ","), s.usersLeftAlert(w, ids))
}

// alertNow records a as due under key and flushes the outbox at once, so
// that a sync that fails after recording it (and so never reaches the
// flush after its reconcile) still sends it. What the topic refused stays
// due, and the state is marked (no reconcile holds the lease here to set
// its flag), so the next reconcile of any change sends it, not only the
// next sync.
func (s *Service) alertNow(ctx context.Context, key string, a ipguard.Alert) {
	s.due(ctx, key, a)
	if s.Alerts == nil || !s.flushDue(ctx) {
		return
	}
	if err := s.Store.MarkAlertsDue(ctx); err != nil {
		s.log().Error("mark an alert as due (the next sync sends it)", "error", err)
	}
}

func (s *Service) usersLeftAlert(what string, ids []string) ipguard.Alert {
	if ids == nil {
		ids = []string{}
	}
	def, _ := json.Marshal(map[string]any{"kind": "allowlist_users_left", "severity": "medium", "portal": s.PortalName, "userIds": clipList(ids), "count": len(ids), "what": what})
	list := humantext.Line(strings.Join(clipList(ids), ", "), 4000)
	if more := len(ids) - len(clipList(ids)); more > 0 {
		// The log line "offboarded users who left the portal" names all.
		list += fmt.Sprintf(" and %d more (the log line \"offboarded users who left the portal\" names every id)", more)
	}
	return ipguard.Alert{
		Subject:  "DocSpace: users who left the portal (allowlist)",
		Default:  string(def),
		Email:    "DocSpace IP Guard, " + humantext.Line(s.PortalName, 200) + ":\n\n  " + what + "\n\n  " + list + "\n",
		SMS:      "DocSpace IP Guard: users who left the portal. See email.",
		Severity: "medium",
		Kinds:    []string{"allowlist_users_left"},
	}
}

// usersLeft asks the directory about this sync's share of the stored users
// (the rotation, usercheck.go: its place is kept in the store), until half
// the time left before the deadline is spent (the reconcile needs the rest).
// An outage or a refusal (the key) stops it (err); a failure that concerns
// one user (an id the portal answers with something else than a user) is a
// warning in skipped, and the others are still checked. checked and
// planned count this sync's checks; total the stored users. Each check is
// stored on the user (GoneChecks): a user is Confirmed gone when this check
// and the one before both found it gone; a user seen gone once is checked
// again first in the next sync (WHERE-ISSUES-MEET §14).
func (s *Service) usersLeft(ctx context.Context) (left []LeftView, checked, planned, total int, skipped []string, err error) {
	left = []LeftView{}
	if s.Directory == nil {
		return left, 0, 0, 0, nil, nil
	}
	users, err := s.Store.AllUsers(ctx)
	if err != nil {
		return left, 0, 0, 0, nil, err
	}
	total = len(users)
	byID := make(map[string]ipguard.User, len(users))
	ids := make([]string, 0, len(users))
	for _, u := range users {
		byID[u.ID] = u
		ids = append(ids, u.ID)
	}
	rot := s.userChecks()
	now := s.now()
	// first: users to check again before the rotation's share: a user seen
	// gone once is checked again first (WHERE-ISSUES-MEET §14).
	var first []string
	for _, u := range users {
		if u.GoneChecks == 1 {
			first = append(first, u.ID)
		}
	}
	plan, perr := rot.Plan(ctx, ids, first, now)
	if perr != nil {
		skipped = append(skipped, "could not read the users-left rotation's place (this sync goes on from this container's last place, or the first user): "+humantext.Line(perr.Error(), 300))
	}
	if total > plan.Capacity {
		skipped = append(skipped, fmt.Sprintf("%d stored users are more than the sync checks in %s at %d per sync (%d): some are checked less often; schedule the sync more often",
			total, rot.within(), plan.Batch, plan.Capacity))
	}
	planned = len(plan.IDs)
	var done []string
	read, lastSkip := 0, error(nil) // checks answered with a user or a not-found; the last that was not
	defer func() {
		nerr := err
		switch {
		case nerr == nil && checked == 0 && planned > 0:
			// Not one user could be checked in the check's share of the
			// time (people/{id} hangs): a failure of its own, alerted once
			// it lasts (as a passing outage's).
			nerr = ipguard.Errorf(ipguard.EUnavailable, "no people/{id} answered within the users-left check's half of the sync's time")
		case nerr == nil && checked > 0 && read == 0:
			// Every user of the share answered with something that is no
			// user (a proxy's JSON of another shape): nobody who left can
			// be found, which one warning per user does not tell anyone.
			nerr = ipguard.Errorf(ipguard.EInternal, "not one of the %d people/{id} of this sync answered with a user or a not-found (the last: %s)", checked, humantext.Line(lastSkip.Error(), 200))
		}
		s.noticeUsersLeftCheck(ctx, &plan, rot.within(), now, read, nerr)
		if derr := rot.Done(ctx, plan, done, now); derr != nil {
			skipped = append(skipped, "could not save the users-left rotation's place (the next sync checks some users again): "+humantext.Line(derr.Error(), 300))
		}
	}()
	// The calls themselves end at the half too (a call that hangs, retried
	// on its timeouts, would otherwise take the reconcile's half as well).
	stopAt, cctx := time.Time{}, ctx
	if dl, ok := ctx.Deadline(); ok {
		stopAt = time.Now().Add(time.Until(dl) / 2)
		var cancel context.CancelFunc
		cctx, cancel = context.WithDeadline(ctx, stopAt)
		defer cancel()
	}
	for _, id := range plan.IDs {
		if !stopAt.IsZero() && time.Now().After(stopAt) {
			break
		}
		u := byID[id]
		p, found, err := s.Directory.Person(cctx, u.ID)
		if err != nil && cctx.Err() != nil && ctx.Err() == nil {
			break // the check's half is spent: the next sync goes on from here
		}
		if code := ipguard.ErrorCode(err); err != nil && (code != ipguard.EInvalid && code != ipguard.EInternal || ctx.Err() != nil) {
			return left, checked, planned, total, skipped, err
		}
		checked++
		done = append(done, id)
		gone := ""
		switch {
		case err != nil:
			skipped = append(skipped, "could not check whether stored user "+humantext.Line(u.ID, 128)+" left the portal: "+humantext.Line(err.Error(), 300))
			lastSkip = err
			continue
		case !found:
			gone = "deleted from the portal"
		case p.Status == StatusTerminated:
			gone = "terminated on the portal"
		}
		read++
		checks, rev := 0, u.Rev
		if gone != "" {
			checks = u.GoneChecks + 1
		}
		if checks != u.GoneChecks && u.Unreadable == "" {
			next := u
			next.GoneChecks, next.Rev = min(checks, 2), u.Rev+1
			ok, err := s.replaceUser(ctx, next, u.Rev) // never over an offboarding meanwhile
			if err != nil {
				return left, checked, planned, total, skipped, err
			}
			if rev = next.Rev; !ok {
				rev = 0 // written meanwhile by a request: not this check's record
			}
		}
		if gone != "" {
			left = append(left, LeftView{UserID: u.ID, Email: u.Email, Why: gone, Confirmed: checks >= 2, rev: rev})
		}
	}
	return left, checked, planned, total, skipped, nil
}

// noticeUsersLeftCheck tells a person, once per episode, that the
// users-left check could not run (err): nobody who left is found, so with
// OFFBOARD_REMOVED_USERS=true nobody is offboarded and their addresses stay
// allowed. A passing outage (EUnavailable) is alerted only once the
// rotation has not moved for within (every user was due by then). A sync
// whose check works (read: users answered with a user or a not-found) ends
// the episode. The episode is kept with the rotation's place
// (CheckCursor.Notice), which Done stores.
func (s *Service) noticeUsersLeftCheck(ctx context.Context, plan *CheckPlan, within time.Duration, now time.Time, read int, err error) {
	switch {
	case err == nil:
		if read > 0 {
			plan.SetNotice("")
		}
		return
	case ctx.Err() != nil:
		return
	}
	kind := string(ipguard.ErrorCode(err))
	if kind == "" {
		kind = string(ipguard.EInternal)
	}
	if kind == plan.Notice() || kind == string(ipguard.EUnavailable) && !plan.Stale(now, within) {
		return
	}
	what := "could not check for users who left the portal (people/{id}): " + humantext.Line(err.Error(), 300) + "; "
	if s.Settings.OffboardRemovedUsers {
		what += "until it works, nobody who left is offboarded (OFFBOARD_REMOVED_USERS=true) and their addresses stay allowed on the portal. "
	} else {
		what += "until it works, users who left are not reported. "
	}
	what += "Check DOCSPACE_API_HOST (a proxy in the way?) and that the key may read people, then run a sync; this is sent once until a check works again"
	s.log().Error("users-left check failing", "kind", kind, "error", err)
	s.alertNow(ctx, "users-left-check#"+kind, s.usersLeftAlert(what, nil))
	plan.SetNotice(kind)
}

// PreviewResult replays recent successful logins against the list the
// portal would hold.
type PreviewResult struct {
	Days           int            `json:"days"`
	From           string         `json:"from"`
	LoginsReplayed int            `json:"loginsReplayed"`
	Allowed        int            `json:"allowed"`
	Refused        []RefusedLogin `json:"refused"`
	Unverifiable   int            `json:"unverifiable"` // IPv6 cut by the API: cannot be compared
	OwnerExempt    int            `json:"ownerExempt"`
	Enabled        bool           `json:"restrictionsWouldBeOn"`
	Note           string         `json:"note"`
}

// RefusedLogin is a user and address the planned list would have refused.
type RefusedLogin struct {
	UserID string `json:"userId,omitempty"`
	User   string `json:"user"`
	IP     string `json:"ip"`
	Logins int    `json:"logins"`
	Last   string `json:"last"`
}

// preview computes the list the portal would hold after a reconcile now
// and replays the last days of successful logins against it, as the portal
// enforces it: exact string match; forAdmin entries only for DocSpace
// admins; the owner exempt. Nothing is written. It reads
// (readForPreview), plans (planAsNextReconcile), replays (replayLogins)
// and shapes the result.
func (s *Service) preview(ctx context.Context, days int) (Result, error) {
	res := newResult(ActionPreview, "")
	if s.Logins == nil {
		return Result{}, ipguard.Errorf(ipguard.EConfig, "preview: no login history configured")
	}
	now := s.now().UTC()
	r, err := s.readForPreview(ctx)
	if err != nil {
		return Result{}, err
	}
	plan, err := s.planAsNextReconcile(ctx, &r, now)
	if err != nil {
		return Result{}, err
	}
	p, err := s.replayLogins(ctx, &res, plan, days, now)
	if err != nil {
		return Result{}, err
	}
	res.Preview = p
	res.RestrictionsEnabled = r.enabled
	res.setPortalFrom(r.state)
	return res, nil
}

// previewRead is what preview reads: the portal memory, every stored user,
// and the portal's list and restriction setting as they are now.
type previewRead struct {
	state   ipguard.PortalState
	users   []ipguard.User
	list    []ipguard.Restriction
	enabled bool
}

// readForPreview reads the portal memory, the stored users (by the same
// read as a reconcile's scan, desiredUsers: a user item broken beside its
// entries is read as the reconcile reads it), and the portal's list and
// setting, in that order; a portal error keeps its code.
func (s *Service) readForPreview(ctx context.Context) (previewRead, error) {
	var r previewRead
	var err error
	if r.state, err = s.Store.PortalState(ctx); err != nil {
		return r, err
	}
	if r.users, err = s.desiredUsers(ctx); err != nil { // as the reconcile reads them, so the plan is its plan
		return r, err
	}
	if r.list, err = s.Portal.IPRestrictions(ctx); err != nil {
		return r, ipguard.Errorf(ipguard.ErrorCode(err), "preview: read the portal allowlist: %w", err)
	}
	if r.enabled, err = s.Portal.IPRestrictionsEnabled(ctx); err != nil {
		return r, ipguard.Errorf(ipguard.ErrorCode(err), "preview: read the portal restriction setting: %w", err)
	}
	return r, nil
}

// planAsNextReconcile plans the list as the next reconcile would, writing
// nothing: r.state is settled against the portal first (settle), and a
// switch-off by hand that no reconcile has seen yet keeps restrictions off
// as well (unless PORTAL_DRIFT_REPAIR); switching them on is judged by the
// same lock-out rule as a reconcile's.
func (s *Service) planAsNextReconcile(ctx context.Context, r *previewRead, now time.Time) (Plan, error) {
	base, baseEnabled := settle(&r.state, r.list, r.enabled, s.settleFacts(ctx, r.state))
	drift := detectDrift(r.state, base, baseEnabled, r.list, r.enabled, s.Settings)
	keepOff := !s.Settings.DriftRepair && !r.enabled && (drift != nil && drift.SwitchedOff || r.state.HandOff)
	en := EnableRule{Allowed: true, KeepOff: keepOff}
	if !r.enabled && s.Settings.Enforce && !keepOff {
		en = s.enableRule(ctx)
		en.KeepOff = keepOff
	}
	return PlanReconcile(r.list, r.enabled, r.state.Owned, DesiredState(r.users, s.Settings, now), s.Settings, en)
}

// previewPage is how many login events one read of the history asks for.
const previewPage = 100

// replayLogins replays the successful logins of the last days before now
// against plan's list, a page at a time, and tallies them (loginReplay).
// It stops early, with a note, when less than 5s are left before ctx's
// deadline, and notes (and warns in res) when the portal's plan answers
// every page with the same newest events (isFallback).
func (s *Service) replayLogins(ctx context.Context, res *Result, plan Plan, days int, now time.Time) (*PreviewResult, error) {
	from := now.Add(-time.Duration(days) * 24 * time.Hour)
	p := &PreviewResult{Days: days, From: from.Format(time.RFC3339), Refused: []RefusedLogin{}, Enabled: plan.Enable,
		Note: "replays successful logins only: the portal writes no event for a login its restrictions refuse"}
	lr := newLoginReplay(s, plan.List, from, p)
	for start := 0; ; start += previewPage {
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < 5*time.Second {
			p.Note += fmt.Sprintf("; stopped reading at the deadline after %d logins: invoke with fewer days for the rest", p.LoginsReplayed)
			break
		}
		evs, err := s.Logins.LoginEvents(ctx, from, start, previewPage)
		if err != nil {
			return nil, ipguard.Errorf(ipguard.ErrorCode(err), "preview: read the login history: %w", err)
		}
		for _, ev := range evs {
			lr.judge(ctx, ev)
		}
		if len(evs) < previewPage {
			if start == 0 && len(evs) > 0 && s.isFallback(ctx, from, previewPage, evs) {
				const w = "plan fallback: the portal answers the login history with the same newest events whatever the paging (its plan lacks the audit feature), so only those were replayed; the preview does not cover the whole period"
				p.Note += "; " + w
				res.Warnings = append(res.Warnings, w)
			}
			break
		}
	}
	p.Refused = append(p.Refused, lr.refusedInOrder()...)
	return p, nil
}

// loginReplay judges logins against a planned list as the portal enforces
// it and tallies them in p; refused logins are grouped by user and
// address, in the order first seen.
type loginReplay struct {
	s            *Service
	plain, admin map[string]bool
	from         time.Time
	p            *PreviewResult
	people       map[string]*Person // asked of the Directory, once each (nil: unknown)
	refused      map[[2]string]*RefusedLogin
	order        [][2]string
}

func newLoginReplay(s *Service, list []ipguard.Restriction, from time.Time, p *PreviewResult) *loginReplay {
	plain, admin := splitByAdmin(list)
	return &loginReplay{s: s, plain: plain, admin: admin, from: from, p: p, people: map[string]*Person{}, refused: map[[2]string]*RefusedLogin{}}
}

// who is the person with id as the Directory knows them, asked once per
// id; nil when there is no Directory, no id, or no answer.
func (lr *loginReplay) who(ctx context.Context, id string) *Person {
	if lr.s.Directory == nil || id == "" {
		return nil
	}
	if pp, ok := lr.people[id]; ok {
		return pp
	}
	pp, found, err := lr.s.Directory.Person(ctx, id)
	var out *Person
	if err == nil && found {
		out = &pp
	}
	lr.people[id] = out
	return out
}

// judge counts one event: anything but a successful login since from is
// skipped; the owner is exempt; an address that is no IP is unverifiable;
// the address (trimmed, compared as a string) is allowed by a plain entry,
// or by a forAdmin one for an admin; otherwise it is refused.
func (lr *loginReplay) judge(ctx context.Context, ev ipguard.LoginEvent) {
	if !ev.IsSuccessfulLogin() || ev.Date.Before(lr.from) {
		return
	}
	p := lr.p
	p.LoginsReplayed++
	person := lr.who(ctx, ipguard.CanonicalUserID(ev.UserID))
	if person != nil && person.IsOwner {
		p.OwnerExempt++
		return
	}
	if _, ok := allowlist.ParseLoginIP(ev.IP); !ok {
		p.Unverifiable++
		return
	}
	ip := strings.TrimSpace(ev.IP) // the portal compares strings exactly
	if lr.plain[ip] || (lr.admin[ip] && person != nil && person.IsAdmin) {
		p.Allowed++
		return
	}
	k := [2]string{ev.UserID, ip}
	r := lr.refused[k]
	if r == nil {
		r = &RefusedLogin{UserID: humantext.Line(ev.UserID, 64), User: humantext.Line(firstNonEmpty(ev.User, ev.Login), 100), IP: humantext.Line(ip, 64)}
		lr.refused[k] = r
		lr.order = append(lr.order, k)
	}
	r.Logins++
	if d := ev.Date.UTC().Format(time.RFC3339); d > r.Last {
		r.Last = d
	}
}

// refusedInOrder returns the refused logins, one per user and address, in
// the order first seen.
func (lr *loginReplay) refusedInOrder() []RefusedLogin {
	out := make([]RefusedLogin, 0, len(lr.order))
	for _, k := range lr.order {
		out = append(out, *lr.refused[k])
	}
	return out
}

// isFallback asks for the page after a short first page: a portal whose
// plan lacks the audit feature answers it with the same newest events, an
// honest one with nothing (docspace-api.md §3.1). A failed probe says no.
func (s *Service) isFallback(ctx context.Context, from time.Time, page int, first []ipguard.LoginEvent) bool {
	next, err := s.Logins.LoginEvents(ctx, from, page, page)
	if err != nil {
		return false
	}
	seen := make(map[int64]bool, len(first))
	for _, ev := range first {
		seen[ev.ID] = true
	}
	for _, ev := range next {
		if seen[ev.ID] {
			return true
		}
	}
	return false
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// OffboardReserve is the time the offboarding of users who left leaves
// before the sync's deadline: no offboarding starts, and no call of one
// runs, past it, so that whom it offboarded is still logged, recorded as
// due and published.
var OffboardReserve = 3 * time.Second
