package ipguard

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCanonicalUserID(t *testing.T) {
	tests := []struct{ in, want string }{
		{" 6B2F7A1E-3C44-4A5B-9E0F-1D2C3B4A5F60 ", "6b2f7a1e-3c44-4a5b-9e0f-1d2c3b4a5f60"},
		{"6b2f7a1e-3c44-4a5b-9e0f-1d2c3b4a5f60", "6b2f7a1e-3c44-4a5b-9e0f-1d2c3b4a5f60"},
		{"User-42", "User-42"},
		{"6B2F7A1E-3C44-4A5B-9E0F-1D2C3B4A5F6X", "6B2F7A1E-3C44-4A5B-9E0F-1D2C3B4A5F6X"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := CanonicalUserID(tt.in); got != tt.want {
			t.Errorf("CanonicalUserID(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestErrorNamesFieldAndValue(t *testing.T) {
	err := Invalid("allowedIps[2]", "10.0.0.1/24", "has host bits set")
	if got := err.Error(); got != `allowedIps[2] "10.0.0.1/24": has host bits set` {
		t.Errorf("Error() = %q", got)
	}
	long := Invalid("event", strings.Repeat("ü", 100), "must be a JSON object")
	if len(long.Value) > 80 || !strings.HasSuffix(long.Value, "…") || !utf8.ValidString(long.Value) {
		t.Errorf("long value not clipped cleanly: %q", long.Value)
	}
	if ErrorCode(err) != EInvalid || ErrorCode(nil) != "" {
		t.Error("ErrorCode")
	}
}

func TestCheckJSONNamesThePosition(t *testing.T) {
	tests := []struct {
		payload string
		want    string // nothing when valid
	}{
		{`{"id": "u1"}`, ""},
		{`{"id": "u1",}`, "line 1, column 13 (byte 13)"},
		{"{\n  \"id\": \"u1\"\n  \"email\": \"x\"\n}", "line 3, column 3"},
		{`{"id": "u1"`, "unexpected end of JSON input at line 1, column 11 (byte 11)"},
	}
	for _, tt := range tests {
		err := CheckJSON("event", []byte(tt.payload))
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%q: %v, want valid", tt.payload, err)
		case tt.want != "" && (ErrorCode(err) != EInvalid || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "event ")):
			t.Errorf("%q: %v, want EInvalid naming event and %q", tt.payload, err, tt.want)
		}
	}
}

// The login kinds are the portal's MessageAction codes (docspace-api.md
// §3.5); anything else (logout, session events) is neither.
func TestLoginKinds(t *testing.T) {
	tests := []struct {
		action            int
		succeeded, failed bool
	}{
		{1000, true, false},  // LoginSuccess
		{1010, true, false},  // LoginSuccessViaApi
		{1029, true, false},  // LoginSuccessViaPassword
		{1002, false, true},  // LoginFailInvalidCombination
		{1023, false, true},  // LoginFailBruteForce
		{1026, false, true},  // LoginFailRecaptcha
		{1006, false, false}, // Logout
		{1016, false, false}, // session event
		{0, false, false},
	}
	for _, tt := range tests {
		e := LoginEvent{ActionID: tt.action}
		if e.IsSuccessfulLogin() != tt.succeeded || e.IsFailedLogin() != tt.failed {
			t.Errorf("action %d: successful %v, failed %v; want %v, %v", tt.action, e.IsSuccessfulLogin(), e.IsFailedLogin(), tt.succeeded, tt.failed)
		}
	}
}
