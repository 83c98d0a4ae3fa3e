package e2e

import (
	"strings"
	"testing"
	"time"

	"ipguard/internal/status"
	"ipguard/internal/wiring"
)

func TestStatusAnswersWithoutAuditing(t *testing.T) {
	s := deployWithJane(t)
	fn := startFunction(t, "audit", append(s.FunctionEnv(), "AUDIT_SCHEDULE=rate(5 minutes)"))

	// Before the first run: no checkpoint, no last run, and no audit either.
	var before status.Report
	fn.invoke(t, map[string]any{"action": "status"}).result(t, &before)
	if before.Action != "status" || before.ReadUntil != "" || before.LastRun != nil || before.Schedule != "rate(5 minutes)" {
		t.Errorf("status before any run = %s", jsonText(before))
	}
	for _, r := range s.Portal.Requests() {
		if strings.Contains(r.Path, "/security/audit/login") {
			t.Fatalf("the status read the login history (%s): it must not audit", r.Path)
		}
	}

	fn.invoke(t, scheduledEvent(time.Now())).result(t, new(map[string]any))

	var st status.Report
	fn.invoke(t, map[string]any{"action": "status"}).result(t, &st)
	if st.ReadUntil == "" || st.LagSeconds == nil || *st.LagSeconds < 0 || *st.LagSeconds > 120 {
		t.Errorf("readUntil %q, lag %v: want the checkpoint of the run just made", st.ReadUntil, st.LagSeconds)
	}
	if st.LastRun == nil || st.LastRun.Outcome != "succeeded" || st.LastRun.At == "" {
		t.Errorf("lastRun = %s, want the run just made, succeeded", jsonText(st.LastRun))
	}
	k, _ := s.Portal.Key(s.APIKey)
	if st.APIKey == nil || st.APIKey.Name != k.Name || st.APIKey.Postfix != k.KeyPostfix || st.APIKey.ExpiresAt == "" || st.APIKey.Seen != "portal" {
		t.Errorf("apiKey = %s, want name %q, postfix %q and the expiry", jsonText(st.APIKey), k.Name, k.KeyPostfix)
	}
	if st.Portal == nil || !st.Portal.RestrictionsEnabled || st.Portal.Entries == 0 {
		t.Errorf("portal = %s, want restrictions enabled with Jane's entries", jsonText(st.Portal))
	}
	if st.UsersStored == nil || *st.UsersStored != 1 {
		t.Errorf("usersStored = %v, want 1", st.UsersStored)
	}
	if st.Schedule != "rate(5 minutes)" || len(st.Warnings) != 0 {
		t.Errorf("schedule %q, warnings %q", st.Schedule, st.Warnings)
	}
	if strings.Contains(jsonText(st), s.APIKey[:12]) {
		t.Error("the status shows the key")
	}

	// One metrics line per invocation, the status's too, and a status is
	// never counted as a failure or a run that found something.
	time.Sleep(100 * time.Millisecond) // let the emulator copy the last lines
	metrics, _ := logLines(t, fn.log.String())
	if len(metrics) != 3 {
		t.Fatalf("%d EMF lines for 3 invocations (status, run, status)", len(metrics))
	}
	for _, i := range []int{0, 2} {
		if metrics[i]["action"] != "status" || metrics[i][wiring.MetricFailures] != 0.0 || metrics[i][wiring.MetricEventsScanned] != 0.0 {
			t.Errorf("status line %d = %v", i, metrics[i])
		}
	}
	if _, ok := metrics[0][wiring.MetricLagSeconds]; ok {
		t.Errorf("status before any run reports a lag: %v", metrics[0])
	}
}
