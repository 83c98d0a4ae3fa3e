package integration

import (
	"context"
	"path"
	"slices"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"ipguard/internal/config"
	"ipguard/internal/dynamo"
	"ipguard/internal/testbed/devportal"
	"ipguard/internal/wiring"
)

// writeRecorder is the DynamoDB API with every partition key a write names
// recorded: what IAM's dynamodb:LeadingKeys condition sees.
type writeRecorder struct {
	dynamo.API
	mu   sync.Mutex
	keys map[string]bool
}

func (r *writeRecorder) note(items ...map[string]types.AttributeValue) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, it := range items {
		if pk, ok := it["pk"].(*types.AttributeValueMemberS); ok {
			r.keys[pk.Value] = true
		}
	}
}

func (r *writeRecorder) PutItem(ctx context.Context, in *dynamodb.PutItemInput, o ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	r.note(in.Item)
	return r.API.PutItem(ctx, in, o...)
}

func (r *writeRecorder) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, o ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	r.note(in.Key)
	return r.API.UpdateItem(ctx, in, o...)
}

func (r *writeRecorder) DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, o ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	r.note(in.Key)
	return r.API.DeleteItem(ctx, in, o...)
}

func (r *writeRecorder) BatchWriteItem(ctx context.Context, in *dynamodb.BatchWriteItemInput, o ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error) {
	for _, reqs := range in.RequestItems {
		for _, w := range reqs {
			if w.PutRequest != nil {
				r.note(w.PutRequest.Item)
			}
			if w.DeleteRequest != nil {
				r.note(w.DeleteRequest.Key)
			}
		}
	}
	return r.API.BatchWriteItem(ctx, in, o...)
}

func (r *writeRecorder) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, o ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	for _, w := range in.TransactItems {
		switch {
		case w.Put != nil:
			r.note(w.Put.Item)
		case w.Update != nil:
			r.note(w.Update.Key)
		case w.Delete != nil:
			r.note(w.Delete.Key)
		case w.ConditionCheck != nil:
			r.note(w.ConditionCheck.Key)
		}
	}
	return r.API.TransactWriteItems(ctx, in, o...)
}

// recorded loads a function's wiring with its table writes recorded.
func recorded(t *testing.T, fn config.Function) (wiring.Deps, *writeRecorder) {
	t.Helper()
	d, err := wiring.Load(context.Background(), fn)
	if err != nil {
		t.Fatal(err)
	}
	quiet(t, &d)
	rec := &writeRecorder{API: dynamodb.NewFromConfig(d.AWS), keys: map[string]bool{}}
	d.Store = dynamo.New(rec, d.Config.Table)
	return d, rec
}

// allowedBy reports whether IAM's StringLike would let the key through one
// of the patterns (* matches any run of characters, "/" included).
func allowedBy(key string, patterns []string) bool {
	for _, p := range patterns {
		if ok, _ := path.Match(p, key); ok {
			return true
		}
		if prefix, wild := cutStar(p); wild && len(key) >= len(prefix) && key[:len(prefix)] == prefix {
			return true
		}
	}
	return false
}

func cutStar(p string) (string, bool) {
	if n := len(p); n > 0 && p[n-1] == '*' {
		return p[:n-1], true
	}
	return p, false
}

// Least privilege holds for what the code really writes (#14 §4,
// WHERE-ISSUES-MEET §16): each function, driven through onboarding, sync,
// offboarding, an audit that alerts, ends a session, escalates, sees a
// failed-login burst and watches an expiring key, and the status, writes
// only items its role's dynamodb:LeadingKeys condition allows.
func TestEachFunctionWritesOnlyTheItemsItsRoleAllows(t *testing.T) {
	s := deployEnforcing(t, "ENFORCEMENT_MODE=end-session", "ENFORCEMENT_DISABLE_AFTER=1", "FAILED_LOGIN_THRESHOLD=3")
	ctx := context.Background()

	onb, onbWrites := recorded(t, config.Onboard)
	onboard := onb.OnboardHandler()
	for _, p := range []string{
		`{"id":"` + alice + `","email":"alice@example.com","allowedIps":["203.0.113.10"]}`,
		`{"action":"add","id":"` + bob + `","allowedIps":["192.0.2.77"]}`,
		`{"action":"sync"}`,
		`{"action":"offboard","id":"` + otherAdmin + `"}`,
	} {
		if _, err := onboard(ctx, []byte(p)); err != nil {
			t.Fatalf("onboarding %s: %v", p, err)
		}
	}

	k, _ := s.Portal.Key(s.APIKey)
	exp := time.Now().Add(6 * 24 * time.Hour)
	k.ExpiresAt = &exp
	if err := s.Portal.PutKey(k); err != nil {
		t.Fatal(err)
	}
	var evs []devportal.LoginEvent
	evs = append(evs, login(alice, 1010, "198.51.100.1", 2*time.Minute))
	for i := 0; i < 3; i++ {
		evs = append(evs, login(bob, 1005, "198.51.100.66", time.Minute))
	}
	s.Portal.AddLoginEvents(evs...)
	aud, audWrites := recorded(t, config.Audit)
	run := aud.AuditFunction()
	if _, err := run(ctx, scheduled(time.Now())); err != nil {
		t.Fatalf("audit: %v", err)
	}
	if _, err := run(ctx, []byte(`{"action": "status"}`)); err != nil {
		t.Fatalf("status: %v", err)
	}

	for _, tt := range []struct {
		function string
		writes   *writeRecorder
		allowed  []string
		mustHave []string // prefixes the scenario must have reached, or it proves little
	}{
		{"OnboardFunction", onbWrites, dynamo.OnboardWrites, []string{"user#", "lease#", "state#"}},
		{"AuditFunction", audWrites, dynamo.AuditWrites, []string{"lease#", "checkpoint#", "alerted#", "alertedip#", "response#", "violations#", "keyalert#", "key#", "lastrun#"}},
	} {
		var keys []string
		for k := range tt.writes.keys {
			keys = append(keys, k)
			if !allowedBy(k, tt.allowed) {
				t.Errorf("%s writes %q, which its role's LeadingKeys (%v) do not allow", tt.function, k, tt.allowed)
			}
		}
		sort.Strings(keys)
		for _, p := range tt.mustHave {
			if !slices.ContainsFunc(keys, func(k string) bool { return len(k) >= len(p) && k[:len(p)] == p }) {
				t.Errorf("%s wrote no %s item (keys %v): the scenario does not exercise it", tt.function, p, keys)
			}
		}
	}
}

// Both functions, as wired, take their portal requests from one budget in
// the table (#17): a request of each reserves the first chunk (4 tokens) of
// the window's item, so the windows' counts add up to two chunks. (Before,
// each container paced on its own and nothing was written.)
func TestBothFunctionsTakeTheirPortalRequestsFromOneBudget(t *testing.T) {
	deploy(t)
	ctx := context.Background()
	var table string
	var db *dynamodb.Client
	for _, fn := range []config.Function{config.Onboard, config.Audit} {
		d, err := wiring.Load(ctx, fn)
		if err != nil {
			t.Fatal(err)
		}
		quiet(t, &d)
		if _, err := d.Portal.KeyUser(ctx); err != nil {
			t.Fatalf("function %d: %v", fn, err)
		}
		table, db = d.Config.Table, dynamodb.NewFromConfig(d.AWS)
	}
	out, err := db.Scan(ctx, &dynamodb.ScanInput{TableName: &table})
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, it := range out.Items {
		pk, _ := it["pk"].(*types.AttributeValueMemberS)
		if pk == nil || len(pk.Value) < len("budget#portal#") || pk.Value[:len("budget#portal#")] != "budget#portal#" {
			continue
		}
		n, _ := it["n"].(*types.AttributeValueMemberN)
		if n == nil {
			t.Fatalf("budget item %s without n: %v", pk.Value, it)
		}
		v, _ := strconv.Atoi(n.Value)
		total += v
	}
	if total != 8 {
		t.Errorf("the budget's windows hold %d tokens, want 8 (a chunk of 4 for each function)", total)
	}
}
