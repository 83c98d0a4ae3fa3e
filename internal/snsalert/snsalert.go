// Package snsalert publishes alerts to the SNS topic (ALERT_TOPIC_ARN), one
// body per protocol.
package snsalert

import (
	"context"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sns/types"

	"ipguard/internal/awserr"
	"ipguard/internal/humantext"
	"ipguard/internal/ipguard"
	"ipguard/internal/redact"
	"ipguard/internal/snsalert/snsmessage"
)

// API is the subset of *sns.Client the publisher uses.
type API interface {
	Publish(context.Context, *sns.PublishInput, ...func(*sns.Options)) (*sns.PublishOutput, error)
}

// Publisher sends alerts to one topic. It is safe for concurrent use.
type Publisher struct {
	api   API
	topic string
}

// New returns a Publisher to the topic with ARN topicARN (ALERT_TOPIC_ARN).
func New(api API, topicARN string) *Publisher {
	return &Publisher{api: api, topic: topicARN}
}

// Publish sends a as one message (MessageStructure "json": the default body,
// plus the email and SMS bodies when set) and returns SNS's message id. The
// message carries the attributes "severity" (String, a.Severity) and
// "kinds" (String.Array, a.Kinds) when set, for subscription filter
// policies.
//
// It makes exactly one attempt: the SDK's own retries are turned off for
// Publish, because a resend after a lost answer would deliver the message
// twice. A failure is returned to the caller, which has not recorded the
// message and sends it again on its next run.
//
// An alert SNS would refuse is rejected before sending with EInternal (the
// caller rendered it wrongly): an empty Default, a Subject of 100 or more
// characters or with a line break or control character, or a message over
// 256 KiB with its attributes (SNS counts them). A missing topic, a denied
// publish or a refused parameter is EConfig naming ALERT_TOPIC_ARN;
// throttling, a 5xx or no answer is EUnavailable (see package awserr). Every body and the subject are cleaned of
// secrets (package redact) before they are sent; a cleaned subject or SMS
// is cut to its bound again (humantext), since the mark is longer than the
// shortest run it replaces.
func (p *Publisher) Publish(ctx context.Context, a ipguard.Alert) (messageID string, err error) {
	a.Default, a.Email = redact.Clean(a.Default), redact.Clean(a.Email)
	if c := redact.Clean(a.Subject); c != a.Subject {
		a.Subject = humantext.Line(c, snsmessage.MaxSubjectRunes)
	}
	if c := redact.Clean(a.SMS); c != a.SMS {
		a.SMS = humantext.ASCII(c, snsmessage.MaxSMSBytes)
	}
	msg, err := message(a)
	if err != nil {
		return "", err
	}
	in := &sns.PublishInput{
		TopicArn:         aws.String(p.topic),
		MessageStructure: aws.String("json"),
		Message:          aws.String(msg),
	}
	if a.Subject != "" {
		in.Subject = aws.String(a.Subject)
	}
	in.MessageAttributes = attributes(a)
	out, err := p.api.Publish(ctx, in, func(o *sns.Options) { o.RetryMaxAttempts = 1 })
	if err != nil {
		return "", awserr.Classify(err, "publish", awserr.Resource{Service: "sns", Field: "ALERT_TOPIC_ARN", Value: p.topic})
	}
	return aws.ToString(out.MessageId), nil
}

// message checks a against SNS's limits and returns the JSON Message.
func message(a ipguard.Alert) (string, error) {
	if a.Default == "" {
		return "", ipguard.Errorf(ipguard.EInternal, "sns: alert has no default text")
	}
	if n := utf8.RuneCountInString(a.Subject); n > snsmessage.MaxSubjectRunes {
		return "", ipguard.Errorf(ipguard.EInternal, "sns: alert subject has %d characters, at most %d allowed", n, snsmessage.MaxSubjectRunes)
	}
	if i := strings.IndexFunc(a.Subject, unicode.IsControl); i >= 0 {
		return "", ipguard.Errorf(ipguard.EInternal, "sns: alert subject has a control character at byte %d", i)
	}
	msg := snsmessage.Structured(a)
	if n := snsmessage.Size(a); n > snsmessage.MaxMessageBytes {
		return "", ipguard.Errorf(ipguard.EInternal, "sns: alert message is %d bytes with its attributes, at most %d allowed", n, snsmessage.MaxMessageBytes)
	}
	return msg, nil
}

// attributes are the message attributes of a.
func attributes(a ipguard.Alert) map[string]types.MessageAttributeValue {
	m := map[string]types.MessageAttributeValue{}
	for _, at := range snsmessage.Attributes(a) {
		m[at.Name] = types.MessageAttributeValue{DataType: aws.String(at.DataType), StringValue: aws.String(at.Value)}
	}
	if len(m) == 0 {
		return nil
	}
	return m
}
