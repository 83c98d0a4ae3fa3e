package onboard

import (
	"testing"
)

// TestHandSwitchOffStaysOffWithoutDriftRepair: an admin switches
// restrictions off by hand with PORTAL_DRIFT_REPAIR=false. The drift sync
// leaves them off, and so must every later reconcile (a sync, a change),
// until someone switches them on again.
func TestHandSwitchOffStaysOffWithoutDriftRepair(t *testing.T) {
	e := newEnv()
	e.do(t, `{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.10"]}`)
	if !e.p.enabled {
		t.Fatal("restrictions not switched on by the first change")
	}
	e.p.set(e.p.list, false) // by hand
	e.do(t, `{"action":"sync"}`)
	if e.p.enabled {
		t.Fatal("the drift sync switched restrictions back on")
	}
	e.do(t, `{"action":"sync"}`)
	if e.p.enabled {
		t.Fatal("the second sync switched restrictions back on although PORTAL_DRIFT_REPAIR=false")
	}
	res := e.do(t, `{"id":"u2","email":"b@example.com","allowedIps":["203.0.113.11"]}`)
	if e.p.enabled || res.RestrictionsEnabled {
		t.Fatalf("a later change switched restrictions back on: %+v", res)
	}
	// Switched on again by hand: the tool keeps them on from then on.
	e.p.set(e.p.list, true)
	e.do(t, `{"action":"sync"}`)
	e.do(t, `{"id":"u3","email":"c@example.com","allowedIps":["203.0.113.12"]}`)
	if !e.p.enabled {
		t.Error("restrictions off after they were switched on again by hand")
	}
}
