package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"ipguard/internal/testbed/localdeploy"
	"ipguard/internal/wiring"
)

// A new user's mistakes, each run through the real audit bootstrap: each is
// an error whose type says what to do and whose message names what to fix,
// each still writes its one metrics line (so the failure alarms see it), and
// none shows any part of the key.
func TestEveryMisconfiguredAuditFailsClearlyAndIsCounted(t *testing.T) {
	s := deploy(t)
	ctx := context.Background()
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		a := r.Header.Get("Authorization")
		fmt.Fprintf(w, "<html>Welcome %s</html>", a[:len(a)-30])
	}))
	defer echo.Close()
	nf := httptest.NewServer(http.NotFoundHandler())
	defer nf.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	portalHostPort := strings.TrimPrefix(s.PortalURL, "http://")
	putSecret := func(v string) func() {
		return func() {
			if _, err := s.SM.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(localdeploy.SecretName), SecretString: aws.String(v)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	good, _ := json.Marshal(map[string]string{"apiKey": s.APIKey})
	tests := []struct {
		name      string
		env       []string
		before    func()
		errorType string
		says      []string
	}{
		{"a web page instead of the API", []string{"DOCSPACE_API_HOST=" + echo.URL}, nil, "ConfigurationError", []string{"DOCSPACE_API_HOST", "does not serve the DocSpace API"}},
		{"a URL that answers 404", []string{"DOCSPACE_API_HOST=" + nf.URL}, nil, "ConfigurationError", []string{"DOCSPACE_API_HOST", "404"}},
		{"https to a plain-http port", []string{"DOCSPACE_API_HOST=https://" + portalHostPort}, nil, "ConfigurationError", []string{"DOCSPACE_API_HOST", "TLS"}},
		{"a missing table", []string{"ALLOWLIST_TABLE=nope"}, nil, "ConfigurationError", []string{"ALLOWLIST_TABLE=nope", "not found"}},
		{"a missing secret", []string{"DOCSPACE_API_KEY_SECRET_ID=nope"}, nil, "ConfigurationError", []string{`DOCSPACE_API_KEY_SECRET_ID "nope"`, "does not exist"}},
		{"a secret of the wrong shape", nil, putSecret(`["` + s.APIKey + `"]`), "ConfigurationError", []string{"DOCSPACE_API_KEY_SECRET_ID", "JSON array"}},
		{"an apiKey that is not a string", nil, putSecret(`{"apiKey": 5}`), "ConfigurationError", []string{"DOCSPACE_API_KEY_SECRET_ID", "apiKey member is not a string"}},
		{"a bad variable", []string{"AUDIT_OVERLAP=5 minutes"}, putSecret(string(good)), "ConfigurationError", []string{"AUDIT_OVERLAP"}},
	}
	l.Close()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.before != nil {
				tt.before()
			}
			fn := startFunction(t, "audit", append(s.FunctionEnv("LOG_LEVEL=debug"), tt.env...))
			r := fn.invoke(t, scheduledEvent(time.Now()))
			if r.ErrorType != tt.errorType {
				t.Errorf("errorType %q, want %q: %s", r.ErrorType, tt.errorType, r.Raw)
			}
			for _, w := range tt.says {
				if !strings.Contains(r.ErrorMessage, w) {
					t.Errorf("message %q does not say %q", r.ErrorMessage, w)
				}
			}
			// The first line says what to fix, not a chain of wrapped causes.
			first, _, _ := strings.Cut(r.ErrorMessage, "\n")
			if !strings.Contains(first, tt.says[0]) || strings.HasPrefix(first, "audit:") || strings.HasPrefix(first, "docspace:") {
				t.Errorf("first line %q does not start with what to fix (%s)", first, tt.says[0])
			}
			time.Sleep(100 * time.Millisecond) // let the emulator copy the last lines
			if err := fn.stop(); err != nil {
				t.Fatal(err)
			}
			metrics, _ := logLines(t, fn.log.String())
			if len(metrics) != 1 || metrics[0][wiring.MetricFailures] != 1.0 || metrics[0][wiring.PrefixFailures+tt.errorType] != 1.0 {
				t.Errorf("metrics lines %v, want one with Failures 1 and %s%s 1", metrics, wiring.PrefixFailures, tt.errorType)
			}
			for i := 0; i+8 <= len(s.APIKey); i++ {
				if run := s.APIKey[i : i+8]; strings.Contains(fn.log.String(), run) || strings.Contains(string(r.Raw), run) {
					t.Fatalf("the key's characters %q are in the log or the answer", run)
				}
			}
		})
	}
}
