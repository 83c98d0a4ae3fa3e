package wiring

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"math"
	"runtime/debug"
	"slices"
	"testing"
	"time"
)

// Only status and test-alert leave the audit run's path; everything else goes
// to the run, which refuses what it does not know (InvalidInput).
func TestAuditAction(t *testing.T) {
	for payload, want := range map[string]string{
		`{"action": "status"}`:      ActionStatus,
		`{"action": " Test-Alert"}`: ActionTestAlert,
		`{"version":"0","id":"1","detail-type":"Ops","source":"ops","time":"2026-11-25T10:00:00Z","detail":{"action":"status"}}`: ActionStatus,
		`{"action": "statsu"}`: "",
		`{"action": 1}`:        "",
		`{}`:                   "",
		`{"from": "x"}`:        "",
		`not json`:             "",
		``:                     "",
	} {
		if got := auditAction([]byte(payload)); got != want {
			t.Errorf("auditAction(%s) = %q, want %q", payload, got, want)
		}
	}
}

// The audit sets its soft memory limit unless GOMEMLIMIT set one.
func TestAuditMemoryLimitYieldsToGOMEMLIMIT(t *testing.T) {
	before := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(before) })
	tests := []struct {
		name, gomemlimit string
		want             int64
	}{
		{"unset: the audit's own limit", "", AuditMemoryLimit},
		{"set: the runtime's, untouched", "100MiB", math.MaxInt64},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			debug.SetMemoryLimit(math.MaxInt64)
			setAuditMemoryLimit(func(k string) string {
				if k == "GOMEMLIMIT" {
					return tt.gomemlimit
				}
				return ""
			})
			if got := debug.SetMemoryLimit(-1); got != tt.want {
				t.Errorf("limit %d, want %d", got, tt.want)
			}
		})
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
			d := Deps{Log: slog.New(slog.NewTextHandler(io.Discard, nil)), MetricsOut: &buf} // no table, no portal
			d.Config.AlertTopicARN = "arn:aws:sns:us-east-1:123456789012:alerts"
			if _, err := d.AuditHandler()(context.Background(), []byte(tt.payload)); err == nil {
				t.Fatal("the run succeeded without a table or a portal")
			}
			var line struct {
				AWS struct {
					CloudWatchMetrics []struct{ Metrics []struct{ Name string } }
				} `json:"_aws"`
				Lag *float64 `json:"LagSeconds"`
			}
			if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
				t.Fatalf("metrics line %q: %v", buf.String(), err)
			}
			var names []string
			for _, d := range line.AWS.CloudWatchMetrics {
				for _, m := range d.Metrics {
					names = append(names, m.Name)
				}
			}
			if got := slices.Contains(names, MetricLagSeconds); got != tt.declared {
				t.Fatalf("LagSeconds declared %v, want %v: %s", got, tt.declared, buf.String())
			}
			if tt.declared && (line.Lag == nil || *line.Lag < (100*24*time.Hour).Seconds()) {
				t.Errorf("LagSeconds = %v, want at least 100 days (the largest HEARTBEAT_MAX_LAG_SECONDS accepted): %s", line.Lag, buf.String())
			}
		})
	}
}
