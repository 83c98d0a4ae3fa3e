package audit

import (
	"context"
	"strings"
	"testing"
	"time"
)

// fakeResponder ends every ip_not_allowed session and says so.
type fakeResponder struct {
	calls    int
	backfill bool
	seen     []int64
	notice   string
	recorded map[int64]bool // answer these from "an earlier try's record"
	begins   int
}

func (f *fakeResponder) Begin(backfill bool) RunResponder {
	f.begins++
	f.backfill = backfill
	return f
}

func (f *fakeResponder) Respond(_ context.Context, fs []Finding) []string {
	f.calls++
	for i := range fs {
		f.seen = append(f.seen, fs[i].ids()...)
		if fs[i].Kind == KindIPNotAllowed {
			fs[i].Response = &Response{Outcome: OutcomeEnded, Action: "end-session", At: "2026-11-25T12:03:10Z", Recorded: f.recorded[fs[i].EventID]}
		}
	}
	if f.notice != "" {
		return []string{f.notice}
	}
	return nil
}

func TestRunRespondsBeforePublishingAndCountsEndedSessions(t *testing.T) {
	s, _, _, pub := newAudit(at(1, "alice", 1010, "198.51.100.1", time.Minute), at(2, "alice", 1010, "198.51.100.2", 2*time.Minute),
		at(3, "bob", 1010, "198.51.100.3", 3*time.Minute))
	r := &fakeResponder{notice: "Enforcement was suspended for this run"}
	s.Responder = r
	res, err := s.Run(context.Background(), trig(15*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if r.calls != 1 || r.backfill || len(r.seen) != 3 {
		t.Fatalf("responder calls %d backfill %v saw %v", r.calls, r.backfill, r.seen)
	}
	// two messages: high (alice's two, with responses) and medium (bob: no allowlist)
	if res.SessionEnded != 2 || res.Responses[OutcomeEnded] != 2 || len(pub.sent) != 2 {
		t.Errorf("result %+v", res)
	}
	a := pub.sent[0]
	if !strings.Contains(a.Email, "Response: session ended 12:03:10 UTC") || !strings.Contains(a.Email, "Enforcement was suspended") {
		t.Errorf("email does not say what was done:\n%s", a.Email)
	}
	if !strings.Contains(a.SMS, "2 sessions ended") {
		t.Errorf("sms %q", a.SMS)
	}
	if !strings.Contains(a.Default, `"response":{"outcome":"ended"`) || !strings.Contains(a.Default, `"notices":["Enforcement was suspended`) {
		t.Errorf("json %s", a.Default)
	}

	// The next run does not ask again about alerted events.
	r.seen = nil
	if _, err := s.Run(context.Background(), trig(30*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if len(r.seen) != 0 {
		t.Errorf("responder saw alerted events again: %v", r.seen)
	}
}

// Issue 16 §5: sessionEnded counts only the sessions this run ended, not
// outcomes read back from an earlier try's records; and a run of several
// pieces is one run for the responder.
func TestSessionEndedCountsOnlyThisRunsActions(t *testing.T) {
	s, _, _, _ := newAudit(violations(1, 250, t0.Add(time.Minute), 1)...)
	s.Settings.PieceEvents = 100
	r := &fakeResponder{recorded: map[int64]bool{1: true, 2: true}}
	s.Responder = r
	res, err := s.Run(context.Background(), trig(15*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if res.SessionEnded != 248 || res.Responses[OutcomeEnded] != 250 {
		t.Errorf("sessionEnded %d (responses %v); want 248 ended by this run of 250 shown ended", res.SessionEnded, res.Responses)
	}
	if r.begins != 1 || r.calls < 2 {
		t.Errorf("responder begun %d times for %d pieces; want once per run", r.begins, r.calls)
	}
}

func TestRunTellsTheResponderAboutABackfill(t *testing.T) {
	s, _, _, _ := newAudit(at(1, "alice", 1010, "198.51.100.1", time.Minute))
	r := &fakeResponder{}
	s.Responder = r
	if _, err := s.Run(context.Background(), Trigger{From: t0, To: t0.Add(2 * time.Minute), Backfill: true}); err != nil {
		t.Fatal(err)
	}
	if r.calls != 1 || !r.backfill {
		t.Errorf("calls %d backfill %v", r.calls, r.backfill)
	}
}

func TestResponseText(t *testing.T) {
	tests := []struct {
		r    Response
		want string
	}{
		{Response{Outcome: OutcomeEnded, Action: "end-session", At: "2026-11-25T12:03:10Z"}, "session ended 12:03:10 UTC"},
		{Response{Outcome: OutcomeEnded, Action: "end-all-sessions", At: "2026-11-25T12:03:10Z"}, "all of the user's sessions ended 12:03:10 UTC"},
		{Response{Outcome: OutcomeWouldEnd, Action: "end-session"}, "would have ended (report mode)"},
		{Response{Outcome: OutcomeNotActive, At: "2026-11-25T12:03:10Z"}, "session had already ended (checked 12:03:10 UTC)"},
		{Response{Outcome: OutcomeRefused, Error: "HTTP 403:\nAccess\x1b denied"}, "the portal refused to end the session: HTTP 403: Access\\u001B denied"}, // humantext.Words: ESC shown escaped, no longer a space
		{Response{Outcome: OutcomeFailed, Error: "HTTP 503"}, "ending the session failed: HTTP 503"},
		{Response{Outcome: OutcomeSkipped, Guard: GuardOwner}, "not acted on: the user is the portal owner"},
		{Response{Outcome: OutcomeSkipped, Guard: GuardCircuitBreaker}, "not acted on: enforcement was suspended for this run (circuit breaker)"},
	}
	for _, tt := range tests {
		if got := responseText(&tt.r); got != tt.want {
			t.Errorf("responseText(%+v) = %q; want %q", tt.r, got, tt.want)
		}
	}
	e := escalationText(&Escalation{Outcome: OutcomeDisabled, Violations: 3, At: "2026-11-25T12:03:11Z"})
	if e != "disabled 12:03:11 UTC after 3 violations in 24 hours" {
		t.Errorf("escalation %q", e)
	}
}

// Attack review (ending sessions): a run that ended sessions and then failed
// (SNS down) still says how many it ended; its retry answers them from the
// records and does not count them, so without this the sessionEnded count
// (and the SessionEnded metric) would never show those sessions.
func TestFailedRunStillCountsTheSessionsItEnded(t *testing.T) {
	s, _, _, pub := newAudit(at(1, "alice", 1010, "198.51.100.1", time.Minute), at(2, "alice", 1010, "198.51.100.2", 2*time.Minute))
	s.Responder = &fakeResponder{}
	pub.fail = true
	res, err := s.Run(context.Background(), trig(15*time.Minute))
	if err == nil {
		t.Fatal("the run succeeded with SNS down")
	}
	if res.SessionEnded != 2 {
		t.Errorf("failed run: sessionEnded %d; want the 2 sessions it ended before failing", res.SessionEnded)
	}
}
