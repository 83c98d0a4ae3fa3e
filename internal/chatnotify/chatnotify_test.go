package chatnotify_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"ipguard/internal/audit"
	"ipguard/internal/audit/audittest/auditalert"
	"ipguard/internal/chatnotify"
	"ipguard/internal/ipguard"
	"ipguard/internal/keywatch"
	"ipguard/internal/testbed/localaws"
)

var now = time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)

func TestFormatSaysTitleSeverityWhoWhereAndWhatToDo(t *testing.T) {
	f := audit.Finding{EventID: 41, Kind: audit.KindIPNotAllowed, Severity: audit.SeverityHigh, Reason: "login from an address not on the allowlist",
		Email: "ann@example.com", IP: "203.0.113.7", City: "Berlin", Country: "Germany", Date: "2026-12-04T09:59:00Z"}
	evil := f
	evil.EventID, evil.Email, evil.City = 42, "<!channel> *boss* `x`", "Ber\u202elin\nnext"
	tests := []struct {
		name      string
		alert     ipguard.Alert
		want      []string // in title + description
		wantNot   []string
		wantSteps string
	}{
		{"an audit finding", auditalert.Render(t, now, f), []string{":red_circle: HIGH", "DocSpace", "`ann@example.com`", "`203.0.113.7 (Berlin, Germany)`", "`2026-12-04T09:59:00Z`"}, nil, "Ask the user"},
		{"portal text cannot format or mention", auditalert.Render(t, now, evil), []string{"`&lt;!channel&gt; *boss* 'x'`", `\u202E`}, []string{"\u202e", "\nnext"}, "Ask the user"},
		{"a key alert", ipguard.Alert{Subject: "[MEDIUM] DocSpace API key \"k\" expires in 7 days", Default: `{"kind":"api_key_expiring"}`, Email: "The key expires.", Severity: "medium", Kinds: []string{"api_key_expiring"}},
			[]string{":large_orange_circle: MEDIUM", "The key expires."}, nil, "Create a new DocSpace API key"},
		{"drift", ipguard.Alert{Subject: "DocSpace: IP allowlist changed outside IP Guard (drift)", Default: `{"kind":"allowlist_drift"}`, Email: "changed", Severity: "high", Kinds: []string{"allowlist_drift"}},
			[]string{"HIGH", "changed"}, nil, "Check with the person"},
		{"e-mail text cannot format, link or mention", ipguard.Alert{Subject: "drift", Default: `{"kind":"allowlist_drift"}`, Email: "Changed by:\n<!channel> [Reset your password](https://evil.example/x) *URGENT*\n\nbye", Severity: "high", Kinds: []string{"allowlist_drift"}},
			[]string{"`Changed by:`\n`&lt;!channel&gt; [Reset your password](https://evil.example/x) *URGENT*`\n\n`bye`"}, []string{"\n<!channel>", "\n[Reset", "\n*URGENT"}, "Check with the person"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := chatnotify.Format(tt.alert)
			if n.Version != "1.0" || n.Source != "custom" || n.Content.TextType != "client-markdown" {
				t.Errorf("envelope = %+v", n)
			}
			text := n.Content.Title + "\n" + n.Content.Description
			for _, w := range tt.want {
				if !strings.Contains(text, w) {
					t.Errorf("%q lacks %q", text, w)
				}
			}
			for _, w := range tt.wantNot {
				if strings.Contains(text, w) {
					t.Errorf("%q holds %q", text, w)
				}
			}
			if len(n.Content.NextSteps) == 0 || !strings.Contains(n.Content.NextSteps[0], tt.wantSteps) {
				t.Errorf("nextSteps = %v, want %q", n.Content.NextSteps, tt.wantSteps)
			}
		})
	}
}

type pub struct {
	n   int
	err error
}

func (p *pub) Publish(context.Context, ipguard.Alert) (string, error) {
	p.n++
	return "m", p.err
}

func TestTeeNeverFailsTheAlertForChat(t *testing.T) {
	next, chat := &pub{}, &pub{err: errors.New("chat down")}
	id, err := (&chatnotify.Tee{Next: next, Chat: chat}).Publish(context.Background(), ipguard.Alert{Default: "d"})
	if err != nil || id != "m" || next.n != 1 || chat.n != 1 {
		t.Errorf("Publish = %q, %v; next %d, chat %d", id, err, next.n, chat.n)
	}
	next.err = errors.New("sns down")
	if _, err := (&chatnotify.Tee{Next: next, Chat: chat}).Publish(context.Background(), ipguard.Alert{Default: "d"}); err == nil || chat.n != 1 {
		t.Errorf("an alert that was not sent went to chat (chat %d) or the error was lost (%v)", chat.n, err)
	}
}

// Under moto: the chat topic's subscriber receives the custom notification
// as the whole message.
func TestPublisherSendsTheNotificationAsTheMessage(t *testing.T) {
	ctx := context.Background()
	cfg := localaws.MotoConfigT(t)
	sn, sq := sns.NewFromConfig(cfg), sqs.NewFromConfig(cfg)
	tp, err := sn.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String("chat")})
	if err != nil {
		t.Fatal(err)
	}
	q, _ := sq.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("chat-stand-in")})
	at, _ := sq.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: q.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
	if _, err := sn.Subscribe(ctx, &sns.SubscribeInput{TopicArn: tp.TopicArn, Protocol: aws.String("sqs"), Endpoint: aws.String(at.Attributes["QueueArn"]),
		Attributes: map[string]string{"RawMessageDelivery": "true"}}); err != nil {
		t.Fatal(err)
	}
	p := &chatnotify.Publisher{API: sn, Topic: aws.ToString(tp.TopicArn)}
	if _, err := p.Publish(ctx, auditalert.Render(t, now, audit.Finding{EventID: 1, Kind: audit.KindIPNotAllowed, Severity: "high", Reason: "r", IP: "203.0.113.7", Date: "2026-12-04T09:59:00Z"})); err != nil {
		t.Fatal(err)
	}
	out, err := sq.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: q.QueueUrl, WaitTimeSeconds: 2})
	if err != nil || len(out.Messages) != 1 {
		t.Fatalf("received %d, %v", len(out.Messages), err)
	}
	var n chatnotify.Notification
	if err := json.Unmarshal([]byte(aws.ToString(out.Messages[0].Body)), &n); err != nil || n.Source != "custom" || !strings.Contains(n.Content.Description, "203.0.113.7") {
		t.Errorf("body %s: %v", aws.ToString(out.Messages[0].Body), err)
	}
	t.Run("a missing topic names CHAT_TOPIC_ARN", func(t *testing.T) {
		_, err := (&chatnotify.Publisher{API: sn, Topic: "arn:aws:sns:us-east-1:123456789012:nope"}).Publish(ctx, ipguard.Alert{Default: "d"})
		if ipguard.ErrorCode(err) != ipguard.EConfig || !strings.Contains(err.Error(), "CHAT_TOPIC_ARN") {
			t.Errorf("err = %v", err)
		}
	})
}

// A chat copy that was not sent is counted (the ChatUndelivered metric, which
// an alarm reads): with chat as the only destination (WHERE-ISSUES-MEET §7:
// the no-destination alarm then does not exist), a chat topic that refuses
// every publish (a deleted topic, a denied sns:Publish, a key policy that
// does not let the function use the topic's key) was only a log line, and
// findings recorded as alerted reached nobody (attack review).
func TestAFailedChatCopyIsCounted(t *testing.T) {
	next, chat := &pub{}, &pub{err: errors.New("KMS.KMSAccessDeniedException")}
	tee := &chatnotify.Tee{Next: next, Chat: chat}
	for range 3 {
		if _, err := tee.Publish(context.Background(), ipguard.Alert{Default: "d"}); err != nil {
			t.Fatalf("Publish = %v; the alert itself was sent", err)
		}
	}
	chat.err = nil
	if _, err := tee.Publish(context.Background(), ipguard.Alert{Default: "d"}); err != nil {
		t.Fatal(err)
	}
	if n := tee.TakeUndelivered(); n != 3 {
		t.Errorf("TakeUndelivered = %d; want the 3 chat copies that failed", n)
	}
	if n := tee.TakeUndelivered(); n != 0 {
		t.Errorf("TakeUndelivered again = %d; want 0 (it starts again)", n)
	}
}

// Chat says who, where and what to do for every kind the audit alerts. A
// password spray said "Who: unknown" (it names the accounts it tried, not
// one user) and only its first address, and the behaviour kinds and lost
// coverage got no step but "see the e-mail".
func TestEveryAuditKindSaysWhoWhereAndWhatToDoInChat(t *testing.T) {
	spray := audit.Finding{EventID: 90, EventIDs: []int64{88, 89, 90}, Count: 3, Kind: audit.KindPasswordSpray, Severity: audit.SeverityHigh,
		Reason: "3 failed logins against 3 distinct accounts", Logins: []string{"ann@example.com", "bob@example.com", "cy@example.com"},
		IPs: []string{"198.51.100.1", "198.51.100.2"}, IP: "198.51.100.1", Addresses: 2, Date: "2026-12-04T09:59:00Z", FirstAt: "2026-12-04T09:50:00Z"}
	n := chatnotify.Format(auditalert.Render(t, now, spray))
	for _, w := range []string{"ann@example.com, bob@example.com, cy@example.com", "198.51.100.1, 198.51.100.2"} {
		if !strings.Contains(n.Content.Description, w) {
			t.Errorf("the spray's notice lacks %q:\n%s", w, n.Content.Description)
		}
	}
	fallback := chatnotify.Format(ipguard.Alert{Subject: "x", Default: `{"kind":"nothing_known"}`, Email: "x"}).Content.NextSteps
	for _, kind := range append(append([]string{}, audit.Kinds...), audit.BehaviourKinds...) {
		f := audit.Finding{EventID: 7, Kind: kind, Severity: audit.SeverityHigh, Reason: "r", Login: "ann", IP: "203.0.113.7", Date: "2026-12-04T09:59:00Z"}
		steps := chatnotify.Format(auditalert.Render(t, now, f)).Content.NextSteps
		if len(steps) == 0 || (len(steps) == len(fallback) && steps[0] == fallback[0]) {
			t.Errorf("%s: next steps %q, want what to do about it", kind, steps)
		}
	}
}

// Every portal- or user-supplied string in a chat notice, the title
// included, is inert (the fields chat renders as markdown: title,
// description, next steps; the others are plain text): it cannot mention (<!channel>, <!here>, <@U…>), link
// (<url|label>, a bare URL outside a code span), format (*bold*, a backtick
// that closes the code span) or break the line. The title once showed the
// alert's subject as it was, and the key expiry subject quotes the key's
// name from the portal; the body relied on code spans alone, inside which
// Slack's handling of <!channel> is not documented. Each value goes through
// the builder that really renders it: the key watch's alert (key name), the
// audit's (user name, IP text, user agent), onboarding's e-mail text.
func TestHostilePortalTextIsInertInTitleAndBody(t *testing.T) {
	hostile := []string{"<!channel>", "<!here>", "<@U123ABC>", "<http://evil.example|click here>", "*bold* _it_ ~s~",
		"x` <!channel> `y", "line\n<!here>", "&lt;!channel&gt;", "https://evil.example/reset"}
	keyAlert := func(v string) ipguard.Alert {
		return keywatch.Alert("https://portal.example.com", keywatch.Key{ID: "k1", Name: v, Postfix: "ab12", ExpiresAt: now.Add(20 * time.Hour), IsActive: true}, now)
	}
	finding := func(f func(*audit.Finding)) func(string) ipguard.Alert {
		return func(v string) ipguard.Alert {
			x := audit.Finding{EventID: 41, Kind: audit.KindIPNotAllowed, Severity: audit.SeverityHigh, Reason: "login from an address not on the allowlist",
				Login: "ann", IP: "203.0.113.7", City: "Berlin", Country: "Germany", Date: "2026-12-04T09:59:00Z"}
			f(&x)
			return auditalert.Render(t, now, x)
		}
	}
	sources := []struct {
		name  string
		alert func(v string) ipguard.Alert
	}{
		{"API key name", keyAlert},
		{"user name", nil}, {"login", nil}, {"IP text", nil}, {"user agent", nil}, // set below
		{"e-mail text", func(v string) ipguard.Alert {
			return ipguard.Alert{Subject: "DocSpace: IP allowlist changed outside IP Guard (drift) by " + v, Default: `{"kind":"allowlist_drift"}`,
				Email: "Changed by: " + v + "\n\nbye", Severity: "high", Kinds: []string{"allowlist_drift"}}
		}},
	}
	set := map[string]func(f *audit.Finding, v string){
		"user name":  func(f *audit.Finding, v string) { f.Login, f.Email, f.User = "", "", v },
		"login":      func(f *audit.Finding, v string) { f.Login = v },
		"IP text":    func(f *audit.Finding, v string) { f.IP = v },
		"user agent": func(f *audit.Finding, v string) { f.Browser, f.Platform = v, v },
	}
	for _, src := range sources {
		for _, v := range hostile {
			t.Run(src.name+"/"+v, func(t *testing.T) {
				var a ipguard.Alert
				if put, ok := set[src.name]; ok {
					a = finding(func(f *audit.Finding) { put(f, v) })(v)
				} else {
					a = src.alert(v)
				}
				n := chatnotify.Format(a)
				if strings.ContainsAny(n.Content.Title, "\n\r") {
					t.Errorf("title %q breaks the line", n.Content.Title)
				}
				fields := map[string]string{"title": n.Content.Title, "description": n.Content.Description, "summary": n.Metadata.Summary,
					"keywords": strings.Join(n.Content.Keywords, " "), "eventType": n.Metadata.EventType, "nextSteps": strings.Join(n.Content.NextSteps, " ")}
				for k, v := range n.Metadata.AdditionalContext {
					fields["context "+k] = v
				}
				for what, text := range fields {
					if strings.ContainsAny(text, "<>") {
						t.Errorf("%s holds < or > (a mention or a link can form): %q", what, text)
					}
					if what != "title" && what != "description" && what != "nextSteps" {
						if strings.ContainsAny(text, "`\n") {
							t.Errorf("%s holds a backtick or a line break: %q", what, text)
						}
						continue // plain text, not rendered as markdown
					}
					for _, line := range strings.Split(text, "\n") {
						spans := strings.Split(line, "`")
						if len(spans)%2 == 0 {
							t.Errorf("%s: a code span left open: %q", what, line)
						}
						for i := 0; i < len(spans); i += 2 { // outside code spans
							for _, w := range []string{"!channel", "!here", "@U123ABC", "evil", "bold", "_it_", "~s~"} {
								if strings.Contains(spans[i], w) {
									t.Errorf("%s: %q outside a code span: %q", what, w, line)
								}
							}
						}
					}
				}
			})
		}
	}
}
