package devportal

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"
)

const (
	userU = "6b2f7a1e-3c44-4a5b-9e0f-1d2c3b4a5f60"
	userV = "0a0b0c0d-0000-4000-8000-000000000001"
)

// nineEvents stores e1..e9 one minute apart (e9 newest); userU owns e2, e6
// and e8, userV the rest; odd events are 1010, even ones 1013.
func nineEvents(p *Portal) {
	base := at("2026-05-04T09:00:00Z")
	for i := 1; i <= 9; i++ {
		u, action := userV, 1010
		if i == 2 || i == 6 || i == 8 {
			u = userU
		}
		if i%2 == 0 {
			action = 1013
		}
		p.AddLoginEvents(LoginEvent{ID: int64(i), Date: base.Add(time.Duration(i) * time.Minute), UserID: u, ActionID: action, IP: "198.51.100.7"})
	}
}

func eventIDs(t *testing.T, srv *httptest.Server, pathAndQuery string) []int64 {
	t.Helper()
	s := mustSuccess(t, call(t, srv, "GET", pathAndQuery, testAdminKey, ""))
	var evs []struct {
		ID int64 `json:"id"`
	}
	if err := json.Unmarshal(s.Response, &evs); err != nil {
		t.Fatalf("decode events %s: %v", s.Response, err)
	}
	if s.Response == nil || string(s.Response) == "null" {
		t.Fatalf("response missing, want an array: %s", s.Response)
	}
	if s.Count != len(evs) {
		t.Errorf("count = %d, want %d", s.Count, len(evs))
	}
	ids := make([]int64, len(evs))
	for i, e := range evs {
		ids[i] = e.ID
	}
	return ids
}

func TestLoginFilterPagesFirstThenFilters(t *testing.T) {
	p, srv := startPortal(t, Options{})
	nineEvents(p)
	for _, tc := range []struct {
		name  string
		query string
		want  []int64
	}{
		{"defaults: everything newest first", "", []int64{9, 8, 7, 6, 5, 4, 3, 2, 1}},
		{"first page", "count=3", []int64{9, 8, 7}},
		{"second page", "count=3&startIndex=3", []int64{6, 5, 4}},
		{"negative startIndex means no skip", "count=3&startIndex=-5", []int64{9, 8, 7}},
		{"past the end", "count=3&startIndex=20", []int64{}},
		{"userId is applied inside the window only", "startIndex=2&count=3&userId=" + userU, []int64{6}},
		{"userId over the whole list", "userId=" + userU, []int64{8, 6, 2}},
		{"userId in N form and upper case", "userId=6B2F7A1E3C444A5B9E0F1D2C3B4A5F60", []int64{8, 6, 2}},
		{"empty GUID means all users", "count=2&userId=00000000-0000-0000-0000-000000000000", []int64{9, 8}},
		{"action by number inside the window", "count=4&action=1013", []int64{8, 6}},
		{"action by name", "action=LoginSuccessViaApi&count=3", []int64{9, 7}},
		{"action by name ignores case", "action=loginfailviaapi&count=3", []int64{8}},
		{"action 0 means all", "action=0&count=2", []int64{9, 8}},
		{"from is inclusive and inside the window", "count=4&startIndex=4&from=2026-05-04T09:04:00Z", []int64{5, 4}},
		{"to is inclusive", "to=2026-05-04T09:03:00Z", []int64{3, 2, 1}},
		// A request bounded to one second does not page over that second's
		// rows: the window is cut first (the audit cannot count a second
		// larger than a page this way; docs/audit-progress.md).
		{"from and to of one second, the window above it", "count=3&from=2026-05-04T09:03:00Z&to=2026-05-04T09:03:00Z", []int64{}},
		{"from and to of one second, the window over it", "count=3&startIndex=6&from=2026-05-04T09:03:00Z&to=2026-05-04T09:03:00Z", []int64{3}},
		{"from with offset", "from=" + url.QueryEscape("2026-05-04T12:08:00+03:00"), []int64{9, 8}},
		{"from with milliseconds", "from=2026-05-04T09:08:00.000Z", []int64{9, 8}},
		{"from with 7 fraction digits", "from=2026-05-04T09:07:59.9999999Z", []int64{9, 8}},
		{"from with hyphenated time", "from=2026-05-04T09-08-00Z", []int64{9, 8}},
		{"parameter names ignore case", "Count=2&StartIndex=1", []int64{8, 7}},
		{"empty values count as absent", "count=&userId=&from=", []int64{9, 8, 7, 6, 5, 4, 3, 2, 1}},
		{"unknown action number matches nothing", "action=4242", []int64{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := eventIDs(t, srv, "/api/2.0/security/audit/login/filter?"+tc.query)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("ids = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestLoginFilterDefaultCountIs100(t *testing.T) {
	p, srv := startPortal(t, Options{})
	for i := 0; i < 150; i++ {
		p.AddLoginEvents(LoginEvent{Date: at("2026-05-04T09:00:00Z").Add(time.Duration(i) * time.Second), ActionID: 1010})
	}
	if n := len(eventIDs(t, srv, "/api/2.0/security/audit/login/filter")); n != 100 {
		t.Errorf("default page has %d events, want 100", n)
	}
	if ids := eventIDs(t, srv, "/api/2.0/security/audit/login/filter?startIndex=100&count=100"); len(ids) != 50 || ids[0] != 50 {
		t.Errorf("second page = %d events starting at %v, want 50 starting at id 50", len(ids), ids[:1])
	}
}

func TestLoginFilterRejects(t *testing.T) {
	_, srv := startPortal(t, Options{})
	for _, tc := range []struct {
		name, query, key string
	}{
		{"count 0", "count=0", "Count"},
		{"count 101", "count=101", "Count"},
		{"count not a number", "count=ten", "count"},
		{"startIndex not a number", "startIndex=1.5", "startIndex"},
		{"from without Z", "from=2026-05-04T09:00:00", "from"},
		{"to without Z", "to=2026-05-04T09:00:00.000", "to"},
		{"date only", "from=2026-05-04", "from"},
		{"unencoded plus becomes a space", "from=2026-05-04T12:00:00+03:00", "from"},
		{"two fraction digits", "from=2026-05-04T09:00:00.12Z", "from"},
		{"six fraction digits", "from=2026-05-04T09:00:00.123456Z", "from"},
		{"RFC 1123", "from=" + url.QueryEscape("Mon, 04 May 2026 09:00:00 GMT"), "from"},
		{"bad user id", "userId=jane", "userId"},
		{"unknown action name", "action=LoginSomehow", "action"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			errs := mustValidation(t, call(t, srv, "GET", "/api/2.0/security/audit/login/filter?"+tc.query, testAdminKey, ""))
			if len(errs[tc.key]) == 0 {
				t.Errorf("errors = %v, want an entry for %q", errs, tc.key)
			}
		})
	}
}

func TestLoginEventFields(t *testing.T) {
	p, srv := startPortal(t, Options{})
	for _, tc := range []struct {
		name string
		ev   LoginEvent
		want string
	}{
		{"all fields",
			LoginEvent{ID: 90211, Date: at("2026-05-04T09:15:09Z"), UserID: userU, User: "Jane Roe", Login: "jane@example.com",
				ActionID: 1010, IP: "198.51.100.7", Country: "Germany", City: "Berlin", Browser: "Firefox 126.0", Platform: "Linux", Page: "https://portal.example.com/login"},
			`{"id":90211,"date":"2026-05-04T09:15:09.0000000Z","user":"Jane Roe","userId":"` + userU + `","login":"jane@example.com","action":"Login Success via API","actionId":1010,"ip":"198.51.100.7","country":"Germany","city":"Berlin","browser":"Firefox 126.0","platform":"Linux","page":"https://portal.example.com/login"}`},
		{"IPv6 is cut at the first colon, empty fields omitted",
			LoginEvent{ID: 1, Date: at("2026-05-04T09:15:09Z"), UserID: userU, User: "Jane Roe", ActionID: 1000, IP: "2001:db8::25"},
			`{"id":1,"date":"2026-05-04T09:15:09.0000000Z","user":"Jane Roe","userId":"` + userU + `","action":"Login Success","actionId":1000,"ip":"2001"}`},
		{"IPv4 with a port loses the port",
			LoginEvent{ID: 2, Date: at("2026-05-04T09:15:09Z"), UserID: userU, User: "Jane Roe", ActionID: 1000, IP: "198.51.100.7:51234"},
			`{"id":2,"date":"2026-05-04T09:15:09.0000000Z","user":"Jane Roe","userId":"` + userU + `","action":"Login Success","actionId":1000,"ip":"198.51.100.7"}`},
		{"user falls back to login",
			LoginEvent{ID: 3, Date: at("2026-05-04T09:15:09Z"), UserID: guestUserID, Login: "who@example.com", ActionID: 1013},
			`{"id":3,"date":"2026-05-04T09:15:09.0000000Z","user":"who@example.com","userId":"` + guestUserID + `","login":"who@example.com","action":"Login Failed via API","actionId":1013}`},
		{"guest without login",
			LoginEvent{ID: 4, Date: at("2026-05-04T09:15:09Z"), UserID: guestUserID, ActionID: 1023},
			`{"id":4,"date":"2026-05-04T09:15:09.0000000Z","user":"Guest","userId":"` + guestUserID + `","action":"Login Failed. Brute Force","actionId":1023}`},
		{"no user id is the empty GUID, dates lose sub-seconds",
			LoginEvent{ID: 5, Date: at("2026-05-04T09:15:09Z").Add(700 * time.Millisecond), ActionID: 1006},
			`{"id":5,"date":"2026-05-04T09:15:09.0000000Z","user":"Unknown","userId":"` + emptyGUID + `","action":"Logout","actionId":1006}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p.mu.Lock()
			p.events = nil
			p.mu.Unlock()
			p.AddLoginEvents(tc.ev)
			s := mustSuccess(t, call(t, srv, "GET", "/api/2.0/security/audit/login/filter", testAdminKey, ""))
			if string(s.Response) != "["+tc.want+"]" {
				t.Errorf("response =\n%s\nwant\n[%s]", s.Response, tc.want)
			}
		})
	}
}

func TestLoginEventDatesUseThePortalTimeZone(t *testing.T) {
	p, srv := startPortal(t, Options{TZOffset: 3 * time.Hour})
	p.AddLoginEvents(LoginEvent{Date: at("2026-05-04T09:15:09Z"), ActionID: 1010})
	for _, tc := range []struct {
		offset time.Duration
		want   string
	}{
		{3 * time.Hour, "2026-05-04T12:15:09.0000000+03:00"}, // from Options
		{0, "2026-05-04T09:15:09.0000000Z"},
		{-(5*time.Hour + 30*time.Minute), "2026-05-04T03:45:09.0000000-05:30"},
		{14 * time.Hour, "2026-05-04T23:15:09.0000000+14:00"},
	} {
		t.Run(fmt.Sprint(tc.offset), func(t *testing.T) {
			if tc.offset != 3*time.Hour {
				p.SetTimeZone(tc.offset)
			}
			s := mustSuccess(t, call(t, srv, "GET", "/api/2.0/security/audit/login/last", testAdminKey, ""))
			var evs []struct {
				Date string `json:"date"`
			}
			_ = json.Unmarshal(s.Response, &evs)
			if len(evs) != 1 || evs[0].Date != tc.want {
				t.Errorf("dates = %+v, want %s", evs, tc.want)
			}
			if d, err := time.Parse(time.RFC3339Nano, evs[0].Date); err != nil || !d.Equal(at("2026-05-04T09:15:09Z")) {
				t.Errorf("%s parses to %v (%v), want the stored instant", evs[0].Date, d, err)
			}
		})
	}
}

func TestLoginLastAndPlanFallback(t *testing.T) {
	p, srv := startPortal(t, Options{})
	for i := 1; i <= 30; i++ {
		p.AddLoginEvents(LoginEvent{Date: at("2026-05-04T09:00:00Z").Add(time.Duration(i) * time.Minute), UserID: userV, ActionID: 1010})
	}
	newest20 := make([]int64, 20)
	for i := range newest20 {
		newest20[i] = int64(30 - i)
	}
	if got := eventIDs(t, srv, "/api/2.0/security/audit/login/last?count=5"); !reflect.DeepEqual(got, newest20) {
		t.Errorf("login/last = %v, want the 20 newest", got)
	}

	p.SetPlanFallback(true)
	for _, q := range []string{"", "startIndex=100&count=5", "userId=" + userU + "&action=1013&from=2030-01-01T00:00:00Z"} {
		if got := eventIDs(t, srv, "/api/2.0/security/audit/login/filter?"+q); !reflect.DeepEqual(got, newest20) {
			t.Errorf("fallback filter?%s = %v, want the 20 newest", q, got)
		}
	}
	mustValidation(t, call(t, srv, "GET", "/api/2.0/security/audit/login/filter?count=500", testAdminKey, ""))

	p.SetPlanFallback(false)
	if got := eventIDs(t, srv, "/api/2.0/security/audit/login/filter?count=5&startIndex=25"); !reflect.DeepEqual(got, []int64{5, 4, 3, 2, 1}) {
		t.Errorf("after fallback off = %v, want [5 4 3 2 1]", got)
	}
}

func TestAddLoginEventsAssignsIncreasingIDs(t *testing.T) {
	p := New(Options{})
	ids := p.AddLoginEvents(LoginEvent{}, LoginEvent{ID: 50}, LoginEvent{}, LoginEvent{ID: 10}, LoginEvent{})
	if want := []int64{1, 50, 51, 10, 52}; !reflect.DeepEqual(ids, want) {
		t.Errorf("ids = %v, want %v", ids, want)
	}
}

// With the tie switch, rows of one second come in a new order on each
// request, and a second cut by the page window swaps rows in and out of it;
// off, the order is stable.
func TestLoginFilterTieShuffle(t *testing.T) {
	p, srv := startPortal(t, Options{})
	sec := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	evs := make([]LoginEvent, 150)
	for i := range evs {
		evs[i] = LoginEvent{Date: sec, ActionID: 1010, UserID: guestUserID}
	}
	p.AddLoginEvents(evs...)
	page := func() string {
		return fmt.Sprint(eventIDs(t, srv, "/api/2.0/security/audit/login/filter?count=100"))
	}
	if a, b := page(), page(); a != b {
		t.Fatalf("stable order changed between requests")
	}
	if a := call(t, srv, "PUT", "/_dev/ties", "", `{"shuffle":true}`); a.status != http.StatusNoContent {
		t.Fatalf("PUT /_dev/ties: %d", a.status)
	}
	seen := map[string]bool{}
	for i := 0; i < 5; i++ {
		seen[page()] = true
	}
	if len(seen) < 2 {
		t.Errorf("the order never changed with the tie switch on")
	}
}

// The storm switch inserts rows before each of the next requests: the list
// shifts under a walker between two pages.
func TestLoginFilterStorm(t *testing.T) {
	p, srv := startPortal(t, Options{})
	p.AddLoginEvents(LoginEvent{Date: time.Now().Add(-time.Hour), ActionID: 1010, UserID: guestUserID})
	if a := call(t, srv, "PUT", "/_dev/storm", "", `{"rows":150,"requests":2}`); a.status != http.StatusNoContent {
		t.Fatalf("PUT /_dev/storm: %d", a.status)
	}
	for i, want := range []int{1, 151, 301} {
		p.mu.Lock()
		n := len(p.events)
		p.mu.Unlock()
		if n != want {
			t.Errorf("after request %d: %d rows, want %d", i, n, want)
		}
		eventIDs(t, srv, "/api/2.0/security/audit/login/filter?count=1")
	}
	p.mu.Lock()
	n := len(p.events)
	p.mu.Unlock()
	if n != 301 {
		t.Errorf("after the storm: %d rows, want 301", n)
	}
}

func auditPage(t *testing.T, a answer) []auditEventDto {
	t.Helper()
	var out []auditEventDto
	if err := json.Unmarshal(mustSuccess(t, a).Response, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestAllowlistPutWritesAuditEvent(t *testing.T) {
	p, srv := startPortal(t, Options{TZOffset: 3 * time.Hour})
	for _, tc := range []struct{ path, xff, wantIP string }{
		{"/api/2.0/settings/iprestrictions", "", "127.0.0.1"},
		{"/api/2.0/settings/iprestrictions/settings", "203.0.113.5", "203.0.113.5"},
		{"/api/2.0/settings/iprestrictions", "2001:db8::7", "2001"},
	} {
		req, _ := http.NewRequest("PUT", srv.URL+tc.path, strings.NewReader(`{"ipRestrictions":[{"ip":"203.0.113.10"}],"enable":true}`))
		req.Header.Set("Authorization", "Bearer "+testAdminKey)
		if tc.xff != "" {
			req.Header.Set("X-Forwarded-For", tc.xff)
		}
		resp, err := srv.Client().Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("PUT %s: %v %v", tc.path, resp, err)
		}
		resp.Body.Close()
		evs := auditPage(t, call(t, srv, "GET", "/api/2.0/security/audit/events/filter?action=6094&count=1", testAdminKey, ""))
		if len(evs) != 1 {
			t.Fatalf("%d events", len(evs))
		}
		ev := evs[0]
		if ev.ActionID != 6094 || ev.UserID != OwnerID || ev.User != "Portal Owner" || ev.IP != tc.wantIP ||
			ev.Action != "IP Restrictions Settings Updated" || ev.Page != tc.path || len(ev.Date) != len("2026-05-04T12:15:09.0000000+03:00") {
			t.Errorf("PUT %s (X-Forwarded-For %q): event %+v", tc.path, tc.xff, ev)
		}
	}
	// A refused PUT writes nothing.
	call(t, srv, "PUT", "/api/2.0/settings/iprestrictions", testUserKey, `{"ipRestrictions":[]}`)
	call(t, srv, "PUT", "/api/2.0/settings/iprestrictions", testAdminKey, `{"ipRestrictions":[],"enable":true}`)
	if n := len(p.AuditEvents()); n != 3 {
		t.Errorf("%d audit events, want 3", n)
	}
}

func TestAuditFilterBeforePaging(t *testing.T) {
	p, srv := startPortal(t, Options{})
	base := at("2026-05-04T09:00:00Z")
	// Newest first: e8 (6094) e7 (4020) e6 (6094) e5 (4020) ... e1 (4020).
	for i := 1; i <= 8; i++ {
		action := 4020
		if i%2 == 0 {
			action = 6094
		}
		p.AddAuditEvents(AuditEvent{ActionID: action, UserID: OwnerID, Date: base.Add(time.Duration(i) * time.Minute)})
	}
	ids := func(evs []auditEventDto) []int64 {
		out := []int64{}
		for _, e := range evs {
			out = append(out, e.ID)
		}
		return out
	}
	tests := []struct {
		query string
		want  []int64
	}{
		{"action=6094&count=2&startIndex=0", []int64{8, 6}},
		{"action=6094&count=2&startIndex=2", []int64{4, 2}},
		{"action=IPRestrictionsSettingsUpdated&count=100", []int64{8, 6, 4, 2}},
		{"action=6094&from=2026-05-04T09:05:00Z&count=100", []int64{8, 6}},
		{"count=3&startIndex=1", []int64{7, 6, 5}},
		{"action=6094&to=2026-05-04T09:04:00Z", []int64{4, 2}},
	}
	for _, tt := range tests {
		got := ids(auditPage(t, call(t, srv, "GET", "/api/2.0/security/audit/events/filter?"+tt.query, testAdminKey, "")))
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: ids %v, want %v", tt.query, got, tt.want)
		}
	}
	mustValidation(t, call(t, srv, "GET", "/api/2.0/security/audit/events/filter?count=101", testAdminKey, ""))
	mustValidation(t, call(t, srv, "GET", "/api/2.0/security/audit/events/filter?from=2026-05-04T09:00:00", testAdminKey, ""))
	mustError(t, call(t, srv, "GET", "/api/2.0/security/audit/events/filter", testUserKey, ""), http.StatusForbidden)

	// Plan fallback: the 20 newest of any kind, parameters ignored.
	for i := 0; i < 30; i++ {
		p.AddAuditEvents(AuditEvent{ActionID: 4020, Date: base.Add(time.Hour + time.Duration(i)*time.Second)})
	}
	p.SetPlanFallback(true)
	got := auditPage(t, call(t, srv, "GET", "/api/2.0/security/audit/events/filter?action=6094&startIndex=100", testAdminKey, ""))
	if len(got) != 20 || got[0].ActionID != 4020 {
		t.Errorf("fallback answered %d events, first %+v", len(got), got[0])
	}

	// Switched off: 404 like an unknown route, before authentication.
	p.SetAuditTrailAvailable(false)
	mustError(t, call(t, srv, "GET", "/api/2.0/security/audit/events/filter", "", ""), http.StatusNotFound)
	p.SetKeysSelfAvailable(false)
	mustError(t, call(t, srv, "GET", "/api/2.0/keys/@self", testAdminKey, ""), http.StatusNotFound)
}
