package behaviour

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"ipguard/internal/audit"
	"ipguard/internal/ipguard"
)

// memWindows keeps spray buckets in memory, as the DynamoDB adapter
// would store them (one JSON item per bucket).
type memWindows struct{ saved map[int64]SprayBucket }

func (m *memWindows) SprayBuckets(_ context.Context, starts []time.Time) (map[int64]SprayBucket, error) {
	out := map[int64]SprayBucket{}
	for _, s := range starts {
		if b, ok := m.saved[s.Unix()]; ok {
			out[s.Unix()] = b
		}
	}
	return out, nil
}

func (m *memWindows) SaveSprayBuckets(_ context.Context, bs []SprayBucket, _ time.Duration) error {
	for _, b := range bs {
		m.saved[b.Start.Unix()] = MergeSprayBuckets(m.saved[b.Start.Unix()], b)
	}
	return nil
}

// The login name of a failed login is what the attacker typed, of any
// length: a spray bucket keeps up to MaxBucketAccounts of them, and the
// item must stay within DynamoDB's 400 KB whatever they typed. Before,
// 1,000 names of 2,000 characters made a 2 MB item: the write failed at
// every run (the same failed logins read again), so the audit stopped.
func TestASprayBucketStaysOneItemWhateverTheNamesTyped(t *testing.T) {
	for _, n := range []int{20, 300, 2000} {
		t.Run(fmt.Sprintf("names of %d characters", n), func(t *testing.T) {
			at := time.Date(2026, 11, 25, 18, 0, 0, 0, time.UTC)
			var evs []ipguard.LoginEvent
			for i := 0; i < MaxBucketAccounts+50; i++ {
				name := fmt.Sprintf("%d-%s@example.com", i, strings.Repeat("x", n))
				evs = append(evs, ipguard.LoginEvent{ID: int64(10_000 - i), Date: at.Add(time.Duration(i%50) * time.Second), Login: name, ActionID: 1013,
					IP: fmt.Sprintf("10.0.%d.%d", i/256, i%256)})
			}
			w := &memWindows{saved: map[int64]SprayBucket{}}
			d := &Detector{Store: newMemStore(), Windows: w}
			if _, err := d.Judge(context.Background(), audit.Piece{Events: evs, Done: at.Add(-time.Minute), Final: true}, nil); err != nil {
				t.Fatal(err)
			}
			if err := d.Settle(context.Background()); err != nil {
				t.Fatal(err)
			}
			if len(w.saved) == 0 {
				t.Fatal("no bucket saved")
			}
			for _, b := range w.saved {
				data, err := json.Marshal(b)
				if err != nil {
					t.Fatal(err)
				}
				if len(data) > 350_000 {
					t.Errorf("a bucket of %d accounts (+%d more) takes %d bytes: more than a DynamoDB item holds with its key and attributes", len(b.Accounts), b.More, len(data))
				}
				if len(b.Accounts)+b.More != MaxBucketAccounts+50 {
					t.Errorf("accounts %d + more %d, want %d", len(b.Accounts), b.More, MaxBucketAccounts+50)
				}
			}
		})
	}
}
