package devportal

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"ipguard/internal/ipguard"
)

var putPaths = []string{"/api/2.0/settings/iprestrictions", "/api/2.0/settings/iprestrictions/settings"}

func TestPutRejects(t *testing.T) {
	tooLong := "[0000:0000:0000:0000:0000:ffff:192.168.100.200]:65535" // parses, 53 chars
	for _, tc := range []struct {
		name string
		body string
		// want is "validation" (400 validation envelope) or "error <status> <message>".
		want string
	}{
		{"IPv4 CIDR", `{"ipRestrictions":[{"ip":"10.0.0.0/24"}],"enable":true}`, "error 400 IpRestrictions"},
		{"IPv6 CIDR", `{"ipRestrictions":[{"ip":"2001:db8::/32"}]}`, "error 400 IpRestrictions"},
		{"range", `{"ipRestrictions":[{"ip":"10.0.0.1-10.0.0.50"}]}`, "error 400 IpRestrictions"},
		{"empty ip", `{"ipRestrictions":[{"ip":""}],"enable":false}`, "error 400 IpRestrictions"},
		{"null ip", `{"ipRestrictions":[{"ip":null}]}`, "error 400 IpRestrictions"},
		{"host name", `{"ipRestrictions":[{"ip":"portal.example.com"}]}`, "error 400 IpRestrictions"},
		{"one bad among good", `{"ipRestrictions":[{"ip":"203.0.113.10"},{"ip":"203.0.113.300"}]}`, "error 400 IpRestrictions"},
		{"enable with empty list", `{"ipRestrictions":[],"enable":true}`, "error 400 " + msgAddAtLeastOne},
		{"enable with null list", `{"ipRestrictions":null,"enable":true}`, "error 400 " + msgAddAtLeastOne},
		{"empty list is checked before addresses", `{"IpRestrictions":[],"Enable":true}`, "error 400 " + msgAddAtLeastOne},
		{"null element", `{"ipRestrictions":[null]}`, "error 500 Object reference not set to an instance of an object."},
		{"ip longer than the column", `{"ipRestrictions":[{"ip":"` + tooLong + `"}]}`, "error 500 An error occurred while saving the entity changes. See the inner exception for details."},
		{"missing ipRestrictions key", `{"enable":false}`, "validation"},
		{"element without ip", `{"ipRestrictions":[{"forAdmin":true}]}`, "validation"},
		{"malformed JSON", `{"ipRestrictions":[`, "validation"},
		{"empty body", ``, "validation"},
		{"JSON null body", `null`, "validation"},
		{"array body", `[]`, "validation"},
		{"ip is a number", `{"ipRestrictions":[{"ip":10}]}`, "validation"},
		{"forAdmin is a string", `{"ipRestrictions":[{"ip":"10.0.0.1","forAdmin":"true"}]}`, "validation"},
		{"enable is a string", `{"ipRestrictions":[],"enable":"false"}`, "validation"},
		{"list is an object", `{"ipRestrictions":{"ip":"10.0.0.1"}}`, "validation"},
	} {
		for _, path := range putPaths {
			t.Run(tc.name+" "+path, func(t *testing.T) {
				p, srv := startPortal(t, Options{})
				before := []ipguard.Restriction{{IP: "198.51.100.1"}}
				p.SetRestrictions(before, true)

				a := call(t, srv, "PUT", path, testAdminKey, tc.body)
				if tc.want == "validation" {
					mustValidation(t, a)
				} else {
					var status int
					var msg string
					f := strings.SplitN(tc.want, " ", 3)
					status, msg = atoi(f[1]), f[2]
					e := mustError(t, a, status)
					if e.Message != msg {
						t.Errorf("message = %q, want %q", e.Message, msg)
					}
					if status == 400 && (deref(e.Type) != "System.ArgumentException" || e.HResult != hresultArgument) {
						t.Errorf("type/hresult = %s/%d, want System.ArgumentException/%d", deref(e.Type), e.HResult, hresultArgument)
					}
				}
				if list, enable := p.Restrictions(); !reflect.DeepEqual(list, before) || !enable {
					t.Errorf("rejected PUT changed the state to %v %v", list, enable)
				}
			})
		}
	}
}

func TestPutValidationNamesTheMissingProperty(t *testing.T) {
	_, srv := startPortal(t, Options{})
	errs := mustValidation(t, call(t, srv, "PUT", putPaths[0], testAdminKey, `{"enable":false}`))
	if !strings.Contains(strings.Join(errs["$"], " "), "'ipRestrictions'") {
		t.Errorf("errors = %v, want a $ entry naming ipRestrictions", errs)
	}
	errs = mustValidation(t, call(t, srv, "PUT", putPaths[0], testAdminKey, `{"ipRestrictions":[{"ip":"10.0.0.1"},{}]}`))
	if len(errs["$.ipRestrictions[1]"]) == 0 {
		t.Errorf("errors = %v, want an entry for $.ipRestrictions[1]", errs)
	}
}

func TestPutAccepts(t *testing.T) {
	for _, tc := range []struct {
		name       string
		body       string
		wantList   []ipguard.Restriction
		wantEnable bool
		wantEcho   string
	}{
		{"camelCase, explicit enable",
			`{"ipRestrictions":[{"ip":"203.0.113.10","forAdmin":false},{"ip":"2001:db8::25","forAdmin":true}],"enable":true}`,
			[]ipguard.Restriction{{IP: "203.0.113.10"}, {IP: "2001:db8::25", ForAdmin: true}}, true,
			`{"ipRestrictions":[{"ip":"203.0.113.10","forAdmin":false},{"ip":"2001:db8::25","forAdmin":true}],"enable":true}`},
		{"PascalCase keys as the web UI sends them",
			`{"IpRestrictions":[{"Ip":"203.0.113.10"}],"Enable":false}`,
			[]ipguard.Restriction{{IP: "203.0.113.10"}}, false,
			`{"ipRestrictions":[{"ip":"203.0.113.10","forAdmin":false}],"enable":false}`},
		{"omitted enable with a list means enabled, echo omits enable",
			`{"ipRestrictions":[{"ip":"203.0.113.10"}]}`,
			[]ipguard.Restriction{{IP: "203.0.113.10"}}, true,
			`{"ipRestrictions":[{"ip":"203.0.113.10","forAdmin":false}]}`},
		{"null enable counts as omitted",
			`{"ipRestrictions":[{"ip":"203.0.113.10"}],"enable":null}`,
			[]ipguard.Restriction{{IP: "203.0.113.10"}}, true,
			`{"ipRestrictions":[{"ip":"203.0.113.10","forAdmin":false}]}`},
		{"empty list clears and disables",
			`{"ipRestrictions":[]}`, []ipguard.Restriction{}, false, `{"ipRestrictions":[]}`},
		{"null list is coerced to empty in the echo",
			`{"ipRestrictions":null,"enable":false}`, []ipguard.Restriction{}, false, `{"ipRestrictions":[],"enable":false}`},
		{"duplicates are kept, unknown properties ignored",
			`{"ipRestrictions":[{"ip":"10.0.0.1","note":"x"},{"ip":"10.0.0.1"}],"extra":1}`,
			[]ipguard.Restriction{{IP: "10.0.0.1"}, {IP: "10.0.0.1"}}, true,
			`{"ipRestrictions":[{"ip":"10.0.0.1","forAdmin":false},{"ip":"10.0.0.1","forAdmin":false}]}`},
		{"legacy IPv4 shorthand and IPv6 with port or zone are stored verbatim",
			`{"ipRestrictions":[{"ip":"10.1"},{"ip":"[::1]:80"},{"ip":"fe80::1%2"},{"ip":"::ffff:203.0.113.10"}]}`,
			[]ipguard.Restriction{{IP: "10.1"}, {IP: "[::1]:80"}, {IP: "fe80::1%2"}, {IP: "::ffff:203.0.113.10"}}, true,
			`{"ipRestrictions":[{"ip":"10.1","forAdmin":false},{"ip":"[::1]:80","forAdmin":false},{"ip":"fe80::1%2","forAdmin":false},{"ip":"::ffff:203.0.113.10","forAdmin":false}]}`},
	} {
		for _, path := range putPaths {
			t.Run(tc.name+" "+path, func(t *testing.T) {
				p, srv := startPortal(t, Options{})
				p.SetRestrictions([]ipguard.Restriction{{IP: "198.51.100.1"}}, true)
				s := mustSuccess(t, call(t, srv, "PUT", path, testAdminKey, tc.body))
				if string(s.Response) != tc.wantEcho || s.Count != 1 {
					t.Errorf("echo = %s (count %d), want %s (count 1)", s.Response, s.Count, tc.wantEcho)
				}
				list, enable := p.Restrictions()
				if !reflect.DeepEqual(list, tc.wantList) || enable != tc.wantEnable {
					t.Errorf("stored %v %v, want %v %v", list, enable, tc.wantList, tc.wantEnable)
				}
			})
		}
	}
}

func TestPutAssignsNewIDsToEveryRow(t *testing.T) {
	_, srv := startPortal(t, Options{})
	body := `{"ipRestrictions":[{"ip":"203.0.113.10"},{"ip":"203.0.113.11"}],"enable":true}`
	seen := map[int32]bool{}
	for round := 0; round < 3; round++ {
		mustSuccess(t, call(t, srv, "PUT", putPaths[round%2], testAdminKey, body))
		rows := getRows(t, srv)
		if len(rows) != 2 || rows[0].IP != "203.0.113.10" || rows[1].IP != "203.0.113.11" {
			t.Fatalf("round %d: rows = %+v", round, rows)
		}
		for _, r := range rows {
			if seen[r.ID] {
				t.Errorf("round %d: id %d reused; ids must change on every save", round, r.ID)
			}
			seen[r.ID] = true
		}
	}
}

func getRows(t *testing.T, srv *httptest.Server) []restrictionRow {
	t.Helper()
	env := mustSuccess(t, call(t, srv, "GET", "/api/2.0/settings/iprestrictions", testAdminKey, ""))
	var rows []restrictionRow
	if err := json.Unmarshal(env.Response, &rows); err != nil {
		t.Fatalf("decode rows %s: %v", env.Response, err)
	}
	if env.Count != len(rows) {
		t.Errorf("count = %d, want %d", env.Count, len(rows))
	}
	return rows
}

func TestGetRestrictionsEnvelope(t *testing.T) {
	p, srv := startPortal(t, Options{})
	p.SetRestrictions([]ipguard.Restriction{{IP: "203.0.113.10"}, {IP: "2001:db8::25", ForAdmin: true}}, true)
	a := call(t, srv, "GET", "/api/2.0/settings/iprestrictions", testAdminKey, "")
	var got map[string]any
	if err := json.Unmarshal(a.body, &got); err != nil {
		t.Fatal(err)
	}
	rows, _ := json.Marshal(got["response"])
	if !regexp.MustCompile(`^\[\{"forAdmin":false,"id":\d+,"ip":"203.0.113.10","tenantId":1\},\{"forAdmin":true,"id":\d+,"ip":"2001:db8::25","tenantId":1\}\]$`).Match(rows) {
		t.Errorf("response = %s", rows)
	}
	links, _ := json.Marshal(got["links"])
	wantLinks := `[{"action":"GET","href":"` + srv.URL + `/api/2.0/settings/iprestrictions"}]`
	if got["count"] != 2.0 || got["status"] != 0.0 || got["statusCode"] != 200.0 || string(links) != wantLinks || len(got) != 5 {
		t.Errorf("envelope = %s, want count 2, status 0, statusCode 200, links %s", a.body, wantLinks)
	}
	if a.header.Get("ETag") != emptyETag {
		t.Errorf("ETag = %q, want %q", a.header.Get("ETag"), emptyETag)
	}
}

func TestGetRestrictionsAnswers304ForTheConstantETag(t *testing.T) {
	_, srv := startPortal(t, Options{})
	req, _ := http.NewRequest("GET", srv.URL+"/api/2.0/settings/iprestrictions", nil)
	req.Header.Set("Authorization", "Bearer "+testAdminKey)
	req.Header.Set("If-None-Match", emptyETag)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotModified {
		t.Errorf("status = %d, want 304", resp.StatusCode)
	}
}

func TestGetRestrictionsFailsOnLegacyEntries(t *testing.T) {
	p, srv := startPortal(t, Options{})
	p.SetRestrictions([]ipguard.Restriction{{IP: "10.0.0.0/24"}}, true)
	e := mustError(t, call(t, srv, "GET", "/api/2.0/settings/iprestrictions", testAdminKey, ""), 500)
	if deref(e.Type) != "System.FormatException" {
		t.Errorf("type = %s, want System.FormatException", deref(e.Type))
	}
}

func TestGetRestrictionSettings(t *testing.T) {
	p, srv := startPortal(t, Options{})
	for _, tc := range []struct {
		name   string
		set    func()
		enable bool
		lastRE string
	}{
		{"never saved", func() {}, false, `^0001-01-01T00:00:00$`},
		{"saved enabled", func() { p.SetRestrictions([]ipguard.Restriction{{IP: "10.0.0.1"}}, true) }, true, `^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$`},
		{"saved disabled", func() { p.SetRestrictions([]ipguard.Restriction{{IP: "10.0.0.1"}}, false) }, false, `^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.set()
			s := mustSuccess(t, call(t, srv, "GET", "/api/2.0/settings/iprestrictions/settings", testAdminKey, ""))
			var got map[string]any
			_ = json.Unmarshal(s.Response, &got)
			last, _ := got["lastModified"].(string)
			if got["enable"] != tc.enable || !regexp.MustCompile(tc.lastRE).MatchString(last) || len(got) != 2 || s.Count != 1 {
				t.Errorf("response = %s (count %d), want enable %v, lastModified matching %s", s.Response, s.Count, tc.enable, tc.lastRE)
			}
		})
	}
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}
