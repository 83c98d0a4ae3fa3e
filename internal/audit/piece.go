package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"ipguard/internal/ipguard"
)

// piecer runs the per-piece pipeline of one window:
//
//	events ─► skip unreadable (the walk warned) ─► load users ─► evaluate (+ bursts due)
//	       ─► drop already alerted ─► [respond] ─► publish per severity,
//	          record after each message ─► log each finding ─► save cursor
//
// [respond] is where acting on findings (ending the offending session)
// belongs: after findings are final and deduplicated, before they are sent.
type piecer struct {
	run   *run
	lists *Allowlists
	ev    *Evaluator
	warns int // lists.Warnings already reported
	// summaryRead: the spans of burst summaries were given to ev.
	summaryRead bool
	// judged: a piece of this walk was handed to the Behaviour hook
	// (the next is not its First).
	judged bool
}

// piece evaluates, alerts and commits evs; afterwards every event of the
// window dated after done is finished (final: the whole window is).
func (p *piecer) piece(evs []ipguard.LoginEvent, done time.Time, final bool) error {
	return p.pieceOf(evs, done, final, final || p.run.asTheyStand)
}

// holds reports whether the Behaviour holds logins for the run's last
// piece (Holder).
func (p *piecer) holds() bool {
	h, ok := p.run.s.Behaviour.(Holder)
	return ok && !h.Holding().IsZero()
}

// pieceOf is piece; last says the run stops after it (Piece.Last).
func (p *piecer) pieceOf(evs []ipguard.LoginEvent, done time.Time, final, last bool) error {
	r, s, ctx := p.run, p.run.s, p.run.ctx
	if !final && !r.backfill && !r.counted && r.progressed {
		// A new window reached by a run that already moved the cursor (it
		// finished the window before): not counted, it is no run without
		// progress. Cut off in this piece, it leaves the window unsaved,
		// and the next run, which begins it, is counted at it.
		r.counted = true
	}
	if !final && !r.backfill && !r.counted {
		// A new window that holds more than a piece (a backlog): counted
		// at its cursor before its first piece, as a resumed one is before
		// it reads (countAttempt), so that a run cut off in this piece
		// makes the next one's pieces smaller.
		r.prog.Cursor.Attempts++
		r.counted = true
		if err := r.setProgress(ctx); err != nil {
			return ipguard.Errorf(ipguard.ErrorCode(err), "audit: save the cursor before the window's first piece (nothing of it was committed): %w", err)
		}
	}
	good := evs[:0:0]
	for _, e := range evs {
		if e.Unreadable != "" {
			continue // the walk reported it when it read it
		}
		good = append(good, e)
	}
	r.res.EventsScanned += len(good)

	if err := p.loadUsers(ctx, good); err != nil {
		return err
	}
	if ips, from, to := p.ev.StoredFailuresWanted(good); len(ips) > 0 {
		// Failed attempts an earlier run saw within GUESS_WINDOW before
		// these logins (the correlation survives the cut between runs and
		// windows).
		got, err := s.Store.Failures(ctx, ips, from, to)
		if err != nil {
			return ipguard.Errorf(ipguard.ErrorCode(err), "audit: read remembered failed logins: %w", err)
		}
		p.ev.SetStoredFailures(ips, got, from)
	}
	if ips := p.ev.FailedAddresses(good); len(ips) > 0 {
		if !p.summaryRead {
			ips = append(ips, burstSummaryKey)
		}
		spans, err := s.Store.AlertedSpans(ctx, ips, s.now())
		if err != nil {
			return ipguard.Errorf(ipguard.ErrorCode(err), "audit: read alerted bursts: %w", err)
		}
		for _, ip := range ips {
			if ip == burstSummaryKey {
				p.summaryRead = true
				p.ev.SetSummarised(spans[ip])
				continue
			}
			p.ev.SetAlerted(ip, spans[ip])
		}
	}
	before := p.ev.AlreadyAlerted
	findings, err := p.ev.Add(good)
	if err != nil {
		return err
	}
	r.res.AlreadyAlerted += p.ev.AlreadyAlerted - before
	p.ev.ForgetUnraisable(done)
	if !final {
		if err := p.remember(ctx, done); err != nil {
			return err
		}
	}
	for ; p.warns < len(p.lists.Warnings); p.warns++ {
		r.warn(p.lists.Warnings[p.warns])
	}
	// Oldest first, as a person reads them (the walk reads newest first).
	sort.SliceStable(findings, func(i, j int) bool {
		if findings[i].Date != findings[j].Date {
			return findings[i].Date < findings[j].Date
		}
		return findings[i].EventID < findings[j].EventID
	})
	findings = append(findings, p.ev.Bursts()...)
	if s.Behaviour != nil {
		first := !p.judged
		p.judged = true
		findings, err = s.Behaviour.Judge(ctx, Piece{Events: good, Done: done, Final: final, Last: last, First: first, Backfill: r.backfill, Declared: p.lists.Declared, Entry: p.lists.DeclaredEntry}, findings)
		if err != nil {
			return ipguard.Errorf(ipguard.ErrorCode(err), "audit: judge behaviour: %w", err)
		}
		if n, ok := s.Behaviour.(Noter); ok {
			for _, w := range n.Notes() {
				r.warn(w)
			}
		}
	}

	var ids []int64
	for _, f := range findings {
		ids = append(ids, f.ids()...)
	}
	if len(ids) > 0 {
		alerted, err := s.Store.Alerted(ctx, ids, s.now())
		if err != nil {
			return ipguard.Errorf(ipguard.ErrorCode(err), "audit: read alerted events: %w", err)
		}
		var dropped int
		findings, dropped = dropAlerted(findings, alerted)
		r.res.AlreadyAlerted += dropped
	}

	// The response step: act on the final, deduplicated findings of this
	// piece before they are sent, so that the alert says what was done.
	notices := p.respond(ctx, findings)
	p.nameUsers(ctx, findings)

	sent, quiet := partition(findings, func(f Finding) bool { return f.NotMessaged })
	if err := p.publish(ctx, sent, notices); err != nil {
		return err
	}
	p.countQuiet(ctx, quiet)
	if err := p.archive(ctx, good, done); err != nil {
		return err
	}
	if s.Behaviour != nil {
		if err := s.Behaviour.Settle(ctx); err != nil {
			return ipguard.Errorf(ipguard.ErrorCode(err), "audit: save behaviour baselines (this piece's alerts were sent and recorded): %w", err)
		}
	}

	below := done
	if h, ok := s.Behaviour.(Holder); ok && !final {
		// Logins the hook holds for a later piece are not done yet.
		if t := h.Holding(); t.After(below) {
			below = t
		}
	}
	if c := r.prog.Cursor; !c.Below.Equal(below) || final {
		c.SecondTries = 0 // the cursor moves past the second it waited at
		c.Attempts = 0    // and this run made progress
		r.progressed = true
		if r.pieces++; c.Piece > 0 && r.pieces%growEvery == 0 {
			// Pieces of this size get through: try twice as many events.
			if c.Piece *= 2; c.Piece >= s.pieceEvents() {
				c.Piece = 0
			}
		}
	}
	if r.backfill {
		r.prog.Cursor.Below = below
		return nil
	}
	if final {
		return nil // the caller saves the finished window
	}
	r.prog.Cursor.Below = below
	p.carryGuesses(done)
	if err := r.setProgress(ctx); err != nil {
		return ipguard.Errorf(ipguard.ErrorCode(err), "audit: save the cursor (alerts of this piece were sent and recorded; the next run reads the piece again and sends nothing twice): %w", err)
	}
	return nil
}

// carryGuesses puts into the cursor the logins above done that failed
// logins below it may still raise (GUESS_WINDOW), so that a run stopping
// here hands them to the next (#16 §6: a guess split by the cursor is
// still critical). Bounded by MaxPendingGuesses; more is a warning.
func (p *piecer) carryGuesses(done time.Time) {
	c := p.run.prog.Cursor
	fs, left := p.ev.PendingGuesses(done)
	if c.Below.After(done) {
		// The cursor stays above done (a Holder holds logins): the logins
		// at or below it are read again by the next run, which raises them
		// from there; carried too, they would be raised twice.
		kept := fs[:0]
		for _, f := range fs {
			if at, err := time.Parse(time.RFC3339, f.Date); err != nil || at.After(c.Below) {
				kept = append(kept, f)
			}
		}
		fs = kept
	}
	c.Guesses = ""
	if len(fs) > 0 {
		if b, err := json.Marshal(fs); err == nil {
			c.Guesses = string(b)
		}
	}
	if left > 0 {
		p.run.warn(fmt.Sprintf("%d successful logins just above the cursor are not carried to the next run for the password-guess correlation (at most %d are): if this run stops here, failed attempts read by the next run do not raise them", left, MaxPendingGuesses))
	}
}

// piecedates returns the oldest and the newest date of evs.
func piecedates(evs []ipguard.LoginEvent) (from, to time.Time) {
	for i, e := range evs {
		if i == 0 || e.Date.Before(from) {
			from = e.Date
		}
		if i == 0 || e.Date.After(to) {
			to = e.Date
		}
	}
	return from, to
}

// remember stores the failed logins per address of the buckets the walk is
// past (all of them when done is zero) for the next runs' correlation
// (bounded time-bucket items; see Store.RecordFailures).
func (p *piecer) remember(ctx context.Context, done time.Time) error {
	fs := p.ev.FailuresToRemember(done)
	if len(fs) == 0 {
		return nil
	}
	forgotten, err := p.run.s.Store.RecordFailures(ctx, fs, p.ev.KeepFailures())
	if err != nil {
		return ipguard.Errorf(ipguard.ErrorCode(err), "audit: remember failed logins: %w", err)
	}
	if forgotten > 0 {
		// A flood of failed logins from more addresses than the bounded
		// items keep: the fewest failures gave way, and with them what a
		// later run's password-guess correlation needs. A guesser can
		// hide that way; say so (lost coverage, once per episode).
		from, to := fs[0].First, fs[0].Last
		for _, f := range fs {
			if f.First.Before(from) {
				from = f.First
			}
			if f.Last.After(to) {
				to = f.Last
			}
		}
		msg := fmt.Sprintf("the failed logins of %d addresses (those with the fewest) dated %s to %s were not remembered across runs: more addresses failed within %s than the audit keeps; a password guessed from one of them and used in a later run within GUESS_WINDOW is told at its own kind, not as password_guess_succeeded (the logins were evaluated; the correlation across runs lost them)",
			forgotten, from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339), FailureBucket)
		p.run.warn(msg)
		p.run.lose(lostCoverage{cause: CauseFailuresForgotten, from: from, to: to, reason: msg})
	}
	return nil
}

// archive hands the piece's events to the login archive, once each: only
// those dated after the checkpoint (the overlap a window re-reads before it
// was archived by the window before) and at or below where the archive of
// this window has got to (the cursor's ArchivedBelow, else Below). The span
// (max(done, checkpoint), ArchivedBelow] depends only on the saved cursor
// and the piece's lower end, so a run retried after a failure, which starts
// from the same saved cursor, writes the same span and replaces its own
// object. ArchivedBelow then moves down to the span's lower end, with the
// cursor's next save: while a Holder keeps the cursor above held logins,
// the next pieces write the spans below (not the same span, under one
// name, one after the other), and the run that reads the held logins again
// does not archive them twice. Backfills stay out of the archive (their
// windows were, or will be, archived by the scheduled runs that passed them).
func (p *piecer) archive(ctx context.Context, evs []ipguard.LoginEvent, done time.Time) error {
	r, s := p.run, p.run.s
	if s.Archive == nil || r.backfill || r.prog.Cursor == nil {
		return nil
	}
	c := r.prog.Cursor
	top := c.ArchivedBelow
	if top.IsZero() || top.After(c.Below) {
		top = c.Below
	}
	span := ipguard.TimeSpan{From: done, To: top}
	if r.prog.Until.After(span.From) {
		span.From = r.prog.Until
	}
	if !span.To.After(span.From) {
		return nil
	}
	var in []ipguard.LoginEvent
	for _, e := range evs {
		if e.Date.After(span.From) && !e.Date.After(span.To) {
			in = append(in, e)
		}
	}
	if len(in) > 0 {
		if err := s.Archive.Archive(ctx, c.From, span, in); err != nil {
			return ipguard.Errorf(ipguard.ErrorCode(err), "audit: archive the logins dated %s to %s (this piece's alerts were sent and recorded; the next run reads it again, sends nothing twice and archives it): %w",
				span.From.Format(time.RFC3339), span.To.Format(time.RFC3339), err)
		}
	}
	c.ArchivedBelow = span.From
	return nil
}

// loadUsers adds the users of the successful logins in evs not loaded yet.
func (p *piecer) loadUsers(ctx context.Context, evs []ipguard.LoginEvent) error {
	var ids []string
	for _, e := range evs {
		id := ipguard.CanonicalUserID(e.UserID)
		if e.IsSuccessfulLogin() && id != "" && !p.lists.has(id) {
			p.lists.markMissing(id)
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	users, err := p.run.s.Store.Users(ctx, ids)
	if err != nil {
		return ipguard.Errorf(ipguard.ErrorCode(err), "audit: load allowlists: %w", err)
	}
	p.lists.Add(users)
	// A login is judged by the allowlist in force when it happened: when
	// each entry started and stopped counting, and whether a user without a
	// record was offboarded after the login.
	hist, err := p.run.s.Store.AllowlistHistory(ctx, ids)
	if err != nil {
		return ipguard.Errorf(ipguard.ErrorCode(err), "audit: load allowlist histories: %w", err)
	}
	p.lists.AddHistory(hist)
	return nil
}

// publish sends the findings (one message per severity class, split when
// needed) and records each message's findings right after SNS accepted it,
// before the next message. It checks the deadline before each message.
func (p *piecer) publish(ctx context.Context, fs []Finding, notices []string) error {
	if len(fs) == 0 {
		return nil
	}
	r, s := p.run, p.run.s
	max := s.Settings.MaxMessageBytes
	if max <= 0 {
		max = MaxMessageBytes
	}
	m := r.meta
	m.Notices = notices
	batches, err := RenderAlerts(m, fs, max)
	if err != nil {
		return err
	}
	for i, b := range batches {
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < s.publishFloor(r.reserve) {
			return errOutOfTime
		}
		// A message started is let finish (bounded) even if the deadline
		// margin is reached meanwhile: cutting it would only make its
		// delivery unknown, and so a likely duplicate.
		pctx, pcancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
		id, err := s.Publisher.Publish(pctx, b.Alert)
		pcancel()
		if err != nil && ctx.Err() != nil {
			// Our own deadline cut the call short: stop like at the margin.
			// SNS may have accepted the message; it is not recorded, so the
			// next run sends it again (the guarantee's first window).
			r.warn(fmt.Sprintf("the deadline cut alert %d of %d short; its findings are sent again by the next run (possibly a duplicate)", i+1, len(batches)))
			return errOutOfTime
		}
		if err != nil {
			return ipguard.Errorf(ipguard.ErrorCode(err), "audit: publish alert %d of %d (%s, %d findings); its findings were not recorded and the cursor was not moved past them, so the next run sends them: %w",
				i+1, len(batches), b.Alert.Severity, len(b.Findings), err)
		}
		if digestID(id) {
			r.res.AlertsToDigest++ // no message yet: the daily digest tells it
		} else {
			r.res.AlertsPublished++
		}
		r.res.MessageIDs = append(r.res.MessageIDs, id)
		now := s.now()
		// SNS accepted the message: record it even if the run's deadline
		// margin is reached meanwhile (bounded; a frozen Lambda records
		// nothing, which is the guarantee's second window).
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
		defer cancel()
		if ids := b.EventIDs(); len(ids) > 0 {
			if err := s.Store.RecordAlerted(rctx, ids, now, s.Settings.AlertRetention); err != nil {
				return ipguard.Errorf(ipguard.ErrorCode(err), "audit: alert %d of %d was published but its events could not be recorded as alerted; the next run may send them again: %w",
					i+1, len(batches), err)
			}
		}
		for _, f := range b.Findings {
			if f.span == nil {
				continue
			}
			// The record guards the sliding window that counts the burst's
			// failed logins (remembered for KeepFailures): it lives at least
			// as long, whatever ALERT_RETENTION, or a burst going on within
			// SPRAY_WINDOW of its alert would be told again.
			keep := s.Settings.AlertRetention
			if p.ev != nil && p.ev.KeepFailures() > keep {
				keep = p.ev.KeepFailures()
			}
			if err := s.Store.RecordAlertedSpan(rctx, f.spanKey(), *f.span, now, keep); err != nil {
				return ipguard.Errorf(ipguard.ErrorCode(err), "audit: alert %d of %d was published but the burst from %s could not be recorded as alerted; the next run may send it again: %w",
					i+1, len(batches), f.IP, err)
			}
		}
		for _, f := range b.Findings {
			r.res.Counts[f.Kind]++
			countReasons(r.res, f)
			r.res.Severities[f.Severity]++
			p.logFinding(ctx, f, id)
		}
	}
	return nil
}

// respond lets the Responder act on the piece's findings and counts its
// outcomes; its notices become warnings of the result too.
func (p *piecer) respond(ctx context.Context, fs []Finding) []string {
	r, s := p.run, p.run.s
	if s.Responder == nil || len(fs) == 0 {
		return nil
	}
	if r.responder == nil {
		r.responder = s.Responder.Begin(r.backfill)
	}
	notices := r.responder.Respond(ctx, fs)
	for _, n := range notices {
		r.warn(n)
	}
	for _, f := range fs {
		resp := f.Response
		if resp == nil {
			continue
		}
		if r.res.Responses == nil {
			r.res.Responses = map[string]int{}
		}
		r.res.Responses[resp.Outcome]++
		if resp.Outcome == OutcomeEnded && !resp.Recorded {
			r.res.SessionEnded++ // only what this run ended, not what an earlier try did
		}
		// A recorded response may carry the escalation an earlier try made
		// (told again, not done again): not counted, as for sessionEnded.
		if resp.Escalation != nil && resp.Escalation.Outcome == OutcomeDisabled && !resp.Recorded && !r.disabled[f.UserID] {
			r.disabled[f.UserID] = true
			r.res.UsersDisabled++
		}
	}
	return notices
}

// recordTimeout bounds recording a message SNS accepted.
const recordTimeout = 10 * time.Second

// logFinding writes the finding's searchable log line (msg "finding").
func (p *piecer) logFinding(ctx context.Context, f Finding, messageID string) {
	args := []any{"kind", f.Kind, "severity", f.Severity, "userId", f.UserID, "email", f.Email, "login", f.Login,
		"ip", f.IP, "country", f.Country, "city", f.City, "date", f.Date, "messageId", messageID}
	if f.span != nil {
		args = append(args, "eventIds", f.EventIDs, "count", f.Count, "firstDate", f.FirstAt, "capped", f.Capped)
	} else {
		args = append(args, "eventId", f.EventID)
	}
	if f.FailedAttempts > 0 {
		args = append(args, "failedAttempts", f.FailedAttempts)
	}
	if p.run.backfill {
		args = append(args, "backfill", true)
	}
	if f.Response != nil {
		args = append(args, "response", f.Response.Outcome)
	}
	args = append(args, behaviourLogArgs(f)...)
	p.run.log.InfoContext(ctx, "finding", args...)
}
