package localaws

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Moto is a running moto server on a loopback port, reached through a
// front that serialises DynamoDB calls (see serialFront).
type Moto struct {
	Endpoint string // http://127.0.0.1:<port> of the front: what clients use
	Server   string // http://127.0.0.1:<port> of moto_server itself
	PID      int    // the process (and process group) Stop ends

	proc  *process
	log   *tail
	front *serialFront
}

// StartMoto starts `moto_server -H 127.0.0.1 -p <free port>` in its own
// process group and returns once GET /moto-api/ answers. ctx bounds only the
// start (at most a minute in any case); the server runs until Stop.
// It fails if moto_server is not on PATH (the message says how to install
// it), or if the server exits or does not answer in time; then nothing is
// left running.
func StartMoto(ctx context.Context) (*Moto, error) {
	bin, err := exec.LookPath("moto_server")
	if err != nil {
		return nil, errors.New("moto_server not found on PATH: install moto with the server extra (pip install 'moto[server]')")
	}
	return onFreshPorts(ctx, func() (*Moto, error) { return startMoto(ctx, bin) })
}

// onFreshPorts runs start (which picks fresh free ports each time) up to
// three times, in case another process took a port between FreePort and the
// server binding it; it stops early when ctx ends. The error is the last
// attempt's.
func onFreshPorts[T any](ctx context.Context, start func() (T, error)) (T, error) {
	var (
		zero    T
		lastErr error
	)
	for range 3 {
		v, err := start()
		if err == nil {
			return v, nil
		}
		lastErr = err
		if ctx.Err() != nil {
			break
		}
	}
	return zero, lastErr
}

func startMoto(ctx context.Context, bin string) (*Moto, error) {
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	log := &tail{max: 8 << 10}
	cmd := exec.Command(bin, "-H", "127.0.0.1", "-p", strconv.Itoa(port))
	proc, err := startProcess(cmd, log)
	if err != nil {
		return nil, fmt.Errorf("start moto_server: %w", err)
	}
	m := &Moto{Endpoint: "http://127.0.0.1:" + strconv.Itoa(port), PID: proc.pid, proc: proc, log: log}
	m.Server = m.Endpoint

	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	for {
		if m.ready(ctx) {
			if m.front, err = startSerialFront(m.Server); err != nil {
				_ = m.Stop()
				return nil, fmt.Errorf("front for moto_server: %w", err)
			}
			m.Endpoint = m.front.endpoint()
			return m, nil
		}
		select {
		case <-proc.done:
			return nil, fmt.Errorf("moto_server on port %d exited before answering (%v): %s", port, proc.err, strings.TrimSpace(log.String()))
		case <-ctx.Done():
			_ = m.Stop()
			return nil, fmt.Errorf("moto_server on port %d did not answer GET /moto-api/: %w", port, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (m *Moto) ready(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.Endpoint+"/moto-api/", nil)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// Env returns the standard variables that point aws-sdk-go-v2 (and the AWS
// CLI) at this server with dummy credentials, as KEY=value strings.
func (m *Moto) Env() []string {
	return []string{
		"AWS_ENDPOINT_URL=" + m.Endpoint,
		"AWS_REGION=us-east-1",
		"AWS_DEFAULT_REGION=us-east-1",
		"AWS_ACCESS_KEY_ID=test",
		"AWS_SECRET_ACCESS_KEY=test",
	}
}

// TakeDynamoStats returns the DynamoDB calls served since the last call
// (or the start) and starts counting again: how many of each operation, and
// moto's service time for them (see DynamoStats).
func (m *Moto) TakeDynamoStats() DynamoStats {
	if m.front == nil {
		return DynamoStats{}
	}
	return m.front.take()
}

// Reset drops all state of the server (tables, topics, queues, secrets).
func (m *Moto) Reset(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, m.Endpoint+"/moto-api/reset", nil)
	if err != nil {
		return fmt.Errorf("reset moto: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("reset moto: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("reset moto: HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(body)))
	}
	return nil
}

// Stop ends the server's process group by PID and waits for it to exit,
// and closes the front. Calling it again, or after the server died, does
// nothing.
func (m *Moto) Stop() error {
	if m.front != nil {
		_ = m.front.close()
		m.front = nil
	}
	return m.proc.stop(5 * time.Second)
}

// Log returns the last few kilobytes the server wrote, for diagnosing a
// failed test.
func (m *Moto) Log() string { return m.log.String() }

// MotoT starts a moto server for the test, stops it when the test ends, and
// sets the variables of Env for the test (so it cannot run in parallel with
// others). A failure to start is t.Fatal with the reason, never a skip;
// only under -short (the fast lane, which runs without moto) is t skipped.
func MotoT(t testing.TB) *Moto {
	t.Helper()
	SkipShort(t, "moto_server")
	m, err := StartMoto(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Stop(); err != nil {
			t.Errorf("stop moto_server (pid %d): %v", m.PID, err)
		}
	})
	for _, kv := range m.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	return m
}

// SkipShort skips t under go test -short, the fast lane that runs without
// moto_server, the Lambda emulator, cfn-lint and the SAM translator, saying
// which of them the test needs; without -short (make test) it does nothing.
func SkipShort(t testing.TB, needs string) {
	t.Helper()
	if testing.Short() {
		t.Skipf("-short: needs %s (make test runs it)", needs)
	}
}

// startProcess starts cmd with its output (stdout and stderr) to logw and
// the process attributes of procAttr, and reaps it in the background;
// Wait gives its output pipes 5 s after it exits.
func startProcess(cmd *exec.Cmd, logw io.Writer) (*process, error) {
	cmd.Stdout = logw
	cmd.Stderr = logw
	cmd.SysProcAttr = procAttr()
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &process{pid: cmd.Process.Pid, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}
