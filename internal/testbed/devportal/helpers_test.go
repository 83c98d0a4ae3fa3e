package devportal

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

const (
	testAdminKey = "sk-0000000000000000000000000000000000000000000000000000000000000a11"
	testUserKey  = "sk-0000000000000000000000000000000000000000000000000000000000000b22"
)

// startPortal serves a fresh portal over real loopback HTTP.
func startPortal(t *testing.T, opts Options) (*Portal, *httptest.Server) {
	t.Helper()
	if opts.AdminKeys == nil {
		opts.AdminKeys = []string{testAdminKey}
		opts.UserKeys = []string{testUserKey}
	}
	p := New(opts)
	srv := httptest.NewServer(p.Handler())
	t.Cleanup(srv.Close)
	return p, srv
}

// answer is one HTTP response, read completely.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// call sends one request; key "" sends no Authorization header.
func call(t *testing.T, srv *httptest.Server, method, path, key, body string) answer {
	t.Helper()
	return callCtx(t, context.Background(), srv, method, path, key, body)
}

func callCtx(t *testing.T, ctx context.Context, srv *httptest.Server, method, path, key, body string) answer {
	t.Helper()
	a, err := tryCall(ctx, srv, method, path, key, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return a
}

func tryCall(ctx context.Context, srv *httptest.Server, method, path, key, body string) (answer, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, srv.URL+path, rd)
	if err != nil {
		return answer{}, err
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return answer{}, err
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: b}, nil
}

// success is the success envelope with the response left raw.
type success struct {
	Response   json.RawMessage `json:"response"`
	Count      int             `json:"count"`
	Links      []link          `json:"links"`
	Status     int             `json:"status"`
	StatusCode int             `json:"statusCode"`
}

func mustSuccess(t *testing.T, a answer) success {
	t.Helper()
	if a.status != http.StatusOK {
		t.Fatalf("status = %d, want 200; body %s", a.status, a.body)
	}
	var s success
	if err := json.Unmarshal(a.body, &s); err != nil {
		t.Fatalf("decode success envelope %s: %v", a.body, err)
	}
	if s.Status != 0 || s.StatusCode != 200 || len(s.Links) != 1 {
		t.Fatalf("envelope status/statusCode/links = %d/%d/%v, want 0/200/one link", s.Status, s.StatusCode, s.Links)
	}
	return s
}

// mustValidation checks a 400 validation envelope and returns its errors.
func mustValidation(t *testing.T, a answer) map[string][]string {
	t.Helper()
	if a.status != http.StatusBadRequest {
		t.Fatalf("status = %d, want 400; body %s", a.status, a.body)
	}
	var s struct {
		Response   *problemDetails `json:"response"`
		Count      int             `json:"count"`
		Links      []link          `json:"links"`
		Status     int             `json:"status"`
		StatusCode int             `json:"statusCode"`
		Error      any             `json:"error"`
	}
	if err := json.Unmarshal(a.body, &s); err != nil {
		t.Fatalf("decode validation envelope %s: %v", a.body, err)
	}
	if s.Response == nil || s.Error != nil || s.Status != 1 || s.StatusCode != 400 || s.Count != 1 || len(s.Links) != 1 {
		t.Fatalf("not a validation envelope: %s", a.body)
	}
	if s.Response.Status != 400 || s.Response.Title != "One or more validation errors occurred." ||
		!strings.HasPrefix(s.Response.TraceID, "00-") || len(s.Response.Errors) == 0 {
		t.Fatalf("bad problem details: %s", a.body)
	}
	return s.Response.Errors
}

// mustError checks an error envelope with the given status and returns it.
func mustError(t *testing.T, a answer, status int) apiError {
	t.Helper()
	if a.status != status {
		t.Fatalf("status = %d, want %d; body %s", a.status, status, a.body)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(a.body, &raw); err != nil {
		t.Fatalf("decode error envelope %s: %v", a.body, err)
	}
	if len(raw) != 3 || raw["error"] == nil || string(raw["status"]) != "1" || string(raw["statusCode"]) != strconv.Itoa(status) {
		t.Fatalf("not an error envelope for %d: %s", status, a.body)
	}
	var inner map[string]json.RawMessage
	_ = json.Unmarshal(raw["error"], &inner)
	for _, k := range []string{"message", "type", "stack", "hresult"} {
		if _, ok := inner[k]; !ok {
			t.Fatalf("error envelope lacks error.%s: %s", k, a.body)
		}
	}
	var e errorEnvelope
	_ = json.Unmarshal(a.body, &e)
	return e.Error
}

func deref(s *string) string {
	if s == nil {
		return "<null>"
	}
	return *s
}

// at is a fixed UTC instant for test events.
func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}
