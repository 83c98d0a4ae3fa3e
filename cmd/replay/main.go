// Command replay sends failed onboardings again (see package replay):
//
//	go run ./cmd/replay -queue <OnboardFailureQueueUrl or OnboardRuleDeadLetterQueueUrl> -function <OnboardFunction name> [-dry-run] [-max N]
//
// It uses the standard AWS configuration (profile, region, AWS_ENDPOINT_URL_SQS,
// AWS_ENDPOINT_URL_LAMBDA) and needs sqs:ReceiveMessage, sqs:DeleteMessage,
// sqs:ChangeMessageVisibility on the queue and lambda:InvokeFunction on the function.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"ipguard/internal/replay"
)

func main() {
	queue := flag.String("queue", "", "URL of the on-failure queue or the rule's dead-letter queue (stack outputs)")
	function := flag.String("function", "", "name or ARN of the onboarding function")
	dry := flag.Bool("dry-run", false, "only show each message's error and payload; change nothing")
	max := flag.Int("max", 100, "replay at most this many messages")
	flag.Parse()
	if *queue == "" || (*function == "" && !*dry) {
		fmt.Fprintln(os.Stderr, "usage: replay -queue URL -function NAME [-dry-run] [-max N]")
		os.Exit(2)
	}
	ctx := context.Background()
	cfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "replay: AWS configuration:", err)
		os.Exit(1)
	}
	sum, err := replay.Run(ctx, sqs.NewFromConfig(cfg), replay.Lambda{Config: cfg, Function: *function},
		replay.Options{QueueURL: *queue, DryRun: *dry, Max: *max, Out: os.Stdout})
	fmt.Printf("%d messages: %d replayed, %d failed again (kept in the queue)\n", sum.Seen, sum.Replayed, sum.Failed)
	if err != nil {
		fmt.Fprintln(os.Stderr, "replay:", err)
		os.Exit(1)
	}
	if sum.Failed > 0 {
		os.Exit(1)
	}
}
