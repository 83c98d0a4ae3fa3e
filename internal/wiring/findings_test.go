package wiring

import (
	"strings"
	"testing"

	"ipguard/internal/digest"
	"ipguard/internal/dynamo"
	"ipguard/internal/findingsbus"
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

// The items the findings chain writes carry the table's own key prefixes
// (dynamo's constants, which the IAM key conditions are built from).
func TestFindingsItemsUseTheTablesPrefixes(t *testing.T) {
	if !strings.HasPrefix(findingsbus.OutboxPK, dynamo.OutboxPrefix) || digest.Prefix != dynamo.DigestPrefix {
		t.Errorf("outbox %q (prefix %q), digest %q (prefix %q)", findingsbus.OutboxPK, dynamo.OutboxPrefix, digest.Prefix, dynamo.DigestPrefix)
	}
}
