package replay

import (
	"bytes"
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// Lambda invokes a function through the Lambda Invoke API with the SDK's
// Lambda client (synchronous, with the caller's credentials: it needs
// lambda:InvokeFunction).
type Lambda struct {
	Config   aws.Config
	Function string // name or ARN
	// Endpoint is the Lambda API base URL; empty means what Config says
	// (AWS_ENDPOINT_URL_LAMBDA, AWS_ENDPOINT_URL, or the region's endpoint).
	Endpoint string
}

// Invoke implements Invoker.
func (l Lambda) Invoke(ctx context.Context, payload []byte) ([]byte, string, error) {
	client := lambda.NewFromConfig(l.Config, func(o *lambda.Options) {
		// One attempt, as before: a failed invoke leaves the message in the
		// queue for the next replay, and the operator sees why.
		o.RetryMaxAttempts = 1
		if l.Endpoint != "" {
			o.BaseEndpoint = aws.String(l.Endpoint)
		}
	})
	out, err := client.Invoke(ctx, &lambda.InvokeInput{
		FunctionName:   aws.String(l.Function),
		InvocationType: types.InvocationTypeRequestResponse,
		Payload:        payload,
	})
	if err != nil {
		return nil, "", fmt.Errorf("lambda invoke %s: %w", l.Function, err)
	}
	fnErr := aws.ToString(out.FunctionError)
	body := out.Payload
	if fnErr == "" && bytes.Contains(body, []byte(`"errorType"`)) && bytes.HasPrefix(bytes.TrimSpace(body), []byte("{")) {
		// The Lambda emulator does not set X-Amz-Function-Error; its error
		// response has the same body.
		fnErr = "Unhandled"
	}
	return body, fnErr, nil
}
