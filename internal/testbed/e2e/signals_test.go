package e2e

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"ipguard/internal/status"
	"ipguard/internal/testbed/localdeploy"
	"ipguard/internal/wiring"
)

// lastMetrics is the function's last EMF line.
func lastMetrics(t *testing.T, fn *function) map[string]any {
	t.Helper()
	time.Sleep(100 * time.Millisecond) // let the emulator copy the last lines
	metrics, _ := logLines(t, fn.log.String())
	if len(metrics) == 0 {
		t.Fatalf("%s wrote no metrics line", fn.name)
	}
	return metrics[len(metrics)-1]
}

// itemsWithPrefix counts the table's items whose pk starts with prefix.
func itemsWithPrefix(t *testing.T, s *localdeploy.Stack, prefix string) int {
	t.Helper()
	out, err := s.DDB.Scan(context.Background(), &dynamodb.ScanInput{TableName: aws.String(localdeploy.TableName)})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, it := range out.Items {
		var pk string
		if v, ok := it["pk"]; ok {
			if b, err := json.Marshal(v); err == nil {
				pk = string(b)
			}
		}
		if strings.Contains(pk, `"`+prefix) {
			n++
		}
	}
	return n
}

// A payload the audit function does not know is InvalidInput, counted as
// Rejected (never Failures), and runs nothing: no login history read, no
// checkpoint. The schedules' own events still run the audit: the classic
// scheduled event, EventBridge Scheduler's envelope (detail "{}") and its
// Input as is ({}).
func TestUnknownAuditPayloadsAreRejectedAndSchedulesStillRun(t *testing.T) {
	s := deploy(t)
	fn := startFunction(t, "audit", s.FunctionEnv())
	for _, tt := range []struct {
		name, payload, says string
	}{
		{"unknown action", `{"action": "statsu"}`, `action "statsu"`},
		{"an onboarding request", `{"id": "u1", "allowedIps": ["203.0.113.10"]}`, "is not a field of an audit run"},
		{"malformed JSON", "{\"from\": \"2026-11-24T00:00:00Z\",\n \"to\" \"2026-11-24T01:00:00Z\"}", "line 2, column 7"},
		{"an event for another function", `{"version":"0","id":"1","detail-type":"UserOnboarded","source":"hr","time":"2026-11-25T10:00:00Z","detail":{"id":"u1"}}`, "is not a field of an audit run"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := fn.invoke(t, []byte(tt.payload))
			if r.ErrorType != "InvalidInput" || !strings.Contains(r.ErrorMessage, tt.says) {
				t.Errorf("answer %s, want InvalidInput saying %q", r.Raw, tt.says)
			}
			m := lastMetrics(t, fn)
			if m[wiring.MetricFailures] != 0.0 || m[wiring.MetricRejected] != 1.0 {
				t.Errorf("metrics line %v, want Failures 0 and Rejected 1", m)
			}
		})
	}
	for _, r := range s.Portal.Requests() {
		if strings.Contains(r.Path, "/security/audit/login") {
			t.Fatalf("a refused payload read the login history (%s)", r.Path)
		}
	}
	if _, ok, err := s.Store.Checkpoint(context.Background()); err != nil || ok {
		t.Fatalf("checkpoint after refused payloads: %v, %v; want none", ok, err)
	}
	scheduler := map[string]any{"version": "0", "id": "s1", "detail-type": "Scheduled Event", "source": "aws.scheduler", "account": "123456789012",
		"time": time.Now().UTC().Format(time.RFC3339), "region": localdeploy.Region, "resources": []string{}, "detail": "{}"}
	for name, payload := range map[string]any{"classic scheduled event": scheduledEvent(time.Now()), "scheduler envelope": scheduler, "scheduler input": map[string]any{}} {
		var res map[string]any
		fn.invoke(t, payload).result(t, &res)
		if pages, _ := res["pagesFetched"].(float64); pages < 1 || res["to"] == "" {
			t.Errorf("%s: result %v, want an audit run", name, res)
		}
	}
}

// {"action": "test-alert"} sends one message through the alert topic to
// every subscriber, marked as a test in its JSON and in its attributes, and
// records nothing: no alerted item, no finding metric.
func TestTestAlertReachesEverySubscriberMarkedAsATest(t *testing.T) {
	ctx := context.Background()
	s := deploy(t)
	fn := startFunction(t, "audit", s.FunctionEnv())
	var res wiring.TestAlertResult
	fn.invoke(t, map[string]any{"action": "test-alert"}).result(t, &res)
	if !res.Test || len(res.Sent) != 1 || res.Sent[0].MessageID == "" || res.ConfirmedSubscribers == nil || *res.ConfirmedSubscribers != 1 || len(res.Warnings) != 0 {
		t.Errorf("result %s, want one message sent to 1 confirmed subscriber", jsonText(res))
	}
	mail, err := s.Mail(ctx, mailQuiet)
	if err != nil {
		t.Fatal(err)
	}
	if len(mail) != 1 {
		t.Fatalf("%d messages in the mailbox, want 1", len(mail))
	}
	var body map[string]any
	if err := json.Unmarshal([]byte(mail[0].Message), &body); err != nil || body["test"] != true || body["kind"] != "test_alert" {
		t.Errorf("message %s, want JSON with \"test\": true", mail[0].Message)
	}
	if mail[0].Attributes["test"] != "true" || !strings.Contains(mail[0].Subject, "TEST") {
		t.Errorf("attributes %v, subject %q: want test=true and TEST in the subject", mail[0].Attributes, mail[0].Subject)
	}
	if n := itemsWithPrefix(t, s, "alerted"); n != 0 {
		t.Errorf("%d alerted items after a test alert, want none", n)
	}
	m := lastMetrics(t, fn)
	if m[wiring.MetricFailures] != 0.0 || m[wiring.MetricConfirmedSubscribers] != 1.0 || m["test"] != true {
		t.Errorf("metrics line %v, want Failures 0, ConfirmedSubscribers 1, test", m)
	}
	for name := range m {
		if strings.HasPrefix(name, "Findings") || name == wiring.MetricAlertsPublished {
			t.Errorf("the test alert wrote the finding metric %s", name)
		}
	}
}

// Each scheduled run and the status say how many confirmed subscribers the
// alert topic has (ConfirmedSubscribers); a stack left with none says so in
// its status.
func TestRunsAndStatusCountConfirmedSubscribers(t *testing.T) {
	ctx := context.Background()
	s := deploy(t)
	fn := startFunction(t, "audit", s.FunctionEnv())
	fn.invoke(t, scheduledEvent(time.Now())).result(t, new(map[string]any))
	if m := lastMetrics(t, fn); m[wiring.MetricConfirmedSubscribers] != 1.0 {
		t.Errorf("run's metrics line %v, want ConfirmedSubscribers 1", m)
	}
	var st status.Report
	fn.invoke(t, map[string]any{"action": "status"}).result(t, &st)
	if st.Delivery == nil || st.Delivery.ConfirmedSubscribers != 1 || len(st.Warnings) != 0 {
		t.Errorf("status %s, want 1 confirmed subscriber and no warning", jsonText(st))
	}

	subs, err := s.SNS.ListSubscriptionsByTopic(ctx, &sns.ListSubscriptionsByTopicInput{TopicArn: aws.String(s.TopicARN)})
	if err != nil {
		t.Fatal(err)
	}
	for _, sub := range subs.Subscriptions {
		if _, err := s.SNS.Unsubscribe(ctx, &sns.UnsubscribeInput{SubscriptionArn: sub.SubscriptionArn}); err != nil {
			t.Fatal(err)
		}
	}
	fn.invoke(t, scheduledEvent(time.Now())).result(t, new(map[string]any))
	if m := lastMetrics(t, fn); m[wiring.MetricConfirmedSubscribers] != 0.0 || m[wiring.MetricFailures] != 0.0 {
		t.Errorf("run's metrics line %v, want ConfirmedSubscribers 0 (and no failure)", m)
	}
	st = status.Report{}
	fn.invoke(t, map[string]any{"action": "status"}).result(t, &st)
	if st.Delivery == nil || st.Delivery.ConfirmedSubscribers != 0 || len(st.Warnings) == 0 || st.Warnings[0] != status.NoSubscriber {
		t.Errorf("status %s, want 0 confirmed subscribers and the warning %q", jsonText(st), status.NoSubscriber)
	}
	if m := lastMetrics(t, fn); m[wiring.MetricConfirmedSubscribers] != 0.0 {
		t.Errorf("status's metrics line %v, want ConfirmedSubscribers 0", m)
	}
}

// Rotating the key never fails a call: the function's cached key is
// revoked on the portal and the secret holds a new one; the next run's first
// refused call reads the secret again and is sent again with the new key.
func TestRotatedKeyNeverFailsACall(t *testing.T) {
	ctx := context.Background()
	s := deployWithJane(t)
	fn := startFunction(t, "audit", s.FunctionEnv("SECRET_CACHE_TTL=1h", "LOG_LEVEL=info"))
	fn.invoke(t, scheduledEvent(time.Now())).result(t, new(map[string]any)) // caches the key

	old, ok := s.Portal.Key(s.APIKey)
	if !ok {
		t.Fatal("the deployment's key is not on the portal")
	}
	fresh := old
	fresh.ID, fresh.Name, fresh.Key = old.ID+"-2", "ipguard rotated", "sk-"+strings.Repeat("7", 64)
	fresh.KeyPostfix = fresh.Key[len(fresh.Key)-4:]
	if err := s.Portal.PutKey(fresh); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SM.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(localdeploy.SecretName),
		SecretString: aws.String(`{"apiKey": "` + fresh.Key + `"}`)}); err != nil {
		t.Fatal(err)
	}
	old.IsActive = false // revoked at once
	if err := s.Portal.PutKey(old); err != nil {
		t.Fatal(err)
	}
	var res map[string]any
	fn.invoke(t, scheduledEvent(time.Now())).result(t, &res)
	if pages, _ := res["pagesFetched"].(float64); pages < 1 {
		t.Errorf("run after the rotation: %v, want an audit run", res)
	}
	if !strings.Contains(fn.log.String(), "sending again with it") {
		t.Errorf("the log does not say the refused call was sent again with the rotated key")
	}
}

// An onboarding payload that is not JSON is InvalidInput naming where it
// breaks, counted as Rejected and not as a failure.
func TestOnboardMalformedJSONIsRejectedNamingThePosition(t *testing.T) {
	s := deploy(t)
	fn := startFunction(t, "onboard", s.FunctionEnv())
	r := fn.invoke(t, []byte(`{"id": "u1", "allowedIps": ["203.0.113.10"],}`))
	if r.ErrorType != "InvalidInput" || !strings.Contains(r.ErrorMessage, "line 1, column 45") {
		t.Errorf("answer %s, want InvalidInput at line 1, column 45", r.Raw)
	}
	if m := lastMetrics(t, fn); m[wiring.MetricFailures] != 0.0 || m[wiring.MetricRejected] != 1.0 {
		t.Errorf("metrics line %v, want Failures 0 and Rejected 1", m)
	}
}

// The users-left check keeps its place in DynamoDB: a sync by the real
// onboarding function leaves the rotation's cursor in its own item, so the
// next sync (any container, after any cold start) goes on from there.
func TestSyncKeepsTheUsersLeftRotationInTheTable(t *testing.T) {
	s := deployWithJane(t)
	fn := startFunction(t, "onboard", s.FunctionEnv("SYNC_SCHEDULE=rate(15 minutes)"))
	var res map[string]any
	fn.invoke(t, map[string]any{"action": "sync"}).result(t, &res)
	c, err := s.Store.UserCheckCursor(context.Background())
	if err != nil || c.After != janeID || c.At.IsZero() {
		t.Errorf("rotation cursor %+v, %v; want it past Jane (%s)", c, err, janeID)
	}
}
