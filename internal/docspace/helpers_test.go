package docspace_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"ipguard/internal/docspace"
)

// testKey looks like a real key and is distinctive enough to search for.
const testKey = "sk-7e57c0ffee0123456789abcdef0123456789abcdef0123456789abcdef01234"

// staticKey always returns the same key.
type staticKey string

func (k staticKey) Key(context.Context) (string, error) { return string(k), nil }

// rotatingKey returns keys[0] until invalidated, then the next key.
type rotatingKey struct {
	mu          sync.Mutex
	keys        []string
	i           int
	invalidated int
}

func (r *rotatingKey) Key(context.Context) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.keys[min(r.i, len(r.keys)-1)], nil
}

func (r *rotatingKey) Invalidate() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.i++
	r.invalidated++
}

// server runs h on real loopback HTTP and counts the requests it gets.
type server struct {
	*httptest.Server
	hits atomic.Int32
}

// answer answers every request with status and body, and the Content-Type
// contentType unless it is empty.
func answer(status int, contentType, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if contentType != "" {
			w.Header().Set("Content-Type", contentType)
		}
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}
}

func newServer(t *testing.T, h http.HandlerFunc) *server {
	t.Helper()
	s := &server{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		h(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

// newClient returns a client for baseURL with fast retries; mod may adjust options.
func newClient(t *testing.T, baseURL string, mod func(*docspace.Options)) *docspace.Client {
	t.Helper()
	opts := docspace.Options{
		BaseURL:     baseURL,
		AllowHTTP:   true,
		Keys:        staticKey(testKey),
		Timeout:     5 * time.Second,
		MaxAttempts: 3,
		BaseBackoff: time.Millisecond,
		MaxBackoff:  5 * time.Millisecond,
	}
	if mod != nil {
		mod(&opts)
	}
	c, err := docspace.New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

// reply writes status with a JSON body.
func reply(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

// asDocspace returns err as *docspace.Error or fails the test.
func asDocspace(t *testing.T, err error) *docspace.Error {
	t.Helper()
	if err == nil {
		t.Fatal("err = nil, want a *docspace.Error")
	}
	e, ok := err.(*docspace.Error)
	if !ok {
		t.Fatalf("err = %T %v, want *docspace.Error", err, err)
	}
	return e
}
