package audit

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"ipguard/internal/humantext"
	"ipguard/internal/ipguard"
	"ipguard/internal/lease"
)

// Source is the portal's login history.
type Source interface {
	// LoginEvents returns one page: at most count (1..100) events dated ≥
	// from, skipping startIndex newer ones, newest first by date (second
	// precision). Rows of one second come in any order, possibly a different
	// one on each call, and rows inserted meanwhile shift every position
	// down. An event that cannot be decoded comes in its place with
	// Unreadable set; only a failed request is an error (classified).
	LoginEvents(ctx context.Context, from time.Time, startIndex, count int) ([]ipguard.LoginEvent, error)
}

// PortalClock is the portal's clock as its answers tell it.
type PortalClock interface {
	// ServerDate returns the HTTP Date of the portal's latest answer and the
	// local time that answer arrived; both zero before any answer with one.
	ServerDate() (date, receivedAt time.Time)
}

// Store is the audit's state in the source of truth. Every method returns a
// classified error (EUnavailable when the store fails, EConfig when the
// table is missing).
type Store interface {
	// Users returns the stored users among ids (canonical user ids); ids with
	// no user are absent. A user whose item cannot be decoded comes back with
	// Unreadable set instead of failing the call.
	Users(ctx context.Context, ids []string) (map[string]ipguard.User, error)
	// AllUsers returns every stored user (same rule for unreadable items);
	// every write completed before the call is seen.
	AllUsers(ctx context.Context) ([]ipguard.User, error)
	// Progress returns the saved progress: the zero value before the first
	// run. Strongly consistent.
	Progress(ctx context.Context) (ipguard.AuditProgress, error)
	// SetProgress replaces the saved progress. The caller holds the lease.
	SetProgress(ctx context.Context, p ipguard.AuditProgress) error
	// Alerted reports which ids have an alerted record that has not expired
	// at now. An unreadable record counts as not alerted.
	Alerted(ctx context.Context, ids []int64, now time.Time) (map[int64]bool, error)
	// RecordAlerted records the ids as alerted at at, for keep. Idempotent;
	// on error some ids may be recorded.
	RecordAlerted(ctx context.Context, ids []int64, at time.Time, keep time.Duration) error
	// AlertedSpans returns, per address, the spans whose failed logins from
	// that address were alerted as a burst and are remembered at now.
	AlertedSpans(ctx context.Context, ips []string, now time.Time) (map[string][]ipguard.TimeSpan, error)
	// RecordAlertedSpan remembers for keep that every failed login from ip
	// dated within span was alerted: one write, whatever the burst's size.
	RecordAlertedSpan(ctx context.Context, ip string, span ipguard.TimeSpan, at time.Time, keep time.Duration) error
	// RecordFailures remembers, for keep after each one's last date, the
	// failed logins from whole addresses, merged with what is stored for
	// the same address and time bucket (ipguard.MergeAddressFailures: the
	// larger count, the wider span, the accounts' and the counted seconds
	// united).
	// Storage is bounded: a few items per time bucket, each holding at most
	// a fixed number of addresses (those with fewer failures give way).
	// forgotten is how many addresses this write left out of the items it
	// wrote (they gave way), 0 when every address is kept: their failed
	// logins no longer reach a later run's correlation.
	RecordFailures(ctx context.Context, fs []ipguard.AddressFailures, keep time.Duration) (forgotten int, err error)
	// AllowlistHistory returns the allowlist histories of the users among
	// ids that have one (see ipguard.AllowlistHistory).
	AllowlistHistory(ctx context.Context, ids []string) (map[string]ipguard.AllowlistHistory, error)
	// Failures returns, per address among ips, the remembered failed logins
	// whose last date lies in [from, to], one record per time bucket (each
	// record's First and Last lie within one bucket of FailureBucket, so a
	// rule over GUESS_WINDOW can tell which failed logins lie before a
	// login and within the window; see guess.go and burst.go).
	Failures(ctx context.Context, ips []string, from, to time.Time) (map[string][]ipguard.AddressFailures, error)
	// AccountHashKey returns the deployment's key for the hash the
	// failures records keep accounts under (guess.go accountHash): at
	// least 16 random bytes, made at the first call and the same for
	// every later call of every run. Never derived from the API key.
	AccountHashKey(ctx context.Context) ([]byte, error)
}

// Publisher sends one alert message.
type Publisher interface {
	// Publish sends a once and returns its message id. It makes one
	// attempt and never resends on its own after a lost answer (the audit
	// records what was accepted right after each call). An error is
	// classified: EInternal for
	// an alert the topic would refuse (rendered wrongly), EConfig for a
	// missing or refused topic, EUnavailable when the service failed or did
	// not answer (the message may or may not have gone out).
	Publish(ctx context.Context, a ipguard.Alert) (string, error)
}

// Archiver keeps the login events the audit reads (the login archive).
type Archiver interface {
	// Archive stores evs, the readable events dated within span (From
	// exclusive, To inclusive), as one piece of work of the audit window
	// that starts at window (its cursor's From). Writing the same span of
	// the same window again replaces what the earlier write stored (a
	// retried run, whose pieces may be smaller: see loginarchive); a piece
	// of another window never replaces what this one stored. A failure is
	// classified.
	Archive(ctx context.Context, window time.Time, span ipguard.TimeSpan, evs []ipguard.LoginEvent) error
}

// DigestMessagePrefix begins the id a Publisher answers for a batch it
// adds to the daily digest instead of sending (package digest): counted in
// Result.AlertsToDigest, not in AlertsPublished.
const DigestMessagePrefix = "digest:"

// LeaseName is the lease one audit run holds for its whole length.
const LeaseName = "audit"

// PageSize is the largest page the login filter endpoint serves.
const PageSize = 100

// Defaults of Settings.
const (
	DefaultConcurrency = 4
	DefaultPieceEvents = 2000
	// publishMargin: no message is published with less time than this (or
	// half of DeadlineMargin, if less) left before the Lambda deadline,
	// so a publish is never cut off half-way with its record unwritten.
	publishMargin = 3 * time.Second
)

// Settings configure a Service.
type Settings struct {
	Portal          string        // the portal URL, named in alerts
	Overlap         time.Duration // re-read this much before the checkpoint
	Lookback        time.Duration // the first run's window
	AlertRetention  time.Duration // how long alerted event ids are remembered
	DeadlineMargin  time.Duration // stop reading this long before the deadline
	Policy          Policy
	MaxMessageBytes int // default MaxMessageBytes
	// Concurrency is how many pages may be in flight at once (default 4;
	// 1 reads strictly one page after the other).
	Concurrency int
	// PieceEvents is how many events the audit evaluates, alerts and commits
	// at a time (default 2000); memory stays in proportion to it.
	PieceEvents int
	// GuessWindow is GUESS_WINDOW: a successful login is
	// password_guess_succeeded when failed logins from its address lie
	// within this long before it (default DefaultGuessWindow), whatever
	// the run's window and however the walk cut it into pieces and runs;
	// failed logins are remembered across runs for this long.
	GuessWindow time.Duration
	// BurstWindow is SPRAY_WINDOW for failed_login_burst: the threshold's
	// failed logins from one address count within this long (in steps of
	// FailureBucket), across runs (default DefaultBurstWindow; see
	// burst.go).
	BurstWindow time.Duration
}

// DefaultGuessWindow is Settings.GuessWindow's default (GUESS_WINDOW's).
const DefaultGuessWindow = 15 * time.Minute

func (s *Service) guessWindow() time.Duration {
	if s.Settings.GuessWindow > 0 {
		return s.Settings.GuessWindow
	}
	return DefaultGuessWindow
}

// Service runs audits. Source, Store, Publisher and Leases are required;
// Responder is optional (nil: findings are only alerted).
type Service struct {
	Source Source
	// Clock, optional, measures the portal's clock against ours after each
	// run (a skew over half the overlap is a warning).
	Clock PortalClock
	// Retention, optional, says how long the portal keeps its login
	// history: a window reaching further back is lost coverage (coverage.go).
	Retention HistoryRetention
	Store     Store
	Publisher Publisher
	Leases    lease.Backend
	Responder Responder
	// Behaviour (optional) judges logins by each user's learned normal.
	Behaviour Behaviour
	// Archive, optional, keeps every login a scheduled run newly passes
	// (see piecer.archive); backfills stay out of it.
	Archive Archiver
	// People (optional) looks up the user type of people without an
	// allowlist whose logins go to the digest (people.go).
	People   People
	Settings Settings
	Now      func() time.Time
	// Log receives the run's log lines (wiring.NewLogger adds the request id
	// from the context they are logged with); nil discards them.
	Log *slog.Logger
}

// Result is what a run did; it is the Lambda's JSON response. Field names
// are stable (metrics and alarms read them).
type Result struct {
	From     string `json:"from"`
	To       string `json:"to"`
	Backfill bool   `json:"backfill,omitempty"`
	// Complete is false when the run stopped at its deadline margin with
	// events still to read; the next run goes on from the saved cursor (a
	// backfill: invoke again with "to" set to ResumeBelow). A skipped run
	// (another run held the lease) read nothing and is never Complete.
	Complete      bool `json:"complete"`
	PagesFetched  int  `json:"pagesFetched"`  // requests to the login filter
	PagesReread   int  `json:"pagesReread"`   // of those, pages read again because a continuity check failed
	EventsFetched int  `json:"eventsFetched"` // rows received, all pages
	EventsScanned int  `json:"eventsScanned"` // distinct events of the window evaluated
	// Counts are the new findings per kind, Severities per severity.
	Counts          map[string]int `json:"counts"`
	Severities      map[string]int `json:"severities"`
	AlreadyAlerted  int            `json:"alreadyAlerted"`
	AlertsPublished int            `json:"alertsPublished"` // SNS messages sent
	// AlertsToDigest counts the batches the daily digest took instead of a
	// message (their id, DigestMessagePrefix+day, is among MessageIDs).
	AlertsToDigest int      `json:"alertsToDigest,omitempty"`
	MessageIDs     []string `json:"messageIds,omitempty"`
	// CheckpointAdvanced says a whole window was finished and Until moved.
	CheckpointAdvanced bool `json:"checkpointAdvanced"`
	// SafeUntil: every event dated up to this instant is done (read,
	// evaluated, alerted, recorded). now − SafeUntil is the audit's lag.
	SafeUntil string `json:"safeUntil,omitempty"`
	// ResumeBelow is where an incomplete window goes on (events dated up to
	// it, from From, are still to read).
	ResumeBelow string `json:"resumeBelow,omitempty"`
	// PortalClockSkew is the portal's clock minus ours, from its HTTP Date.
	PortalClockSkew string `json:"portalClockSkew,omitempty"`
	// CoverageLost counts the coverage_lost findings this run sent (one per
	// cause and episode; an episode already alerted is not counted again).
	CoverageLost int `json:"coverageLost"`
	// LoginsNotEvaluated is how many logins of this run's windows could not
	// be evaluated (an upper bound where a flood made it uncertain; a cause
	// of unknown extent, such as the plan fallback, counts 1): 0 exactly
	// when the run lost no coverage. The CoverageLost metric carries it.
	LoginsNotEvaluated int `json:"loginsNotEvaluated"`
	// UnreadSecond, when set, is the second this run stopped at because it
	// could not see every row of it: the cursor stays there and the next
	// run reads it again with twice the requests.
	UnreadSecond *UnreadSecond `json:"unreadSecond,omitempty"`
	// RunsWithoutProgress is how many runs in a row, this one included,
	// ended without moving the cursor while logins wait below it (cut off
	// by the function timeout, failed, or stopped at the deadline margin
	// before a piece was finished): 0 when this run moved it, finished its
	// window or waits at an unread second. From NoProgressRuns on it is
	// lost coverage (cause no_progress).
	RunsWithoutProgress int `json:"runsWithoutProgress"`
	// PieceEvents is the piece size this run began with when runs without
	// progress made it smaller than Settings.PieceEvents (cursor Piece).
	PieceEvents int `json:"pieceEvents,omitempty"`
	// SessionEnded counts the findings whose session this run ended.
	SessionEnded int `json:"sessionEnded"`
	// Responses counts this run's findings per response outcome (see Response).
	Responses map[string]int `json:"responses,omitempty"`
	// UsersDisabled counts the users this run disabled (escalation).
	UsersDisabled int      `json:"usersDisabled,omitempty"`
	Skipped       bool     `json:"skipped,omitempty"`
	SkipReason    string   `json:"skipReason,omitempty"`
	Warnings      []string `json:"warnings"`
	WarningCount  int      `json:"warningCount"`

	// NotMessaged counts the findings (in Counts too) below
	// BEHAVIOUR_MIN_SEVERITY: logged and kept for the digest, sent in no message.
	NotMessaged int `json:"notMessaged,omitempty"`
	// BehaviourReasons counts, per behaviour rule, the findings that have it
	// among their reasons (a login outside its allowlist that is also
	// impossible travel is counted under ip_not_allowed in Counts, and here).
	BehaviourReasons map[string]int `json:"behaviourReasons,omitempty"`
}

// Handle decodes the invocation payload (see DecodeTrigger) and runs the audit.
func (s *Service) Handle(ctx context.Context, payload []byte, at time.Time) (Result, error) {
	t, err := DecodeTrigger(payload, at, s.now())
	if err != nil {
		return Result{}, err
	}
	return s.Run(ctx, t)
}

// Run audits from the saved progress up to the trigger's time (or exactly a
// backfill's window) and publishes what it finds. A run that fails returns
// a Result that holds only what it did at the portal (SessionEnded,
// UsersDisabled) with the error.
//
// Promises (docs/audit-progress.md draws them):
//   - Every login event of the audited span is handed to the evaluation once
//     per window; none is skipped. Pages overlap and every boundary is
//     checked; a boundary that cannot be proved is read again.
//   - Work is committed in pieces: after each piece (Settings.PieceEvents
//     events) its findings are published, recorded and the cursor saved, so
//     a run that reaches its deadline margin keeps what it did, returns
//     Complete false, and the next run continues below the cursor. The
//     cursor never claims an event that was not read.
//   - Alert guarantee, exactly: at least once, and at most once except in
//     two windows. A message is recorded right after SNS accepted it and
//     before the next one is sent; the publisher does not resend. (1) If SNS
//     accepted a message but its answer was lost, the run fails without
//     recording it and the next run sends those findings again (one
//     duplicate message). (2) If the record write fails after an accepted
//     publish, the run fails and the next run sends them again. Nothing
//     else sends twice; no message is started with less than 3 s left
//     (half of DeadlineMargin when that is less; at most the margin the
//     walk keeps, see publishFloor).
//   - A failed run loses nothing: what it committed stays, the rest is read
//     again by the next run.
//   - No run leaves the next one where it was itself: a run is counted at
//     the cursor before it reads (cursor Attempts), so a run that moves
//     nothing, even one cut off by the function timeout, makes the next
//     one's pieces a quarter of the size, down to one band of a page: runs
//     that can each finish one band make progress. A run that moves
//     nothing tells so (RunsWithoutProgress), and from NoProgressRuns in a
//     row that is lost coverage (no_progress), sent before reading.
//   - A run that finds another run's live lease does nothing and says so in
//     its result (not an error). A backfill audits exactly its window and
//     leaves the progress alone.
func (s *Service) Run(ctx context.Context, t Trigger) (Result, error) {
	res := Result{Counts: map[string]int{}, Severities: map[string]int{}, Warnings: []string{}, Complete: true}
	for _, k := range Kinds {
		res.Counts[k] = 0
	}
	for _, sv := range Severities {
		res.Severities[sv] = 0
	}
	log := s.log(ctx)
	held, err := lease.Acquire(ctx, s.Leases, LeaseName, lease.Options{})
	if ipguard.ErrorCode(err) == ipguard.EConflict {
		res.Skipped, res.SkipReason, res.Complete = true, skipReason(t), false
		log.InfoContext(ctx, "audit skipped", "reason", res.SkipReason)
		return res, nil
	}
	if err != nil {
		return Result{}, ipguard.Errorf(ipguard.ErrorCode(err), "audit: acquire lease: %w", err)
	}
	defer func() {
		if err := held.Release(ctx); err != nil {
			log.WarnContext(ctx, "release lease", "lease", LeaseName, "error", err)
		}
	}()

	r := &run{s: s, ctx: ctx, res: &res, log: log, backfill: t.Backfill, seenWarn: map[[32]byte]bool{}}
	if t.Backfill {
		err = r.runBackfill(t)
	} else {
		err = r.scheduled(t)
	}
	s.clockSkew(ctx, r)
	if err == nil {
		// Lost coverage is a finding of its own, sent once per episode.
		switch cerr := r.publishCoverage(ctx); {
		case errors.Is(cerr, errOutOfTime):
			r.warn("the deadline came before the lost-coverage alert could be sent; it stays recorded as due and the next run sends it")
		case cerr != nil:
			err = cerr
		}
	} else {
		// The run failed: what an earlier run recorded as due is sent all
		// the same (its cursor is past the logins concerned; nothing this
		// run did changes it), so that an outage does not hold it back.
		r.sendDue(ctx)
	}
	if more := r.warnings - len(res.Warnings); more > 0 {
		res.Warnings = append(res.Warnings, fmt.Sprintf("... and %d more warnings (each is in the log)", more))
	}
	res.WarningCount = r.warnings
	if err != nil {
		// What the run did at the portal before it failed stays counted:
		// its retry answers those findings from the records and does not
		// count them again (Response.Recorded).
		return Result{SessionEnded: res.SessionEnded, UsersDisabled: res.UsersDisabled}, err
	}
	log.InfoContext(ctx, "audit done", "from", res.From, "to", res.To, "complete", res.Complete, "pagesFetched", res.PagesFetched,
		"eventsScanned", res.EventsScanned, "counts", res.Counts, "alreadyAlerted", res.AlreadyAlerted,
		"alertsPublished", res.AlertsPublished, "safeUntil", res.SafeUntil, "warnings", res.WarningCount)
	return res, nil
}

// skipReason says what a run that found the lease held leaves behind. The
// holder may be a scheduled run or a backfill, which covers only its own
// window; either way the progress did not move for this run, so the next
// scheduled run reads from it.
func skipReason(t Trigger) string {
	if t.Backfill {
		return "another audit run (scheduled or a backfill) holds the lease; this backfill did nothing: invoke it again when that run has ended"
	}
	return "another audit run (scheduled or a backfill) holds the lease; this run did nothing and left the checkpoint, so the next scheduled run reads from it"
}

// run is the state of one Run.
type run struct {
	s        *Service
	ctx      context.Context
	res      *Result
	log      *slog.Logger
	backfill bool
	meta     Meta
	prog     ipguard.AuditProgress
	seenWarn map[[32]byte]bool
	warnings int             // distinct warnings, listed or not
	disabled map[string]bool // users counted in UsersDisabled
	lost     map[string]*lostCoverage
	// responder is this run's responses (started at the first piece).
	responder RunResponder
	// userTypes caches the user types People reported in this run (""
	// when unknown), userTypeLookups counts its requests (people.go).
	userTypes       map[string]string
	userTypeLookups int
	// userTypesStopped: a piece's lookups ran out of their time; the run
	// looks up no more (people.go).
	userTypesStopped bool
	// accountKey is Store.AccountHashKey, read once per run.
	accountKey []byte

	// counted: this run is counted in the cursor's Attempts (see
	// countAttempt); progressed: it moved the cursor or finished a window;
	// pieces: the pieces it committed in the current window.
	counted, progressed bool
	pieces              int
	// stuck: this run raised no_progress at its start (countAttempt).
	stuck bool
	// asTheyStand: an earlier run began at this cursor and did not move it
	// (countAttempt): every piece of this run is its last (Piece.Last), so
	// the Behaviour holds nothing for a last piece this run may never reach
	// either. Held logins would keep the cursor above them (Holder), and a
	// piece below them that fails in every run would keep them unsent for
	// good; judged as they stand, they are sent and the cursor moves down
	// to the failing piece. Only for the cursor's window: the next window
	// the run walks is judged in order again (scheduled clears it).
	asTheyStand bool
	// reserve is the deadline margin the current window's walk keeps for
	// finishing what it read (see Service.budget).
	reserve time.Duration
	// lifetime is the portal's login history lifetime, once read (-1: it
	// could not be read in this run).
	lifetime time.Duration
}

// warn records msg as one safe line (humantext.Line, at most
// maxWarningBytes) in the result and the log, once per run.
func (r *run) warn(msg string) {
	msg = humantext.Line(msg, maxWarningBytes)
	h := sha256.Sum256([]byte(msg))
	if r.seenWarn[h] {
		return
	}
	r.seenWarn[h] = true
	r.warnings++
	if len(r.res.Warnings) < maxResultWarnings {
		r.res.Warnings = append(r.res.Warnings, msg)
	}
	r.log.WarnContext(r.ctx, "audit warning", "warning", msg)
}

// maxResultWarnings bounds the warnings listed in a result (each one is
// logged, and warningCount counts them all), so that a window full of
// unreadable events cannot make the Lambda response too large.
const maxResultWarnings = 100

// maxWarningBytes bounds one warning.
const maxWarningBytes = 1000

// scheduled works through the saved cursor, then the window up to t.To.
func (r *run) scheduled(t Trigger) error {
	s := r.s
	prog, err := s.Store.Progress(r.ctx)
	if ipguard.ErrorCode(err) == ipguard.EInternal {
		// A progress item that no longer parses must not stop every run:
		// start over like a first run, and say what may have been lost.
		msg := fmt.Sprintf("the saved progress cannot be read (%s); starting over from AUDIT_LOOKBACK (%s): logins between the lost checkpoint and then may be missing, backfill them",
			humantext.Line(err.Error(), 300), s.Settings.Lookback)
		r.warn(msg)
		prog, err = ipguard.AuditProgress{}, nil
		// Logins nobody evaluated, and nothing else says so: lost coverage
		// (sent with the run's, once per episode), not only a warning.
		start := t.To.Add(-s.Settings.Lookback)
		r.lose(lostCoverage{cause: CauseProgressLost, from: start, to: start, reason: msg + "; the lost coverage an earlier run left to send, if any, is lost with it"})
	}
	if err != nil {
		return ipguard.Errorf(ipguard.ErrorCode(err), "audit: read progress: %w", err)
	}
	if prog.Until.IsZero() && prog.Cursor == nil {
		// The first run anchors its window before anything else: if it
		// fails, the next one starts at the same place instead of a fresh
		// lookback that would leave a gap.
		// The anchor counts this run at the cursor (countAttempt).
		from := t.To.Add(-s.Settings.Lookback)
		// It carries the lost coverage met so far (an unreadable
		// progress) as due, so that a run cut off before sending it
		// leaves it to the next.
		r.prog = ipguard.AuditProgress{Until: from, Cursor: &ipguard.AuditCursor{From: from, To: t.To, Below: t.To, Attempts: 1}}
		if err := r.setProgress(r.ctx); err != nil {
			return ipguard.Errorf(ipguard.ErrorCode(err), "audit: anchor the first window: %w", err)
		}
		prog = r.prog
		r.counted = true
	}
	prog.Memory = noteRetention(prog.Memory, s.Settings.AlertRetention, s.now())
	r.prog = prog
	r.loadDue() // what an earlier run could not send, this one sends
	if !r.counted && prog.Cursor != nil {
		if err := r.countAttempt(); err != nil {
			return err
		}
	}
	r.res.SafeUntil = prog.Until.Format(time.RFC3339)
	for {
		c := r.prog.Cursor
		if c == nil {
			// Each window re-reads the overlap before the last one's end
			// (late-written events, a portal clock behind ours).
			from, to := r.prog.Until.Add(-s.Settings.Overlap), t.To
			if to.Before(r.prog.Until) {
				from = to.Add(-s.Settings.Overlap) // a trigger older than the progress: re-read, move nothing
			}
			c = &ipguard.AuditCursor{From: from, To: to, Below: to}
			r.prog.Cursor = c
		}
		w := Window{From: c.From, To: c.To}
		if r.res.From == "" {
			r.res.From = w.From.Format(time.RFC3339)
		}
		r.res.To = w.To.Format(time.RFC3339)
		complete, err := r.window(w, c.Below)
		if err != nil {
			return err
		}
		if !complete && r.res.UnreadSecond != nil {
			r.res.Complete = false
			r.res.ResumeBelow = r.prog.Cursor.Below.Format(time.RFC3339Nano)
			return nil
		}
		if !complete {
			r.res.Complete = false
			r.res.ResumeBelow = r.prog.Cursor.Below.Format(time.RFC3339Nano)
			r.warn(fmt.Sprintf("stopped at the deadline margin: events dated %s to %s are still to read; the saved cursor keeps the place and the next run continues there",
				w.From.Format(time.RFC3339), r.prog.Cursor.Below.Format(time.RFC3339)))
			return r.stoppedWithout()
		}
		r.progressed = true
		r.counted, r.pieces = false, 0 // the next window's cursor is a new one
		// No earlier run failed at the next window's cursor: its pieces
		// are judged in order again (Last only where the run stops).
		r.asTheyStand = false
		advanced := w.To.After(r.prog.Until)
		if advanced {
			r.prog = ipguard.AuditProgress{Until: w.To, Memory: r.prog.Memory, CoverageDue: r.prog.CoverageDue}
		} else {
			r.prog.Cursor = nil
		}
		if err := r.setProgress(r.ctx); err != nil {
			return ipguard.Errorf(ipguard.ErrorCode(err), "audit: the window up to %s was finished and alerted, but the progress could not be saved (the next run reads it again; alerted events are not sent again): %w", w.To.Format(time.RFC3339), err)
		}
		r.res.CheckpointAdvanced = r.res.CheckpointAdvanced || advanced
		r.res.SafeUntil = r.prog.Until.Format(time.RFC3339)
		if !w.To.Before(t.To) {
			break
		}
	}
	return nil
}

// countAttempt counts this run at the saved cursor before it reads anything
// (one write): a run cut off by the function timeout saves nothing at its
// end, so only a count made first tells the next run that this one got
// nowhere. Attempts above 0 here are runs that began at this cursor and
// did not move it: this run's pieces are a quarter of theirs. From
// NoProgressRuns of them on, the lost coverage (no_progress) is sent here,
// before reading: this run may be cut off like the ones before it.
func (r *run) countAttempt() error {
	c := r.prog.Cursor
	before := c.Attempts
	if before > 0 {
		c.Piece = smallerPiece(r.pieceLimit())
		r.asTheyStand = true
	}
	c.Attempts++
	r.counted = true
	if err := r.setProgress(r.ctx); err != nil {
		return ipguard.Errorf(ipguard.ErrorCode(err), "audit: count this run at the saved cursor (nothing was read yet): %w", err)
	}
	if before < NoProgressRuns {
		return nil
	}
	msg := fmt.Sprintf("%d audit runs in a row ended without moving the cursor (cut off by the function timeout, failed, or stopped at the deadline margin before a piece was finished) while the logins dated %s to %s wait; this run reads pieces of %d events",
		before, c.From.Format(time.RFC3339), c.Below.Format(time.RFC3339), c.Piece)
	r.warn(msg)
	r.lose(lostCoverage{cause: CauseNoProgress, from: c.From, to: c.Below, reason: msg + noProgressHint})
	r.meta = Meta{Portal: r.s.Settings.Portal, Window: Window{From: c.From, To: c.To}}
	r.reserve = r.s.margin(r.ctx) // as the walk will keep (publishFloor)
	r.stuck = true
	switch err := r.publishCoverage(r.ctx); {
	case errors.Is(err, errOutOfTime):
		// Still due (recorded): the end of this run, or the next run, sends it.
		r.warn("the deadline came before the lost-coverage alert could be sent; it stays recorded as due and the next run sends it")
	case err != nil:
		return err
	}
	return nil
}

// noProgressHint ends the reason of a no_progress finding.
const noProgressHint = ": a run cannot finish even a small piece in its time (a slow portal or table, too short a function timeout, too long an AUDIT_DEADLINE_MARGIN)"

// stoppedWithout ends a scheduled run that stopped at its deadline margin:
// if it moved nothing, the cursor says so for the next run (it is saved if
// this run was not counted at it yet: a new window's first piece was not
// reached), the result counts the runs in a row, and from NoProgressRuns on
// that is lost coverage.
func (r *run) stoppedWithout() error {
	if r.progressed {
		return nil
	}
	c := r.prog.Cursor
	if !r.counted {
		c.Attempts++
		r.counted = true
		if err := r.setProgress(r.ctx); err != nil {
			return r.deadlineOr(ipguard.Errorf(ipguard.ErrorCode(err), "audit: save the cursor of a run that moved nothing: %w", err))
		}
	}
	n := c.Attempts
	r.res.RunsWithoutProgress = n
	msg := fmt.Sprintf("this run committed nothing (%d runs in a row, this one included, ended without moving the cursor while the logins dated %s to %s wait); the next run reads pieces of %d events",
		n, c.From.Format(time.RFC3339), c.Below.Format(time.RFC3339), smallerPiece(r.pieceLimit()))
	r.warn(msg)
	if n >= NoProgressRuns && !r.stuck {
		r.lose(lostCoverage{cause: CauseNoProgress, from: c.From, to: c.Below, reason: msg + noProgressHint})
	}
	return nil
}

// NoProgressRuns is how many runs in a row that move nothing while logins
// wait are lost coverage (cause no_progress): the first makes the next
// run's pieces smaller, and the second shows that did not do.
const NoProgressRuns = 2

// pieceLimit is how many events the current window's pieces hold.
func (r *run) pieceLimit() int {
	n := r.s.pieceEvents()
	if c := r.prog.Cursor; c != nil && c.Piece > 0 && c.Piece < n {
		n = c.Piece
	}
	return n
}

// smallerPiece is the piece after a run that moved nothing: a quarter, at
// least 1 (each band the walk hands on, a page at most, is a piece then).
func smallerPiece(n int) int { return max(1, n/4) }

// growEvery: after this many pieces committed in a row, the pieces double
// again (up to Settings.PieceEvents).
const growEvery = 4

// backfill audits exactly t's window and saves no progress.
func (r *run) runBackfill(t Trigger) error {
	s := r.s
	w := Window{From: t.From, To: t.To}
	r.res.From, r.res.To, r.res.Backfill = w.From.Format(time.RFC3339), w.To.Format(time.RFC3339), true
	// The alert memory is judged by how long each record was written to
	// live (the retention history), not by ALERT_RETENTION now: raising it
	// just before a backfill does not bring expired records back.
	var hist []ipguard.RetentionSince
	if prog, err := s.Store.Progress(r.ctx); err == nil {
		hist = prog.Memory
	}
	if memory := memoryFloor(hist, s.Settings.AlertRetention, r.s.now()); s.Settings.AlertRetention > 0 && w.From.Before(memory) {
		note := fmt.Sprintf("this backfill starts at %s, before what the alert memory still holds (alert records live for the ALERT_RETENTION in force when they were written; now %s; they reach back to %s): logins before that may have been alerted already and are alerted again",
			w.From.Format(time.RFC3339), s.Settings.AlertRetention, memory.Format(time.RFC3339))
		r.warn(note)
		r.meta.Note, r.meta.MayRepeat = note, true
	}
	complete, err := r.window(w, w.To)
	if err != nil {
		return err
	}
	if !complete {
		r.res.Complete = false
		r.res.ResumeBelow = r.prog.Cursor.Below.Format(time.RFC3339Nano)
		r.warn(fmt.Sprintf("backfill stopped at the deadline margin: events dated %s to %s are still to read; invoke again with {\"from\": %q, \"to\": %q}",
			w.From.Format(time.RFC3339), r.res.ResumeBelow, w.From.Format(time.RFC3339), r.res.ResumeBelow))
	}
	return nil
}

// window walks one window from below down to its start, piece by piece, and
// reports whether it reached the start. r.prog.Cursor follows the pieces
// (saved to the store unless this is a backfill).
func (r *run) window(w Window, below time.Time) (complete bool, err error) {
	s := r.s
	if r.prog.Cursor == nil {
		r.prog.Cursor = &ipguard.AuditCursor{From: w.From, To: w.To, Below: below}
	}
	r.meta = Meta{Portal: s.Settings.Portal, Window: w, Backfill: r.backfill, Note: r.meta.Note, MayRepeat: r.meta.MayRepeat}
	if r.disabled == nil {
		r.disabled = map[string]bool{}
	}
	r.checkRetention(w.From, below)
	lists := NewAllowlists(nil, func() ([]ipguard.User, error) { return s.Store.AllUsers(r.ctx) })
	if r.accountKey == nil {
		key, err := s.Store.AccountHashKey(r.ctx)
		if err != nil {
			return false, err
		}
		r.accountKey = key
	}
	ev := NewEvaluator(lists, s.Settings.Policy)
	ev.AccountKey = r.accountKey
	ev.GuessWindow = s.guessWindow()
	ev.BurstWindow, ev.Since = s.Settings.BurstWindow, w.From
	if g := r.prog.Cursor.Guesses; g != "" {
		// An earlier run stopped at this cursor with logins above it that
		// the failed logins below it may still raise (GUESS_WINDOW).
		var fs []Finding
		if err := json.Unmarshal([]byte(g), &fs); err != nil {
			r.warn("the logins the cursor carried for the password-guess correlation cannot be read and are left out: " + humantext.Line(err.Error(), 200))
		}
		ev.SetPendingGuesses(fs)
	}
	p := piecer{run: r, lists: lists, ev: ev}
	defer func() {
		// Whatever happened, remember the failed logins this window read
		// (bounded; a failure here is only logged: the findings stand).
		// Within the run's own deadline: a run at its margin leaves the
		// last buckets unremembered (a warning) rather than time out.
		// A failure other than the deadline fails the run (unless it failed
		// already): its window is not marked done and is read again, so
		// the guesses and bursts that span the next runs are not lost
		// without anyone told.
		rctx, cancel := context.WithTimeout(r.ctx, recordTimeout)
		defer cancel()
		if rerr := p.remember(rctx, time.Time{}); rerr != nil {
			if err == nil && r.ctx.Err() == nil && rctx.Err() == nil {
				complete, err = false, ipguard.Errorf(ipguard.ErrorCode(rerr), "audit: the window's logins were evaluated and alerted, but its failed logins could not be kept for the next runs' password-guess and burst windows (the window is read again; alerted events are not sent again): %w", rerr)
				return
			}
			r.warn("the failed logins of this window could not be remembered for the next runs' password-guess correlation: " + humantext.Line(rerr.Error(), 300))
		}
	}()

	fctx, cancel, reserve := s.budget(r.ctx)
	defer cancel()
	r.reserve = reserve
	if n := r.pieceLimit(); n < s.pieceEvents() && r.res.PieceEvents == 0 {
		r.res.PieceEvents = n
	}
	wk := &walker{src: s.Source, from: w.From, size: PageSize, conc: s.concurrency(), warn: r.warn, lose: r.lose, reported: r.seenRows()}
	if c := r.prog.Cursor; c.Below.Equal(below) {
		wk.tries = c.SecondTries
	}
	var pending []ipguard.LoginEvent
	var pendingDone time.Time
	pieceStopped := false
	err = wk.walk(fctx, below, func(evs []ipguard.LoginEvent, done time.Time, final bool) error {
		pending = append(pending, evs...)
		pendingDone = done
		if final || len(pending) >= r.pieceLimit() {
			if err := p.piece(pending, done, final); err != nil {
				pieceStopped = errors.Is(err, errOutOfTime)
				return err
			}
			pending = pending[:0]
		}
		return nil
	})
	requests, rereads, rows := wk.counts()
	r.res.PagesFetched += requests
	r.res.PagesReread += rereads
	r.res.EventsFetched += rows
	switch {
	case errors.Is(err, errSecondUnread):
		// The walk handed on what it saw of a second it could not read
		// whole, with done at that second: commit it, keep the cursor
		// there, and count the try (the next run reads with twice the
		// requests).
		if !pieceStopped {
			if err := p.pieceOf(pending, pendingDone, false, true); err != nil && !errors.Is(err, errOutOfTime) {
				return false, r.deadlineOr(err)
			}
		}
		r.res.UnreadSecond = wk.unread
		if c := r.prog.Cursor; c.Below.Format(time.RFC3339) == wk.unread.Second {
			c.SecondTries = wk.tries + 1
			c.Attempts = 0 // the reads that double with each try are this cursor's progress
			if !r.backfill {
				if err := r.setProgress(r.ctx); err != nil {
					return false, ipguard.Errorf(ipguard.ErrorCode(err), "audit: save the cursor at an unread second: %w", err)
				}
			}
		}
		return false, nil
	case errors.Is(err, errOutOfTime):
		// What was read but not yet evaluated is finished inside the
		// margin, which exists for this; a deadline that comes even so
		// leaves it to the next run. The run stops after this piece
		// (Piece.Last) also when nothing was read since the last one but
		// the hook holds logins: they are judged here, and the cursor
		// passes them (else every run that stops between two pieces
		// leaves the cursor at the held logins: a stall, nothing alerted).
		if (len(pending) > 0 || p.holds()) && !pieceStopped {
			if err := p.pieceOf(pending, pendingDone, false, true); err != nil && !errors.Is(err, errOutOfTime) {
				return false, r.deadlineOr(err)
			}
		}
		return false, nil
	case err != nil:
		return false, r.deadlineOr(err)
	}
	return true, nil
}

// deadlineOr returns nil, with a warning, when err came from the run's own
// deadline (the run then ends incomplete: what was committed stays, and the
// next run goes on from there); otherwise err.
func (r *run) deadlineOr(err error) error {
	if r.ctx.Err() == nil {
		return err
	}
	r.warn("the Lambda deadline came while a piece was being finished (" + humantext.Line(err.Error(), 300) + "); what was committed stays and the next run goes on from there")
	return nil
}

// budget is ctx with its deadline moved DeadlineMargin earlier (never more
// than a quarter of the time left, so a short timeout still gets to read),
// and that margin (0 without a deadline).
func (s *Service) budget(ctx context.Context) (context.Context, context.CancelFunc, time.Duration) {
	dl, ok := ctx.Deadline()
	if !ok {
		c, cancel := context.WithCancel(ctx)
		return c, cancel, 0
	}
	m := s.margin(ctx)
	c, cancel := context.WithDeadline(ctx, dl.Add(-m))
	return c, cancel, m
}

// margin is the deadline margin a walk begun now keeps (see budget); 0
// without a deadline.
func (s *Service) margin(ctx context.Context) time.Duration {
	dl, ok := ctx.Deadline()
	if !ok {
		return 0
	}
	return min(s.Settings.DeadlineMargin, time.Until(dl)/4)
}

// publishFloor is the least time left before the deadline in which a
// message is still started: publishMargin, or half of DeadlineMargin when
// that is less, and never more than the margin the walk keeps (reserve,
// once a walk began), which is at most a quarter of the run's time: a
// margin set longer than the function's timeout does not leave the run
// without a moment to send anything in.
func (s *Service) publishFloor(reserve time.Duration) time.Duration {
	f := min(publishMargin, s.Settings.DeadlineMargin/2)
	if reserve > 0 {
		f = min(f, reserve)
	}
	return f
}

func (s *Service) concurrency() int {
	if s.Settings.Concurrency > 0 {
		return s.Settings.Concurrency
	}
	return DefaultConcurrency
}

func (s *Service) pieceEvents() int {
	if s.Settings.PieceEvents > 0 {
		return s.Settings.PieceEvents
	}
	return DefaultPieceEvents
}

// clockSkew compares the portal's clock (HTTP Date) with ours. The overlap
// re-reads events written late or stamped by a clock behind ours; a skew
// larger than half of it could let events fall between two windows.
func (s *Service) clockSkew(ctx context.Context, r *run) {
	if s.Clock == nil {
		return
	}
	portal, local := s.Clock.ServerDate()
	if portal.IsZero() || local.IsZero() {
		return
	}
	skew := portal.Sub(local).Round(time.Second)
	r.res.PortalClockSkew = skew.String()
	if abs(skew) > s.Settings.Overlap/2 {
		msg := fmt.Sprintf("the portal's clock is %s off ours (HTTP Date %s), more than half of AUDIT_OVERLAP (%s): events may fall between windows; fix the clock or raise AUDIT_OVERLAP",
			skew, portal.UTC().Format(time.RFC3339), s.Settings.Overlap)
		r.warn(msg)
		from, _ := time.Parse(time.RFC3339, r.res.From)
		to, _ := time.Parse(time.RFC3339, r.res.To)
		r.lose(lostCoverage{cause: CauseClockSkew, from: from, to: to, reason: msg})
	}
}

func abs(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Service) log(context.Context) *slog.Logger { return ipguard.LoggerOrDiscard(s.Log) }
