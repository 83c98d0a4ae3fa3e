package redact

import (
	"strings"
	"testing"
)

func TestCleanRemovesEveryRunOfEightOrMore(t *testing.T) {
	key := "sk-" + strings.Repeat("0123456789abcdef", 4) // 67 characters, like a DocSpace key
	secretJSON := `{"apiKey":"` + key + `","note":"rotated-by-ops-2026"}`
	Remember(key)
	Remember(secretJSON)

	tests := []struct {
		name, in, want string
	}{
		{"whole key", "Bearer " + key + " refused", "Bearer [redacted] refused"},
		{"truncated header echo: sk- plus 27 hex digits", "auth was Bearer " + key[:30] + "!", "auth was Bearer [redacted]!"},
		{"middle of the key", "x" + key[20:28] + "y", "x[redacted]y"},
		{"seven characters stay", "x" + key[20:27] + "y", "x" + key[20:27] + "y"},
		{"two runs", key[:9] + " and " + key[40:50], "[redacted] and [redacted]"},
		{"other field of the secret's JSON", "note rotated-by-ops-2026 here", "note [redacted] here"},
		{"unrelated text", "GET /api/2.0/settings/iprestrictions: HTTP 401", "GET /api/2.0/settings/iprestrictions: HTTP 401"},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Clean(tt.in); got != tt.want {
				t.Errorf("Clean(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestCleanShortSecretOnlyWhole(t *testing.T) {
	Remember("abc12")
	if got := Clean("x abc12 abc1"); got != "x [redacted] abc1" {
		t.Errorf("got %q", got)
	}
}

func BenchmarkCleanLogLine(b *testing.B) {
	Remember("sk-" + strings.Repeat("fedcba9876543210", 4))
	line := strings.Repeat("docspace: get ip restrictions: GET /api/2.0/settings/iprestrictions: HTTP 503 ", 4)
	b.ReportAllocs()
	for b.Loop() {
		_ = Clean(line)
	}
}
