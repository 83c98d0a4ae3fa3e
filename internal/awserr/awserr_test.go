package awserr

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"ipguard/internal/ipguard"
)

func api(code string) error {
	return &smithy.GenericAPIError{Code: code, Message: "m", Fault: smithy.FaultClient}
}

func status(code int, cause error) error {
	return &awshttp.ResponseError{ResponseError: &smithyhttp.ResponseError{
		Response: &smithyhttp.Response{Response: &http.Response{StatusCode: code}}, Err: cause}}
}

// TestClassification is the classification table of the README's
// "Errors" section for AWS calls.
func TestClassification(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want ipguard.Code
	}{
		{"AccessDeniedException", api("AccessDeniedException"), ipguard.EConfig},
		{"AccessDenied", api("AccessDenied"), ipguard.EConfig},
		{"SNS AuthorizationError", api("AuthorizationError"), ipguard.EConfig},
		{"KMS refused", api("KMSAccessDeniedException"), ipguard.EConfig},
		{"expired credentials", api("ExpiredTokenException"), ipguard.EConfig},
		{"unknown credentials", api("UnrecognizedClientException"), ipguard.EConfig},
		{"ValidationException", api("ValidationException"), ipguard.EConfig},
		{"SNS InvalidParameter", api("InvalidParameter"), ipguard.EConfig},
		{"ResourceNotFoundException (typed)", &types.ResourceNotFoundException{Message: new(string)}, ipguard.EConfig},
		{"ResourceNotFound", api("ResourceNotFoundException"), ipguard.EConfig},
		{"SNS NotFound", api("NotFound"), ipguard.EConfig},
		{"S3 NoSuchBucket", api("NoSuchBucket"), ipguard.EConfig},
		{"throttling", api("ThrottlingException"), ipguard.EUnavailable},
		{"provisioned throughput", api("ProvisionedThroughputExceededException"), ipguard.EUnavailable},
		{"SNS throttled", api("ThrottledException"), ipguard.EUnavailable},
		{"HTTP 500", status(500, api("Whatever")), ipguard.EUnavailable},
		{"HTTP 503", status(503, errors.New("x")), ipguard.EUnavailable},
		{"server fault", &smithy.GenericAPIError{Code: "Odd", Fault: smithy.FaultServer}, ipguard.EUnavailable},
		{"connection refused", &smithyhttp.RequestSendError{Err: &net.OpError{Op: "dial", Err: errors.New("connection refused")}}, ipguard.EUnavailable},
		{"deadline", context.DeadlineExceeded, ipguard.EUnavailable},
		{"unknown endpoint host", &smithyhttp.RequestSendError{Err: &net.DNSError{Name: "dynamodb.xx-nowhere-1.amazonaws.com", IsNotFound: true}}, ipguard.EConfig},
		{"conditional check failed is not a dependency failure", api("ConditionalCheckFailedException"), ipguard.EInternal},
		{"other service error code", api("OddException"), ipguard.EInternal},
		{"no answer", errors.New("read: connection reset by peer"), ipguard.EUnavailable},
	}
	r := Resource{Service: "dynamodb", Field: "ALLOWLIST_TABLE", Value: "ipguard-table"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Classify(tt.err, "get user u1", r)
			if got := ipguard.ErrorCode(err); got != tt.want {
				t.Fatalf("code = %s, want %s (%v)", got, tt.want, err)
			}
			if !errors.Is(err, tt.err) {
				t.Error("cause not reachable")
			}
			if tt.want == ipguard.EConfig && (!strings.Contains(err.Error(), "ALLOWLIST_TABLE") || !strings.Contains(err.Error(), "ipguard-table")) {
				t.Errorf("configuration error %q does not name the variable and its value", err)
			}
		})
	}
	if Classify(nil, "x", r) != nil {
		t.Error("Classify(nil) != nil")
	}
}
