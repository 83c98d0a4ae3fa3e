package devportal

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"ipguard/internal/ipguard"
)

const listPath = "/api/2.0/settings/iprestrictions"

func TestFaultKinds(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault Fault
		check func(t *testing.T, a answer)
	}{
		{"429 is headers only", Fault{Status: 429, RetryAfter: "7"}, func(t *testing.T, a answer) {
			if a.status != 429 || len(a.body) != 0 || a.header.Get("Retry-After") != "7" ||
				a.header.Get("X-RateLimit-Limit") != "1500" || a.header.Get("X-RateLimit-Remaining") != "0" {
				t.Errorf("got %d %q %v, want 429, empty body, Retry-After 7, X-RateLimit-*", a.status, a.body, a.header)
			}
		}},
		{"429 without Retry-After", Fault{Status: 429}, func(t *testing.T, a answer) {
			if a.status != 429 || len(a.body) != 0 || a.header.Get("Retry-After") != "" {
				t.Errorf("got %d %q Retry-After %q", a.status, a.body, a.header.Get("Retry-After"))
			}
		}},
		{"503 is a proxy HTML page", Fault{Status: 503, RetryAfter: "1"}, func(t *testing.T, a answer) {
			if a.status != 503 || !strings.HasPrefix(a.header.Get("Content-Type"), "text/html") ||
				!strings.Contains(string(a.body), "503 Service Unavailable") || a.header.Get("Retry-After") != "1" {
				t.Errorf("got %d %s %q", a.status, a.header.Get("Content-Type"), a.body)
			}
		}},
		{"502 default HTML", Fault{Status: 502}, func(t *testing.T, a answer) {
			if a.status != 502 || !strings.Contains(string(a.body), "<html>") || json.Valid(a.body) {
				t.Errorf("got %d %q", a.status, a.body)
			}
		}},
		{"504 default HTML", Fault{Status: 504}, func(t *testing.T, a answer) {
			if a.status != 504 || !strings.Contains(string(a.body), "504 Gateway Timeout") {
				t.Errorf("got %d %q", a.status, a.body)
			}
		}},
		{"502 with a custom body", Fault{Status: 502, Body: "<html>502 Bad Gateway</html>"}, func(t *testing.T, a answer) {
			if a.status != 502 || string(a.body) != "<html>502 Bad Gateway</html>" {
				t.Errorf("got %d %q", a.status, a.body)
			}
		}},
		{"500 is an error envelope", Fault{Status: 500}, func(t *testing.T, a answer) {
			if e := mustError(t, a, 500); e.Message == "" || deref(e.Type) != "System.Exception" {
				t.Errorf("error = %+v", e)
			}
		}},
		{"402 is an error envelope", Fault{Status: 402}, func(t *testing.T, a answer) { mustError(t, a, 402) }},
		{"401 is an empty challenge", Fault{Status: 401}, func(t *testing.T, a answer) {
			if a.status != 401 || len(a.body) != 0 {
				t.Errorf("got %d %q", a.status, a.body)
			}
		}},
		{"malformed is a 200 with a cut envelope", Fault{Malformed: true}, func(t *testing.T, a answer) {
			if a.status != 200 || len(a.body) == 0 || json.Valid(a.body) || !strings.HasPrefix(string(a.body), `{"response":[`) {
				t.Errorf("got %d %q, want 200 and invalid JSON", a.status, a.body)
			}
		}},
		{"malformed with a custom body", Fault{Malformed: true, Body: `{"response":`}, func(t *testing.T, a answer) {
			if a.status != 200 || string(a.body) != `{"response":` {
				t.Errorf("got %d %q", a.status, a.body)
			}
		}},
		{"body alone answers 200 with it", Fault{Body: `{"unexpected":true}`}, func(t *testing.T, a answer) {
			if a.status != 200 || string(a.body) != `{"unexpected":true}` {
				t.Errorf("got %d %q", a.status, a.body)
			}
		}},
		{"a short delay then the normal answer", Fault{Delay: time.Millisecond}, func(t *testing.T, a answer) {
			mustSuccess(t, a)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, srv := startPortal(t, Options{})
			p.SetRestrictions([]ipguard.Restriction{{IP: "203.0.113.10"}, {IP: "203.0.113.11"}}, true)
			p.InjectFault(tc.fault)
			tc.check(t, call(t, srv, "GET", listPath, testAdminKey, ""))
		})
	}
}

func TestFaultTimesThenNormal(t *testing.T) {
	p, srv := startPortal(t, Options{})
	p.InjectFault(Fault{Status: 503, Times: 2, RetryAfter: "1"})
	for i, want := range []int{503, 503, 200, 200} {
		if a := call(t, srv, "GET", listPath, testAdminKey, ""); a.status != want {
			t.Errorf("request %d: status %d, want %d", i+1, a.status, want)
		}
	}
}

func TestFaultUntilCleared(t *testing.T) {
	p, srv := startPortal(t, Options{})
	p.InjectFault(Fault{Status: 429})
	for i := 0; i < 5; i++ {
		if a := call(t, srv, "GET", listPath, testAdminKey, ""); a.status != 429 {
			t.Fatalf("request %d: status %d, want 429", i+1, a.status)
		}
	}
	p.ClearFaults()
	mustSuccess(t, call(t, srv, "GET", listPath, testAdminKey, ""))
}

func TestFaultMatching(t *testing.T) {
	for _, tc := range []struct {
		name   string
		fault  Fault
		method string
		path   string
		hit    bool
	}{
		{"any method and path", Fault{Status: 503}, "GET", listPath, true},
		{"method matches", Fault{Status: 503, Method: "PUT"}, "PUT", listPath, true},
		{"method differs", Fault{Status: 503, Method: "PUT"}, "GET", listPath, false},
		{"path prefix matches a sub-path", Fault{Status: 503, Path: "/settings/iprestrictions"}, "GET", listPath + "/settings", true},
		{"path prefix differs", Fault{Status: 503, Path: "/security"}, "GET", listPath, false},
		{"path prefix for login events", Fault{Status: 503, Path: "/security/audit/login/filter"}, "GET", "/api/2.0/security/audit/login/filter?count=5", true},
		{"faults come before authentication", Fault{Status: 503}, "GET", listPath, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, srv := startPortal(t, Options{})
			p.InjectFault(tc.fault)
			key := testAdminKey
			if strings.Contains(tc.name, "authentication") {
				key = ""
			}
			body := ""
			if tc.method == "PUT" {
				body = `{"ipRestrictions":[]}`
			}
			a := call(t, srv, tc.method, tc.path, key, body)
			if hit := a.status == 503; hit != tc.hit {
				t.Errorf("status %d; fault hit = %v, want %v", a.status, hit, tc.hit)
			}
		})
	}
}

func TestFaultFirstMatchWins(t *testing.T) {
	p, srv := startPortal(t, Options{})
	p.InjectFault(Fault{Status: 429, Times: 1})
	p.InjectFault(Fault{Status: 503, Times: 1})
	for i, want := range []int{429, 503, 200} {
		if a := call(t, srv, "GET", listPath, testAdminKey, ""); a.status != want {
			t.Errorf("request %d: status %d, want %d", i+1, a.status, want)
		}
	}
}

func TestFaultDelayRespectsTheClientGivingUp(t *testing.T) {
	p, srv := startPortal(t, Options{})
	p.InjectFault(Fault{Delay: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for len(p.Requests()) == 0 { // cancel once the request is being served
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	if _, err := tryCall(ctx, srv, "GET", listPath, testAdminKey, ""); err == nil {
		t.Fatal("delayed request answered, want the client to give up")
	}
	// The handler returns without writing; srv.Close in cleanup would hang
	// for an hour if it did not.
}

func TestMalformedPutStillTakesEffect(t *testing.T) {
	p, srv := startPortal(t, Options{})
	p.InjectFault(Fault{Malformed: true, Method: "PUT"})
	a := call(t, srv, "PUT", listPath, testAdminKey, `{"ipRestrictions":[{"ip":"203.0.113.10"}]}`)
	if a.status != http.StatusOK || json.Valid(a.body) {
		t.Fatalf("got %d %q, want 200 with invalid JSON", a.status, a.body)
	}
	if list, enable := p.Restrictions(); len(list) != 1 || !enable {
		t.Errorf("stored %v %v, want the PUT applied", list, enable)
	}
}

func TestRequestLog(t *testing.T) {
	p, srv := startPortal(t, Options{})
	p.InjectFault(Fault{Status: 429, Times: 1})
	call(t, srv, "GET", listPath, testAdminKey, "")
	call(t, srv, "GET", "/api/2.0/security/audit/login/filter?count=5&startIndex=0", testAdminKey, "")
	call(t, srv, "PUT", listPath, "", `{"ipRestrictions":[]}`)
	call(t, srv, "GET", "/_dev/requests", "", "")
	want := []Request{
		{Method: "GET", Path: listPath, Status: 429},
		{Method: "GET", Path: "/api/2.0/security/audit/login/filter", RawQuery: "count=5&startIndex=0", Status: 200},
		{Method: "PUT", Path: listPath, Status: 401},
	}
	if got := p.Requests(); !slices.Equal(got, want) {
		t.Errorf("requests = %+v, want %+v", got, want)
	}
	p.ResetRequests()
	if got := p.Requests(); len(got) != 0 {
		t.Errorf("after reset: %+v", got)
	}
}
