// Package enforce answers the audit's findings: it ends the session of a
// successful login from outside the user's allowlist (or all of that user's
// sessions), at most once per login event, behind guards, and can disable a
// user who keeps violating. It knows nothing of AWS or HTTP: the portal and
// the exactly-once record are the interfaces below.
//
// One run, as Service.Respond sees it:
//
//	findings ──► enforceable? ──no──► (no response: failed logins, unverifiable
//	                │                   addresses, unknown users unless enabled)
//	                ├─ backfill ───────► skipped(backfill)
//	                ├─ report mode ────► would_end            (no call at all)
//	                ▼
//	           guards: key's own user ─► skipped(api_key_user)
//	                   portal owner ───► skipped(owner)
//	           more than MaxPerRun left ► skipped(circuit_breaker) for all + one notice
//	                ▼
//	           claim event#<id> (conditional write) ──taken──► the recorded outcome,
//	                │                                          or skipped(claimed_earlier)
//	                ▼
//	           logout / logoutall ──► ended | not_active | refused | failed
//	                ▼                       (settled on the record)
//	           escalation: N enforced violations in 24 h ──► disable user (claimed
//	                                                         once per 24 h): disabled | refused | failed
//	                                                         (failed: confirmed by reading the user's
//	                                                         status, disabled when the portal shows it;
//	                                                         claimed for minutes; held 24 h when
//	                                                         disabled or refused is recorded;
//	                                                         failed: its record expires at once,
//	                                                         so the next run tries again)
package enforce

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strconv"
	"time"

	"ipguard/internal/allowlist"
	"ipguard/internal/audit"
	"ipguard/internal/ipguard"
)

// Mode is what enforcement does with a violating login (ENFORCEMENT_MODE).
type Mode string

const (
	// ModeReport only says what would have been done; it calls nothing.
	ModeReport Mode = "report"
	// ModeEndSession ends the session of the violating login.
	ModeEndSession Mode = "end-session"
	// ModeEndAllSessions ends every session of the violating user.
	ModeEndAllSessions Mode = "end-all-sessions"
)

// Modes lists the valid modes.
var Modes = []Mode{ModeReport, ModeEndSession, ModeEndAllSessions}

// ErrRefused marks a refusal by the portal (HTTP 403): the key's user may not
// do this (e.g. disable the owner, an admin, or itself).
var ErrRefused = errors.New("refused by the portal")

// ErrUnconfirmed marks a call that was sent once and whose answer was lost
// (no answer, 502, 504): the portal may have applied it.
var ErrUnconfirmed = errors.New("sent once, answer lost: the portal may have applied it")

// Portal is the part of the DocSpace API enforcement uses.
type Portal interface {
	// APIKeyUser returns the id of the user the API key acts as
	// (GET keys/@self → createBy.id).
	APIKeyUser(ctx context.Context) (string, error)
	// IsOwner reports whether userID is the portal owner (GET people/{id} → isOwner).
	IsOwner(ctx context.Context, userID string) (bool, error)
	// EndSession ends the session of login event id
	// (PUT security/activeconnections/logout/{id}): true when the session was
	// active and is now closed, false when it was not active. A 403 is an
	// error for which errors.Is(err, ErrRefused). It is not retried like a
	// read: a request whose answer was lost after it may have reached the
	// portal is not sent again, and the error is one for which
	// errors.Is(err, ErrUnconfirmed).
	EndSession(ctx context.Context, loginEventID int64) (bool, error)
	// SessionsEnded returns how many single sessions the API key's user
	// ended at or after since (its audit trail, action 4035, dated to the
	// second, so since counts from the start of its second; since is on
	// this process's clock, and the implementation reads the trail on the
	// portal's): how a logout whose answer was lost is confirmed. The trail
	// names who ended a session, not which one, so the caller tells its own earlier logouts
	// apart by counting them. The audit holds its lease while enforcing, so
	// no other run of this tool ends sessions meanwhile.
	SessionsEnded(ctx context.Context, since time.Time) (int, error)
	// EndAllSessions ends every session of userID
	// (PUT security/activeconnections/logoutall/{userId}). A 403 is an error
	// for which errors.Is(err, ErrRefused).
	EndAllSessions(ctx context.Context, userID string) error
	// DisableUser sets userID's status to Terminated
	// (PUT people/status/Terminated). The portal refuses (403, an error for
	// which errors.Is(err, ErrRefused)) the owner, the caller itself and,
	// unless the caller is the owner, DocSpace admins.
	DisableUser(ctx context.Context, userID string) error
	// UserDisabled reports whether the portal shows userID disabled
	// (GET people/{id} → status 2, Terminated): how a disable whose answer
	// was lost is confirmed. A user the portal does not know is not
	// disabled.
	UserDisabled(ctx context.Context, userID string) (bool, error)
}

// Store is the exactly-once record of enforcement actions.
type Store interface {
	// ClaimResponse writes rec (unsettled) when no live record has rec.Key
	// (none, or one whose ExpiresAt is not after rec.ClaimedAt) and returns
	// true. Otherwise it writes nothing and returns false with the live
	// record. Of concurrent callers for one key at most one gets true.
	ClaimResponse(ctx context.Context, rec ipguard.ResponseRecord) (ipguard.ResponseRecord, bool, error)
	// SettleResponse stores rec.Outcome, rec.Detail and rec.SettledAt on the
	// record of rec.Key claimed with rec.Token, and rec.ExpiresAt when it is
	// not zero, earlier or later than the claim's (a disable is claimed for
	// minutes and settled to hold EscalationWindow when disabled or refused,
	// to expire at once when failed, so the next run may claim it again).
	// If that record is gone or holds another
	// token it changes nothing and returns an EConflict error.
	SettleResponse(ctx context.Context, rec ipguard.ResponseRecord) error
	// ReadResponse returns the record of key when it is live at at (its
	// ExpiresAt is after at), settled or not, and true; false when there is
	// none or it has expired. It writes nothing and reads consistently: a
	// claim or settle that returned before is seen.
	ReadResponse(ctx context.Context, key string, at time.Time) (ipguard.ResponseRecord, bool, error)
	// AddViolations records that userID had the enforced violations ids at
	// at, and returns how many distinct violations of userID were recorded
	// at or after since (an id recorded twice counts once, at its first
	// time). Violations
	// before since may be forgotten.
	AddViolations(ctx context.Context, userID string, ids []int64, at, since time.Time) (int, error)
}

// EscalationWindow is the span within which ENFORCEMENT_DISABLE_AFTER
// violations disable a user; a user is disabled at most once per window.
const EscalationWindow = 24 * time.Hour

// Settings configure a Service.
type Settings struct {
	Mode Mode // ENFORCEMENT_MODE; empty means report
	// UnknownUsers extends enforcement to unknown_user findings
	// (ENFORCE_UNKNOWN_USERS).
	UnknownUsers bool
	// MaxPerRun is the circuit breaker (ENFORCEMENT_MAX_PER_RUN): a run that
	// would act on more events acts on none. 0 means 10.
	MaxPerRun int
	// DisableAfter disables a user with this many enforced violations within
	// EscalationWindow (ENFORCEMENT_DISABLE_AFTER); 0 turns it off.
	DisableAfter int
	// Retention is how long an event's record is kept; it must outlast the
	// audit's re-reads (the alert retention). 0 means 7 days.
	Retention time.Duration
	// Budget bounds the time one run spends acting, so the alert is never
	// held up for long; 0 means 30s. Actions not done in time fail.
	Budget time.Duration
	// Behaviour are the behaviour rules (ENFORCE_BEHAVIOUR) whose reasons
	// make a finding enforceable; none by default.
	Behaviour []string
}

// Service is the audit's Responder. Portal and Store are required unless
// the mode is report.
type Service struct {
	Portal   Portal
	Store    Store
	Settings Settings
	Now      func() time.Time
	Log      *slog.Logger
}

var _ audit.Responder = (*Service)(nil)

// Begin implements audit.Responder: the responses of one audit run, over
// all of its pieces. The circuit breaker counts the accounts acted on in
// the whole run, and end-all-sessions calls logoutall at most once per user
// per run.
func (s *Service) Begin(backfill bool) audit.RunResponder {
	return &Run{s: s, backfill: backfill, token: newToken(), accounts: map[string]bool{}, loggedOut: map[string]audit.Response{}}
}

// Respond answers fs as one run of one piece (Begin, then Respond).
func (s *Service) Respond(ctx context.Context, fs []audit.Finding, backfill bool) []string {
	return s.Begin(backfill).Respond(ctx, fs)
}

// Run is the responses of one audit run (see Service.Begin). It is used by
// one goroutine at a time.
type Run struct {
	s        *Service
	backfill bool
	token    string // claims of this run carry it: a claim found with it is this run's own
	// accounts are the users this run acted on (or chose to), counted by
	// the circuit breaker; tripped: the breaker stopped this run's actions.
	accounts map[string]bool
	tripped  bool
	// loggedOut is, per user, the answer of this run's logoutall.
	loggedOut map[string]audit.Response
	// disableSent: the users this run sent a disable for; it is sent at
	// most once per user per run, whatever its record says afterwards.
	disableSent map[string]bool
	// The single-session logouts of this run, for confirming one whose
	// answer was lost (confirm): when the first was sent, how many ended a
	// session (answered true, or confirmed), and how many lost their answer
	// without being confirmed (they may still land, late).
	firstLogout         time.Time
	ownEnded, unsettled int
}

// Respond implements audit.RunResponder (see the package picture). Every
// enforceable finding gets a Response; the others are left alone.
func (rr *Run) Respond(ctx context.Context, fs []audit.Finding) []string {
	s := rr.s
	var cands []int
	for i, f := range fs {
		if s.enforceable(f) {
			cands = append(cands, i)
		}
	}
	if len(cands) == 0 {
		return nil
	}
	r := run{s: s, rr: rr, fs: fs, action: s.action(), token: rr.token}
	switch {
	case rr.backfill:
		r.setAll(cands, audit.Response{Outcome: audit.OutcomeSkipped, Guard: audit.GuardBackfill})
		return nil
	case s.mode() == ModeReport:
		users := map[string]bool{}
		for _, i := range cands {
			users[ipguard.CanonicalUserID(fs[i].UserID)] = true
			rr.accounts[ipguard.CanonicalUserID(fs[i].UserID)] = true
		}
		if rr.tripped || len(rr.accounts) > s.maxPerRun() {
			rr.tripped = true
			r.setAll(cands, audit.Response{Outcome: audit.OutcomeSkipped, Guard: audit.GuardCircuitBreaker})
			return []string{"Report mode: " + s.breakerNotice(len(rr.accounts), len(cands), "would have been")}
		}
		r.setAll(cands, audit.Response{Outcome: audit.OutcomeWouldEnd})
		return nil
	}

	budget := s.Settings.Budget
	if budget <= 0 {
		budget = 30 * time.Second
	}
	if dl, ok := ctx.Deadline(); ok && time.Until(dl)/2 < budget {
		budget = time.Until(dl) / 2 // leave the other half for publishing
	}
	ctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()

	act, notice := r.guard(ctx, cands)
	var acted map[string][]int64
	if len(act) > 0 {
		acted = r.act(ctx, act)
	}
	if !rr.tripped {
		r.escalate(ctx, acted, r.recordedViolations())
	}
	r.earlierEscalations(ctx)
	if notice != "" {
		return []string{notice}
	}
	return nil
}

// enforceable: a successful login from outside the user's allowlist, or by
// an unknown user when enabled, also when it followed failed attempts
// (password_guess_succeeded, judged by the kind it came from). Failed logins
// (bursts) and logins whose address is not whole (unverifiable) never are.
func (s *Service) enforceable(f audit.Finding) bool {
	if f.EventID == 0 || f.EventIDs != nil || f.Response != nil {
		return false
	}
	if _, whole := allowlist.ParseLoginIP(f.IP); !whole {
		return false // e.g. an unknown user's IPv6 login, cut by the portal: unverifiable
	}
	kind := f.Kind
	if kind == audit.KindPasswordGuessSucceeded {
		kind = f.FromKind // the same login, raised because its address also failed
	}
	switch kind {
	case audit.KindIPNotAllowed:
		return true
	case audit.KindUnknownUser:
		if s.Settings.UnknownUsers {
			return true
		}
	}
	return s.behaviourEnforced(f)
}

// behaviourEnforced: enforcement follows a finding's reasons; a behaviour
// reason counts only where ENFORCE_BEHAVIOUR names its rule.
func (s *Service) behaviourEnforced(f audit.Finding) bool {
	for _, r := range f.Reasons {
		if audit.IsBehaviourKind(r.Kind) && slices.Contains(s.Settings.Behaviour, r.Kind) {
			return true
		}
	}
	return false
}

func (s *Service) mode() Mode {
	if s.Settings.Mode == "" {
		return ModeReport
	}
	return s.Settings.Mode
}

func (s *Service) action() string {
	if s.mode() == ModeEndAllSessions {
		return string(ModeEndAllSessions)
	}
	return string(ModeEndSession)
}

func (s *Service) maxPerRun() int {
	if s.Settings.MaxPerRun <= 0 {
		return 10
	}
	return s.Settings.MaxPerRun
}

func (s *Service) retention() time.Duration {
	if s.Settings.Retention <= 0 {
		return 7 * 24 * time.Hour
	}
	return max(s.Settings.Retention, EscalationWindow)
}

func (s *Service) breakerNotice(accounts, logins int, verb string) string {
	return fmt.Sprintf("enforcement %s suspended for this run: %d accounts (%d logins in this part of the run) would have had sessions ended, more than ENFORCEMENT_MAX_PER_RUN=%d accounts per run, so no more were. "+
		"A wrong or missing allowlist is the likely cause, not an attack on %d accounts at once: check the onboarded allowlists. "+
		"These logins are alerted below and will not be enforced later; the next run enforces again.", verb, accounts, logins, s.maxPerRun(), accounts)
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

func (s *Service) log() *slog.Logger { return ipguard.LoggerOrDiscard(s.Log) }

// run is one Respond call's state.
type run struct {
	s      *Service
	rr     *Run
	fs     []audit.Finding
	action string
	token  string
	// recorded: the findings answered from an earlier try's record, with
	// that record's token (see earlierEscalations).
	recorded map[int]string
}

func (r *run) set(i int, resp audit.Response) {
	resp.Action = r.action
	r.fs[i].Response = &resp
}

func (r *run) setAll(is []int, resp audit.Response) {
	for _, i := range is {
		r.set(i, resp)
	}
}

func (r *run) failed(is []int, format string, args ...any) {
	r.setAll(is, audit.Response{Outcome: audit.OutcomeFailed, Error: fmt.Sprintf(format, args...)})
}

// guard applies the key-user and owner guards and the circuit breaker,
// which counts accounts (not logins) over the whole run: the users acted on
// in earlier pieces and those of this piece. It returns the findings to act
// on, or the breaker's notice.
func (r *run) guard(ctx context.Context, cands []int) ([]int, string) {
	s := r.s
	self, err := s.Portal.APIKeyUser(ctx)
	if err != nil {
		r.failed(cands, "could not learn which user the API key acts as, so nothing was done: %v", err)
		return nil, ""
	}
	self = ipguard.CanonicalUserID(self)
	byUser := map[string][]int{}
	var users []string
	for _, i := range cands {
		uid := ipguard.CanonicalUserID(r.fs[i].UserID)
		switch {
		case uid == "":
			r.failed([]int{i}, "the login event names no user, so the owner guard cannot be checked")
		case uid == self:
			r.set(i, audit.Response{Outcome: audit.OutcomeSkipped, Guard: audit.GuardAPIKeyUser})
		default:
			if byUser[uid] == nil {
				users = append(users, uid)
			}
			byUser[uid] = append(byUser[uid], i)
		}
	}
	if r.rr.tripped {
		return nil, r.trip(byUser)
	}
	// At most one user is the owner: when even without one of them there
	// are too many accounts, the breaker trips without asking the portal
	// about every user.
	if r.newAccounts(users) > s.maxPerRun() {
		// A retried run (e.g. after the alert failed to publish) answers
		// the events an earlier run already acted on from their records;
		// those do not count toward the breaker, so the alert says what
		// was done rather than "skipped".
		r.answered(ctx, byUser, &users)
	}
	if r.newAccounts(users)-1 > s.maxPerRun() {
		return nil, r.trip(byUser)
	}
	var act []int
	var acting []string
	for _, uid := range users {
		is := byUser[uid]
		owner, err := s.Portal.IsOwner(ctx, uid)
		switch {
		case err != nil:
			r.failed(is, "could not check whether the user is the portal owner, so nothing was done: %v", err)
			delete(byUser, uid)
		case owner:
			r.setAll(is, audit.Response{Outcome: audit.OutcomeSkipped, Guard: audit.GuardOwner})
			delete(byUser, uid)
		default:
			act = append(act, is...)
			acting = append(acting, uid)
		}
	}
	if r.newAccounts(acting) > s.maxPerRun() {
		return nil, r.trip(byUser)
	}
	for _, uid := range acting {
		r.rr.accounts[uid] = true
	}
	sort.Ints(act)
	return act, ""
}

// newAccounts is how many accounts the run would have acted on with users.
func (r *run) newAccounts(users []string) int {
	n := len(r.rr.accounts)
	for _, u := range users {
		if !r.rr.accounts[u] {
			n++
		}
	}
	return n
}

// answered reads the records of the candidates; a finding whose event has a
// live record gets that record's outcome (claimed_earlier when unsettled)
// and leaves byUser, and a user left with no candidate leaves users. A
// record that cannot be read leaves its finding a candidate (it counts
// toward the breaker; a claim would fail alike).
func (r *run) answered(ctx context.Context, byUser map[string][]int, users *[]string) {
	s := r.s
	now := s.now()
	kept := (*users)[:0]
	for _, uid := range *users {
		var left []int
		for _, i := range byUser[uid] {
			rec, ok, err := s.Store.ReadResponse(ctx, EventKey(r.fs[i].EventID), now)
			switch {
			case err != nil:
				s.log().Warn("enforcement record not read", "eventId", r.fs[i].EventID, "error", err)
				left = append(left, i)
			case ok:
				r.fromRecord(i, rec)
			default:
				left = append(left, i)
			}
		}
		if len(left) == 0 {
			delete(byUser, uid)
			continue
		}
		byUser[uid] = left
		kept = append(kept, uid)
	}
	*users = kept
}

// trip suspends enforcement for the rest of the run: every candidate left
// is skipped(circuit_breaker).
func (r *run) trip(byUser map[string][]int) string {
	logins := 0
	users := make([]string, 0, len(byUser))
	for uid, is := range byUser {
		users = append(users, uid)
		for _, i := range is {
			if r.fs[i].Response == nil {
				logins++
				r.set(i, audit.Response{Outcome: audit.OutcomeSkipped, Guard: audit.GuardCircuitBreaker})
			}
		}
	}
	accounts := r.newAccounts(users)
	r.rr.tripped = true
	notice := "E" + r.s.breakerNotice(accounts, logins, "was")[1:]
	r.s.log().Warn("enforcement suspended (circuit breaker)", "accounts", accounts, "logins", logins, "maxPerRun", r.s.maxPerRun())
	return notice
}

// act claims each event, calls the portal, and settles the record. It
// returns, per user, the event ids whose violation was enforced (ended or
// not_active by this run).
//
// end-all-sessions: the user's logoutall is sent right after the first
// claim of the user's logins in this run, and the user's other logins
// (later in this piece or in later pieces) are settled with its answer: it
// ended their sessions too, since every login of the run's window came
// before it. (It used to be sent after every login of the piece had been
// claimed: a login flood of one user could spend the time budget on claims
// so that the one call that mattered was never sent.)
//
// A login of a user whose logoutall this run already sent needs no portal
// call: when the budget has run out it is still claimed and settled with
// that answer, in a few seconds shared past the budget (as settle), since
// the logoutall did end its session.
func (r *run) act(ctx context.Context, act []int) map[string][]int64 {
	s := r.s
	enforced := map[string][]int64{}
	var gctx context.Context // the few seconds past the budget, from when it ran out
	for _, i := range act {
		f := r.fs[i]
		uid := ipguard.CanonicalUserID(f.UserID)
		cctx := ctx
		if ctx.Err() != nil {
			_, sent := r.rr.loggedOut[uid]
			if !sent || r.action != string(ModeEndAllSessions) {
				r.failed([]int{i}, "not attempted: the enforcement time budget of this run ran out")
				continue
			}
			if gctx == nil {
				var cancel context.CancelFunc
				gctx, cancel = pastBudget(ctx)
				defer cancel()
			}
			if gctx.Err() != nil {
				r.failed([]int{i}, "not attempted: the enforcement time budget of this run ran out")
				continue
			}
			cctx = gctx
		}
		now := s.now()
		rec := ipguard.ResponseRecord{Key: EventKey(f.EventID), Token: r.token, UserID: uid, Action: r.action,
			ClaimedAt: now, ExpiresAt: now.Add(s.retention())}
		prior, ok, err := s.Store.ClaimResponse(cctx, rec)
		if err != nil {
			r.failed([]int{i}, "could not record the intent to act, so nothing was done: %v", err)
			continue
		}
		if !ok && prior.Token == r.token && !prior.Settled() {
			// This run's own claim (its write's answer was lost and the
			// resend found it): the claim is ours, act on it.
			ok = true
		}
		if !ok {
			r.fromRecord(i, prior)
			continue
		}
		if r.action == string(ModeEndAllSessions) {
			done, sent := r.rr.loggedOut[uid]
			if !sent {
				err := s.Portal.EndAllSessions(ctx, uid)
				done = outcome(err, true, s.now())
				r.rr.loggedOut[uid] = done
				s.log().Info("enforcement", "userId", uid, "action", r.action, "outcome", done.Outcome, "error", done.Error)
			}
			// When sent earlier in this run, it ended this session too.
			r.set(i, done)
			r.settle(ctx, rec, done)
			if done.Outcome == audit.OutcomeEnded {
				enforced[uid] = append(enforced[uid], f.EventID)
			}
			continue
		}
		if r.rr.firstLogout.IsZero() {
			r.rr.firstLogout = s.now()
		}
		active, err := s.Portal.EndSession(ctx, f.EventID)
		resp := outcome(err, active, s.now())
		if errors.Is(err, ErrUnconfirmed) {
			resp = r.confirm(ctx, err)
		} else if resp.Outcome == audit.OutcomeEnded {
			r.rr.ownEnded++
		}
		r.set(i, resp)
		r.settle(ctx, rec, resp)
		s.log().Info("enforcement", "eventId", f.EventID, "userId", uid, "action", r.action, "outcome", resp.Outcome, "error", resp.Error)
		if resp.Outcome == audit.OutcomeEnded || resp.Outcome == audit.OutcomeNotActive {
			enforced[uid] = append(enforced[uid], f.EventID)
		}
	}
	return enforced
}

// outcome classifies a portal call's answer.
func outcome(err error, active bool, at time.Time) audit.Response {
	stamp := at.UTC().Format(time.RFC3339)
	switch {
	case errors.Is(err, ErrRefused):
		return audit.Response{Outcome: audit.OutcomeRefused, At: stamp, Error: err.Error()}
	case err != nil:
		return audit.Response{Outcome: audit.OutcomeFailed, At: stamp, Error: err.Error()}
	case active:
		return audit.Response{Outcome: audit.OutcomeEnded, At: stamp}
	default:
		return audit.Response{Outcome: audit.OutcomeNotActive, At: stamp}
	}
}

// confirm settles a logout whose answer was lost (err wraps ErrUnconfirmed):
// the call is not sent again; the portal's audit trail is asked how many
// sessions the key's user ended since this run's first logout, and what it
// says is recorded. The trail names who ended a session, not which one, and
// dates it to the second, so this run's own logouts (those that ended a
// session, and earlier lost ones that may have landed late) are counted
// out: only a session ended beyond them is this logout's. When that cannot
// be told, the outcome is failed ("may still be active"), never ended.
func (r *run) confirm(ctx context.Context, err error) audit.Response {
	rr := r.rr
	n, cerr := r.s.Portal.SessionsEnded(ctx, rr.firstLogout)
	now := r.s.now()
	switch {
	case cerr != nil:
		rr.unsettled++
		return audit.Response{Outcome: audit.OutcomeFailed, At: now.Format(time.RFC3339),
			Error: fmt.Sprintf("the logout was sent once and its answer was lost (%v); whether it ended the session could not be confirmed: %v", err, cerr)}
	case n > rr.ownEnded+rr.unsettled:
		rr.ownEnded++
		return audit.Response{Outcome: audit.OutcomeEnded, At: now.Format(time.RFC3339)}
	default:
		rr.unsettled++
		return audit.Response{Outcome: audit.OutcomeFailed, At: now.Format(time.RFC3339),
			Error: fmt.Sprintf("the logout was sent once and its answer was lost (%v); the portal shows no session ended since beyond this run's own other logouts, so the session may still be active", err)}
	}
}

// fromRecord answers a finding whose event an earlier (or concurrent) run
// claimed: with that run's outcome (marked Recorded), or claimed_earlier
// when it recorded none.
func (r *run) fromRecord(i int, rec ipguard.ResponseRecord) {
	if !rec.Settled() {
		r.set(i, audit.Response{Outcome: audit.OutcomeSkipped, Guard: audit.GuardClaimedEarlier})
		return
	}
	resp := audit.Response{Outcome: rec.Outcome, Error: rec.Detail, Recorded: true}
	if !rec.SettledAt.IsZero() {
		resp.At = rec.SettledAt.UTC().Format(time.RFC3339)
	}
	r.set(i, resp)
	r.fs[i].Response.Action = rec.Action
	if r.recorded == nil {
		r.recorded = map[int]string{}
	}
	r.recorded[i] = rec.Token
}

// earlierEscalations tells, on the findings answered from an earlier try's
// records, the escalation that try made: the user's disable record when the
// same try (its token) claimed it. A run that disabled a user and then
// failed to publish is retried with its findings answered from the records;
// without this no alert would ever say that the user was disabled.
func (r *run) earlierEscalations(ctx context.Context) {
	if len(r.recorded) == 0 {
		return
	}
	s := r.s
	ctx, cancel := pastBudget(ctx)
	defer cancel()
	byUser := map[string][]int{}
	for i := range r.recorded {
		uid := ipguard.CanonicalUserID(r.fs[i].UserID)
		byUser[uid] = append(byUser[uid], i)
	}
	users := make([]string, 0, len(byUser))
	for uid := range byUser {
		users = append(users, uid)
	}
	sort.Strings(users)
	now := s.now()
	for _, uid := range users {
		rec, ok, err := s.Store.ReadResponse(ctx, DisableKey(uid), now)
		if err != nil {
			s.log().Warn("enforcement: could not read whether an earlier try disabled the user", "userId", uid, "error", err)
			continue
		}
		if !ok {
			continue
		}
		var esc *audit.Escalation
		for _, i := range byUser[uid] {
			if r.recorded[i] != rec.Token || r.fs[i].Response.Escalation != nil {
				continue
			}
			if esc == nil {
				esc = r.escalationOf(ctx, rec, now)
			}
			e := *esc
			r.fs[i].Response.Escalation = &e
		}
	}
}

// escalationOf is the escalation a settled (or only claimed) disable record
// tells; its violations are those recorded within the window now (at least
// ENFORCEMENT_DISABLE_AFTER, which the try reached).
func (r *run) escalationOf(ctx context.Context, rec ipguard.ResponseRecord, now time.Time) *audit.Escalation {
	s := r.s
	esc := &audit.Escalation{Outcome: rec.Outcome, Error: rec.Detail}
	if !rec.Settled() {
		esc.Outcome = audit.OutcomeFailed
		esc.Error = "an earlier try of this run set out to disable the user and recorded no outcome: check the user's status in the portal"
	}
	if !rec.SettledAt.IsZero() {
		esc.At = rec.SettledAt.UTC().Format(time.RFC3339)
	}
	n, err := s.Store.AddViolations(ctx, rec.UserID, nil, now, now.Add(-EscalationWindow))
	if err != nil || n < s.Settings.DisableAfter {
		n = s.Settings.DisableAfter
	}
	esc.Violations = n
	return esc
}

// recordGrace is how long the store writes that record what a run did
// (settles, violations, an earlier try's escalation) may take past the
// run's time budget: what was done at the portal is recorded even when
// the budget ran out; no portal call is made in it but the one read of a
// user's status that confirms a disable whose answer was lost
// (confirmDisabled, a recordGrace of its own).
const recordGrace = 5 * time.Second

// disableClaimMargin is how long a disable's claim outlives the run's time
// budget: the settle past the budget (recordGrace; twice, for the status
// read that may come before it) and a minute for the store's clock and
// whole seconds.
const disableClaimMargin = 2*recordGrace + time.Minute

// disableClaimHold is when a disable claimed at now expires unless its
// outcome is recorded: the end of ctx's budget plus disableClaimMargin.
// A claim whose outcome never gets recorded (the settle failed, or the run
// crashed) thus blocks the escalation for minutes, not EscalationWindow,
// and a later run tries again; the disable of a crashed run may then be
// sent twice, which the portal takes as once.
func disableClaimHold(ctx context.Context, now time.Time) time.Time {
	left := time.Duration(0)
	if dl, ok := ctx.Deadline(); ok {
		left = max(time.Until(dl), 0)
	}
	return now.Add(left + disableClaimMargin)
}

// pastBudget is ctx's values with recordGrace of time from now, whatever
// is left of ctx's own deadline.
func pastBudget(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), recordGrace)
}

// settle records the outcome; the context may have run out, so it gets a
// few seconds of its own (pastBudget). A failure is logged: the action stands, and a
// later run answers the event with claimed_earlier.
func (r *run) settle(ctx context.Context, rec ipguard.ResponseRecord, resp audit.Response) {
	sctx, cancel := pastBudget(ctx)
	defer cancel()
	rec.Outcome, rec.Detail = resp.Outcome, resp.Error
	rec.SettledAt, _ = time.Parse(time.RFC3339, resp.At)
	if err := r.s.Store.SettleResponse(sctx, rec); err != nil {
		r.s.log().Warn("enforcement outcome not recorded", "key", rec.Key, "outcome", rec.Outcome, "error", err)
	}
}

// recordedViolations are, per user, the findings answered from an earlier
// try's record as enforced (ended, not_active): their violations were
// counted by that try. A retry counts them again (without recording them
// twice) so that a disable that try did not get done (it failed, and its
// record expired at once) is tried again and told in the retry's alert.
func (r *run) recordedViolations() map[string][]int64 {
	var out map[string][]int64
	for i := range r.recorded {
		f := r.fs[i]
		if o := f.Response.Outcome; o != audit.OutcomeEnded && o != audit.OutcomeNotActive {
			continue
		}
		if out == nil {
			out = map[string][]int64{}
		}
		uid := ipguard.CanonicalUserID(f.UserID)
		out[uid] = append(out[uid], f.EventID)
	}
	return out
}

// escalate disables users who reached DisableAfter enforced violations
// within EscalationWindow, once per window: those this run enforced
// (recorded now) and those an earlier try enforced (recorded, only counted).
func (r *run) escalate(ctx context.Context, enforced, recorded map[string][]int64) {
	s := r.s
	if s.Settings.DisableAfter <= 0 || len(enforced)+len(recorded) == 0 {
		return
	}
	users := make([]string, 0, len(enforced)+len(recorded))
	for _, m := range []map[string][]int64{enforced, recorded} {
		for uid := range m {
			if !slices.Contains(users, uid) {
				users = append(users, uid)
			}
		}
	}
	sort.Strings(users)
	// The violations are recorded also when the time budget ran out (like
	// settle, a few seconds for all users together): sessions this run ended
	// count toward the next escalation, or a slow portal would keep a repeat
	// violator from ever reaching the threshold. The disable itself keeps to
	// the budget.
	vctx, cancel := pastBudget(ctx)
	defer cancel()
	for _, uid := range users {
		now := s.now()
		n, err := s.Store.AddViolations(vctx, uid, enforced[uid], now, now.Add(-EscalationWindow))
		if err != nil {
			s.log().Warn("enforcement: could not count the user's violations; no escalation this run", "userId", uid, "error", err)
			continue
		}
		if n < s.Settings.DisableAfter || r.rr.disableSent[uid] {
			continue
		}
		// Claimed for the run's budget and a margin only (disableClaimHold),
		// held for the window once an outcome that should hold is recorded.
		rec := ipguard.ResponseRecord{Key: DisableKey(uid), Token: r.token, UserID: uid, Action: "disable",
			ClaimedAt: now, ExpiresAt: disableClaimHold(ctx, now)}
		prior, ok, err := s.Store.ClaimResponse(ctx, rec)
		if err == nil && !ok && prior.Token == r.token && !prior.Settled() {
			ok = true // this run's own claim, whose write answer was lost (as in act)
		}
		var esc audit.Escalation
		switch {
		case err != nil:
			esc = audit.Escalation{Outcome: audit.OutcomeFailed, Error: "could not record the intent to disable the user, so it was not disabled: " + err.Error()}
		case !ok:
			continue // disabled (or tried) within the window already
		default:
			if r.rr.disableSent == nil {
				r.rr.disableSent = map[string]bool{}
			}
			r.rr.disableSent[uid] = true
			err := s.Portal.DisableUser(ctx, uid)
			resp := outcome(err, true, s.now())
			esc = audit.Escalation{Outcome: resp.Outcome, At: resp.At, Error: resp.Error}
			if resp.Outcome == audit.OutcomeEnded {
				esc.Outcome = audit.OutcomeDisabled
			}
			if esc.Outcome == audit.OutcomeFailed {
				esc = r.confirmDisabled(ctx, uid, esc)
			}
			if esc.Outcome == audit.OutcomeFailed {
				// Not disabled (the portal did not take it): the record
				// expires as it is settled, so the next run that counts
				// the violations tries again instead of waiting 24 h.
				rec.ExpiresAt = s.now()
			} else {
				// disabled or refused: held for the window from the claim.
				// If this write fails, the claim expires within minutes
				// and a later run sends the disable again, which is
				// harmless (a status set twice is the same status).
				rec.ExpiresAt = now.Add(EscalationWindow)
			}
			r.settle(ctx, rec, audit.Response{Outcome: esc.Outcome, At: esc.At, Error: esc.Error})
		}
		esc.Violations = n
		s.log().Info("enforcement escalation", "userId", uid, "violations", n, "outcome", esc.Outcome, "error", esc.Error)
		for i := range r.fs {
			id := r.fs[i].EventID
			if resp := r.fs[i].Response; resp != nil && ipguard.CanonicalUserID(r.fs[i].UserID) == uid && (slices.Contains(enforced[uid], id) || slices.Contains(recorded[uid], id)) {
				e := esc
				resp.Escalation = &e
			}
		}
	}
}

// confirmDisabled reads the status of userID after its disable failed
// (esc): the portal may have applied it and the answer been lost (no
// answer, a 5xx after sending, the budget ran out). When the portal shows
// the user disabled, the outcome is disabled (held EscalationWindow like
// any other, so it is not sent again, nor again at once after an admin
// re-enabled the user); otherwise, or when the read fails, it stays
// failed. The read is given recordGrace of its own, as the budget may be
// what ran out.
func (r *run) confirmDisabled(ctx context.Context, userID string, esc audit.Escalation) audit.Escalation {
	s := r.s
	cctx, cancel := pastBudget(ctx)
	defer cancel()
	disabled, err := s.Portal.UserDisabled(cctx, userID)
	switch {
	case err != nil:
		esc.Error += "; whether the portal disabled the user could not be read: " + err.Error()
	case disabled:
		s.log().Info("enforcement: a failed disable is confirmed by the user's status", "userId", userID, "error", esc.Error)
		esc = audit.Escalation{Outcome: audit.OutcomeDisabled, At: s.now().Format(time.RFC3339)}
	}
	return esc
}

// EventKey is the record key of acting on login event id.
func EventKey(id int64) string { return "event#" + strconv.FormatInt(id, 10) }

// DisableKey is the record key of disabling userID.
func DisableKey(userID string) string { return "disable#" + userID }

func newToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand never fails on supported platforms
	return hex.EncodeToString(b)
}
