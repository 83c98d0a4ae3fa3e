package snsalert

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"ipguard/internal/awserr"
)

// ListAPI is the subset of *sns.Client Subscriptions uses.
type ListAPI interface {
	ListSubscriptionsByTopic(context.Context, *sns.ListSubscriptionsByTopicInput, ...func(*sns.Options)) (*sns.ListSubscriptionsByTopicOutput, error)
}

// Subscriptions counts who receives the alert topic's messages. It needs
// sns:ListSubscriptionsByTopic on the topic.
type Subscriptions struct {
	api   ListAPI
	topic string
}

// NewSubscriptions returns the subscriptions of the topic with ARN topicARN.
func NewSubscriptions(api ListAPI, topicARN string) *Subscriptions {
	return &Subscriptions{api: api, topic: topicARN}
}

// Subscribers counts the topic's subscriptions, every page: confirmed ones
// (SNS delivers to them) and those still waiting for their owner to confirm
// (SubscriptionArn "PendingConfirmation"). One being deleted ("Deleted")
// counts as neither. Errors are classified like Publish's (package awserr:
// EConfig naming ALERT_TOPIC_ARN for a missing topic or a denied call,
// EUnavailable for throttling or no answer).
func (s *Subscriptions) Subscribers(ctx context.Context) (confirmed, pending int, err error) {
	in := &sns.ListSubscriptionsByTopicInput{TopicArn: aws.String(s.topic)}
	for {
		out, err := s.api.ListSubscriptionsByTopic(ctx, in)
		if err != nil {
			return 0, 0, awserr.Classify(err, "list subscriptions", awserr.Resource{Service: "sns", Field: "ALERT_TOPIC_ARN", Value: s.topic})
		}
		for _, sub := range out.Subscriptions {
			switch arn := aws.ToString(sub.SubscriptionArn); arn {
			case "PendingConfirmation":
				pending++
			case "Deleted", "":
			default:
				confirmed++
			}
		}
		if aws.ToString(out.NextToken) == "" {
			return confirmed, pending, nil
		}
		in.NextToken = out.NextToken
	}
}
