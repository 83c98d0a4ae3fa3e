package findingsbus_test

import (
	"context"
	"encoding/json"
	"errors"
	"sort"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"ipguard/internal/audit"
	"ipguard/internal/audit/audittest/auditalert"
	"ipguard/internal/dynamo"
	"ipguard/internal/findingsbus"
	"ipguard/internal/ipguard"
	"ipguard/internal/testbed/localaws"
)

// The README's routing rules ("Where findings go"), as EventBridge patterns.
const (
	incidentPattern = `{"source":["docspace-ip-guard"],"detail-type":["DocSpace IP Guard Finding"],"detail":{"severity":["high","critical"],"test":[{"exists":false}]}}`
	archivePattern  = `{"source":["docspace-ip-guard"],"detail-type":["DocSpace IP Guard Finding"],"detail":{"test":[{"exists":false}]}}`
)

// busEvent is the event a rule's target receives.
type busEvent struct {
	Version    string         `json:"version"`
	ID         string         `json:"id"`
	DetailType string         `json:"detail-type"`
	Source     string         `json:"source"`
	Time       string         `json:"time"`
	Detail     map[string]any `json:"detail"`
}

// TestRulesDeliverFindingsToQueues: the routing rules of the README, on a
// moto event bus, deliver each finding with the documented shape: high and
// critical to the incident queue, everything to the archive queue, the
// test alert to neither.
func TestRulesDeliverFindingsToQueues(t *testing.T) {
	ctx := context.Background()
	cfg := localaws.MotoConfigT(t)
	eb, sq := eventbridge.NewFromConfig(cfg), sqs.NewFromConfig(cfg)
	if _, err := eb.CreateEventBus(ctx, &eventbridge.CreateEventBusInput{Name: aws.String("security")}); err != nil {
		t.Fatal(err)
	}
	queue := func(name, pattern string) *string {
		q, err := sq.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name)})
		if err != nil {
			t.Fatal(err)
		}
		at, err := sq.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: q.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := eb.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String(name), EventBusName: aws.String("security"), EventPattern: aws.String(pattern)}); err != nil {
			t.Fatal(err)
		}
		if _, err := eb.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String(name), EventBusName: aws.String("security"),
			Targets: []ebtypes.Target{{Id: aws.String("q"), Arn: aws.String(at.Attributes[string(sqstypes.QueueAttributeNameQueueArn)])}}}); err != nil {
			t.Fatal(err)
		}
		return q.QueueUrl
	}
	incident, archive := queue("incident", incidentPattern), queue("archive", archivePattern)

	pub := &findingsbus.Publisher{Next: &fakeSNS{}, Bus: &findingsbus.Bus{API: eb, Name: "security", Outbox: &memOutbox{}}}
	for _, a := range []ipguard.Alert{
		auditalert.Render(t, now, login(41, audit.KindIPNotAllowed, audit.SeverityHigh)),
		auditalert.Render(t, now, login(42, audit.KindUnknownUser, audit.SeverityMedium)),
		{Subject: "test", Default: `{"kind":"test","severity":"high","test":true}`},
	} {
		if _, err := pub.Publish(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	read := func(q *string) []busEvent {
		out, err := sq.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: q, MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
		if err != nil {
			t.Fatal(err)
		}
		var evs []busEvent
		for _, m := range out.Messages {
			var e busEvent
			if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &e); err != nil {
				t.Fatalf("%s: %v", aws.ToString(m.Body), err)
			}
			evs = append(evs, e)
		}
		sort.Slice(evs, func(i, j int) bool { return evs[i].Detail["eventId"].(float64) < evs[j].Detail["eventId"].(float64) })
		return evs
	}
	inc, arc := read(incident), read(archive)
	if len(inc) != 1 || inc[0].Detail["severity"] != "high" {
		t.Fatalf("incident queue got %+v, want the high finding only", inc)
	}
	if len(arc) != 2 {
		t.Fatalf("archive queue got %d events, want 2 (not the test alert)", len(arc))
	}
	e := inc[0]
	if e.Source != findingsbus.Source || e.DetailType != findingsbus.DetailType || e.ID == "" || e.Time != "2026-12-04T09:59:00Z" {
		t.Errorf("envelope = %+v", e)
	}
	for _, k := range []string{"kind", "severity", "reason", "userId", "ip", "date", "eventId", "portal", "findingId", "ocsf"} {
		if _, ok := e.Detail[k]; !ok {
			t.Errorf("detail lacks %q: %v", k, e.Detail)
		}
	}
	if o := e.Detail["ocsf"].(map[string]any); o["class_uid"] != 2004.0 || len(o["evidences"].([]any)) != 1 {
		t.Errorf("detail.ocsf = %v", o)
	}
}

// The outbox over DynamoDB: kept entries survive, a stale revision is a
// conflict, and Retry empties it once the bus takes them.
func TestOutboxInDynamoDB(t *testing.T) {
	ctx := context.Background()
	db := localaws.MotoTableT(t, "t")
	ob := findingsbus.StoreOutbox{Store: dynamo.New(db, "t")}
	es, _ := findingsbus.Events("p", auditalert.Render(t, now, login(41, audit.KindIPNotAllowed, audit.SeverityHigh)), now)
	down := &fakeBus{err: errors.New("down")}
	bus := &findingsbus.Bus{API: down, Name: "default", Outbox: ob}
	if err := bus.Keep(ctx, es); err != nil {
		t.Fatal(err)
	}
	if err := bus.Keep(ctx, es); err != nil { // the same finding again: kept once, nothing written
		t.Fatal(err)
	}
	got, rev, err := ob.Pending(ctx)
	if err != nil || len(got) != 1 || rev != 1 || got[0].ID != es[0].ID || !sameJSON(got[0].Detail, es[0].Detail) {
		t.Fatalf("Pending = %d entries, rev %d, %v", len(got), rev, err)
	}
	if err := ob.Save(ctx, nil, 0); ipguard.ErrorCode(err) != ipguard.EConflict {
		t.Errorf("Save with a stale revision = %v, want EConflict", err)
	}
	down.err = nil
	if sent, waiting, err := bus.Retry(ctx); sent != 1 || waiting != 0 || err != nil {
		t.Fatalf("Retry = %d, %d, %v", sent, waiting, err)
	}
	if got, _, _ := ob.Pending(ctx); len(got) != 0 {
		t.Errorf("outbox still holds %d", len(got))
	}
}

// sameJSON: a and b are the same JSON value (the store may escape
// differently, e.g. "&" as \u0026).
func sameJSON(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	xb, _ := json.Marshal(x)
	yb, _ := json.Marshal(y)
	return string(xb) == string(yb)
}
