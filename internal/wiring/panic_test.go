package wiring

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda/messages"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"ipguard/internal/config"
	"ipguard/internal/docspace"
	"ipguard/internal/dynamo"
)

type staticKey string

func (k staticKey) Key(context.Context) (string, error) { return string(k), nil }

// crashingDeps are the real adapters of both functions, except that the
// store is a nil *dynamo.Store: the first store call dereferences nil and
// panics inside the real handler, as a bug would.
func crashingDeps(t *testing.T, fn config.Function, logs, metrics *bytes.Buffer) Deps {
	t.Helper()
	env := map[string]string{
		"DOCSPACE_API_HOST": "http://127.0.0.1:9", "DOCSPACE_ALLOW_HTTP": "true", "DOCSPACE_API_KEY_SECRET_ID": "docspace/key",
		"ALLOWLIST_TABLE": "t", "ALERT_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:alerts", "LOG_LEVEL": "info",
	}
	cfg, err := config.Load(func(k string) string { return env[k] }, fn)
	if err != nil {
		t.Fatal(err)
	}
	log := NewLogger(logs, slog.LevelInfo)
	portal, err := docspace.New(docspace.Options{BaseURL: cfg.DocSpace.Host, AllowHTTP: true, Keys: staticKey("sk-0123456789abcdef"), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	var store *dynamo.Store
	return Deps{Config: cfg, Log: log, Portal: portal, APIKeys: staticKey("sk-0123456789abcdef"), Store: store, MetricsOut: metrics}
}

// A crash is never a success: a panic in either handler comes back as an
// InternalError result, its one metrics line says Failures: 1 (and
// Failures.InternalError: 1), and the log says what panicked, with the
// stack, at ERROR.
func TestAPanicIsAnInternalErrorCountedAsAFailure(t *testing.T) {
	scheduled, _ := json.Marshal(map[string]any{"version": "0", "id": "x", "detail-type": "Scheduled Event", "source": "aws.events",
		"time": time.Now().UTC().Format(time.RFC3339), "detail": map[string]any{}})
	tests := []struct {
		name    string
		fn      config.Function
		payload string
	}{
		{"audit run", config.Audit, string(scheduled)},
		{"onboarding", config.Onboard, `{"id": "3f0c9a7e-1b2d-4e5f-8a9b-0c1d2e3f4a5b", "email": "jane@example.com", "allowedIps": ["203.0.113.10"]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs, metrics bytes.Buffer
			d := crashingDeps(t, tt.fn, &logs, &metrics)
			var h func(context.Context, json.RawMessage) (json.RawMessage, error)
			if tt.fn == config.Audit {
				h = Invoke(d.Log, d.AuditFunction())
			} else {
				h = Invoke(d.Log, d.OnboardHandler())
			}
			ctx := lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{AwsRequestID: "req-panic"})
			out, err := h(ctx, json.RawMessage(tt.payload))
			ie, ok := err.(messages.InvokeResponse_Error)
			if !ok || ie.Type != "InternalError" || out != nil {
				t.Fatalf("result %s, error %#v; want an InternalError", out, err)
			}
			if !strings.Contains(ie.Message, "crashed") {
				t.Errorf("message %q does not say the handler crashed", ie.Message)
			}
			lines := strings.Split(strings.TrimSpace(metrics.String()), "\n")
			if len(lines) != 1 {
				t.Fatalf("%d metrics lines, want 1:\n%s", len(lines), metrics.String())
			}
			var m map[string]any
			if err := json.Unmarshal([]byte(lines[0]), &m); err != nil {
				t.Fatal(err)
			}
			if m[MetricFailures] != 1.0 || m[PrefixFailures+"InternalError"] != 1.0 || m[MetricRejected] != 0.0 || m["errorType"] != "InternalError" {
				t.Errorf("metrics line %s, want Failures 1, Failures.InternalError 1, Rejected 0", lines[0])
			}
			var panicked map[string]any
			for _, l := range strings.Split(logs.String(), "\n") {
				if strings.Contains(l, `"handler panicked"`) {
					_ = json.Unmarshal([]byte(l), &panicked)
				}
			}
			if panicked == nil || panicked["level"] != "ERROR" || panicked["requestId"] != "req-panic" ||
				!strings.Contains(panicked["panic"].(string), "nil pointer") || !strings.Contains(panicked["stack"].(string), "dynamo") {
				t.Errorf("no ERROR line with the panic and its stack:\n%s", logs.String())
			}
		})
	}
}
