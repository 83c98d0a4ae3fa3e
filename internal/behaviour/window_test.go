package behaviour_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"ipguard/internal/audit"
	"ipguard/internal/behaviour"
	"ipguard/internal/behaviour/windowtest"
	"ipguard/internal/ipguard"
)

type noBaselines struct{}

func (noBaselines) Baselines(context.Context, []string) (map[string]behaviour.Baseline, error) {
	return map[string]behaviour.Baseline{}, nil
}
func (noBaselines) SaveBaselines(context.Context, []behaviour.Baseline) error { return nil }

var w0 = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

// runs feeds the detector one piece per 5-minute run (with a 5-minute
// overlap read again, as the audit does) and returns the spray findings.
func runs(t *testing.T, d *behaviour.Detector, evs []ipguard.LoginEvent, from, to time.Time) []audit.Finding {
	t.Helper()
	var out []audit.Finding
	for end := from.Add(5 * time.Minute); !end.After(to); end = end.Add(5 * time.Minute) {
		var in []ipguard.LoginEvent
		for _, e := range evs {
			if !e.Date.Before(end.Add(-10*time.Minute)) && !e.Date.After(end) {
				in = append(in, e)
			}
		}
		fs, err := d.Judge(context.Background(), audit.Piece{Events: in, Done: end.Add(-10 * time.Minute), Final: true}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Settle(context.Background()); err != nil {
			t.Fatal(err)
		}
		for _, f := range fs {
			if f.Kind == behaviour.RulePasswordSpray {
				out = append(out, f)
			}
		}
	}
	return out
}

// #21 §3: a distributed spray slower than one run (12 accounts, one attempt
// each, from 12 addresses over 25 minutes) is seen by 5-minute runs, once
// (a finding read again by the overlap has the same event id, so the
// audit's alerted records drop it); without the window store it is not.
func TestASpraySlowerThanARunIsSeenAcrossRuns(t *testing.T) {
	var evs []ipguard.LoginEvent
	for k := 0; k < 12; k++ {
		evs = append(evs, ipguard.LoginEvent{ID: int64(100 + k), Login: fmt.Sprintf("victim%02d@example.com", k), ActionID: 1013,
			Date: w0.Add(2*time.Minute + time.Duration(k)*130*time.Second), IP: fmt.Sprintf("192.0.2.%d", k+1)})
	}
	tests := []struct {
		name    string
		windows behaviour.WindowStore
		want    int // distinct findings
	}{
		{"with the window store", windowtest.New(), 1},
		{"one run only (no store): today's blind spot", nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &behaviour.Detector{Store: noBaselines{}, Windows: tt.windows}
			fs := runs(t, d, evs, w0, w0.Add(time.Hour))
			ids := map[int64]bool{}
			for _, f := range fs {
				ids[f.EventID] = true
			}
			if len(ids) != tt.want {
				t.Fatalf("spray findings %+v; want %d distinct", fs, tt.want)
			}
			if tt.want == 1 && !ids[109] {
				t.Errorf("the spray is named by %v; want event 109, the 10th account's attempt", ids)
			}
		})
	}
}

// WHERE §10: under a flood (40,000 failed logins against 20,000 accounts
// in 5 minutes) the window's state stays a few bounded items per minute,
// read and written in a few batched calls per run.
func TestSprayWindowStateStaysBoundedUnderAFlood(t *testing.T) {
	var evs []ipguard.LoginEvent
	for i := 0; i < 40_000; i++ {
		evs = append(evs, ipguard.LoginEvent{ID: int64(i + 1), Login: fmt.Sprintf("a%05d@example.com", i%20_000), ActionID: 1013,
			Date: w0.Add(time.Duration(i%300) * time.Second), IP: fmt.Sprintf("10.%d.%d.%d", i/65536, (i/256)%256, i%256)})
	}
	ws := windowtest.New()
	d := &behaviour.Detector{Store: noBaselines{}, Windows: ws}
	fs := runs(t, d, evs, w0, w0.Add(10*time.Minute))
	if len(fs) == 0 {
		t.Fatal("the flood is no spray")
	}
	if len(ws.Buckets) > 10 {
		t.Errorf("%d bucket items for 5 minutes of failed logins; want at most one a minute", len(ws.Buckets))
	}
	for _, b := range ws.Buckets {
		if len(b.Accounts) > behaviour.MaxBucketAccounts {
			t.Errorf("bucket %s keeps %d accounts; want at most %d", b.Start, len(b.Accounts), behaviour.MaxBucketAccounts)
		}
	}
	if ws.Reads > 2*2 || ws.Writes > 2*2 { // per run: one read (plus the save's), one write
		t.Errorf("%d reads, %d writes over 2 runs; want a few batched calls per run", ws.Reads, ws.Writes)
	}
}

// #21 §3: travel compares with the user's last login even when an earlier
// run read it, and a backfill of an older login read later never moves
// "last login" backwards.
func TestTravelComparesWithTheLastLoginOfAnEarlierRun(t *testing.T) {
	st := &memBaselineStore{items: map[string]behaviour.Baseline{}}
	d := &behaviour.Detector{Store: st}
	login := func(id int64, at time.Time, country, city string) ipguard.LoginEvent {
		return ipguard.LoginEvent{ID: id, UserID: "ann", Login: "ann@example.com", ActionID: 1010, Date: at, IP: fmt.Sprintf("198.51.100.%d", id),
			Country: country, City: city, Browser: "Firefox 126.0", Platform: "Windows 10"}
	}
	run := func(evs ...ipguard.LoginEvent) []audit.Finding {
		t.Helper()
		fs, err := d.Judge(context.Background(), audit.Piece{Events: evs, Done: evs[0].Date.Add(-time.Hour), Final: true}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Settle(context.Background()); err != nil {
			t.Fatal(err)
		}
		return fs
	}
	if fs := run(login(1, w0, "Germany", "Berlin")); len(fs) != 0 {
		t.Fatalf("first run: %+v", fs)
	}
	fs := run(login(2, w0.Add(40*time.Minute), "United States", "New York")) // the next run
	if len(fs) != 1 || fs[0].Kind != audit.KindImpossibleTravel || fs[0].EventID != 2 {
		t.Fatalf("next run: %+v; want impossible_travel on New York", fs)
	}
	// A backfill reads an older login (Berlin, a day before): the last login stays New York.
	run(login(3, w0.Add(-24*time.Hour), "Germany", "Berlin"))
	if last := st.items["ann"].Last; last == nil || last.EventID != 2 {
		t.Errorf("last login %+v; want New York (2): an older login never moves it backwards", last)
	}
}

type memBaselineStore struct{ items map[string]behaviour.Baseline }

func (m *memBaselineStore) Baselines(_ context.Context, ids []string) (map[string]behaviour.Baseline, error) {
	out := map[string]behaviour.Baseline{}
	for _, id := range ids {
		if b, ok := m.items[id]; ok {
			out[id] = b
		}
	}
	return out, nil
}

func (m *memBaselineStore) SaveBaselines(_ context.Context, bs []behaviour.Baseline) error {
	for _, b := range bs {
		m.items[b.UserID] = b
	}
	return nil
}
