package devportal

import (
	"net/http"
	"strconv"
	"testing"
	"time"
)

func TestLogout(t *testing.T) {
	tests := []struct {
		name   string
		key    string
		event  int // index of the events below; -1 an unknown id
		before string
		want   string // "true", "false" or "403"
	}{
		{"admin ends an active session", testAdminKey, 0, "", "true"},
		{"second call: already ended", testAdminKey, 0, "logout", "false"},
		{"failed login: no session", testAdminKey, 2, "", "false"},
		{"unknown id", testAdminKey, -1, "", "false"},
		{"user ends own session", testUserKey, 1, "", "true"},
		{"user ends another's session", testUserKey, 0, "", "403"},
		{"user asks for an unknown id", testUserKey, -1, "", "403"},
		{"session ended by its user's termination", testAdminKey, 1, "terminate", "false"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, srv := startPortal(t, Options{})
			ids := p.AddLoginEvents(
				LoginEvent{UserID: OwnerID, ActionID: 1029},
				LoginEvent{UserID: RegularUserID, ActionID: 1010},
				LoginEvent{UserID: OwnerID, ActionID: 1013})
			id := int64(4242)
			if tt.event >= 0 {
				id = ids[tt.event]
			}
			path := "/api/2.0/security/activeconnections/logout/" + strconv.FormatInt(id, 10)
			switch tt.before {
			case "logout":
				call(t, srv, "PUT", path, tt.key, "")
			case "terminate":
				call(t, srv, "PUT", "/api/2.0/people/status/Terminated", testAdminKey, `{"userIds":["`+RegularUserID+`"]}`)
			}
			a := call(t, srv, "PUT", path, tt.key, "")
			if tt.want == "403" {
				mustError(t, a, http.StatusForbidden)
				if s, ok := p.Session(id); ok && !s.Active {
					t.Errorf("refused logout ended the session")
				}
				return
			}
			if s := mustSuccess(t, a); string(s.Response) != tt.want || s.Count != 1 {
				t.Errorf("response = %s (count %d), want %s", s.Response, s.Count, tt.want)
			}
			if s, ok := p.Session(id); ok && s.Active {
				t.Errorf("session %d still active", id)
			}
			calls := p.Logouts()
			if last := calls[len(calls)-1]; last.Route != "logout" || last.Target != strconv.FormatInt(id, 10) || last.Result == nil {
				t.Errorf("last logout call = %+v", last)
			}
		})
	}
}

func TestLogoutAll(t *testing.T) {
	p, srv := startPortal(t, Options{})
	ids := p.AddLoginEvents(
		LoginEvent{UserID: RegularUserID, ActionID: 1000},
		LoginEvent{UserID: RegularUserID, ActionID: 1029},
		LoginEvent{UserID: OwnerID, ActionID: 1000})

	// A regular user may not end the owner's sessions.
	mustError(t, call(t, srv, "PUT", "/api/2.0/security/activeconnections/logoutall/"+OwnerID, testUserKey, ""), http.StatusForbidden)

	s := mustSuccess(t, call(t, srv, "PUT", "/api/2.0/security/activeconnections/logoutall/"+RegularUserID, testAdminKey, ""))
	if s.Response != nil || s.Count != 0 {
		t.Errorf("logoutall answered %s count %d, want no response and count 0", s.Response, s.Count)
	}
	for i, want := range []bool{false, false, true} {
		if got, _ := p.Session(ids[i]); got.Active != want || !want && got.EndedBy != "logoutall" {
			t.Errorf("session %d = %+v, want active %v", ids[i], got, want)
		}
	}

	// On the caller's own user: its sessions end, and a fresh successful
	// login from the caller's address starts a new one.
	req, _ := http.NewRequest("PUT", srv.URL+"/api/2.0/security/activeconnections/logoutall/"+OwnerID, nil)
	req.Header.Set("Authorization", "Bearer "+testAdminKey)
	req.Header.Set("X-Forwarded-For", "198.51.100.9")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got, _ := p.Session(ids[2]); got.Active {
		t.Errorf("owner's old session still active")
	}
	sessions := p.Sessions()
	last := sessions[len(sessions)-1]
	if last.UserID != OwnerID || !last.Active || last.EventID <= ids[2] {
		t.Errorf("newest session = %+v, want a fresh active one of the owner", last)
	}
	p.mu.Lock()
	ev, _ := p.eventLocked(last.EventID)
	p.mu.Unlock()
	if ev.ActionID != 1000 || ev.IP != "198.51.100.9" {
		t.Errorf("fresh login event = %+v, want 1000 from 198.51.100.9", ev)
	}
	if n := len(p.Logouts()); n != 3 {
		t.Errorf("%d logout calls recorded, want 3", n)
	}
}

func TestDateHeaderFollowsTheSkew(t *testing.T) {
	p, srv := startPortal(t, Options{})
	for _, skew := range []time.Duration{0, time.Hour, -45 * time.Minute} {
		p.SetClockSkew(skew)
		for _, path := range []string{"/api/2.0/keys/@self", "/api/2.0/nothing", "/_dev/requests"} {
			a := call(t, srv, "GET", path, testAdminKey, "")
			d, err := http.ParseTime(a.header.Get("Date"))
			if err != nil {
				t.Fatalf("%s: Date %q: %v", path, a.header.Get("Date"), err)
			}
			if off := time.Until(d); off < skew-2*time.Second || off > skew+2*time.Second {
				t.Errorf("skew %v, %s: Date is %v off", skew, path, off)
			}
		}
	}
}
