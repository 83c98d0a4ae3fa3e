package devportal

import (
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
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

func TestControlUsersKeysSessionsAuditClock(t *testing.T) {
	p, srv := startPortal(t, Options{})
	const ada = "5f1e6a2b-0d3c-4e5f-8a9b-0000000000a1"

	// Users.
	if a := call(t, srv, "PUT", "/_dev/users", "", `[{"id":"`+ada+`","displayName":"Ada","email":"ada@example.com","status":1,"isAdmin":true}]`); a.status != 204 {
		t.Fatalf("PUT /_dev/users: %d %s", a.status, a.body)
	}
	if a := call(t, srv, "PUT", "/_dev/users", "", `[{"id":"`+ada+`","status":1,"isOwner":true}]`); a.status != 400 {
		t.Errorf("second owner: %d %s, want 400", a.status, a.body)
	}
	var users []User
	_ = json.Unmarshal(call(t, srv, "GET", "/_dev/users", "", "").body, &users)
	if len(users) != 3 || users[2].ID != ada || !users[2].IsAdmin {
		t.Errorf("GET /_dev/users = %+v", users)
	}

	// Keys: a new key by Ada that expires, then its expiry cleared.
	if a := call(t, srv, "PUT", "/_dev/keys", "", `{"key":"sk-ada-0001","name":"ada's","createBy":"`+ada+`","expiresAt":"2030-01-01T00:00:00Z","permissions":["*:read"]}`); a.status != 204 {
		t.Fatalf("PUT /_dev/keys: %d %s", a.status, a.body)
	}
	k, _ := p.Key("sk-ada-0001")
	if k.CreateBy != ada || k.Name != "ada's" || k.KeyPostfix != "0001" || !k.IsActive || k.ExpiresAt == nil || len(k.Permissions) != 1 {
		t.Errorf("stored key %+v", k)
	}
	call(t, srv, "PUT", "/_dev/keys", "", `{"key":"sk-ada-0001","expiresAt":null,"isActive":false}`)
	if k, _ = p.Key("sk-ada-0001"); k.ExpiresAt != nil || k.IsActive || k.Name != "ada's" {
		t.Errorf("patched key %+v", k)
	}
	if a := call(t, srv, "PUT", "/_dev/keys", "", `{"key":"sk-x","createBy":"5f1e6a2b-0d3c-4e5f-8a9b-999999999999"}`); a.status != 400 {
		t.Errorf("unknown creator: %d, want 400", a.status)
	}
	a := call(t, srv, "GET", "/_dev/keys", "", "")
	if a.status != 200 || strings.Contains(string(a.body), "sk-ada-0001") || strings.Contains(string(a.body), testAdminKey) {
		t.Errorf("GET /_dev/keys shows secrets or failed: %d %s", a.status, a.body)
	}

	// Endpoints switched off and on.
	call(t, srv, "PUT", "/_dev/endpoints", "", `{"keysSelf":false,"auditEvents":false}`)
	mustError(t, call(t, srv, "GET", "/api/2.0/keys/@self", testAdminKey, ""), 404)
	mustError(t, call(t, srv, "GET", "/api/2.0/security/audit/events/filter", testAdminKey, ""), 404)
	call(t, srv, "PUT", "/_dev/endpoints", "", `{"keysSelf":true}`)
	mustSuccess(t, call(t, srv, "GET", "/api/2.0/keys/@self", testAdminKey, ""))
	mustError(t, call(t, srv, "GET", "/api/2.0/security/audit/events/filter", testAdminKey, ""), 404)

	// Audit events.
	a = call(t, srv, "POST", "/_dev/auditevents", "", `[{"actionId":6094,"userId":"`+ada+`","ip":"192.0.2.44","date":"2026-05-04T09:00:00Z"}]`)
	if a.status != 200 || string(a.body) != `{"ids":[1]}` {
		t.Errorf("POST /_dev/auditevents: %d %s", a.status, a.body)
	}
	var evs []AuditEvent
	_ = json.Unmarshal(call(t, srv, "GET", "/_dev/auditevents", "", "").body, &evs)
	if len(evs) != 1 || evs[0].User != "Ada" || evs[0].IP != "192.0.2.44" {
		t.Errorf("GET /_dev/auditevents = %+v", evs)
	}

	// Sessions and logouts.
	ids := p.AddLoginEvents(LoginEvent{UserID: ada, ActionID: 1000})
	id := strconv.FormatInt(ids[0], 10)
	call(t, srv, "PUT", "/api/2.0/security/activeconnections/logout/"+id, testAdminKey, "")
	a = call(t, srv, "GET", "/_dev/sessions/"+id, "", "")
	if string(a.body) != `{"eventId":`+id+`,"userId":"`+ada+`","active":false,"endedBy":"logout"}` {
		t.Errorf("GET /_dev/sessions/%s = %d %s", id, a.status, a.body)
	}
	if a := call(t, srv, "GET", "/_dev/sessions/999", "", ""); a.status != 404 {
		t.Errorf("unknown session: %d", a.status)
	}
	if a := call(t, srv, "GET", "/_dev/sessions", "", ""); !strings.Contains(string(a.body), `"endedBy":"logout"`) {
		t.Errorf("GET /_dev/sessions = %s", a.body)
	}
	a = call(t, srv, "GET", "/_dev/logouts", "", "")
	if string(a.body) != `[{"route":"logout","target":"`+id+`","callerId":"`+OwnerID+`","status":200,"result":true}]` {
		t.Errorf("GET /_dev/logouts = %s", a.body)
	}
	call(t, srv, "DELETE", "/_dev/logouts", "", "")
	if a := call(t, srv, "GET", "/_dev/logouts", "", ""); string(a.body) != `[]` {
		t.Errorf("after DELETE: %s", a.body)
	}

	// Clock.
	if a := call(t, srv, "PUT", "/_dev/clock", "", `{"skewSeconds":-3600}`); a.status != 204 {
		t.Fatalf("PUT /_dev/clock: %d", a.status)
	}
	p.mu.Lock()
	skew := p.skew
	p.mu.Unlock()
	if skew != -time.Hour {
		t.Errorf("skew = %v, want -1h", skew)
	}
}

// The audit trail's lag (opt-in): an event of action 2000 and up shows only
// that long after its date by the portal's clock, as the real portal's
// batched writes (an allowlist save is 6094); a lower action shows at once.
func TestAuditLagHidesEventsUntilWritten(t *testing.T) {
	p, srv := startPortal(t, Options{})
	now := time.Now().UTC().Truncate(time.Second)
	p.AddAuditEvents(AuditEvent{ID: 1, Date: now, UserID: OwnerID, ActionID: 6094}, AuditEvent{ID: 2, Date: now, UserID: OwnerID, ActionID: 1000})
	if a := call(t, srv, "PUT", "/_dev/auditlag", "", `{"seconds":-1}`); a.status != 400 {
		t.Errorf("PUT /_dev/auditlag with a negative lag: %d, want 400", a.status)
	}
	if a := call(t, srv, "PUT", "/_dev/auditlag", "", `{"seconds":60}`); a.status != 204 {
		t.Fatalf("PUT /_dev/auditlag: %d", a.status)
	}
	shown := func() []int64 {
		var ids []int64
		for _, ev := range auditPage(t, call(t, srv, "GET", "/api/2.0/security/audit/events/filter", testAdminKey, "")) {
			ids = append(ids, ev.ID)
		}
		return ids
	}
	if got := shown(); !reflect.DeepEqual(got, []int64{2}) {
		t.Errorf("events shown within the lag = %v; want only the one below action 2000", got)
	}
	p.SetClockSkew(61 * time.Second)
	if got := shown(); len(got) != 2 {
		t.Errorf("events shown once the lag passed = %v; want both", got)
	}
	if got := len(p.AuditEvents()); got != 2 {
		t.Errorf("stored events = %d; the lag hides nothing from the control API", got)
	}
}
