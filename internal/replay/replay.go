// Package replay sends failed onboardings again: it reads the messages of
// the onboarding function's on-failure queue (Lambda's invocation records)
// or of its EventBridge rule's dead-letter queue (the undelivered events),
// invokes the function with each original payload, and deletes a message
// only when the invocation succeeded. `go run ./cmd/replay` is the command.
package replay

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"ipguard/internal/eventbridge"
	"ipguard/internal/onboard"
)

// SQS is the part of *sqs.Client replay uses.
type SQS interface {
	ReceiveMessage(context.Context, *sqs.ReceiveMessageInput, ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
	DeleteMessage(context.Context, *sqs.DeleteMessageInput, ...func(*sqs.Options)) (*sqs.DeleteMessageOutput, error)
	ChangeMessageVisibility(context.Context, *sqs.ChangeMessageVisibilityInput, ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error)
}

// Invoker invokes the function synchronously with payload. functionError
// is non-empty when the function itself failed (its error response is out).
type Invoker interface {
	Invoke(ctx context.Context, payload []byte) (out []byte, functionError string, err error)
}

// Options configure Run.
type Options struct {
	QueueURL string
	DryRun   bool      // only show each message's error and payload
	Max      int       // at most this many messages (default 100)
	Out      io.Writer // one line per message
}

// Summary counts what Run did.
type Summary struct {
	Seen, Replayed, Failed int
}

// record is what Lambda writes to an on-failure destination.
type record struct {
	Timestamp      string `json:"timestamp"` // when the invocation finally failed
	RequestContext *struct {
		RequestID              string `json:"requestId"` // the invocation's, the same on Lambda's retries
		Condition              string `json:"condition"`
		ApproximateInvokeCount int    `json:"approximateInvokeCount"`
	} `json:"requestContext"`
	RequestPayload  json.RawMessage `json:"requestPayload"`
	ResponsePayload json.RawMessage `json:"responsePayload"`
}

// Payload returns the payload to invoke the function with for a message
// body, and what went wrong the first time: an on-failure record yields its
// requestPayload and responsePayload; anything else (an EventBridge event
// from the rule's dead-letter queue) is the payload itself.
func Payload(body string) (payload []byte, failure string) {
	var r record
	if json.Unmarshal([]byte(body), &r) == nil && r.RequestContext != nil && len(r.RequestPayload) > 0 {
		failure = r.RequestContext.Condition
		if len(r.ResponsePayload) > 0 && string(r.ResponsePayload) != "null" {
			failure += " " + string(r.ResponsePayload)
		}
		return withRequestedAt(r.RequestPayload, r.Timestamp, r.RequestContext.RequestID), strings.TrimSpace(failure)
	}
	return []byte(body), ""
}

// timedActions are the onboarding actions that take a requestedAt.
var timedActions = map[string]bool{onboard.ActionReplace: true, onboard.ActionAdd: true, onboard.ActionRemove: true, onboard.ActionOffboard: true}

// withRequestedAt gives a direct change request without a requestedAt the
// time its on-failure record was written (failedAt): the request was made
// no later than that, so a change made after the failure (an offboarding,
// a remove) stays newer than the replay and is not undone by it; without
// it the function would take the replay's own time. It also names the
// invocation it replays (replayOf: requestID, when the record has one):
// the function dates the replay by that invocation's first arrival, which
// it remembers as long as the queue keeps the message, so a change made
// between the original request and its failure (at most the function's
// maximum event age) stays newer too. An EventBridge event
// (it carries its own time), another action, a payload that has a time,
// or one that cannot be read is returned unchanged. The payload is read
// as the function reads it (onboard.DecodeRequest: keys in any case, the
// action trimmed and in any case), so that "Offboard" is an offboarding
// here too; a key that spells requestedAt otherwise and holds no time is
// replaced, never doubled.
func withRequestedAt(payload []byte, failedAt, requestID string) []byte {
	at, err := time.Parse(time.RFC3339Nano, failedAt)
	if err != nil {
		return payload
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(payload, &obj) != nil || obj == nil {
		return payload
	}
	if _, ok, err := eventbridge.Decode(payload); ok || err != nil {
		return payload
	}
	if _, ok := obj["detail"]; ok {
		return payload // an event, whatever else it lacks
	}
	req, err := onboard.DecodeRequest(payload)
	if err != nil || !req.RequestedAt.IsZero() || !timedActions[req.Action] {
		return payload
	}
	for k := range obj {
		if strings.EqualFold(k, "requestedAt") {
			delete(obj, k)
		}
	}
	obj["requestedAt"], _ = json.Marshal(at.UTC().Format(time.RFC3339Nano))
	if id := strings.TrimSpace(requestID); id != "" {
		for k := range obj {
			if strings.EqualFold(k, "replayOf") {
				delete(obj, k)
			}
		}
		obj["replayOf"], _ = json.Marshal(id)
	}
	out, err := json.Marshal(obj)
	if err != nil {
		return payload
	}
	return out
}

// Run replays the queue's messages, each at most once per call and at most
// opts.Max in all. A message whose invocation fails again stays in the
// queue (visible again at once), as does every message of a dry run.
func Run(ctx context.Context, q SQS, inv Invoker, opts Options) (Summary, error) {
	var sum Summary
	if opts.Max <= 0 {
		opts.Max = 100
	}
	out := opts.Out
	if out == nil {
		out = io.Discard
	}
	seen := map[string]bool{}
	for sum.Seen < opts.Max {
		res, err := q.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(opts.QueueURL), MaxNumberOfMessages: int32(min(10, opts.Max-sum.Seen)),
			VisibilityTimeout: 120, WaitTimeSeconds: 1,
			MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll},
			MessageAttributeNames:       []string{"All"},
		})
		if err != nil {
			return sum, fmt.Errorf("receive from %s: %w", opts.QueueURL, err)
		}
		fresh := 0
		for _, m := range res.Messages {
			id := aws.ToString(m.MessageId)
			if seen[id] { // one that failed again and is visible again: this pass is done
				release(ctx, q, opts.QueueURL, m)
				continue
			}
			seen[id] = true
			fresh++
			sum.Seen++
			payload, failure := Payload(aws.ToString(m.Body))
			if failure == "" {
				failure = attr(m, "ERROR_CODE") + " " + attr(m, "ERROR_MESSAGE")
			}
			if opts.DryRun {
				fmt.Fprintf(out, "message %s: failed: %s\n  payload: %s\n", id, strings.TrimSpace(failure), payload)
				release(ctx, q, opts.QueueURL, m)
				continue
			}
			result, fnErr, err := inv.Invoke(ctx, payload)
			switch {
			case err != nil:
				sum.Failed++
				fmt.Fprintf(out, "message %s: not replayed, invoke failed: %v (kept)\n", id, err)
				release(ctx, q, opts.QueueURL, m)
			case fnErr != "":
				sum.Failed++
				fmt.Fprintf(out, "message %s: the function failed again (%s): %s (kept)\n", id, fnErr, result)
				release(ctx, q, opts.QueueURL, m)
			default:
				if _, err := q.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(opts.QueueURL), ReceiptHandle: m.ReceiptHandle}); err != nil {
					return sum, fmt.Errorf("message %s was replayed but could not be deleted (replaying it again is harmless: onboarding is idempotent): %w", id, err)
				}
				sum.Replayed++
				fmt.Fprintf(out, "message %s: replayed: %s\n", id, result)
			}
		}
		if fresh == 0 {
			return sum, nil
		}
	}
	return sum, nil
}

func attr(m types.Message, name string) string {
	if v, ok := m.MessageAttributes[name]; ok {
		return aws.ToString(v.StringValue)
	}
	return ""
}

// release makes a message visible again at once.
func release(ctx context.Context, q SQS, url string, m types.Message) {
	_, _ = q.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: aws.String(url), ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: 0})
}
