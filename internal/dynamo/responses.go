package dynamo

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"ipguard/internal/ipguard"
)

// Enforcement records (see enforce.Store for the promises):
//
//	response#<key>       token, userId, action, claimedAt, expiresAt
//	                     + outcome, detail, settledAt once settled
//	violations#<userId>  events: string set of "<unix seconds>:<event id>", expiresAt
//
// A claim is a conditional PutItem (no live record), so of concurrent runs
// one wins; a settle is an UpdateItem conditioned on the claiming token.

// ClaimResponse writes rec unsettled when no live record has rec.Key (none,
// or one whose expiresAt is not after rec.ClaimedAt) and returns true;
// otherwise it returns false and the live record, read consistently.
func (s *Store) ClaimResponse(ctx context.Context, rec ipguard.ResponseRecord) (ipguard.ResponseRecord, bool, error) {
	op := "claim response " + rec.Key
	item := map[string]types.AttributeValue{
		"pk":        str(responsePrefix + rec.Key),
		"token":     str(rec.Token),
		"userId":    str(rec.UserID),
		"action":    str(rec.Action),
		"claimedAt": str(rec.ClaimedAt.UTC().Format(time.RFC3339Nano)),
		"expiresAt": num(rec.ExpiresAt.Unix()),
	}
	for attempt := 0; attempt < 3; attempt++ {
		_, err := s.api.PutItem(ctx, &dynamodb.PutItemInput{
			TableName:                 aws.String(s.table),
			Item:                      item,
			ConditionExpression:       aws.String("attribute_not_exists(pk) OR expiresAt <= :now"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":now": num(rec.ClaimedAt.Unix())},
		})
		applied, err := s.conditional(op, err)
		if err != nil {
			return ipguard.ResponseRecord{}, false, err
		}
		if applied {
			return rec, true, nil
		}
		prior, ok, err := s.response(ctx, rec.Key)
		if err != nil {
			return ipguard.ResponseRecord{}, false, err
		}
		if ok {
			return prior, false, nil
		}
		// Deleted between the two calls (TTL): claim again.
	}
	return ipguard.ResponseRecord{}, false, s.fail(op, errors.New("the record kept changing"))
}

// SettleResponse stores rec's outcome (and rec.ExpiresAt, when set) on the
// record claimed with rec.Token; EConflict if the record is gone or holds
// another token.
func (s *Store) SettleResponse(ctx context.Context, rec ipguard.ResponseRecord) error {
	settled := rec.SettledAt
	if settled.IsZero() {
		settled = time.Now()
	}
	update := "SET outcome = :o, detail = :d, settledAt = :s"
	values := map[string]types.AttributeValue{
		":o": str(rec.Outcome), ":d": str(rec.Detail), ":s": str(settled.UTC().Format(time.RFC3339Nano)), ":t": str(rec.Token),
	}
	if !rec.ExpiresAt.IsZero() {
		update += ", expiresAt = :exp"
		values[":exp"] = num(rec.ExpiresAt.Unix())
	}
	_, err := s.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(s.table),
		Key:                       key(responsePrefix + rec.Key),
		UpdateExpression:          aws.String(update),
		ConditionExpression:       aws.String("#token = :t"),
		ExpressionAttributeNames:  map[string]string{"#token": "token"},
		ExpressionAttributeValues: values,
	})
	if isConditionFailed(err) {
		return ipguard.Errorf(ipguard.EConflict, "dynamodb: settle response %s: the record is gone or was claimed by another run", rec.Key)
	}
	if err != nil {
		return s.fail("settle response "+rec.Key, err)
	}
	return nil
}

// ReadResponse returns the record of key, read consistently, when its
// expiresAt is after at (TTL deletes late, so an expired one may still be
// stored); it writes nothing.
func (s *Store) ReadResponse(ctx context.Context, k string, at time.Time) (ipguard.ResponseRecord, bool, error) {
	rec, ok, err := s.response(ctx, k)
	if err != nil || !ok || !rec.ExpiresAt.After(at) {
		return ipguard.ResponseRecord{}, false, err
	}
	return rec, true, nil
}

// response reads the record of key consistently; ok is false when there is none.
func (s *Store) response(ctx context.Context, k string) (ipguard.ResponseRecord, bool, error) {
	op := "get response " + k
	item, err := s.getItem(ctx, op, responsePrefix+k)
	if err != nil || item == nil {
		return ipguard.ResponseRecord{}, false, err
	}
	rec := ipguard.ResponseRecord{Key: k}
	var bad error
	getStr := func(name string) string {
		v, _, err := getS(item, name)
		bad = errors.Join(bad, err)
		return v
	}
	getTime := func(name string) time.Time {
		v := getStr(name)
		if v == "" {
			return time.Time{}
		}
		t, err := time.Parse(time.RFC3339Nano, v)
		bad = errors.Join(bad, err)
		return t.UTC()
	}
	rec.Token, rec.UserID, rec.Action = getStr("token"), getStr("userId"), getStr("action")
	rec.Outcome, rec.Detail = getStr("outcome"), getStr("detail")
	rec.ClaimedAt, rec.SettledAt = getTime("claimedAt"), getTime("settledAt")
	exp, _, err := getN(item, "expiresAt")
	bad = errors.Join(bad, err)
	rec.ExpiresAt = time.Unix(exp, 0).UTC()
	if bad != nil {
		return ipguard.ResponseRecord{}, false, s.corrupt(op, bad)
	}
	return rec, true, nil
}

// AddViolations adds ids to userID's violations at at and returns how many
// distinct ids were recorded at or after since; older entries are deleted.
func (s *Store) AddViolations(ctx context.Context, userID string, ids []int64, at, since time.Time) (int, error) {
	op := "add violations of user " + userID
	k := key(violationsPrefix + userID)
	var item map[string]types.AttributeValue
	if len(ids) == 0 {
		got, err := s.getItem(ctx, op, violationsPrefix+userID)
		if err != nil {
			return 0, err
		}
		item = got
	} else {
		var elems []string
		for _, id := range dedupe(ids) {
			elems = append(elems, strconv.FormatInt(at.Unix(), 10)+":"+strconv.FormatInt(id, 10))
		}
		out, err := s.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName:                aws.String(s.table),
			Key:                      k,
			UpdateExpression:         aws.String("ADD #events :e SET expiresAt = :exp"),
			ExpressionAttributeNames: map[string]string{"#events": "events"},
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":e":   &types.AttributeValueMemberSS{Value: elems},
				":exp": num(at.Add(24 * time.Hour).Unix()),
			},
			ReturnValues: types.ReturnValueAllNew,
		})
		if err != nil {
			return 0, s.fail(op, err)
		}
		item = out.Attributes
	}
	var set []string
	if v, ok := item["events"]; ok {
		ss, isSS := v.(*types.AttributeValueMemberSS)
		if !isSS {
			return 0, s.corrupt(op, fmt.Errorf("attribute events is %T, want a string set", v))
		}
		set = ss.Value
	}
	// An id recorded again (a retried run) keeps its first time.
	first := map[int64]int64{}
	elems := map[int64][]string{}
	for _, e := range set {
		secs, id, ok := strings.Cut(e, ":")
		t, err1 := strconv.ParseInt(secs, 10, 64)
		n, err2 := strconv.ParseInt(id, 10, 64)
		if !ok || err1 != nil || err2 != nil {
			return 0, s.corrupt(op, fmt.Errorf("violation %q is not <unix seconds>:<event id>", e))
		}
		if f, seen := first[n]; !seen || t < f {
			first[n] = t
		}
		elems[n] = append(elems[n], e)
	}
	recent := 0
	var stale []string
	for n, t := range first {
		if time.Unix(t, 0).Before(since) {
			stale = append(stale, elems[n]...)
		} else {
			recent++
		}
	}
	if len(stale) > 0 {
		_, err := s.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName:                 aws.String(s.table),
			Key:                       k,
			UpdateExpression:          aws.String("DELETE #events :old"),
			ExpressionAttributeNames:  map[string]string{"#events": "events"},
			ExpressionAttributeValues: map[string]types.AttributeValue{":old": &types.AttributeValueMemberSS{Value: stale}},
		})
		if err != nil {
			return 0, s.fail(op+" (forget old ones)", err)
		}
	}
	return recent, nil
}
