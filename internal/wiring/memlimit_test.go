package wiring

import (
	"math"
	"runtime/debug"
	"testing"
)

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
