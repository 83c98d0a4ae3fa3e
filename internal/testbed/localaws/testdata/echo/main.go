// Command echo is a test-only Lambda function: it returns its input event
// unchanged, or fails when the event has "fail": true.
package main

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/aws/aws-lambda-go/lambda"
)

func handle(_ context.Context, in json.RawMessage) (json.RawMessage, error) {
	var probe struct {
		Fail bool `json:"fail"`
	}
	_ = json.Unmarshal(in, &probe)
	if probe.Fail {
		return nil, errors.New("echo: asked to fail")
	}
	return in, nil
}

func main() { lambda.Start(handle) }
