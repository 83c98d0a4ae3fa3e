package onboard

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"ipguard/internal/ipguard"
)

// largestDrift is a drift alert's input with every list past MaxAlertList
// and every portal-supplied string at its longest, of characters that JSON
// escapes the most ("<" becomes six bytes).
func largestDrift(tag int, char string) *Drift {
	long := func(n int) string { return strings.Repeat(char, n) }
	d := &Drift{SwitchedOff: true, Since: time.Now().UTC().Format(time.RFC3339), Overwritten: []ipguard.Restriction{}}
	for i := range 2 * MaxAlertList {
		ip := fmt.Sprintf("2001:db8:%04x:ffff:ffff:ffff:ffff:%04x", tag, i)
		d.MissingOwned = append(d.MissingOwned, ip)
		d.Restored = append(d.Restored, ip)
		d.Unknown = append(d.Unknown, ipguard.Restriction{IP: long(50)})
		d.Overwritten = append(d.Overwritten, ipguard.Restriction{IP: long(50)})
		d.Changes = append(d.Changes, changeView(Change{When: time.Now(), User: long(500), UserID: long(500), IP: long(500)}))
	}
	return d
}

// The onboarding outbox is one DynamoDB item (400 KB): the due alerts
// kept at once must fit in it, with room for the attribute names and
// claims. Otherwise recording one more due alert fails exactly when alerts
// pile up (the topic refusing them), and that alert is published once,
// directly, and lost if the topic still refuses it. Counting alerts
// (MaxOutbox) is not enough: one drift alert at its largest takes
// hundreds of KB; the outbox drops its oldest (logged) to stay within
// MaxOutboxBytes, and the newest is always kept.
func TestOutboxOfLargestAlertsFitsItsItem(t *testing.T) {
	for _, tt := range []struct {
		name string
		char string
	}{{"plain", "a"}, {"escaped by JSON", "<"}} {
		t.Run(tt.name, func(t *testing.T) {
			st := newFakeStore()
			s := &Service{Store: st, Alerts: &fakeAlerts{}, PortalName: strings.Repeat(tt.char, 300)}
			ctx := context.Background()
			at := t0
			s.Now = func() time.Time { at = at.Add(time.Second); return at }
			var last string
			for i := range 2 * MaxOutbox {
				last = fmt.Sprintf("drift#%016d", i)
				s.due(ctx, last, s.driftAlert(largestDrift(i, tt.char)))
			}
			due, err := st.DueAlerts(ctx)
			if err != nil {
				t.Fatal(err)
			}
			total := 0
			for _, a := range due {
				total += dueBytes(a)
			}
			if limit := 400*1024 - 8*1024; total > limit || len(due) > MaxOutbox {
				t.Errorf("%d due alerts take %d bytes; one outbox item holds %d (and MaxOutbox %d alerts)", len(due), total, limit, MaxOutbox)
			}
			if len(due) == 0 || due[len(due)-1].Key != last {
				t.Errorf("the newest due alert %s was not kept", last)
			}
		})
	}
}
