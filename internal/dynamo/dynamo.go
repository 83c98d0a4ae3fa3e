// Package dynamo is the DynamoDB adapter: one Store over the single table
// that DEVELOPERS.md describes item by item. It implements the domain's
// store ports: onboard.Store (users, the portal state and its version),
// audit.Store (users, the audit progress with its cursor, alerted events and
// alerted bursts), lease.Backend (lease records), enforce.Store (enforcement
// records and violations), and what keywatch and status read and write (key
// alerts sent, the key's description, the last run, the user count). The
// in-memory fakes of those ports (leasetest, audittest, onboardtest,
// enforcetest) are held to the same contract tables as this store.
//
// Items with an expiresAt are read as expired from that second on: DynamoDB's
// TTL deletes late (and moto never), so readers compare it with now.
//
// Every method returns an *ipguard.Error: EConfig (naming ALLOWLIST_TABLE)
// when the table does not exist, access is denied or the request is refused
// as invalid; EUnavailable when DynamoDB throttles, fails with a 5xx or does
// not answer (a later retry may succeed); EInternal for an item this package
// cannot read.
package dynamo

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"ipguard/internal/awserr"
	"ipguard/internal/ipguard"
)

// API is the subset of *dynamodb.Client the store uses.
type API interface {
	GetItem(context.Context, *dynamodb.GetItemInput, ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(context.Context, *dynamodb.PutItemInput, ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	DeleteItem(context.Context, *dynamodb.DeleteItemInput, ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
	BatchGetItem(context.Context, *dynamodb.BatchGetItemInput, ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error)
	BatchWriteItem(context.Context, *dynamodb.BatchWriteItemInput, ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error)
	Scan(context.Context, *dynamodb.ScanInput, ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error)
	UpdateItem(context.Context, *dynamodb.UpdateItemInput, ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	// TransactWriteItems writes the portal state's two items together.
	TransactWriteItems(context.Context, *dynamodb.TransactWriteItemsInput, ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error)
}

// Store reads and writes the allowlist table. It is safe for concurrent use.
type Store struct {
	api   API
	table string
	// olderState: a read of the portal state found attributes that a
	// version before the packed state wrote (stateAttrsBefore); the next
	// state write removes them (see PutPortalState).
	olderState atomic.Bool
}

// New returns a Store over the table named table (ALLOWLIST_TABLE).
func New(api API, table string) *Store {
	return &Store{api: api, table: table}
}

// DynamoDB limits per batch call.
const (
	maxBatchGet   = 100
	maxBatchWrite = 25
	// maxBatchAttempts bounds the retries of unprocessed keys/items when ctx
	// has no deadline.
	maxBatchAttempts = 10
)

// Key prefixes of the single-table items.
const (
	userPrefix    = "user#"
	leasePrefix   = "lease#"
	alertedPrefix = "alerted#"
	// alertedIPPrefix keys the spans of failed logins from one address that
	// were alerted as a burst.
	alertedIPPrefix = "alertedip#"
	// failuresPrefix keys the failed logins remembered per time bucket
	// (see failures.go).
	failuresPrefix = "failures#"
	// historyPrefix keys a user's allowlist history (see history.go).
	historyPrefix = "history#"
	// enforcement: the exactly-once records and the violations per user
	responsePrefix   = "response#"
	violationsPrefix = "violations#"
	// userCheckPrefix: the users-left rotation's place (usercheck.go)
	userCheckPrefix = "usercheck#"
	// offboardedPrefix keys when a user was last offboarded (users.go),
	// kept for a bounded time so that a replay older than it is stale.
	offboardedPrefix = "offboarded#"
	// arrivalPrefix keys an invocation's first arrival by its request id
	// (users.go), so that Lambda's retry of it keeps its time.
	arrivalPrefix = "arrival#"
	// budgetPrefix keys the windows of the portal's request budget shared
	// by both functions' containers (lease.go, Reserve).
	budgetPrefix  = "budget#portal#"
	checkpointPK  = "checkpoint#audit"
	portalStatePK = "state#portal-allowlist"
)

// The items each function writes, as the template's dynamodb:LeadingKeys
// patterns (IAM StringLike: a key, or a prefix followed by *): a role may
// write only its own function's items, so a compromised audit cannot change
// a user's allowlist or the desired state onboarding pushes to the portal.
// A test holds these to every key constant of this package, and another to
// the conditions in template.yaml.
var (
	AuditWrites = []string{
		leasePrefix + "audit", // audit.LeaseName
		checkpointPK,
		alertedPrefix + "*",
		alertedIPPrefix + "*",
		responsePrefix + "*",
		violationsPrefix + "*",
		keyAlertPrefix + "*",
		keyPK,
		lastRunPK,
		// Items of the audit's failed-login buckets, behaviour baselines,
		// digest days and findings-bus outbox (#16, #17, #18).
		failuresPrefix + "*",
		BaselinePrefix + "*",
		EpisodePrefix + "*", // open episodes of logins outside the allowlist (#21 §2)
		"digest#*",
		"outbox#bus",
		// The sliding windows' buckets that span runs (#21 §3).
		SprayBucketPrefix + "*",
		budgetPrefix + "*", // the portal's request budget, shared with onboarding (#17)
	}
	OnboardWrites = []string{
		userPrefix + "*",
		leasePrefix + "portal-allowlist", // onboard.LeaseName
		portalStatePK,
		portalSentPK,           // the PUT in flight and the recent PUTs (#15: an item of its own)
		"usercheck#*",          // the users-left rotation's place (#14 §5)
		"outbox#onboard",       // the reconciler's alerts still to send (#15)
		recheckPK,              // the writes to look at again once the audit trail caught up (#15 §5)
		"outbox#bus-onboard",   // findings the bus refused onboarding, sent again by its next invocation (#18)
		historyPrefix + "*",    // each user's allowlist history (#16 §7)
		offboardedPrefix + "*", // when a user was offboarded, for stale replays (#15 §5)
		arrivalPrefix + "*",    // an invocation's first arrival, for Lambda's retries (#15 §5)
		budgetPrefix + "*",     // the portal's request budget, shared with the audit (#17)
	}
)

// fail classifies err from the operation op (e.g. "put user u1"): see
// package awserr; a missing table, a denied permission or a request refused
// as invalid is EConfig naming ALLOWLIST_TABLE.
func (s *Store) fail(op string, err error) error {
	return awserr.Classify(err, op, awserr.Resource{Service: "dynamodb", Field: "ALLOWLIST_TABLE", Value: s.table})
}

// getItem reads the item pk with a strongly consistent read; nil when
// there is none. Failures are classified under op.
func (s *Store) getItem(ctx context.Context, op, pk string) (map[string]types.AttributeValue, error) {
	out, err := s.api.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(s.table), Key: key(pk), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return nil, s.fail(op, err)
	}
	return out.Item, nil
}

// putItem writes item whole, unconditionally. Failures are classified
// under op.
func (s *Store) putItem(ctx context.Context, op string, item map[string]types.AttributeValue) error {
	if _, err := s.api.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.table), Item: item}); err != nil {
		return s.fail(op, err)
	}
	return nil
}

// isConditionFailed reports whether err is DynamoDB's refusal of a write
// whose condition did not hold.
func isConditionFailed(err error) bool {
	var ccf *types.ConditionalCheckFailedException
	return errors.As(err, &ccf)
}

// conditional is the outcome of a conditional write that returned err:
// false with a nil error when its condition did not hold, true when it was
// applied, any other failure classified under op.
func (s *Store) conditional(op string, err error) (bool, error) {
	if isConditionFailed(err) {
		return false, nil
	}
	if err != nil {
		return false, s.fail(op, err)
	}
	return true, nil
}

// corrupt reports an item the store cannot decode.
func (s *Store) corrupt(op string, err error) error {
	return ipguard.Errorf(ipguard.EInternal, "dynamodb: %s in table %s: %w", op, s.table, err)
}

// backoff waits before retry attempt n (1-based) of unprocessed batch work:
// exponential from 50ms, capped at 2s, with full jitter. It returns
// ctx.Err() if ctx ends first.
func backoff(ctx context.Context, n int) error {
	d := min(50*time.Millisecond<<min(n-1, 6), 2*time.Second)
	t := time.NewTimer(rand.N(d) + time.Millisecond)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// batchGet reads the items of keys (at most maxBatchGet, distinct) with
// strongly consistent reads, retrying unprocessed keys.
func (s *Store) batchGet(ctx context.Context, op string, keys []map[string]types.AttributeValue) ([]map[string]types.AttributeValue, error) {
	return s.batchGetAttrs(ctx, op, keys, nil)
}

// batchGetAttrs is batchGet reading only the attributes named (all when
// none): a poll that needs a few small attributes of a large item.
func (s *Store) batchGetAttrs(ctx context.Context, op string, keys []map[string]types.AttributeValue, attrs []string) ([]map[string]types.AttributeValue, error) {
	var items []map[string]types.AttributeValue
	ka := types.KeysAndAttributes{Keys: keys, ConsistentRead: boolPtr(true)}
	if len(attrs) > 0 {
		ka.ExpressionAttributeNames = map[string]string{}
		refs := make([]string, len(attrs))
		for i, a := range attrs {
			refs[i] = fmt.Sprintf("#p%d", i)
			ka.ExpressionAttributeNames[refs[i]] = a
		}
		ka.ProjectionExpression = aws.String(strings.Join(refs, ", "))
	}
	req := map[string]types.KeysAndAttributes{s.table: ka}
	for attempt := 1; ; attempt++ {
		out, err := s.api.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: req})
		if err != nil {
			return nil, s.fail(op, err)
		}
		items = append(items, out.Responses[s.table]...)
		left, ok := out.UnprocessedKeys[s.table]
		if !ok || len(left.Keys) == 0 {
			return items, nil
		}
		if attempt == maxBatchAttempts {
			return nil, s.fail(op, fmt.Errorf("%d keys still unprocessed after %d attempts", len(left.Keys), attempt))
		}
		if err := backoff(ctx, attempt); err != nil {
			return nil, s.fail(op, fmt.Errorf("%d keys unprocessed: %w", len(left.Keys), err))
		}
		req = map[string]types.KeysAndAttributes{s.table: left}
	}
}

// getItems reads the items of the keys pks (each once), one batchGet per
// maxBatchGet keys (noun names the items in errors: "get 100 users"), and
// hands each item read to each.
func (s *Store) getItems(ctx context.Context, noun string, pks []string, each func(map[string]types.AttributeValue)) error {
	seen := make(map[string]bool, len(pks))
	var keys []map[string]types.AttributeValue
	for _, pk := range pks {
		if !seen[pk] {
			seen[pk] = true
			keys = append(keys, key(pk))
		}
	}
	for start := 0; start < len(keys); start += maxBatchGet {
		chunk := keys[start:min(start+maxBatchGet, len(keys))]
		items, err := s.batchGet(ctx, fmt.Sprintf("get %d %s", len(chunk), noun), chunk)
		if err != nil {
			return err
		}
		for _, it := range items {
			each(it)
		}
	}
	return nil
}

// prefixed is the keys "<prefix><id>" of ids, but for empty ids.
func prefixed(prefix string, ids []string) []string {
	pks := make([]string, 0, len(ids))
	for _, id := range ids {
		if id != "" {
			pks = append(pks, prefix+id)
		}
	}
	return pks
}

// writeItems writes reqs (distinct keys) in batches of maxBatchWrite, up
// to concurrency batches at once; after the first error it starts no other
// batch and returns that error (some items may be written, each whole).
func (s *Store) writeItems(ctx context.Context, op string, reqs []types.WriteRequest, concurrency int) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		next  = make(chan []types.WriteRequest)
	)
	failed := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return first != nil
	}
	for range min(concurrency, (len(reqs)+maxBatchWrite-1)/maxBatchWrite) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range next {
				if failed() {
					continue
				}
				if err := s.batchWrite(ctx, op, c); err != nil {
					mu.Lock()
					first = cmp.Or(first, err)
					mu.Unlock()
				}
			}
		}()
	}
	for start := 0; start < len(reqs) && !failed(); start += maxBatchWrite {
		next <- reqs[start:min(start+maxBatchWrite, len(reqs))]
	}
	close(next)
	wg.Wait()
	return first
}

// batchWrite writes reqs (at most maxBatchWrite, distinct keys), retrying
// unprocessed items.
func (s *Store) batchWrite(ctx context.Context, op string, reqs []types.WriteRequest) error {
	req := map[string][]types.WriteRequest{s.table: reqs}
	for attempt := 1; ; attempt++ {
		out, err := s.api.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: req})
		if err != nil {
			return s.fail(op, err)
		}
		left := out.UnprocessedItems[s.table]
		if len(left) == 0 {
			return nil
		}
		if attempt == maxBatchAttempts {
			return s.fail(op, fmt.Errorf("%d items still unprocessed after %d attempts", len(left), attempt))
		}
		if err := backoff(ctx, attempt); err != nil {
			return s.fail(op, fmt.Errorf("%d items unprocessed: %w", len(left), err))
		}
		req = map[string][]types.WriteRequest{s.table: left}
	}
}

func boolPtr(b bool) *bool { return &b }

func str(v string) *types.AttributeValueMemberS { return &types.AttributeValueMemberS{Value: v} }

func num(v int64) *types.AttributeValueMemberN {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(v, 10)}
}

func key(pk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{"pk": str(pk)}
}

// listAttr is the list attribute of xs, each element encoded by enc; an
// empty list (never a null one) when xs is empty.
func listAttr[T any](xs []T, enc func(T) types.AttributeValue) *types.AttributeValueMemberL {
	l := make([]types.AttributeValue, len(xs))
	for i, x := range xs {
		l[i] = enc(x)
	}
	return &types.AttributeValueMemberL{Value: l}
}

// strList is the list attribute of the strings xs.
func strList(xs []string) *types.AttributeValueMemberL {
	return listAttr(xs, func(s string) types.AttributeValue { return str(s) })
}

// listStrings is the strings of the list attribute name: none when it is
// absent or not a list; an error naming the element that is not a string.
func listStrings(item map[string]types.AttributeValue, name string) ([]string, error) {
	l, ok := item[name].(*types.AttributeValueMemberL)
	if !ok {
		return nil, nil
	}
	var out []string
	for i, v := range l.Value {
		sv, isS := v.(*types.AttributeValueMemberS)
		if !isS {
			return nil, fmt.Errorf("%s[%d] is %T, want a string", name, i, v)
		}
		out = append(out, sv.Value)
	}
	return out, nil
}

// listMaps is the map elements of the list attribute name, in order: none
// when it is absent or not a list; elements that are not maps are passed
// over (the readers that use it skip what they cannot read).
func listMaps(item map[string]types.AttributeValue, name string) []map[string]types.AttributeValue {
	l, ok := item[name].(*types.AttributeValueMemberL)
	if !ok {
		return nil
	}
	var out []map[string]types.AttributeValue
	for _, v := range l.Value {
		if m, ok := v.(*types.AttributeValueMemberM); ok {
			out = append(out, m.Value)
		}
	}
	return out
}

// getS returns the string attribute name of item; ok is false if absent.
func getS(item map[string]types.AttributeValue, name string) (string, bool, error) {
	s, ok, err := member[*types.AttributeValueMemberS](item, name, "a string")
	if !ok {
		return "", false, err
	}
	return s.Value, true, nil
}

// getM returns the map attribute name of item; ok is false if absent.
func getM(item map[string]types.AttributeValue, name string) (map[string]types.AttributeValue, bool, error) {
	m, ok, err := member[*types.AttributeValueMemberM](item, name, "a map")
	if !ok {
		return nil, false, err
	}
	return m.Value, true, nil
}

// getL returns the list attribute name of item; ok is false if absent.
func getL(item map[string]types.AttributeValue, name string) ([]types.AttributeValue, bool, error) {
	l, ok, err := member[*types.AttributeValueMemberL](item, name, "a list")
	if !ok {
		return nil, false, err
	}
	return l.Value, true, nil
}

// getN returns the integer number attribute name of item; ok is false if absent.
func getN(item map[string]types.AttributeValue, name string) (int64, bool, error) {
	n, ok, err := member[*types.AttributeValueMemberN](item, name, "a number")
	if !ok {
		return 0, false, err
	}
	i, err := strconv.ParseInt(n.Value, 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("attribute %s = %q is not an integer", name, n.Value)
	}
	return i, true, nil
}

// member is the attribute name of item as the member type M: ok is false
// when it is absent, and an error (saying it is not what) when it is of
// another type.
func member[M types.AttributeValue](item map[string]types.AttributeValue, name, what string) (m M, ok bool, err error) {
	v, present := item[name]
	if !present {
		return m, false, nil
	}
	if m, ok = v.(M); !ok {
		return m, false, fmt.Errorf("attribute %s is %T, want %s", name, v, what)
	}
	return m, true, nil
}
