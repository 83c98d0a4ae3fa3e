package integration

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"ipguard/internal/config"
	"ipguard/internal/findingsbus"
	"ipguard/internal/testbed/localdeploy"
	"ipguard/internal/wiring"
)

// deployWithFindings is deploy with the findings bus (and its "everything"
// rule to a SIEM queue) and the login archive bucket.
func deployWithFindings(t *testing.T, extraEnv ...string) *localdeploy.Stack {
	t.Helper()
	s := standUp(t)
	if err := s.StartFindings(context.Background()); err != nil {
		t.Fatal(err)
	}
	setenv(t, s.FunctionEnv(extraEnv...))
	return s
}

// The whole chain of the audit function (its own wiring): every finding on
// the bus once, with the documented shape, and every login in the archive
// once, also after a second run that re-reads the overlap.
func TestAuditSendsEveryFindingToTheBusAndEveryLoginToTheArchive(t *testing.T) {
	ctx := context.Background()
	s := deployWithFindings(t, "UNKNOWN_USER_POLICY=alert") // each finding a message too (the digest is #21's default)
	onboardAliceAndBob(t)
	s.Portal.AddLoginEvents(
		login(alice, 1010, "192.0.2.99", 2*time.Minute), // violation
		login(alice, 1010, "203.0.113.10", 3*time.Minute),
		login(bob, 1010, "192.0.2.7", 4*time.Minute),
		login(carol, 1010, "198.51.100.77", 1*time.Minute), // unknown user
	)
	svc := auditService(t)
	res, err := svc.Handle(ctx, scheduled(time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	evs, err := s.BusEvents(ctx, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	mailed := alerted(t, s)
	if len(evs) != len(mailed) || len(evs) != 2 {
		t.Fatalf("bus delivered %d events, the mailbox %d findings; want 2 and 2", len(evs), len(mailed))
	}
	for _, e := range evs {
		o, _ := e.Detail["ocsf"].(map[string]any)
		if e.Source != findingsbus.Source || e.DetailType != findingsbus.DetailType || e.Detail["findingId"] == nil || o["class_uid"] != 2004.0 ||
			e.Detail["portal"] != s.PortalURL || e.Detail["kind"] == nil {
			t.Errorf("event lacks the documented shape: %+v", e)
		}
	}
	objs, err := s.Archive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	records := 0
	for _, o := range objs {
		if !strings.HasPrefix(o.Key, "portal="+strings.TrimPrefix(s.PortalURL, "http://")+"/year=") || !strings.HasSuffix(o.Key, ".json.gz") {
			t.Errorf("key %s is not the documented layout", o.Key)
		}
		records += len(o.Records)
	}
	if records != 4 || res.EventsScanned != 4 {
		t.Fatalf("archive holds %d records, the run read %d; want 4 and 4", records, res.EventsScanned)
	}

	if _, err := svc.Handle(ctx, scheduled(time.Now().Add(time.Second))); err != nil {
		t.Fatal(err)
	}
	if again, _ := s.BusEvents(ctx, time.Second); len(again) != 0 {
		t.Errorf("the second run put %d events on the bus, want none", len(again))
	}
	objs, _ = s.Archive(ctx)
	seen := map[string]int{}
	for _, o := range objs {
		for _, r := range o.Records {
			seen[r["metadata"].(map[string]any)["uid"].(string)]++
		}
	}
	for uid, n := range seen {
		if n != 1 {
			t.Errorf("login %s is archived %d times", uid, n)
		}
	}
}

// A bus that refuses the events does not hold back the e-mail; the next
// run sends the waiting events once the bus takes them.
func TestBusDownKeepsTheEventsForTheNextRun(t *testing.T) {
	ctx := context.Background()
	s := deploy(t, "FINDINGS_BUS_NAME="+localdeploy.BusName) // the bus does not exist yet
	onboardAliceAndBob(t)
	s.Portal.AddLoginEvents(login(alice, 1010, "192.0.2.99", 2*time.Minute))
	svc := auditService(t)
	if _, err := svc.Handle(ctx, scheduled(time.Now())); err != nil {
		t.Fatal(err)
	}
	if n := len(alerted(t, s)); n != 1 {
		t.Fatalf("the mailbox got %d findings, want 1 although the bus is down", n)
	}
	if err := s.StartFindings(ctx); err != nil { // the bus comes up
		t.Fatal(err)
	}
	res, err := svc.Handle(ctx, scheduled(time.Now().Add(time.Second)))
	if err != nil {
		t.Fatal(err)
	}
	evs, err := s.BusEvents(ctx, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].Detail["kind"] != "ip_not_allowed" || res.AlertsPublished != 0 {
		t.Fatalf("after the bus came up: %d events %+v, %d messages sent again", len(evs), evs, res.AlertsPublished)
	}
	if _, err := svc.Handle(ctx, scheduled(time.Now().Add(2*time.Second))); err != nil {
		t.Fatal(err)
	}
	if again, _ := s.BusEvents(ctx, time.Second); len(again) != 0 {
		t.Errorf("the outbox sent %d events again", len(again))
	}
}

// #21 §1 and WHERE-ISSUES-MEET §1: with UNKNOWN_USER_POLICY=digest (the
// default) a login of a user without an allowlist sends no message, yet its
// finding is on the findings bus like every other.
func TestDigestedUnknownUsersStillReachTheBus(t *testing.T) {
	ctx := context.Background()
	s := deployWithFindings(t)
	onboardAliceAndBob(t)
	s.Portal.AddLoginEvents(
		login(alice, 1010, "192.0.2.99", 2*time.Minute),    // violation: a message
		login(carol, 1010, "198.51.100.77", 1*time.Minute), // unknown user: the digest
	)
	res, err := auditService(t).Handle(ctx, scheduled(time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	evs, err := s.BusEvents(ctx, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, e := range evs {
		k, _ := e.Detail["kind"].(string)
		kinds[k]++
	}
	mailed := alerted(t, s)
	if len(mailed) != 1 || mailed[0]["kind"] != "ip_not_allowed" {
		t.Errorf("mailbox %v, want the violation only", summary(mailed))
	}
	if len(evs) != 2 || kinds["unknown_user"] != 1 || kinds["ip_not_allowed"] != 1 {
		t.Errorf("bus kinds %v, want one unknown_user and one ip_not_allowed", kinds)
	}
	if res.Counts["unknown_user"] != 1 {
		t.Errorf("result counts %v, want the unknown user counted", res.Counts)
	}
}

// {"action": "test-alert"} goes through every configured channel of the
// audit's own chain (the alert topic and the findings bus here), marked as a
// test, and is recorded nowhere: with the bus down it is not kept in the
// outbox (a test is sent once), and with the bus up the README's
// "everything but the test alert" rule leaves it out of the SIEM queue.
func TestTestAlertGoesThroughEveryChannelAndNeverIntoTheOutbox(t *testing.T) {
	ctx := context.Background()
	s := deploy(t, "FINDINGS_BUS_NAME="+localdeploy.BusName) // the bus does not exist yet
	d, err := wiring.Load(ctx, config.Audit)
	if err != nil {
		t.Fatal(err)
	}
	quiet(t, &d)
	fn := d.AuditFunction()
	for round, busUp := range []bool{false, true} {
		if busUp {
			if err := s.StartFindings(ctx); err != nil {
				t.Fatal(err)
			}
		}
		out, err := fn(ctx, []byte(`{"action": "test-alert"}`))
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		res, ok := out.(wiring.TestAlertResult)
		channels := []string{}
		for _, c := range res.Sent {
			channels = append(channels, c.Channel)
		}
		if !ok || !res.Test || strings.Join(channels, ",") != "sns,bus" {
			t.Errorf("round %d: result %+v, want a test sent to the topic and the bus", round, out)
		}
		// Each channel says what became of the message: the bus that does
		// not exist refused it, and the answer warns.
		wantBus := map[bool]string{false: "refused", true: "delivered"}[busUp]
		if len(res.Sent) == 2 && (res.Sent[0].Outcome != "delivered" || res.Sent[1].Outcome != wantBus) {
			t.Errorf("round %d: outcomes %+v, want sns delivered and bus %s", round, res.Sent, wantBus)
		}
		warned := strings.Contains(strings.Join(res.Warnings, "\n"), "findings bus refused the test event")
		if warned == busUp || (!busUp && res.Sent[1].Error == "") {
			t.Errorf("round %d: warnings %q, bus %+v; want a warning and an error exactly when the bus refused", round, res.Warnings, res.Sent[1])
		}
		mail, err := s.Mail(ctx, 300*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		if len(mail) != 1 || mail[0].Attributes["test"] != "true" {
			t.Errorf("round %d: mailbox %+v, want one message marked test", round, mail)
		}
		item, err := s.DDB.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(localdeploy.TableName),
			Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: findingsbus.OutboxPK}}})
		if err != nil {
			t.Fatal(err)
		}
		if len(item.Item) != 0 {
			t.Errorf("round %d: the test alert left an outbox item: %v", round, item.Item)
		}
	}
	if evs, err := s.BusEvents(ctx, 0); err != nil || len(evs) != 0 {
		t.Errorf("the SIEM queue got %d events (%v), want none: the README's rule excludes the test alert", len(evs), err)
	}
}
