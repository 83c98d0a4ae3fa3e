package devportal

import (
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"
)

const (
	adminUserID = "5f1e6a2b-0d3c-4e5f-8a9b-0000000000a1"
	testAdmin2  = "sk-0000000000000000000000000000000000000000000000000000000000000c33"
)

func TestKeySelfWireShape(t *testing.T) {
	p, srv := startPortal(t, Options{})
	exp := time.Date(2027, 1, 2, 3, 4, 5, 0, time.UTC)
	k, _ := p.Key(testAdminKey)
	k.Name, k.ExpiresAt, k.Permissions = "ipguard", &exp, []string{"*:read"}
	if err := p.PutKey(k); err != nil {
		t.Fatal(err)
	}
	p.SetTimeZone(3 * time.Hour)
	s := mustSuccess(t, call(t, srv, "GET", "/api/2.0/keys/@self", testAdminKey, ""))
	var got map[string]any
	if err := json.Unmarshal(s.Response, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"id": k.ID, "name": "ipguard", "key": "sk-***0a11", "keyPostfix": "0a11",
		"permissions": []any{"*:read"}, "createBy": map[string]any{"id": OwnerID, "displayName": "Portal Owner"},
		"expiresAt": "2027-01-02T06:04:05.0000000+03:00", "isActive": true,
	}
	for f, w := range want {
		if !reflect.DeepEqual(got[f], w) {
			t.Errorf("%s = %#v, want %#v", f, got[f], w)
		}
	}
	for _, f := range []string{"createOn", "lastUsed"} {
		if _, err := time.Parse(time.RFC3339Nano, got[f].(string)); err != nil {
			t.Errorf("%s = %v, not an ApiDateTime", f, got[f])
		}
	}
	if strings.Contains(string(s.Response), testAdminKey) {
		t.Errorf("keys/@self shows the whole key: %s", s.Response)
	}

	// A key that never expires has no expiresAt at all.
	k.ExpiresAt = nil
	_ = p.PutKey(k)
	s = mustSuccess(t, call(t, srv, "GET", "/api/2.0/keys/@self", testAdminKey, ""))
	if strings.Contains(string(s.Response), "expiresAt") {
		t.Errorf("never-expiring key: %s", s.Response)
	}
}

func TestKeyValidity(t *testing.T) {
	past, future := time.Now().Add(-time.Second), time.Now().Add(time.Hour)
	tests := []struct {
		name   string
		modify func(*APIKey)
		skew   time.Duration
		want   int
	}{
		{"active, never expires", func(*APIKey) {}, 0, 200},
		{"expires in an hour", func(k *APIKey) { k.ExpiresAt = &future }, 0, 200},
		{"expired", func(k *APIKey) { k.ExpiresAt = &past }, 0, 401},
		{"expired on the portal's clock, which is 2h ahead", func(k *APIKey) { k.ExpiresAt = &future }, 2 * time.Hour, 401},
		{"deactivated", func(k *APIKey) { k.IsActive = false }, 0, 401},
		{"creator terminated", func(k *APIKey) { k.CreateBy = "5f1e6a2b-0d3c-4e5f-8a9b-0000000000c1" }, 0, 401},
		{"creator deleted", func(k *APIKey) { k.CreateBy = "5f1e6a2b-0d3c-4e5f-8a9b-0000000000d1" }, 0, 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, srv := startPortal(t, Options{})
			if err := p.PutUsers(
				User{ID: "5f1e6a2b-0d3c-4e5f-8a9b-0000000000c1", Status: StatusTerminated},
				User{ID: "5f1e6a2b-0d3c-4e5f-8a9b-0000000000d1", Status: StatusActive, Deleted: true}); err != nil {
				t.Fatal(err)
			}
			k, _ := p.Key(testAdminKey)
			tt.modify(&k)
			if err := p.PutKey(k); err != nil {
				t.Fatal(err)
			}
			p.SetClockSkew(tt.skew)
			for _, ep := range []string{"/api/2.0/keys/@self", "/api/2.0/settings/iprestrictions", "/api/2.0/people/@self"} {
				a := call(t, srv, "GET", ep, testAdminKey, "")
				if a.status != tt.want || tt.want == 401 && len(a.body) != 0 {
					t.Errorf("GET %s: %d %s, want %d", ep, a.status, a.body, tt.want)
				}
			}
		})
	}
}

func TestKeyScopes(t *testing.T) {
	tests := []struct {
		perms        []string
		method, path string
		body         string
		want         int
	}{
		{nil, "PUT", "/api/2.0/settings/iprestrictions", `{"ipRestrictions":[]}`, 200},
		{[]string{"*"}, "PUT", "/api/2.0/settings/iprestrictions", `{"ipRestrictions":[]}`, 200},
		{[]string{"*:write"}, "PUT", "/api/2.0/settings/iprestrictions", `{"ipRestrictions":[]}`, 200},
		{[]string{"*:read"}, "GET", "/api/2.0/security/audit/login/filter", "", 200},
		{[]string{"*:read"}, "PUT", "/api/2.0/settings/iprestrictions", `{"ipRestrictions":[]}`, 403},
		{[]string{"files:read"}, "GET", "/api/2.0/settings/iprestrictions", "", 403},
		{[]string{"files:read"}, "GET", "/api/2.0/keys/@self", "", 200},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.perms, ",")+" "+tt.method+" "+tt.path, func(t *testing.T) {
			p, srv := startPortal(t, Options{})
			k, _ := p.Key(testAdminKey)
			k.Permissions = tt.perms
			_ = p.PutKey(k)
			a := call(t, srv, tt.method, tt.path, testAdminKey, tt.body)
			if a.status != tt.want || tt.want == 403 && len(a.body) != 0 {
				t.Errorf("%d %s, want %d (403 with an empty body)", a.status, a.body, tt.want)
			}
		})
	}
}

func TestDemotedCreatorGets403(t *testing.T) {
	p, srv := startPortal(t, Options{})
	if err := p.PutUsers(User{ID: adminUserID, DisplayName: "Ada", Status: StatusActive, IsAdmin: true}); err != nil {
		t.Fatal(err)
	}
	if err := p.PutKey(APIKey{Key: testAdmin2, CreateBy: adminUserID, IsActive: true}); err != nil {
		t.Fatal(err)
	}
	mustSuccess(t, call(t, srv, "GET", "/api/2.0/settings/iprestrictions", testAdmin2, ""))
	_ = p.PutUsers(User{ID: adminUserID, DisplayName: "Ada", Status: StatusActive})
	mustError(t, call(t, srv, "GET", "/api/2.0/settings/iprestrictions", testAdmin2, ""), http.StatusForbidden)
}

func TestPeople(t *testing.T) {
	p, srv := startPortal(t, Options{})
	_ = p.PutUsers(
		User{ID: adminUserID, DisplayName: "Ada", Email: "ada@example.com", Status: StatusActive, IsAdmin: true, IsSSO: true},
		User{ID: "5f1e6a2b-0d3c-4e5f-8a9b-0000000000d1", Status: StatusTerminated, Deleted: true},
		User{ID: "5f1e6a2b-0d3c-4e5f-8a9b-0000000000e1", Status: StatusActive, Type: TypeGuest},
		User{ID: "5f1e6a2b-0d3c-4e5f-8a9b-0000000000e2", Status: StatusActive, Type: TypeRoomAdmin})
	tests := []struct {
		path string
		key  string
		want map[string]any // nil: 404 envelope
	}{
		{"/api/2.0/people/" + strings.ToUpper(adminUserID), testAdminKey, map[string]any{"id": adminUserID, "displayName": "Ada",
			"email": "ada@example.com", "status": 1.0, "isAdmin": true, "isOwner": false, "isLDAP": false, "isSSO": true}},
		{"/api/2.0/people/" + OwnerID, testUserKey, map[string]any{"id": OwnerID, "isOwner": true, "isAdmin": false, "isVisitor": false, "isCollaborator": false}},
		// The user type as EmployeeFullDto reports it: one flag of isAdmin,
		// isRoomAdmin, isCollaborator ("User"), isVisitor (Guest).
		{"/api/2.0/people/" + RegularUserID, testAdminKey, map[string]any{"isCollaborator": true, "isVisitor": false, "isRoomAdmin": false, "isAdmin": false}},
		{"/api/2.0/people/5f1e6a2b-0d3c-4e5f-8a9b-0000000000e1", testAdminKey, map[string]any{"isVisitor": true, "isCollaborator": false, "isRoomAdmin": false}},
		{"/api/2.0/people/5f1e6a2b-0d3c-4e5f-8a9b-0000000000e2", testAdminKey, map[string]any{"isRoomAdmin": true, "isVisitor": false, "isCollaborator": false}},
		{"/api/2.0/people/@self", testUserKey, map[string]any{"id": RegularUserID, "status": 1.0}},
		{"/api/2.0/people/@self", testAdminKey, map[string]any{"id": OwnerID}},
		{"/api/2.0/people/5f1e6a2b-0d3c-4e5f-8a9b-0000000000d1", testAdminKey, nil},
		{"/api/2.0/people/5f1e6a2b-0d3c-4e5f-8a9b-999999999999", testAdminKey, nil},
		{"/api/2.0/people/nobody", testAdminKey, nil},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			a := call(t, srv, "GET", tt.path, tt.key, "")
			if tt.want == nil {
				mustError(t, a, http.StatusNotFound)
				return
			}
			var got map[string]any
			_ = json.Unmarshal(mustSuccess(t, a).Response, &got)
			for f, w := range tt.want {
				if !reflect.DeepEqual(got[f], w) {
					t.Errorf("%s = %#v, want %#v", f, got[f], w)
				}
			}
		})
	}
}

func TestPutUsersKeepsOneOwner(t *testing.T) {
	p := New(Options{})
	for _, tc := range []struct {
		name  string
		users []User
	}{
		{"second owner", []User{{ID: adminUserID, Status: StatusActive, IsOwner: true}}},
		{"owner deleted", []User{{ID: OwnerID, Status: StatusActive, IsOwner: true, Deleted: true}}},
		{"bad id", []User{{ID: "x", Status: StatusActive}}},
		{"bad status", []User{{ID: adminUserID, Status: 3}}},
	} {
		if err := p.PutUsers(tc.users...); err == nil {
			t.Errorf("%s: PutUsers accepted it", tc.name)
		}
	}
	if len(p.Users()) != 2 {
		t.Errorf("a refused PutUsers changed the users: %+v", p.Users())
	}
	// Handing over ownership in one call is fine.
	if err := p.PutUsers(User{ID: OwnerID, Status: StatusActive, IsAdmin: true},
		User{ID: adminUserID, Status: StatusActive, IsOwner: true, IsAdmin: true}); err != nil {
		t.Fatal(err)
	}
	if u, _ := p.User(adminUserID); !u.IsOwner || u.IsAdmin {
		t.Errorf("new owner = %+v, want owner and not admin", u)
	}
}

func TestPeopleStatus(t *testing.T) {
	const other = "5f1e6a2b-0d3c-4e5f-8a9b-0000000000a2"
	const ldap = "5f1e6a2b-0d3c-4e5f-8a9b-0000000000e1"
	tests := []struct {
		name, key, route, body string
		want                   int
		wantStatus             map[string]int
	}{
		{"owner terminates an admin", testAdminKey, "Terminated", `{"userIds":["` + adminUserID + `"]}`, 200, map[string]int{adminUserID: 2}},
		{"admin terminates a user", testAdmin2, "terminated", `{"userIds":["` + RegularUserID + `"]}`, 200, map[string]int{RegularUserID: 2}},
		{"numeric route value", testAdmin2, "2", `{"userIds":["` + RegularUserID + `"]}`, 200, map[string]int{RegularUserID: 2}},
		{"admin terminates another admin", testAdmin2, "Terminated", `{"userIds":["` + other + `"]}`, 403, map[string]int{other: 1}},
		{"admin terminates itself", testAdmin2, "Terminated", `{"userIds":["` + adminUserID + `"]}`, 403, map[string]int{adminUserID: 1}},
		{"owner terminates itself", testAdminKey, "Terminated", `{"userIds":["` + OwnerID + `"]}`, 403, map[string]int{OwnerID: 1}},
		{"admin terminates the owner", testAdmin2, "Terminated", `{"userIds":["` + OwnerID + `"]}`, 403, map[string]int{OwnerID: 1}},
		{"LDAP user", testAdminKey, "Terminated", `{"userIds":["` + ldap + `"]}`, 403, map[string]int{ldap: 1}},
		{"mixed: all refused", testAdminKey, "Terminated", `{"userIds":["` + RegularUserID + `","` + OwnerID + `"]}`, 403, map[string]int{RegularUserID: 1}},
		{"regular user", testUserKey, "Terminated", `{"userIds":["` + other + `"]}`, 403, map[string]int{other: 1}},
		{"unknown status", testAdminKey, "Holiday", `{"userIds":["` + other + `"]}`, 400, map[string]int{other: 1}},
		{"body not JSON", testAdminKey, "Terminated", `nope`, 400, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, srv := startPortal(t, Options{})
			_ = p.PutUsers(User{ID: adminUserID, DisplayName: "Ada", Status: StatusActive, IsAdmin: true},
				User{ID: other, Status: StatusActive, IsAdmin: true}, User{ID: ldap, Status: StatusActive, IsLDAP: true})
			_ = p.PutKey(APIKey{Key: testAdmin2, CreateBy: adminUserID, IsActive: true})
			a := call(t, srv, "PUT", "/api/2.0/people/status/"+tt.route, tt.key, tt.body)
			switch tt.want {
			case 200:
				var got []map[string]any
				_ = json.Unmarshal(mustSuccess(t, a).Response, &got)
				if len(got) != 1 || got[0]["status"] != 2.0 {
					t.Errorf("response = %v, want one terminated user", got)
				}
			case 403:
				if e := mustError(t, a, 403); e.Message != "Access denied" {
					t.Errorf("message = %q", e.Message)
				}
			case 400:
				mustValidation(t, a)
			}
			for id, st := range tt.wantStatus {
				if u, _ := p.User(id); u.Status != st {
					t.Errorf("%s status = %d, want %d", id, u.Status, st)
				}
			}
		})
	}
}
