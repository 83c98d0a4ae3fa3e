package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"ipguard/internal/replay"
)

// The README's replay command (go run ./cmd/replay) against a queue holding
// what Lambda and EventBridge put there: an on-failure record, an undelivered
// EventBridge event, and a request that fails again.
func TestReplayOfFailedOnboardings(t *testing.T) {
	ctx := context.Background()
	s := deploy(t)
	fn := startFunction(t, "onboard", s.FunctionEnv())
	q, err := s.SQS.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("onboard-failures")})
	if err != nil {
		t.Fatal(err)
	}
	jane := map[string]any{"id": janeID, "email": "jane.roe@example.com", "allowedIps": []string{"203.0.113.10"}}
	record := map[string]any{ // as Lambda writes it to an on-failure destination
		"version": "1.0", "timestamp": time.Now().UTC().Format(time.RFC3339),
		"requestContext": map[string]any{"requestId": "r1", "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:onboard:$LATEST",
			"condition": "RetriesExhausted", "approximateInvokeCount": 3},
		"requestPayload":  jane,
		"responseContext": map[string]any{"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
		"responsePayload": map[string]any{"errorType": "DependencyUnavailable", "errorMessage": "docspace: put ip restrictions: HTTP 503"},
	}
	event := map[string]any{ // as the rule's dead-letter queue holds it
		"version": "0", "id": "evt-1", "detail-type": "UserOnboarded", "source": "hr.onboarding", "account": "123456789012",
		"time": time.Now().UTC().Format(time.RFC3339), "region": "us-east-1", "resources": []string{},
		"detail": map[string]any{"id": "user-2", "email": "sam@example.com", "allowedIps": []string{"198.51.100.9"}},
	}
	bad := map[string]any{"requestContext": map[string]any{"condition": "RetriesExhausted"}, "requestPayload": map[string]any{"id": "user-3"}}
	for _, body := range []any{record, event, bad} {
		b, _ := json.Marshal(body)
		if _, err := s.SQS.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: q.QueueUrl, MessageBody: aws.String(string(b))}); err != nil {
			t.Fatal(err)
		}
	}

	var dry bytes.Buffer
	sum, err := replay.Run(ctx, s.SQS, nil, replay.Options{QueueURL: *q.QueueUrl, DryRun: true, Out: &dry, Max: 3})
	if err != nil || sum.Seen != 3 || !strings.Contains(dry.String(), "RetriesExhausted") || !strings.Contains(dry.String(), "DependencyUnavailable") {
		t.Fatalf("dry run: %+v %v\n%s", sum, err, dry.String())
	}

	var out bytes.Buffer
	inv := replay.Lambda{Config: s.AWS, Function: "function", Endpoint: fn.emu.URL}
	sum, err = replay.Run(ctx, s.SQS, inv, replay.Options{QueueURL: *q.QueueUrl, Out: &out, Max: 10})
	if err != nil || sum.Replayed != 2 || sum.Failed != 1 {
		t.Fatalf("replay = %+v, %v; want 2 replayed, 1 failed again\n%s", sum, err, out.String())
	}
	for _, id := range []string{janeID, "user-2"} {
		if _, ok, err := s.Store.GetUser(ctx, id); err != nil || !ok {
			t.Errorf("user %s not onboarded by the replay (%v)", id, err)
		}
	}
	attrs, err := s.SQS.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: q.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameApproximateNumberOfMessages}})
	if err != nil || attrs.Attributes["ApproximateNumberOfMessages"] != "1" {
		t.Errorf("queue holds %v messages (%v), want the one that failed again", attrs.Attributes, err)
	}
}
