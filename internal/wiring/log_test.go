package wiring

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda/messages"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"ipguard/internal/config"
	"ipguard/internal/docspace"
	"ipguard/internal/dynamo"
	"ipguard/internal/redact"
)

func TestEveryLineCarriesRequestIDFunctionNameAndMilliseconds(t *testing.T) {
	lambdacontext.FunctionName = "ipguard-audit"
	defer func() { lambdacontext.FunctionName = "" }()
	key := "sk-0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"
	redact.Remember(key)

	var buf bytes.Buffer
	log := NewLogger(&buf, slog.LevelDebug)
	// A service built at start logs without the context.
	h := Invoke(log, func(ctx context.Context, _ []byte) (struct{}, error) {
		log.Info("retrying", "waited", 1500*time.Microsecond, "error", errors.New("echo "+key[:20]))
		log.WarnContext(ctx, "with context")
		return struct{}{}, errors.New("failed with " + key[10:40])
	})
	ctx := lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{AwsRequestID: "req-42"})
	_, err := h(ctx, json.RawMessage(`{}`))
	var resp messages.InvokeResponse_Error
	if !errors.As(err, &resp) || strings.Contains(resp.Message, key[10:18]) || resp.Type != "InternalError" {
		t.Errorf("response = %+v", err)
	}
	log.Info("between invocations")

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 4 {
		t.Fatalf("%d lines, want 4:\n%s", len(lines), buf.String())
	}
	for i, line := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("line %d not JSON: %s", i, line)
		}
		if m["functionName"] != "ipguard-audit" {
			t.Errorf("line %d without functionName: %s", i, line)
		}
		if wantID := i < 3; (m["requestId"] == "req-42") != wantID {
			t.Errorf("line %d requestId = %v, want it only during the invocation", i, m["requestId"])
		}
		for j := 0; j+redact.MinRun <= len(key); j++ {
			if strings.Contains(line, key[j:j+redact.MinRun]) {
				t.Fatalf("line %d shows part of the key: %s", i, line)
			}
		}
	}
	var first map[string]any
	_ = json.Unmarshal([]byte(lines[0]), &first)
	if first["waitedMs"] != 1.5 {
		t.Errorf("waitedMs = %v, want 1.5 (durations in milliseconds): %s", first["waitedMs"], lines[0])
	}
	if !strings.Contains(lines[2], `"level":"ERROR"`) || !strings.Contains(lines[2], `"errorType":"InternalError"`) {
		t.Errorf("failure line = %s", lines[2])
	}
}

// Strings inside lists, maps and structs are cleaned too: a warning list
// or a portal value logged as a whole must not carry the key.
func TestStringsInsideValuesAreCleaned(t *testing.T) {
	key := "sk-77aa0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2"
	redact.Remember(key)
	var buf bytes.Buffer
	log := NewLogger(&buf, slog.LevelDebug)
	log.Info("warnings", "list", []string{"echo " + key[:30]}, "byName", map[string]string{"a": key[20:]},
		"group", slog.GroupValue(slog.String("inner", key[5:25])), "count", 3, "ids", []int64{1, 2})
	line := buf.String()
	for j := 0; j+redact.MinRun <= len(key); j++ {
		if strings.Contains(line, key[j:j+redact.MinRun]) {
			t.Fatalf("the line shows part of the key: %s", line)
		}
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(line), &m); err != nil {
		t.Fatalf("not JSON: %s", line)
	}
	if l, ok := m["list"].([]any); !ok || len(l) != 1 || m["count"] != 3.0 {
		t.Errorf("values lost their shape: %s", line)
	}
	if ids, ok := m["ids"].([]any); !ok || len(ids) != 2 {
		t.Errorf("ids lost their shape: %s", line)
	}
}

// A result is cleaned as well as an error: a warning that quotes a portal
// value (an unreadable login event that echoes the Authorization header)
// must not hand the key to whoever invoked the function.
func TestResultsAreCleanedOfTheKey(t *testing.T) {
	key := "sk-99cc0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2"
	redact.Remember(key)
	type result struct {
		Warnings []string `json:"warnings"`
		Count    int      `json:"count"`
	}
	h := Invoke(slog.New(slog.DiscardHandler), func(ctx context.Context, _ []byte) (result, error) {
		return result{Warnings: []string{`unreadable event "Bearer ` + key[:40] + `"`}, Count: 2}, nil
	})
	out, err := h(context.Background(), json.RawMessage(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(out)
	for j := 0; j+redact.MinRun <= len(key); j++ {
		if strings.Contains(string(b), key[j:j+redact.MinRun]) {
			t.Fatalf("the result shows part of the key: %s", b)
		}
	}
	var back result
	if err := json.Unmarshal(b, &back); err != nil || back.Count != 2 || len(back.Warnings) != 1 {
		t.Errorf("result lost its shape: %s (%v)", b, err)
	}
}

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

// Attack review (health signals): AuditErrorsAlarm is AWS/Lambda Errors
// minus our Rejected. Every invocation that can fail writes its line, the
// learn action too: a mistyped {"action": "learn"} is InvalidInput, the
// caller's to fix, and must be counted as Rejected, or Lambda's Errors
// counts it as a failure of ours with nothing to subtract (twice in two
// periods pages the operator for a typo).
func TestALearnRefusedAsInvalidInputIsRejectedNotAFailure(t *testing.T) {
	var logs, metrics bytes.Buffer
	d := crashingDeps(t, config.Audit, &logs, &metrics)
	h := Invoke(d.Log, d.AuditFunction())
	ctx := lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{AwsRequestID: "req-learn"})
	for _, payload := range []string{`{"action": "learn"}`, `{"action": "learn", "days": 999}`, `{"action": "learn", "days": 7, "dryrun": "yes"}`} {
		metrics.Reset()
		_, err := h(ctx, json.RawMessage(payload))
		if ie, ok := err.(messages.InvokeResponse_Error); !ok || ie.Type != "InvalidInput" {
			t.Fatalf("%s: error %#v, want InvalidInput", payload, err)
		}
		lines := strings.Split(strings.TrimSpace(metrics.String()), "\n")
		if len(lines) != 1 || lines[0] == "" {
			t.Fatalf("%s: %d metrics lines, want 1:\n%s", payload, len(lines), metrics.String())
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(lines[0]), &m); err != nil {
			t.Fatal(err)
		}
		if m[MetricRejected] != 1.0 || m[MetricFailures] != 0.0 || m["errorType"] != "InvalidInput" || !strings.Contains(lines[0], `"Name":"Rejected"`) {
			t.Errorf("%s: metrics line %s, want Rejected 1 (declared), Failures 0", payload, lines[0])
		}
	}
}
