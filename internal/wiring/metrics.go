package wiring

import (
	"context"
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
// METRICS_NAMESPACE namespace with the dimension FunctionName. The alarms in
// template.yaml may use only names listed in AuditMetrics or OnboardMetrics
// (checked by a test over the translated template).
const (
	// Both functions.
	MetricFailures   = "Failures"   // 1 for a failed invocation, else 0
	MetricRunSeconds = "RunSeconds" // how long the invocation took

	// Audit.
	MetricEventsScanned   = "EventsScanned"   // login events inside the window
	MetricPagesFetched    = "PagesFetched"    // login-history pages read from the portal
	MetricFindings        = "Findings"        // new findings, all kinds
	MetricAlertsPublished = "AlertsPublished" // SNS messages sent
	MetricLagSeconds      = "LagSeconds"      // now minus how far the audit has safely read (the checkpoint)
	MetricWarnings        = "Warnings"        // lost coverage and other warnings (e.g. the plan fallback)
	MetricSkipped         = "Skipped"         // 1 when another run held the lease
	MetricSessionEnded    = "SessionEnded"    // findings whose session the run ended (enforcement)

	// Onboarding.
	MetricRequests      = "Requests"      // 1 per onboarding request
	MetricRejected      = "Rejected"      // 1 when the request was refused as invalid
	MetricPortalUpdates = "PortalUpdates" // 1 when the portal allowlist was written
	MetricPortalPending = "PortalPending" // 1 when the change is stored but the portal update waits (e.g. a portal outage; the next reconcile applies it)
)

// Metric name prefixes followed by a kind, a severity or an errorType.
const (
	PrefixFindingsKind     = "Findings.kind."     // e.g. Findings.kind.ip_not_allowed
	PrefixFindingsSeverity = "Findings.severity." // e.g. Findings.severity.high
	PrefixFailures         = "Failures."          // e.g. Failures.ConfigurationError
)

// ErrorTypes are the errorType values of Lambda error responses.
var ErrorTypes = []string{"InvalidInput", "ConfigurationError", "DependencyUnavailable", "Conflict", "InternalError"}

// AuditMetrics and OnboardMetrics list the fixed metric names each function
// writes on every invocation (the per-kind, per-severity and per-errorType
// names come on top).
var (
	AuditMetrics = []string{MetricFailures, MetricRunSeconds, MetricEventsScanned, MetricPagesFetched, MetricFindings,
		MetricAlertsPublished, MetricLagSeconds, MetricWarnings, MetricSkipped, MetricSessionEnded}
	OnboardMetrics = []string{MetricFailures, MetricRunSeconds, MetricRequests, MetricRejected, MetricPortalUpdates, MetricPortalPending}
)

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
	line := emf.Line{Namespace: m.namespace, Dimensions: []emf.Dimension{{Name: "FunctionName", Value: fn}},
		Metrics: metrics, Properties: props, Time: m.now()}
	_ = line.Write(m.out) // stdout; nothing better to do if it fails
}

// failureMetrics are the Failures metrics of err (nil: 0).
func failureMetrics(err error) []emf.Metric {
	if err == nil {
		return []emf.Metric{{Name: MetricFailures, Unit: emf.Count, Value: 0}}
	}
	return []emf.Metric{{Name: MetricFailures, Unit: emf.Count, Value: 1},
		{Name: PrefixFailures + ErrorType(err), Unit: emf.Count, Value: 1}}
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
		ms = append(ms, count(PrefixFindingsKind+k, res.Counts[k]))
	}
	for _, sev := range audit.Severities {
		ms = append(ms, count(PrefixFindingsSeverity+sev, res.Severities[sev]))
	}
	return append(ms,
		count(MetricEventsScanned, res.EventsScanned),
		count(MetricFindings, total),
		count(MetricAlertsPublished, res.AlertsPublished),
		count(MetricWarnings, max(res.WarningCount, len(res.Warnings))),
		count(MetricSessionEnded, res.SessionEnded),
	)
}

// onboardMetrics are the metrics of one onboarding request.
func onboardMetrics(res onboard.Result, err error, took time.Duration) []emf.Metric {
	return append(failureMetrics(err),
		emf.Metric{Name: MetricRunSeconds, Unit: emf.Seconds, Value: took.Seconds()},
		count(MetricRequests, 1),
		boolCount(MetricRejected, ipguard.ErrorCode(err) == ipguard.EInvalid),
		boolCount(MetricPortalUpdates, err == nil && res.PortalUpdated),
		boolCount(MetricPortalPending, res.Portal == onboard.PortalPending),
	)
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
