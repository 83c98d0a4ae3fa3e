package docspace_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"ipguard/internal/docspace"
)

// Issue 16 §5: a logout is not retried like a read. A logout whose answer
// is lost after the portal may have applied it (no answer, 500, 502, 504) is
// sent once and reported as MaybeApplied; one the portal turned away before
// acting (429, 503) is sent again.
func TestEndSessionIsSentOnceWhenItsAnswerIsLost(t *testing.T) {
	tests := []struct {
		name      string
		first     func(w http.ResponseWriter)
		wantHits  int32
		wantMaybe bool
		wantErr   bool
	}{
		{"answer timed out after the portal applied it", func(w http.ResponseWriter) { time.Sleep(300 * time.Millisecond) }, 1, true, true},
		{"502 from a proxy", func(w http.ResponseWriter) { reply(w, 502, "") }, 1, true, true},
		{"504 from a proxy", func(w http.ResponseWriter) { reply(w, 504, "") }, 1, true, true},
		{"500 from the portal", func(w http.ResponseWriter) { reply(w, 500, `{"error":{"message":"boom"},"status":1,"statusCode":500}`) }, 1, true, true},
		{"429 is turned away before acting: sent again", func(w http.ResponseWriter) { reply(w, 429, "") }, 2, false, false},
		{"503 is turned away before acting: sent again", func(w http.ResponseWriter) { reply(w, 503, "") }, 2, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s *server
			s = newServer(t, func(w http.ResponseWriter, r *http.Request) {
				if s.hits.Load() == 1 {
					tt.first(w)
					return
				}
				reply(w, 200, `{"response":true,"status":0,"statusCode":200}`)
			})
			c := newClient(t, s.URL, func(o *docspace.Options) { o.Timeout = 100 * time.Millisecond })
			ended, err := c.EndSession(context.Background(), 7)
			if got := s.hits.Load(); got != tt.wantHits {
				t.Errorf("logout sent %d times, want %d", got, tt.wantHits)
			}
			if tt.wantErr {
				if e := asDocspace(t, err); e.MaybeApplied != tt.wantMaybe || e.Attempts != 1 {
					t.Errorf("err %v: maybeApplied %v attempts %d", err, e.MaybeApplied, e.Attempts)
				}
				return
			}
			if err != nil || !ended {
				t.Errorf("EndSession = %v, %v; want true", ended, err)
			}
		})
	}
}
