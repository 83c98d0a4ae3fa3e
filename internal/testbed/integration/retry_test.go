package integration

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/lambdacontext"
)

// Lambda delivers an asynchronous invocation again with the same request
// id (its retries after an error, or a duplicate from its queue). Through
// the real handler, DynamoDB and the dev portal: a direct payload without
// requestedAt is dated by its request id's first arrival, so its second
// delivery after a newer remove does not give the address back.
func TestARedeliveredAsyncInvocationDoesNotUndoANewerChange(t *testing.T) {
	s := deploy(t)
	svc := onboardService(t)
	mustDo(t, svc, `{"id":"`+alice+`","email":"alice@example.com","allowedIps":["203.0.113.10"]}`)
	add := []byte(`{"action":"add","id":"` + alice + `","allowedIps":["203.0.113.20"]}`)
	invocation := lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{AwsRequestID: "c0ffee00-1111-4222-8333-444455556666"})
	if _, err := svc.Handle(invocation, add); err != nil {
		t.Fatal(err)
	}
	mustDo(t, svc, `{"action":"remove","id":"`+alice+`","allowedIps":["203.0.113.20"]}`)
	res, err := svc.Handle(invocation, add) // the same invocation, delivered again
	if err != nil {
		t.Fatal(err)
	}
	if got := portalIPs(s); slices.Contains(got, "203.0.113.20") {
		t.Errorf("portal = %v; the redelivered add undid the newer remove", got)
	}
	if w := strings.Join(res.Warnings, " "); !strings.Contains(w, "203.0.113.20") {
		t.Errorf("warnings %q; want the entry a newer request removed named", w)
	}
}
