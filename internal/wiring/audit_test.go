package wiring

import "testing"

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
