package wiring

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"

	"ipguard/internal/audit"
	"ipguard/internal/behaviour"
	"ipguard/internal/config"
	"ipguard/internal/emf"
	"ipguard/internal/ipguard"
	"ipguard/internal/onboard"
	"ipguard/internal/status"
)

// emitted writes metrics through a metricsWriter and returns the one line,
// checked against the EMF specification, decoded.
func emitted(t *testing.T, metrics []emf.Metric) map[string]any {
	t.Helper()
	var buf bytes.Buffer
	mw := metricsWriter{out: &buf, namespace: "DocSpaceIPGuard", now: time.Now}
	ctx := lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{AwsRequestID: "req-7"})
	mw.write(ctx, metrics, nil)
	if strings.Count(buf.String(), "\n") != 1 {
		t.Fatalf("want one line, got %q", buf.String())
	}
	var m map[string]any
	_ = json.Unmarshal(buf.Bytes(), &m)
	if _, ok := m["_aws"]; ok { // a line that declares no metric is a plain log line
		if err := emf.Validate(bytes.TrimSpace(buf.Bytes())); err != nil {
			t.Fatalf("not valid EMF: %v\n%s", err, buf.String())
		}
	}
	if m["requestId"] != "req-7" || m["FunctionName"] == nil {
		t.Errorf("line without requestId or FunctionName: %s", buf.String())
	}
	return m
}

func TestAuditMetricsCoverEveryListedName(t *testing.T) {
	res := audit.Result{EventsScanned: 120, AlertsPublished: 2, Warnings: []string{"plan fallback"}, RunsWithoutProgress: 3,
		Counts:     map[string]int{audit.KindIPNotAllowed: 2, audit.KindUnknownUser: 1, audit.KindUnverifiableIP: 0, audit.KindFailedLoginBurst: 1},
		Severities: map[string]int{audit.SeverityHigh: 2, audit.SeverityMedium: 2}}
	m := emitted(t, auditMetrics(res, nil, 1500*time.Millisecond, 3, 90*time.Second))
	for _, name := range AuditMetrics {
		if _, ok := m[name]; !ok {
			t.Errorf("audit line lacks %s", name)
		}
	}
	want := map[string]float64{
		MetricEventsScanned: 120, MetricPagesFetched: 3, MetricFindings: 4, MetricAlertsPublished: 2,
		MetricWarnings: 1, MetricSkipped: 0, MetricFailures: 0, MetricLagSeconds: 90, MetricRunSeconds: 1.5, MetricRunsWithoutProgress: 3,
		PrefixFindingsKind + audit.KindIPNotAllowed: 2, PrefixFindingsSeverity + "high": 2, PrefixFindingsSeverity + "medium": 2, PrefixFindingsSeverity + "critical": 0,
	}
	for name, v := range want {
		if m[name] != v {
			t.Errorf("%s = %v, want %v", name, m[name], v)
		}
	}
}

func TestAuditFailureCountsTheErrorTypeAndKeepsTheLag(t *testing.T) {
	err := &ipguard.Error{Code: ipguard.EConfig, Message: "key refused"}
	m := emitted(t, auditMetrics(audit.Result{}, err, time.Second, 0, 3*time.Hour))
	if m[MetricFailures] != 1.0 || m[MetricRejected] != 0.0 || m[PrefixFailures+"ConfigurationError"] != 1.0 || m[MetricLagSeconds] != 10800.0 {
		t.Errorf("line = %v", m)
	}
	// Unknown lag: no value, so the heartbeat alarm sees missing data.
	m = emitted(t, auditMetrics(audit.Result{}, err, time.Second, 0, -1))
	if _, ok := m[MetricLagSeconds]; ok {
		t.Errorf("unknown lag written: %v", m)
	}
}

func TestOnboardMetrics(t *testing.T) {
	tests := []struct {
		name string
		res  onboard.Result
		err  error
		want map[string]float64
	}{
		{"updated", onboard.Result{PortalUpdated: true}, nil, map[string]float64{MetricRequests: 1, MetricPortalUpdates: 1, MetricRejected: 0, MetricFailures: 0}},
		{"rejected", onboard.Result{}, ipguard.Invalid("allowedIps", "", "is required"),
			map[string]float64{MetricRequests: 1, MetricRejected: 1, MetricFailures: 0, MetricPortalUpdates: 0}},
		{"sync completed", onboard.Result{Action: onboard.ActionSync, Portal: onboard.PortalApplied}, nil, map[string]float64{MetricSyncs: 1, MetricFailures: 0}},
		{"sync failed", onboard.Result{}, &ipguard.Error{Code: ipguard.EUnavailable, Err: errors.New("503")},
			map[string]float64{MetricFailures: 1}},
		{"stored, portal pending", onboard.Result{Portal: onboard.PortalPending}, nil, map[string]float64{MetricPortalPending: 1, MetricFailures: 0, MetricPortalUpdates: 0}},
		{"portal down", onboard.Result{}, &ipguard.Error{Code: ipguard.EUnavailable, Err: errors.New("503")},
			map[string]float64{MetricFailures: 1, PrefixFailures + "DependencyUnavailable": 1, MetricRejected: 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := emitted(t, onboardMetrics(tt.res, tt.err, 20*time.Millisecond, 0))
			for _, name := range OnboardMetrics {
				if _, ok := m[name]; !ok {
					t.Errorf("onboard line lacks %s", name)
				}
			}
			for name, v := range tt.want {
				if m[name] != v {
					t.Errorf("%s = %v, want %v", name, m[name], v)
				}
			}
		})
	}
}

// Onboarding's alerts that did not reach the topic are the metric
// AlertsUndelivered (OnboardAlertsUndeliveredAlarm reads it), declared only
// when above 0; otherwise a field of the line.
func TestOnboardAlertsUndeliveredIsAMetricOnlyAboveZero(t *testing.T) {
	for _, n := range []int64{0, 2} {
		var buf bytes.Buffer
		mw := metricsWriter{out: &buf, namespace: "DocSpaceIPGuard", now: time.Now}
		mw.write(context.Background(), onboardMetrics(onboard.Result{}, nil, time.Millisecond, n), nil)
		line := buf.String()
		declared := strings.Contains(line, `{"Name":"AlertsUndelivered"`)
		if !strings.Contains(line, fmt.Sprintf(`"AlertsUndelivered":%d`, n)) || declared != (n > 0) {
			t.Errorf("undelivered %d: line %s; want the count, declared a metric only above 0", n, line)
		}
	}
}

// A backfill's safeUntil is the end of its own past window, not how far the
// scheduled audit has read: it must not feed the heartbeat's lag (a backfill
// of last week would read as a week behind and fire AuditHeartbeatAlarm).
func TestBackfillLagIsTheCheckpointsNotItsWindow(t *testing.T) {
	weekAgo := time.Now().Add(-7 * 24 * time.Hour).UTC().Format(time.RFC3339)
	if got := (Deps{}).lag(context.Background(), audit.Result{Backfill: true, SafeUntil: weekAgo}, nil); got >= 0 {
		t.Errorf("lag of a backfill = %s, want unknown here (the checkpoint's, and no store)", got)
	}
	recent := time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)
	if got := (Deps{}).lag(context.Background(), audit.Result{SafeUntil: recent}, nil); got < 59*time.Second || got > 2*time.Minute {
		t.Errorf("lag of a scheduled run = %s, want about 1m", got)
	}
}

// Lambda's log-level filtering (LoggingConfig ApplicationLogLevel, from the
// LogLevel parameter) takes a JSON line without "level" for INFO and drops
// it below WARN or ERROR: a metrics line must carry a level that passes the
// configured filter, or with LogLevel=warn no metric reaches CloudWatch, the
// heartbeat alarm fires for ever and the failure alarms never can.
func TestMetricsLinesPassTheConfiguredLogLevelFilter(t *testing.T) {
	for _, tt := range []struct {
		level slog.Level
		want  string
	}{{slog.LevelDebug, "INFO"}, {slog.LevelInfo, "INFO"}, {slog.LevelWarn, "WARN"}, {slog.LevelError, "ERROR"}} {
		var buf bytes.Buffer
		mw := metricsWriter{out: &buf, namespace: "DocSpaceIPGuard", now: time.Now, level: tt.level}
		mw.write(context.Background(), failureMetrics(nil), nil)
		var m map[string]any
		if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
			t.Fatalf("line %s: %v", buf.String(), err)
		}
		if m["level"] != tt.want {
			t.Errorf("log level %s: metrics line level %v, want %s", tt.level, m["level"], tt.want)
		}
	}
}

// Behaviour findings per kind are EMF properties of the run's line, not
// metrics (WHERE-ISSUES-MEET §6); the status record counts them too.
func TestBehaviourCountsAreProperties(t *testing.T) {
	res := audit.Result{Counts: map[string]int{audit.KindIPNotAllowed: 1, audit.KindImpossibleTravel: 2, audit.KindNewDevice: 3},
		Severities: map[string]int{audit.SeverityHigh: 3, audit.SeverityLow: 3}, NotMessaged: 3,
		BehaviourReasons: map[string]int{audit.KindImpossibleTravel: 2, audit.KindNewDevice: 3}}
	ms := auditMetrics(res, nil, time.Second, 1, 0)
	var buf bytes.Buffer
	mw := metricsWriter{out: &buf, namespace: "DocSpaceIPGuard", now: time.Now}
	hook := &behaviour.Detector{}
	mw.write(context.Background(), ms, behaviourProps(res, hook, map[string]any{}))
	if err := emf.Validate(bytes.TrimSpace(buf.Bytes())); err != nil {
		t.Fatal(err)
	}
	var line map[string]any
	_ = json.Unmarshal(buf.Bytes(), &line)
	for _, m := range ms {
		if k, ok := strings.CutPrefix(m.Name, PrefixFindingsKind); (ok && audit.IsBehaviourKind(k)) || m.Name == PrefixFindingsSeverity+audit.SeverityLow {
			t.Errorf("%s is a metric; it should be a property", m.Name)
		}
	}
	bf, _ := line["behaviourFindings"].(map[string]any)
	if bf[audit.KindImpossibleTravel] != 2.0 || bf[audit.KindNewDevice] != 3.0 || bf[audit.KindNewCountry] != 0.0 || line["notMessaged"] != 3.0 || line[MetricFindings] != 6.0 {
		t.Errorf("line %v", line)
	}
	var rec status.LastRun
	behaviourLastRun(res, hook)(&rec)
	if rec.Behaviour.ImpossibleTravel != 2 || rec.Behaviour.NewDevice != 3 || rec.NoGeoIP {
		t.Errorf("status record %+v", rec)
	}
}

// The status operation's record of a run says whether it finished its
// window and how many runs in a row moved nothing: a stalled audit, a
// skipped run and a failed one are never shown as complete.
func TestLastRunRecordSaysWhetherTheRunFinished(t *testing.T) {
	now := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		res      audit.Result
		err      error
		outcome  string
		complete bool
		stalled  int
	}{
		{"finished", audit.Result{Complete: true}, nil, "succeeded", true, 0},
		{"stopped at its margin, third run without progress", audit.Result{Complete: false, RunsWithoutProgress: 3}, nil, "succeeded", false, 3},
		{"skipped", audit.Result{Skipped: true}, nil, "skipped", false, 0},
		{"failed", audit.Result{Complete: true, RunsWithoutProgress: 2}, errors.New("portal down"), "failed", false, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := lastRunRecord(tt.res, tt.err, time.Second, now)
			if rec.Outcome != tt.outcome || rec.Complete != tt.complete || rec.RunsWithoutProgress != tt.stalled {
				t.Errorf("record %+v; want outcome %s, complete %v, runsWithoutProgress %d", rec, tt.outcome, tt.complete, tt.stalled)
			}
		})
	}
}

// The windows in which the shared request budget's store failed (the
// container paced on its own) are a field of the next line, counted once
// and not declared as a metric; none, no field.
func TestBudgetFallbacksAreAPropertyOfTheNextLine(t *testing.T) {
	n := 2
	for _, want := range []any{float64(2), nil} {
		var buf bytes.Buffer
		mw := metricsWriter{out: &buf, namespace: "DocSpaceIPGuard", now: time.Now,
			budgetFallbacks: func() int { m := n; n = 0; return m }}
		mw.write(context.Background(), []emf.Metric{{Name: MetricRequests, Value: 1}}, nil)
		var fields map[string]any
		if err := json.Unmarshal(buf.Bytes(), &fields); err != nil {
			t.Fatal(err)
		}
		if got := fields["PortalBudgetFallbacks"]; got != want {
			t.Errorf("PortalBudgetFallbacks = %v, want %v", got, want)
		}
		if strings.Contains(fmt.Sprint(fields["_aws"]), "PortalBudgetFallbacks") {
			t.Errorf("PortalBudgetFallbacks declared as a metric: %v", fields["_aws"])
		}
	}
}

// Attack review (ending sessions): a run that ended sessions and then failed
// writes how many it ended; its retry does not count them again.
func TestFailedAuditRunWritesTheSessionsItEnded(t *testing.T) {
	err := &ipguard.Error{Code: ipguard.EUnavailable, Message: "sns down"}
	m := emitted(t, auditMetrics(audit.Result{SessionEnded: 2}, err, time.Second, 1, time.Minute))
	if m[MetricSessionEnded] != 2.0 || m[MetricFailures] != 1.0 {
		t.Errorf("line = %v; want SessionEnded 2 on the failed run", m)
	}
}

// Every scheduled run counts as a run for the heartbeats, also one that
// fails before the checkpoint can be read (the first run ever has none; here
// nothing is there to read it with): AuditRunsMissingAlarm counts the
// samples of LagSeconds as the cron() schedule's runs, so without one a
// schedule that invokes a failing audit reads as stopped (attack review of
// the deploy). Its lag is unknown, so it is UnknownLag, above any
// HEARTBEAT_MAX_LAG_SECONDS the configuration accepts: the lag heartbeat
// reads the run as behind, as it did missing data on a rate() schedule. A
// backfill is no run of the schedule and declares none.
func TestAFailedScheduledRunWithoutACheckpointStillDeclaresItsLag(t *testing.T) {
	scheduled := `{"version":"0","id":"1","detail-type":"Scheduled Event","source":"aws.scheduler","time":"2026-11-25T10:00:00Z","detail":{}}`
	backfill := `{"from":"2026-11-24T10:00:00Z","to":"2026-11-24T11:00:00Z"}`
	for _, tt := range []struct {
		name, payload string
		declared      bool
	}{
		{"scheduled", scheduled, true},
		{"backfill", backfill, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			d := Deps{Log: slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil)), MetricsOut: &buf} // no table, no portal
			d.Config.AlertTopicARN = "arn:aws:sns:us-east-1:123456789012:alerts"
			if _, err := d.AuditHandler()(context.Background(), []byte(tt.payload)); err == nil {
				t.Fatal("the run succeeded without a table or a portal")
			}
			lag := declaredLag(t, &buf, tt.declared)
			if tt.declared && (lag == nil || *lag < (100*24*time.Hour).Seconds()) {
				t.Errorf("LagSeconds = %v, want at least 100 days (the largest HEARTBEAT_MAX_LAG_SECONDS accepted): %s", lag, buf.String())
			}
		})
	}
}

// An audit that cannot start (its configuration refused: StartFailing) is
// still invoked by its schedule, and every scheduled run declares LagSeconds
// (README "Metrics"): without it, a cron() AuditSchedule whose audit fails
// at start raised AuditRunsMissingAlarm, "the schedule stopped invoking",
// while the schedule invoked and the runbook to follow was the errors'.
// Such a run declares UnknownLag, as a scheduled run that failed before it
// could read its checkpoint; a status call, a backfill and the onboarding
// declare none (attack review of the deploy changes).
func TestAnAuditThatCannotStartStillCountsItsScheduledRuns(t *testing.T) {
	bad := ipguard.Errorf(ipguard.EConfig, "SYNC_SCHEDULE: bad")
	scheduled := `{"version":"0","id":"1","detail-type":"Scheduled Event","source":"aws.scheduler","time":"2026-11-25T10:00:00Z","detail":{}}`
	for _, tt := range []struct {
		name, payload string
		fn            config.Function
		declared      bool
	}{
		{"a scheduled run", scheduled, config.Audit, true},
		{"a scheduled run without an envelope", `{}`, config.Audit, true},
		{"a status call", `{"action":"status"}`, config.Audit, false},
		{"a backfill", `{"from":"2026-11-24T10:00:00Z","to":"2026-11-24T11:00:00Z"}`, config.Audit, false},
		{"the onboarding's sync", `{"action":"sync"}`, config.Onboard, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			mw := metricsWriter{out: &buf, namespace: "DocSpaceIPGuard", now: time.Now, level: slog.LevelError}
			if _, err := failingHandler(mw, bad, tt.fn)(context.Background(), []byte(tt.payload)); !errors.Is(err, bad) {
				t.Fatalf("err = %v, want the configuration error", err)
			}
			if lag := declaredLag(t, &buf, tt.declared); tt.declared && (lag == nil || *lag != UnknownLag.Seconds()) {
				t.Errorf("LagSeconds = %v, want UnknownLag: %s", lag, buf.String())
			}
			if !strings.Contains(buf.String(), `"`+MetricFailures+`":1`) {
				t.Errorf("the line does not count the failure: %s", buf.String())
			}
		})
	}
}

// declaredLag is the LagSeconds of the metrics line in buf, after checking
// that the line declares it as a metric exactly when declared.
func declaredLag(t *testing.T, buf *bytes.Buffer, declared bool) *float64 {
	t.Helper()
	var line struct {
		Lag *float64 `json:"LagSeconds"`
	}
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("metrics line %q: %v", buf.String(), err)
	}
	if got := strings.Contains(buf.String(), `{"Name":"`+MetricLagSeconds+`"`); got != declared {
		t.Fatalf("LagSeconds declared %v, want %v: %s", got, declared, buf.String())
	}
	return line.Lag
}
