package devportal

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"ipguard/internal/ipguard"
)

func TestControlEndpoints(t *testing.T) {
	p, srv := startPortal(t, Options{})

	// Events.
	a := call(t, srv, "POST", "/_dev/events", "", `[
		{"date":"2026-05-04T09:15:09Z","userId":"`+userU+`","user":"Jane Roe","login":"jane@example.com","actionId":1010,"ip":"2001:db8::25","country":"Germany"},
		{"id":77,"date":"2026-05-04T12:16:09+03:00","actionId":1013,"ip":"198.51.100.7"}]`)
	var ids struct{ IDs []int64 }
	if err := json.Unmarshal(a.body, &ids); a.status != 200 || err != nil || !reflect.DeepEqual(ids.IDs, []int64{1, 77}) {
		t.Fatalf("POST /_dev/events: %d %s, want ids [1 77]", a.status, a.body)
	}
	if got := eventIDs(t, srv, "/api/2.0/security/audit/login/last"); !reflect.DeepEqual(got, []int64{77, 1}) {
		t.Errorf("events = %v, want [77 1]", got)
	}

	// Restrictions.
	if a := call(t, srv, "PUT", "/_dev/restrictions", "", `{"ipRestrictions":[{"ip":"10.0.0.0/24","forAdmin":true}],"enable":true}`); a.status != 204 {
		t.Fatalf("PUT /_dev/restrictions: %d %s", a.status, a.body)
	}
	if list, enable := p.Restrictions(); !reflect.DeepEqual(list, []ipguard.Restriction{{IP: "10.0.0.0/24", ForAdmin: true}}) || !enable {
		t.Errorf("stored %v %v", list, enable)
	}
	a = call(t, srv, "GET", "/_dev/restrictions", "", "")
	if string(a.body) != `{"ipRestrictions":[{"ip":"10.0.0.0/24","forAdmin":true}],"enable":true}` {
		t.Errorf("GET /_dev/restrictions = %s", a.body)
	}

	// Faults.
	if a := call(t, srv, "POST", "/_dev/faults", "", `{"status":503,"times":2,"retryAfter":"1","path":"/security"}`); a.status != 204 {
		t.Fatalf("POST /_dev/faults: %d %s", a.status, a.body)
	}
	if a := call(t, srv, "GET", "/api/2.0/security/audit/login/last", testAdminKey, ""); a.status != 503 || a.header.Get("Retry-After") != "1" {
		t.Errorf("after fault injection: %d %v", a.status, a.header)
	}
	call(t, srv, "POST", "/_dev/faults", "", `{"delay":1}`)
	if a := call(t, srv, "DELETE", "/_dev/faults", "", ""); a.status != 204 {
		t.Fatalf("DELETE /_dev/faults: %d", a.status)
	}
	p.mu.Lock()
	n := len(p.faults)
	p.mu.Unlock()
	if n != 0 {
		t.Errorf("%d faults left after DELETE", n)
	}

	// Fallback and time zone.
	if a := call(t, srv, "PUT", "/_dev/fallback", "", `{"on":true}`); a.status != 204 {
		t.Fatalf("PUT /_dev/fallback: %d", a.status)
	}
	if a := call(t, srv, "PUT", "/_dev/timezone", "", `{"offsetMinutes":180}`); a.status != 204 {
		t.Fatalf("PUT /_dev/timezone: %d", a.status)
	}
	p.mu.Lock()
	fallback, tz := p.fallback, p.tz
	p.mu.Unlock()
	if !fallback || tz != 3*time.Hour {
		t.Errorf("fallback %v tz %v, want true 3h", fallback, tz)
	}
	if a := call(t, srv, "PUT", "/_dev/timezone", "", `{"offsetMinutes":2000}`); a.status != 400 {
		t.Errorf("out-of-range offset: %d, want 400", a.status)
	}

	// Requests.
	a = call(t, srv, "GET", "/_dev/requests", "", "")
	var reqs []Request
	if err := json.Unmarshal(a.body, &reqs); err != nil || len(reqs) != 2 || reqs[0].Path != "/api/2.0/security/audit/login/last" || reqs[1].Status != 503 {
		t.Errorf("GET /_dev/requests = %s", a.body)
	}
	call(t, srv, "DELETE", "/_dev/requests", "", "")
	if n := len(p.Requests()); n != 0 {
		t.Errorf("%d requests left after DELETE", n)
	}

	// Errors.
	for _, tc := range []struct{ method, path, body string }{
		{"POST", "/_dev/events", `{"not":"an array"}`},
		{"POST", "/_dev/faults", `{"status":"503"}`},
		{"PUT", "/_dev/fallback", `nope`},
	} {
		if a := call(t, srv, tc.method, tc.path, "", tc.body); a.status != 400 {
			t.Errorf("%s %s %s: %d, want 400", tc.method, tc.path, tc.body, a.status)
		}
	}
	if a := call(t, srv, "GET", "/_dev/nothing", "", ""); a.status != 404 {
		t.Errorf("unknown control endpoint: %d, want 404", a.status)
	}
}
