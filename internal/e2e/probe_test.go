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

	"ipguard/internal/localdeploy"
)

func TestProbeBadConfigs(t *testing.T) {
	s := deploy(t)
	ctx := context.Background()
	html := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, "<html><body>Welcome "+r.Header.Get("Authorization")[:20]+"</body></html>")
	}))
	defer html.Close()
	nf := httptest.NewServer(http.NotFoundHandler())
	defer nf.Close()
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(502)
		a := r.Header.Get("Authorization")
		fmt.Fprintf(w, "bad gateway; header was %q; escaped %s", a[:len(a)-10], strings.ReplaceAll(a, "-", "\\u002d"))
	}))
	defer echo.Close()
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := l.Addr().String()
	l.Close()
	portalHostPort := strings.TrimPrefix(s.PortalURL, "http://")
	cases := []struct {
		name string
		env  []string
		pre  func()
	}{
		{"html", []string{"DOCSPACE_API_HOST=" + html.URL}, nil},
		{"404", []string{"DOCSPACE_API_HOST=" + nf.URL}, nil},
		{"echo", []string{"DOCSPACE_API_HOST=" + echo.URL, "DOCSPACE_TIMEOUT=2s"}, nil},
		{"refused", []string{"DOCSPACE_API_HOST=http://" + closed}, nil},
		{"https-to-http", []string{"DOCSPACE_API_HOST=https://" + portalHostPort}, nil},
		{"unresolvable", []string{"DOCSPACE_API_HOST=https://portal.example.invalid"}, nil},
		{"missing-table", []string{"ALLOWLIST_TABLE=nope"}, nil},
		{"missing-topic", []string{"ALERT_TOPIC_ARN=arn:aws:sns:us-east-1:123456789012:nope"}, nil},
		{"missing-secret", []string{"DOCSPACE_API_KEY_SECRET_ID=nope"}, nil},
		{"bad-json-shape", nil, func() {
			s.SM.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(localdeploy.SecretName), SecretString: aws.String(`{"key": "` + s.APIKey + `"}`)})
		}},
		{"bad-json-num", nil, func() {
			s.SM.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(localdeploy.SecretName), SecretString: aws.String(`{"apiKey": 5}`)})
		}},
		{"bad-json-arr", nil, func() {
			s.SM.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(localdeploy.SecretName), SecretString: aws.String(`["` + s.APIKey + `"]`)})
		}},
		{"expired-key", nil, func() {
			v, _ := json.Marshal(map[string]string{"apiKey": s.APIKey})
			s.SM.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(localdeploy.SecretName), SecretString: aws.String(string(v))})
			k, _ := s.Portal.Key(s.APIKey)
			past := time.Now().Add(-time.Hour)
			k.ExpiresAt = &past
			s.Portal.PutKey(k)
		}},
	}
	for _, c := range cases {
		if c.pre != nil {
			c.pre()
		}
		for _, fnName := range []string{"audit", "onboard"} {
			fn := startFunction(t, fnName, append(s.FunctionEnv("LOG_LEVEL=info", "AUDIT_SCHEDULE=rate(5 minutes)"), c.env...))
			var r response
			if fnName == "audit" {
				r = fn.invoke(t, scheduledEvent(time.Now()))
			} else {
				r = fn.invoke(t, map[string]any{"id": janeID, "email": "jane.roe@example.com", "allowedIps": []string{"203.0.113.10"}})
			}
			st := fn.invoke(t, map[string]any{"action": "status"})
			time.Sleep(200 * time.Millisecond)
			fn.stop()
			metrics, _ := logLines(t, fn.log.String())
			t.Logf("=== %s %s: %s\n  status: %s\n  emf lines: %d", c.name, fnName, r.Raw, st.Raw, len(metrics))
			for _, m := range metrics {
				b, _ := json.Marshal(m)
				t.Logf("   emf: %s", b)
			}
			if strings.Contains(fn.log.String(), s.APIKey[10:18]) || strings.Contains(string(r.Raw)+string(st.Raw), s.APIKey[10:18]) {
				t.Errorf("KEY LEAK in %s %s", c.name, fnName)
				t.Log(fn.log.String())
			}
		}
	}
}
