package docspace_test

import (
	"context"
	"strings"
	"testing"

	"ipguard/internal/docspace"
	"ipguard/internal/ipguard"
)

// TestEnvelopeDecoding pins how every kind of body the portal (or a proxy in
// front of it) may send becomes a result or an error.
func TestEnvelopeDecoding(t *testing.T) {
	tests := []struct {
		name        string
		status      int
		contentType string
		body        string
		want        []ipguard.Restriction // on success
		wantStatus  int                   // of the error; 0 = success expected
		wantCode    ipguard.Code
		wantMsg     []string // substrings of Error()
		notMsg      []string // must not appear
	}{
		{
			name: "success", status: 200, contentType: "application/json",
			body: `{"response":[{"id":41,"tenantId":1,"ip":"203.0.113.10","forAdmin":false},{"id":42,"tenantId":1,"ip":"2001:db8::25","forAdmin":true}],
				"count":2,"links":[{"href":"https://portal.example.com/api/2.0/settings/iprestrictions","action":"GET"}],"status":0,"statusCode":200}`,
			want: []ipguard.Restriction{{IP: "203.0.113.10"}, {IP: "2001:db8::25", ForAdmin: true}},
		},
		{
			name: "success with PascalCase names", status: 200, contentType: "application/json",
			body: `{"Response":[{"Ip":"203.0.113.10","ForAdmin":true}],"Count":1,"Status":0,"StatusCode":200}`,
			want: []ipguard.Restriction{{IP: "203.0.113.10", ForAdmin: true}},
		},
		{
			name: "success without response is an error, never an empty list", status: 200, contentType: "application/json",
			body:       `{"count":0,"status":0,"statusCode":200}`,
			wantStatus: 200, wantCode: ipguard.EInternal,
			wantMsg: []string{`HTTP 200: unexpected response: the answer has no "response" list`},
		},
		{
			name: "null response is an error", status: 200, contentType: "application/json",
			body:       `{"response":null,"count":0,"status":0,"statusCode":200}`,
			wantStatus: 200, wantCode: ipguard.EInternal,
			wantMsg: []string{`no "response" list`},
		},
		{
			name: "an element without ip is an error", status: 200, contentType: "application/json",
			body:       `{"response":[{"forAdmin":true}],"count":1,"status":0,"statusCode":200}`,
			wantStatus: 200, wantCode: ipguard.EInternal,
			wantMsg: []string{`has no "ip"`},
		},
		{
			name: "an empty list is an empty list", status: 200, contentType: "application/json",
			body: `{"response":[],"count":0,"status":0,"statusCode":200}`,
			want: []ipguard.Restriction{},
		},
		{
			name: "error envelope", status: 400, contentType: "application/json",
			body:       `{"error":{"message":"Add at least 1 allowed IP address.","type":"System.ArgumentException","stack":"   at ASC.Web.Api.Controllers.Settings.IpRestrictionsController.SaveIpRestrictions(...)","hresult":-2147024809},"status":1,"statusCode":400}`,
			wantStatus: 400, wantCode: ipguard.EInvalid,
			wantMsg: []string{"HTTP 400: Add at least 1 allowed IP address. (after 1 attempt)"},
			notMsg:  []string{"IpRestrictionsController", "System.ArgumentException"},
		},
		{
			name: "validation envelope", status: 400, contentType: "application/json",
			body: `{"response":{"type":"https://tools.ietf.org/html/rfc9110#section-15.5.1","title":"One or more validation errors occurred.","status":400,
				"errors":{"Count":["The field Count must be between 1 and 100."],"Another":["a","b"]},"traceId":"00-4b"},"count":1,"status":1,"statusCode":400}`,
			wantStatus: 400, wantCode: ipguard.EInvalid,
			wantMsg: []string{"HTTP 400: One or more validation errors occurred. Another: a b; Count: The field Count must be between 1 and 100."},
		},
		{
			name: "validation envelope under HTTP 200", status: 200, contentType: "application/json",
			body:       `{"response":{"title":"One or more validation errors occurred.","errors":{"IpRestrictions":["The IpRestrictions field is required."]}},"count":1,"status":1,"statusCode":400}`,
			wantStatus: 400, wantCode: ipguard.EInvalid,
			wantMsg: []string{"HTTP 400: One or more validation errors occurred. IpRestrictions: The IpRestrictions field is required."},
		},
		{
			name: "error envelope under HTTP 200", status: 200, contentType: "application/json",
			body:       `{"error":{"message":"Object reference not set","type":null,"stack":null,"hresult":0},"status":1,"statusCode":500}`,
			wantStatus: 500, wantCode: ipguard.EUnavailable,
			wantMsg: []string{"HTTP 500: Object reference not set (after 1 attempt)"},
		},
		{
			name: "status 1 alone under HTTP 200", status: 200, contentType: "application/json",
			body:       `{"status":1,"statusCode":200}`,
			wantStatus: 200, wantCode: ipguard.EInternal,
		},
		{
			name: "empty 401", status: 401,
			wantStatus: 401, wantCode: ipguard.EConfig,
			wantMsg: []string{"HTTP 401: the API key was refused", "DOCSPACE_API_KEY_SECRET_ID"},
		},
		{
			name: "401 error envelope", status: 401, contentType: "application/json",
			body:       `{"error":{"message":"User authentication failed","hresult":0},"status":1,"statusCode":401}`,
			wantStatus: 401, wantCode: ipguard.EConfig,
			wantMsg: []string{"HTTP 401: User authentication failed (the API key was refused"},
		},
		{
			name: "empty 403 from a scope check", status: 403,
			wantStatus: 403, wantCode: ipguard.EConfig,
			wantMsg: []string{"HTTP 403: the key's user must be the portal owner or a DocSpace admin", "*:write"},
		},
		{
			name: "bare string 403 from IP security", status: 403, contentType: "application/json",
			body:       `"The access to the portal is restricted"`,
			wantStatus: 403, wantCode: ipguard.EConfig,
			wantMsg: []string{"HTTP 403: The access to the portal is restricted (the key's user must be"},
			notMsg:  []string{`"The access`},
		},
		{
			name: "bare text 403", status: 403, contentType: "text/plain",
			body:       "The access to the portal is restricted",
			wantStatus: 403, wantCode: ipguard.EConfig,
			wantMsg: []string{"HTTP 403: The access to the portal is restricted ("},
		},
		{
			name: "Access denied envelope 403", status: 403, contentType: "application/json",
			body:       `{"error":{"message":"Access denied","type":"System.Security.SecurityException","stack":"..."},"status":1,"statusCode":403}`,
			wantStatus: 403, wantCode: ipguard.EConfig,
			wantMsg: []string{"HTTP 403: Access denied ("},
		},
		{
			name: "402 plan", status: 402, contentType: "application/json",
			body:       `{"error":{"message":"Your pricing plan does not support this option"},"status":1,"statusCode":402}`,
			wantStatus: 402, wantCode: ipguard.EConfig,
			wantMsg: []string{"Your pricing plan does not support this option (the portal's pricing plan"},
		},
		{
			name: "HTML 502 from a proxy", status: 502, contentType: "text/html",
			body: "<html>\n<head><title>502 Bad Gateway</title><style>body{}</style></head>\n<body>\n<center><h1>502   Bad\n Gateway</h1></center>\n" +
				"<hr><center>nginx</center>\n<script>var x = 1;</script></body>\n</html>",
			wantStatus: 502, wantCode: ipguard.EUnavailable,
			wantMsg: []string{"HTTP 502: 502 Bad Gateway nginx (after 3 attempts)"},
			notMsg:  []string{"<", "body{}", "var x"},
		},
		{
			name: "long HTML is cut", status: 503, contentType: "text/html",
			body:       "<p>" + strings.Repeat("word ", 200) + "</p>",
			wantStatus: 503, wantCode: ipguard.EUnavailable,
			wantMsg: []string{"word word…"},
		},
		{
			name: "empty 429", status: 429,
			wantStatus: 429, wantCode: ipguard.EUnavailable,
			wantMsg: []string{"HTTP 429: Too Many Requests (after 3 attempts)"},
		},
		{
			name: "404", status: 404, contentType: "application/json",
			body:       `{"error":{"message":"Not found"},"status":1,"statusCode":404}`,
			wantStatus: 404, wantCode: ipguard.EConfig,
		},
		{
			name: "malformed JSON under 200 is not retried", status: 200, contentType: "application/json",
			body:       `{"response":[{"ip":"203.0.113.10"`,
			wantStatus: 200, wantCode: ipguard.EInternal,
			wantMsg: []string{"HTTP 200: malformed JSON response", "(after 1 attempt)"},
		},
		{
			name: "HTML under 200", status: 200, contentType: "text/html",
			body:       `<html><body>Please log in</body></html>`,
			wantStatus: 200, wantCode: ipguard.EConfig,
			wantMsg: []string{"HTTP 200: response is not JSON: Please log in"},
		},
		{
			name: "empty body under 200", status: 200,
			wantStatus: 200, wantCode: ipguard.EInternal,
			wantMsg: []string{"HTTP 200: empty response"},
		},
		{
			name: "response of the wrong shape", status: 200, contentType: "application/json",
			body:       `{"response":{"ip":"203.0.113.10"},"count":1,"status":0,"statusCode":200}`,
			wantStatus: 200, wantCode: ipguard.EInternal,
			wantMsg: []string{"HTTP 200: unexpected response"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t, answer(tt.status, tt.contentType, tt.body))
			list, err := newClient(t, s.URL, nil).IPRestrictions(context.Background())
			if tt.wantStatus == 0 {
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				if !equalRestrictions(list, tt.want) {
					t.Errorf("list = %#v, want %#v", list, tt.want)
				}
				return
			}
			e := asDocspace(t, err)
			if e.Status != tt.wantStatus || e.Code() != tt.wantCode {
				t.Errorf("Status, Code = %d, %s; want %d, %s (%v)", e.Status, e.Code(), tt.wantStatus, tt.wantCode, err)
			}
			if ipguard.ErrorCode(err) != tt.wantCode {
				t.Errorf("ipguard.ErrorCode = %s, want %s", ipguard.ErrorCode(err), tt.wantCode)
			}
			if e.Op != "get ip restrictions" || e.Method != "GET" || e.Path != "/api/2.0/settings/iprestrictions" {
				t.Errorf("Op, Method, Path = %q, %q, %q", e.Op, e.Method, e.Path)
			}
			for _, m := range tt.wantMsg {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("Error() = %q\nwant it to contain %q", err, m)
				}
			}
			for _, m := range tt.notMsg {
				if strings.Contains(err.Error(), m) {
					t.Errorf("Error() = %q\nwant it not to contain %q", err, m)
				}
			}
			if n := len([]rune(e.Message)); n > 500 {
				t.Errorf("message is %d runes long, want it summarised", n)
			}
		})
	}
}

func equalRestrictions(a, b []ipguard.Restriction) bool {
	if len(a) != len(b) || (a == nil) != (b == nil) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Ensure the exported error type keeps its documented fields.
var _ = docspace.Error{Op: "", Method: "", Path: "", Status: 0, Message: "", Attempts: 0, Err: nil}
