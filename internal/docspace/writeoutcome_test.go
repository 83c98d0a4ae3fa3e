package docspace_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"ipguard/internal/docspace"
	"ipguard/internal/ipguard"
)

// TestPeople404IsUserGoneOnlyWhenTheAPISaysSo: only the API's own JSON
// error answer means "no such user"; a proxy page, an empty body or the bare
// "Not Found" of a wrong path prefix is a configuration error, else one
// misrouted answer would make every stored user look deleted.
func TestPeople404IsUserGoneOnlyWhenTheAPISaysSo(t *testing.T) {
	tests := []struct {
		name, ct, body string
		gone           bool
	}{
		{"API error envelope", "application/json", `{"error":{"message":"The user could not be found","type":"ASC.Core.Common.ItemNotFoundException","stack":null,"hresult":-2146233088},"status":1,"statusCode":404}`, true},
		{"proxy page", "text/html", "<html><body><h1>404 Not Found</h1>nginx</body></html>", false},
		{"empty body", "", "", false},
		{"bare route miss", "application/json", `{"error":{"message":"Not Found","type":null,"stack":null,"hresult":0},"status":1,"statusCode":404}`, false},
		{"JSON without error", "application/json", `{"message":"nope"}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t, answer(http.StatusNotFound, tt.ct, tt.body))
			_, err := newClient(t, s.URL, nil).User(context.Background(), "5f1e6a2b-0d3c-4e5f-8a9b-999999999999")
			if got := errors.Is(err, docspace.ErrUserNotFound); got != tt.gone {
				t.Fatalf("ErrUserNotFound = %v, want %v (err %v)", got, tt.gone, err)
			}
			if !tt.gone && ipguard.ErrorCode(err) != ipguard.EConfig {
				t.Errorf("code = %s, want EConfig (err %v)", ipguard.ErrorCode(err), err)
			}
		})
	}
}

// TestSaveTellsRefusedFromUnknown: a PUT refused with a 4xx on every attempt
// (or never sent) is ErrNotApplied; one that had an attempt without a
// definite answer is not (it may still land); a success returns the Date.
func TestSaveTellsRefusedFromUnknown(t *testing.T) {
	list := []ipguard.Restriction{{IP: "203.0.113.10"}}
	tests := []struct {
		name       string
		statuses   []int // per attempt; 0: the handler stalls past the attempt timeout; -1: 200 with a body cut short (served)
		notApplied bool
		ok         bool
	}{
		{"400", []int{400}, true, false},
		{"403", []int{403}, true, false},
		{"429 then 400", []int{429, 400}, true, false},
		{"503 then 400", []int{503, 400}, false, false},
		{"timeout then 400", []int{0, 400}, false, false},
		{"500 every time", []int{500, 500, 500}, false, false},
		{"200", []int{200}, false, true},
		// Served, but the answer cannot be read: it may well have landed
		// (found by TestReconcilerModelDevPortal, internal/onboard).
		{"200 unreadable", []int{-1}, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var n atomic.Int32
			s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				i := int(n.Add(1)) - 1
				st := tt.statuses[min(i, len(tt.statuses)-1)]
				if st == 0 {
					_, _ = io.ReadAll(r.Body) // so that the server notices the client leaving
					select {
					case <-r.Context().Done():
					case <-time.After(2 * time.Second):
					}
					return
				}
				w.Header().Set("Content-Type", "application/json")
				if st == -1 {
					w.WriteHeader(200)
					_, _ = w.Write([]byte(`{"response":[],"sta`))
					return
				}
				w.WriteHeader(st)
				if st == 200 {
					_, _ = w.Write([]byte(`{"response":[],"status":0,"statusCode":200}`))
					return
				}
				_, _ = w.Write([]byte(`{"error":{"message":"no"},"status":1,"statusCode":` + http.StatusText(st)[:0] + strconv.Itoa(st) + `}`))
			})
			c := newClient(t, s.URL, func(o *docspace.Options) { o.Timeout = 200 * time.Millisecond })
			date, err := c.SaveIPRestrictions(context.Background(), list, true)
			if tt.ok {
				if err != nil || date.IsZero() {
					t.Fatalf("date %v, err %v; want the answer's Date", date, err)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			if got := errors.Is(err, ipguard.ErrNotApplied); got != tt.notApplied {
				t.Errorf("ErrNotApplied = %v, want %v (err %v)", got, tt.notApplied, err)
			}
		})
	}
}

// TestSaveIsFencedByTheDeadline: no attempt starts with less than one
// attempt's timeout left before the context's deadline (the writer's lease).
func TestSaveIsFencedByTheDeadline(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	c := newClient(t, s.URL, func(o *docspace.Options) { o.Timeout = time.Second })
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	_, err := c.SaveIPRestrictions(ctx, nil, false)
	if s.hits.Load() != 0 || !errors.Is(err, ipguard.ErrNotApplied) {
		t.Fatalf("hits %d, err %v; want nothing sent and ErrNotApplied", s.hits.Load(), err)
	}
}
