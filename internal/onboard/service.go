package onboard

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"ipguard/internal/allowlist"
	"ipguard/internal/humantext"
	"ipguard/internal/ipguard"
	"ipguard/internal/lease"
)

// Store is the desired state: users' entries, and the tool's memory of the
// portal (version counter, ownership, last seen list). Every method returns
// an ipguard.Error: EUnavailable when the store failed.
type Store interface {
	// GetUser returns the user with id, strongly consistent; ok is false if
	// there is none.
	GetUser(ctx context.Context, id string) (ipguard.User, bool, error)
	// PutUserIf stores u only if the stored rev is still prevRev (0: no
	// record). It reports false, with no error, when another write came
	// first; the caller re-reads and tries again.
	PutUserIf(ctx context.Context, u ipguard.User, prevRev int64) (bool, error)
	// DeleteUser removes the user; a user that is not stored is fine.
	DeleteUser(ctx context.Context, id string) error
	// DeleteUserIf removes the user only if the stored rev is still rev
	// (or none is stored: a resend of a delete whose answer was lost). It
	// reports false, with no error, when another write came first; the
	// caller re-reads, so a newer request's write is never erased.
	DeleteUserIf(ctx context.Context, id string, rev int64) (bool, error)
	// AllUsers returns every stored user; every write completed before the
	// call is seen. A user whose item cannot be decoded comes back with
	// Unreadable set instead of failing the call.
	AllUsers(ctx context.Context) ([]ipguard.User, error)
	// BumpVersion adds one to the desired-state version and returns it;
	// concurrent callers get distinct values.
	BumpVersion(ctx context.Context) (int64, error)
	// PortalState reads the portal memory (zero value when none), strongly consistent.
	PortalState(ctx context.Context) (ipguard.PortalState, error)
	// PutPortalState stores every field but Version; Applied never goes
	// down. A write with st.Pass set is fenced: when a pass other than
	// st.Pass wrote since the state st.Base names was read, it writes
	// nothing and returns an error with ErrSuperseded in its chain (the
	// newer pass's fields stand).
	PutPortalState(ctx context.Context, st ipguard.PortalState) error
	// MarkAlertsDue notes that an alert was recorded as due outside a
	// reconcile (no lease held): PortalState reads AlertsDue until a state
	// read after the mark is written (see ipguard.PortalState.DueMarks), so
	// the next reconcile, of any change, flushes the outbox. A write of a
	// state read before the mark never erases it.
	MarkAlertsDue(ctx context.Context) error
	// AddDueAlert records an alert as due (replacing one with the same
	// key); DueAlerts returns them, oldest first; ClearDueAlert removes one
	// (an unknown key is fine). The outbox of onboarding's alerts.
	AddDueAlert(ctx context.Context, a ipguard.DueAlert) error
	DueAlerts(ctx context.Context) ([]ipguard.DueAlert, error)
	ClearDueAlert(ctx context.Context, key string) error
	// ClaimDueAlert claims the due alert with key for token until until
	// (a conditional write): ok only when it is due and no other claim on
	// it runs at now, so one flusher at a time sends it. It returns the
	// alert as stored now (send that one). AddDueAlert of the same key
	// drops any claim: the newer alert is due again.
	ClaimDueAlert(ctx context.Context, key, token string, until, now time.Time) (a ipguard.DueAlert, ok bool, err error)
	// SettleDueAlert ends token's claim on key: sent removes the alert,
	// otherwise it stays due, unclaimed. When the claim is no longer
	// token's (it ran out and was taken, or a newer alert replaced it) it
	// does nothing, with no error.
	SettleDueAlert(ctx context.Context, key, token string, sent bool) error
}

// ErrSuperseded is in the chain of PutPortalState's error when another
// reconcile pass wrote the state since the writing pass read it: the
// writer's lease ran out and a newer holder took over.
var ErrSuperseded = ipguard.ErrSuperseded

// Tombstones is optional on a Store: it remembers when each user was last
// offboarded (the request's time) for OffboardedKeep, since an offboarding
// deletes the record whose entries carry the times of their changes. A
// request older than the offboarding is then recognised as stale.
type Tombstones interface {
	// PutOffboarded records an offboarding requested at at, kept until
	// expires; an older time never replaces a newer one.
	PutOffboarded(ctx context.Context, id string, at, expires time.Time) error
	// Offboarded returns the remembered offboarding's request time; ok
	// false when none is remembered at now.
	Offboarded(ctx context.Context, id string, now time.Time) (at time.Time, ok bool, err error)
}

// OffboardedKeep is how long an offboarding is remembered: as long as the
// failure queue keeps a message (14 days), so any replay from it is judged.
const OffboardedKeep = 14 * 24 * time.Hour

// HistoryRecorder keeps each user's allowlist history (see the audit).
type HistoryRecorder interface {
	// RecordHistory notes that, at at, the entries added started counting
	// for userID and the entries removed stopped (offboarded: the user was
	// offboarded, and every entry stopped). It forgets what ended more than
	// keep before at.
	RecordHistory(ctx context.Context, userID, email string, added, removed []string, offboarded bool, at time.Time, keep time.Duration) error
}

// HistoryKeep is how long a user's allowlist history is kept after an entry
// stopped counting: logins older than that (a backfill) are judged by the
// allowlist stored when the audit reads them.
const HistoryKeep = 90 * 24 * time.Hour

// recordHistory notes a stored change in the history; a failure is a
// warning of the result (the change itself stands).
func (s *Service) recordHistory(ctx context.Context, res *Result, id, email string, added, removed []string, offboarded bool, at time.Time) {
	if s.History == nil || (len(added) == 0 && len(removed) == 0 && !offboarded) {
		return
	}
	if err := s.History.RecordHistory(ctx, id, email, added, removed, offboarded, at, HistoryKeep); err != nil {
		res.Warnings = append(res.Warnings, "the change is stored, but its allowlist history could not be recorded (the audit then judges older logins by the new list): "+err.Error())
	}
}

// Portal is the DocSpace IP restrictions API.
type Portal interface {
	// IPRestrictions returns the portal's list. An answer without a list
	// (or with one of the wrong shape) is an error, never an empty list.
	IPRestrictions(ctx context.Context) ([]ipguard.Restriction, error)
	// IPRestrictionsEnabled reports whether restrictions are on.
	IPRestrictionsEnabled(ctx context.Context) (bool, error)
	// SaveIPRestrictions replaces the whole list and the enable flag, and
	// returns the portal's Date of its answer (zero when it sent none). An
	// error with ipguard.ErrNotApplied in its chain was not applied (4xx,
	// or not sent); any other error leaves the outcome unknown: the PUT
	// may still land later. No attempt starts with less than one attempt's
	// timeout left before ctx's deadline (the lease fence).
	SaveIPRestrictions(ctx context.Context, list []ipguard.Restriction, enable bool) (time.Time, error)
}

// AheadReserver is optional on a Portal: ReserveAhead gets ready, in the
// background, for portal requests about to follow (the shared request
// budget's tokens), and returns at once.
type AheadReserver interface {
	ReserveAhead(ctx context.Context)
}

// LeaseName is the lease a reconcile holds.
const LeaseName = "portal-allowlist"

// Service keeps the portal allowlist equal to the desired state. Store,
// Portal, Leases and Settings are required; the rest may be nil.
type Service struct {
	Store     Store
	Portal    Portal
	Leases    lease.Backend
	Settings  Settings
	LeaseWait time.Duration
	// WriteAttempt is the longest one attempt of a portal write may take
	// (the client's timeout, default 10s): no PUT starts with less than it
	// and a margin left on the lease.
	WriteAttempt time.Duration
	// Directory tells who the key and the users are (lock-out preflight,
	// users who left, preview roles); nil: unknown.
	Directory Directory
	// Alerts receives drift and lock-out alerts; nil: logged only.
	Alerts Alerter
	// Trail is the portal's audit trail of allowlist changes (attribution);
	// nil: attribution unavailable.
	Trail Trail
	// Logins is the login history (preview).
	Logins LoginHistory
	// UserChecks chooses which stored users each sync asks the portal about
	// (users who left); nil: a rotation kept in this process only.
	UserChecks *UserChecks
	// History, optional, records when each entry started and stopped
	// counting and when a user was offboarded, so that the audit judges a
	// login by the allowlist in force when it happened.
	History HistoryRecorder
	// PortalName names the portal in alerts.
	PortalName string
	Now        func() time.Time
	Log        *slog.Logger

	preflight struct {
		sync.Mutex
	}
	knownKeyUser string      // the user the key acts as, once asked (under preflight's lock)
	checks       *UserChecks // the rotation when UserChecks is nil (under preflight's lock)
	// warmPasses: this process has made a reconcile pass (its first, cold,
	// is not recorded as PortalState.LastPass).
	warmPasses atomic.Bool
}

// Handle decodes an invocation payload and runs its action.
func (s *Service) Handle(ctx context.Context, payload []byte) (Result, error) {
	req, err := DecodeRequest(payload)
	if err != nil {
		return Result{}, err
	}
	return s.Do(ctx, req)
}

// Do runs one decoded request. Its warnings are one safe line each
// (humantext.Line): they quote the portal and the request.
func (s *Service) Do(ctx context.Context, req Request) (res Result, err error) {
	defer func() { res.Warnings = safeWarnings(res.Warnings) }()
	switch req.Action {
	case ActionReplace, ActionAdd, ActionRemove, ActionOffboard:
		return s.change(ctx, req)
	case ActionGet:
		return s.get(ctx, req)
	case ActionSync:
		return s.Sync(ctx)
	case ActionPreview:
		return s.preview(ctx, req.Days)
	}
	return Result{}, ipguard.Invalid("action", req.Action, "is not an action")
}

// maxWarningBytes bounds one warning of a result.
const maxWarningBytes = 1000

// safeWarnings makes each warning one line a person may read (idempotent).
func safeWarnings(ws []string) []string {
	for i, w := range ws {
		ws[i] = humantext.Line(w, maxWarningBytes)
	}
	return ws
}

// parseEntries validates the request's entries: canonical, no duplicates,
// expiry in the future.
func (s *Service) parseEntries(in []EntryInput, now time.Time) ([]string, map[string]ipguard.EntryDetail, error) {
	raw := make([]string, len(in))
	for i, e := range in {
		raw[i] = e.IP
	}
	entries, err := allowlist.ParseList("allowedIps", raw, s.Settings.Limits)
	if err != nil {
		return nil, nil, err
	}
	details := map[string]ipguard.EntryDetail{}
	first := map[string]int{} // canonical entry → index of its first spelling
	for i, e := range in {
		if !e.ExpiresAt.IsZero() && !e.ExpiresAt.After(now) {
			return nil, nil, ipguard.Invalid("allowedIps["+strconv.Itoa(i)+"].expiresAt", e.ExpiresAt.Format(time.RFC3339), "is in the past")
		}
		one, _ := allowlist.ParseList("allowedIps", []string{e.IP}, s.Settings.Limits)
		key := one[0].String()
		d := ipguard.EntryDetail{ExpiresAt: e.ExpiresAt, Note: e.Note, Place: e.Place}
		// The same entry twice (in any spelling) is merged only when both
		// say the same: otherwise which expiry, note or place is meant is a guess.
		if j, dup := first[key]; dup {
			if d != details[key] {
				return nil, nil, ipguard.Invalid("allowedIps["+strconv.Itoa(i)+"]", e.IP, "is the same entry as allowedIps[%d] (%s) with a different expiresAt, note or place; send it once", j, key)
			}
			continue
		}
		first[key] = i
		if d != (ipguard.EntryDetail{}) {
			details[key] = d
		}
	}
	return allowlist.Strings(entries), details, nil
}

// change validates req, stores the change (nothing is written when any
// part is invalid, or when the portal cap would be passed), and brings the
// portal to the desired state: this request reconciles, or returns once
// another holder applied it. A replay that changes nothing sends no PUT.
func (s *Service) change(ctx context.Context, req Request) (Result, error) {
	in, err := s.validateChange(req)
	if err != nil {
		return Result{}, err
	}
	res := newResult(req.Action, in.id)
	ctx, sp := withSpans(ctx)
	t0 := time.Now()
	// A direct payload without requestedAt is dated by its invocation's
	// first arrival (a retry by Lambda keeps it), read alongside.
	var arrived time.Time
	var arrErr error
	arrDone := make(chan struct{})
	var arrPanic any
	go func() {
		defer close(arrDone)
		defer func() { arrPanic = recover() }()
		switch {
		case req.ReplayOf != "":
			// A replay: dated by the first arrival of the invocation it
			// sends again, when remembered (else by its requestedAt).
			arrived, arrErr = s.arrivalOf(ctx, req.ReplayOf, in.at)
		case req.RequestedAt.IsZero():
			arrived, arrErr = s.firstArrival(ctx, in.now)
		}
	}()
	st, pre, err := func() (ipguard.PortalState, prefetched, error) {
		defer func() { <-arrDone }() // also when it panics
		return s.readChangeStart(ctx, in)
	}()
	if arrPanic != nil {
		panic(arrPanic)
	}
	if err != nil {
		return Result{}, err
	}
	if arrErr != nil {
		return Result{}, arrErr
	}
	if !arrived.IsZero() {
		in.at = RequestTime(arrived)
	}
	if !pre.leaseSince.IsZero() {
		in.passEnds = pre.leaseSince.Add(passLength(st.LastPass))
	}
	var w written
	defer w.record() // a stored change's history, if a path below left it unrecorded
	stored, err := s.storeChange(ctx, in, st, &res, &pre, &w)
	if err != nil {
		return Result{}, err
	}
	span(ctx, "store", t0)
	t1 := time.Now()
	if err := s.applyChange(ctx, in, st, stored, &res, &w); err != nil {
		return Result{}, err
	}
	s.log().Info("allowlist change", append([]any{"action", actionName(req.Action), "userId", in.id, "stored", res.Stored,
		"portal", res.Portal, "appliedBy", res.AppliedBy, "portalAdded", len(res.PortalAdded), "portalRemoved", len(res.PortalRemoved),
		"ms", time.Since(t0).Milliseconds(), "msApply", time.Since(t1).Milliseconds()}, sp.logArgs()...)...)
	return res, nil
}

// changeInput is a change request that passed validation: canonical id and
// email, parsed entries, and the times it is judged by.
type changeInput struct {
	action  string
	id      string
	email   string // canonical; "" when the action takes none
	entries []string
	details map[string]ipguard.EntryDetail
	now     time.Time // when this request runs (UTC)
	at      time.Time // when the change was asked for (now when not sent)
	// passEnds: the reconcile lease was held when the change started, and
	// the holder's pass is due to end then (zero: free or not known).
	passEnds time.Time
}

// validateChange checks every part of req before anything is read or
// written: the id, requestedAt (at most MaxRequestedAhead ahead), the
// email (replace, and add when sent) and the entries (all but offboard).
// Its error is the request's first invalid part.
func (s *Service) validateChange(req Request) (changeInput, error) {
	now := s.now().UTC()
	id, err := canonicalID(req.ID)
	if err != nil {
		return changeInput{}, err
	}
	in := changeInput{action: req.Action, id: id, now: now, at: RequestTime(req.RequestedAt)}
	if req.RequestedAt.IsZero() {
		in.at = RequestTime(now)
	}
	if in.at.After(now.Add(MaxRequestedAhead)) {
		// One bad clock must not freeze the user's later changes.
		if req.timeField == "time" {
			return changeInput{}, ipguard.Invalid("time", in.at.Format(time.RFC3339), "(the EventBridge event's time) is more than %s ahead of now (%s); fix the clock of the event's sender, or send requestedAt in the detail", MaxRequestedAhead, now.Format(time.RFC3339))
		}
		return changeInput{}, ipguard.Invalid("requestedAt", in.at.Format(time.RFC3339), "is more than %s ahead of now (%s); send the time the change was asked for", MaxRequestedAhead, now.Format(time.RFC3339))
	}
	if req.Action == ActionReplace || (req.Action == ActionAdd && req.Email != "") {
		if in.email, err = canonicalEmail(req.Email); err != nil {
			return changeInput{}, err
		}
	}
	if req.Action != ActionOffboard {
		if in.entries, in.details, err = s.parseEntries(req.AllowedIPs, now); err != nil {
			return changeInput{}, err
		}
	}
	return in, nil
}

// maxStoreAttempts bounds the conditional writes of one change: after that
// many lost races the request fails with EConflict.
const maxStoreAttempts = 6

// storeChange writes the user's next record with a conditional write,
// re-reading and computing it again when another write came first (at
// most maxStoreAttempts times). It never undoes a newer change (keepNewer),
// fills res's diff, email and warnings, sets res.Stored when this request
// wrote, and records the history of what it wrote. It returns the record
// as stored (zero for an offboarding that deleted, or found, no user).
func (s *Service) storeChange(ctx context.Context, in changeInput, st ipguard.PortalState, res *Result, pre *prefetched, w *written) (ipguard.User, error) {
	var notFound []string
	var tried written // the last attempt's write, its condition failed
	for attempt := 0; ; attempt++ {
		var old ipguard.User
		var found bool
		var err error
		first := attempt == 0 && pre != nil
		if first {
			old, found, err = pre.user, pre.found, pre.err
		} else {
			old, found, err = s.Store.GetUser(ctx, in.id)
		}
		if err != nil {
			return ipguard.User{}, err
		}
		var known *prefetched // the offboarding as read with the record
		if first && pre.offRead {
			known = pre
		}
		if stale, err := s.olderThanOffboarding(ctx, in, old, found, res, known); err != nil || stale {
			// Older than the user's offboarding: it would undo it, so
			// nothing is stored (WHERE §13: a warning, never an error).
			if found {
				return old, err
			}
			return ipguard.User{}, err
		}
		next, missing, err := mutate(in.action, old, found, in.id, in.email, in.entries, in.details, in.now)
		if err != nil {
			return ipguard.User{}, err
		}
		// At-least-once and unordered: never undo a newer change.
		next, kept := keepNewer(old, next, in.at)
		if len(kept) > 0 && attempt == 0 {
			res.Warnings = append(res.Warnings, fmt.Sprintf(
				"this request (requested at %s) is older than later changes of user %s, so it was applied only where it undoes none of them; left as the newer request(s) made them: %s",
				fmtRequestTime(in.at), in.id, strings.Join(kept, ", ")))
		}
		if in.action == ActionOffboard {
			stored, done, err := s.storeOffboard(ctx, in, res, old, found, next)
			if err != nil || done {
				return stored, err
			}
			if attempt >= maxStoreAttempts-1 {
				return ipguard.User{}, ipguard.Errorf(ipguard.EConflict, "offboard %s: the user's record kept changing under this request; send it again", in.id)
			}
			continue
		}
		if lostAnswer(old, found, next, attempt) {
			// It counts as ours, with the diff of the attempt that wrote, so
			// the version is bumped and the portal follows; at the rev that
			// attempt wrote, with what it replaced and its history, so the
			// cap's second look sees it too.
			res.Stored = true
			if tried.rev == old.Rev {
				*w = tried
			}
			warnNotFound(res, notFound)
			return old, nil
		}
		notFound = missing
		tried = written{}
		stored, done, err := s.putUser(ctx, in, st, res, old, found, next, &tried)
		if err != nil {
			return ipguard.User{}, err
		}
		if done {
			if stored.Rev == tried.rev {
				*w = tried // written by this attempt
			}
			warnNotFound(res, notFound)
			return stored, nil
		}
		if attempt >= maxStoreAttempts-1 {
			return ipguard.User{}, ipguard.Errorf(ipguard.EConflict, "%s %s: the user's record kept changing under this request; send it again", actionName(in.action), in.id)
		}
	}
}

// prefetched is the user's record as read with the state (GetUser's
// answer), and the user's offboarding when it was read with them.
type prefetched struct {
	user  ipguard.User
	found bool
	err   error
	// offRead: off and offOK are Tombstones.Offboarded's answer at the
	// request's now.
	offRead bool
	off     time.Time
	offOK   bool
	// leaseSince: ChangeStart.LeaseSince.
	leaseSince time.Time
}

// ChangeStart is what a change starts from: the user's record (Found false
// when none), the portal state, and the user's remembered offboarding
// (WasOffboarded false when none is remembered at the time asked).
type ChangeStart struct {
	User          ipguard.User
	Found         bool
	State         ipguard.PortalState
	Offboarded    time.Time
	WasOffboarded bool
	// LeaseSince is when the holder of the reconcile lease (LeaseName)
	// took it, zero when it is free or that is not known: with the state's
	// LastPass, a change that finds it held sleeps until that pass is due
	// to end before its first poll, instead of a lease try and polls.
	LeaseSince time.Time
}

// ChangeReader is optional on a Store that has Tombstones: ChangeRead
// reads GetUser's, PortalState's and Offboarded's answers (at now) in one
// strongly consistent read: one round trip for all a change starts from.
type ChangeReader interface {
	ChangeRead(ctx context.Context, id string, now time.Time) (ChangeStart, error)
}

// readChangeStart reads the portal state and the user's record together
// (one read with a ChangeReader, else two at once): one round trip less
// on every change's path.
func (s *Service) readChangeStart(ctx context.Context, in changeInput) (ipguard.PortalState, prefetched, error) {
	if r, ok := s.Store.(ChangeReader); ok {
		cs, err := r.ChangeRead(ctx, in.id, in.now)
		if err != nil {
			return ipguard.PortalState{}, prefetched{}, err
		}
		return cs.State, prefetched{user: cs.User, found: cs.Found, offRead: true, off: cs.Offboarded, offOK: cs.WasOffboarded, leaseSince: cs.LeaseSince}, nil
	}
	var pre prefetched
	var panicked any
	done := make(chan struct{})
	go func() {
		defer close(done)
		// A panic goes on in the caller's goroutine, where the handler
		// recovers it.
		defer func() { panicked = recover() }()
		pre.user, pre.found, pre.err = s.Store.GetUser(ctx, in.id)
	}()
	st, err := s.Store.PortalState(ctx)
	<-done
	if panicked != nil {
		panic(panicked)
	}
	return st, pre, err
}

// lostAnswer reports whether an earlier attempt's conditional write most
// likely was applied and its answer lost: that write failed its condition
// (the SDK's resend of it did), yet the record read now is already what
// this request wants. Never on the first attempt.
func lostAnswer(old ipguard.User, found bool, next ipguard.User, attempt int) bool {
	return found && sameUser(old, next) && attempt > 0
}

// warnNotFound warns of the entries a remove named that the user does not
// have (already removed: no error).
func warnNotFound(res *Result, notFound []string) {
	if len(notFound) > 0 {
		res.Warnings = append(res.Warnings, "not among the user's entries, so nothing to remove (already removed?): "+strings.Join(notFound, ", "))
	}
}

// putUser stores next in place of old (read at rev old.Rev) for a replace,
// add or remove, after the portal cap check. It sets res's diff and, when
// it wrote, res.Stored and the history. done is false, with no error, only
// when another write came first (the caller reads again); a record that
// already equals next is done without a write.
//
// w records the write: the record it replaced and its history, recorded
// once the change stands (written.record), so that the cap's second look
// (recheckCap) can undo it without a trace.
func (s *Service) putUser(ctx context.Context, in changeInput, st ipguard.PortalState, res *Result, old ipguard.User, found bool, next ipguard.User, w *written) (stored ipguard.User, done bool, err error) {
	res.Added, res.Removed = entryDiff(old.Entries, next.Entries)
	if found && sameUser(old, next) {
		return old, true, nil
	}
	// A change that adds no entry cannot grow the portal list: it is never
	// refused by the cap (a security removal never waits behind entries
	// others added past it, or a lowered PORTAL_MAX_ENTRIES).
	if len(res.Added) > 0 {
		if err := s.checkCap(ctx, st, in.id, next); err != nil {
			return ipguard.User{}, false, err
		}
	}
	next.Rev = old.Rev + 1
	added := res.Added
	if !found {
		// A user's first entries count from before the history:
		// logins the audit reads from before the onboarding (its
		// overlap, a backlog) are judged by them, as before.
		added = nil
	}
	removed := res.Removed
	// Filled before the write: a write whose condition failed leaves it
	// too, for the caller to take when the record read next is this
	// write's (lostAnswer).
	*w = written{prev: old, found: found, rev: next.Rev, history: func() {
		s.recordHistory(ctx, res, in.id, next.Email, added, removed, false, in.now)
	}}
	put := s.Store.PutUserIf
	if found {
		put = s.replaceUser // not over an offboarding that came meanwhile
	}
	ok, err := put(ctx, next, old.Rev)
	if err != nil || !ok {
		return ipguard.User{}, false, err
	}
	res.Stored = true
	return next, true, nil
}

// storeOffboard offboards the user read as old. A user a newer request
// gave entries (next keeps them) stays, with only the others removed, by a
// conditional write: done is false, with no error, when another write came
// first. Otherwise the user is deleted (res.Stored, history recorded), or,
// when not stored, the result warns that there was nothing to offboard.
func (s *Service) storeOffboard(ctx context.Context, in changeInput, res *Result, old ipguard.User, found bool, next ipguard.User) (stored ipguard.User, done bool, err error) {
	if found && (len(next.Entries) > 0 || changedAfter(old, in.at)) {
		// A stale offboarding keeps the user with the entries a newer
		// request gave: it becomes the removal of the others. A record
		// with newer changes stays even with no entry left: its
		// tombstones keep an older replay from giving back what a newer
		// remove took.
		res.Email = old.Email
		if len(next.Entries) == 0 {
			res.Warnings = append(res.Warnings, fmt.Sprintf(
				"this offboarding (requested at %s) is older than later changes of user %s, so the user's record stays (with no entry left)",
				fmtRequestTime(in.at), in.id))
		}
		res.Added, res.Removed = entryDiff(old.Entries, next.Entries)
		if sameUser(old, next) {
			return old, true, nil // every entry is newer: nothing to do
		}
		next.Rev = old.Rev + 1
		ok, err := s.replaceUser(ctx, next, old.Rev)
		if err != nil || !ok {
			return ipguard.User{}, false, err
		}
		res.Stored = true
		return next, true, nil
	}
	// Remembered before the record goes (also when there is none: an
	// onboarding that arrives after its own offboarding is stale too).
	if err := s.rememberOffboarding(ctx, in); err != nil {
		return ipguard.User{}, false, err
	}
	if !found {
		res.Warnings = append(res.Warnings, "user "+in.id+" is not stored; nothing to offboard")
		return ipguard.User{}, true, nil
	}
	// Conditional like every other write: a newer request that wrote
	// after this one read the record is re-read (keepNewer), not erased.
	if ok, err := s.Store.DeleteUserIf(ctx, in.id, old.Rev); err != nil || !ok {
		return ipguard.User{}, false, err
	}
	res.Removed = old.Entries
	res.Email = old.Email
	res.Stored = true
	s.recordHistory(ctx, res, in.id, old.Email, nil, old.Entries, true, in.now)
	return ipguard.User{}, true, nil
}

// changedAfter reports whether any of u's entries was added, changed or
// removed by a request newer than at (request times, as keepNewer judges;
// CreatedAt is a processing time and is not compared).
func changedAfter(u ipguard.User, at time.Time) bool {
	for _, t := range u.Touched {
		if RequestTime(t).After(at) {
			return true
		}
	}
	return false
}

// newestRequest is the newest request time u's record holds (see
// olderThanOffboarding).
func newestRequest(u ipguard.User) time.Time {
	if len(u.Touched) == 0 {
		return u.CreatedAt.Add(time.Second)
	}
	var newest time.Time
	for _, t := range u.Touched {
		if t := RequestTime(t); t.After(newest) {
			newest = t
		}
	}
	return newest
}

// olderThanOffboarding reports whether a replace, add or remove was
// requested before the user's last remembered offboarding (see Tombstones),
// and then warns naming both times. It asks only when it can matter: the
// user is not stored, or the request is older than the newest request the
// record holds. (A record that exists after an offboarding was made again
// by a request not older than it, whose entries carry its time; so a
// request at least as new as every time in the record is newer than the
// offboarding too.) Request times are compared with request times only;
// a record without them (written before they were kept) falls back to
// its creation, a processing time stored to the second. known, when not
// nil, holds the offboarding as read together with old (ChangeReader): it
// is not read again.
func (s *Service) olderThanOffboarding(ctx context.Context, in changeInput, old ipguard.User, found bool, res *Result, known *prefetched) (bool, error) {
	tomb, ok := s.Store.(Tombstones)
	if !ok || in.action == ActionOffboard || found && !in.at.Before(newestRequest(old)) {
		return false, nil
	}
	var off time.Time
	var err error
	if known != nil {
		off, ok = known.off, known.offOK
	} else {
		off, ok, err = tomb.Offboarded(ctx, in.id, in.now)
	}
	if err != nil || !ok || !in.at.Before(RequestTime(off)) {
		return false, err
	}
	res.Warnings = append(res.Warnings, fmt.Sprintf(
		"this request (requested at %s) is older than the offboarding of user %s (requested at %s), so it was not applied: it would undo that newer change",
		fmtRequestTime(in.at), in.id, fmtRequestTime(off)))
	return true, nil
}

// rememberOffboarding records the offboarding's time (Tombstones), so that
// an older request that arrives later is not applied.
func (s *Service) rememberOffboarding(ctx context.Context, in changeInput) error {
	tomb, ok := s.Store.(Tombstones)
	if !ok {
		return nil
	}
	return tomb.PutOffboarded(ctx, in.id, in.at, in.now.Add(OffboardedKeep))
}

// applyChange brings the portal to the desired state after storeChange:
// when this request stored something it bumps the version and converges
// (reconciles, or waits for another holder to apply it); when it stored
// nothing it still reconciles unless the portal, as the last reconcile
// left it, needs no PUT at all (then it answers "already"). A pending
// update whose cause is not a passing outage is its error. It fills res's
// portal outcome, and for all but offboard the entries and NotPushed.
func (s *Service) applyChange(ctx context.Context, in changeInput, st ipguard.PortalState, stored ipguard.User, res *Result, w *written) error {
	var mine []string
	if in.action != ActionOffboard {
		res.Email, res.Entries = stored.Email, stored.ActiveEntries(in.now)
		mine = DesiredState([]ipguard.User{stored}, s.Settings, in.now).Addrs
	}

	// An unchanged record whose addresses the last reconcile did not leave
	// on the portal (the write that stored it ended before its version
	// bump, e.g. a throttled counter or a killed invocation) is reconciled
	// as well: a retry must not answer "applied" for it.
	// Likewise an offboarding that finds no user: its delete may have been
	// stored before a failed bump, so it reconciles (no PUT when nothing
	// is left to remove).
	// Likewise a remove, or a replace that only shrinks, retried after its
	// version bump was lost: the portal may still hold what it removed. So
	// a request that stored nothing answers "already" only when the
	// portal, as the last reconcile left it, needs no PUT at all.
	recheck := false
	var err error
	if !res.Stored && st.Applied >= st.Version && st.Pending == "" && st.Reconciled && st.Sent == nil && holds(st.LastSeen, mine) {
		if recheck, err = s.behind(ctx, st); err != nil {
			return err
		}
	}
	myV := st.Version
	if res.Stored || st.Applied < st.Version || st.Pending != "" || !st.Reconciled || st.Sent != nil || !holds(st.LastSeen, mine) || recheck {
		// A request that stored nothing (a retry whose record was stored
		// by its first attempt, whose bump was lost) bumps too, unless it
		// reconciles by force (recheck): a reconcile running now may have
		// read the users before that record was stored, so only a version
		// bumped now is applied by a pass that read it. (A remove's retry
		// otherwise took that pass's version for its own: "applied by
		// another request", the address still allowed.)
		if res.Stored || !recheck {
			var b bumped
			if b, err = s.bump(ctx, res.Added, in.now); err != nil {
				w.record() // stored all the same
				return err
			}
			myV = b.version
			if err := s.recheckCap(ctx, in.id, st, stored, b, w, res); err != nil {
				return err
			}
			w.record()
		}
		out, err := s.converge(ctx, myV, recheck, mine, in.passEnds, st.LastPass)
		if err != nil {
			return err
		}
		if err := failure(out, actionName(in.action)+" "+in.id); err != nil {
			return err
		}
		res.absorb(out)
	} else {
		res.Portal, res.AppliedBy, res.RestrictionsEnabled = PortalApplied, "already", st.LastEnabled
	}
	if in.action != ActionOffboard {
		res.NotPushed = notPushedOf(stored, s.Settings, in.now)
		if n := len(stored.ActiveEntries(in.now)); n > 0 && len(res.NotPushed) >= n && res.RestrictionsEnabled {
			// "applied" and no warning would hide that this user is shut out.
			res.Warnings = append(res.Warnings, fmt.Sprintf("user %s has no entry on the portal list (every one is under notPushed): "+
				"while IP restrictions are on, the portal refuses their logins except from addresses another entry lets in (the portal owner excepted)", stored.ID))
		}
	}
	return nil
}

// MaxRequestedAhead is how far in the future a requestedAt may lie (clock
// skew between the caller and this function).
const MaxRequestedAhead = 5 * time.Minute

// behind reports whether the portal, as the last reconcile left it (st),
// differs from the desired state stored now (an address to add or remove).
func (s *Service) behind(ctx context.Context, st ipguard.PortalState) (bool, error) {
	users, err := s.desiredUsers(ctx)
	if err != nil {
		return false, err
	}
	plan, err := PlanReconcile(st.LastSeen, st.LastEnabled, st.Owned, DesiredState(users, s.Settings, s.now()), s.Settings, EnableRule{Allowed: true, KeepOff: true})
	if err != nil {
		return true, nil
	}
	return len(plan.Added) > 0 || len(plan.Removed) > 0, nil
}

// keepNewer undoes in next every part of a change requested at that would
// undo a newer change of the same entry (old.Touched), and stamps the
// entries it changes with at; removed entries stay as tombstones. It
// returns the entries left as a newer request made them, each with that
// request's time. For an offboarding (all entries removed) the entries a
// newer request added or changed stay.
func keepNewer(old, next ipguard.User, at time.Time) (ipguard.User, []string) {
	touched := make(map[string]time.Time, len(old.Touched)+len(next.Entries))
	for e, t := range old.Touched {
		touched[e] = RequestTime(t) // items written before one precision may hold more
	}
	var kept []string
	var entries []string
	details := map[string]ipguard.EntryDetail{}
	inOld := map[string]bool{}
	for _, e := range old.Entries {
		inOld[e] = true
	}
	inNext := map[string]bool{}
	for _, e := range next.Entries {
		inNext[e] = true
	}
	newer := func(e string) bool { t, ok := touched[e]; return ok && t.After(at) }
	keep := func(e string) {
		kept = append(kept, fmt.Sprintf("%s (requested at %s)", e, fmtRequestTime(touched[e])))
	}
	for _, e := range next.Entries {
		changed := !inOld[e] || old.Details[e] != next.Details[e]
		switch {
		case changed && newer(e) && !inOld[e]:
			keep(e) // removed by a newer request: stays removed
			continue
		case changed && newer(e):
			keep(e) // changed by a newer request: keeps its details
			entries = append(entries, e)
			if d, ok := old.Details[e]; ok {
				details[e] = d
			}
			continue
		case changed:
			touched[e] = at
		}
		entries = append(entries, e)
		if d, ok := next.Details[e]; ok {
			details[e] = d
		}
	}
	for _, e := range old.Entries {
		if inNext[e] {
			continue
		}
		if newer(e) {
			keep(e) // added by a newer request: stays
			entries = append(entries, e)
			if d, ok := old.Details[e]; ok {
				details[e] = d
			}
			continue
		}
		touched[e] = at // removed now: a tombstone
	}
	// Tombstones are bounded: the newest maxTombstones of the removed.
	var tombs []string
	present := map[string]bool{}
	for _, e := range entries {
		present[e] = true
	}
	for e := range touched {
		if !present[e] {
			tombs = append(tombs, e)
		}
	}
	if len(tombs) > maxTombstones {
		slices.SortFunc(tombs, func(a, b string) int { return touched[b].Compare(touched[a]) })
		for _, e := range tombs[maxTombstones:] {
			delete(touched, e)
		}
	}
	next.Entries, next.Details, next.Touched = entries, details, touched
	if next.Entries == nil {
		next.Entries = []string{}
	}
	return next, kept
}

// maxTombstones bounds the removed entries a user's record remembers.
const maxTombstones = 100

// failure turns a pending outcome whose cause is not a passing outage
// (a refused key, a permission or an unexpected answer) into an error, so
// that it reaches the operator as such. The change stays stored, and the
// portal update pending.
func failure(o outcome, what string) error {
	if o.portal != PortalPending || o.err == nil {
		return nil
	}
	code := ipguard.ErrorCode(o.err)
	if code == ipguard.EUnavailable {
		return nil
	}
	if code == ipguard.EInvalid {
		// The request was checked before it was stored: a portal that
		// refuses the list (400) is not the caller's input to fix.
		code = ipguard.EInternal
	}
	return &ipguard.Error{Code: code, Message: fmt.Sprintf("%s: stored in DynamoDB, but the portal update is pending: %v", what, o.err),
		Err: errors.Join(o.err, ErrStoredPending)}
}

// ErrStoredPending is in the chain of a change's (or a sync's) error when
// everything was stored but the portal update waits: the handler's metrics
// line counts it as PortalPending too, not only as a failure.
var ErrStoredPending = errors.New("stored; the portal update is pending")

// mutate computes the user's next record for a change action. For a
// remove, notFound are the entries the user does not have (already removed:
// a resent remove changes nothing and is no error).
func mutate(action string, old ipguard.User, found bool, id, email string, entries []string, details map[string]ipguard.EntryDetail, now time.Time) (next ipguard.User, notFound []string, err error) {
	next = ipguard.User{ID: id, Email: old.Email, CreatedAt: now, UpdatedAt: now, Expired: old.Expired}
	if found && !old.CreatedAt.IsZero() {
		next.CreatedAt = old.CreatedAt
	}
	switch action {
	case ActionOffboard:
		return next, nil, nil
	case ActionReplace:
		next.Email, next.Entries, next.Details = email, entries, details
	case ActionAdd:
		if !found && email == "" {
			return ipguard.User{}, nil, ipguard.Invalid("email", "", "is required to add entries to a user that is not stored yet")
		}
		if email != "" {
			next.Email = email
		}
		next.Entries = slices.Clone(old.Entries)
		next.Details = map[string]ipguard.EntryDetail{}
		for e, d := range old.Details {
			next.Details[e] = d
		}
		for _, e := range entries {
			// An add never shortens an entry's life silently: an entry the
			// user has for good (an office address) does not become
			// time-bound because it is sent again with an expiresAt.
			if d := details[e]; found && !d.ExpiresAt.IsZero() && slices.Contains(old.Entries, e) && old.Details[e].ExpiresAt.IsZero() {
				return ipguard.User{}, nil, ipguard.Invalid("allowedIps", e,
					"is already a permanent entry of user %s; add does not give it an expiry (expiresAt %s), so nothing was changed. "+
						"To change an entry's expiry, send a replace with the user's whole list, or remove the entry and then add it again",
					id, d.ExpiresAt.Format(time.RFC3339))
			}
			if !slices.Contains(next.Entries, e) {
				next.Entries = append(next.Entries, e)
			}
			delete(next.Details, e)
			if d, ok := details[e]; ok {
				next.Details[e] = d
			}
		}
		if limit := allowlist.DefaultLimits.MaxEntries; len(next.Entries) > limit {
			return ipguard.User{}, nil, ipguard.Invalid("allowedIps", "", "would give the user %d entries; at most %d are allowed", len(next.Entries), limit)
		}
	case ActionRemove:
		if !found {
			return ipguard.User{}, nil, ipguard.Invalid("id", id, "is not a stored user; nothing to remove")
		}
		next.Details = map[string]ipguard.EntryDetail{}
		for _, e := range old.Entries {
			if slices.Contains(entries, e) {
				continue
			}
			next.Entries = append(next.Entries, e)
			if d, ok := old.Details[e]; ok {
				next.Details[e] = d
			}
		}
		for _, e := range entries {
			if slices.Contains(old.Entries, e) {
				continue
			}
			// Not one of the user's entries: already removed (a resent
			// remove), unless it lies in one of them (entries are not split).
			if in := overlapping(old.Entries, e); in != "" {
				return ipguard.User{}, nil, ipguard.Invalid("allowedIps", e, "is not one of the user's entries but overlaps their entry %s; remove that entry (entries are not split)", in)
			}
			notFound = append(notFound, e)
		}
	}
	if next.Entries == nil {
		next.Entries = []string{}
	}
	return next, notFound, nil
}

// overlapping returns the first of entries whose addresses overlap e's, or "".
func overlapping(entries []string, e string) string {
	pe, err := allowlist.ParseStored([]string{e})
	if err != nil {
		return ""
	}
	for _, x := range entries {
		px, err := allowlist.ParseStored([]string{x})
		if err == nil && px[0].IPRange().Overlaps(pe[0].IPRange()) {
			return x
		}
	}
	return ""
}

// sameUser: a write would change nothing the tool uses.
func sameUser(a, b ipguard.User) bool {
	if a.Email != b.Email || !slices.Equal(a.Entries, b.Entries) {
		return false
	}
	for _, e := range a.Entries {
		if a.Details[e] != b.Details[e] {
			return false
		}
	}
	return true
}

func entryDiff(old, next []string) (added, removed []string) {
	added, removed = []string{}, []string{}
	for _, e := range next {
		if !slices.Contains(old, e) {
			added = append(added, e)
		}
	}
	for _, e := range old {
		if !slices.Contains(next, e) {
			removed = append(removed, e)
		}
	}
	return added, removed
}

// checkCap rejects (EInvalid, nothing written) a change after which the
// portal would hold more than MaxEntries entries: the addresses every user
// needs as stored now (changes stored but not yet on the portal count),
// with user id's record replaced by next (nil: deleted), plus the entries
// the tool does not own as st (the last reconcile) saw them, and, while a
// stored user is unreadable, the owned ones the plan then keeps.
func (s *Service) checkCap(ctx context.Context, st ipguard.PortalState, id string, next ipguard.User) error {
	over := func(n int) error {
		return ipguard.Invalid("allowedIps", "", "would make the portal list hold %d entries or more, more than PORTAL_MAX_ENTRIES (%d); nothing was stored", n, s.Settings.maxEntries())
	}
	// Cheap bound first, only when nothing stored waits for the portal:
	// the list as the last reconcile left it plus every address of this
	// user's new record. Otherwise, and near the cap, every user is read.
	mine := DesiredState([]ipguard.User{next}, s.Settings, s.now())
	if mine.Overflow {
		return over(s.Settings.maxEntries() + 1)
	}
	settled := st.Applied >= st.Version && st.Pending == "" && st.Sent == nil
	if settled && len(st.LastSeen)+len(mine.Addrs) <= s.Settings.maxEntries()*9/10 {
		return nil
	}
	// Changes stored but not on the portal yet: a counting store bounds
	// what they may add, so that a change arriving while others wait
	// does not read every user (see AddsCounter).
	if n, ok := s.unappliedBound(st); ok && n+len(mine.Addrs) <= s.Settings.maxEntries()*9/10 {
		return nil
	}
	users, err := s.desiredUsers(ctx)
	if err != nil {
		return err
	}
	users = slices.DeleteFunc(users, func(u ipguard.User) bool { return u.ID == id })
	users = append(users, next)
	d := DesiredState(users, s.Settings, s.now())
	if d.Overflow {
		return over(s.Settings.maxEntries() + 1)
	}
	owned := map[string]bool{}
	for _, a := range st.Owned {
		owned[a] = true
	}
	// While a stored user is unreadable the plan removes no owned address
	// (PlanReconcile): those no readable user needs stay, and count.
	keepsOwned := len(d.Unreadable) > 0
	n := len(d.Addrs)
	for _, r := range st.LastSeen {
		if r.ForAdmin || !owned[r.IP] || keepsOwned {
			if !(!r.ForAdmin && d.Needs(r.IP)) {
				n++
			}
		}
	}
	if n > s.Settings.maxEntries() {
		return over(n)
	}
	return nil
}

// DesiredReader is optional on a Store: DesiredUsers is AllUsers with, of
// each user, only what the desired state is computed from: ID, Entries,
// Details and Unreadable (the other fields zero). A reconcile's scan of
// every user then reads and decodes that much less (it is on the path of
// every pass, while changes wait for it). Unreadable marks an item whose
// key, entries or details do not decode; one broken only beside them is
// read as its entries (AllUsers marks it, GetUser fails: expire leaves
// it, warned), and preview reads the users by the same read.
type DesiredReader interface {
	DesiredUsers(ctx context.Context) ([]ipguard.User, error)
}

// desiredUsers reads every user for a desired state (DesiredReader's
// answer where the store has one, else AllUsers').
func (s *Service) desiredUsers(ctx context.Context) ([]ipguard.User, error) {
	if r, ok := s.Store.(DesiredReader); ok {
		return r.DesiredUsers(ctx)
	}
	return s.Store.AllUsers(ctx)
}

// UserReplacer is optional on a Store (both of ours have it, held by the
// store contract): ReplaceUserIf is PutUserIf over a record that must
// still be stored. Its prevRev 0 means a record written before revs, never
// none: PutUserIf's 0 also writes where the record was deleted since it
// was read, which brought back a user offboarded meanwhile.
type UserReplacer interface {
	ReplaceUserIf(ctx context.Context, u ipguard.User, prevRev int64) (bool, error)
}

// replaceUser writes u over the stored record read at prevRev, only while
// that record is still stored; false, with no error, when it changed or
// went meanwhile. Only a record before revs (prevRev 0) needs UserReplacer
// (where the store has one): a rev above 0 is only ever over a stored one.
func (s *Service) replaceUser(ctx context.Context, u ipguard.User, prevRev int64) (bool, error) {
	if r, ok := s.Store.(UserReplacer); ok && prevRev == 0 {
		return r.ReplaceUserIf(ctx, u, prevRev)
	}
	return s.Store.PutUserIf(ctx, u, prevRev)
}

// AddsCounter is optional on a Store: BumpVersionAdding is BumpVersion
// that also adds adds to PortalState.Adds in the same write (only it moves
// Adds; PutPortalState stores AddsApplied with Applied, never down). A
// change counts the addresses its new entries need; the reconcile that
// applied everything it read records the Adds it read as AddsApplied. So
// the portal list, as the last reconcile left it, plus Adds − AddsApplied
// bounds what the stored changes need, without reading every user. It
// returns the new version and, for a bump that adds (adds > 0), the count
// after it (Adds, with every bump before it): the cap's second look
// (recheckCap) reads from it what changes storing at the same time counted.
type AddsCounter interface {
	BumpVersionAdding(ctx context.Context, adds int) (version, counted int64, err error)
}

// unappliedBound bounds the entries the portal list would hold once the
// changes stored so far are applied: the entries of the last list seen and
// of a PUT in flight, plus what the changes counted since the last full
// reconcile may add (AddsCounter). ok is false when there is no such
// bound (no counting store, no reconcile yet, or the last one failed):
// then every user is read. Like the "settled" bound, it counts a change
// once its version is bumped; one whose bump was lost is counted by the
// next reconcile.
func (s *Service) unappliedBound(st ipguard.PortalState) (int, bool) {
	if _, ok := s.Store.(AddsCounter); !ok || !st.Reconciled || st.Pending != "" || st.Adds < st.AddsApplied {
		return 0, false
	}
	entries := map[string]bool{}
	for _, r := range st.LastSeen {
		entries[r.IP] = true
	}
	for _, r := range st.Sent {
		entries[r.IP] = true
	}
	return len(entries) + int(st.Adds-st.AddsApplied), true
}

// bumped is a version bump's answer: the version, and where the store
// counts (counting), the addresses this change counted (n) and the count
// of all changes after it (adds).
type bumped struct {
	version  int64
	counting bool
	n, adds  int64
}

// bump bumps the desired-state version for a stored change that added
// entries added, counting the addresses they need where the store counts
// (AddsCounter).
func (s *Service) bump(ctx context.Context, added []string, now time.Time) (bumped, error) {
	c, ok := s.Store.(AddsCounter)
	if !ok {
		v, err := s.Store.BumpVersion(ctx)
		return bumped{version: v}, err
	}
	n := 0
	if len(added) > 0 {
		only := s.Settings
		only.Breakglass = nil
		d := DesiredState([]ipguard.User{{ID: "counted", Entries: added}}, only, now)
		n = len(d.Addrs)
		if d.Overflow {
			n = only.maxEntries() + 1
		}
	}
	v, adds, err := c.BumpVersionAdding(ctx, n)
	return bumped{version: v, counting: true, n: int64(n), adds: adds}, err
}

// written is what a change's user write replaced (prev, or none: found
// false) and the rev it wrote (0: it wrote nothing), with the history of
// the write, recorded by record (once; never after undo).
type written struct {
	prev    ipguard.User
	found   bool
	rev     int64
	history func()
}

func (w *written) record() {
	if w.history != nil {
		w.history()
		w.history = nil
	}
}

// recheckCap is the cap's second look for a change that added entries.
// The check before its write (checkCap) read the state before the write;
// changes storing at the same time, each checked against that same state,
// could together pass PORTAL_MAX_ENTRIES. Every change counts what it adds
// with its version bump (AddsCounter), so a change whose bump shows that
// others counted adds since its read is checked again with that count:
// the last of such changes to bump sees all the others. One that now
// passes the cap is undone (the user's record put back as it was, by a
// conditional write, and its history never recorded) and refused as
// InvalidInput with nothing stored, as a change checked alone would be.
// A record written again meanwhile is not undone: the change stands and
// the reconcile reports the cap (pending).
func (s *Service) recheckCap(ctx context.Context, id string, st ipguard.PortalState, next ipguard.User, b bumped, w *written, res *Result) error {
	if !b.counting || b.n == 0 || w.rev == 0 || b.adds <= st.Adds+b.n {
		return nil // nothing else counted since this change's read
	}
	st.Version, st.Adds = b.version, b.adds-b.n // others' adds; this change's are counted by checkCap
	cerr := s.checkCap(ctx, st, id, next)
	if ipguard.ErrorCode(cerr) != ipguard.EInvalid {
		if cerr != nil {
			s.log().Warn("cap check after the version bump failed; the change stands", "userId", id, "error", cerr)
		}
		return nil
	}
	var ok bool
	var err error
	if w.found {
		prev := w.prev
		prev.Rev = w.rev + 1
		if ok, err = s.Store.PutUserIf(ctx, prev, w.rev); err == nil && !ok {
			// A resend after a lost answer fails its condition too: the
			// record read now at the undo's rev, as it was, is the undo's.
			cur, found, gerr := s.Store.GetUser(ctx, id)
			ok, err = gerr == nil && found && cur.Rev == prev.Rev && sameUser(cur, prev), gerr
		}
	} else {
		ok, err = s.Store.DeleteUserIf(ctx, id, w.rev)
	}
	if err != nil || !ok {
		s.log().Warn("a change that passes the cap together with others could not be undone (written again meanwhile); the reconcile reports the cap", "userId", id, "error", err)
		return nil
	}
	w.history = nil
	res.Stored = false
	return cerr
}

// converge returns once version myV is applied to the portal (by this
// request, which then reconciles everything stored, or by another holder),
// or as pending when the portal update failed or the lease stayed held.
// force reconciles even when nothing is due (sync). mine are addresses the
// change needs on the portal: another holder's applied version counts only
// when its list holds them (a store whose counter is not atomic, as moto's,
// could otherwise hand out a version another holder already read).
//
// The lease combines: its holder reconciles everything stored (and goes
// again while the version moved), so a waiting caller mostly just watches
// for its version to be applied. With a StateLeasePeeker each poll is one
// read of the state and the lease together, and the caller tries to take
// the lease only when that read shows it free (then at once, without a
// pause): waiting callers do not load the store that the holder needs.
//
// passEnds, when not zero, is when a holder's pass that was running when
// the change started is due to end (ChangeStart.LeaseSince): the caller
// sleeps until then and polls, instead of trying the lease it would be
// refused (one lease try and the polls of the pass fewer).
//
// lastPass is the state's LastPass as last read (zero when not known:
// firstPassGuess then): a lease try refused by a holder that says since
// when it holds the lease (lease.HeldSince) sleeps until that pass is due
// to end, then polls, instead of pausing and polling to learn when it ends.
func (s *Service) converge(ctx context.Context, myV int64, force bool, mine []string, passEnds time.Time, lastPass time.Duration) (outcome, error) {
	wait := s.LeaseWait
	if dl, ok := ctx.Deadline(); ok && wait > time.Until(dl)/2 {
		wait = time.Until(dl) / 2 // leave the other half for the work itself
	}
	giveUp := time.Now().Add(wait)
	pause := firstPause
	peeker, _ := s.Store.(StateLeasePeeker)
	watcher, _ := s.Store.(HolderWatcher)
	tryLease, slept := true, true
	if d := s.untilPassEnds(passEnds); d > 0 && peeker != nil && time.Now().Add(d).Before(giveUp) {
		// The lease was held when this change started, by a pass due to
		// end in d: its lease would refuse a try now, and a poll could not
		// show this change applied before then.
		ts := time.Now()
		select {
		case <-ctx.Done():
			return outcome{}, ctx.Err()
		case <-time.After(d + rand.N(pause/2)):
		}
		span(ctx, "waitSleep", ts)
		tryLease = false // poll first: it says whether the lease is free
	}
	for {
		var passEnds time.Time // when the holder's running pass is due to end (zero: unknown)
		refused := false
		if tryLease {
			ta := time.Now()
			held, err := lease.Acquire(ctx, s.Leases, LeaseName, lease.Options{Grace: s.leaseGrace()})
			span(ctx, "leaseTry", ta)
			if err == nil {
				return s.holdConverge(withPassStart(ctx, ta), held, myV, force, mine)
			}
			if ipguard.ErrorCode(err) != ipguard.EConflict {
				return outcome{}, err
			}
			refused = true
			if since := lease.HeldSince(err); !since.IsZero() {
				passEnds = since.Add(passLength(lastPass))
			}
		}
		tryLease = true
		if refused && peeker != nil {
			// Just refused: the holder's pass that applies this change has
			// yet to run, so a poll now could not show it applied. Pause,
			// then poll (not try again: the poll says when it is free).
			tryLease = false
		} else if !force || peeker != nil {
			tp := time.Now()
			var st ipguard.PortalState
			var err error
			free := false
			if watcher != nil {
				var since time.Time
				st, free, since, err = watcher.PortalStateAndHolder(ctx, LeaseName, s.now())
				tryLease = free
				if st.LastPass > 0 {
					lastPass = st.LastPass
				}
				if !since.IsZero() {
					passEnds = since.Add(passLength(lastPass))
				}
			} else if peeker != nil {
				st, free, err = peeker.PortalStateAndLease(ctx, LeaseName, s.now())
				tryLease = free
			} else {
				st, err = s.Store.PortalState(ctx)
			}
			span(ctx, "waitPoll", tp)
			if err != nil {
				return outcome{}, err
			}
			if !force {
				if st.Applied >= myV && holds(st.LastSeen, mine) {
					return outcome{portal: PortalApplied, by: "another request", enabled: st.LastEnabled}, nil
				}
				if st.Pending != "" && st.PendingVersion >= myV {
					// The holder's failure, of its kind: failure() makes it this
					// request's error unless it was a passing outage.
					var cause error
					if st.PendingCode != "" {
						cause = &ipguard.Error{Code: st.PendingCode, Message: st.Pending}
					}
					return outcome{portal: PortalPending, reason: st.Pending, err: cause, by: "another request", enabled: st.LastEnabled}, nil
				}
			}
			if free && slept {
				// Free, and this change is not applied yet: try at once
				// (after a pause at least once, so that two callers seeing
				// it free together do not spin). Checked after the state,
				// so that a change another holder applied takes no lease.
				slept = false
				continue
			}
		}
		if time.Now().Add(pause).After(giveUp) {
			return outcome{portal: PortalPending, reason: "another reconcile held the portal allowlist lease for the whole wait (LEASE_WAIT); the change is stored and the next reconcile (at the latest the scheduled sync) applies it"}, nil
		}
		sleep := pause/2 + rand.N(pause)
		if d := s.untilPassEnds(passEnds); d > sleep {
			// The holder's pass (which applies this change, or after which
			// the lease is free) is due to end later than the next poll:
			// sleep until then instead of polling on the way (jittered, so
			// that the waiters of one holder do not all read at once).
			sleep = min(d, time.Until(giveUp)) + rand.N(pause/2)
		}
		ts := time.Now()
		select {
		case <-ctx.Done():
			return outcome{}, ctx.Err()
		case <-time.After(sleep):
		}
		span(ctx, "waitSleep", ts)
		slept = true
		pause = min(pause*3/2, maxPause)
	}
}

// The pauses of a waiting change between polls (jittered around pause,
// which grows by half each time up to maxPause). A pass of the holder takes
// a few store and portal round trips, so polling faster than this only
// loads the store the holder needs.
const (
	firstPause = 100 * time.Millisecond
	maxPause   = 200 * time.Millisecond
)

// HolderWatcher is optional on a StateLeasePeeker: its poll also says since
// when the lease's holder has held it (zero when free or not known). With
// the state's LastPass (how long the last pass held the lease) a waiting
// change knows when the running pass is due to end, and sleeps until then
// instead of polling every pause: a fact of the store, not a guess, though
// a pass may take longer than the last (then it polls every pause again).
type HolderWatcher interface {
	PortalStateAndHolder(ctx context.Context, name string, now time.Time) (st ipguard.PortalState, free bool, since time.Time, err error)
}

// maxPassSleep bounds a waiting change's sleep until its holder's pass is
// due to end (a LastPass of a slow pass, or a clock far off).
const maxPassSleep = time.Second

// firstPassGuess is how long a pass is taken to hold the lease while no
// pass has been measured yet (a state without LastPass: the first changes
// after deployment): about the portal's three round trips at its usual
// latency and four store round trips. It sets only when a waiting change
// first polls; one that wakes before the pass ends polls again after a
// pause, as it would without it.
const firstPassGuess = 250 * time.Millisecond

// passLength is the pass length a waiting change goes by: the state's
// LastPass, or firstPassGuess before any pass was measured.
func passLength(lastPass time.Duration) time.Duration {
	if lastPass > 0 {
		return lastPass
	}
	return firstPassGuess
}

// untilPassEnds is how long until passEnds (zero when unknown or past),
// at most maxPassSleep. The lease's start and the pass's length are both
// wall-clock times of the processes that took them (never Service.Now).
func (s *Service) untilPassEnds(passEnds time.Time) time.Duration {
	if passEnds.IsZero() {
		return 0
	}
	return min(max(time.Until(passEnds), 0), maxPassSleep)
}

// passStartKey carries when the lease holder's current pass started (the
// lease taken, or a further pass begun), so that the pass records how long
// it held the lease (PortalState.LastPass).
type passStartKey struct{}

func withPassStart(ctx context.Context, t time.Time) context.Context {
	return context.WithValue(ctx, passStartKey{}, t)
}

// passTook is how long the current pass has run (zero without a start).
func passTook(ctx context.Context) time.Duration {
	t, ok := ctx.Value(passStartKey{}).(time.Time)
	if !ok {
		return 0
	}
	return time.Since(t)
}

// StateLeasePeeker is optional on a Store: one strongly consistent read of
// the portal state's progress and of whether the lease name is free at now.
// Of the state it needs only Version, Applied, Pending, PendingCode,
// PendingVersion, LastSeen, LastEnabled and Reconciled (the rest may be
// left zero: a waiter's poll reads no more than it uses).
type StateLeasePeeker interface {
	PortalStateAndLease(ctx context.Context, name string, now time.Time) (ipguard.PortalState, bool, error)
}

// holdConverge reconciles under held, releases it, and then (off the next
// holder's critical path) sends due alerts and reads the audit trail.
func (s *Service) holdConverge(ctx context.Context, held *lease.Held, myV int64, force bool, mine []string) (outcome, error) {
	th := time.Now()
	out, err := s.holdAndReconcile(ctx, held, myV, force, mine)
	span(ctx, "held", th)
	// answered: a PUT of this pass was answered (also when the pass then
	// failed: a store failure after its PUT landed, or its read-back): the
	// write is checked in the trail all the same (checkForeignSaves).
	answered := out.put || len(out.saves) > 0
	if answered {
		//
		// The trail's answer is awaited before the lease is released (its
		// read went out with the PUT's answer, so it is mostly in already):
		// an answer that came after the release could hold the next
		// holder's save, which by the key's user and in the same second no
		// fact tells from a save inside this write (attack review:
		// TestTrailReadInFlightAtReleaseDoesNotBlameTheNextHolder).
		tt := time.Now()
		changes, terr := s.trailChanges(ctx, &out)
		out.trail = func() ([]Change, error) { return changes, terr }
		span(ctx, "trail", tt)
		s.noteTrailEpisode(ctx, &out, terr)
	}
	tr := time.Now()
	if time.Until(out.landBy) > 0 {
		// A PUT of ours went unanswered and may still land: the lease is
		// not released but kept until it can no longer (see write).
		if kerr := held.KeepUntil(ctx, out.landBy); kerr != nil {
			s.log().Warn("keep lease until an unanswered PUT may have landed", "lease", LeaseName, "error", kerr)
		}
	} else if rerr := held.Release(ctx); rerr != nil {
		s.log().Warn("release lease", "lease", LeaseName, "error", rerr)
	}
	span(ctx, "release", tr)
	defer span(ctx, "afterRelease", time.Now())
	if out.dueAdded || err == nil && force {
		s.flushDue(ctx)
	}
	if answered {
		s.checkForeignSaves(ctx, &out)
		s.noteUnrecorded(ctx, &out)
	}
	if err == nil && out.lateLanded != nil {
		s.checkLateLanded(ctx, *out.lateLanded)
	}
	return out, err
}

// holdAndReconcile reconciles under the lease. A change makes one pass
// (which applies every change stored by then, so the queued callers mostly
// find theirs applied, and one of them takes the lease for the rest); a
// sync goes again while the stored version moved on during the pass, at
// most a few rounds.
//
// A further pass starts from the state the previous one wrote, with only
// what the version bumps move (Version, Adds) read again, through the
// store's small poll read (StateLeasePeeker) where it has one: under the
// lease nothing else writes the state.
func (s *Service) holdAndReconcile(ctx context.Context, held *lease.Held, myV int64, force bool, mine []string) (outcome, error) {
	if r, ok := s.Portal.(AheadReserver); ok {
		// The pass's portal requests follow the state read: their share
		// of the request budget is taken meanwhile, not on their way.
		r.ReserveAhead(ctx)
	}
	var total outcome
	var written *ipguard.PortalState
	peeker, _ := s.Store.(StateLeasePeeker)
	for round := 0; round < 4; round++ {
		var st ipguard.PortalState
		var err error
		if written != nil && peeker != nil {
			tr := time.Now()
			var moved ipguard.PortalState
			moved, _, err = peeker.PortalStateAndLease(ctx, LeaseName, s.now())
			st = *written
			st.Version, st.Adds = moved.Version, moved.Adds
			span(ctx, "stateReread", tr)
		} else {
			st, err = s.Store.PortalState(ctx)
		}
		if err != nil {
			total.written = nil
			return total, err // the passes before are still checked (holdConverge)
		}
		if round > 0 && st.Applied >= st.Version {
			break
		}
		if round > 0 {
			ctx = withPassStart(ctx, time.Now())
		}
		if round == 0 && !force && st.Applied >= myV && st.Pending == "" && st.Reconciled && holds(st.LastSeen, mine) {
			return outcome{portal: PortalApplied, by: "another request", enabled: st.LastEnabled}, nil
		}
		out, err := s.reconcile(ctx, st, held)
		if err != nil {
			// Failed, but a PUT of it that went unanswered may still land:
			// holdConverge keeps the lease until then; and the PUTs that
			// landed are still checked in the audit trail.
			total.merge(out)
			total.written = nil // not the state now: nothing writes it again
			return total, err
		}
		written = out.written
		total.merge(out)
		total.written = out.written
		if out.portal == PortalPending {
			break
		}
		if time.Until(total.landBy) > 0 {
			// An attempt of this pass's PUT went unanswered and may still
			// land: nothing more is written under it (the fence).
			break
		}
		if !force {
			// This change is on the portal (the pass read the state after
			// its version bump). Another pass would hold its caller's
			// answer back by a whole pass (a function's work after its
			// answer is frozen), so the lease goes to a waiting change,
			// whose pass applies everything stored by then.
			break
		}
		if time.Until(held.Until) < s.writeFence()+passReads {
			// A further pass could not write (the fence): it would read for
			// nothing and store its change as pending. The change that
			// moved the version is applied by its own caller's pass (or the
			// next sync).
			break
		}
	}
	return total, nil
}

// passReads is the lease time a further pass of a sync needs before its
// PUT (its GETs, the scan of users and the in-flight record), on top of
// the write fence.
const passReads = 3 * time.Second

// holds reports whether list has a non-admin entry for every address.
func holds(list []ipguard.Restriction, addrs []string) bool {
	have := make(map[string]bool, len(list))
	for _, r := range list {
		if !r.ForAdmin {
			have[r.IP] = true
		}
	}
	for _, a := range addrs {
		if !have[a] {
			return false
		}
	}
	return true
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Service) log() *slog.Logger { return ipguard.LoggerOrDiscard(s.Log) }
