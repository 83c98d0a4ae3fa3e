package onboard

import (
	"errors"
	"strings"
	"testing"

	"ipguard/internal/eventbridge"
	"ipguard/internal/ipguard"
)

// decode reads a payload as the Lambda handler does: envelope first.
func decode(payload []byte) (Request, error) {
	detail, _, err := eventbridge.Unwrap(payload)
	if err != nil {
		return Request{}, err
	}
	return DecodeRequest(detail)
}

func TestDecodeRequest(t *testing.T) {
	tests := []struct {
		name    string
		payload string
		want    Request
	}{
		{"direct", `{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.10"]}`,
			Request{ID: "u1", Email: "a@example.com", AllowedIPs: []string{"203.0.113.10"}}},
		{"userId alias", `{"userId":"u1","email":"a@example.com","allowedIps":["203.0.113.10"]}`,
			Request{ID: "u1", Email: "a@example.com", AllowedIPs: []string{"203.0.113.10"}}},
		{"both agree", `{"id":"u1","userId":"u1","email":"a@example.com","allowedIps":[]}`,
			Request{ID: "u1", Email: "a@example.com"}},
		{"eventbridge", `{"version":"0","id":"evt-123","detail-type":"UserOnboarded","source":"hr.pipeline","time":"2026-11-25T10:00:00Z","detail":{"id":"u2","email":"b@example.com","allowedIps":["10.0.0.0/24"]}}`,
			Request{ID: "u2", Email: "b@example.com", AllowedIPs: []string{"10.0.0.0/24"}}},
		{"eventbridge string detail", `{"version":"0","id":"evt-124","detail-type":"UserOnboarded","source":"x","time":"2026-11-25T10:00:00Z","detail":"{\"userId\":\"u3\",\"email\":\"c@example.com\",\"allowedIps\":[\"::1\"]}"}`,
			Request{ID: "u3", Email: "c@example.com", AllowedIPs: []string{"::1"}}},
		{"direct with a source field of its own", `{"source":"hr-system","id":"u5","email":"e@example.com","allowedIps":["203.0.113.5"]}`,
			Request{ID: "u5", Email: "e@example.com", AllowedIPs: []string{"203.0.113.5"}}},
		{"case-insensitive keys", `{"ID":"u4","Email":"d@example.com","AllowedIPs":["203.0.113.1"]}`,
			Request{ID: "u4", Email: "d@example.com", AllowedIPs: []string{"203.0.113.1"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decode([]byte(tt.payload))
			if err != nil {
				t.Fatal(err)
			}
			if got.ID != tt.want.ID || got.Email != tt.want.Email || strings.Join(got.AllowedIPs, ",") != strings.Join(tt.want.AllowedIPs, ",") {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestDecodeRequestRejectsWrongShapes(t *testing.T) {
	tests := []struct {
		name, payload, field string
	}{
		{"not an object", `[1,2]`, "event"},
		{"not json", `hello`, "event"},
		{"allowedIps missing", `{"id":"u1","email":"a@example.com"}`, "allowedIps"},
		{"allowedIps null", `{"id":"u1","email":"a@example.com","allowedIps":null}`, "allowedIps"},
		{"allowedIps string", `{"id":"u1","email":"a@example.com","allowedIps":"203.0.113.1"}`, "allowedIps"},
		{"allowedIps object", `{"id":"u1","email":"a@example.com","allowedIps":{"a":1}}`, "allowedIps"},
		{"entry number", `{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.1", 7]}`, "allowedIps[1]"},
		{"id number", `{"id":42,"email":"a@example.com","allowedIps":["203.0.113.1"]}`, "id"},
		{"email number", `{"id":"u1","email":5,"allowedIps":["203.0.113.1"]}`, "email"},
		{"id and userId disagree", `{"id":"u1","userId":"u2","email":"a@example.com","allowedIps":["203.0.113.1"]}`, "userId"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decode([]byte(tt.payload))
			var e *ipguard.Error
			if !errors.As(err, &e) || e.Code != ipguard.EInvalid || e.Field != tt.field {
				t.Fatalf("err = %#v, want EInvalid on field %q", err, tt.field)
			}
		})
	}
}

func TestCanonicalIDAndEmail(t *testing.T) {
	if id, err := canonicalID(" 6B2F7A1E-3C44-4A5B-9E0F-1D2C3B4A5F60 "); err != nil || id != "6b2f7a1e-3c44-4a5b-9e0f-1d2c3b4a5f60" {
		t.Errorf("GUID id = %q, %v", id, err)
	}
	for _, bad := range []string{"", "  ", "a b", "x\ny", "u\u202Eser", "zero\u200Bwidth", "bom\uFEFF"} {
		if _, err := canonicalID(bad); ipguard.ErrorCode(err) != ipguard.EInvalid {
			t.Errorf("canonicalID(%q) err = %v", bad, err)
		}
	}
	for _, good := range []string{"user@example.com", "first.last+tag@sub.example.org"} {
		if _, err := canonicalEmail(good); err != nil {
			t.Errorf("canonicalEmail(%q): %v", good, err)
		}
	}
	for _, bad := range []string{"", "user", "user@", "@example.com", "Jane <jane@example.com>", "a@b@c", "user example.com", "user@localhost", "user@example.", "user@.example.com", "user@exa..mple.com",
		"ev\u202Ee@example.com", "eve\u200B@example.com", "eve@exam\u2028ple.com", "e\x7fve@example.com"} {
		if _, err := canonicalEmail(bad); ipguard.ErrorCode(err) != ipguard.EInvalid || !strings.Contains(err.Error(), "email") {
			t.Errorf("canonicalEmail(%q) err = %v", bad, err)
		}
	}
}
