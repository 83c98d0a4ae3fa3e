package behaviour

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"ipguard/internal/audit"
	"ipguard/internal/ipguard"
)

// floodEvents is the shape of BenchmarkAuditPeakRSSCredentialStuffing:
// ten rows a second, newest first, one in six a normal login, the rest
// failed logins against 5,000 accounts from addrs distinct addresses (two
// each for 500,000 failures from 250,000 addresses).
func floodEvents(end time.Time, n, addrs int) []ipguard.LoginEvent {
	evs := make([]ipguard.LoginEvent, 0, n)
	for i := 0; i < n; i++ {
		at := end.Add(-time.Duration(i/10) * time.Second)
		if i%6 == 5 {
			evs = append(evs, ipguard.LoginEvent{ID: int64(n - i), Date: at, UserID: "u-jane", Login: "jane@example.com", ActionID: 1000, IP: "203.0.113.10"})
			continue
		}
		a := (i - i/6) % addrs
		evs = append(evs, ipguard.LoginEvent{ID: int64(n - i), Date: at, Login: fmt.Sprintf("victim%d@example.com", i%5000), ActionID: 1013,
			IP: fmt.Sprintf("10.%d.%d.%d", a/65536, (a/256)%256, a%256), Raw: []byte(`{"action":1013}`)})
	}
	return evs
}

// #16 §4: the password_spray rule keeps a bounded part of a flood, not
// every failed login of the run: the detector fed 500,000 failed logins
// from 250,000 addresses (plus 100,000 normal logins) in pieces of 2,000
// newest first, as the audit's walk gives them, never holds more than the
// failed logins of about twice SPRAY_WINDOW (plus a piece) and one
// candidate finding per period; and it still tells the flood, once (one
// spray that lasts). The old rule kept every failed login until the run's
// last piece (up to 200,000).
func TestSprayKeepsABoundedPartOfAFlood(t *testing.T) {
	const piece = 2000
	end := time.Date(2026, 11, 25, 18, 0, 0, 0, time.UTC)
	evs := floodEvents(end, 600_000, 250_000)
	d := &Detector{Store: newMemStore()}
	// Ten rows a second, five in six failed: the failures of 2×30 minutes.
	bound := int(2*DefaultSprayWindow/time.Second)*10*5/6 + piece
	most, mostPending := 0, 0
	var fs []audit.Finding
	for from := 0; from < len(evs); from += piece {
		p := evs[from:min(from+piece, len(evs))]
		final := from+piece >= len(evs)
		got, err := d.Judge(context.Background(), audit.Piece{Events: p, Done: p[len(p)-1].Date, Final: final}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Settle(context.Background()); err != nil {
			t.Fatal(err)
		}
		for _, f := range got {
			if f.Kind == RulePasswordSpray {
				fs = append(fs, f)
			}
		}
		if !final {
			most, mostPending = max(most, len(d.spray.fails)), max(mostPending, len(d.spray.pending))
		}
	}
	if most > bound {
		t.Errorf("the detector held %d failed logins at once; want at most %d (500,000 fed)", most, bound)
	}
	periods := int(end.Sub(evs[len(evs)-1].Date)/DefaultSprayWindow) + 2
	if mostPending > periods {
		t.Errorf("the detector held %d candidate findings; want at most one a period (%d)", mostPending, periods)
	}
	if len(fs) != 1 {
		t.Fatalf("%d password_spray findings for one flood; want 1 (a spray that lasts is told once)", len(fs))
	}
}

// #16 §4: judging periods as the pieces come (and forgetting what no later
// period needs) tells the same findings, with the same contents, as
// judging the whole run at its last piece.
func TestSprayJudgedPieceByPieceTellsWhatOnePieceTells(t *testing.T) {
	base := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	var evs []ipguard.LoginEvent // newest first
	id := int64(10_000)
	add := func(at time.Time, login, ip string, action int) {
		evs = append(evs, ipguard.LoginEvent{ID: id, Date: at, Login: login, ActionID: action, IP: ip, Raw: []byte(fmt.Sprintf(`{"id":%d}`, id))})
		id--
	}
	// Newest first: a lasting spray (3 hours), a gap, a short spray whose
	// target logs in afterwards, slow noise below the threshold.
	for s := 0; s < 3*3600; s += 7 {
		at := base.Add(8*time.Hour - time.Duration(s)*time.Second)
		add(at, fmt.Sprintf("v%d@example.com", s%37), fmt.Sprintf("198.51.100.%d", s%200), 1013)
		if s%900 == 0 {
			add(at, "bob@example.com", "203.0.113.7", 1000)
		}
	}
	for s := 0; s < 600; s += 41 {
		add(base.Add(3*time.Hour-time.Duration(s)*time.Second), fmt.Sprintf("w%d@example.com", s), "192.0.2.9", 1013)
	}
	add(base.Add(3*time.Hour+time.Minute), "w0@example.com", "192.0.2.9", 1000)
	for s := 0; s < 2*3600; s += 400 {
		add(base.Add(2*time.Hour-time.Duration(s)*time.Second), fmt.Sprintf("x%d@example.com", s%5), "192.0.2.50", 1013)
	}
	sortNewestFirst(evs)
	whole := newWindowSprayer(DefaultSprayMinAccounts, DefaultSprayWindow)
	whole.add(evs, nil)
	want := whole.decide(evs[len(evs)-1].Date, true)
	if len(want) < 2 {
		t.Fatalf("%d findings in one piece; want the two sprays", len(want))
	}
	for _, size := range []int{1, 50, 333} {
		w := newWindowSprayer(DefaultSprayMinAccounts, DefaultSprayWindow)
		var got []audit.Finding
		for from := 0; from < len(evs); from += size {
			p := evs[from:min(from+size, len(evs))]
			w.add(p, nil)
			got = append(got, w.decide(p[len(p)-1].Date, from+size >= len(evs))...)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("pieces of %d: findings\n%+v\nwant\n%+v", size, got, want)
		}
	}
}

func sortNewestFirst(evs []ipguard.LoginEvent) {
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].Date.After(evs[j].Date) })
}

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
