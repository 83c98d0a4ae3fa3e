// Package e2e runs the real function binaries end to end: each bootstrap is
// built as Lambda builds it, runs under the Lambda Runtime Interface Emulator
// and talks to a whole local deployment (moto for DynamoDB, SNS, SQS and
// Secrets Manager, the dev DocSpace portal), the way `sam local invoke` would.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ipguard/internal/testbed/localaws"
	"ipguard/internal/testbed/localdeploy"
)

// functionTimeout is AWS_LAMBDA_FUNCTION_TIMEOUT for every emulator: long
// enough for the DocSpace client's retries with backoff.
const functionTimeout = "60"

// productVariables are every variable a function reads. They are removed from
// this process's environment (which the emulator passes on), so each test
// decides the function's whole configuration.
var productVariables = []string{
	"DOCSPACE_API_HOST", "DOCSPACE_ALLOW_HTTP", "DOCSPACE_API_KEY_SECRET_ID", "DOCSPACE_TIMEOUT",
	"ALLOWLIST_TABLE", "ALERT_TOPIC_ARN", "SECRET_CACHE_TTL", "LOG_LEVEL",
	"PORTAL_MAX_RANGE_ADDRESSES", "PORTAL_BREAKGLASS_IPS", "PORTAL_ENFORCE",
	"PORTAL_MAX_ENTRIES", "PORTAL_DRIFT_REPAIR", "OFFBOARD_REMOVED_USERS", "OFFBOARD_MAX_PERCENT",
	"ALLOWLIST_MIN_PREFIX_V4", "ALLOWLIST_MIN_PREFIX_V6", "LEASE_WAIT",
	"AUDIT_OVERLAP", "AUDIT_LOOKBACK", "AUDIT_DEADLINE_MARGIN", "FAILED_LOGIN_THRESHOLD",
	"UNKNOWN_USER_POLICY", "ALERT_MODE", "ALERT_RETENTION", "METRICS_NAMESPACE", "AUDIT_SCHEDULE", "HEARTBEAT_MAX_LAG_SECONDS", "ALARM_PERIOD_SECONDS",
	"AUDIT_CONCURRENCY", "PORTAL_REQUESTS_PER_MINUTE", "SYNC_SCHEDULE", "SYNC_HEARTBEAT_PERIOD_SECONDS",
}

// Set up once per test binary by TestMain. A setup failure (a missing tool,
// a build error) fails every test with its message; it never skips one.
var (
	bootstraps = map[string]string{} // "onboard", "audit" → bootstrap path
	moto       *localaws.Moto
	setupErr   error
)

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "ipguard-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	for _, k := range productVariables {
		os.Unsetenv(k)
	}
	flag.Parse()
	if testing.Short() {
		setupErr = errShort // nothing is built or started; every test skips
	} else {
		setupErr = setup(context.Background(), dir)
	}
	defer func() {
		if moto != nil {
			if err := moto.Stop(); err != nil {
				fmt.Fprintf(os.Stderr, "e2e: stop moto_server (pid %d): %v\n", moto.PID, err)
			}
		}
	}()
	return m.Run()
}

func setup(ctx context.Context, dir string) error {
	for _, fn := range []string{"onboard", "audit"} {
		out := filepath.Join(dir, fn, "bootstrap")
		if err := localaws.BuildBootstrap(ctx, "./functions/"+fn, out); err != nil {
			return err
		}
		bootstraps[fn] = out
	}
	if _, err := localaws.RIEPath(ctx); err != nil {
		return err
	}
	var err error
	moto, err = localaws.StartMoto(ctx)
	return err
}

// errShort is the setup of a -short run: none.
var errShort = errors.New("not set up under -short")

// needSetup skips t under -short (the fast lane runs without moto and the
// emulator; make test runs these) and fails it, with the reason, when the
// setup failed: a missing tool is a failure, never a skip.
func needSetup(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: needs moto_server and the Lambda emulator (make test runs it)")
	}
	if setupErr != nil {
		t.Fatalf("e2e setup: %v", setupErr)
	}
}

// deploy stands up a fresh local deployment on the shared moto server (reset
// first) and closes it when the test ends.
func deploy(t testing.TB) *localdeploy.Stack {
	t.Helper()
	needSetup(t)
	s, err := localdeploy.Start(context.Background(), localdeploy.Options{Moto: moto})
	if err != nil {
		t.Fatalf("start local deployment: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close local deployment: %v", err)
		}
	})
	return s
}

// function is one bootstrap running under its own emulator.
type function struct {
	name string
	emu  *localaws.Emulator
	log  *localaws.LogBuffer
}

// startFunction runs the named bootstrap ("onboard" or "audit") under the
// emulator with exactly env (plus the function timeout) as its
// configuration, and stops it when the test ends; the function's log is
// printed if the test failed.
func startFunction(t testing.TB, name string, env []string) *function {
	t.Helper()
	return startFunctionTimeout(t, name, env, functionTimeout)
}

// startFunctionTimeout is startFunction with a function timeout of seconds.
func startFunctionTimeout(t testing.TB, name string, env []string, seconds string) *function {
	t.Helper()
	needSetup(t)
	f := &function{name: name, log: &localaws.LogBuffer{}}
	env = append(append([]string(nil), env...), "AWS_LAMBDA_FUNCTION_TIMEOUT="+seconds)
	e, err := localaws.StartEmulator(context.Background(), bootstraps[name], env, f.log)
	if err != nil {
		t.Fatalf("start %s under the emulator: %v", name, err)
	}
	f.emu = e
	t.Cleanup(func() {
		if err := f.stop(); err != nil {
			t.Errorf("stop %s emulator (pid %d): %v", name, e.PID, err)
		}
		if t.Failed() {
			t.Logf("%s function log:\n%s", name, f.log.String())
		}
	})
	return f
}

// stop ends the emulator and its bootstrap; safe to call again.
func (f *function) stop() error { return f.emu.Stop() }

// response is the emulator's answer: a result, or a handler error.
type response struct {
	Raw          []byte
	ErrorType    string `json:"errorType"`
	ErrorMessage string `json:"errorMessage"`
}

// invoke sends payload (raw JSON bytes, or any value to marshal) and returns
// the answer. A failed request is fatal; a handler error is not.
func (f *function) invoke(t testing.TB, payload any) response {
	t.Helper()
	body, ok := payload.([]byte)
	if !ok {
		var err error
		if body, err = json.Marshal(payload); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := f.emu.Invoke(context.Background(), body)
	if err != nil {
		t.Fatalf("invoke %s: %v", f.name, err)
	}
	r := response{Raw: raw}
	if bytes.HasPrefix(bytes.TrimSpace(raw), []byte("{")) {
		if err := json.Unmarshal(raw, &r); err != nil {
			t.Fatalf("invoke %s: response %s: %v", f.name, raw, err)
		}
	}
	return r
}

// result decodes a successful response into v; a handler error is fatal.
func (r response) result(t testing.TB, v any) {
	t.Helper()
	if r.ErrorType != "" || r.ErrorMessage != "" {
		t.Fatalf("invocation failed: %s: %s", r.ErrorType, r.ErrorMessage)
	}
	if err := json.Unmarshal(r.Raw, v); err != nil {
		t.Fatalf("decode result %s: %v", r.Raw, err)
	}
}

// scheduledEvent is the EventBridge "Scheduled Event" envelope for a run at at.
func scheduledEvent(at time.Time) map[string]any {
	return map[string]any{
		"version":     "0",
		"id":          "0d3c1a9e-2f4b-4c5d-8e6f-7a8b9c0d1e2f",
		"detail-type": "Scheduled Event",
		"source":      "aws.events",
		"account":     "123456789012",
		"time":        at.UTC().Format(time.RFC3339),
		"region":      localdeploy.Region,
		"resources":   []string{"arn:aws:events:us-east-1:123456789012:rule/docspace-ip-guard-AuditSchedule"},
		"detail":      map[string]any{},
	}
}

// without returns env without the variable named key.
func without(env []string, key string) []string {
	var out []string
	for _, kv := range env {
		if k, _, _ := strings.Cut(kv, "="); k != key {
			out = append(out, kv)
		}
	}
	return out
}
