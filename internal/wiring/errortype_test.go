package wiring

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"ipguard/internal/awserr"
	"ipguard/internal/docspace"
	"ipguard/internal/ipguard"
	"ipguard/internal/lease"
	"ipguard/internal/lease/leasetest"
)

// TestErrorClassification is the table of what the caller can do about each
// failure: ConfigurationError means fix the deployment (the message says
// what), DependencyUnavailable means try later, Conflict means another run
// holds the lease.
func TestErrorClassification(t *testing.T) {
	table := awserr.Resource{Service: "dynamodb", Field: "ALLOWLIST_TABLE", Value: "t"}
	api := func(code string) error { return &smithy.GenericAPIError{Code: code, Message: "m"} }
	status := func(code int) error {
		return &awshttp.ResponseError{ResponseError: &smithyhttp.ResponseError{
			Response: &smithyhttp.Response{Response: &http.Response{StatusCode: code}}, Err: errors.New("x")}}
	}
	portal := func(status int) error {
		return &docspace.Error{Op: "get ip restrictions", Method: "GET", Path: "/api/2.0/settings/iprestrictions", Status: status, Attempts: 1}
	}
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"AWS AccessDeniedException", awserr.Classify(api("AccessDeniedException"), "get user", table), "ConfigurationError"},
		{"AWS ValidationException", awserr.Classify(api("ValidationException"), "get user", table), "ConfigurationError"},
		{"AWS ResourceNotFoundException", awserr.Classify(api("ResourceNotFoundException"), "get user", table), "ConfigurationError"},
		{"AWS throttling", awserr.Classify(api("ThrottlingException"), "get user", table), "DependencyUnavailable"},
		{"AWS 5xx", awserr.Classify(status(500), "get user", table), "DependencyUnavailable"},
		{"AWS no answer", awserr.Classify(&smithyhttp.RequestSendError{Err: errors.New("connection refused")}, "get user", table), "DependencyUnavailable"},
		{"portal 401", portal(401), "ConfigurationError"},
		{"portal 403", portal(403), "ConfigurationError"},
		{"portal 404: not a DocSpace API", portal(404), "ConfigurationError"},
		{"portal answers a web page", &docspace.Error{Op: "x", Status: 200, NotAPI: true}, "ConfigurationError"},
		{"portal host unresolvable", &docspace.Error{Op: "x", Unresolvable: true, Err: &net.DNSError{IsNotFound: true}}, "ConfigurationError"},
		{"portal 429", portal(429), "DependencyUnavailable"},
		{"portal 503", portal(503), "DependencyUnavailable"},
		{"portal no answer", portal(0), "DependencyUnavailable"},
		{"portal 400", portal(400), "InvalidInput"},
		{"lease wait into the deadline", leaseWaitIntoDeadline(t), "Conflict"},
		{"bad input", ipguard.Invalid("allowedIps[0]", "x", "is not an address"), "InvalidInput"},
		{"anything else", errors.New("bug"), "InternalError"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ErrorType(tt.err); got != tt.want {
				t.Errorf("ErrorType(%v) = %s, want %s", tt.err, got, tt.want)
			}
		})
	}
}

// leaseWaitIntoDeadline waits for a lease someone else holds until the
// context's deadline passes.
func leaseWaitIntoDeadline(t *testing.T) error {
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	held := &leasetest.Backend{}
	held.Hold("onboard", "another run", time.Now().Add(time.Hour))
	_, err := lease.Acquire(ctx, held, "onboard", lease.Options{Wait: time.Minute})
	if err == nil {
		t.Fatal("lease acquired")
	}
	return err
}

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
