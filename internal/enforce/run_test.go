package enforce_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"ipguard/internal/audit"
	"ipguard/internal/enforce"
	"ipguard/internal/enforce/enforcetest"
	"ipguard/internal/ipguard"
)

// Issue 16 §5: ENFORCEMENT_MAX_PER_RUN counts the accounts of the whole run,
// across its pieces: a run whose pieces together would pass it acts on no
// more once they do, and the notice counts accounts.
func TestBreakerCountsAccountsAcrossThePiecesOfARun(t *testing.T) {
	p := newPortal(ids(30)...)
	svc := newService(p, &enforcetest.Store{}, enforce.Settings{Mode: enforce.ModeEndSession, MaxPerRun: 10})
	run := svc.Begin(false)
	piece := func(from, to int) []audit.Finding {
		var fs []audit.Finding
		for i := from; i <= to; i++ {
			fs = append(fs, violation(int64(i), user(i)))
		}
		return fs
	}
	first := piece(1, 8) // 8 accounts: acted on
	if n := run.Respond(context.Background(), first); len(n) != 0 {
		t.Fatalf("first piece notices %q", n)
	}
	second := piece(9, 13) // 5 more accounts: 13 in the run, more than 10
	notices := run.Respond(context.Background(), second)
	third := piece(14, 14) // the run stays suspended
	run.Respond(context.Background(), third)
	if got := outcomes(first); !slices.Equal(got, repeat("ended", 8)) {
		t.Errorf("first piece %v", got)
	}
	if got := outcomes(append(second, third...)); !slices.Equal(got, repeat("skipped(circuit_breaker)", 6)) {
		t.Errorf("later pieces %v", got)
	}
	if len(p.writes()) > 10 {
		t.Errorf("one run ended %d sessions with ENFORCEMENT_MAX_PER_RUN=10: %v", len(p.writes()), p.writes())
	}
	if len(notices) != 1 || !strings.Contains(notices[0], "13 accounts") {
		t.Errorf("notices %q; want one counting 13 accounts", notices)
	}
	// The next run enforces again.
	next := piece(20, 21)
	svc.Begin(false).Respond(context.Background(), next)
	if got := outcomes(next); !slices.Equal(got, []string{"ended", "ended"}) {
		t.Errorf("next run %v", got)
	}
}

// Issue 16 §5: in end-all-sessions mode logoutall is called once per user
// per run, however many pieces hold the user's logins.
func TestLogoutAllOncePerUserPerRun(t *testing.T) {
	p := newPortal(1, 2, 3)
	st := &enforcetest.Store{}
	svc := newService(p, st, enforce.Settings{Mode: enforce.ModeEndAllSessions})
	run := svc.Begin(false)
	a := []audit.Finding{violation(1, user(1))}
	b := []audit.Finding{violation(2, user(1)), violation(3, user(2))}
	run.Respond(context.Background(), a)
	run.Respond(context.Background(), b)
	if got := p.writes(); !slices.Equal(got, []string{"logoutall " + user(1), "logoutall " + user(2)}) {
		t.Errorf("portal writes %v; want one logoutall per user", got)
	}
	if got := outcomes(append(a, b...)); !slices.Equal(got, []string{"ended", "ended", "ended"}) {
		t.Errorf("outcomes %v", got)
	}
	if rec, ok, _ := st.ReadResponse(context.Background(), enforce.EventKey(2), t0); !ok || rec.Outcome != audit.OutcomeEnded {
		t.Errorf("the second piece's event is not settled: %+v %v", rec, ok)
	}
}

// Issue 16 §5: outcomes read back from an earlier try's records are marked
// Recorded, so that sessionEnded counts only what this run ended.
func TestOutcomesReadBackAreMarkedRecorded(t *testing.T) {
	p := newPortal(1, 2)
	st := &enforcetest.Store{}
	svc := newService(p, st, enforce.Settings{Mode: enforce.ModeEndSession})
	first := []audit.Finding{violation(1, user(1))}
	svc.Respond(context.Background(), first, false)
	retry := []audit.Finding{violation(1, user(1)), violation(2, user(2))}
	svc.Respond(context.Background(), retry, false)
	if first[0].Response.Recorded || !retry[0].Response.Recorded || retry[1].Response.Recorded {
		t.Errorf("recorded flags: first %+v, retry %+v %+v", first[0].Response, retry[0].Response, retry[1].Response)
	}
}

// lostClaimAnswer is a store whose claim write succeeds but whose answer is
// lost: the SDK sends it again, and the resend finds the record written.
type lostClaimAnswer struct{ *enforcetest.Store }

func (s lostClaimAnswer) ClaimResponse(ctx context.Context, rec ipguard.ResponseRecord) (ipguard.ResponseRecord, bool, error) {
	if _, _, err := s.Store.ClaimResponse(ctx, rec); err != nil {
		return ipguard.ResponseRecord{}, false, err
	}
	return s.Store.ClaimResponse(ctx, rec) // the resend
}

// Issue 16 §5: a claim whose write answer was lost is recognised as the
// run's own: the session is ended and the record settled, not left claimed
// without an outcome for every later run to skip.
func TestClaimWithLostAnswerIsTheRunsOwn(t *testing.T) {
	p := newPortal(1)
	st := &enforcetest.Store{}
	svc := &enforce.Service{Portal: p, Store: lostClaimAnswer{st}, Settings: enforce.Settings{Mode: enforce.ModeEndSession}, Now: func() time.Time { return t0 }}
	fs := []audit.Finding{violation(1, user(1))}
	svc.Respond(context.Background(), fs, false)
	if got := outcomes(fs); !slices.Equal(got, []string{"ended"}) {
		t.Errorf("outcomes %v; want ended", got)
	}
	if got := p.writes(); !slices.Equal(got, []string{"logout 1"}) {
		t.Errorf("portal writes %v", got)
	}
	if rec, ok, _ := st.ReadResponse(context.Background(), enforce.EventKey(1), t0); !ok || !rec.Settled() {
		t.Errorf("record left unsettled: %+v", rec)
	}
}

// Issue 16 §5: a logout whose answer was lost after the portal applied it is
// not sent again; the portal is asked, and what it says is recorded.
func TestLostLogoutAnswerIsConfirmedNotResent(t *testing.T) {
	tests := []struct {
		name    string
		active  bool // whether the session was active (the logout then ends it)
		want    string
		errPart string
	}{
		{"the portal applied it: ended", true, "ended", ""},
		{"nothing was ended: failed, saying the session may still be active", false, "failed", "may still be active"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPortal()
			p.active[1] = tt.active
			p.loseAnswer[1] = true
			st := &enforcetest.Store{}
			svc := newService(p, st, enforce.Settings{Mode: enforce.ModeEndSession})
			fs := []audit.Finding{violation(1, user(1))}
			svc.Respond(context.Background(), fs, false)
			if got := outcomes(fs); !slices.Equal(got, []string{tt.want}) || !strings.Contains(fs[0].Response.Error, tt.errPart) {
				t.Errorf("outcome %+v; want %s", fs[0].Response, tt.want)
			}
			if got := p.writes(); !slices.Equal(got, []string{"logout 1"}) {
				t.Errorf("portal writes %v; want the logout sent once", got)
			}
			if !slices.Contains(p.calls, "confirm") {
				t.Errorf("not confirmed: calls %v", p.calls)
			}
			if rec, ok, _ := st.ReadResponse(context.Background(), enforce.EventKey(1), t0); !ok || rec.Outcome != tt.want {
				t.Errorf("record %+v", rec)
			}
		})
	}
}
