package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"ipguard/internal/ipguard"
)

var t0 = time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)

func newAudit(events ...ipguard.LoginEvent) (*Service, *fakeSource, *fakeStore, *fakePublisher) {
	src := newFakeSource(events...)
	st := newFakeStore()
	st.users["alice"] = ipguard.User{ID: "alice", Email: "alice@example.com", Entries: []string{"203.0.113.10"}}
	pub := &fakePublisher{}
	return &Service{Source: src, Store: st, Publisher: pub, Leases: st, Now: func() time.Time { return t0.Add(16 * time.Minute) },
		Settings: Settings{Portal: "https://p", Overlap: 5 * time.Minute, Lookback: 15 * time.Minute, AlertRetention: 24 * time.Hour,
			Policy: Policy{UnknownUsers: UnknownAlert, FailedLoginThreshold: 5}}}, src, st, pub
}

func at(id int64, user string, action int, ip string, d time.Duration) ipguard.LoginEvent {
	e := ev(id, user, action, ip)
	e.Date = t0.Add(d)
	return e
}

func trig(d time.Duration) Trigger { return Trigger{To: t0.Add(d)} }

// lostAlerts returns the coverage_lost findings sent, each of which must
// be a message of its own.
func lostAlerts(t *testing.T, sent []ipguard.Alert) []Finding {
	t.Helper()
	var out []Finding
	for _, a := range sent {
		fs := findingsOf(t, a)
		for _, f := range fs {
			if f.Kind == KindCoverageLost {
				if len(fs) != 1 || f.Severity != SeverityHigh {
					t.Errorf("coverage_lost shares its message with %d findings (severity %s)", len(fs)-1, f.Severity)
				}
				out = append(out, f)
			}
		}
	}
	return out
}

// alertedOnce fails t unless the messages sent name every event of evs
// exactly once; more says what the run was.
func alertedOnce(t *testing.T, sent []ipguard.Alert, evs []ipguard.LoginEvent, more string) {
	t.Helper()
	got := alertedIDs(t, sent)
	for _, e := range evs {
		if got[e.ID] != 1 {
			t.Fatalf("event %d alerted %d times%s", e.ID, got[e.ID], more)
		}
	}
}

// rerunSendsNothing runs s again up to trig(17m), reading what it read
// again, and fails t when that sends a message.
func rerunSendsNothing(t *testing.T, s *Service, pub *fakePublisher) {
	t.Helper()
	sent := len(pub.sent)
	if _, err := s.Run(context.Background(), trig(17*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if len(pub.sent) != sent {
		t.Errorf("the next run sent %d more messages", len(pub.sent)-sent)
	}
}

// runWithin runs s up to trig(15m) with a deadline of d; an error fails t.
func runWithin(t *testing.T, s *Service, d time.Duration) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	res, err := s.Run(ctx, trig(15*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// findingsOf is the findings of the alert's message (its JSON payload).
func findingsOf(t *testing.T, a ipguard.Alert) []Finding {
	t.Helper()
	var p Payload
	if err := json.Unmarshal([]byte(a.Default), &p); err != nil {
		t.Fatal(err)
	}
	return p.Events
}

// alertedIDs counts, per event id, how many messages named it.
func alertedIDs(t *testing.T, sent []ipguard.Alert) map[int64]int {
	t.Helper()
	n := map[int64]int{}
	for _, a := range sent {
		for _, f := range findingsOf(t, a) {
			if f.EventID != 0 {
				n[f.EventID]++
			}
		}
	}
	return n
}

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
	if res.EventsScanned != 251 || res.Counts[KindIPNotAllowed] != 1 || res.Severities[SeverityHigh] != 1 || res.AlertsPublished != 1 || !res.CheckpointAdvanced || !res.Complete {
		t.Fatalf("result %+v", res)
	}
	if !st.progress.Until.Equal(t0.Add(15*time.Minute)) || st.progress.Cursor != nil || res.SafeUntil != "2026-11-25T09:15:00Z" {
		t.Errorf("progress %+v, safeUntil %s", st.progress, res.SafeUntil)
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
	if len(st.alerted) != 0 || !st.progress.Until.Equal(t0) || st.progress.Cursor == nil || !st.progress.Cursor.Below.Equal(t0.Add(15*time.Minute)) {
		t.Fatalf("failed run recorded state: %v %+v (want only the anchored first window)", st.alerted, st.progress)
	}
	pub.fail = false
	res, err := s.Run(context.Background(), trig(30*time.Minute))
	if err != nil || res.AlertsPublished != 1 || res.Counts[KindIPNotAllowed] != 1 {
		t.Fatalf("next run: %+v %v", res, err)
	}
}

func TestRunPortalDownLeavesProgress(t *testing.T) {
	s, src, st, pub := newAudit(at(1, "alice", 1010, "198.51.100.1", time.Minute))
	st.progress.Until = t0
	src.fail = 1000
	if _, err := s.Run(context.Background(), trig(15*time.Minute)); err == nil {
		t.Fatal("no error")
	}
	if !st.progress.Until.Equal(t0) || st.progress.Cursor != nil || len(pub.sent) != 0 {
		t.Fatalf("state changed: %+v", st.progress)
	}
}

func TestRunSkipsWhenLeaseHeld(t *testing.T) {
	s, _, st, pub := newAudit(at(1, "alice", 1010, "198.51.100.1", time.Minute))
	st.Hold(LeaseName, "someone", time.Now().Add(time.Hour))
	res, err := s.Run(context.Background(), trig(15*time.Minute))
	if err != nil || !res.Skipped || len(pub.sent) != 0 {
		t.Fatalf("res %+v err %v", res, err)
	}
	// A run that read nothing does not say it finished its window.
	if res.Complete {
		t.Errorf("a skipped run says complete: %+v", res)
	}
	// The holder may be a backfill, which does not cover this window.
	if strings.Contains(res.SkipReason, "covers this window") || !strings.Contains(res.SkipReason, "next scheduled run") {
		t.Errorf("skip reason %q promises what the holder may not do", res.SkipReason)
	}
	back := Trigger{From: t0.Add(-time.Hour), To: t0, Backfill: true}
	res, err = s.Run(context.Background(), back)
	if err != nil || !res.Skipped || res.Complete || !strings.Contains(res.SkipReason, "invoke it again") {
		t.Errorf("skipped backfill: res %+v err %v", res, err)
	}
}

type fixedClock struct{ date, at time.Time }

func (c fixedClock) ServerDate() (time.Time, time.Time) { return c.date, c.at }

// A portal clock more than half the overlap off ours is a warning.
func TestRunWarnsOnPortalClockSkew(t *testing.T) {
	now := time.Now()
	for _, tt := range []struct {
		skew time.Duration
		warn bool
	}{{time.Minute, false}, {-3 * time.Minute, true}, {4 * time.Minute, true}} {
		s, _, _, _ := newAudit()
		s.Clock = fixedClock{date: now.Add(tt.skew), at: now}
		res, err := s.Run(context.Background(), trig(15*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		warned := strings.Contains(strings.Join(res.Warnings, " "), "the portal's clock is")
		if warned != tt.warn || res.PortalClockSkew != tt.skew.String() {
			t.Errorf("skew %s: warned %v, portalClockSkew %q; want warned %v", tt.skew, warned, res.PortalClockSkew, tt.warn)
		}
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
	if res.WarningCount == 0 || !strings.Contains(strings.Join(res.Warnings, " "), "plan fallback") {
		t.Fatalf("no warning: %+v", res)
	}
}

func TestRunBackfillLeavesProgress(t *testing.T) {
	s, _, st, pub := newAudit(at(1, "alice", 1010, "198.51.100.1", time.Minute))
	res, err := s.Run(context.Background(), Trigger{From: t0, To: t0.Add(2 * time.Minute), Backfill: true})
	if err != nil || res.AlertsPublished != 1 || res.CheckpointAdvanced || st.Saves != 0 || len(pub.sent) != 1 {
		t.Fatalf("res %+v err %v", res, err)
	}
	if !strings.Contains(pub.sent[0].Subject, "backfill") || !strings.Contains(pub.sent[0].SMS, "backfill 2026-11-25") {
		t.Errorf("backfill not named: subject %q, sms %q", pub.sent[0].Subject, pub.sent[0].SMS)
	}
}

// A backfill older than the alert memory says so in the result and the
// subject (issue 11.8: we warn rather than keep records longer).
func TestRunBackfillBeyondAlertMemoryWarns(t *testing.T) {
	s, _, _, pub := newAudit(at(1, "alice", 1010, "198.51.100.1", -48*time.Hour))
	res, err := s.Run(context.Background(), Trigger{From: t0.Add(-49 * time.Hour), To: t0.Add(-47 * time.Hour), Backfill: true})
	if err != nil || len(pub.sent) != 1 {
		t.Fatalf("res %+v err %v", res, err)
	}
	if !strings.Contains(strings.Join(res.Warnings, " "), "before what the alert memory still holds") {
		t.Errorf("warnings %v", res.Warnings)
	}
	if !strings.Contains(pub.sent[0].Subject, "may repeat") || !strings.Contains(pub.sent[0].Email, "NOTE: this backfill starts") {
		t.Errorf("subject %q, e-mail:\n%s", pub.sent[0].Subject, pub.sent[0].Email)
	}
}

func TestMemoryFloor(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	tests := []struct {
		name string
		hist []ipguard.RetentionSince
		keep time.Duration
		want time.Time
	}{
		{"no history: the retention in force", nil, day, now.Add(-day)},
		{"one retention for long", []ipguard.RetentionSince{{Since: now.Add(-30 * day), Keep: day}}, day, now.Add(-day)},
		{"raised to 30 days just now: records of a day ago and older are gone",
			[]ipguard.RetentionSince{{Since: now.Add(-30 * day), Keep: day}, {Since: now, Keep: 30 * day}}, 30 * day, now.Add(-day)},
		{"raised 10 days ago: only records before the raise expired",
			[]ipguard.RetentionSince{{Since: now.Add(-30 * day), Keep: day}, {Since: now.Add(-10 * day), Keep: 30 * day}}, 30 * day, now.Add(-10 * day)},
		{"lowered 2 days ago: the newer records go first",
			[]ipguard.RetentionSince{{Since: now.Add(-30 * day), Keep: 7 * day}, {Since: now.Add(-2 * day), Keep: time.Hour}}, time.Hour, now.Add(-time.Hour)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := memoryFloor(tt.hist, tt.keep, now); !got.Equal(tt.want) {
				t.Errorf("memoryFloor = %s, want %s", got, tt.want)
			}
		})
	}
}

// Issue 16 §8: the backfill's "may repeat" warning is judged by how long
// each record was written to live, not by ALERT_RETENTION now: raised just
// before a backfill (as the README suggests), it does not bring expired
// records back, and the backfill says so.
func TestBackfillWarnsByTheRecordsOwnExpiry(t *testing.T) {
	s, _, st, pub := newAudit(at(1, "alice", 1010, "198.51.100.1", -5*24*time.Hour))
	now := s.now()
	*st.progress = ipguard.AuditProgress{Until: now.Add(-time.Minute), Memory: []ipguard.RetentionSince{{Since: now.Add(-30 * 24 * time.Hour), Keep: 24 * time.Hour}}}
	s.Settings.AlertRetention = 30 * 24 * time.Hour // raised just now
	res, err := s.Run(context.Background(), Trigger{From: t0.Add(-5*24*time.Hour - time.Hour), To: t0.Add(-5*24*time.Hour + time.Hour), Backfill: true})
	if err != nil || len(pub.sent) != 1 {
		t.Fatalf("res %+v err %v", res, err)
	}
	if !strings.Contains(strings.Join(res.Warnings, " "), "before what the alert memory still holds") || !strings.Contains(pub.sent[0].Subject, "may repeat") {
		t.Errorf("no may-repeat warning: %v, subject %q", res.Warnings, pub.sent[0].Subject)
	}
	// A scheduled run notes the new retention in the history.
	if _, err := s.Run(context.Background(), trig(15*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if m := st.progress.Memory; len(m) != 2 || m[1].Keep != 30*24*time.Hour {
		t.Errorf("memory %+v", m)
	}
}

// A run that reaches its deadline margin keeps what it did and says where
// the next run goes on; it is not an error.
func TestRunOutOfTimeKeepsProgress(t *testing.T) {
	s, src, st, pub := newAudit(at(1, "alice", 1010, "198.51.100.1", time.Minute))
	src.hang = true
	s.Settings.DeadlineMargin = time.Hour // capped to a quarter of the time left
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	res, err := s.Run(ctx, trig(15*time.Minute))
	if err != nil || res.Complete || res.ResumeBelow == "" {
		t.Fatalf("res %+v, err %v", res, err)
	}
	if len(pub.sent) != 0 || len(st.alerted) != 0 || st.progress.Cursor == nil || !st.progress.Cursor.Below.Equal(t0.Add(15*time.Minute)) {
		t.Fatalf("state: %+v", st.progress)
	}
}

// A portal that asks (429 or 503 with Retry-After) for a wait longer than
// the run has left before its deadline margin ends the run incomplete, like
// the margin itself: what was committed stays, the warning names the
// portal's Retry-After, and it is not an error.
func TestRunPortalRetryAfterPastTheDeadlineEndsIncomplete(t *testing.T) {
	tests := []struct {
		name   string
		status string
		wait   time.Duration
		by     string // what asked to wait, when not the portal
	}{
		{name: "429", status: "HTTP 429", wait: 90 * time.Second},
		{name: "503", status: "HTTP 503", wait: 10 * time.Minute},
		// The portal's request budget shared by all containers (#17) is
		// used up until a window past the deadline: the same end, its own words.
		{name: "shared budget", status: "not sent", wait: 8 * time.Second, by: "the shared request budget (PORTAL_REQUESTS_PER_MINUTE)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs := violations(1, 600, t0.Add(-2*time.Hour), 3)
			s, src, st, pub := newAudit(evs...)
			s.Settings.PieceEvents = 200
			s.Settings.Concurrency = 1
			s.Settings.Lookback = 3 * time.Hour
			src.busyAfter = 5 // the search, then a few pieces, then the portal is busy
			src.busy = &ipguard.Error{Code: ipguard.EUnavailable, Message: "docspace: get login events: GET /api/2.0/security/audit/login/filter: " + tt.status + " (after 1 attempt)",
				Err: &ipguard.WaitPastDeadlineError{Wait: tt.wait, Left: 20 * time.Second, By: tt.by}}
			res, err := s.Run(context.Background(), trig(15*time.Minute))
			if err != nil {
				t.Fatalf("err %v; want an incomplete run, not an error", err)
			}
			if res.Complete || res.ResumeBelow == "" {
				t.Errorf("result %+v; want complete false with where to resume", res)
			}
			warned := false
			for _, w := range res.Warnings {
				names := strings.Contains(w, "Retry-After")
				if tt.by != "" {
					names = strings.Contains(w, tt.by) && !strings.Contains(w, "Retry-After")
				}
				if names && strings.Contains(w, tt.wait.String()) {
					warned = true
				}
			}
			if !warned {
				t.Errorf("warnings %q; want one naming the portal's Retry-After (or %q) and %s", res.Warnings, tt.by, tt.wait)
			}
			if len(pub.sent) == 0 || st.progress.Cursor == nil || !st.progress.Cursor.Below.Before(t0.Add(15*time.Minute)) {
				t.Errorf("committed progress lost: %d alerts, progress %+v", len(pub.sent), st.progress)
			}
			// The next run, with the portal answering again, finishes the
			// window; every violation is alerted exactly once.
			src.busyAfter = 0
			if res, err := s.Run(context.Background(), trig(15*time.Minute)); err != nil || !res.Complete {
				t.Fatalf("next run: %+v, %v", res, err)
			}
			alertedOnce(t, pub.sent, evs, ", want once")
		})
	}
}

// violations returns n successful logins of alice from an address outside
// her allowlist, ids from first, spread over seconds starting at start.
func violations(first int64, n int, start time.Time, perSecond int) []ipguard.LoginEvent {
	var out []ipguard.LoginEvent
	for i := 0; i < n; i++ {
		e := ev(first+int64(i), "alice", 1010, "198.51.100.1")
		e.Date = start.Add(time.Duration(i/perSecond) * time.Second)
		out = append(out, e)
	}
	return out
}

// backlogAudit is the audit of a backlog larger than one run: the logins
// evs of the last two hours read three pieces of pieceEvents at a time,
// each run stopping margin before its deadline.
func backlogAudit(evs []ipguard.LoginEvent, pieceEvents int, margin time.Duration) (*Service, *fakeSource, *fakeStore, *fakePublisher) {
	s, src, st, pub := newAudit(evs...)
	s.Settings.PieceEvents = pieceEvents
	s.Settings.Concurrency = 3
	s.Settings.Lookback = 3 * time.Hour
	s.Settings.DeadlineMargin = margin
	return s, src, st, pub
}

// clearBacklog runs s over the backlog evs until a run completes (at most
// 40 runs), the portal stalling a few pages past the search in every run:
// no cursor claims a login not alerted, it takes several runs, and every
// violation is alerted exactly once.
func clearBacklog(t *testing.T, s *Service, src *fakeSource, st *fakeStore, pub *fakePublisher, evs []ipguard.LoginEvent) {
	t.Helper()
	runs := 0
	for ; runs < 40; runs++ {
		src.stallAfter(16) // a few pages past the search, then the portal stalls
		res := runWithin(t, s, 400*time.Millisecond)
		cursorClaimsOnlyAlerted(t, st, pub, evs, runs+1)
		if res.Complete {
			break
		}
	}
	if runs < 2 {
		t.Fatalf("the backlog cleared in %d run(s); the test wants several", runs+1)
	}
	alertedOnce(t, pub.sent, evs, fmt.Sprintf(", want exactly once (after %d runs)", runs+1))
}

// cursorClaimsOnlyAlerted fails the test when the cursor st keeps after
// run claims a login of evs (dated after its Below) that pub has not
// alerted.
func cursorClaimsOnlyAlerted(t *testing.T, st *fakeStore, pub *fakePublisher, evs []ipguard.LoginEvent, run int) {
	t.Helper()
	c := st.progress.Cursor
	if c == nil {
		return
	}
	got := alertedIDs(t, pub.sent)
	for _, e := range evs {
		if e.Date.After(c.Below) && got[e.ID] == 0 {
			t.Fatalf("run %d: cursor below %s claims event %d (%s), which was not alerted", run, c.Below, e.ID, e.Date)
		}
	}
}

// A backlog larger than one run clears over several runs: each run stops at
// its deadline margin (the portal stalls after a few pages), keeps its
// pieces, and the next continues; every violation is alerted exactly once
// and the cursor never claims a row it did not read.
func TestBacklogClearsOverSeveralRuns(t *testing.T) {
	evs := violations(1, 3000, t0.Add(-2*time.Hour), 3)
	s, src, st, pub := backlogAudit(evs, 200, 200*time.Millisecond)
	src.shuffle = true
	clearBacklog(t, s, src, st, pub, evs)
	if !st.progress.Until.Equal(t0.Add(15*time.Minute)) || st.progress.Cursor != nil {
		t.Errorf("progress after the backlog: %+v", st.progress)
	}
}

// 150 rows of one second straddle a page boundary and the portal orders
// them differently on every request: every row is evaluated once.
func TestRunTiesShuffledAcrossBoundaryEvaluatesEveryRow(t *testing.T) {
	for _, conc := range []int{1, 4} {
		t.Run(fmt.Sprintf("concurrency %d", conc), func(t *testing.T) {
			var evs []ipguard.LoginEvent
			evs = append(evs, violations(1, 60, t0.Add(10*time.Minute), 1)...)      // 60 newer rows, one per second
			evs = append(evs, violations(1000, 150, t0.Add(8*time.Minute), 150)...) // 150 rows of one second
			evs = append(evs, violations(2000, 90, t0.Add(5*time.Minute), 2)...)
			s, src, _, pub := newAudit(evs...)
			src.shuffle = true
			s.Settings.Concurrency = conc
			res, err := s.Run(context.Background(), trig(15*time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			alertedOnce(t, pub.sent, evs, fmt.Sprintf("; result %+v", res))
			if res.EventsScanned != len(evs) {
				t.Errorf("eventsScanned %d, want %d", res.EventsScanned, len(evs))
			}
			if !strings.Contains(strings.Join(res.Warnings, " "), "150 login events share the second") {
				t.Errorf("a second larger than a page gave no warning naming it: %v", res.Warnings)
			}
		})
	}
}

// Groups smaller than a page that cross a boundary are read whole, silently.
func TestRunTiesShuffledSmallGroupsNoWarning(t *testing.T) {
	evs := violations(1, 1000, t0.Add(time.Minute), 37) // 37 rows a second: every boundary cuts a second
	s, src, _, pub := newAudit(evs...)
	src.shuffle = true
	res, err := s.Run(context.Background(), trig(15*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	alertedOnce(t, pub.sent, evs, "")
	if res.WarningCount != 0 {
		t.Errorf("warnings %v", res.Warnings)
	}
}

// 150 events inserted between two page requests (a storm) shift every row
// down by more than a page: no row of the window is missed and the
// checkpoint is the window's end.
func TestRunStormBetweenPagesMissesNothing(t *testing.T) {
	for _, conc := range []int{1, 4} {
		t.Run(fmt.Sprintf("concurrency %d", conc), func(t *testing.T) {
			evs := violations(1, 500, t0.Add(time.Minute), 1)
			s, src, st, pub := newAudit(evs...)
			src.shuffle = true
			s.Settings.Concurrency = conc
			next := int64(10_000)
			src.beforeCall = func(n int, f *fakeSource) {
				if n == 3 || n == 4 {
					var storm []ipguard.LoginEvent
					for i := 0; i < 150; i++ {
						e := ev(next, guest, 1013, "198.18.0.9")
						e.Date = t0.Add(20 * time.Minute) // after the window: written while the run reads
						storm = append(storm, e)
						next++
					}
					f.add(storm...)
				}
			}
			res, err := s.Run(context.Background(), trig(15*time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			alertedOnce(t, pub.sent, evs, fmt.Sprintf("; result %+v", res))
			if res.PagesReread == 0 {
				t.Errorf("the storm caused no re-read: %+v", res)
			}
			if !st.progress.Until.Equal(t0.Add(15*time.Minute)) || st.progress.Cursor != nil {
				t.Errorf("progress %+v", st.progress)
			}
		})
	}
}

// The concurrent walk finds exactly what the sequential walk finds, on the
// same data, under shuffled ties and a storm.
func TestConcurrentWalkSameFindingsAsSequential(t *testing.T) {
	findings := func(conc int) map[int64]int {
		var evs []ipguard.LoginEvent
		evs = append(evs, violations(1, 700, t0.Add(time.Minute), 7)...)
		evs = append(evs, violations(5000, 130, t0.Add(3*time.Minute), 130)...)
		s, src, _, pub := newAudit(evs...)
		src.shuffle = true
		s.Settings.Concurrency = conc
		next := int64(50_000)
		src.beforeCall = func(n int, f *fakeSource) {
			if n%4 == 0 {
				for i := 0; i < 60; i++ {
					e := ev(next, "alice", 1010, "203.0.113.10")
					e.Date = t0.Add(30 * time.Minute)
					f.add(e)
					next++
				}
			}
		}
		if _, err := s.Run(context.Background(), trig(15*time.Minute)); err != nil {
			t.Fatal(err)
		}
		return alertedIDs(t, pub.sent)
	}
	seq, conc := findings(1), findings(6)
	if len(seq) != 830 || len(conc) != len(seq) {
		t.Fatalf("sequential found %d, concurrent %d, want 830 each", len(seq), len(conc))
	}
	for id, n := range seq {
		if conc[id] != n || n != 1 {
			t.Fatalf("event %d: sequential %d, concurrent %d", id, n, conc[id])
		}
	}
}

// 30,000 failed logins from one address plus one real violation: the run
// succeeds, the violation is alerted, the burst alert fits SNS, DynamoDB
// writes stay few, and the next run sends nothing twice.
func TestRunHugeBurstStaysBoundedAndAlertsTheViolation(t *testing.T) {
	var evs []ipguard.LoginEvent
	for i := 0; i < 30_000; i++ {
		e := ev(int64(i+1), guest, 1013, "198.18.0.66")
		e.Login = fmt.Sprintf("victim%d@example.com", i%3)
		e.Date = t0.Add(time.Duration(i%600) * time.Second)
		evs = append(evs, e)
	}
	evs = append(evs, at(99_999, "alice", 1010, "198.51.100.1", 7*time.Minute))
	s, _, st, pub := newAudit(evs...)
	s.Settings.Lookback = 20 * time.Minute
	res, err := s.Run(context.Background(), trig(15*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if res.Counts[KindIPNotAllowed] != 1 || res.Counts[KindFailedLoginBurst] == 0 {
		t.Fatalf("result %+v", res)
	}
	total, bursts := 0, 0
	for _, a := range pub.sent {
		if n := size(a); n > MaxMessageBytes {
			t.Errorf("message of %d bytes", n)
		}
		for _, f := range findingsOf(t, a) {
			if f.Kind == KindFailedLoginBurst {
				total += f.Count
				bursts++
				if len(f.EventIDs) > MaxListedIDs || !f.Capped || len(f.Logins) != 3 {
					t.Errorf("burst lists %d ids (capped %v), logins %v", len(f.EventIDs), f.Capped, f.Logins)
				}
			}
		}
	}
	// One burst (all within SPRAY_WINDOW), told once: the failed logins
	// that later pieces read continue it (TestABurstReadInSmallPiecesIsToldOnce)
	// and are counted as already alerted.
	if bursts != 1 || total+res.AlreadyAlerted < 30_000 {
		t.Errorf("%d burst findings covering %d failed logins, %d already alerted; want one burst, told once, and every failed login counted", bursts, total, res.AlreadyAlerted)
	}
	if st.Writes > 40 {
		t.Errorf("%d alert record writes for one run, want a bounded few", st.Writes)
	}
	sent := len(pub.sent)
	again, err := s.Run(context.Background(), trig(20*time.Minute))
	if err != nil || len(pub.sent) != sent {
		t.Fatalf("next run sent %d more messages (%+v, %v)", len(pub.sent)-sent, again, err)
	}
}

// An unreadable event and a stored entry that no longer parses: the run
// succeeds with warnings and alerts the rest.
func TestRunSurvivesPoison(t *testing.T) {
	bad := ipguard.LoginEvent{ID: 5, Date: t0.Add(2 * time.Minute), Unreadable: "login event [3]: event 5: date \"yesterday\" is not an RFC 3339 instant", Raw: json.RawMessage(`{"id":5,"date":"yesterday"}`)}
	s, _, st, pub := newAudit(at(1, "alice", 1010, "198.51.100.1", time.Minute), bad, at(7, "bob", 1010, "192.0.2.1", 3*time.Minute))
	st.users["bob"] = ipguard.User{ID: "bob", Email: "bob@example.com", Entries: []string{"192.0.2.0/24", "not-an-ip"}}
	res, err := s.Run(context.Background(), trig(15*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	// the violation, and the unreadable row as lost coverage (a message of its own)
	if res.WarningCount != 2 || len(pub.sent) != 2 || res.Counts[KindIPNotAllowed] != 1 || res.CoverageLost != 1 {
		t.Fatalf("result %+v", res)
	}
	if lost := lostAlerts(t, pub.sent); len(lost) != 1 || lost[0].Cause != CauseUnreadableRows || lost[0].Count != 1 {
		t.Errorf("lost coverage %+v", lost)
	}
	w := strings.Join(res.Warnings, "\n")
	if !strings.Contains(w, `unreadable login event skipped`) || !strings.Contains(w, `"not-an-ip"`) {
		t.Errorf("warnings:\n%s", w)
	}
}

// Issue 11.4: a burst is judged against the accounts it targeted. One
// user's broad entry does not hide a burst against another account.
func TestBurstJudgedByTargetedAccounts(t *testing.T) {
	var evs []ipguard.LoginEvent
	for i := int64(1); i <= 6; i++ {
		e := at(i, guest, 1013, "52.95.110.1", time.Duration(i)*time.Second)
		e.Login = "victim@example.com"
		evs = append(evs, e)
	}
	for i := int64(11); i <= 16; i++ {
		e := at(i, guest, 1013, "52.95.110.2", time.Duration(i)*time.Second)
		e.Login = "Broad@Example.com" // the broad user's own address: a forgotten password
		evs = append(evs, e)
	}
	s, _, st, pub := newAudit(evs...)
	st.users["broad"] = ipguard.User{ID: "broad", Email: "broad@example.com", Entries: []string{"52.0.0.0/8"}}
	st.users["victim"] = ipguard.User{ID: "victim", Email: "victim@example.com", Entries: []string{"198.51.100.0/24"}}
	res, err := s.Run(context.Background(), trig(15*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if res.Counts[KindFailedLoginBurst] != 1 || len(pub.sent) != 1 {
		t.Fatalf("result %+v", res)
	}
	if !strings.Contains(pub.sent[0].Default, `"ip":"52.95.110.1"`) || !strings.Contains(pub.sent[0].Email, "Tried: victim@example.com") {
		t.Errorf("burst:\n%s\n%s", pub.sent[0].Default, pub.sent[0].Email)
	}
}

// A successful login from an address that also failed is critical.
func TestPasswordGuessSucceededIsCritical(t *testing.T) {
	evs := []ipguard.LoginEvent{at(9, "alice", 1010, "198.51.100.9", 5*time.Minute)}
	for i := int64(1); i <= 3; i++ {
		e := at(i, guest, 1013, "198.51.100.9", time.Duration(i)*time.Minute)
		e.Login = "alice@example.com"
		evs = append(evs, e)
	}
	s, _, _, pub := newAudit(evs...)
	res, err := s.Run(context.Background(), trig(15*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if res.Counts[KindPasswordGuessSucceeded] != 1 || res.Severities[SeverityCritical] != 1 || len(pub.sent) != 1 {
		t.Fatalf("result %+v", res)
	}
	a := pub.sent[0]
	if a.Severity != SeverityCritical || !strings.Contains(a.Subject, "CRITICAL") || !strings.Contains(a.Email, "after 3 failed attempts") {
		t.Errorf("alert %q / %q:\n%s", a.Severity, a.Subject, a.Email)
	}
}

// Each severity goes in its own message, with the attributes a filter
// policy reads.
func TestRunSendsOneMessagePerSeverity(t *testing.T) {
	s, _, _, pub := newAudit(at(1, "alice", 1010, "198.51.100.1", time.Minute), at(2, "carol", 1010, "198.51.100.2", 2*time.Minute))
	if _, err := s.Run(context.Background(), trig(15*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if len(pub.sent) != 2 {
		t.Fatalf("%d messages, want 2", len(pub.sent))
	}
	if pub.sent[0].Severity != SeverityHigh || pub.sent[0].Kinds[0] != KindIPNotAllowed ||
		pub.sent[1].Severity != SeverityMedium || pub.sent[1].Kinds[0] != KindUnknownUser {
		t.Errorf("messages %+v / %+v", pub.sent[0], pub.sent[1])
	}
}

// Issue 11.7, measured: SNS accepts a message but the answer is lost. The
// run fails without recording it; the next run sends it again: exactly one
// duplicate, and nothing after that.
func TestLostPublishAnswerMeansExactlyOneDuplicate(t *testing.T) {
	s, _, st, pub := newAudit(at(1, "alice", 1010, "198.51.100.1", time.Minute))
	pub.loseAnswer = 1
	if _, err := s.Run(context.Background(), trig(15*time.Minute)); err == nil {
		t.Fatal("a lost answer must fail the run")
	}
	if len(st.alerted) != 0 {
		t.Fatal("an unconfirmed publish was recorded")
	}
	for i := 0; i < 3; i++ {
		if _, err := s.Run(context.Background(), trig(time.Duration(20+5*i)*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	if got := alertedIDs(t, pub.sent)[1]; got != 2 {
		t.Fatalf("event delivered %d times, want 2 (the lost answer's message and one resend)", got)
	}
}

// A window with 10,000 violations: every alert fits SNS, every violation is
// alerted once, and the run succeeds.
func TestRunTenThousandViolationsFitSNS(t *testing.T) {
	evs := violations(1, 10_000, t0.Add(-2*time.Hour), 2)
	s, _, _, pub := newAudit(evs...)
	s.Settings.Lookback = 3 * time.Hour
	res, err := s.Run(context.Background(), trig(15*time.Minute))
	if err != nil || res.Counts[KindIPNotAllowed] != 10_000 {
		t.Fatalf("result %+v, %v", res, err)
	}
	for _, a := range pub.sent {
		if n := size(a); n > MaxMessageBytes {
			t.Fatalf("message of %d bytes", n)
		}
	}
	alertedOnce(t, pub.sent, evs, "")
}

type corruptProgress struct{ *fakeStore }

func (corruptProgress) Progress(context.Context) (ipguard.AuditProgress, error) {
	return ipguard.AuditProgress{}, ipguard.Errorf(ipguard.EInternal, "dynamodb: get audit progress: attribute until: bad time")
}

// A progress item that no longer parses does not stop every run: the run
// starts over from the lookback and warns (and tells it as lost coverage:
// TestUnreadableProgressIsLostCoverage).
func TestRunSurvivesUnreadableProgress(t *testing.T) {
	s, _, st, pub := newAudit(at(1, "alice", 1010, "198.51.100.1", 10*time.Minute))
	s.Store = corruptProgress{st}
	res, err := s.Run(context.Background(), trig(15*time.Minute))
	if err != nil || len(pub.sent)-len(lostAlerts(t, pub.sent)) != 1 || !strings.Contains(strings.Join(res.Warnings, " "), "the saved progress cannot be read") {
		t.Fatalf("result %+v, %v", res, err)
	}
}

// Every published finding is one searchable log line (msg "finding").
func TestRunLogsEachFinding(t *testing.T) {
	var buf strings.Builder
	s, _, _, _ := newAudit(at(1, "alice", 1010, "198.51.100.1", time.Minute))
	s.Log = slog.New(slog.NewJSONHandler(&buf, nil))
	if _, err := s.Run(context.Background(), trig(15*time.Minute)); err != nil {
		t.Fatal(err)
	}
	var line map[string]any
	for _, l := range strings.Split(buf.String(), "\n") {
		if strings.Contains(l, `"msg":"finding"`) {
			if err := json.Unmarshal([]byte(l), &line); err != nil {
				t.Fatal(err)
			}
		}
	}
	for k, want := range map[string]any{"kind": "ip_not_allowed", "severity": "high", "eventId": float64(1), "userId": "alice",
		"email": "alice@example.com", "ip": "198.51.100.1", "date": "2025-11-25T09:01:00Z"} {
		if k == "date" {
			want = t0.Add(time.Minute).Format(time.RFC3339)
		}
		if line[k] != want {
			t.Errorf("finding log %s = %v, want %v (line %v)", k, line[k], want, line)
		}
	}
	if _, ok := line["country"]; !ok {
		t.Errorf("finding log has no country: %v", line)
	}
}

// A portal that ignores from answers with rows older than the window: the
// walk stops at the window's start and evaluates nothing older.
func TestRunStopsAtWindowStartWhenThePortalIgnoresFrom(t *testing.T) {
	evs := violations(1, 300, t0.Add(5*time.Minute), 1)                   // inside the window
	evs = append(evs, violations(1000, 5000, t0.Add(-2*time.Hour), 1)...) // long before it
	s, src, st, pub := newAudit(evs...)
	st.progress.Until = t0.Add(10 * time.Minute) // window [t0+5m, t0+15m]
	src.ignoreFrom = true
	res, err := s.Run(context.Background(), trig(15*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	got := alertedIDs(t, pub.sent)
	if len(got) != 300 || res.EventsScanned != 300 || res.PagesFetched > 10 { // 3-4 pages, plus the ones asked for ahead
		t.Fatalf("alerted %d, result %+v", len(got), res)
	}
}

// A window full of unreadable events: every one is skipped and counted,
// the result lists a bounded number of them.
func TestRunManyUnreadableEventsBoundedWarnings(t *testing.T) {
	var evs []ipguard.LoginEvent
	for i := int64(1); i <= 500; i++ {
		evs = append(evs, ipguard.LoginEvent{ID: i, Date: t0.Add(time.Duration(i) * time.Second), Unreadable: fmt.Sprintf("event %d: bad", i), Raw: json.RawMessage(`{"id":` + strconv.FormatInt(i, 10) + `}`)})
	}
	evs = append(evs, at(999, "alice", 1010, "198.51.100.1", 12*time.Minute))
	s, _, _, pub := newAudit(evs...)
	res, err := s.Run(context.Background(), trig(15*time.Minute))
	if err != nil || len(pub.sent) != 2 || res.CoverageLost != 1 || res.LoginsNotEvaluated != 500 {
		t.Fatalf("result %+v, %v", res, err)
	}
	if lost := lostAlerts(t, pub.sent); len(lost) != 1 || lost[0].Count != 500 {
		t.Errorf("lost coverage %+v", lost)
	}
	if res.WarningCount != 500 || len(res.Warnings) != maxResultWarnings+1 || !strings.Contains(res.Warnings[maxResultWarnings], "and 400 more warnings") {
		t.Errorf("warningCount %d, %d listed, last %q", res.WarningCount, len(res.Warnings), res.Warnings[len(res.Warnings)-1])
	}
}

// A brute-force attack that goes on while the audit reads writes a few rows
// before page requests, and packs more than a page into some seconds. The
// walk must not spin on such a second until its deadline (re-reading "just
// above it" never succeeds while rows keep arriving), and it must not pass
// it unread either (issue 16 §1): when the flood pauses now and then (a
// request with no new row before it, as a real flood has), the run gets
// through the window; when rows arrive before every single request, the
// second's size cannot be proven, so the run stops at it within its read
// budget (unreadSecond, the cursor at the second) and the run after the
// flood gets through. Every violation is alerted exactly once.
func TestRunGetsPastALargeSecondWhileRowsKeepArriving(t *testing.T) {
	for _, perRequest := range []int{1, 3} {
		for _, conc := range []int{1, 4} {
			for _, pauses := range []bool{true, false} {
				t.Run(fmt.Sprintf("%d rows per request, concurrency %d, pauses %v", perRequest, conc, pauses), func(t *testing.T) {
					var evs []ipguard.LoginEvent
					evs = append(evs, violations(1, 60, t0.Add(10*time.Minute), 1)...)
					big := t0.Add(8 * time.Minute)
					evs = append(evs, violations(1000, 150, big, 150)...) // 150 rows of one second
					evs = append(evs, violations(2000, 90, t0.Add(5*time.Minute), 2)...)
					s, src, st, pub := newAudit(evs...)
					src.shuffle = true
					s.Settings.Concurrency = conc
					next, flooding := int64(10_000), true
					src.beforeCall = func(n int, f *fakeSource) {
						if !flooding || pauses && n%3 == 0 {
							return
						}
						for i := 0; i < perRequest; i++ {
							e := ev(next, guest, 1013, "198.18.0.9")
							e.Date = t0.Add(20 * time.Minute) // after the window: written while the run reads
							f.add(e)
							next++
						}
					}
					var res Result
					for run := 1; run <= 2; run++ {
						ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
						r, err := s.Run(ctx, trig(15*time.Minute))
						cancel()
						if err != nil {
							t.Fatal(err)
						}
						res = r
						if res.Complete {
							break
						}
						if pauses || run > 1 {
							t.Fatalf("run %d did not get through the window (%d requests): %+v", run, res.PagesFetched, res)
						}
						// Rows before every request: the run stops at the
						// second, not at its deadline, and claims nothing of it.
						if u := res.UnreadSecond; u == nil || u.Second != big.Format(time.RFC3339) || !u.RowsUpTo {
							t.Fatalf("the run stopped without waiting at the second: %+v", res)
						}
						if c := st.progress.Cursor; c == nil || !c.Below.Equal(big) {
							t.Fatalf("the cursor %+v does not wait at the second", st.progress.Cursor)
						}
						flooding = false
					}
					if !res.Complete {
						t.Fatalf("the run after the flood did not get through the window: %+v", res)
					}
					if !strings.Contains(strings.Join(res.Warnings, " "), "2026-11-25T09:08:00Z") {
						t.Errorf("the second larger than a page gave no warning naming it: %v", res.Warnings)
					}
					alertedOnce(t, pub.sent, evs, fmt.Sprintf("; result %+v", res))
					for _, f := range lostAlerts(t, pub.sent) {
						if f.Cause != CauseSecondUnread {
							t.Errorf("coverage_lost %q: the second was passed unread", f.Cause)
						}
					}
					if !st.progress.Until.Equal(t0.Add(15*time.Minute)) || st.progress.Cursor != nil {
						t.Errorf("progress %+v", st.progress)
					}
				})
			}
		}
	}
}

// undatedSource hands unreadable rows on as the client does: without a date
// (the fake keeps one only to sort them where the portal has them).
type undatedSource struct{ *fakeSource }

func (u undatedSource) LoginEvents(ctx context.Context, from time.Time, start, count int) ([]ipguard.LoginEvent, error) {
	evs, err := u.fakeSource.LoginEvents(ctx, from, start, count)
	for i := range evs {
		if evs[i].Unreadable != "" {
			evs[i].Date = time.Time{}
		}
	}
	return evs, err
}

// The newest rows of the list can be unreadable too: each is reported,
// wherever it sits, never dropped in silence.
func TestRunReportsUnreadableRowsAtTheTop(t *testing.T) {
	for _, n := range []int{1, 3} {
		t.Run(fmt.Sprintf("%d unreadable rows", n), func(t *testing.T) {
			evs := []ipguard.LoginEvent{at(1, "alice", 1010, "198.51.100.1", time.Minute)}
			for i := 0; i < n; i++ {
				evs = append(evs, ipguard.LoginEvent{ID: int64(50 + i), Date: t0.Add(10 * time.Minute),
					Unreadable: "event: date \"yesterday\" is not an RFC 3339 instant", Raw: json.RawMessage(`{"id":50,"date":"yesterday"}`)})
			}
			s, src, _, pub := newAudit(evs...)
			s.Source = undatedSource{src}
			res, err := s.Run(context.Background(), trig(15*time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			if res.Counts[KindIPNotAllowed] != 1 || len(pub.sent) != 2 || res.CoverageLost != 1 || res.LoginsNotEvaluated != n {
				t.Fatalf("result %+v", res)
			}
			if res.WarningCount != 1 || !strings.Contains(strings.Join(res.Warnings, " "), "unreadable login event skipped") {
				t.Errorf("the unreadable rows were not reported: %+v", res)
			}
		})
	}
}

// A window whose only rows are unreadable reports them; the run still ends.
func TestRunReportsAPageOfOnlyUnreadableRows(t *testing.T) {
	var evs []ipguard.LoginEvent
	for i := 0; i < 3; i++ {
		evs = append(evs, ipguard.LoginEvent{ID: int64(50 + i), Date: t0.Add(10 * time.Minute),
			Unreadable: fmt.Sprintf("event %d: no date", 50+i), Raw: json.RawMessage(`{"id":50}`)})
	}
	s, src, st, _ := newAudit(evs...)
	s.Source = undatedSource{src}
	res, err := s.Run(context.Background(), trig(15*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if res.WarningCount != 3 || !res.Complete || st.progress.Cursor != nil {
		t.Errorf("result %+v, progress %+v", res, st.progress)
	}
}

// digestTaker answers as the daily digest's publisher does for the batches
// it takes: no SNS message, the id "digest:<day>".
type digestTaker struct{ taken int }

func (d *digestTaker) Publish(context.Context, ipguard.Alert) (string, error) {
	d.taken++
	return DigestMessagePrefix + "2026-11-26", nil
}

// alertsPublished counts the messages sent, as the README and the metric
// say (SNS messages); a batch the daily digest took is no message yet and
// is counted in alertsToDigest. Its id stays among messageIds.
func TestAlertsPublishedCountsNoBatchTheDigestTook(t *testing.T) {
	s, _, _, _ := newAudit(at(1, "alice", 1010, "198.51.100.1", time.Minute))
	dt := &digestTaker{}
	s.Publisher = dt
	res, err := s.Run(context.Background(), trig(15*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if dt.taken != 1 || res.AlertsPublished != 0 || res.AlertsToDigest != 1 || len(res.MessageIDs) != 1 {
		t.Errorf("taken %d, alertsPublished %d, alertsToDigest %d, messageIds %v; want 0 published, 1 to the digest", dt.taken, res.AlertsPublished, res.AlertsToDigest, res.MessageIDs)
	}
}
