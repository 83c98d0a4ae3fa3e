package e2e

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"ipguard/internal/emf"
	"ipguard/internal/wiring"
)

// logLines splits a function's output into its JSON lines: the metrics
// lines (one per invocation, with the dimension "FunctionName"; those that
// declare a CloudWatch metric carry "_aws" and must be valid EMF) and the
// log lines (with "msg"); the emulator's own lines are left out.
func logLines(t *testing.T, out string) (metrics, logs []map[string]any) {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) != nil {
			continue
		}
		_, isEMF := m["_aws"]
		if _, ok := m["FunctionName"]; ok || isEMF {
			if isEMF {
				if err := emf.Validate([]byte(line)); err != nil {
					t.Errorf("invalid EMF line (%v): %s", err, line)
				}
			}
			metrics = append(metrics, m)
		} else if _, ok := m["msg"]; ok {
			logs = append(logs, m)
		}
	}
	return metrics, logs
}

func TestEveryInvocationWritesOneValidEMFLineAndLogsCarryTheRequestID(t *testing.T) {
	s := deploy(t)
	env := append(s.FunctionEnv(), "METRICS_NAMESPACE=IPGuardE2E")
	onb := startFunction(t, "onboard", env)
	onb.invoke(t, map[string]any{"id": janeID, "email": "jane.roe@example.com", "allowedIps": []string{"203.0.113.10"}})
	if r := onb.invoke(t, map[string]any{"id": janeID, "email": "jane.roe@example.com"}); r.ErrorType != "InvalidInput" {
		t.Fatalf("bad request answered %+v", r)
	}
	aud := startFunction(t, "audit", env)
	aud.invoke(t, scheduledEvent(time.Now())).result(t, new(map[string]any))
	time.Sleep(100 * time.Millisecond) // let the emulator copy the last lines

	for _, tt := range []struct {
		fn      *function
		lines   int
		names   []string
		failure []float64 // Failures per line
	}{
		{onb, 2, wiring.OnboardMetrics, []float64{0, 0}}, // invalid input is Rejected, not a failure
		{aud, 1, wiring.AuditMetrics, []float64{0}},
	} {
		metrics, logs := logLines(t, tt.fn.log.String())
		if len(metrics) != tt.lines {
			t.Fatalf("%s: %d EMF lines, want one per invocation (%d):\n%s", tt.fn.name, len(metrics), tt.lines, tt.fn.log.String())
		}
		for i, m := range metrics {
			// Only a line that declares a metric names the namespace: the
			// audit's (LagSeconds) and onboarding's rejected request (Rejected).
			if aws, ok := m["_aws"].(map[string]any); ok {
				directives := aws["CloudWatchMetrics"].([]any)
				if ns := directives[0].(map[string]any)["Namespace"]; ns != "IPGuardE2E" {
					t.Errorf("%s: namespace %v, want METRICS_NAMESPACE", tt.fn.name, ns)
				}
			} else if tt.fn == aud || i == 1 {
				t.Errorf("%s line %d declares no metric: %v", tt.fn.name, i, m)
			}
			for _, name := range tt.names {
				if _, ok := m[name]; !ok {
					t.Errorf("%s line %d lacks %s", tt.fn.name, i, name)
				}
			}
			if m[wiring.MetricFailures] != tt.failure[i] {
				t.Errorf("%s line %d: Failures = %v, want %v", tt.fn.name, i, m[wiring.MetricFailures], tt.failure[i])
			}
			if id, _ := m["requestId"].(string); id == "" {
				t.Errorf("%s line %d has no requestId", tt.fn.name, i)
			}
		}
		if tt.fn == onb && len(logs) == 0 {
			t.Errorf("%s wrote no log line for the refused request", tt.fn.name)
		}
		for _, l := range logs {
			if id, _ := l["requestId"].(string); id == "" || l["functionName"] == nil {
				t.Errorf("%s log line without requestId or functionName: %v", tt.fn.name, l)
			}
		}
	}
}
