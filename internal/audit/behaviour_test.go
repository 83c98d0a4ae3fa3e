package audit

import (
	"context"
	"strings"
	"testing"
	"time"
)

// stubBehaviour adds a reason to every finding, a quiet (low) finding for
// alice's allowed login, and records the order of calls.
type stubBehaviour struct {
	calls    []string
	declared map[int64]bool
}

func (b *stubBehaviour) Judge(_ context.Context, p Piece, fs []Finding) ([]Finding, error) {
	b.calls = append(b.calls, "judge")
	b.declared = map[int64]bool{}
	for _, ev := range p.Events {
		b.declared[ev.ID] = p.Declared(ev)
	}
	for i := range fs {
		fs[i].Reasons = []Reason{{Kind: fs[i].Kind, Severity: fs[i].Severity, Text: fs[i].Reason}, {Kind: KindNewCountry, Severity: SeverityMedium, Text: "first login from Brazil"}}
		fs[i].Explanation = "first login from Brazil. Normal for this user: Germany."
	}
	fs = append(fs, Finding{EventID: 1, UserID: "alice", Kind: KindNewDevice, Severity: SeverityLow, Reason: "first login with Edge on Windows",
		Date: t0.Add(time.Minute).Format(time.RFC3339), NotMessaged: true})
	return fs, nil
}

func (b *stubBehaviour) Settle(context.Context) error {
	b.calls = append(b.calls, "settle")
	return nil
}

// The hook sees each login with whether it came through a declared entry;
// its findings below the minimum severity are counted but sent in no
// message; its reasons reach the e-mail; it settles after publishing.
func TestBehaviourHookMergesCountsQuietAndSettlesAfterPublishing(t *testing.T) {
	s, _, _, pub := newAudit(at(1, "alice", 1010, "203.0.113.10", time.Minute), at(2, "alice", 1010, "198.51.100.2", 2*time.Minute))
	b := &stubBehaviour{}
	s.Behaviour = b
	res, err := s.Run(context.Background(), trig(15*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(b.calls, ",") != "judge,settle" {
		t.Errorf("calls %v", b.calls)
	}
	if !b.declared[1] || b.declared[2] {
		t.Errorf("declared %v, want event 1 only", b.declared)
	}
	if res.Counts[KindNewDevice] != 1 || res.NotMessaged != 1 || res.Counts[KindIPNotAllowed] != 1 || res.Severities[SeverityLow] != 1 ||
		res.BehaviourReasons[KindNewCountry] != 1 || res.BehaviourReasons[KindNewDevice] != 1 {
		t.Errorf("result %+v", res)
	}
	if len(pub.sent) != 1 || strings.Contains(pub.sent[0].Default, KindNewDevice) {
		t.Fatalf("a quiet finding was sent: %d messages", len(pub.sent))
	}
	if e := pub.sent[0].Email; !strings.Contains(e, "new_country (medium): first login from Brazil") || !strings.Contains(e, "Why:   first login from Brazil") {
		t.Errorf("email lacks the reasons:\n%s", e)
	}
}
