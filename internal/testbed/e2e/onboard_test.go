package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"ipguard/internal/ipguard"
	"ipguard/internal/onboard"
	"ipguard/internal/replay"
	"ipguard/internal/testbed/localdeploy"
)

const janeID = "6b2f7a1e-3c44-4a5b-9e0f-1d2c3b4a5f60"

func TestOnboardStoresUserAndAddsAddressesToPortal(t *testing.T) {
	ctx := context.Background()
	s := deploy(t)
	manual := []ipguard.Restriction{{IP: "192.0.2.1", ForAdmin: true}, {IP: "192.0.2.2"}}
	s.Portal.SetRestrictions(manual, false)
	fn := startFunction(t, "onboard", s.FunctionEnv())

	var res onboard.Result
	fn.invoke(t, map[string]any{
		"id":         strings.ToUpper(janeID), // GUIDs are stored lower-case, as login events carry them
		"email":      "jane.roe@example.com",
		"allowedIps": []string{"203.0.113.10", "198.51.100.0-198.51.100.3", "10.20.0.0/30", "2001:db8::1"},
	}).result(t, &res)

	wantAdded := []string{"203.0.113.10",
		"198.51.100.0", "198.51.100.1", "198.51.100.2", "198.51.100.3",
		"10.20.0.0", "10.20.0.1", "10.20.0.2", "10.20.0.3",
		"2001:db8::1"}
	if res.UserID != janeID || !res.Stored || !res.PortalUpdated || !res.RestrictionsEnabled ||
		!slices.Equal(res.PortalAdded, wantAdded) || len(res.Entries) != 4 {
		t.Errorf("result = %s\nwant userId %s, stored, portalUpdated, restrictionsEnabled, 4 entries, portalAdded %q", jsonText(res), janeID, wantAdded)
	}

	u, ok, err := s.Store.GetUser(ctx, janeID)
	if err != nil || !ok {
		t.Fatalf("GetUser(%s) = found %v, %v; want the stored user", janeID, ok, err)
	}
	if u.Email != "jane.roe@example.com" || !slices.Equal(u.Entries, res.Entries) || u.CreatedAt.IsZero() {
		t.Errorf("stored user = %+v, want email jane.roe@example.com, entries %q and a creation time", u, res.Entries)
	}

	list, enable := s.Portal.Restrictions()
	want := append([]ipguard.Restriction(nil), manual...)
	for _, ip := range wantAdded {
		want = append(want, ipguard.Restriction{IP: ip})
	}
	if !slices.Equal(list, want) || !enable {
		t.Errorf("portal allowlist = %v (enable %v)\nwant the manual entries unchanged, then the additions: %v (enable true)", list, enable, want)
	}
}

func TestOnboardRejectsInvalidInputWithoutWriting(t *testing.T) {
	ctx := context.Background()
	s := deploy(t)
	fn := startFunction(t, "onboard", s.FunctionEnv())

	r := fn.invoke(t, map[string]any{
		"id":         janeID,
		"email":      "jane.roe@example.com",
		"allowedIps": []string{"203.0.113.10", "300.1.2.3"},
	})
	if r.ErrorType != "InvalidInput" || !strings.Contains(r.ErrorMessage, "allowedIps[1]") || !strings.Contains(r.ErrorMessage, "300.1.2.3") {
		t.Errorf("response = %s\nwant errorType InvalidInput and a message naming allowedIps[1] and 300.1.2.3", r.Raw)
	}
	if users, err := s.Store.AllUsers(ctx); err != nil || len(users) != 0 {
		t.Errorf("stored users = %+v, %v; want none", users, err)
	}
	assertNoPut(t, s)
}

func TestOnboardWithoutTableVariableIsConfigurationError(t *testing.T) {
	s := deploy(t)
	fn := startFunction(t, "onboard", without(s.FunctionEnv(), "ALLOWLIST_TABLE"))

	r := fn.invoke(t, map[string]any{"id": janeID, "email": "jane.roe@example.com", "allowedIps": []string{"203.0.113.10"}})
	if r.ErrorType != "ConfigurationError" || !strings.Contains(r.ErrorMessage, "ALLOWLIST_TABLE") {
		t.Errorf("response = %s\nwant errorType ConfigurationError naming ALLOWLIST_TABLE", r.Raw)
	}
	assertNoPut(t, s)
}

func TestOnboardWithWrongAPIKeyFailsWithoutRevealingAnyKey(t *testing.T) {
	ctx := context.Background()
	s := deploy(t)
	wrong := "sk-wrong-" + strings.Repeat("7f3a", 12)
	val, _ := json.Marshal(map[string]string{"apiKey": wrong})
	if _, err := s.SM.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{
		SecretId: aws.String(localdeploy.SecretName), SecretString: aws.String(string(val)),
	}); err != nil {
		t.Fatal(err)
	}
	fn := startFunction(t, "onboard", s.FunctionEnv("LOG_LEVEL=debug"))

	r := fn.invoke(t, map[string]any{"id": janeID, "email": "jane.roe@example.com", "allowedIps": []string{"203.0.113.10"}})
	if r.ErrorType != "ConfigurationError" || r.ErrorMessage == "" {
		t.Errorf("response = %s\nwant errorType ConfigurationError (the portal refused the key)", r.Raw)
	}
	if err := fn.stop(); err != nil {
		t.Fatal(err)
	}
	log := fn.log.String()
	for name, key := range map[string]string{"the wrong key": wrong, "the portal's key": s.APIKey} {
		if strings.Contains(string(r.Raw), key) {
			t.Errorf("the error response contains %s", name)
		}
		if strings.Contains(log, key) {
			t.Errorf("the function log contains %s", name)
		}
	}
	if list, _ := s.Portal.Restrictions(); len(list) != 0 {
		t.Errorf("portal allowlist = %v, want it untouched (empty)", list)
	}
	assertNoPut(t, s)
}

// assertNoPut fails if the portal received any PUT.
func assertNoPut(t *testing.T, s *localdeploy.Stack) {
	t.Helper()
	for _, r := range s.Portal.Requests() {
		if r.Method == http.MethodPut {
			t.Errorf("portal received %s %s (status %d), want no PUT", r.Method, r.Path, r.Status)
		}
	}
}

// jsonText renders a value for a failure message.
func jsonText(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// A pipeline that adds its own "source" (or "id") field to a direct request
// is not taken for an EventBridge envelope: only the whole envelope is.
func TestDirectRequestWithASourceFieldIsOnboardedAsIs(t *testing.T) {
	s := deploy(t)
	fn := startFunction(t, "onboard", s.FunctionEnv())
	var res map[string]any
	fn.invoke(t, map[string]any{"source": "hr-system", "id": janeID, "email": "jane.roe@example.com",
		"allowedIps": []string{"203.0.113.10"}}).result(t, &res)
	if _, ok, err := s.Store.GetUser(context.Background(), janeID); err != nil || !ok {
		t.Fatalf("user not stored (%v): %v", err, res)
	}
}

// The README's replay command (go run ./cmd/replay) against a queue holding
// what Lambda and EventBridge put there: an on-failure record, an undelivered
// EventBridge event, and a request that fails again.
func TestReplayOfFailedOnboardings(t *testing.T) {
	ctx := context.Background()
	s := deploy(t)
	fn := startFunction(t, "onboard", s.FunctionEnv())
	q, err := s.SQS.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("onboard-failures")})
	if err != nil {
		t.Fatal(err)
	}
	jane := map[string]any{"id": janeID, "email": "jane.roe@example.com", "allowedIps": []string{"203.0.113.10"}}
	record := map[string]any{ // as Lambda writes it to an on-failure destination
		"version": "1.0", "timestamp": time.Now().UTC().Format(time.RFC3339),
		"requestContext": map[string]any{"requestId": "r1", "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:onboard:$LATEST",
			"condition": "RetriesExhausted", "approximateInvokeCount": 3},
		"requestPayload":  jane,
		"responseContext": map[string]any{"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
		"responsePayload": map[string]any{"errorType": "DependencyUnavailable", "errorMessage": "docspace: put ip restrictions: HTTP 503"},
	}
	event := map[string]any{ // as the rule's dead-letter queue holds it
		"version": "0", "id": "evt-1", "detail-type": "UserOnboarded", "source": "hr.onboarding", "account": "123456789012",
		"time": time.Now().UTC().Format(time.RFC3339), "region": "us-east-1", "resources": []string{},
		"detail": map[string]any{"id": "user-2", "email": "sam@example.com", "allowedIps": []string{"198.51.100.9"}},
	}
	bad := map[string]any{"requestContext": map[string]any{"condition": "RetriesExhausted"}, "requestPayload": map[string]any{"id": "user-3"}}
	for _, body := range []any{record, event, bad} {
		b, _ := json.Marshal(body)
		if _, err := s.SQS.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: q.QueueUrl, MessageBody: aws.String(string(b))}); err != nil {
			t.Fatal(err)
		}
	}

	var dry bytes.Buffer
	sum, err := replay.Run(ctx, s.SQS, nil, replay.Options{QueueURL: *q.QueueUrl, DryRun: true, Out: &dry, Max: 3})
	if err != nil || sum.Seen != 3 || !strings.Contains(dry.String(), "RetriesExhausted") || !strings.Contains(dry.String(), "DependencyUnavailable") {
		t.Fatalf("dry run: %+v %v\n%s", sum, err, dry.String())
	}

	var out bytes.Buffer
	inv := replay.Lambda{Config: s.AWS, Function: "function", Endpoint: fn.emu.URL}
	sum, err = replay.Run(ctx, s.SQS, inv, replay.Options{QueueURL: *q.QueueUrl, Out: &out, Max: 10})
	if err != nil || sum.Replayed != 2 || sum.Failed != 1 {
		t.Fatalf("replay = %+v, %v; want 2 replayed, 1 failed again\n%s", sum, err, out.String())
	}
	for _, id := range []string{janeID, "user-2"} {
		if _, ok, err := s.Store.GetUser(ctx, id); err != nil || !ok {
			t.Errorf("user %s not onboarded by the replay (%v)", id, err)
		}
	}
	attrs, err := s.SQS.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: q.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameApproximateNumberOfMessages}})
	if err != nil || attrs.Attributes["ApproximateNumberOfMessages"] != "1" {
		t.Errorf("queue holds %v messages (%v), want the one that failed again", attrs.Attributes, err)
	}
}
