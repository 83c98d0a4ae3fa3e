package snsalert

import (
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sns/types"

	"ipguard/internal/ipguard"
)

// pagedSubscriptions serves subscription ARNs two per page.
type pagedSubscriptions struct {
	arns  []string
	calls int
	err   error
}

func (p *pagedSubscriptions) ListSubscriptionsByTopic(_ context.Context, in *sns.ListSubscriptionsByTopicInput, _ ...func(*sns.Options)) (*sns.ListSubscriptionsByTopicOutput, error) {
	p.calls++
	if p.err != nil {
		return nil, p.err
	}
	start := 0
	if in.NextToken != nil {
		start = int(aws.ToString(in.NextToken)[0] - '0')
	}
	out := &sns.ListSubscriptionsByTopicOutput{}
	for i := start; i < len(p.arns) && i < start+2; i++ {
		out.Subscriptions = append(out.Subscriptions, types.Subscription{SubscriptionArn: aws.String(p.arns[i])})
	}
	if start+2 < len(p.arns) {
		out.NextToken = aws.String(string(rune('0' + start + 2)))
	}
	return out, nil
}

func TestSubscribersCountsConfirmedOnEveryPage(t *testing.T) {
	sub := "arn:aws:sns:us-east-1:123456789012:alerts:6b0e71bd"
	tests := []struct {
		name               string
		arns               []string
		confirmed, pending int
	}{
		{"none", nil, 0, 0},
		{"only pending", []string{"PendingConfirmation"}, 0, 1},
		{"over three pages", []string{sub, "PendingConfirmation", "Deleted", sub, sub}, 3, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := &pagedSubscriptions{arns: tt.arns}
			c, p, err := NewSubscriptions(api, "arn:aws:sns:us-east-1:123456789012:alerts").Subscribers(context.Background())
			if err != nil || c != tt.confirmed || p != tt.pending {
				t.Errorf("got %d confirmed, %d pending, %v; want %d, %d", c, p, err, tt.confirmed, tt.pending)
			}
		})
	}
	_, _, err := NewSubscriptions(&pagedSubscriptions{err: errors.New("boom")}, "arn:x").Subscribers(context.Background())
	if err == nil || ipguard.ErrorCode(err) == "" {
		t.Errorf("a failed list: %v, want a classified error", err)
	}
}
