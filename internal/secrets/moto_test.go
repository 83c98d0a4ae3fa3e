package secrets_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"ipguard/internal/ipguard"
	"ipguard/internal/secrets"
)

// TestKeySourceAgainstMoto reads real Secrets Manager responses from a local
// moto server: by name, by ARN, JSON form, and a missing secret.
func TestKeySourceAgainstMoto(t *testing.T) {
	endpoint := startMoto(t)
	t.Setenv("AWS_ENDPOINT_URL", endpoint)
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CONFIG_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", t.TempDir()+"/none")

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		t.Fatalf("LoadDefaultConfig: %v", err)
	}
	sm := secretsmanager.NewFromConfig(cfg)

	const key = "sk-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	create := func(name, value string) string {
		out, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(value)})
		if err != nil {
			t.Fatalf("CreateSecret %s: %v", name, err)
		}
		return aws.ToString(out.ARN)
	}
	rawARN := create("ipguard/docspace-api-key", key+"\n")
	jsonARN := create("ipguard/docspace-api-key-json", `{"apiKey":"`+key+`"}`)

	tests := []struct {
		name, id string
	}{
		{"raw by name", "ipguard/docspace-api-key"},
		{"raw by ARN", rawARN},
		{"JSON by name", "ipguard/docspace-api-key-json"},
		{"JSON by ARN", jsonARN},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := secrets.NewKeySource(sm, tt.id, 0).Key(ctx)
			if err != nil || got != key {
				t.Fatalf("Key() = %q, %v; want the stored key", got, err)
			}
		})
	}

	t.Run("missing secret", func(t *testing.T) {
		_, err := secrets.NewKeySource(sm, "ipguard/no-such-secret", 0).Key(ctx)
		var ie *ipguard.Error
		if !errors.As(err, &ie) || ie.Code != ipguard.EConfig || ie.Field != "DOCSPACE_API_KEY_SECRET_ID" || ie.Value != "ipguard/no-such-secret" {
			t.Fatalf("err = %#v, want EConfig naming the secret", err)
		}
		if !strings.Contains(err.Error(), "does not exist") {
			t.Errorf("Error() = %q, want it to say the secret does not exist", err)
		}
	})
}

// startMoto runs a moto server on a free loopback port until the test ends
// and returns its endpoint URL.
func startMoto(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("moto_server")
	if err != nil {
		t.Fatal("moto_server not found: install moto[server] (pip install 'moto[server]') so that moto_server is on PATH")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()

	var logs lockedBuffer
	cmd := exec.Command(bin, "-H", "127.0.0.1", "-p", strconv.Itoa(port))
	cmd.Stdout, cmd.Stderr = &logs, &logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // its own group, so a wrapper's children go too
	if err := cmd.Start(); err != nil {
		t.Fatalf("start moto_server: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
	})

	endpoint := "http://127.0.0.1:" + strconv.Itoa(port)
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := client.Get(endpoint + "/moto-api/")
		if err == nil {
			_ = resp.Body.Close()
			return endpoint
		}
		select {
		case <-exited:
			t.Fatalf("moto_server exited before answering: %s", logs.String())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("moto_server did not answer on %s within 30s: %s", endpoint, logs.String())
		}
	}
}

// lockedBuffer collects a child's output written from another goroutine.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
