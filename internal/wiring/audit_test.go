package wiring

import (
	"math"
	"runtime/debug"
	"testing"
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
