package wiring

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sort"
	"sync/atomic"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"

	"ipguard/internal/audit"
	"ipguard/internal/emf"
	"ipguard/internal/ipguard"
	"ipguard/internal/onboard"
)

// Metric names. Each invocation writes one EMF line (package emf) in the
// METRICS_NAMESPACE namespace with the dimension FunctionName. Every count
// below is a field of that line (free to query with CloudWatch Logs
// Insights); only the names in Declared are also CloudWatch metrics, each
// read by an alarm in template.yaml (a custom metric costs $0.30 a month:
// README "Cost", whose list a test holds to Declared).
const (
	// Both functions.
	MetricFailures   = "Failures"   // 1 for a failed invocation (not for invalid input), else 0
	MetricRejected   = "Rejected"   // 1 when the input was refused as invalid (InvalidInput), else 0
	MetricRunSeconds = "RunSeconds" // how long the invocation took

	// Audit.
	MetricEventsScanned   = "EventsScanned"   // login events inside the window
	MetricPagesFetched    = "PagesFetched"    // login-history pages read from the portal
	MetricFindings        = "Findings"        // new findings, all kinds
	MetricAlertsPublished = "AlertsPublished" // SNS messages sent
	MetricLagSeconds      = "LagSeconds"      // now minus how far the audit has safely read (the checkpoint)
	MetricWarnings        = "Warnings"        // warnings of the run (lost coverage, the plan fallback, the key's expiry...)
	MetricSkipped         = "Skipped"         // 1 when another run held the lease
	MetricSessionEnded    = "SessionEnded"    // findings whose session the run ended (enforcement)
	// MetricCoverageLost counts the logins of the run's window that could not
	// be evaluated (rows that could not be read, the plan fallback, unreadable
	// rows, clock skew past the overlap); at least 1 when coverage was lost to
	// an unknown extent.
	MetricCoverageLost = "CoverageLost"
	// MetricRunsWithoutProgress is how many runs in a row, this one
	// included, ended without moving the audit's cursor while logins wait
	// (audit.Result.RunsWithoutProgress); 0 when the run moved it. A field:
	// from audit.NoProgressRuns on it is lost coverage (cause no_progress),
	// which CoverageLost counts for its alarm.
	MetricRunsWithoutProgress = "RunsWithoutProgress"
	// MetricConfirmedSubscribers is the number of confirmed subscriptions of
	// the alert topic (sns:ListSubscriptionsByTopic), written by scheduled
	// runs, the status and the test alert when they could be listed; absent
	// otherwise. 0 means the alert topic reaches nobody; other destinations
	// (a dedicated findings bus, chat) are not counted here: with them the
	// template creates no NoAlertDestinationAlarm, so that it fires only
	// when no destination at all is (WHERE-ISSUES-MEET §7).
	MetricConfirmedSubscribers = "ConfirmedSubscribers"
	// MetricBusUndelivered counts the findings the findings bus refused in
	// the invocation (kept in the outbox, or lost) plus those still waiting
	// in the function's outbox after its retry (an outbox that could not be
	// read counts 1: how many wait is unknown, not 0); written only with a
	// findings bus (FINDINGS_BUS_NAME), by both functions.
	MetricBusUndelivered = "BusUndelivered"
	// MetricChatUndelivered counts the chat copies of alerts that could not
	// be published to the chat topic in the invocation (the alert itself
	// went out; chat is a copy, never sent again); written only with chat
	// (CHAT_TOPIC_ARN), by both functions.
	MetricChatUndelivered = "ChatUndelivered"

	// Onboarding.
	MetricRequests      = "Requests"      // 1 per onboarding request
	MetricPortalUpdates = "PortalUpdates" // 1 when the portal allowlist was written
	MetricPortalPending = "PortalPending" // 1 when the change is stored but the portal update waits (e.g. a portal outage; the next reconcile applies it)
	MetricSyncs         = "Syncs"         // 1 when a sync completed and reached the portal (not pending), written only then (the sync heartbeat)
	// MetricAlertsUndelivered counts onboarding's own alerts (drift,
	// overwritten change, lock-out risk, users left) that did not reach the
	// alert topic in the invocation: a due alert whose publish failed (it
	// stays due in outbox#onboard and the next reconcile sends it), one
	// dropped from a full outbox (onboard.AlertDelivery). On the audit's
	// line: the daily digest and the API key check (with its expiry alert)
	// that failed after a run that succeeded (each 1; the next run tries
	// again; after a failed run the key check is only logged: keyCheckAfter).
	MetricAlertsUndelivered = "AlertsUndelivered"
)

// Metric name prefixes followed by a kind, a severity or an errorType
// (fields of the line, never metrics).
const (
	PrefixFindingsKind     = "Findings.kind."     // e.g. Findings.kind.ip_not_allowed
	PrefixFindingsSeverity = "Findings.severity." // e.g. Findings.severity.high
	PrefixFailures         = "Failures."          // e.g. Failures.ConfigurationError
)

// ErrorTypes are the errorType values of Lambda error responses.
var ErrorTypes = []string{"InvalidInput", "ConfigurationError", "DependencyUnavailable", "Conflict", "InternalError"}

// Audit and Onboard name the functions in Declaration.Functions.
const (
	Audit   = "AuditFunction"
	Onboard = "OnboardFunction"
)

// Declaration says which functions' lines declare a name as a CloudWatch
// metric, and when.
type Declaration struct {
	Functions []string // logical ids in template.yaml
	// NonZero: declared only on lines where the value is above 0, a field
	// elsewhere. For a count whose alarm reads Sum and takes missing data as
	// not breaching: CloudWatch bills a metric by the hour it receives data,
	// so a count that stays 0 costs nothing.
	NonZero bool
	// BelowOne: declared only on lines where the value is below 1, a field
	// elsewhere. For a count whose alarm reads Minimum < 1 and takes missing
	// data as not breaching: only a 0 can change its state, so a count that
	// stays above 0 costs nothing either.
	BelowOne bool
}

// Declared are the only CloudWatch metrics the functions write: what an
// alarm reads. A test holds this list, the metrics the code really declares
// and the README's priced list together.
var Declared = map[string]Declaration{
	MetricLagSeconds:           {Functions: []string{Audit}},                         // AuditHeartbeatAlarm
	MetricConfirmedSubscribers: {Functions: []string{Audit}, BelowOne: true},         // NoAlertDestinationAlarm
	MetricCoverageLost:         {Functions: []string{Audit}, NonZero: true},          // AuditCoverageLostAlarm
	MetricRejected:             {Functions: []string{Audit, Onboard}, NonZero: true}, // subtracted from AWS/Lambda Errors by the errors alarms
	MetricSyncs:                {Functions: []string{Onboard}},                       // SyncHeartbeatAlarm
	MetricBusUndelivered:       {Functions: []string{Audit, Onboard}, NonZero: true}, // FindingsBusUndeliveredAlarm, OnboardFindingsBusUndeliveredAlarm
	MetricAlertsUndelivered:    {Functions: []string{Audit, Onboard}, NonZero: true}, // AuditAlertsUndeliveredAlarm, OnboardAlertsUndeliveredAlarm
	MetricChatUndelivered:      {Functions: []string{Audit, Onboard}, NonZero: true}, // ChatUndeliveredAlarm, OnboardChatUndeliveredAlarm
}

// AuditMetrics and OnboardMetrics list the fixed names each function's line
// carries on every invocation (the per-kind, per-severity and per-errorType
// names come on top); Declared says which of them are metrics.
var (
	AuditMetrics = []string{MetricFailures, MetricRejected, MetricRunSeconds, MetricEventsScanned, MetricPagesFetched, MetricFindings,
		MetricAlertsPublished, MetricLagSeconds, MetricWarnings, MetricSkipped, MetricSessionEnded, MetricCoverageLost, MetricRunsWithoutProgress}
	OnboardMetrics = []string{MetricFailures, MetricRejected, MetricRunSeconds, MetricRequests, MetricPortalUpdates, MetricPortalPending, MetricAlertsUndelivered}
)

// declared splits metrics into those declared as CloudWatch metrics and the
// fields of the line (added to props).
func declared(metrics []emf.Metric, props map[string]any) []emf.Metric {
	var out []emf.Metric
	for _, m := range metrics {
		d, ok := Declared[m.Name]
		if ok && (!d.NonZero || m.Value > 0) && (!d.BelowOne || m.Value < 1) {
			out = append(out, m)
			continue
		}
		props[m.Name] = m.Value
	}
	return out
}

// metricsWriter writes the EMF line of each invocation.
type metricsWriter struct {
	out       io.Writer
	namespace string
	now       func() time.Time
	// level is LOG_LEVEL. Lambda's log-level filtering (LoggingConfig
	// ApplicationLogLevel, set from the same parameter) takes a JSON line
	// without "level" for INFO and drops it when the level is WARN or
	// ERROR; each line carries the lowest level that passes, so that no
	// metric is ever filtered away.
	level slog.Level
	// budgetFallbacks, when set, returns the windows of the shared portal
	// request budget let through on the container's pacer alone since the
	// last line (its store failed): the line's PortalBudgetFallbacks, a
	// count no alarm reads (the warning in the log says which window).
	budgetFallbacks func() int
}

// lambdaLevel is the level name Lambda's filter reads for a line that
// must pass a filter at l: INFO at least.
func lambdaLevel(l slog.Level) string {
	switch {
	case l >= slog.LevelError:
		return "ERROR"
	case l >= slog.LevelWarn:
		return "WARN"
	default:
		return "INFO"
	}
}

func (m metricsWriter) write(ctx context.Context, metrics []emf.Metric, props map[string]any) {
	fn := lambdacontext.FunctionName
	if fn == "" {
		fn = "local"
	}
	if props == nil {
		props = map[string]any{}
	}
	if id := requestID(ctx); id != "" {
		props["requestId"] = id
	}
	props["level"] = lambdaLevel(m.level)
	if m.budgetFallbacks != nil {
		if n := m.budgetFallbacks(); n > 0 {
			props["PortalBudgetFallbacks"] = n
		}
	}
	// Stamped with the invocation's start, as AWS/Lambda stamps Errors with
	// the invocation time: the errors alarms subtract Rejected from Errors
	// period by period, so both must fall into the same period.
	at := m.now()
	if start := invocationStart.Load(); start != nil {
		at = *start
	}
	line := emf.Line{Namespace: m.namespace, Dimensions: []emf.Dimension{{Name: "FunctionName", Value: fn}},
		Metrics: declared(metrics, props), Properties: props, Time: at}
	_ = line.Write(m.out) // stdout; nothing better to do if it fails
}

// failureMetrics are the Failures and Rejected counts of err (nil: 0):
// invalid input is the caller's to fix, counted as rejected, never as a
// failure.
func failureMetrics(err error) []emf.Metric {
	switch {
	case err == nil:
		return []emf.Metric{count(MetricFailures, 0), count(MetricRejected, 0)}
	case ipguard.ErrorCode(err) == ipguard.EInvalid:
		return []emf.Metric{count(MetricFailures, 0), count(MetricRejected, 1)}
	}
	return []emf.Metric{count(MetricFailures, 1), count(MetricRejected, 0), count(PrefixFailures+ErrorType(err), 1)}
}

// lagAsField moves LagSeconds out of ms into props, for a line that is not
// a run of the schedule (a status call, a backfill by hand, a payload
// refused as InvalidInput):
// AuditRunsMissingAlarm counts the samples of LagSeconds as the schedule's
// runs, so a status call asked every few minutes, or during an incident,
// would clear it while the schedule stays stopped. The line keeps the lag
// as a field.
func lagAsField(ms []emf.Metric, props map[string]any) []emf.Metric {
	out := ms[:0:0]
	for _, m := range ms {
		if m.Name == MetricLagSeconds {
			props[m.Name] = m.Value
			continue
		}
		out = append(out, m)
	}
	return out
}

// subscriberMetrics is ConfirmedSubscribers, or nothing when the count is
// unknown (n < 0).
func subscriberMetrics(n int) []emf.Metric {
	if n < 0 {
		return nil
	}
	return []emf.Metric{count(MetricConfirmedSubscribers, n)}
}

func count(name string, n int) emf.Metric {
	return emf.Metric{Name: name, Unit: emf.Count, Value: float64(n)}
}

func boolCount(name string, b bool) emf.Metric {
	if b {
		return count(name, 1)
	}
	return count(name, 0)
}

// auditMetrics are the metrics of one audit run; lag < 0 means unknown.
// pages counts the login-history pages read, for a run that failed before
// its result could say.
func auditMetrics(res audit.Result, err error, took time.Duration, pages int64, lag time.Duration) []emf.Metric {
	if res.PagesFetched > 0 {
		pages = int64(res.PagesFetched)
	}
	ms := append(failureMetrics(err),
		emf.Metric{Name: MetricRunSeconds, Unit: emf.Seconds, Value: took.Seconds()},
		count(MetricPagesFetched, int(pages)),
		boolCount(MetricSkipped, res.Skipped),
	)
	if lag >= 0 {
		ms = append(ms, emf.Metric{Name: MetricLagSeconds, Unit: emf.Seconds, Value: lag.Seconds()})
	}
	// The sessions ended count also on a failed run: its retry answers
	// them from the records and does not count them (Response.Recorded).
	ms = append(ms, count(MetricSessionEnded, res.SessionEnded))
	if err != nil {
		return ms
	}
	total := 0
	kinds := make([]string, 0, len(res.Counts))
	for k := range res.Counts {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		total += res.Counts[k]
		if audit.IsBehaviourKind(k) {
			continue // an EMF property, not a metric (behaviourProps)
		}
		ms = append(ms, count(PrefixFindingsKind+k, res.Counts[k]))
	}
	for _, sev := range audit.Severities {
		if sev == audit.SeverityLow {
			continue // only behaviour findings are low: a property
		}
		ms = append(ms, count(PrefixFindingsSeverity+sev, res.Severities[sev]))
	}
	return append(ms,
		count(MetricEventsScanned, res.EventsScanned),
		count(MetricFindings, total),
		count(MetricAlertsPublished, res.AlertsPublished),
		count(MetricWarnings, max(res.WarningCount, len(res.Warnings))),
		count(MetricCoverageLost, res.LoginsNotEvaluated),
		count(MetricRunsWithoutProgress, res.RunsWithoutProgress),
	)
}

// onboardMetrics are the metrics of one onboarding request.
func onboardMetrics(res onboard.Result, err error, took time.Duration, undelivered int64) []emf.Metric {
	ms := append(failureMetrics(err),
		emf.Metric{Name: MetricRunSeconds, Unit: emf.Seconds, Value: took.Seconds()},
		count(MetricRequests, 1),
		boolCount(MetricPortalUpdates, err == nil && res.PortalUpdated),
		boolCount(MetricPortalPending, res.Portal == onboard.PortalPending || errors.Is(err, onboard.ErrStoredPending)),
		count(MetricAlertsUndelivered, int(undelivered)),
	)
	if err == nil && res.Action == onboard.ActionSync && res.Portal == onboard.PortalApplied {
		// The heartbeat beats for a sync that reached the portal: one whose
		// update is pending (the portal down) did not sync, and while that
		// lasts, expired entries stay on the portal (SyncHeartbeatAlarm).
		ms = append(ms, count(MetricSyncs, 1))
	}
	return ms
}

// pageCounter counts the login-history pages the audit reads.
type pageCounter struct {
	audit.Source
	pages atomic.Int64
}

func (p *pageCounter) LoginEvents(ctx context.Context, from time.Time, startIndex, count int) ([]ipguard.LoginEvent, error) {
	evs, err := p.Source.LoginEvents(ctx, from, startIndex, count)
	if err == nil {
		p.pages.Add(1)
	}
	return evs, err
}
