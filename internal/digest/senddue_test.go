package digest_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"ipguard/internal/audit"
	"ipguard/internal/ipguard"
)

// refusing refuses the digest of one day (an alert the topic never takes,
// e.g. one it finds too large) and sends the others.
type refusing struct {
	sink
	day string
}

func (r *refusing) Publish(ctx context.Context, a ipguard.Alert) (string, error) {
	if strings.Contains(a.Subject, r.day) {
		return "", ipguard.Errorf(ipguard.EInternal, "sns: alert message is 300000 bytes with its attributes, at most 262144 allowed")
	}
	return r.sink.Publish(ctx, a)
}

// One day's digest that cannot be sent does not hold back the days after
// it: each due day is sent on its own, and the failure is still returned
// (a warning of the run). Before, SendDue stopped at the first day that
// failed, so one digest the topic refused kept every later digest unsent
// for the eight days the item lives (attack review of the audit path).
func TestADigestThatCannotBeSentHoldsBackNoOtherDay(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	p, _, _ := newDigest(&now)
	out := &refusing{day: "2026-12-02"}
	p.Next = out
	for _, at := range []time.Time{now, now.Add(24 * time.Hour)} { // into the digests of 12-02 and 12-03
		now = at
		if _, err := p.Publish(ctx, lowAlert(t, audit.Finding{EventID: at.Unix(), Kind: "new_device", Severity: "low", Email: "ann@example.com", IP: "203.0.113.1"})); err != nil {
			t.Fatal(err)
		}
	}
	now = time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	sent, err := p.SendDue(ctx)
	if err == nil || !strings.Contains(err.Error(), "2026-12-02") {
		t.Errorf("SendDue error %v; want the refused day named", err)
	}
	if len(sent) != 1 || sent[0] != "2026-12-03" || len(out.sent) != 1 {
		t.Errorf("sent %v (%d messages); want the digest of 2026-12-03 sent although 2026-12-02's was refused", sent, len(out.sent))
	}
}
