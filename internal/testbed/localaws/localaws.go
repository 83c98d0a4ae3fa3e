// Package localaws starts and stops the real local stand-ins for AWS that
// integration tests, end-to-end tests and `make demo` run against: moto
// server (DynamoDB, SNS, SQS, Secrets Manager) and the Lambda Runtime
// Interface Emulator. Every process listens on a free loopback port, runs in
// its own process group and is stopped by its PID, never by name.
package localaws

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
)

// startTimeout bounds how long a started process may take to answer.
const startTimeout = 60 * time.Second

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
// Another process may take it before the caller binds it; the Start
// functions retry on a fresh port when that happens.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free loopback port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Config loads the AWS configuration the way the Lambda functions do:
// config.LoadDefaultConfig with standard resolution only, so after
// MotoT (or with Moto.Env in the environment) it points at moto through
// AWS_ENDPOINT_URL. It knows nothing else about moto.
func Config(ctx context.Context) (aws.Config, error) {
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return aws.Config{}, fmt.Errorf("load AWS config: %w", err)
	}
	return cfg, nil
}

// ModuleRoot returns the directory of the go.mod found by walking up from the
// working directory.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find module root: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("find module root: no go.mod in the working directory or above")
		}
		dir = parent
	}
}

// process is a started child in its own process group, stopped by PID.
type process struct {
	pid  int
	done chan struct{} // closed when Wait has returned
	err  error         // Wait's result, valid after done

	stopOnce sync.Once
	stopErr  error
}

// stop sends SIGTERM to the process group, then SIGKILL if it has not
// exited after grace, and waits for the exit. Safe to call more than once.
func (p *process) stop(grace time.Duration) error {
	p.stopOnce.Do(func() {
		if !p.exited() {
			if err := syscall.Kill(-p.pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
				p.stopErr = fmt.Errorf("stop process group %d: %w", p.pid, err)
			}
			select {
			case <-p.done:
			case <-time.After(grace):
				_ = syscall.Kill(-p.pid, syscall.SIGKILL)
				<-p.done
			}
		}
		// Children that outlived the leader still belong to its group.
		_ = syscall.Kill(-p.pid, syscall.SIGKILL)
	})
	return p.stopErr
}

// exited reports whether the process has already exited.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// tail keeps the last bytes written to it, for error messages.
type tail struct {
	mu  sync.Mutex
	buf []byte
	max int
}

func (t *tail) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, b...)
	if len(t.buf) > t.max {
		t.buf = append([]byte(nil), t.buf[len(t.buf)-t.max:]...)
	}
	return len(b), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
