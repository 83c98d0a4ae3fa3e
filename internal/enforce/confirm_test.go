package enforce_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"ipguard/internal/audit"
	"ipguard/internal/enforce"
	"ipguard/internal/enforce/enforcetest"
)

// lostLogout is a logout that reaches the portal or not, and lands late or
// not, whose answer is lost either way.
type lostLogout int

const (
	answered     lostLogout = iota // the answer arrives
	lostApplied                    // the portal ended the session; the answer was lost
	lostNotSent                    // a proxy answered 502: the portal never saw it
	lostLateLand                   // answer lost; the portal applies it after the client gave up
)

// A logout whose answer was lost is confirmed from the audit trail, which
// says who ended a session (not which one) and dates it to the second. The
// run's own other logouts, in the same second or pieces before, are never
// taken for this one's confirmation (attack review of the audit path). The
// fake's clock stands still, so every logout falls in one second.
func TestALostLogoutIsConfirmedOnlyBeyondTheRunsOwnLogouts(t *testing.T) {
	tests := []struct {
		name   string
		pieces [][]lostLogout // per piece of one run, per violating login
		want   []string
	}{
		{"a lost logout that never reached the portal, after one that ended a session", [][]lostLogout{{answered, lostNotSent}}, []string{"ended", "failed"}},
		{"a lost logout that landed, after one that ended a session", [][]lostLogout{{answered, lostApplied}}, []string{"ended", "ended"}},
		{"the same across two pieces of one run", [][]lostLogout{{answered}, {lostNotSent}}, []string{"ended", "failed"}},
		{"an earlier lost logout landing late is not a later one's confirmation", [][]lostLogout{{lostLateLand, lostNotSent}}, []string{"failed", "failed"}},
		{"two lost logouts that both landed", [][]lostLogout{{lostApplied, lostApplied}}, []string{"ended", "ended"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPortal()
			var late []int64
			svc := newService(p, &enforcetest.Store{}, enforce.Settings{Mode: enforce.ModeEndSession})
			lp := &latePortal{fakePortal: p, late: &late}
			svc.Portal = lp
			run := svc.Begin(false)
			var got []string
			id := int64(0)
			for _, piece := range tt.pieces {
				var fs []audit.Finding
				for _, how := range piece {
					id++
					p.active[id] = true
					switch how {
					case lostApplied:
						p.loseAnswer[id] = true
					case lostNotSent:
						p.failLogout[id] = fmt.Errorf("docspace: end session: HTTP 502: %w", enforce.ErrUnconfirmed)
					case lostLateLand:
						lp.landsLate = append(lp.landsLate, id)
					}
					fs = append(fs, violation(id, user(int(id))))
				}
				run.Respond(context.Background(), fs)
				got = append(got, outcomes(fs)...)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("outcomes %v; want %v", got, tt.want)
			}
		})
	}
}

// latePortal applies the logouts of landsLate only after their answers were
// lost: each lands at the next logout call.
type latePortal struct {
	*fakePortal
	landsLate []int64
	late      *[]int64
}

func (p *latePortal) EndSession(ctx context.Context, id int64) (bool, error) {
	for _, l := range *p.late {
		p.mu.Lock()
		if p.active[l] {
			p.active[l] = false
			p.endedAt = append(p.endedAt, p.now())
		}
		p.mu.Unlock()
	}
	*p.late = nil
	if slices.Contains(p.landsLate, id) {
		*p.late = append(*p.late, id)
		p.record(fmt.Sprintf("logout %d", id))
		return false, fmt.Errorf("docspace: end session: no answer within 10s: %w", enforce.ErrUnconfirmed)
	}
	return p.fakePortal.EndSession(ctx, id)
}
