package devportal

import (
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"
)

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
