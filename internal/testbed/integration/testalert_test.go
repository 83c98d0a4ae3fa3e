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
