package snsalert_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"ipguard/internal/audit"
	"ipguard/internal/ipguard"
	"ipguard/internal/redact"
	"ipguard/internal/snsalert"
	"ipguard/internal/testbed/localaws"
)

var (
	_ audit.Publisher = (*snsalert.Publisher)(nil)
	_ snsalert.API    = (*sns.Client)(nil)
)

const topic = "arn:aws:sns:us-east-1:123456789012:alerts"

// fakeSNS records the input of Publish and the options it was called with,
// and answers with out or err.
type fakeSNS struct {
	in   *sns.PublishInput
	opts sns.Options
	err  error
}

func (f *fakeSNS) Publish(_ context.Context, in *sns.PublishInput, optFns ...func(*sns.Options)) (*sns.PublishOutput, error) {
	f.in = in
	f.opts = sns.Options{RetryMaxAttempts: 3}
	for _, fn := range optFns {
		fn(&f.opts)
	}
	if f.err != nil {
		return nil, f.err
	}
	return &sns.PublishOutput{MessageId: aws.String("m-1")}, nil
}

// The severity and kinds travel as message attributes (for filter
// policies), and Publish is never retried by the SDK (a resend after a lost
// answer would deliver twice).
func TestPublishSetsAttributesAndMakesOneAttempt(t *testing.T) {
	f := &fakeSNS{}
	_, err := snsalert.New(f, topic).Publish(context.Background(), ipguard.Alert{Default: "d", Severity: "high", Kinds: []string{"ip_not_allowed", "unknown_user"}})
	if err != nil {
		t.Fatal(err)
	}
	sev, kinds := f.in.MessageAttributes["severity"], f.in.MessageAttributes["kinds"]
	if aws.ToString(sev.DataType) != "String" || aws.ToString(sev.StringValue) != "high" {
		t.Errorf("severity attribute = %+v", sev)
	}
	if aws.ToString(kinds.DataType) != "String.Array" || aws.ToString(kinds.StringValue) != `["ip_not_allowed","unknown_user"]` {
		t.Errorf("kinds attribute = %+v", kinds)
	}
	if f.opts.RetryMaxAttempts != 1 {
		t.Errorf("RetryMaxAttempts = %d, want 1 (no SDK resend of Publish)", f.opts.RetryMaxAttempts)
	}
}

func TestPublishSendsOneBodyPerProtocol(t *testing.T) {
	tests := []struct {
		name        string
		alert       ipguard.Alert
		wantMessage string
		wantSubject *string
	}{
		{
			name:        "default only",
			alert:       ipguard.Alert{Subject: "s", Default: "d"},
			wantMessage: `{"default":"d"}`,
			wantSubject: aws.String("s"),
		},
		{
			name:        "every protocol",
			alert:       ipguard.Alert{Subject: "s", Default: "d", Email: "e", SMS: "m"},
			wantMessage: `{"default":"d","email":"e","sms":"m"}`,
			wantSubject: aws.String("s"),
		},
		{
			name:        "sms without email",
			alert:       ipguard.Alert{Subject: "s", Default: "d", SMS: "m"},
			wantMessage: `{"default":"d","sms":"m"}`,
			wantSubject: aws.String("s"),
		},
		{
			name:        "no subject is sent as none",
			alert:       ipguard.Alert{Default: "d"},
			wantMessage: `{"default":"d"}`,
		},
		{
			name:        "text is not HTML-escaped",
			alert:       ipguard.Alert{Subject: "s", Default: "a <b> & \"c\"\nnext"},
			wantMessage: `{"default":"a <b> & \"c\"\nnext"}`,
			wantSubject: aws.String("s"),
		},
		{
			name:        "99 characters of subject are allowed however many bytes",
			alert:       ipguard.Alert{Subject: strings.Repeat("é", 99), Default: "d"},
			wantMessage: `{"default":"d"}`,
			wantSubject: aws.String(strings.Repeat("é", 99)),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeSNS{}
			id, err := snsalert.New(f, topic).Publish(context.Background(), tt.alert)
			if err != nil || id != "m-1" {
				t.Fatalf("Publish = %q, %v; want m-1, nil", id, err)
			}
			if got := aws.ToString(f.in.TopicArn); got != topic {
				t.Errorf("TopicArn = %q", got)
			}
			if got := aws.ToString(f.in.MessageStructure); got != "json" {
				t.Errorf("MessageStructure = %q, want json", got)
			}
			if got := aws.ToString(f.in.Message); got != tt.wantMessage {
				t.Errorf("Message = %s, want %s", got, tt.wantMessage)
			}
			if aws.ToString(f.in.Subject) != aws.ToString(tt.wantSubject) || (f.in.Subject == nil) != (tt.wantSubject == nil) {
				t.Errorf("Subject = %v, want %v", f.in.Subject, tt.wantSubject)
			}
		})
	}
}

func TestPublishRejectsWhatSNSWouldRefuseWithoutSending(t *testing.T) {
	tests := []struct {
		name  string
		alert ipguard.Alert
	}{
		{"empty default", ipguard.Alert{Subject: "s", Email: "e"}},
		{"subject of 100 characters (SNS: less than 100)", ipguard.Alert{Subject: strings.Repeat("a", 100), Default: "d"}},
		{"subject with a line break", ipguard.Alert{Subject: "a\nb", Default: "d"}},
		{"message over 256 KiB", ipguard.Alert{Subject: "s", Default: strings.Repeat("x", 262144-len(`{"default":""}`)+1)}},
		{"escaping counts towards the size", ipguard.Alert{Subject: "s", Default: strings.Repeat("\n", 131072)}},
		{"attributes count towards the size", ipguard.Alert{Subject: "s", Default: strings.Repeat("x", 262144-len(`{"default":""}`)), Severity: "high"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeSNS{}
			_, err := snsalert.New(f, topic).Publish(context.Background(), tt.alert)
			if code := ipguard.ErrorCode(err); code != ipguard.EInternal {
				t.Errorf("code = %q (%v), want %q", code, err, ipguard.EInternal)
			}
			if f.in != nil {
				t.Errorf("Publish was sent")
			}
		})
	}

	t.Run("message of exactly 256 KiB is sent", func(t *testing.T) {
		f := &fakeSNS{}
		a := ipguard.Alert{Subject: "s", Default: strings.Repeat("x", 262144-len(`{"default":""}`))}
		if _, err := snsalert.New(f, topic).Publish(context.Background(), a); err != nil {
			t.Fatal(err)
		}
		if n := len(aws.ToString(f.in.Message)); n != 262144 {
			t.Errorf("sent %d bytes", n)
		}
	})
}

func TestPublishFailureIsUnavailableNamingTheTopic(t *testing.T) {
	f := &fakeSNS{err: errors.New("connection refused")}
	_, err := snsalert.New(f, topic).Publish(context.Background(), ipguard.Alert{Default: "d"})
	if code := ipguard.ErrorCode(err); code != ipguard.EUnavailable {
		t.Errorf("code = %q, want %q", code, ipguard.EUnavailable)
	}
	if want := "sns: publish (ALERT_TOPIC_ARN=" + topic + "): connection refused"; err == nil || err.Error() != want {
		t.Errorf("error = %v, want %q", err, want)
	}
}

// TestPublishThroughMoto delivers to an SQS queue subscribed to a moto topic
// and reads the SNS envelope back.
func TestPublishThroughMoto(t *testing.T) {
	ctx := context.Background()
	cfg := localaws.MotoConfigT(t)
	snsc := sns.NewFromConfig(cfg)
	sqsc := sqs.NewFromConfig(cfg)

	tp, err := snsc.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String("ipguard-alerts")})
	if err != nil {
		t.Fatal(err)
	}
	q, err := sqsc.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("alerts-inbox")})
	if err != nil {
		t.Fatal(err)
	}
	attrs, err := sqsc.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl:       q.QueueUrl,
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := snsc.Subscribe(ctx, &sns.SubscribeInput{
		TopicArn: tp.TopicArn,
		Protocol: aws.String("sqs"),
		Endpoint: aws.String(attrs.Attributes[string(sqstypes.QueueAttributeNameQueueArn)]),
	}); err != nil {
		t.Fatal(err)
	}

	alert := ipguard.Alert{
		Subject: "IP Guard: 2 logins from addresses not on the allowlist — ü",
		Default: "user u1 logged in from 203.0.113.9 <not allowed> & more",
		Email:   "Dear admin,\n\nuser u1 ...",
		SMS:     "IP Guard: 2 logins",
	}
	id, err := snsalert.New(snsc, aws.ToString(tp.TopicArn)).Publish(ctx, alert)
	if err != nil {
		t.Fatal(err)
	}
	if id == "" {
		t.Error("Publish returned an empty message id")
	}

	got, err := sqsc.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
		QueueUrl:            q.QueueUrl,
		MaxNumberOfMessages: 10,
		WaitTimeSeconds:     5,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Messages) != 1 {
		t.Fatalf("queue holds %d messages, want 1", len(got.Messages))
	}
	var env struct {
		Type, MessageId, TopicArn, Subject, Message string
	}
	body := aws.ToString(got.Messages[0].Body)
	if err := json.Unmarshal([]byte(body), &env); err != nil {
		t.Fatalf("body %s: %v", body, err)
	}
	want := struct{ Type, MessageId, TopicArn, Subject, Message string }{
		"Notification", id, aws.ToString(tp.TopicArn), alert.Subject, alert.Default,
	}
	if env != want {
		t.Errorf("envelope = %+v\nwant %+v", env, want)
	}

	t.Run("the SMS filter policy drops a medium-only message", func(t *testing.T) {
		// The template's SMS subscription policy with its default
		// (AlertSmsSeverities = high,critical), on an SQS stand-in.
		q2, err := sqsc.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("sms-stand-in")})
		if err != nil {
			t.Fatal(err)
		}
		a2, err := sqsc.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: q2.QueueUrl,
			AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := snsc.Subscribe(ctx, &sns.SubscribeInput{TopicArn: tp.TopicArn, Protocol: aws.String("sqs"),
			Endpoint:   aws.String(a2.Attributes[string(sqstypes.QueueAttributeNameQueueArn)]),
			Attributes: map[string]string{"FilterPolicy": `{"severity":["high","critical"]}`, "FilterPolicyScope": "MessageAttributes"}}); err != nil {
			t.Fatal(err)
		}
		pub := snsalert.New(snsc, aws.ToString(tp.TopicArn))
		if _, err := pub.Publish(ctx, ipguard.Alert{Default: "medium run", Severity: "medium", Kinds: []string{"unknown_user"}}); err != nil {
			t.Fatal(err)
		}
		if _, err := pub.Publish(ctx, ipguard.Alert{Default: "critical run", Severity: "critical", Kinds: []string{"password_guess_succeeded"}}); err != nil {
			t.Fatal(err)
		}
		got, err := sqsc.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: q2.QueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 2})
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Messages) != 1 || !strings.Contains(aws.ToString(got.Messages[0].Body), "critical run") {
			var bodies []string
			for _, m := range got.Messages {
				bodies = append(bodies, aws.ToString(m.Body))
			}
			t.Fatalf("the filtered subscription got %d messages %v, want only the critical one", len(got.Messages), bodies)
		}
	})

	t.Run("a subject of 99 non-ASCII characters is accepted", func(t *testing.T) {
		a := ipguard.Alert{Subject: strings.Repeat("é", 99), Default: "d"}
		if _, err := snsalert.New(snsc, aws.ToString(tp.TopicArn)).Publish(ctx, a); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("a missing topic is a configuration error naming ALERT_TOPIC_ARN", func(t *testing.T) {
		missing := "arn:aws:sns:us-east-1:123456789012:no-such-topic"
		_, err := snsalert.New(snsc, missing).Publish(ctx, alert)
		if code := ipguard.ErrorCode(err); code != ipguard.EConfig {
			t.Fatalf("code = %q (%v), want %q", code, err, ipguard.EConfig)
		}
		if msg := err.Error(); !strings.Contains(msg, "ALERT_TOPIC_ARN") || !strings.Contains(msg, missing) {
			t.Errorf("message %q does not name ALERT_TOPIC_ARN and the topic", msg)
		}
	})
}

// No alert carries 8 or more characters of a known secret (issue: a portal
// string echoing part of the key would otherwise reach every subscriber).
func TestPublishScrubsPartsOfTheKey(t *testing.T) {
	key := "sk-5eed00c0ffee5eed00c0ffee5eed00c0ffee5eed00c0ffee5eed00c0ffee5eed"
	redact.Remember(key)
	f := &fakeSNS{}
	part := key[10:30]
	a := ipguard.Alert{Subject: "login by " + part[:9], Default: `{"user":"` + part + `"}`, Email: "user " + part, SMS: "u " + part[:8]}
	if _, err := snsalert.New(f, topic).Publish(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	sent := aws.ToString(f.in.Subject) + aws.ToString(f.in.Message)
	for i := 0; i+8 <= len(key); i++ {
		if strings.Contains(sent, key[i:i+8]) {
			t.Fatalf("published %q of the key: %s", key[i:i+8], sent)
		}
	}
	if !strings.Contains(sent, redact.Mark) {
		t.Errorf("nothing was redacted: %s", sent)
	}
}
