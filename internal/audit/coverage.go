package audit

import (
	"context"
	"fmt"
	"sort"
	"time"

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
)

// episodeGap joins occurrences of one cause into one episode.
const episodeGap = time.Hour

// lostCoverage is one occurrence of lost coverage.
type lostCoverage struct {
	cause    string
	from, to time.Time // the login dates concerned
	count    int       // logins not evaluated (0: unknown)
	upTo     bool      // count is an upper bound
	reason   string
}

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
		if l.cause == CauseUnreadableRows {
			have.reason = fmt.Sprintf("%d login events in the portal's history could not be read (the warnings name each), so they were not evaluated", have.count)
		}
		return
	}
	r.lost[l.cause] = &l
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
		r.res.LoginsNotEvaluated += max(l.count, 1) // a cause of unknown extent counts 1
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
func (r *run) publishCoverage(ctx context.Context) error {
	fs, err := r.coverageFindings(ctx)
	if err != nil || len(fs) == 0 {
		return err
	}
	p := piecer{run: r}
	for _, f := range fs {
		if err := p.publish(ctx, []Finding{f}, nil); err != nil {
			return err
		}
		r.res.CoverageLost++
	}
	return nil
}
