package onboard

import (
	"strings"
	"testing"
	"time"
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
