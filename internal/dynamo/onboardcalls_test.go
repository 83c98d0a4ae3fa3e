package dynamo_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"ipguard/internal/allowlist"
	"ipguard/internal/dynamo"
	"ipguard/internal/ipguard"
	"ipguard/internal/onboard"
)

// callRecorder is a dynamo.API that notes each call: its operation, the keys
// it names (the item kinds, by key prefix) and the bytes of the items it
// wrote and read (ItemSize). before, when set, runs ahead of each call.
type callRecorder struct {
	dynamo.API
	mu     sync.Mutex
	calls  []recordedCall
	before func(op string, keys []string)
}

type recordedCall struct {
	op    string
	keys  []string // the item kinds named (key up to and including its first '#', or whole)
	bytes int      // of the items written and read
}

func kindOf(av types.AttributeValue) string {
	s, _ := av.(*types.AttributeValueMemberS)
	if s == nil {
		return "?"
	}
	if i := strings.Index(s.Value, "#"); i >= 0 && !strings.HasPrefix(s.Value, "state#") {
		return s.Value[:i+1]
	}
	return s.Value
}

func (r *callRecorder) note(op string, keys []map[string]types.AttributeValue, items ...map[string]types.AttributeValue) {
	rec := recordedCall{op: op}
	for _, k := range keys {
		rec.keys = append(rec.keys, kindOf(k["pk"]))
	}
	slices.Sort(rec.keys)
	for _, it := range items {
		rec.bytes += itemSize(it)
	}
	r.mu.Lock()
	r.calls = append(r.calls, rec)
	r.mu.Unlock()
}

func (r *callRecorder) hook(op string, keys []map[string]types.AttributeValue) {
	if r.before == nil {
		return
	}
	var ks []string
	for _, k := range keys {
		ks = append(ks, kindOf(k["pk"]))
	}
	r.before(op, ks)
}

func (r *callRecorder) GetItem(ctx context.Context, in *dynamodb.GetItemInput, o ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	r.hook("GetItem", []map[string]types.AttributeValue{in.Key})
	out, err := r.API.GetItem(ctx, in, o...)
	var item map[string]types.AttributeValue
	if out != nil {
		item = out.Item
	}
	r.note("GetItem", []map[string]types.AttributeValue{in.Key}, item)
	return out, err
}

func (r *callRecorder) PutItem(ctx context.Context, in *dynamodb.PutItemInput, o ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	keys := []map[string]types.AttributeValue{{"pk": in.Item["pk"]}}
	r.hook("PutItem", keys)
	out, err := r.API.PutItem(ctx, in, o...)
	r.note("PutItem", keys, in.Item)
	return out, err
}

func (r *callRecorder) DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, o ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	r.hook("DeleteItem", []map[string]types.AttributeValue{in.Key})
	out, err := r.API.DeleteItem(ctx, in, o...)
	r.note("DeleteItem", []map[string]types.AttributeValue{in.Key})
	return out, err
}

func (r *callRecorder) BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, o ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
	var keys []map[string]types.AttributeValue
	for _, ka := range in.RequestItems {
		keys = append(keys, ka.Keys...)
	}
	r.hook("BatchGetItem", keys)
	out, err := r.API.BatchGetItem(ctx, in, o...)
	var items []map[string]types.AttributeValue
	if out != nil {
		for _, its := range out.Responses {
			items = append(items, its...)
		}
	}
	r.note("BatchGetItem", keys, items...)
	return out, err
}

func (r *callRecorder) BatchWriteItem(ctx context.Context, in *dynamodb.BatchWriteItemInput, o ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error) {
	r.hook("BatchWriteItem", nil)
	out, err := r.API.BatchWriteItem(ctx, in, o...)
	r.note("BatchWriteItem", nil)
	return out, err
}

func (r *callRecorder) Scan(ctx context.Context, in *dynamodb.ScanInput, o ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error) {
	r.hook("Scan", nil)
	out, err := r.API.Scan(ctx, in, o...)
	var items []map[string]types.AttributeValue
	if out != nil {
		items = out.Items
	}
	r.note("Scan", nil, items...)
	return out, err
}

func (r *callRecorder) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, o ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	r.hook("UpdateItem", []map[string]types.AttributeValue{in.Key})
	out, err := r.API.UpdateItem(ctx, in, o...)
	r.note("UpdateItem", []map[string]types.AttributeValue{in.Key}, in.ExpressionAttributeValues)
	return out, err
}

func (r *callRecorder) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, o ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	var keys []map[string]types.AttributeValue
	var vals []map[string]types.AttributeValue
	for _, it := range in.TransactItems {
		switch {
		case it.Update != nil:
			keys, vals = append(keys, it.Update.Key), append(vals, it.Update.ExpressionAttributeValues)
		case it.Put != nil:
			keys, vals = append(keys, map[string]types.AttributeValue{"pk": it.Put.Item["pk"]}), append(vals, it.Put.Item)
		case it.ConditionCheck != nil:
			keys = append(keys, it.ConditionCheck.Key)
		case it.Delete != nil:
			keys = append(keys, it.Delete.Key)
		}
	}
	r.hook("TransactWriteItems", keys)
	out, err := r.API.TransactWriteItems(ctx, in, o...)
	r.note("TransactWriteItems", keys, vals...)
	return out, err
}

// take returns the calls noted since the last take.
func (r *callRecorder) take() []recordedCall {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.calls
	r.calls = nil
	return c
}

// byOp counts calls by operation and the item kinds they name, e.g.
// "BatchGetItem[lease#,state#portal-allowlist]".
func byOp(calls []recordedCall) map[string]int {
	m := map[string]int{}
	for _, c := range calls {
		m[c.op+"["+strings.Join(c.keys, ",")+"]"]++
	}
	return m
}

// listPortal is a portal that holds a list and answers at once.
type listPortal struct {
	mu      sync.Mutex
	list    []ipguard.Restriction
	enabled bool
	puts    int
}

func (p *listPortal) IPRestrictions(context.Context) ([]ipguard.Restriction, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.list), nil
}

func (p *listPortal) IPRestrictionsEnabled(context.Context) (bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.enabled, nil
}

func (p *listPortal) SaveIPRestrictions(_ context.Context, list []ipguard.Restriction, enable bool) (time.Time, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.list, p.enabled = slices.Clone(list), enable
	p.puts++
	return time.Now().UTC(), nil
}

// TestOnboardingDynamoDBCalls counts the DynamoDB calls of one onboarding
// on its hot path (issue #15 §6: moto, which serves one call at a time,
// sets most of the load test's time, so the count is what can be cut):
// a fact about the code, not a timing. Each row is one path: the change
// that takes the lease and reconciles (with 50 users stored), and the
// change whose version another holder applies while it waits (one poll).
// The item bytes of each call are logged.
func TestOnboardingDynamoDBCalls(t *testing.T) {
	db := motoDB(t)
	ctx := context.Background()
	tests := []struct {
		name  string
		wait  bool // another holder holds the lease and applies the change
		trail bool // the audit trail is read (as in production): the write is recorded for a second look
		want  map[string]int
	}{
		{"the change that reconciles", false, false, map[string]int{
			"PutItem[arrival#]": 1, // the invocation's first arrival (no requestedAt)
			"BatchGetItem[lease#,offboarded#,state#portal-allowlist,state#portal-allowlist#sent,user#]": 1, // ChangeRead
			"PutItem[user#]":                     1, // the conditional user write
			"UpdateItem[state#portal-allowlist]": 3, // the version bump, then the pass's "in flight" and final state writes
			"PutItem[lease#]":                    1, // the lease taken
			"BatchGetItem[state#portal-allowlist,state#portal-allowlist#sent]": 1, // the pass's state read
			"Scan[]":             1, // every user, for the desired state
			"DeleteItem[lease#]": 1, // the lease released
		}},
		// With the audit trail: one write more, the write's record for the
		// second look, beside the final state write (not after it); nothing
		// is due, so the pass reads no record; the episodes unchanged, the
		// state is not written again.
		{"the change that reconciles, with the audit trail", false, true, map[string]int{
			"PutItem[arrival#]": 1,
			"BatchGetItem[lease#,offboarded#,state#portal-allowlist,state#portal-allowlist#sent,user#]": 1,
			"PutItem[user#]":                     1,
			"UpdateItem[state#portal-allowlist]": 3,
			"UpdateItem[recheck#]":               1, // the record, beside the final state write
			"PutItem[lease#]":                    1,
			"BatchGetItem[state#portal-allowlist,state#portal-allowlist#sent]": 1,
			"Scan[]":             1,
			"DeleteItem[lease#]": 1,
		}},
		// Its one read finds the lease held and when that pass is due to
		// end (LastPass after its start): it sleeps until then, with no lease
		// try, and polls once.
		{"the change another holder applies", true, false, map[string]int{
			"PutItem[arrival#]": 1,
			"BatchGetItem[lease#,offboarded#,state#portal-allowlist,state#portal-allowlist#sent,user#]": 1,
			"PutItem[user#]":                              1,
			"UpdateItem[state#portal-allowlist]":          1, // the version bump
			"BatchGetItem[lease#,state#portal-allowlist]": 1, // the poll that finds it applied
		}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			table := fmt.Sprintf("calls-%d", i)
			raw := tableStore(t, db, table)
			rec := &callRecorder{API: db}
			s := dynamo.New(rec, table)
			now := time.Now().UTC()
			portal := &listPortal{enabled: true, list: []ipguard.Restriction{{IP: "192.0.2.1", ForAdmin: true}}}
			// 50 users onboarded before, and the portal as their reconcile left it.
			var owned []string
			for u := range 50 {
				ip := fmt.Sprintf("198.18.1.%d", u+1)
				if ok, err := raw.PutUserIf(ctx, ipguard.User{ID: fmt.Sprintf("old-%02d", u), Email: "o@example.com", Entries: []string{ip}, Rev: 1, CreatedAt: now, UpdatedAt: now}, 0); !ok || err != nil {
					t.Fatal(ok, err)
				}
				owned = append(owned, ip)
				portal.list = append(portal.list, ipguard.Restriction{IP: ip})
			}
			if _, err := raw.BumpVersion(ctx); err != nil {
				t.Fatal(err)
			}
			if err := raw.PutPortalState(ctx, ipguard.PortalState{Applied: 1, Owned: owned, LastSeen: portal.list, LastEnabled: true, Reconciled: true, LastReconcile: now,
				LastPass: 500 * time.Millisecond}); err != nil {
				t.Fatal(err)
			}
			svc := &onboard.Service{Store: s, Portal: portal, Leases: s, LeaseWait: 20 * time.Second,
				Settings: onboard.Settings{MaxRangeAddresses: 256, Limits: allowlist.DefaultLimits}}
			if tc.trail {
				svc.Trail = noSaves{}
			}
			if tc.wait {
				if ok, err := raw.TryAcquireLease(ctx, onboard.LeaseName, "other", time.Now().Add(time.Minute), time.Now()); !ok || err != nil {
					t.Fatal(ok, err)
				}
				// The other holder's pass applies the change just before the
				// waiter's first poll reads the state.
				var once sync.Once
				rec.before = func(op string, keys []string) {
					if op != "BatchGetItem" || !slices.Contains(keys, "lease#") || slices.Contains(keys, "user#") { // the poll, not the change's first read
						return
					}
					once.Do(func() {
						st, err := raw.PortalState(ctx)
						if err != nil {
							t.Error(err)
							return
						}
						st.Applied, st.LastSeen = st.Version, append(st.LastSeen, ipguard.Restriction{IP: "203.0.113.9"})
						if err := raw.PutPortalState(ctx, st); err != nil {
							t.Error(err)
						}
						if err := raw.ReleaseLease(ctx, onboard.LeaseName, "other"); err != nil {
							t.Error(err)
						}
					})
				}
			}
			rec.take()
			res, err := svc.Do(onboard.WithRequestID(ctx, "req-"+table), onboard.Request{Action: onboard.ActionReplace, ID: "new-1", Email: "n@example.com",
				AllowedIPs: []onboard.EntryInput{{IP: "203.0.113.9"}}})
			if err != nil || res.Portal != onboard.PortalApplied {
				t.Fatalf("onboarding: %+v, %v", res, err)
			}
			calls := rec.take()
			for _, c := range calls {
				t.Logf("%s %v: %d bytes", c.op, c.keys, c.bytes)
			}
			got := byOp(calls)
			if !maps.Equal(got, tc.want) {
				t.Errorf("%d DynamoDB calls: %v\nwant %v", len(calls), got, tc.want)
			}
		})
	}
}

// itemSize is an item's size as DynamoDB counts it (dynamo.ItemSize).
func itemSize(item map[string]types.AttributeValue) int { return dynamo.ItemSize(item) }

// noSaves is an audit trail that shows no allowlist save.
type noSaves struct{}

func (noSaves) AllowlistChanges(context.Context, time.Time) ([]onboard.Change, error) {
	return nil, nil
}
