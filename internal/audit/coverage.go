package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"ipguard/internal/humantext"
	"ipguard/internal/ipguard"
)

// Lost coverage: logins the audit could not evaluate. For a security tool
// that is a finding, not a log line: each cause becomes one SNS message of
// its own (kind coverage_lost, severity high), sent once per episode.
//
// An episode is one stretch of runs that meet the same cause: the times of
// those runs are remembered as a span (like a burst's, for ALERT_RETENTION)
// under the key coverage/<cause>, and a run that meets the cause within
// episodeGap of the span's end belongs to it (it extends the span, one
// write, and sends nothing). A second that stays unread over several runs, a
// plan that stays without the audit feature, rows that keep coming
// unreadable: one message. An hour without the cause ends the episode.

// Causes of lost coverage.
const (
	CauseSecondUnread   = "second_unread"   // a second larger than a page not yet read whole (the cursor waits at it)
	CausePlanFallback   = "plan_fallback"   // the portal serves only its newest events
	CauseUnreadableRows = "unreadable_rows" // rows the client could not decode
	CauseClockSkew      = "clock_skew"      // the portal's clock is off by more than half the overlap
	CauseNoProgress     = "no_progress"     // NoProgressRuns runs in a row moved nothing while logins wait
	// CauseFailuresForgotten: a flood of failed logins from more addresses
	// than the bounded failures# items keep; those with the fewest gave
	// way, so the password-guess correlation across runs lost them.
	CauseFailuresForgotten = "failures_forgotten"
	// CauseProgressLost: the audit's saved progress (its checkpoint, or
	// the lost coverage an earlier run left to send) could not be read, so
	// the run started over from AUDIT_LOOKBACK or dropped what was due:
	// logins before the new window may never have been evaluated.
	CauseProgressLost = "progress_lost"
	// CauseRetentionPassed: the window reaches back past the portal's
	// login history lifetime (loginHistoryLifeTime, 1 to 180 days, which
	// an admin can lower): a daily job deletes older events, so the walk
	// may find the list shorter than it was and take the window as read.
	CauseRetentionPassed = "retention_passed"
)

// HistoryRetention is how long the portal keeps its login history.
type HistoryRetention interface {
	// LoginHistoryLifetime returns the portal's loginHistoryLifeTime
	// (classified error when it cannot be read).
	LoginHistoryLifetime(ctx context.Context) (time.Duration, error)
}

// minHistoryLifetime is the shortest login history a portal keeps (one
// day): a window that starts within it is never asked about.
const minHistoryLifetime = 24 * time.Hour

// checkRetention tells, as lost coverage, a window whose logins from
// `from` on may have been deleted by the portal before they were read:
// dated before now less the portal's login history lifetime (read once per
// run, only for a window reaching back more than a day). Such a walk ends
// early without an error, so nothing else would say that logins are
// missing. A lifetime that cannot be read is logged, and the window read as
// it is.
func (r *run) checkRetention(from, below time.Time) {
	s := r.s
	now := s.now()
	if s.Retention == nil || r.lifetime < 0 || !from.Before(now.Add(-minHistoryLifetime)) {
		return
	}
	if r.lifetime == 0 {
		d, err := s.Retention.LoginHistoryLifetime(r.ctx)
		if err != nil || d <= 0 {
			r.log.WarnContext(r.ctx, "audit: read the portal's login history lifetime", "error", err)
			r.lifetime = -1
			return
		}
		r.lifetime = d
	}
	cut := now.Add(-r.lifetime)
	if !from.Before(cut) {
		return
	}
	to := cut
	if below.Before(to) {
		to = below
	}
	msg := fmt.Sprintf("the window reaches back to %s, but the portal keeps its login history for %d days (loginHistoryLifeTime; a daily job deletes older events): logins dated %s to %s may have been deleted before the audit read them, and the walk cannot tell; raise the lifetime in the portal's settings, and audit more often than it",
		from.UTC().Format(time.RFC3339), int(r.lifetime/(24*time.Hour)), from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339))
	r.warn(msg)
	r.lose(lostCoverage{cause: CauseRetentionPassed, from: from, to: to, reason: msg})
}

// episodeGap joins occurrences of one cause into one episode.
const episodeGap = time.Hour

// lostCoverage is one occurrence of lost coverage.
type lostCoverage struct {
	cause    string
	from, to time.Time // the login dates concerned
	count    int       // logins not evaluated (0: unknown)
	upTo     bool      // count is an upper bound
	reason   string
	// rows are the unreadable rows counted (reportKey, at most
	// maxDueRows; rowsCapped: more were): recorded as due with them, so
	// that a run that reads them again (the cursor had not passed them)
	// does not count them twice.
	rows       []string
	rowsCapped bool
	// noted is when the loss was first noted (an earlier run's, for one
	// recorded as due); dueOnly: all of it comes from the due (this run
	// did not meet the cause itself).
	noted   time.Time
	dueOnly bool
}

// maxDueRows bounds the unreadable rows' keys kept with the lost coverage.
const maxDueRows = 200

// coverageKey is the remembered-span key of a cause.
func coverageKey(cause string) string { return "coverage/" + cause }

// lose collects an occurrence; occurrences of one cause in one run merge.
func (r *run) lose(l lostCoverage) {
	if r.lost == nil {
		r.lost = map[string]*lostCoverage{}
	}
	if have := r.lost[l.cause]; have != nil {
		if l.from.Before(have.from) {
			have.from = l.from
		}
		if l.to.After(have.to) {
			have.to = l.to
		}
		have.count += l.count
		have.upTo = have.upTo || l.upTo
		have.reason = l.reason
		for _, k := range l.rows {
			if len(have.rows) >= maxDueRows {
				have.rowsCapped = true
				break
			}
			have.rows = append(have.rows, k)
		}
		have.rowsCapped = have.rowsCapped || l.rowsCapped
		have.dueOnly = have.dueOnly && l.dueOnly
		if !l.noted.IsZero() && (have.noted.IsZero() || l.noted.Before(have.noted)) {
			have.noted = l.noted
		}
		if l.cause == CauseUnreadableRows {
			have.reason = fmt.Sprintf("%d login events in the portal's history could not be read (the warnings name each), so they were not evaluated", have.count)
		}
		return
	}
	if len(l.rows) > maxDueRows {
		l.rows, l.rowsCapped = l.rows[:maxDueRows], true
	}
	l.rows = append([]string(nil), l.rows...)
	if !l.dueOnly {
		l.noted = r.s.now().UTC()
	}
	r.lost[l.cause] = &l
}

// setProgress saves r.prog (the caller holds the lease) with the run's
// lost coverage as it stands recorded as due (noteDue): each save that may
// move the cursor past logins concerned carries all of it, merged
// occurrences included, serialised once per save, not per occurrence (a
// flood of unreadable rows is one lose each).
func (r *run) setProgress(ctx context.Context) error {
	r.noteDue()
	return r.s.Store.SetProgress(ctx, r.prog)
}

// dueCoverage is lostCoverage as recorded due with the progress.
type dueCoverage struct {
	Cause  string    `json:"cause"`
	From   time.Time `json:"from"`
	To     time.Time `json:"to"`
	Count  int       `json:"count,omitempty"`
	UpTo   bool      `json:"upTo,omitempty"`
	Reason string    `json:"reason"`
	// Rows and RowsCapped: lostCoverage's rows and rowsCapped.
	Rows       []string `json:"rows,omitempty"`
	RowsCapped bool     `json:"rowsCapped,omitempty"`
	// Noted is lostCoverage's noted (zero in a record written before it
	// was kept: such a record is sent unless its episode goes on).
	Noted time.Time `json:"noted,omitzero"`
}

// maxDueReason bounds each due cause's reason in the progress item.
const maxDueReason = 1000

// noteDue puts the run's lost coverage into the progress (AuditProgress.
// CoverageDue), at each save (setProgress): the write that moves the cursor
// past the logins concerned records the alert as due, before it is
// published.
func (r *run) noteDue() {
	if r.backfill {
		return // a backfill saves no progress; its caller sees its error
	}
	if len(r.lost) == 0 {
		r.prog.CoverageDue = ""
		return
	}
	due := make([]dueCoverage, 0, len(r.lost))
	for _, l := range r.lost {
		reason := l.reason
		if len(reason) > maxDueReason {
			reason = humantext.Line(reason, maxDueReason)
		}
		due = append(due, dueCoverage{Cause: l.cause, From: l.from.UTC(), To: l.to.UTC(), Count: l.count, UpTo: l.upTo, Reason: reason,
			Rows: l.rows, RowsCapped: l.rowsCapped, Noted: l.noted})
	}
	sort.Slice(due, func(i, j int) bool { return due[i].Cause < due[j].Cause })
	b, err := json.Marshal(due)
	if err != nil {
		return // plain fields: cannot fail
	}
	r.prog.CoverageDue = string(b)
}

// loadDue takes the lost coverage an earlier run recorded as due and did
// not send (its publish failed, or it was cut off) into this run's, which
// sends it (once per episode, as every lost coverage). An unreadable record
// is a warning: it cannot be sent, and the run goes on.
func (r *run) loadDue() {
	if r.prog.CoverageDue == "" {
		return
	}
	var due []dueCoverage
	if err := json.Unmarshal([]byte(r.prog.CoverageDue), &due); err != nil {
		msg := "the lost coverage an earlier run left to send cannot be read, so it cannot be sent as it was (the earlier run's warnings and log name it)"
		r.warn(msg + "; it is sent as lost coverage of its own")
		r.prog.CoverageDue = ""
		at := r.prog.Until
		r.lose(lostCoverage{cause: CauseProgressLost, from: at, to: at, reason: msg + ": logins an earlier run could not evaluate may never have been alerted; read that run's warnings and backfill its window"})
		return
	}
	for _, d := range due {
		if d.Cause == "" {
			continue
		}
		// Rows met again are not counted again (seenRows); past the keys
		// kept, they may be: the count is then an upper bound.
		r.lose(lostCoverage{cause: d.Cause, from: d.From, to: d.To, count: d.Count, upTo: d.UpTo || d.RowsCapped, reason: d.Reason,
			rows: d.Rows, rowsCapped: d.RowsCapped, noted: d.Noted, dueOnly: true})
	}
}

// sendDue publishes, in a run that failed, the lost coverage an earlier
// run recorded as due (only that: this run's own may be met again by the
// next run, which reads again what this one did not commit). It writes no
// progress (this run's may be half done): the next run that loads the due
// finds it sent (sentSince) and clears it. Its trouble is logged; the
// run's own error stands.
func (r *run) sendDue(ctx context.Context) {
	if r.backfill || len(r.lost) == 0 {
		return
	}
	own := r.lost
	defer func() { r.lost = own }()
	r.lost = map[string]*lostCoverage{}
	for c, l := range own {
		if l.dueOnly {
			r.lost[c] = l
		}
	}
	fs, err := r.coverageFindings(ctx)
	if err == nil && len(fs) > 0 {
		if r.meta.Portal == "" {
			r.meta = Meta{Portal: r.s.Settings.Portal}
		}
		p := piecer{run: r}
		for _, f := range fs {
			if err = p.publish(ctx, []Finding{f}, nil); err != nil {
				break
			}
			r.res.CoverageLost++
		}
	}
	if err != nil {
		r.log.WarnContext(ctx, "audit: send the lost coverage an earlier run left due (the next run sends it)", "error", err)
	}
}

// seenRows are the unreadable rows this run counted already (those an
// earlier run recorded as due too), for a walk to leave out.
func (r *run) seenRows() map[string]bool {
	l := r.lost[CauseUnreadableRows]
	if l == nil || len(l.rows) == 0 {
		return nil
	}
	m := make(map[string]bool, len(l.rows))
	for _, k := range l.rows {
		m[k] = true
	}
	return m
}

// clearDue forgets the lost coverage recorded as due once it was sent (or
// its episode had been sent already): one write, only when some was due.
func (r *run) clearDue(ctx context.Context) error {
	r.lost = nil
	if r.backfill || r.prog.CoverageDue == "" {
		return nil
	}
	if err := r.setProgress(ctx); err != nil { // r.lost is nil: the due is cleared
		// Sent: a run that reads it again finds its episode recorded and
		// sends nothing.
		r.log.WarnContext(ctx, "audit: clear the lost coverage sent from the progress", "error", err)
	}
	return nil
}

// coverageFindings turns the run's lost coverage into findings, leaving out
// the causes whose episode was alerted already.
func (r *run) coverageFindings(ctx context.Context) ([]Finding, error) {
	if len(r.lost) == 0 {
		return nil, nil
	}
	causes := make([]string, 0, len(r.lost))
	keys := make([]string, 0, len(r.lost))
	for c := range r.lost {
		causes = append(causes, c)
	}
	sort.Strings(causes)
	for _, c := range causes {
		keys = append(keys, coverageKey(c))
	}
	known, err := r.s.Store.AlertedSpans(ctx, keys, r.s.now())
	if err != nil {
		return nil, ipguard.Errorf(ipguard.ErrorCode(err), "audit: read alerted lost coverage: %w", err)
	}
	var out []Finding
	for _, c := range causes {
		l := r.lost[c]
		// Counted also when sent already (CoverageLost, AuditCoverageLostAlarm):
		// the run that sent it may have failed, and a failed run's line
		// counts nothing.
		r.res.LoginsNotEvaluated += max(l.count, 1) // a cause of unknown extent counts 1
		if l.dueOnly && sentSince(known[coverageKey(c)], l.noted) {
			// Recorded as due by an earlier run, which sent it (or met
			// it in an episode already alerted) and could not clear it:
			// not again (nor its episode extended), also when that
			// episode is over by now.
			r.res.AlreadyAlerted++
			r.log.InfoContext(ctx, "lost coverage recorded as due was sent already", "cause", c, "from", l.from, "to", l.to, "count", l.count)
			continue
		}
		now := r.s.now()
		if sameEpisode(known[coverageKey(c)], now) {
			r.res.AlreadyAlerted++
			// The episode goes on: remember its new extent (one write).
			if err := r.s.Store.RecordAlertedSpan(ctx, coverageKey(c), ipguard.TimeSpan{From: now, To: now}, now, r.s.Settings.AlertRetention); err != nil {
				return nil, ipguard.Errorf(ipguard.ErrorCode(err), "audit: extend the lost-coverage episode %s: %w", c, err)
			}
			r.log.InfoContext(ctx, "lost coverage, episode already alerted", "cause", c, "from", l.from, "to", l.to, "count", l.count)
			continue
		}
		f := Finding{Kind: KindCoverageLost, Severity: SeverityHigh, Cause: c, Reason: l.reason, Count: l.count, UpTo: l.upTo,
			FirstAt: l.from.UTC().Format(time.RFC3339), Date: l.to.UTC().Format(time.RFC3339),
			span: &ipguard.TimeSpan{From: now, To: now}}
		out = append(out, f)
	}
	return out, nil
}

// sentSince reports whether an episode of the cause was alerted, or went
// on, at or after noted (a remembered span ending then or later): the loss
// noted then was sent with it. A zero noted is never.
func sentSince(spans []ipguard.TimeSpan, noted time.Time) bool {
	if noted.IsZero() {
		return false
	}
	for _, s := range spans {
		if !s.To.Before(noted) {
			return true
		}
	}
	return false
}

// sameEpisode reports whether a run at now belongs to one of the
// remembered episodes: within episodeGap of one's span.
func sameEpisode(spans []ipguard.TimeSpan, now time.Time) bool {
	for _, s := range spans {
		if !now.After(s.To.Add(episodeGap)) && !now.Before(s.From.Add(-episodeGap)) {
			return true
		}
	}
	return false
}

// publishCoverage sends each lost-coverage finding as a message of its own
// and records its episode.
//
// Before publishing, the lost coverage is recorded as due with the progress
// (AuditProgress.CoverageDue; usually the window's progress carried it
// already, this write covers what was found after it, such as the clock
// skew), and it is cleared only once every message was accepted: a publish
// that fails, or a run cut off meanwhile, leaves it to the next run.
func (r *run) publishCoverage(ctx context.Context) error {
	fs, err := r.coverageFindings(ctx)
	if err != nil {
		return err
	}
	if len(fs) == 0 {
		return r.clearDue(ctx)
	}
	if !r.backfill {
		if err := r.setProgress(ctx); err != nil {
			// Sent all the same: not recording it must not also keep it
			// from the people it is for.
			r.warn(fmt.Sprintf("the lost coverage could not be recorded as due before it was sent (%s): if its message fails too, no later run sends it", humantext.Line(err.Error(), 300)))
		}
	}
	p := piecer{run: r}
	for _, f := range fs {
		if err := p.publish(ctx, []Finding{f}, nil); err != nil {
			if errors.Is(err, errOutOfTime) {
				return err
			}
			return ipguard.Errorf(ipguard.ErrorCode(err), "audit: publish the lost-coverage alert (%s); it stays recorded as due and the next run sends it: %w", f.Cause, err)
		}
		r.res.CoverageLost++
	}
	return r.clearDue(ctx)
}
