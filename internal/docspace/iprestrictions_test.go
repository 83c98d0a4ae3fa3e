package docspace_test

import (
	"context"
	"io"
	"net/http"
	"testing"

	"ipguard/internal/ipguard"
)

func TestPutIPRestrictionsSendsTheWholeList(t *testing.T) {
	tests := []struct {
		name   string
		list   []ipguard.Restriction
		enable bool
		want   string
	}{
		{"list enabled", []ipguard.Restriction{{IP: "203.0.113.10"}, {IP: "2001:db8::25", ForAdmin: true}}, true,
			`{"ipRestrictions":[{"ip":"203.0.113.10","forAdmin":false},{"ip":"2001:db8::25","forAdmin":true}],"enable":true}`},
		{"nil list is sent as []", nil, false, `{"ipRestrictions":[],"enable":false}`},
		{"empty list keeps enable false explicit", []ipguard.Restriction{}, false, `{"ipRestrictions":[],"enable":false}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var method, path, body string
			s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				method, path, body = r.Method, r.URL.Path, string(b)
				reply(w, 200, `{"response":`+string(b)+`,"count":1,"status":0,"statusCode":200}`)
			})
			if err := newClient(t, s.URL, nil).PutIPRestrictions(context.Background(), tt.list, tt.enable); err != nil {
				t.Fatal(err)
			}
			if method != "PUT" || path != "/api/2.0/settings/iprestrictions" {
				t.Errorf("request = %s %s", method, path)
			}
			if body != tt.want {
				t.Errorf("body = %s\nwant   %s", body, tt.want)
			}
		})
	}
}

func TestIPRestrictionsEnabled(t *testing.T) {
	tests := []struct {
		body    string
		want    bool
		wantErr bool
	}{
		{`{"response":{"enable":true,"lastModified":"2026-05-04T09:12:33"},"count":1,"status":0,"statusCode":200}`, true, false},
		{`{"response":{"enable":false},"count":1,"status":0,"statusCode":200}`, false, false},
		{`{"response":{},"count":1,"status":0,"statusCode":200}`, false, true},
		{`{"count":0,"status":0,"statusCode":200}`, false, true},
	}
	for _, tt := range tests {
		var path string
		s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
			path = r.URL.Path
			reply(w, 200, tt.body)
		})
		got, err := newClient(t, s.URL, nil).IPRestrictionsEnabled(context.Background())
		if path != "/api/2.0/settings/iprestrictions/settings" {
			t.Errorf("path = %q", path)
		}
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("body %s: got %v, %v; want %v, error %v", tt.body, got, err, tt.want, tt.wantErr)
		}
		if err != nil && ipguard.ErrorCode(err) != ipguard.EInternal {
			t.Errorf("code = %s, want internal", ipguard.ErrorCode(err))
		}
	}
}
