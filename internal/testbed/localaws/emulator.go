package localaws

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
)

// BuildBootstrap builds the Lambda function in package pkg (a path relative
// to the module root, e.g. "./functions/onboard") as a Linux binary for the
// host's architecture, the way the custom runtime expects it:
// CGO_ENABLED=0, -tags lambda.norpc, -trimpath. The build runs in the module
// root; outPath may be relative to the caller's working directory. The error
// carries the compiler's output.
func BuildBootstrap(ctx context.Context, pkg, outPath string) error {
	root, err := ModuleRoot()
	if err != nil {
		return err
	}
	out, err := filepath.Abs(outPath)
	if err != nil {
		return fmt.Errorf("build %s: %w", pkg, err)
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-tags", "lambda.norpc", "-trimpath", "-o", out, pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH="+runtime.GOARCH, "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build %s: %w: %s", pkg, err, strings.TrimSpace(string(b)))
	}
	return nil
}

var rie struct {
	mu   sync.Mutex
	path string
}

// RIEPath returns the path of the aws-lambda-rie binary recorded as a tool in
// go.mod (`go tool -n aws-lambda-rie`, which builds it on first use). The
// answer is cached for the life of the process; a failure is not.
func RIEPath(ctx context.Context) (string, error) {
	rie.mu.Lock()
	defer rie.mu.Unlock()
	if rie.path != "" {
		return rie.path, nil
	}
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, "go", "tool", "-n", "aws-lambda-rie")
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	b, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("locate aws-lambda-rie (go tool -n aws-lambda-rie in %s): %w: %s", root, err, strings.TrimSpace(stderr.String()))
	}
	p := strings.TrimSpace(string(b))
	if p == "" {
		return "", errors.New("locate aws-lambda-rie: go tool -n printed nothing")
	}
	rie.path = p
	return p, nil
}

// Emulator is a running Lambda Runtime Interface Emulator serving one
// bootstrap on a loopback port. It serves one invocation at a time.
type Emulator struct {
	URL string // http://127.0.0.1:<port>
	PID int    // the emulator process (and process group) Stop ends

	proc *process
}

// StartEmulator starts aws-lambda-rie for the bootstrap binary in its own
// process group, on free loopback ports for both its invoke API and the
// runtime API, and returns once the invoke port accepts connections. The
// process (and so the bootstrap) gets os.Environ() without its AWS_*
// variables, then env (KEY=value, later wins): see emulatorEnv. Its output
// goes to logw (nil discards it); one goroutine at a time writes to it.
// ctx bounds only the start.
func StartEmulator(ctx context.Context, bootstrap string, env []string, logw io.Writer) (*Emulator, error) {
	bin, err := RIEPath(ctx)
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(bootstrap)
	if err != nil {
		return nil, fmt.Errorf("start emulator: %w", err)
	}
	if _, err := os.Stat(abs); err != nil {
		return nil, fmt.Errorf("start emulator: bootstrap: %w", err)
	}
	if logw == nil {
		logw = io.Discard
	}
	return onFreshPorts(ctx, func() (*Emulator, error) { return startEmulator(ctx, bin, abs, env, logw) })
}

func startEmulator(ctx context.Context, bin, bootstrap string, env []string, logw io.Writer) (*Emulator, error) {
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	apiPort, err := FreePort()
	if err != nil {
		return nil, err
	}
	if apiPort == port {
		return nil, errors.New("start emulator: got the same free port twice")
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	cmd := exec.Command(bin,
		"--runtime-interface-emulator-address", addr,
		"--runtime-api-address", "127.0.0.1:"+strconv.Itoa(apiPort),
		bootstrap)
	cmd.Env = emulatorEnv(os.Environ(), env)
	proc, err := startProcess(cmd, logw)
	if err != nil {
		return nil, fmt.Errorf("start aws-lambda-rie: %w", err)
	}
	e := &Emulator{URL: "http://" + addr, PID: proc.pid, proc: proc}

	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	var d net.Dialer
	for {
		if c, err := d.DialContext(ctx, "tcp", addr); err == nil {
			c.Close()
			return e, nil
		}
		select {
		case <-proc.done:
			return nil, fmt.Errorf("aws-lambda-rie on %s exited before listening: %v", addr, proc.err)
		case <-ctx.Done():
			_ = e.Stop()
			return nil, fmt.Errorf("aws-lambda-rie on %s did not listen: %w", addr, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// emulatorEnv is base without AWS_LAMBDA_MAX_CONCURRENCY (it switches the
// emulator to another code path), followed by extra.
// FunctionEnviron is the environment a function process started by hand
// (not under the emulator) gets, as under the emulator: this process's
// environment without its AWS_* variables, then extra (see emulatorEnv).
func FunctionEnviron(extra ...string) []string { return emulatorEnv(os.Environ(), extra) }

// emulatorEnv is the environment of the emulator and so of the function:
// the host's, without its AWS_* variables, then extra. Lambda gives a
// function only its own configuration and the AWS_* values it sets itself,
// never the shell's AWS settings: a developer's AWS_PROFILE or
// AWS_CONFIG_FILE must not reach the function under test, and neither must
// a machine's AWS_CA_BUNDLE (the SDK parses the whole bundle at every cold
// start: about a third of the onboarding function's start-up work on a
// machine that sets it). AWS_LAMBDA_MAX_CONCURRENCY (the emulator's own
// switch) goes with them. What the function needs of AWS_* (region,
// credentials, AWS_ENDPOINT_URL) comes in extra (Stack.FunctionEnv).
func emulatorEnv(base, extra []string) []string {
	out := make([]string, 0, len(base)+len(extra))
	for _, kv := range base {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "AWS_") {
			continue
		}
		out = append(out, kv)
	}
	return append(out, extra...)
}

// Invoke sends payload as the event and returns the raw response body.
// A handler error is not an error here: the emulator answers HTTP 200 with
// {"errorMessage": ..., "errorType": ...}. Err is set only when the request
// fails or the status is not 200.
func (e *Emulator) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.URL+"/2015-03-31/functions/function/invocations", bytes.NewReader(payload))
	if err != nil {
		return nil, fmt.Errorf("invoke emulator: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("invoke emulator: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("invoke emulator: read response: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return body, fmt.Errorf("invoke emulator: HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(body)))
	}
	return body, nil
}

// Stop ends the emulator's process group (the emulator and the bootstrap it
// started) by PID and waits for it. Calling it again does nothing.
func (e *Emulator) Stop() error {
	return e.proc.stop(5 * time.Second)
}
