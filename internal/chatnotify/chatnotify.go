// Package chatnotify sends alerts to Slack or Microsoft Teams through AWS's
// chat integration (Amazon Q Developer in chat applications, formerly AWS
// Chatbot): a custom notification, in the format it documents, published to
// a topic of its own (CHAT_TOPIC_ARN). Chat never shares the alert topic:
// the chat integration renders only its documented format (the alert
// topic's JSON body is another), and the alert topic is encrypted with the
// AWS managed key, whose key policy cannot be changed to let the chat
// service use it (README, "Where findings go").
//
// Each notification says what a person needs first: a title with the
// severity, who, where (address, city, country), what happened, and what to
// do. Every value that may come from the portal or a person (the alert's
// subject, so the title too; names, addresses, places, the e-mail text) is
// made inert (see inert) and shown in a code span, so that a forged login
// or key name can neither format the message, link anywhere nor mention
// anyone.
package chatnotify

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sns/types"

	"ipguard/internal/audit"
	"ipguard/internal/awserr"
	"ipguard/internal/humantext"
	"ipguard/internal/ipguard"
	"ipguard/internal/redact"
)

// Notification is a custom notification of the chat integration (schema
// version 1.0).
type Notification struct {
	Version  string   `json:"version"` // "1.0"
	Source   string   `json:"source"`  // "custom"
	ID       string   `json:"id,omitempty"`
	Content  Content  `json:"content"`
	Metadata Metadata `json:"metadata"`
}

// Content is what the chat shows.
type Content struct {
	TextType    string   `json:"textType"` // "client-markdown"
	Title       string   `json:"title"`
	Description string   `json:"description"`
	NextSteps   []string `json:"nextSteps,omitempty"`
	Keywords    []string `json:"keywords,omitempty"`
}

// Metadata is what the chat integration uses to thread and summarise.
type Metadata struct {
	Summary           string            `json:"summary,omitempty"`
	EventType         string            `json:"eventType,omitempty"`
	AdditionalContext map[string]string `json:"additionalContext,omitempty"`
}

// listed is how many findings a notification spells out.
const listed = 5

// Format turns an alert into a custom notification (pure). An audit alert
// lists its first findings (who, where, what) and the steps for its kinds;
// any other alert (drift, key expiry, lock-out risk) shows its e-mail text,
// clipped.
func Format(a ipguard.Alert) Notification {
	n := Notification{Version: "1.0", Source: "custom",
		Content:  Content{TextType: "client-markdown", Title: title(a)},
		Metadata: Metadata{Summary: inert(a.Subject, 200)}}
	var body map[string]json.RawMessage
	_ = json.Unmarshal([]byte(a.Default), &body)
	kinds := append([]string(nil), a.Kinds...)
	var p audit.Payload
	if _, ok := body["events"]; ok && json.Unmarshal([]byte(a.Default), &p) == nil {
		n.Content.Description = describe(p)
		n.Metadata.AdditionalContext = map[string]string{"portal": inert(p.Portal, 200)}
		if len(kinds) == 0 {
			seen := map[string]bool{}
			for _, f := range p.Events {
				if !seen[f.Kind] {
					seen[f.Kind] = true
					kinds = append(kinds, f.Kind)
				}
			}
		}
	} else {
		text := a.Email
		if text == "" {
			text = a.Default
		}
		n.Content.Description = codeLines(humantext.Clip(strings.TrimSpace(text), 3000))
		var kind string
		_ = json.Unmarshal(body["kind"], &kind)
		if kind != "" && len(kinds) == 0 {
			kinds = []string{kind}
		}
	}
	sort.Strings(kinds)
	n.Content.NextSteps = steps(kinds)
	if a.Severity != "" {
		n.Content.Keywords = append(n.Content.Keywords, inert(a.Severity, 40))
	}
	for _, k := range kinds {
		n.Content.Keywords = append(n.Content.Keywords, inert(k, 60))
	}
	n.Metadata.EventType = inert(strings.Join(kinds, ","), 300)
	return n
}

var severityMark = map[string]string{"critical": ":rotating_light: CRITICAL", "high": ":red_circle: HIGH", "medium": ":large_orange_circle: MEDIUM", "low": ":large_blue_circle: LOW"}

// title is the severity's mark and the alert's subject. The subject may
// quote the portal (the API key's name in the key expiry alert), and the
// chat integration renders the title as markdown with mentions: it is
// shown like any portal value, inert in a code span.
func title(a ipguard.Alert) string {
	mark := severityMark[a.Severity]
	if mark == "" && a.Severity != "" {
		mark = strings.ToUpper(inert(a.Severity, 20))
	}
	s := "DocSpace IP Guard alert"
	if strings.TrimSpace(a.Subject) != "" {
		s = code(a.Subject, 300)
	}
	if mark != "" {
		s = mark + " " + s
	}
	return s
}

// describe lists the first findings of an audit alert.
func describe(p audit.Payload) string {
	var b strings.Builder
	for _, n := range p.Notices {
		fmt.Fprintf(&b, "*Notice:* %s\n", code(n, 300))
	}
	for i, f := range p.Events {
		if i == listed {
			fmt.Fprintf(&b, "…and %d more (the e-mail and the findings bus have them all).\n", len(p.Events)-listed)
			break
		}
		who := f.Email
		if who == "" {
			who = f.Login
		}
		if who == "" {
			who = f.User
		}
		if f.Kind == audit.KindFailedLoginBurst || f.Kind == audit.KindPasswordSpray {
			who = strings.Join(f.Logins, ", ") // the accounts tried
		}
		where := f.IP
		if len(f.IPs) > 0 { // a spray's addresses, or bursts summed up
			where = strings.Join(f.IPs, ", ")
		}
		if place := strings.Trim(f.City+", "+f.Country, ", "); place != "" {
			where += " (" + place + ")"
		}
		fmt.Fprintf(&b, "*%s* — %s\n", strings.ToUpper(inert(f.Severity, 20)), code(f.Reason, 200))
		if f.Kind == audit.KindCoverageLost { // no login: what was not checked, and why
			fmt.Fprintf(&b, "• *Cause:* %s\n• *Logins dated:* %s to %s UTC\n", code(orUnknown(f.Cause), 60), code(f.FirstAt, 40), code(f.Date, 40))
			continue
		}
		fmt.Fprintf(&b, "• *Who:* %s\n• *Where:* %s\n• *When:* %s UTC\n", code(orUnknown(who), 120), code(orUnknown(where), 160), code(f.Date, 40))
		if f.Response != nil {
			fmt.Fprintf(&b, "• *Response:* %s\n", code(f.Response.Outcome, 60))
		}
	}
	return strings.TrimSpace(b.String())
}

// stepsByKind: what a person does about each kind.
var stepsByKind = map[string]string{
	audit.KindPasswordGuessSucceeded: "Treat the account as taken over: block the user in DocSpace, end their sessions, reset the password, check what the session did.",
	audit.KindIPNotAllowed:           "Ask the user whether the login was theirs. If not: block the user, end their sessions, reset the password. If the address is legitimate, onboard the user again with ALL their addresses plus this one.",
	audit.KindUnverifiableIP:         "Ask the user whether the login was theirs; the portal cut the address, so it could not be checked against the allowlist.",
	audit.KindUnknownUser:            "Onboard the user (they have no allowlist), or set UNKNOWN_USER_POLICY=ignore if that is expected.",
	audit.KindFailedLoginBurst:       "Repeated failed logins from one address look like password guessing: check the portal's brute-force settings and block the address upstream.",
	audit.KindCoverageLost:           "Logins of the span named were not checked: follow the cause in the README (Limits); a login hidden there is alerted only once it can be read.",
	audit.KindPasswordSpray:          "A password spray tried many accounts with few attempts each: block the addresses upstream, and reset the password of every listed account that then logged in.",
	audit.KindImpossibleTravel:       "A login unlike the user's normal: ask the user whether it was theirs. If not: block the user, end their sessions, reset the password.",
	audit.KindNewCountry:             "A login unlike the user's normal: ask the user whether it was theirs. If not: block the user, end their sessions, reset the password.",
	audit.KindNewDevice:              "A login unlike the user's normal: ask the user whether it was theirs. If not: block the user, end their sessions, reset the password.",
	"allowlist_drift":                "Check with the person who changed the IP allowlist outside IP Guard whether it was intended.",
	"allowlist_lockout_risk":         "Restrictions were not switched on: set PORTAL_BREAKGLASS_IPS or fix the reason in the message.",
	"api_key_expiring":               "Create a new DocSpace API key (same user, same scopes) and store it in the secret named by DOCSPACE_API_KEY_SECRET_ID before it expires.",
}

func steps(kinds []string) []string {
	var out []string
	for _, k := range kinds {
		if s, ok := stepsByKind[k]; ok && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		out = []string{"See the e-mail alert for the details and what to do."}
	}
	return out
}

// inert makes an untrusted value unable to act in chat markdown: one line,
// control and invisible characters escaped and clipped to max bytes before
// escaping (humantext.Words), backticks (which would close a code span)
// replaced by ', and &, <, > written &amp; &lt; &gt;, the escaping Slack
// documents for its control sequences ("Formatting text for app surfaces",
// escaping): no <!channel>, <!here>, <@U…> or <url|label> can form, inside
// a code span or out of it.
func inert(s string, max int) string {
	return markdownEscaper.Replace(humantext.Words(s, max))
}

var markdownEscaper = strings.NewReplacer("`", "'", "&", "&amp;", "<", "&lt;", ">", "&gt;")

// code shows an untrusted value inert (see inert) in a code span, where
// Slack and Teams format nothing and link nothing: *bold*, _x_ and URLs
// stay text. The code span alone is not relied upon against mentions.
func code(s string, max int) string {
	return "`" + inert(s, max) + "`"
}

// codeLines shows untrusted multi-line text (an alert's e-mail text, which
// quotes portal and user strings) one code span per line, so that no line
// can format the message, link anywhere or mention anyone. Blank lines stay.
func codeLines(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if strings.TrimSpace(l) != "" {
			lines[i] = code(l, 500)
		} else {
			lines[i] = ""
		}
	}
	return strings.Join(lines, "\n")
}

func orUnknown(s string) string {
	if strings.TrimSpace(s) == "" {
		return "unknown"
	}
	return s
}

// API is the subset of *sns.Client the publisher uses.
type API interface {
	Publish(context.Context, *sns.PublishInput, ...func(*sns.Options)) (*sns.PublishOutput, error)
}

// Publisher publishes custom notifications to the chat topic.
type Publisher struct {
	API   API
	Topic string // CHAT_TOPIC_ARN
}

// Publish sends Format(a) as the message (cleaned of secrets), with the
// attribute "severity" for subscription filters. One attempt, as for the
// alert topic. A failure is classified and names CHAT_TOPIC_ARN.
func (p *Publisher) Publish(ctx context.Context, a ipguard.Alert) (string, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(Format(a)); err != nil {
		return "", ipguard.Errorf(ipguard.EInternal, "chat: encode: %w", err)
	}
	in := &sns.PublishInput{TopicArn: aws.String(p.Topic), Message: aws.String(redact.Clean(strings.TrimSpace(b.String())))}
	if a.Severity != "" {
		in.MessageAttributes = map[string]types.MessageAttributeValue{"severity": {DataType: aws.String("String"), StringValue: aws.String(a.Severity)}}
	}
	out, err := p.API.Publish(ctx, in, func(o *sns.Options) { o.RetryMaxAttempts = 1 })
	if err != nil {
		return "", awserr.Classify(err, "publish", awserr.Resource{Service: "sns", Field: "CHAT_TOPIC_ARN", Value: p.Topic})
	}
	return aws.ToString(out.MessageId), nil
}

// Tee sends every alert to Next, then a copy to Chat. Chat is a courtesy
// copy: its failure is logged (msg "chat notification not sent") and
// counted (TakeUndelivered: the ChatUndelivered metric, which an alarm
// reads, since chat may be a team's only destination), and never fails the
// alert, which Next delivered.
type Tee struct {
	Next interface {
		Publish(ctx context.Context, a ipguard.Alert) (string, error)
	}
	Chat interface {
		Publish(ctx context.Context, a ipguard.Alert) (string, error)
	}
	Log *slog.Logger

	undelivered atomic.Int64
}

// TakeUndelivered returns how many chat copies failed since the last call
// (the ChatUndelivered metric), and starts again at 0.
func (t *Tee) TakeUndelivered() int { return int(t.undelivered.Swap(0)) }

// Publish implements the publisher port.
func (t *Tee) Publish(ctx context.Context, a ipguard.Alert) (string, error) {
	id, err := t.Next.Publish(ctx, a)
	if err != nil || t.Chat == nil {
		return id, err
	}
	_, cerr := t.Chat.Publish(ctx, a)
	if o, ok := ctx.Value(outcomeKey{}).(*Outcome); ok && o != nil {
		o.Tried, o.Err = true, cerr
	}
	if cerr != nil {
		t.undelivered.Add(1)
		ipguard.LoggerOrDiscard(t.Log).ErrorContext(ctx, "chat notification not sent", "subject", a.Subject, "error", cerr.Error())
	}
	return id, nil
}

// Outcome is what became of the chat copy of one alert, for a caller that
// must say so (the test alert): Tried when a copy was attempted, Err its
// failure.
type Outcome struct {
	Tried bool
	Err   error
}

type outcomeKey struct{}

// WithOutcome returns a context in which Tee.Publish fills o in.
func WithOutcome(ctx context.Context, o *Outcome) context.Context {
	return context.WithValue(ctx, outcomeKey{}, o)
}
