package localdeploy

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// Delivered is one alert as the SQS mailbox received it from SNS: the
// "default" body of the published message.
type Delivered struct {
	MessageID string
	Subject   string
	Message   string
	// Attributes are the message attributes by name (their string values).
	Attributes map[string]string
}

// Mail drains the mailbox queue: it returns every message that arrives
// until the queue stays empty for quiet (SNS delivers to SQS synchronously
// in moto, so a short quiet period is enough).
func (s *Stack) Mail(ctx context.Context, quiet time.Duration) ([]Delivered, error) {
	var out []Delivered
	deadline := time.Now().Add(quiet)
	for time.Now().Before(deadline) {
		r, err := s.SQS.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(s.QueueURL), MaxNumberOfMessages: 10, WaitTimeSeconds: 0})
		if err != nil {
			return nil, fmt.Errorf("receive from mailbox: %w", err)
		}
		if len(r.Messages) == 0 {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		for _, m := range r.Messages {
			var env struct {
				MessageId, Subject, Message string
				MessageAttributes           map[string]struct{ Type, Value string }
			}
			if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &env); err != nil {
				return nil, fmt.Errorf("mailbox message is not an SNS envelope: %w", err)
			}
			d := Delivered{MessageID: env.MessageId, Subject: env.Subject, Message: env.Message, Attributes: map[string]string{}}
			for k, v := range env.MessageAttributes {
				d.Attributes[k] = v.Value
			}
			out = append(out, d)
			if _, err := s.SQS.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(s.QueueURL), ReceiptHandle: m.ReceiptHandle}); err != nil {
				return nil, fmt.Errorf("delete from mailbox: %w", err)
			}
		}
		deadline = time.Now().Add(quiet)
	}
	return out, nil
}
