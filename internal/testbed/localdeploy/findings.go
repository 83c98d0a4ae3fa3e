package localdeploy

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// Where findings go, locally (#18): a findings bus with the README's
// "everything but the test alert" rule delivering to an SQS queue (a SIEM
// stand-in), and the login archive bucket.
const (
	BusName       = "docspace-ip-guard-findings"
	SIEMQueueName = "docspace-ip-guard-siem"
	ArchiveBucket = "docspace-ip-guard-logins"
	// SIEMPattern is the README's "everything to a log archive" rule.
	SIEMPattern = `{"source":["docspace-ip-guard"],"detail-type":["DocSpace IP Guard Finding"],"detail":{"test":[{"exists":false}]}}`
)

// Findings are the local findings destinations (StartFindings).
type Findings struct {
	Bus, SIEMQueueURL, Bucket string
	s3                        *s3.Client
}

// StartFindings creates the findings bus with its rule and queue and the
// archive bucket, and makes FunctionEnv name them (FINDINGS_BUS_NAME,
// ARCHIVE_BUCKET).
func (s *Stack) StartFindings(ctx context.Context) error {
	eb := eventbridge.NewFromConfig(s.AWS)
	if _, err := eb.CreateEventBus(ctx, &eventbridge.CreateEventBusInput{Name: aws.String(BusName)}); err != nil {
		return fmt.Errorf("create event bus: %w", err)
	}
	q, err := s.SQS.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(SIEMQueueName)})
	if err != nil {
		return fmt.Errorf("create queue: %w", err)
	}
	at, err := s.SQS.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: q.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
	if err != nil {
		return fmt.Errorf("queue ARN: %w", err)
	}
	if _, err := eb.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String("all-findings"), EventBusName: aws.String(BusName), EventPattern: aws.String(SIEMPattern)}); err != nil {
		return fmt.Errorf("put rule: %w", err)
	}
	if _, err := eb.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String("all-findings"), EventBusName: aws.String(BusName),
		Targets: []ebtypes.Target{{Id: aws.String("siem"), Arn: aws.String(at.Attributes[string(sqstypes.QueueAttributeNameQueueArn)])}}}); err != nil {
		return fmt.Errorf("put targets: %w", err)
	}
	c := s3.NewFromConfig(s.AWS, func(o *s3.Options) { o.UsePathStyle, o.DisableLogOutputChecksumValidationSkipped = true, true })
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(ArchiveBucket)}); err != nil {
		return fmt.Errorf("create bucket: %w", err)
	}
	s.findings = &Findings{Bus: BusName, SIEMQueueURL: aws.ToString(q.QueueUrl), Bucket: ArchiveBucket, s3: c}
	return nil
}

// BusEvent is one event the SIEM queue received from the bus.
type BusEvent struct {
	ID         string         `json:"id"`
	DetailType string         `json:"detail-type"`
	Source     string         `json:"source"`
	Time       string         `json:"time"`
	Detail     map[string]any `json:"detail"`
}

// BusEvents reads (and deletes) what the SIEM queue holds, waiting up to
// wait for the first.
func (s *Stack) BusEvents(ctx context.Context, wait time.Duration) ([]BusEvent, error) {
	if s.findings == nil {
		return nil, fmt.Errorf("StartFindings was not called")
	}
	var out []BusEvent
	for {
		r, err := s.SQS.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(s.findings.SIEMQueueURL), MaxNumberOfMessages: 10,
			WaitTimeSeconds: int32(wait / time.Second)})
		if err != nil {
			return nil, err
		}
		if len(r.Messages) == 0 {
			return out, nil
		}
		wait = 0
		for _, m := range r.Messages {
			var e BusEvent
			if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &e); err != nil {
				return nil, fmt.Errorf("bus event %s: %w", aws.ToString(m.Body), err)
			}
			out = append(out, e)
			_, _ = s.SQS.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(s.findings.SIEMQueueURL), ReceiptHandle: m.ReceiptHandle})
		}
	}
}

// ArchiveObject is one object of the login archive and its records.
type ArchiveObject struct {
	Key     string
	Records []map[string]any
}

// Archive lists the archive's objects, by key, with their records.
func (s *Stack) Archive(ctx context.Context) ([]ArchiveObject, error) {
	if s.findings == nil {
		return nil, fmt.Errorf("StartFindings was not called")
	}
	c := s.findings.s3
	l, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(s.findings.Bucket)})
	if err != nil {
		return nil, err
	}
	var out []ArchiveObject
	for _, o := range l.Contents {
		g, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.findings.Bucket), Key: o.Key})
		if err != nil {
			return nil, err
		}
		body, err := io.ReadAll(g.Body)
		g.Body.Close()
		if err != nil {
			return nil, err
		}
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			return nil, fmt.Errorf("%s is not gzip: %w", aws.ToString(o.Key), err)
		}
		raw, err := io.ReadAll(zr)
		if err != nil {
			return nil, err
		}
		obj := ArchiveObject{Key: aws.ToString(o.Key)}
		for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
			var m map[string]any
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				return nil, fmt.Errorf("%s: a line is not JSON: %w", obj.Key, err)
			}
			obj.Records = append(obj.Records, m)
		}
		out = append(out, obj)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}
