package audit

import (
	"context"
	"errors"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"ipguard/internal/ipguard"
)

// fakeSource pages like the real server's code: Skip/Take on the
// date-sorted list first, the from filter inside the page.
type fakeSource struct {
	mu       sync.Mutex
	events   []ipguard.LoginEvent
	fail     int // fail this many calls
	fallback bool
	calls    int
	hang     bool // wait for the context to end, as a stalled portal would
}

func (f *fakeSource) LoginEvents(ctx context.Context, from time.Time, start, count int) ([]ipguard.LoginEvent, error) {
	if f.hang {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.fail > 0 {
		f.fail--
		return nil, &ipguard.Error{Code: ipguard.EUnavailable, Message: "docspace: HTTP 503"}
	}
	all := slices.Clone(f.events)
	sort.SliceStable(all, func(i, j int) bool { return all[i].Date.After(all[j].Date) })
	if f.fallback {
		return all[:min(20, len(all))], nil
	}
	if start > len(all) {
		return nil, nil
	}
	page := all[start:min(start+count, len(all))]
	var out []ipguard.LoginEvent
	for _, e := range page {
		if !e.Date.Before(from) {
			out = append(out, e)
		}
	}
	return out, nil
}

type fakeStore struct {
	mu         sync.Mutex
	users      map[string]ipguard.User
	checkpoint time.Time
	alerted    map[int64]time.Time
	lease      string
	failRecord bool
}

func (f *fakeStore) Users(_ context.Context, ids []string) (map[string]ipguard.User, error) {
	out := map[string]ipguard.User{}
	for _, id := range ids {
		if u, ok := f.users[id]; ok {
			out[id] = u
		}
	}
	return out, nil
}
func (f *fakeStore) AllUsers(context.Context) ([]ipguard.User, error) {
	var out []ipguard.User
	for _, u := range f.users {
		out = append(out, u)
	}
	return out, nil
}
func (f *fakeStore) Checkpoint(context.Context) (time.Time, bool, error) {
	return f.checkpoint, !f.checkpoint.IsZero(), nil
}
func (f *fakeStore) SetCheckpoint(_ context.Context, t time.Time) error { f.checkpoint = t; return nil }
func (f *fakeStore) Alerted(_ context.Context, ids []int64, now time.Time) (map[int64]bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[int64]bool{}
	for _, id := range ids {
		if exp, ok := f.alerted[id]; ok && exp.After(now) {
			out[id] = true
		}
	}
	return out, nil
}
func (f *fakeStore) RecordAlerted(_ context.Context, ids []int64, at time.Time, keep time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failRecord {
		return errors.New("dynamodb down")
	}
	for _, id := range ids {
		f.alerted[id] = at.Add(keep)
	}
	return nil
}
func (f *fakeStore) TryAcquireLease(_ context.Context, name, owner string, until, now time.Time) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.lease != "" {
		return false, nil
	}
	f.lease = owner
	return true, nil
}
func (f *fakeStore) ReleaseLease(_ context.Context, name, owner string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.lease == owner {
		f.lease = ""
	}
	return nil
}

type fakePublisher struct {
	sent []ipguard.Alert
	fail bool
}

func (f *fakePublisher) Publish(_ context.Context, a ipguard.Alert) (string, error) {
	if f.fail {
		return "", &ipguard.Error{Code: ipguard.EUnavailable, Message: "sns down"}
	}
	f.sent = append(f.sent, a)
	return "m" + fmtInt(int64(len(f.sent))), nil
}

var t0 = time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)

func newAudit(events ...ipguard.LoginEvent) (*Service, *fakeSource, *fakeStore, *fakePublisher) {
	src := &fakeSource{events: events}
	st := &fakeStore{users: map[string]ipguard.User{"alice": {ID: "alice", Email: "alice@example.com", Entries: []string{"203.0.113.10"}}},
		alerted: map[int64]time.Time{}}
	pub := &fakePublisher{}
	return &Service{Source: src, Store: st, Publisher: pub, Leases: st, Now: func() time.Time { return t0.Add(16 * time.Minute) },
		Settings: Settings{Portal: "https://p", Overlap: 5 * time.Minute, Lookback: 15 * time.Minute, AlertRetention: 24 * time.Hour,
			Policy: Policy{AlertUnknownUsers: true, FailedLoginThreshold: 5}}}, src, st, pub
}

func at(id int64, user string, action int, ip string, d time.Duration) ipguard.LoginEvent {
	e := ev(id, user, action, ip)
	e.Date = t0.Add(d)
	return e
}

func trig(d time.Duration) Trigger { return Trigger{To: t0.Add(d)} }

func TestRunPagesAndAlertsOnce(t *testing.T) {
	var evs []ipguard.LoginEvent
	for i := int64(1); i <= 250; i++ {
		evs = append(evs, at(i, "alice", 1010, "203.0.113.10", time.Duration(i)*time.Second))
	}
	evs = append(evs, at(999, "alice", 1010, "198.51.100.1", 10*time.Minute), at(1000, "alice", 1010, "198.51.100.2", -time.Hour))
	s, _, st, pub := newAudit(evs...)
	res, err := s.Run(context.Background(), trig(15*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if res.EventsScanned != 251 || res.Counts[KindIPNotAllowed] != 1 || res.AlertsPublished != 1 || !res.CheckpointAdvanced {
		t.Fatalf("result %+v", res)
	}
	if !st.checkpoint.Equal(t0.Add(15 * time.Minute)) {
		t.Errorf("checkpoint %v", st.checkpoint)
	}
	again, err := s.Run(context.Background(), trig(30*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if again.AlertsPublished != 0 || again.AlreadyAlerted != 1 || len(pub.sent) != 1 {
		t.Errorf("second run re-alerted: %+v", again)
	}
}

func TestRunPublishFailureRecordsNothing(t *testing.T) {
	s, _, st, pub := newAudit(at(1, "alice", 1010, "198.51.100.1", time.Minute))
	pub.fail = true
	if _, err := s.Run(context.Background(), trig(15*time.Minute)); ipguard.ErrorCode(err) != ipguard.EUnavailable {
		t.Fatalf("err = %v", err)
	}
	if len(st.alerted) != 0 || !st.checkpoint.Equal(t0.Add(5*time.Minute)) {
		t.Fatalf("failed run recorded state: %v %v (want only the anchor at from+overlap)", st.alerted, st.checkpoint)
	}
	pub.fail = false
	res, err := s.Run(context.Background(), trig(30*time.Minute))
	if err != nil || res.AlertsPublished != 1 || res.Counts[KindIPNotAllowed] != 1 {
		t.Fatalf("next run: %+v %v", res, err)
	}
}

func TestRunPortalDownLeavesCheckpoint(t *testing.T) {
	s, src, st, pub := newAudit(at(1, "alice", 1010, "198.51.100.1", time.Minute))
	st.checkpoint = t0
	src.fail = 1000
	if _, err := s.Run(context.Background(), trig(15*time.Minute)); err == nil {
		t.Fatal("no error")
	}
	if !st.checkpoint.Equal(t0) || len(pub.sent) != 0 {
		t.Fatal("state changed")
	}
}

func TestRunSkipsWhenLeaseHeld(t *testing.T) {
	s, _, st, pub := newAudit(at(1, "alice", 1010, "198.51.100.1", time.Minute))
	st.lease = "someone"
	res, err := s.Run(context.Background(), trig(15*time.Minute))
	if err != nil || !res.Skipped || len(pub.sent) != 0 {
		t.Fatalf("res %+v err %v", res, err)
	}
	// The holder may be a backfill, which does not cover this window.
	if strings.Contains(res.SkipReason, "covers this window") || !strings.Contains(res.SkipReason, "next scheduled run") {
		t.Errorf("skip reason %q promises what the holder may not do", res.SkipReason)
	}
	back := Trigger{From: t0.Add(-time.Hour), To: t0, Backfill: true}
	res, err = s.Run(context.Background(), back)
	if err != nil || !res.Skipped || !strings.Contains(res.SkipReason, "invoke it again") {
		t.Errorf("skipped backfill: res %+v err %v", res, err)
	}
}

func TestRunWarnsOnPlanFallback(t *testing.T) {
	var evs []ipguard.LoginEvent
	for i := int64(1); i <= 30; i++ {
		evs = append(evs, at(i, "alice", 1010, "203.0.113.10", time.Duration(i)*time.Second))
	}
	s, src, _, _ := newAudit(evs...)
	src.fallback = true
	res, err := s.Run(context.Background(), trig(15*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Warnings) == 0 {
		t.Fatalf("no warning: %+v", res)
	}
}

func TestRunBackfillLeavesCheckpoint(t *testing.T) {
	s, _, st, pub := newAudit(at(1, "alice", 1010, "198.51.100.1", time.Minute))
	res, err := s.Run(context.Background(), Trigger{From: t0, To: t0.Add(2 * time.Minute), Backfill: true})
	if err != nil || res.AlertsPublished != 1 || res.CheckpointAdvanced || !st.checkpoint.IsZero() || len(pub.sent) != 1 {
		t.Fatalf("res %+v err %v", res, err)
	}
}

func TestRunOutOfTimeRecordsNothing(t *testing.T) {
	s, src, st, pub := newAudit(at(1, "alice", 1010, "198.51.100.1", time.Minute))
	src.hang = true
	s.Settings.DeadlineMargin = time.Hour // capped to a quarter of the time left
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err := s.Run(ctx, trig(15*time.Minute))
	if err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	if len(pub.sent) != 0 || len(st.alerted) != 0 || st.checkpoint.After(t0.Add(5*time.Minute)) {
		t.Fatal("state changed")
	}
}
