package wiring

import (
	"context"
	"errors"
	"net"
	"net/http"
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
