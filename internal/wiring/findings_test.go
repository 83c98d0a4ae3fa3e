package wiring

import (
	"testing"

	"ipguard/internal/ocsf"
)

func TestPortalHostIsTheArchivePartition(t *testing.T) {
	for in, want := range map[string]string{
		"https://portal.example.com":         "portal.example.com",
		"https://portal.example.com/":        "portal.example.com",
		"http://127.0.0.1:8080":              "127.0.0.1:8080",
		"portal.example.com":                 "portal.example.com",
		"https://portal.example.com/api/2.0": "portal.example.com",
	} {
		if got := ocsf.Host(in); got != want {
			t.Errorf("ocsf.Host(%q) = %q, want %q", in, got, want)
		}
	}
}
