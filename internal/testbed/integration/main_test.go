// Package integration runs the two services in-process with their real
// adapters against moto server and the dev portal over real HTTP. The Lambda
// wiring is the functions' own (wiring.Load reads the same environment).
package integration

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"ipguard/internal/audit"
	"ipguard/internal/config"
	"ipguard/internal/onboard"
	"ipguard/internal/testbed/localaws"
	"ipguard/internal/testbed/localdeploy"
	"ipguard/internal/wiring"
)

var moto *localaws.Moto

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run()) // no moto: every test that deploys skips
	}
	var err error
	moto, err = localaws.StartMoto(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, "integration tests need moto server:", err)
		os.Exit(1)
	}
	code := m.Run()
	moto.Stop()
	os.Exit(code)
}

// deploy resets moto, stands the local deployment up and points this
// process's environment (as a Lambda's) at it.
func deploy(t *testing.T, extraEnv ...string) *localdeploy.Stack {
	t.Helper()
	s := standUp(t)
	setenv(t, s.FunctionEnv(extraEnv...))
	return s
}

// standUp stands the local deployment up on this process's moto, closed
// when t ends; skipped under -short only.
func standUp(t *testing.T) *localdeploy.Stack {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: needs moto_server (make test runs it)")
	}
	s, err := localdeploy.Start(context.Background(), localdeploy.Options{Moto: moto})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func setenv(t *testing.T, env []string) {
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
}

// handler is a function's Lambda handler, as lambda.Start would call it.
type handler[T any] func(context.Context, []byte) (T, error)

func (h handler[T]) Handle(ctx context.Context, payload []byte) (T, error) { return h(ctx, payload) }

func onboardService(t *testing.T) handler[onboard.Result] {
	t.Helper()
	return loadQuiet(t, config.Onboard).OnboardHandler()
}

// meteredOnboardService is onboardService with its metrics lines kept in
// the buffer it returns (reset it before the invocation to read).
func meteredOnboardService(t *testing.T) (handler[onboard.Result], *bytes.Buffer) {
	t.Helper()
	d := loadQuiet(t, config.Onboard)
	lines := &bytes.Buffer{}
	d.MetricsOut = lines
	return d.OnboardHandler(), lines
}

func auditService(t *testing.T) handler[audit.Result] {
	t.Helper()
	return loadQuiet(t, config.Audit).AuditHandler()
}

// auditRun has svc run the scheduled audit as at, failing the test if the
// run errs.
func auditRun(t *testing.T, svc handler[audit.Result], at time.Time) {
	t.Helper()
	if _, err := svc.Handle(context.Background(), scheduled(at)); err != nil {
		t.Fatal(err)
	}
}

// loadQuiet wires fn from the environment as its Lambda would, logging
// into the test (see quiet).
func loadQuiet(t *testing.T, fn config.Function) wiring.Deps {
	t.Helper()
	d, err := wiring.Load(context.Background(), fn)
	if err != nil {
		t.Fatal(err)
	}
	quiet(t, &d)
	return d
}

// quiet sends the services' log lines to a buffer that is printed only when
// the test fails, and drops the metrics lines: thousands of lines through
// go test's stdout pipe would slow a loaded machine down.
func quiet(t *testing.T, d *wiring.Deps) {
	t.Helper()
	var buf localaws.LogBuffer
	d.Log = wiring.NewLogger(&buf, slog.LevelDebug)
	d.MetricsOut = io.Discard
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("service log:\n%s", buf.String())
		}
	})
}
