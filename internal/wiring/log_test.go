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
