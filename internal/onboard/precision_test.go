package onboard

import (
	"context"
	"strings"
	"testing"
	"time"
)

// Request times are ordered at one precision end to end, the millisecond:
// requestedAt is parsed to it, an EventBridge event's time (whole seconds)
// is the first millisecond of its second, the times stored with the
// entries and offboardings keep it, every comparison is between times of
// that precision, and warnings name the newer request's time with it.
// Within one millisecond the later arrival wins (a retry of the same
// request, or two requests no clock can order).
func TestRequestTimesAreOrderedToTheMillisecond(t *testing.T) {
	const x = "203.0.113.10"
	direct := func(action, at string) func(e *env) (Result, error) {
		return func(e *env) (Result, error) {
			p := `{"action":"` + action + `","id":"u1","requestedAt":"2026-11-25T09:00:` + at + `Z","allowedIps":["` + x + `"]}`
			if action == "add" {
				p = `{"action":"add","id":"u1","email":"a@example.com","requestedAt":"2026-11-25T09:00:` + at + `Z","allowedIps":["` + x + `"]}`
			}
			if action == "offboard" {
				p = `{"action":"offboard","id":"u1","requestedAt":"2026-11-25T09:00:` + at + `Z"}`
			}
			return e.handle(p)
		}
	}
	event := func(action string, sec int) func(e *env) (Result, error) {
		return func(e *env) (Result, error) {
			return e.s.HandleEventAt(context.Background(), "UserAllowlistChanged", time.Date(2026, 11, 25, 9, 0, sec, 0, time.UTC),
				[]byte(`{"action":"`+action+`","id":"u1","allowedIps":["`+x+`"]}`))
		}
	}
	tests := []struct {
		name        string
		first, then func(e *env) (Result, error)
		wantOn      bool   // x on the portal at the end
		warnNames   string // "" : no warning about a newer request
	}{
		{"remove .900, then a replayed add of .100: stays removed", direct("remove", "00.900"), direct("add", "00.100"), false, "09:00:00.9Z"},
		{"remove .100, then an add of .900: added", direct("remove", "00.100"), direct("add", "00.900"), true, ""},
		{"remove .900, then an event of that second (10:00:00): stays removed", direct("remove", "00.900"), event("add", 0), false, "09:00:00.9Z"},
		{"a removing event of that second, then an add of .900: added", event("remove", 0), direct("add", "00.900"), true, ""},
		{"remove .9004, then an add of .9002 (the same millisecond): the later arrival wins", direct("remove", "00.9004"), direct("add", "00.9002"), true, ""},
		{"offboard .9004, then an add of .9002 (the same millisecond): the later arrival wins", direct("offboard", "00.9004"), direct("add", "00.9002"), true, ""},
		{"offboard .901, then an add of .9002: not applied", direct("offboard", "00.901"), direct("add", "00.9002"), false, "09:00:00.901Z"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv()
			e.do(t, `{"id":"u1","email":"a@example.com","requestedAt":"2026-11-25T08:00:00Z","allowedIps":["203.0.113.11","`+x+`"]}`)
			if _, err := tc.first(e); err != nil {
				t.Fatal(err)
			}
			res, err := tc.then(e)
			if err != nil {
				t.Fatal(err)
			}
			if on := strings.Contains(ips(e.p.list), x); on != tc.wantOn {
				t.Errorf("portal = %s; %s on: %v, want %v", ips(e.p.list), x, on, tc.wantOn)
			}
			w := strings.Join(res.Warnings, " ")
			if tc.warnNames != "" && !strings.Contains(w, tc.warnNames) {
				t.Errorf("warnings %q; want the newer request's time to the millisecond (%s)", w, tc.warnNames)
			}
			if tc.warnNames == "" && strings.Contains(w, "requested at") {
				t.Errorf("warnings %q; want none about a newer request", w)
			}
		})
	}
}
