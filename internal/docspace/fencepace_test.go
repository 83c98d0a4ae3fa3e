package docspace_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"ipguard/internal/docspace"
	"ipguard/internal/ipguard"
)

// The writer's fence is checked when the attempt really starts, after the
// wait for the client's request-rate ceiling: a PUT whose turn comes with
// less than one attempt's timeout left before the deadline is not sent
// (ErrNotApplied), rather than sent and cut short at the lease's fence.
// (Before: the fence was checked before the ceiling's wait, so the PUT
// went out with half an attempt left.)
func TestSaveIsFencedAfterTheRateCeilingsWait(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"response":[],"status":0,"statusCode":200}`))
	})
	c := newClient(t, s.URL, func(o *docspace.Options) {
		o.Timeout = time.Second
		o.RequestsPerMinute = 63 // a burst of three, then one request a second
	})
	for range 3 { // the burst
		if _, err := c.SaveIPRestrictions(context.Background(), nil, false); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	_, err := c.SaveIPRestrictions(ctx, nil, false) // its turn is about a second away: half an attempt left then
	if s.hits.Load() != 3 || !errors.Is(err, ipguard.ErrNotApplied) {
		t.Fatalf("hits %d, err %v; want the fourth PUT not sent and ErrNotApplied", s.hits.Load(), err)
	}
}
