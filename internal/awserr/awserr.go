// Package awserr classifies failures of AWS SDK calls by what the caller can
// do about them, for the adapters (dynamo, snsalert, secrets):
//
//	AccessDenied*, AuthorizationError, KMS*,   → ipguard.EConfig: the deployment must change
//	invalid or expired credentials,             (the message names the variable to check)
//	ResourceNotFound*, NotFound*, NoSuchBucket,
//	ValidationException, InvalidParameter*
//	throttling, HTTP 5xx, no answer, deadline   → ipguard.EUnavailable: a later try may succeed
//	any other error code of the service         → ipguard.EInternal: an unexpected answer
package awserr

import (
	"errors"
	"fmt"
	"net"
	"strings"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"

	"ipguard/internal/ipguard"
)

// Resource names what a call worked on, so that a configuration error says
// what to fix.
type Resource struct {
	Service string // e.g. "dynamodb"
	Field   string // the environment variable that names the resource, e.g. ALLOWLIST_TABLE
	Value   string // its value, e.g. the table name
}

// Classify turns err from the operation op (e.g. "put user u1") on r into an
// *ipguard.Error whose code says what the caller can do (see the package
// comment) and whose message names r and, for EConfig, what to fix. The
// cause stays reachable with errors.As. A nil err is nil.
func Classify(err error, op string, r Resource) error {
	if err == nil {
		return nil
	}
	code, fix := Code(err)
	where := fmt.Sprintf("%s: %s (%s=%s)", r.Service, op, r.Field, r.Value)
	if code == ipguard.EConfig {
		return &ipguard.Error{Code: code, Err: err, Message: fmt.Sprintf("%s: %s: %v", where, fix, err)}
	}
	return &ipguard.Error{Code: code, Message: where + ": " + err.Error(), Err: err}
}

// Code classifies err; for EConfig, fix says what to check.
func Code(err error) (code ipguard.Code, fix string) {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		c := apiErr.ErrorCode()
		switch {
		case strings.HasPrefix(c, "AccessDenied"), c == "AuthorizationError", c == "AuthorizationErrorException":
			return ipguard.EConfig, "access denied: the function's role lacks the permission for this call on this resource (see the template's policies)"
		case strings.HasPrefix(c, "KMS"), c == "DecryptionFailure":
			return ipguard.EConfig, "the KMS key of this resource refused the function's role: it needs kms:Decrypt/GenerateDataKey on that key"
		case c == "UnrecognizedClientException", c == "InvalidClientTokenId", c == "InvalidSignatureException",
			strings.HasPrefix(c, "ExpiredToken"), c == "MissingAuthenticationToken":
			return ipguard.EConfig, "the AWS credentials were refused (check the function's role, the region and the account)"
		case strings.HasPrefix(c, "ResourceNotFound"), strings.HasPrefix(c, "NotFound"), c == "NoSuchBucket":
			return ipguard.EConfig, "not found: check the name or ARN, the account and the region"
		case c == "ValidationException", strings.HasPrefix(c, "InvalidParameter"):
			return ipguard.EConfig, "the request was refused as invalid for this resource: check that it is the one the template creates (name, type, key schema)"
		case isTransient(c):
			return ipguard.EUnavailable, ""
		}
	}
	var re *awshttp.ResponseError
	if errors.As(err, &re) && re.HTTPStatusCode() >= 500 {
		return ipguard.EUnavailable, ""
	}
	if apiErr != nil && apiErr.ErrorFault() == smithy.FaultServer {
		return ipguard.EUnavailable, ""
	}
	if apiErr == nil {
		// No answer from the service: the request was not sent, the
		// connection failed or the time ran out.
		var dns *net.DNSError
		if errors.As(err, &dns) && dns.IsNotFound {
			return ipguard.EConfig, "the AWS endpoint's host name does not resolve (check the region and AWS_ENDPOINT_URL)"
		}
		return ipguard.EUnavailable, ""
	}
	return ipguard.EInternal, ""
}

func isTransient(code string) bool {
	switch code {
	case "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
		"TooManyRequestsException", "ProvisionedThroughputExceededException", "RequestLimitExceeded",
		"RequestThrottled", "SlowDown", "LimitExceededException", "TransactionInProgressException",
		"ServiceUnavailable", "InternalServerError", "InternalFailure", "InternalError",
		"InternalErrorException", "InternalServiceErrorException", "ServiceUnavailableException":
		return true
	}
	return false
}
