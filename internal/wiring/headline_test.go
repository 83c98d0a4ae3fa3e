package wiring

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"ipguard/internal/docspace"
	"ipguard/internal/ipguard"
)

// An error says in its first line what to fix, however deep the cause sits
// under the calls that wrapped it; the whole chain follows.
func TestErrorMessageLeadsWithWhatToFix(t *testing.T) {
	secret := &ipguard.Error{Code: ipguard.EConfig, Field: "DOCSPACE_API_KEY_SECRET_ID", Value: "nope", Message: "secret does not exist (check the name or ARN, the account and the region)"}
	wrap := func(err error) error {
		err = fmt.Errorf("docspace: get login events: get API key: %w", err)
		err = ipguard.Errorf(ipguard.ErrorCode(err), "audit: read page 3: %w", err)
		return ipguard.Errorf(ipguard.ErrorCode(err), "audit: window: %w", err)
	}
	tests := []struct {
		name  string
		err   error
		first string // the first line starts so
	}{
		{"missing secret", wrap(secret), `DOCSPACE_API_KEY_SECRET_ID "nope": secret does not exist`},
		{"refused key", wrap(&docspace.Error{Op: "get login events", Method: "GET", Path: "/api/2.0/security/audit/login/filter", Status: 401}), "fix the API key: the portal refused it"},
		{"broken portal URL", wrap(&docspace.Error{Op: "get login events", Unresolvable: true, Err: errors.New("no such host")}), "fix DOCSPACE_API_HOST: its host name does not resolve"},
		{"a web page", wrap(&docspace.Error{Op: "get login events", Status: 200, NotAPI: true}), "fix DOCSPACE_API_HOST: the address in DOCSPACE_API_HOST does not serve the DocSpace API"},
		{"AWS resource", ipguard.Errorf(ipguard.EConfig, "audit: acquire lease: %w", &ipguard.Error{Code: ipguard.EConfig, Message: "dynamodb: put (ALLOWLIST_TABLE=nope): not found: check the name: operation error DynamoDB: PutItem, ResourceNotFoundException"}), "dynamodb: put (ALLOWLIST_TABLE=nope): not found: check the name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := errorMessage(tt.err)
			first, rest, _ := strings.Cut(msg, "\n")
			if !strings.HasPrefix(first, tt.first) || strings.Contains(first, "operation error") {
				t.Errorf("first line %q, want it to start with %q", first, tt.first)
			}
			if !strings.Contains(rest, tt.err.Error()) && first != tt.err.Error() {
				t.Errorf("the chain %q is not kept after the first line: %q", tt.err.Error(), msg)
			}
		})
	}
	if msg := errorMessage(ipguard.Invalid("allowedIps[0]", "x", "is not an address")); strings.Contains(msg, "\n") {
		t.Errorf("bad input gained a fix line: %q", msg)
	}
}

// The README's errorType table lists exactly the errorTypes the functions
// return (ErrorTypes).
func TestREADMEListsEveryErrorType(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(b), "| errorType | what happened | what to do |")
	if !ok {
		t.Fatal("README has no errorType table")
	}
	listed := []string{}
	for _, line := range strings.Split(table, "\n")[2:] {
		if !strings.HasPrefix(line, "| `") {
			break
		}
		name, _, _ := strings.Cut(strings.TrimPrefix(line, "| `"), "`")
		listed = append(listed, name)
	}
	if !slices.Equal(listed, ErrorTypes) {
		t.Errorf("README lists %v, the functions return %v", listed, ErrorTypes)
	}
}
