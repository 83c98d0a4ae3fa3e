package onboard

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"ipguard/internal/ipguard"
)

// The key is rotated to one created by another admin (its creator left the
// company: a terminated user's keys stop working, so "create it as the same
// user" cannot be followed). A warm container had asked keys/@self before
// the rotation; the tool's saves are now the new creator's. They are still
// the tool's own: nothing in the result names them as someone else's save,
// and no "overwritten" drift alert is sent about the tool's own write.
// (Before: the key's user was asked once per process and never again, so
// every save of the tool after the rotation was named as someone else's and
// alerted as a change the tool's write overwrote, once per reconcile.)
func TestToolsOwnSavesAfterAKeyRotationToAnotherUserAreItsOwn(t *testing.T) {
	e := newEnv()
	e.withTrail()
	e.do(t, `{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.10"]}`)
	// The rotation: the new key acts as admin "b".
	e.p.keyUser = "b"
	e.s.Directory = &fakeDirectory{creator: "b", people: map[string]Person{"b": {ID: "b", IsAdmin: true}}}
	for i, ip := range []string{"203.0.113.20", "203.0.113.30"} {
		e.now = t0.Add(time.Duration(i+1) * time.Minute)
		res := e.do(t, `{"id":"u`+ip[len(ip)-2:]+`","email":"b@example.com","allowedIps":["`+ip+`"]}`)
		if w := strings.Join(res.Warnings, " "); strings.Contains(w, "someone else") {
			t.Errorf("change %d: warnings %q; the tool's own save is no one else's", i+1, w)
		}
	}
	if n := countKind(e.alerts, "allowlist_drift"); n != 0 {
		t.Errorf("%d drift alert(s) about the tool's own saves after the key rotation", n)
	}
}

// datedLater is the portal whose PUT answers are dated one second after
// the save (the portal stamps the event while it works and dates the
// answer once done, here across a second's boundary).
type datedLater struct{ *fakePortal }

func (p datedLater) SaveIPRestrictions(ctx context.Context, l []ipguard.Restriction, enable bool) (time.Time, error) {
	at, err := p.fakePortal.SaveIPRestrictions(ctx, l, enable)
	if err == nil {
		at = at.Add(time.Second)
	}
	return at, err
}

// Attribution by facts needs who the key acts as (#15 §3). A fresh
// container whose keys/@self fails (a passing outage) still knows it: the
// state keeps the key's user as the last reconcile that knew it found it.
// So an admin's save in the second the tool's answer is dated is named,
// and the tool's own save (stamped in the second before) is not. (Before:
// with the key's user unknown, any save at an own instant was taken for
// the tool's, whoever made it: the admin's was hidden and the tool's own
// named as someone else's.)
func TestAdminSaveIsNamedWhenAFreshContainerCannotAskWhoTheKeyIs(t *testing.T) {
	e := newEnv()
	e.withTrail()
	trail := e.p.trail
	// A warm container knows the key's user (asked once) and reconciles.
	e.do(t, `{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.10"]}`)
	e.now = t0.Add(time.Minute)
	e.do(t, `{"id":"u2","email":"b@example.com","allowedIps":["203.0.113.20"]}`)
	// A fresh container, keys/@self failing.
	cold := &Service{Store: e.st, Portal: datedLater{e.p}, Leases: e.s.Leases, Alerts: e.alerts, LeaseWait: e.s.LeaseWait,
		WriteAttempt: e.s.WriteAttempt, Settings: e.s.Settings, Now: e.s.Now, Trail: e.s.Trail,
		Directory: &fakeDirectory{keyErr: func() error { return fmt.Errorf("keys/@self: HTTP 502") }}}
	e.now = t0.Add(2 * time.Minute)
	// The admin saves in the second after the tool's save, the one its
	// answer is dated: between the tool's read and its write.
	trail.add(Change{When: e.now.Add(time.Second), User: "Ada Admin", UserID: "adm", IP: "192.0.2.66"})
	res, err := cold.Handle(context.Background(), []byte(`{"id":"u3","email":"c@example.com","allowedIps":["203.0.113.30"]}`))
	if err != nil {
		t.Fatal(err)
	}
	w := strings.Join(res.Warnings, " ")
	if !strings.Contains(w, "Ada Admin") {
		t.Errorf("warnings %q; want the admin's save named", w)
	}
	if strings.Contains(w, "IP Guard key") {
		t.Errorf("warnings %q name the tool's own save", w)
	}
}
