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

// Lambda retries an asynchronous invocation that failed (after 1 and 2
// minutes; throttled ones for up to 6 hours) with the same payload and the
// same request id. A direct payload without requestedAt is then dated by
// when its request id first arrived, not by the retry's arrival, so the
// retry of an old request does not undo a newer change made meanwhile.
func TestAsyncRetryOfADirectPayloadKeepsItsFirstArrival(t *testing.T) {
	const x = "203.0.113.10"
	e := newEnv()
	e.do(t, `{"id":"u1","email":"a@example.com","requestedAt":"2026-11-25T08:00:00Z","allowedIps":["203.0.113.11"]}`)
	add := []byte(`{"action":"add","id":"u1","allowedIps":["` + x + `"]}`)
	first := WithRequestID(context.Background(), "3f1a6c2e-0b7d-4c1e-9d7a-5e2f8b9c0a11")

	// The first attempt stores the change but fails before the portal
	// (its version bump is refused): an error, so Lambda retries it.
	e.st.BumpErrs = 1
	if _, err := e.s.Handle(first, add); err == nil {
		t.Fatal("the first attempt did not fail")
	}
	// A minute later an administrator's request removes the address.
	e.now = t0.Add(time.Minute)
	e.do(t, `{"action":"remove","id":"u1","allowedIps":["`+x+`"]}`)
	// Lambda's retry of the add, a minute after that: same request id.
	e.now = t0.Add(2 * time.Minute)
	res, err := e.s.Handle(first, add)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(ips(e.p.list), x) {
		t.Errorf("portal = %s; the retry of the older add gave back %s, which a newer request removed", ips(e.p.list), x)
	}
	if w := strings.Join(res.Warnings, " "); !strings.Contains(w, x) || !strings.Contains(w, fmtRequestTime(t0)) {
		t.Errorf("warnings %q; want the entry kept and the retry dated by its first arrival (%s)", w, fmtRequestTime(t0))
	}
	// Another invocation (a new request id) of the same payload is a new
	// request, dated by its own arrival.
	e.now = t0.Add(3 * time.Minute)
	if _, err := e.s.Handle(WithRequestID(context.Background(), "another"), add); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(ips(e.p.list), x) {
		t.Errorf("portal = %s; a new request to add %s was not applied", ips(e.p.list), x)
	}
}

// A request older than the user's last offboarding is not applied, also
// when the user was onboarded again since. Whether to look the offboarding
// up is decided between request times (the newest request time the record
// holds), never against the record's creation, a processing time stored to
// the second: an offboarding dated ahead (allowed up to 5 minutes) is newer
// than the record's creation, and a replay dated between the two was
// applied.
func TestARequestOlderThanTheOffboardingIsNotAppliedAfterTheUserCameBack(t *testing.T) {
	e := newEnv()
	at := func(d time.Duration) string { return t0.Add(d).Format(time.RFC3339Nano) }
	e.do(t, `{"id":"u1","email":"a@example.com","requestedAt":"`+at(-time.Hour)+`","allowedIps":["203.0.113.11"]}`)
	e.do(t, `{"action":"offboard","id":"u1","requestedAt":"`+at(4*time.Minute)+`"}`)
	e.do(t, `{"id":"u1","email":"a@example.com","requestedAt":"`+at(5*time.Minute)+`","allowedIps":["203.0.113.12"]}`)
	res := e.do(t, `{"action":"add","id":"u1","requestedAt":"`+at(2*time.Minute)+`","allowedIps":["203.0.113.10"]}`)
	if strings.Contains(ips(e.p.list), "203.0.113.10") {
		t.Errorf("portal = %s; a request older than the offboarding was applied after the user came back", ips(e.p.list))
	}
	if w := strings.Join(res.Warnings, " "); !strings.Contains(w, "older than the offboarding") || !strings.Contains(w, fmtRequestTime(t0.Add(4*time.Minute))) {
		t.Errorf("warnings %q; want the offboarding's time named", w)
	}
}
