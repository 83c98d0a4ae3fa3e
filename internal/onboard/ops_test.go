package onboard

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"ipguard/internal/allowlist"
	"ipguard/internal/ipguard"
	"ipguard/internal/lease/leasetest"
)

// The operator-signal defects an attack review of onboarding left (#15,
// #14): each test fails on the reconciler as it was before.

// deadlinePublisher records, for each publish, how much time its context
// left (none: no deadline).
type deadlinePublisher struct {
	mu   sync.Mutex
	left []time.Duration
}

func (p *deadlinePublisher) Publish(ctx context.Context, _ ipguard.Alert) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	left := time.Duration(-1)
	if dl, ok := ctx.Deadline(); ok {
		left = time.Until(dl)
	}
	p.left = append(p.left, left)
	return "m", nil
}

// A due alert's publish ends before its claim runs out: otherwise a second
// flusher claims it meanwhile and sends it again. (Before: the publish had
// no deadline of its own.)
func TestPublishOfADueAlertEndsBeforeItsClaim(t *testing.T) {
	e := newEnv()
	pub := &deadlinePublisher{}
	e.s.Alerts = pub
	e.do(t, `{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.10"]}`)
	e.p.set(e.p.list, false) // restrictions switched off by hand: a drift alert
	e.do(t, `{"action":"sync"}`)
	if len(pub.left) == 0 {
		t.Fatal("no alert published")
	}
	for i, left := range pub.left {
		if left < 0 || left > DueClaim-PublishMargin {
			t.Errorf("publish %d: %v left on its context; want a deadline at most DueClaim (%v) less %v", i, left, DueClaim, PublishMargin)
		}
	}
}

// A due alert that could not be published is counted for the invocation's
// metrics line (AlertsUndelivered, read by an alarm), not only logged; one
// that went out is not. (Before: failed publishes were only logged.)
func TestUnpublishedDueAlertsAreCounted(t *testing.T) {
	e := newEnv()
	e.do(t, `{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.10"]}`)
	e.p.set(e.p.list, false) // a drift alert becomes due
	e.alerts.throttle = 1
	var d AlertDelivery
	ctx := WithAlertDelivery(context.Background(), &d)
	if _, err := e.s.Handle(ctx, []byte(`{"action":"sync"}`)); err != nil {
		t.Fatal(err)
	}
	if n := d.Undelivered(); n != 1 {
		t.Errorf("undelivered = %d after a throttled publish; want 1", n)
	}
	var again AlertDelivery
	if _, err := e.s.Handle(WithAlertDelivery(context.Background(), &again), []byte(`{"action":"sync"}`)); err != nil {
		t.Fatal(err)
	}
	if n := again.Undelivered(); n != 0 || countKind(e.alerts, "allowlist_drift") != 1 {
		t.Errorf("undelivered = %d, drift alerts %d after the topic took it; want 0 and 1", n, countKind(e.alerts, "allowlist_drift"))
	}
}

// The "your change was overwritten" alert is recorded after the lease was
// released; when its publish is throttled, the next change (not only the
// next scheduled sync) sends it. (Before: nothing marked it due in the
// state, so changes never looked at the outbox.)
func TestThrottledOverwrittenAlertIsSentByTheNextChange(t *testing.T) {
	e := newEnv()
	trail := e.withTrail()
	e.p.set(restr("192.0.2.1!,198.51.100.7"), true)
	trail.add(Change{When: t0, User: "Ada Admin", UserID: "adm", IP: "192.0.2.66"})
	e.alerts.throttle = 1
	e.do(t, `{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.10"]}`)
	if len(e.alerts.sent) != 0 {
		t.Fatalf("sent %d alerts through a throttled topic", len(e.alerts.sent))
	}
	e.now = t0.Add(time.Minute) // the admin's save is out of the next change's window
	e.do(t, `{"id":"u2","email":"b@example.com","allowedIps":["203.0.113.20"]}`)
	var found bool
	for _, a := range e.alerts.sent {
		found = found || slices.Contains(a.Kinds, "allowlist_drift") && strings.Contains(a.Email, "Ada Admin")
	}
	if !found {
		t.Errorf("the overwritten alert was not sent by the next change: %d alerts sent", len(e.alerts.sent))
	}
	if st := e.state(); st.AlertsDue {
		t.Error("the outbox is empty, yet the state still says alerts are due")
	}
}

// A reconcile whose lease ran out (a newer holder took over and wrote the
// state meanwhile) cannot replace the newer pass's owned list: an address
// the newer pass added stays owned, so offboarding its user removes it.
// (Before: the late writer, failing the applied condition, wrote again
// without it and replaced owned: an address nobody owns is never removed.)
func TestLateWriterNeverReplacesANewerPassesState(t *testing.T) {
	e := newEnv()
	// B: another invocation that finds the lease free (A's ran out).
	b := &Service{Store: e.st, Portal: e.p, Leases: &leasetest.Backend{}, Alerts: e.alerts, LeaseWait: 5 * time.Second,
		WriteAttempt: testWriteAttempt,
		Settings:     Settings{MaxRangeAddresses: 256, Enforce: true, Limits: allowlist.DefaultLimits},
		Now:          func() time.Time { return e.now }}
	var bErr error
	e.p.afterPut = func(*fakePortal) {
		// Between A's PUT and its read-back, B onboards u2 and writes the
		// state (owned: 203.0.113.20).
		_, bErr = b.Handle(context.Background(), []byte(`{"id":"u2","email":"b@example.com","allowedIps":["203.0.113.20"]}`))
	}
	res, err := e.s.Handle(context.Background(), []byte(`{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.10"]}`))
	if err != nil || bErr != nil {
		t.Fatalf("A: %v; B: %v", err, bErr)
	}
	if st := e.state(); !slices.Contains(st.Owned, "203.0.113.20") {
		t.Fatalf("after the late writer: owned %v; want the newer pass's 203.0.113.20 kept (A's result %+v)", st.Owned, res)
	}
	e.do(t, `{"action":"offboard","id":"u2"}`)
	if got := ips(e.p.list); strings.Contains(got, "203.0.113.20") {
		t.Errorf("portal = %s after offboarding u2; its address stayed (nobody owned it)", got)
	}
}
