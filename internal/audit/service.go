package audit

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"ipguard/internal/allowlist"
	"ipguard/internal/ipguard"
	"ipguard/internal/lease"
)

// Source is the portal's login history.
type Source interface {
	// LoginEvents returns one page of events, newest first, with date ≥ from
	// as the server applies it.
	LoginEvents(ctx context.Context, from time.Time, startIndex, count int) ([]ipguard.LoginEvent, error)
}

// Store is the audit's state in the source of truth.
type Store interface {
	Users(ctx context.Context, ids []string) (map[string]ipguard.User, error)
	AllUsers(ctx context.Context) ([]ipguard.User, error)
	Checkpoint(ctx context.Context) (time.Time, bool, error)
	SetCheckpoint(ctx context.Context, t time.Time) error
	Alerted(ctx context.Context, ids []int64, now time.Time) (map[int64]bool, error)
	RecordAlerted(ctx context.Context, ids []int64, at time.Time, keep time.Duration) error
}

// Publisher sends one alert message.
type Publisher interface {
	Publish(ctx context.Context, a ipguard.Alert) (string, error)
}

// LeaseName is the lease one audit run holds for its whole length.
const LeaseName = "audit"

// PageSize is the largest page the login filter endpoint serves.
const PageSize = 100

// Settings configure a Service.
type Settings struct {
	Portal          string        // the portal URL, named in alerts
	Overlap         time.Duration // re-read this much before the checkpoint
	Lookback        time.Duration // the first run's window
	AlertRetention  time.Duration // how long alerted event ids are remembered
	DeadlineMargin  time.Duration // stop fetching this long before the deadline
	Policy          Policy
	MaxMessageBytes int // default MaxMessageBytes
}

// Service runs audits. Source, Store, Publisher and Leases are required;
// Responder is optional (nil: findings are only alerted).
type Service struct {
	Source    Source
	Store     Store
	Publisher Publisher
	Leases    lease.Backend
	Responder Responder
	Settings  Settings
	Now       func() time.Time
	Log       *slog.Logger
}

// Result is what a run did; it is the Lambda's JSON response.
type Result struct {
	From               string         `json:"from"`
	To                 string         `json:"to"`
	Backfill           bool           `json:"backfill,omitempty"`
	EventsFetched      int            `json:"eventsFetched"`
	EventsScanned      int            `json:"eventsScanned"` // distinct events inside the window
	Counts             map[string]int `json:"counts"`        // new findings per kind
	AlreadyAlerted     int            `json:"alreadyAlerted"`
	AlertsPublished    int            `json:"alertsPublished"` // SNS messages sent
	MessageIDs         []string       `json:"messageIds,omitempty"`
	CheckpointAdvanced bool           `json:"checkpointAdvanced"`
	// SessionEnded counts the findings whose session this run ended.
	SessionEnded int `json:"sessionEnded"`
	// Responses counts this run's findings per response outcome (see Response).
	Responses map[string]int `json:"responses,omitempty"`
	// UsersDisabled counts the users this run disabled (escalation).
	UsersDisabled int      `json:"usersDisabled,omitempty"`
	Skipped       bool     `json:"skipped,omitempty"`
	SkipReason    string   `json:"skipReason,omitempty"`
	Warnings      []string `json:"warnings"`
}

// Handle decodes the invocation payload (see DecodeTrigger) and runs the audit.
func (s *Service) Handle(ctx context.Context, payload []byte, at time.Time) (Result, error) {
	t, err := DecodeTrigger(payload, at, s.now())
	if err != nil {
		return Result{}, err
	}
	return s.Run(ctx, t)
}

// Run audits one window and publishes what it finds, once.
//
// Promises: every login event of the window is evaluated or the run fails; a
// finding is published at most once across runs (event ids are recorded after
// each successful publish and dropped by later runs); the checkpoint advances
// only after everything was published and recorded; a failed run records
// nothing it did not publish and leaves the checkpoint, so the next run covers
// the gap. A run that finds another run's live lease does nothing and says so
// in its result (not an error). A backfill audits exactly its window and
// leaves the checkpoint alone.
func (s *Service) Run(ctx context.Context, t Trigger) (Result, error) {
	res := Result{Counts: map[string]int{}, Warnings: []string{}}
	for _, k := range Kinds {
		res.Counts[k] = 0
	}
	held, err := lease.Acquire(ctx, s.Leases, LeaseName, lease.Options{})
	if ipguard.ErrorCode(err) == ipguard.EConflict {
		res.Skipped, res.SkipReason = true, skipReason(t)
		s.log().Info("audit skipped", "reason", res.SkipReason)
		return res, nil
	}
	if err != nil {
		return Result{}, ipguard.Errorf(ipguard.ErrorCode(err), "audit: acquire lease: %w", err)
	}
	defer func() {
		if err := held.Release(ctx); err != nil {
			s.log().Warn("release lease", "lease", LeaseName, "error", err)
		}
	}()

	w, cp, err := s.window(ctx, t)
	if err != nil {
		return Result{}, err
	}
	res.From, res.To, res.Backfill = w.From.Format(time.RFC3339), w.To.Format(time.RFC3339), t.Backfill

	fetched, warnings, err := s.fetch(ctx, w)
	res.Warnings = append(res.Warnings, warnings...)
	if err != nil {
		return Result{}, err
	}
	res.EventsFetched = len(fetched)
	var inWindow []ipguard.LoginEvent
	for _, ev := range fetched {
		if !ev.Date.Before(w.From) && !ev.Date.After(w.To) {
			inWindow = append(inWindow, ev)
		}
	}
	sort.SliceStable(inWindow, func(i, j int) bool { return inWindow[i].Date.Before(inWindow[j].Date) })
	res.EventsScanned = len(inWindow)

	findings, err := s.evaluate(ctx, inWindow)
	if err != nil {
		return Result{}, err
	}
	findings, res.AlreadyAlerted, err = s.dropAlerted(ctx, findings)
	if err != nil {
		return Result{}, err
	}
	for _, f := range findings {
		res.Counts[f.Kind]++
	}
	notices := s.respond(ctx, findings, t.Backfill, &res)

	if err := s.publish(ctx, w, findings, notices, &res); err != nil {
		return Result{}, err
	}
	if !t.Backfill && w.To.After(cp) {
		if err := s.Store.SetCheckpoint(ctx, w.To); err != nil {
			return Result{}, ipguard.Errorf(ipguard.ErrorCode(err), "audit: alerts sent, but the checkpoint could not be saved (the next run re-reads this window; alerted events are not sent again): %w", err)
		}
		res.CheckpointAdvanced = true
	}
	for _, warn := range res.Warnings {
		s.log().Warn("audit warning", "warning", warn)
	}
	s.log().Info("audit done", "from", res.From, "to", res.To, "eventsScanned", res.EventsScanned,
		"counts", res.Counts, "alreadyAlerted", res.AlreadyAlerted, "alertsPublished", res.AlertsPublished)
	return res, nil
}

// skipReason says what a run that found the lease held leaves behind. The
// holder may be a scheduled run or a backfill, which covers only its own
// window; either way the checkpoint did not move for this run, so the next
// scheduled run reads from it.
func skipReason(t Trigger) string {
	if t.Backfill {
		return "another audit run (scheduled or a backfill) holds the lease; this backfill did nothing: invoke it again when that run has ended"
	}
	return "another audit run (scheduled or a backfill) holds the lease; this run did nothing and left the checkpoint, so the next scheduled run reads from it"
}

// window is [checkpoint − overlap, trigger time], or the lookback on the
// first run, or the backfill's exact span. It also returns the checkpoint.
//
// The first run anchors the checkpoint at the start of its window before it
// does anything else: if that run fails, the next one still starts there
// instead of a fresh lookback that would leave a gap.
func (s *Service) window(ctx context.Context, t Trigger) (Window, time.Time, error) {
	cp, ok, err := s.Store.Checkpoint(ctx)
	if err != nil {
		return Window{}, time.Time{}, ipguard.Errorf(ipguard.ErrorCode(err), "audit: read checkpoint: %w", err)
	}
	if t.Backfill {
		return Window{From: t.From, To: t.To}, cp, nil
	}
	w := Window{To: t.To, From: t.To.Add(-s.Settings.Lookback)}
	if ok {
		w.From = cp.Add(-s.Settings.Overlap)
	} else {
		cp = w.From.Add(s.Settings.Overlap)
		if err := s.Store.SetCheckpoint(ctx, cp); err != nil {
			return Window{}, time.Time{}, ipguard.Errorf(ipguard.ErrorCode(err), "audit: anchor the first checkpoint: %w", err)
		}
	}
	if w.From.After(w.To) {
		w.From = w.To.Add(-s.Settings.Overlap)
	}
	return w, cp, nil
}

// fetch walks the login filter pages from the newest, sending only from. The
// server may apply its filters inside each page, so the walk stops only at a
// short page or at a page whose oldest event is before the window; events are
// de-duplicated by id (offset paging over a live list repeats rows).
func (s *Service) fetch(ctx context.Context, w Window) ([]ipguard.LoginEvent, []string, error) {
	var warnings []string
	fctx := ctx
	if dl, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		fctx, cancel = context.WithDeadline(ctx, dl.Add(-s.margin(dl)))
		defer cancel()
	}
	seen := map[int64]bool{}
	var out []ipguard.LoginEvent
	for page, start := 0, 0; ; page, start = page+1, start+PageSize {
		if fctx.Err() != nil {
			return nil, warnings, s.budgetErr(page, w)
		}
		evs, err := s.Source.LoginEvents(fctx, w.From, start, PageSize)
		if err != nil {
			if fctx.Err() != nil && ctx.Err() == nil {
				return nil, warnings, s.budgetErr(page, w)
			}
			return nil, warnings, ipguard.Errorf(ipguard.ErrorCode(err),
				"audit: read login events (page %d, startIndex %d); nothing was published and the checkpoint was left for the next run: %w", page+1, start, err)
		}
		fresh := 0
		for _, ev := range evs {
			if !seen[ev.ID] {
				seen[ev.ID] = true
				out = append(out, ev)
				fresh++
			}
		}
		if len(evs) < PageSize {
			if page == 0 && len(evs) > 0 {
				if warn, err := s.probeFallback(fctx, w, evs); err != nil {
					return nil, warnings, err
				} else if warn != "" {
					warnings = append(warnings, warn)
				}
			}
			return out, warnings, nil
		}
		if fresh == 0 {
			warnings = append(warnings, "the portal returned the same page of login events again: it seems to ignore paging, so older events of the window may be missing")
			return out, warnings, nil
		}
		if evs[len(evs)-1].Date.Before(w.From) {
			return out, warnings, nil // newest first: every later page is older still
		}
	}
}

// probeFallback asks for the page after a short first page. A portal whose
// plan lacks the audit feature answers every query with the same 20 newest
// events; an honest one answers with nothing.
func (s *Service) probeFallback(ctx context.Context, w Window, first []ipguard.LoginEvent) (string, error) {
	next, err := s.Source.LoginEvents(ctx, w.From, PageSize, PageSize)
	if err != nil {
		return "", ipguard.Errorf(ipguard.ErrorCode(err), "audit: read login events (paging check): %w", err)
	}
	ids := map[int64]bool{}
	for _, ev := range first {
		ids[ev.ID] = true
	}
	for _, ev := range next {
		if ids[ev.ID] {
			return "plan fallback: the portal answers the login filter with the same newest events whatever the paging (its plan lacks the audit feature), so logins of this window may be missing; upgrade the plan or audit more often", nil
		}
	}
	return "", nil
}

// margin is DeadlineMargin, but never more than a quarter of the time left,
// so that a function with a short timeout still gets to read.
func (s *Service) margin(deadline time.Time) time.Duration {
	m := s.Settings.DeadlineMargin
	if q := time.Until(deadline) / 4; m > q {
		m = q
	}
	return m
}

func (s *Service) budgetErr(page int, w Window) error {
	return &ipguard.Error{Code: ipguard.EUnavailable, Err: context.DeadlineExceeded, Message: fmt.Sprintf(
		"audit: ran out of time reading login events (stopped before page %d, keeping a margin before the Lambda deadline); nothing was published or recorded and the checkpoint was left where it was, so the next run covers this window",
		page+1)}
}

func (s *Service) evaluate(ctx context.Context, events []ipguard.LoginEvent) ([]Finding, error) {
	var ids []string
	seen := map[string]bool{}
	for _, ev := range events {
		id := ipguard.CanonicalUserID(ev.UserID)
		if IsSuccessfulLogin(ev.ActionID) && id != "" && !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	users := map[string]ipguard.User{}
	if len(ids) > 0 {
		var err error
		if users, err = s.Store.Users(ctx, ids); err != nil {
			return nil, ipguard.Errorf(ipguard.ErrorCode(err), "audit: load allowlists: %w", err)
		}
	}
	anyUser := func() (allowlist.Set, error) {
		all, err := s.Store.AllUsers(ctx)
		if err != nil {
			return allowlist.Set{}, ipguard.Errorf(ipguard.ErrorCode(err), "audit: load all allowlists: %w", err)
		}
		var entries []allowlist.Entry
		for _, u := range all {
			es, err := allowlist.ParseStored(u.Entries)
			if err != nil {
				return allowlist.Set{}, ipguard.Errorf(ipguard.EInternal, "user %s: %w", u.ID, err)
			}
			entries = append(entries, es...)
		}
		return allowlist.NewSet(entries), nil
	}
	lists, err := NewAllowlists(users, anyUser)
	if err != nil {
		return nil, err
	}
	return Evaluate(events, lists, s.Settings.Policy)
}

func (s *Service) dropAlerted(ctx context.Context, fs []Finding) ([]Finding, int, error) {
	if len(fs) == 0 {
		return nil, 0, nil
	}
	var ids []int64
	for _, f := range fs {
		ids = append(ids, f.ids()...)
	}
	alerted, err := s.Store.Alerted(ctx, ids, s.now())
	if err != nil {
		return nil, 0, ipguard.Errorf(ipguard.ErrorCode(err), "audit: read alerted events: %w", err)
	}
	kept, dropped := dropAlerted(fs, alerted)
	return kept, dropped, nil
}

// publish sends the alert messages and records each message's event ids
// right after it was accepted.
func (s *Service) publish(ctx context.Context, w Window, fs []Finding, notices []string, res *Result) error {
	max := s.Settings.MaxMessageBytes
	if max <= 0 {
		max = MaxMessageBytes
	}
	batches, err := RenderAlerts(s.Settings.Portal, w, fs, max, notices...)
	if err != nil {
		return err
	}
	for i, b := range batches {
		id, err := s.Publisher.Publish(ctx, b.Alert)
		if err != nil {
			return ipguard.Errorf(ipguard.ErrorCode(err), "audit: publish alert %d of %d (%d findings); its events were not recorded and the checkpoint was left, so the next run sends them: %w",
				i+1, len(batches), len(b.Findings), err)
		}
		res.AlertsPublished++
		res.MessageIDs = append(res.MessageIDs, id)
		if err := s.Store.RecordAlerted(ctx, b.EventIDs, s.now(), s.Settings.AlertRetention); err != nil {
			return ipguard.Errorf(ipguard.ErrorCode(err), "audit: alert %d of %d was published but its events could not be recorded as alerted; the next run may send them again: %w",
				i+1, len(batches), err)
		}
	}
	return nil
}

// respond lets the Responder act on the findings and counts its outcomes.
// Its notices also become warnings of the result.
func (s *Service) respond(ctx context.Context, fs []Finding, backfill bool, res *Result) []string {
	if s.Responder == nil || len(fs) == 0 {
		return nil
	}
	notices := s.Responder.Respond(ctx, fs, backfill)
	res.Warnings = append(res.Warnings, notices...)
	disabled := map[string]bool{}
	for _, f := range fs {
		r := f.Response
		if r == nil {
			continue
		}
		if res.Responses == nil {
			res.Responses = map[string]int{}
		}
		res.Responses[r.Outcome]++
		if r.Outcome == OutcomeEnded {
			res.SessionEnded++
		}
		if r.Escalation != nil && r.Escalation.Outcome == OutcomeDisabled && !disabled[f.UserID] {
			disabled[f.UserID] = true
			res.UsersDisabled++
		}
	}
	return notices
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Service) log() *slog.Logger { return ipguard.LoggerOrDiscard(s.Log) }
