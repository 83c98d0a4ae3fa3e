package docspace_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"ipguard/internal/docspace"
	"ipguard/internal/ipguard"
)

func TestNewChecksBaseURL(t *testing.T) {
	tests := []struct {
		name      string
		url       string
		allowHTTP bool
		wantErr   string // substring; "" means valid
	}{
		{"https portal", "https://portal.example.com", false, ""},
		{"trailing slash", "https://portal.example.com/", false, ""},
		{"api suffix", "https://portal.example.com/api/2.0/", false, ""},
		{"http refused by default", "http://portal.example.com", false, `DOCSPACE_API_HOST "http://portal.example.com": must use https://`},
		{"http allowed for local use", "http://127.0.0.1:8080", true, ""},
		{"no scheme", "portal.example.com", false, `DOCSPACE_API_HOST "portal.example.com": must be an https:// URL`},
		{"no host", "https://", false, "has no host"},
		{"empty", "", false, "DOCSPACE_API_HOST: is empty"},
		{"ftp", "ftp://portal.example.com", false, "must be an https:// URL"},
		{"credentials", "https://admin:hunter2@portal.example.com", false, "must not contain credentials"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := docspace.New(docspace.Options{BaseURL: tt.url, AllowHTTP: tt.allowHTTP, Keys: staticKey(testKey)})
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("New(%q) = %v, want nil", tt.url, err)
				}
				return
			}
			var ie *ipguard.Error
			if !errors.As(err, &ie) || ie.Code != ipguard.EConfig || ie.Field != "DOCSPACE_API_HOST" {
				t.Fatalf("New(%q) = %#v, want EConfig on DOCSPACE_API_HOST", tt.url, err)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("New(%q) = %q, want it to contain %q", tt.url, err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error %q shows the password from the URL", err)
			}
		})
	}
}

func TestBaseURLWithAPISuffixReachesTheSamePaths(t *testing.T) {
	var got []string
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.URL.Path)
		reply(w, 200, `{"response":[],"count":0,"status":0,"statusCode":200}`)
	})
	for _, base := range []string{s.URL, s.URL + "/", s.URL + "/api/2.0", s.URL + "/api/2.0/"} {
		if _, err := newClient(t, base, nil).IPRestrictions(context.Background()); err != nil {
			t.Fatalf("base %q: %v", base, err)
		}
	}
	for _, p := range got {
		if p != "/api/2.0/settings/iprestrictions" {
			t.Errorf("path = %q, want /api/2.0/settings/iprestrictions", p)
		}
	}
}

func TestRequestsCarryHeaders(t *testing.T) {
	type seen struct{ method, accept, ctype, auth string }
	var got []seen
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		got = append(got, seen{r.Method, r.Header.Get("Accept"), r.Header.Get("Content-Type"), r.Header.Get("Authorization")})
		reply(w, 200, `{"response":{"enable":true},"count":1,"status":0,"statusCode":200}`)
	})
	c := newClient(t, s.URL, nil)
	ctx := context.Background()
	if _, err := c.IPRestrictionsEnabled(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.PutIPRestrictions(ctx, nil, false); err != nil {
		t.Fatal(err)
	}
	want := []seen{
		{"GET", "application/json", "", "Bearer " + testKey},
		{"PUT", "application/json", "application/json", "Bearer " + testKey},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d requests, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("request %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestRetries(t *testing.T) {
	tests := []struct {
		name      string
		failures  int    // answers before success
		status    int    // failing status
		header    string // Retry-After on failures
		body      string
		wantOK    bool
		wantHits  int32
		wantState int // Status of the returned error
	}{
		{name: "503 twice then OK", failures: 2, status: 503, wantOK: true, wantHits: 3},
		{name: "429 with Retry-After seconds then OK", failures: 1, status: 429, header: "1", wantOK: true, wantHits: 2},
		{name: "429 with past HTTP-date then OK", failures: 1, status: 429, header: "Mon, 02 Jan 2006 15:04:05 GMT", wantOK: true, wantHits: 2},
		{name: "502 HTML then OK", failures: 1, status: 502, body: "<html><body>Bad Gateway</body></html>", wantOK: true, wantHits: 2},
		{name: "504 every time gives up after MaxAttempts", failures: 99, status: 504, wantHits: 3, wantState: 504},
		{name: "400 not retried", failures: 99, status: 400, body: `{"error":{"message":"IpRestrictions"},"status":1,"statusCode":400}`, wantHits: 1, wantState: 400},
		{name: "401 not retried without Invalidate", failures: 99, status: 401, wantHits: 1, wantState: 401},
		{name: "403 not retried", failures: 99, status: 403, wantHits: 1, wantState: 403},
		{name: "404 not retried", failures: 99, status: 404, wantHits: 1, wantState: 404},
		{name: "500 not retried", failures: 99, status: 500, body: `{"error":{"message":"boom"},"status":1,"statusCode":500}`, wantHits: 1, wantState: 500},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s *server
			s = newServer(t, func(w http.ResponseWriter, r *http.Request) {
				if int(s.hits.Load()) <= tt.failures {
					if tt.header != "" {
						w.Header().Set("Retry-After", tt.header)
					}
					if strings.HasPrefix(tt.body, "<") {
						w.Header().Set("Content-Type", "text/html")
					}
					w.WriteHeader(tt.status)
					_, _ = w.Write([]byte(tt.body))
					return
				}
				reply(w, 200, `{"response":[{"id":1,"tenantId":1,"ip":"203.0.113.10","forAdmin":false}],"count":1,"status":0,"statusCode":200}`)
			})
			list, err := newClient(t, s.URL, nil).IPRestrictions(context.Background())
			if got := s.hits.Load(); got != tt.wantHits {
				t.Errorf("server saw %d requests, want %d", got, tt.wantHits)
			}
			if tt.wantOK {
				if err != nil || len(list) != 1 {
					t.Fatalf("IPRestrictions = %v, %v; want one entry", list, err)
				}
				return
			}
			e := asDocspace(t, err)
			if e.Status != tt.wantState || e.Attempts != int(tt.wantHits) {
				t.Errorf("Status, Attempts = %d, %d; want %d, %d (%v)", e.Status, e.Attempts, tt.wantState, tt.wantHits, err)
			}
		})
	}
}

func TestPutIsRetriedWithTheSameBody(t *testing.T) {
	var bodies []string
	var s *server
	s = newServer(t, func(w http.ResponseWriter, r *http.Request) {
		var b bytes.Buffer
		_, _ = b.ReadFrom(r.Body)
		bodies = append(bodies, b.String())
		if s.hits.Load() == 1 {
			w.WriteHeader(503)
			return
		}
		reply(w, 200, `{"response":{"ipRestrictions":[]},"count":1,"status":0,"statusCode":200}`)
	})
	err := newClient(t, s.URL, nil).PutIPRestrictions(context.Background(), []ipguard.Restriction{{IP: "203.0.113.10"}}, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(bodies) != 2 || bodies[0] != bodies[1] || bodies[0] == "" {
		t.Errorf("bodies = %q, want the same non-empty body twice", bodies)
	}
}

func TestNetworkErrorIsRetried(t *testing.T) {
	var s *server
	s = newServer(t, func(w http.ResponseWriter, r *http.Request) {
		if s.hits.Load() <= 2 { // drop the connection without an answer
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				_ = conn.Close()
			}
			return
		}
		reply(w, 200, `{"response":[],"count":0,"status":0,"statusCode":200}`)
	})
	list, err := newClient(t, s.URL, func(o *docspace.Options) { o.MaxAttempts = 5 }).IPRestrictions(context.Background())
	if err != nil {
		t.Fatalf("IPRestrictions: %v", err)
	}
	if list == nil || len(list) != 0 {
		t.Errorf("list = %#v, want empty non-nil", list)
	}
}

func TestNoServerFailsAfterMaxAttempts(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close() // nothing listens there now

	_, err = newClient(t, "http://"+addr, nil).IPRestrictions(context.Background())
	e := asDocspace(t, err)
	if e.Status != 0 || e.Attempts != 3 || e.Code() != ipguard.EUnavailable || e.Err == nil {
		t.Errorf("got %#v, want Status 0, 3 attempts, EUnavailable with a cause", e)
	}
}

func TestTimeoutOnEveryAttempt(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // never answer
	})
	_, err := newClient(t, s.URL, func(o *docspace.Options) {
		o.Timeout = 50 * time.Millisecond
		o.MaxAttempts = 2
	}).IPRestrictionsEnabled(context.Background())
	e := asDocspace(t, err)
	if e.Attempts != 2 || e.Status != 0 || !strings.Contains(e.Error(), "no answer within 50ms") {
		t.Errorf("err = %v, want no answer within 50ms after 2 attempts", err)
	}
	if ipguard.ErrorCode(err) != ipguard.EUnavailable {
		t.Errorf("code = %s, want %s", ipguard.ErrorCode(err), ipguard.EUnavailable)
	}
}

func TestRetryAfterBeyondDeadlineReturnsAtOnce(t *testing.T) {
	tests := []struct {
		status int
		header string
		want   time.Duration
	}{
		{status: http.StatusTooManyRequests, header: "60", want: 60 * time.Second},
		{status: http.StatusServiceUnavailable, header: "120", want: 120 * time.Second},
	}
	for _, tt := range tests {
		t.Run(http.StatusText(tt.status), func(t *testing.T) {
			s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Retry-After", tt.header)
				w.WriteHeader(tt.status)
			})
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			c := newClient(t, s.URL, nil)
			_, err := c.IPRestrictions(ctx)
			if ctx.Err() != nil {
				t.Fatalf("the call waited until the deadline; it should have stopped when the wait could not fit")
			}
			e := asDocspace(t, err)
			if e.Status != tt.status || e.Attempts != 1 || e.Code() != ipguard.EUnavailable {
				t.Errorf("got %v, want the %d after 1 attempt", err, tt.status)
			}
			var past *ipguard.WaitPastDeadlineError
			if !errors.As(err, &past) || past.Wait != tt.want {
				t.Errorf("got %v (%#v); want a WaitPastDeadlineError of %s", err, past, tt.want)
			}
			if !strings.Contains(err.Error(), "Retry-After") {
				t.Errorf("error %q does not name the portal's Retry-After", err)
			}
			// The client holds every request for the portal's wait: the
			// next call also returns at once, with the same typed error.
			_, err = c.IPRestrictions(ctx)
			if ctx.Err() != nil {
				t.Fatalf("the second call waited until the deadline")
			}
			if !errors.As(err, &past) || past.Wait <= 0 || past.Wait > tt.want {
				t.Errorf("second call: %v; want a WaitPastDeadlineError of at most %s", err, tt.want)
			}
		})
	}
}

func TestCancelledContextStopsRetrying(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(503) })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The caller gives up right after the first answer has been read.
	hc := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		resp, err := http.DefaultTransport.RoundTrip(r)
		if err != nil {
			return nil, err
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(body))
		cancel()
		return resp, nil
	})}
	_, err := newClient(t, s.URL, func(o *docspace.Options) {
		o.HTTPClient = hc
		o.MaxAttempts = 5
		o.BaseBackoff, o.MaxBackoff = time.Hour, time.Hour
	}).IPRestrictions(ctx)
	e := asDocspace(t, err)
	if s.hits.Load() != 1 || e.Status != 503 || e.Attempts != 1 {
		t.Errorf("hits = %d, err = %v; want one request and its 503", s.hits.Load(), err)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// Rotating the key never fails a call: a cached key the portal refuses is
// read again from the secret once, and the same call is sent again with the
// new key within the same invocation. A key refused again is final (the
// secret holds a wrong key): one re-read, no loop.
func TestRefusedKeyIsReadAgainAndTheCallRetriedOnce(t *testing.T) {
	tests := []struct {
		name        string
		keys        []string // the provider's key before and after Invalidate
		wantErr     bool
		wantHits    int32
		invalidated int
	}{
		{"rotated: the same call succeeds", []string{"sk-old", "sk-new"}, false, 2, 1},
		{"the secret holds the refused key", []string{"sk-old", "sk-old"}, true, 1, 1},
		{"the new key is refused too", []string{"sk-old", "sk-other"}, true, 2, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				if r.Header.Get("Authorization") != "Bearer sk-new" {
					w.WriteHeader(401)
					return
				}
				reply(w, 200, `{"response":{"enable":false},"count":1,"status":0,"statusCode":200}`)
			})
			keys := &rotatingKey{keys: tt.keys}
			c := newClient(t, s.URL, func(o *docspace.Options) { o.Keys = keys })
			_, err := c.IPRestrictionsEnabled(context.Background())
			if s.hits.Load() != tt.wantHits || keys.invalidated != tt.invalidated {
				t.Errorf("%d request(s), %d invalidation(s); want %d and %d", s.hits.Load(), keys.invalidated, tt.wantHits, tt.invalidated)
			}
			if !tt.wantErr {
				if err != nil {
					t.Fatalf("rotated key: %v", err)
				}
				return
			}
			e := asDocspace(t, err)
			if e.Status != 401 || e.Code() != ipguard.EConfig {
				t.Fatalf("got %v, want a 401 EConfig", err)
			}
			if !strings.Contains(e.Error(), "check the key") || !strings.HasPrefix(e.Fix(), "fix the API key") {
				t.Errorf("401 message %q / fix %q gives no hint about the key", e.Error(), e.Fix())
			}
		})
	}
}

func TestKeyProviderFailureIsWrapped(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) })
	cause := &ipguard.Error{Code: ipguard.EConfig, Field: "DOCSPACE_API_KEY_SECRET_ID", Value: "docspace/key", Message: "secret does not exist"}
	_, err := newClient(t, s.URL, func(o *docspace.Options) { o.Keys = failingKey{cause} }).IPRestrictions(context.Background())
	var ie *ipguard.Error
	if !errors.As(err, &ie) || ie != cause {
		t.Fatalf("err = %v, want the provider's error reachable", err)
	}
	if s.hits.Load() != 0 {
		t.Errorf("server saw %d requests, want none", s.hits.Load())
	}
	if !strings.Contains(err.Error(), "get ip restrictions: get API key") {
		t.Errorf("err = %q, want the call named", err)
	}
}

type failingKey struct{ err error }

func (f failingKey) Key(context.Context) (string, error) { return "", f.err }

// echo answers with the request's Authorization header inside the body.
func echo(status int, contentType, format string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", contentType)
		w.WriteHeader(status)
		auth := r.Header.Get("Authorization")
		body := strings.ReplaceAll(format, "AUTH", auth)
		body = strings.ReplaceAll(body, "CUT", auth[:min(len(auth), len("Bearer sk-")+27)])
		body = strings.ReplaceAll(body, "MID", auth[20:min(len(auth), 31)])
		_, _ = w.Write([]byte(body))
	}
}

func TestKeyNeverAppearsInErrorsOrLogs(t *testing.T) {
	long := strings.Repeat("x", 190) + " "
	tests := []struct {
		name string
		h    http.HandlerFunc
	}{
		{"error envelope 401", echo(401, "application/json", `{"error":{"message":"token AUTH is not valid","type":null,"stack":null,"hresult":0},"status":1,"statusCode":401}`)},
		{"bare string 403", echo(403, "application/json", `"The access to the portal is restricted for AUTH"`)},
		{"plain text 403", echo(403, "text/plain", `forbidden: AUTH`)},
		{"HTML 502", echo(502, "text/html", `<html><body><h1>Bad Gateway</h1><p>AUTH</p></body></html>`)},
		{"validation 400", echo(400, "application/json", `{"response":{"title":"bad","errors":{"AUTH":["AUTH"]}},"status":1,"statusCode":400}`)},
		{"error under 200", echo(200, "application/json", `{"error":{"message":"AUTH"},"status":1,"statusCode":500}`)},
		{"malformed 200", echo(200, "application/json", `{"response": AUTH`)},
		{"HTML 200", echo(200, "text/html", `<p>AUTH</p>`)},
		{"key cut at the summary limit", echo(500, "text/plain", long+`AUTH`)},
		{"proxy echoes a truncated header", echo(502, "text/plain", `upstream refused Authorization: CUT`)},
		{"proxy echoes the key's middle", echo(403, "text/plain", `denied MID`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t, tt.h)
			var logs bytes.Buffer
			c := newClient(t, s.URL, func(o *docspace.Options) {
				o.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
				o.MaxAttempts = 2
			})
			_, err := c.IPRestrictions(context.Background())
			e := asDocspace(t, err)
			var ie *ipguard.Error
			if !errors.As(err, &ie) {
				t.Fatal("errors.As(*ipguard.Error) failed")
			}
			for what, text := range map[string]string{
				"Error()":       err.Error(),
				"%#v":           strings.ReplaceAll(stringOf(e), "\n", " "),
				"ipguard.Error": ie.Error(),
				"logs":          logs.String(),
			} {
				// No run of 8 characters of the key, anywhere.
				for i := 0; i+8 <= len(testKey); i++ {
					if strings.Contains(text, testKey[i:i+8]) {
						t.Errorf("%s shows %q of the key: %s", what, testKey[i:i+8], text)
						break
					}
				}
			}
		})
	}
}

func stringOf(e *docspace.Error) string {
	return e.Op + e.Method + e.Path + e.Message + e.Error()
}

func TestErrorsMapToDomainCodes(t *testing.T) {
	tests := []struct {
		status int
		want   ipguard.Code
	}{
		{400, ipguard.EInvalid},
		{401, ipguard.EConfig},
		{402, ipguard.EConfig},
		{403, ipguard.EConfig},
		{404, ipguard.EConfig},
		{429, ipguard.EUnavailable},
		{500, ipguard.EUnavailable},
		{503, ipguard.EUnavailable},
		{0, ipguard.EUnavailable},
		{200, ipguard.EInternal},
	}
	for _, tt := range tests {
		e := &docspace.Error{Op: "get ip restrictions", Method: "GET", Path: "/p", Status: tt.status, Attempts: 1}
		var err error = e
		var ie *ipguard.Error
		if !errors.As(err, &ie) || ie.Code != tt.want || ie.Err != e || ie.Error() != e.Error() {
			t.Errorf("status %d: As = %+v, want code %s wrapping the docspace error", tt.status, ie, tt.want)
		}
		if got := ipguard.ErrorCode(err); got != tt.want {
			t.Errorf("status %d: ErrorCode = %s, want %s", tt.status, got, tt.want)
		}
	}
}

func TestErrorReadsLikeASentence(t *testing.T) {
	tests := []struct {
		err  *docspace.Error
		want string
	}{
		{&docspace.Error{Op: "put ip restrictions", Method: "PUT", Path: "/api/2.0/settings/iprestrictions", Status: 400,
			Message: "Add at least 1 allowed IP address.", Attempts: 1},
			"docspace: put ip restrictions: PUT /api/2.0/settings/iprestrictions: HTTP 400: Add at least 1 allowed IP address. (after 1 attempt)"},
		{&docspace.Error{Op: "get login events", Method: "GET", Path: "/api/2.0/security/audit/login/filter",
			Message: "no answer within 10s", Attempts: 5},
			"docspace: get login events: GET /api/2.0/security/audit/login/filter: no answer within 10s (after 5 attempts)"},
		{&docspace.Error{Op: "get ip restrictions", Method: "GET", Path: "/p", Status: 404, Attempts: 1},
			"docspace: get ip restrictions: GET /p: HTTP 404: Not Found (after 1 attempt)"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() =\n%q\nwant\n%q", got, tt.want)
		}
	}
}

func TestUnresolvableHostIsAConfigurationErrorNamingTheHost(t *testing.T) {
	var dials atomic.Int32
	httpClient := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			dials.Add(1)
			host, _, _ := net.SplitHostPort(addr)
			return nil, &net.OpError{Op: "dial", Net: network, Err: &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}}
		},
	}}
	c := newClient(t, "https://portal.example.invalid", func(o *docspace.Options) { o.HTTPClient = httpClient })
	_, err := c.IPRestrictions(context.Background())
	e := asDocspace(t, err)
	if ipguard.ErrorCode(err) != ipguard.EConfig {
		t.Errorf("code = %s, want config", ipguard.ErrorCode(err))
	}
	if !strings.Contains(e.Error(), `"portal.example.invalid"`) || !strings.Contains(e.Error(), "DOCSPACE_API_HOST") {
		t.Errorf("error %q does not name the host and the variable", e.Error())
	}
	if dials.Load() != 1 {
		t.Errorf("dialled %d times, want 1 (an unknown host is not retried)", dials.Load())
	}
}

func TestNotFoundSaysTheURLIsNotADocSpaceAPI(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) })
	_, err := newClient(t, s.URL, nil).IPRestrictions(context.Background())
	if ipguard.ErrorCode(err) != ipguard.EConfig || !strings.Contains(err.Error(), "DOCSPACE_API_HOST") || s.hits.Load() != 1 {
		t.Errorf("err = %v after %d requests; want one request and a ConfigurationError naming DOCSPACE_API_HOST", err, s.hits.Load())
	}
}

func TestWebPageInsteadOfTheAPIIsAConfigurationError(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte("<html><body>Welcome to our company site</body></html>"))
	})
	_, err := newClient(t, s.URL, nil).IPRestrictions(context.Background())
	if ipguard.ErrorCode(err) != ipguard.EConfig || !strings.Contains(err.Error(), "DOCSPACE_API_HOST") {
		t.Errorf("err = %v, want a ConfigurationError naming DOCSPACE_API_HOST", err)
	}
}

// An https URL that reaches a plain-http port, or a server whose certificate
// does not verify, is a wrong DOCSPACE_API_HOST (or a proxy in the way), not
// an outage: it is a ConfigurationError naming the variable, not retried.
func TestTLSFailureIsAConfigurationErrorNamingTheVariable(t *testing.T) {
	plain := newServer(t, func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{"response": []}`)) })
	selfSigned := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(selfSigned.Close)
	for name, url := range map[string]string{
		"https to a plain-http port": strings.Replace(plain.URL, "http://", "https://", 1),
		"certificate not trusted":    selfSigned.URL,
	} {
		t.Run(name, func(t *testing.T) {
			c := newClient(t, url, nil)
			_, err := c.IPRestrictions(context.Background())
			e := asDocspace(t, err)
			if ipguard.ErrorCode(err) != ipguard.EConfig {
				t.Errorf("code = %s, want config: %v", ipguard.ErrorCode(err), err)
			}
			if !strings.Contains(e.Error(), "DOCSPACE_API_HOST") {
				t.Errorf("error %q does not name DOCSPACE_API_HOST", e.Error())
			}
			if e.Attempts != 1 {
				t.Errorf("%d attempts, want 1 (retrying cannot help)", e.Attempts)
			}
		})
	}
}

// keys/@self dates as the portal may write them: with 7 fraction digits and
// an offset, or (DateTime rather than ApiDateTime) with no zone at all, read
// as UTC; a date only for information (lastUsed, createOn) that cannot be
// read does not stop the key's expiry from being watched.
func TestCurrentKeyReadsThePortalsDates(t *testing.T) {
	for _, tt := range []struct {
		expiresAt, lastUsed string
		want                time.Time
	}{
		{"2026-12-01T03:00:00.0000000+03:00", "2026-11-25T09:00:00.0000000+03:00", time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)},
		{"2026-12-01T00:00:00", "2026-11-25T09:00:00", time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)},
		{"2026-12-01T00:00:00.0000000Z", "0001-01-01T00:00:00.0000000", time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)},
		{"2026-12-01T00:00:00Z", "yesterday", time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)},
	} {
		s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"response": {"id": "k1", "name": "ipguard", "key": "sk-***abcd", "keyPostfix": "abcd", "permissions": ["*:read"],
				"lastUsed": %q, "createOn": %q, "createBy": {"id": "u1", "displayName": "Owner"}, "expiresAt": %q, "isActive": true},
				"count": 1, "status": 0, "statusCode": 200}`, tt.lastUsed, tt.lastUsed, tt.expiresAt)
		})
		k, err := newClient(t, s.URL, nil).CurrentKey(context.Background())
		if err != nil || !k.ExpiresAt.Equal(tt.want) {
			t.Errorf("expiresAt %q, lastUsed %q: key %+v, %v; want it to expire at %s", tt.expiresAt, tt.lastUsed, k, err, tt.want)
		}
	}
}
