package devportal

import (
	"net/http"
	"testing"
)

var apiEndpoints = []struct{ method, path, body string }{
	{"GET", "/api/2.0/settings/iprestrictions", ""},
	{"GET", "/api/2.0/settings/iprestrictions/settings", ""},
	{"PUT", "/api/2.0/settings/iprestrictions", `{"ipRestrictions":[]}`},
	{"PUT", "/api/2.0/settings/iprestrictions/settings", `{"ipRestrictions":[]}`},
	{"GET", "/api/2.0/security/audit/login/filter", ""},
	{"GET", "/api/2.0/security/audit/login/last", ""},
	{"GET", "/api/2.0/security/audit/events/filter", ""},
	{"GET", "/api/2.0/security/audit/events/last", ""},
}

// openEndpoints answer any authenticated key, admin or not.
var openEndpoints = []struct{ method, path, body string }{
	{"GET", "/api/2.0/keys/@self", ""},
	{"GET", "/api/2.0/people/@self", ""},
	{"GET", "/api/2.0/people/" + OwnerID, ""},
	{"PUT", "/api/2.0/security/activeconnections/logout/1", ""},
	{"PUT", "/api/2.0/security/activeconnections/logoutall/" + RegularUserID, ""},
	{"PUT", "/api/2.0/people/status/Terminated", `{"userIds":[]}`},
}

func TestAuthMissingOrUnknownKeyIs401WithEmptyBody(t *testing.T) {
	_, srv := startPortal(t, Options{})
	for _, ep := range append(apiEndpoints, openEndpoints...) {
		for _, key := range []string{"", "sk-unknown"} {
			a := call(t, srv, ep.method, ep.path, key, ep.body)
			if a.status != http.StatusUnauthorized || len(a.body) != 0 {
				t.Errorf("%s %s key %q: %d %q, want 401 with empty body", ep.method, ep.path, key, a.status, a.body)
			}
		}
	}
}

func TestAuthHeaderForms(t *testing.T) {
	_, srv := startPortal(t, Options{})
	for _, tc := range []struct {
		name   string
		header string
		want   int
	}{
		{"bearer admin key", "Bearer " + testAdminKey, 200},
		{"scheme is case-insensitive", "bearer " + testAdminKey, 200},
		{"raw key without scheme", testAdminKey, 401},
		{"basic scheme", "Basic " + testAdminKey, 401},
		{"bearer without key", "Bearer ", 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", srv.URL+"/api/2.0/settings/iprestrictions", nil)
			req.Header.Set("Authorization", tc.header)
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("status = %d, want %d", resp.StatusCode, tc.want)
			}
		})
	}
}

func TestAuthNonAdminKeyIs403AccessDeniedEnvelope(t *testing.T) {
	p, srv := startPortal(t, Options{})
	for _, ep := range apiEndpoints {
		e := mustError(t, call(t, srv, ep.method, ep.path, testUserKey, ep.body), http.StatusForbidden)
		if e.Message != "Access denied" || deref(e.Type) != "ASC.Common.Security.Authorizing.AuthorizingException" || e.Stack == nil {
			t.Errorf("%s %s: error = %+v, want Access denied / AuthorizingException with a stack", ep.method, ep.path, e)
		}
	}
	if list, enable := p.Restrictions(); len(list) != 0 || enable {
		t.Errorf("a denied PUT changed the restrictions: %v %v", list, enable)
	}
}

func TestAuthValidationComesBeforePermission(t *testing.T) {
	_, srv := startPortal(t, Options{})
	mustValidation(t, call(t, srv, "GET", "/api/2.0/security/audit/login/filter?count=500", testUserKey, ""))
	mustValidation(t, call(t, srv, "PUT", "/api/2.0/settings/iprestrictions", testUserKey, `{"enable":true}`))
}

func TestAuthAdminKeysListedAlsoAsUserStayAdmin(t *testing.T) {
	_, srv := startPortal(t, Options{AdminKeys: []string{"k"}, UserKeys: []string{"k"}})
	mustSuccess(t, call(t, srv, "GET", "/api/2.0/settings/iprestrictions", "k", ""))
}

func TestRouting(t *testing.T) {
	_, srv := startPortal(t, Options{})
	for _, tc := range []struct {
		name, method, path, key string
		want                    int
		envelope                bool
	}{
		{"unknown route is a 404 envelope", "GET", "/api/2.0/settings/nothing", testAdminKey, 404, true},
		{"unknown route without a key is still 404", "GET", "/api/2.0/files/@my", "", 404, true},
		{"outside /api/2.0", "GET", "/", testAdminKey, 404, true},
		{"wrong method on a known route", "DELETE", "/api/2.0/settings/iprestrictions", testAdminKey, 405, false},
		{"path case and trailing slash are ignored", "GET", "/API/2.0/Settings/IPRestrictions/", testAdminKey, 200, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := call(t, srv, tc.method, tc.path, tc.key, "")
			if tc.envelope {
				mustError(t, a, tc.want)
				return
			}
			if a.status != tc.want {
				t.Errorf("status = %d, want %d; body %s", a.status, tc.want, a.body)
			}
		})
	}
}
