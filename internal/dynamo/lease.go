package dynamo

import (
	"context"
	"errors"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"ipguard/internal/ipguard"
)

// leaseCleanup is how long after its end a lease record stays before TTL
// may delete it.
const leaseCleanup = time.Hour

// TryAcquireLease makes owner the holder of the lease name until until,
// if nobody holds it at now (no record, or the record's end is before now).
// It reports false, with a nil error, when another holder's lease is still
// running. Of several concurrent callers at most one gets true.
//
// The owner token is random per acquisition, so a record that already names
// owner can only be this very call's own write: DynamoDB applied it, the
// answer was lost and the SDK sent the request again. The condition accepts
// a record that names owner, so that resend succeeds too and a lost answer
// never makes the holder wait on itself.
func (s *Store) TryAcquireLease(ctx context.Context, name, owner string, until, now time.Time) (bool, error) {
	ok, _, err := s.TryAcquireLeaseOrHolder(ctx, name, owner, until, now)
	return ok, err
}

// TryAcquireLeaseOrHolder is TryAcquireLease that, when refused, also says
// since when the holder has held the lease (lease.HolderReporter): the
// refused write returns the record it found (ReturnValuesOnConditionCheckFailure),
// so a waiting change learns when the holder's pass is due to end without
// a read of its own. since is zero when the record does not say (or the
// answer carried no record).
func (s *Store) TryAcquireLeaseOrHolder(ctx context.Context, name, owner string, until, now time.Time) (bool, time.Time, error) {
	_, err := s.api.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(s.table),
		Item: map[string]types.AttributeValue{
			"pk":         str(leasePrefix + name),
			"owner":      str(owner),
			"leaseUntil": num(until.UnixMilli()),
			"expiresAt":  num(until.Add(leaseCleanup).Unix()),
			"since":      num(now.UnixMilli()), // when it was taken (onboard.HolderWatcher)
		},
		ConditionExpression:                 aws.String("attribute_not_exists(pk) OR leaseUntil < :now OR #owner = :owner"),
		ExpressionAttributeNames:            map[string]string{"#owner": "owner"},
		ExpressionAttributeValues:           map[string]types.AttributeValue{":now": num(now.UnixMilli()), ":owner": str(owner)},
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		since, serr := leaseSince(ccf.Item, now)
		if serr != nil {
			since = time.Time{} // a hint only: the refusal stands
		}
		return false, since, nil
	}
	ok, err := s.conditional("acquire lease "+name, err)
	return ok, time.Time{}, err
}

// ReleaseLease ends owner's lease name. If owner no longer holds it (it
// expired and someone else took it, or it is gone) nothing changes and the
// error is nil; so a resent release whose first attempt was applied (the
// record is gone) is fine too, and never deletes another holder's record.
func (s *Store) ReleaseLease(ctx context.Context, name, owner string) error {
	_, err := s.api.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:                 aws.String(s.table),
		Key:                       key(leasePrefix + name),
		ConditionExpression:       aws.String("#owner = :owner"),
		ExpressionAttributeNames:  map[string]string{"#owner": "owner"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":owner": str(owner)},
	})
	_, err = s.conditional("release lease "+name, err)
	return err
}

// PortalStateAndLease reads the portal allowlist state's progress (the
// fields of onboard.StateLeasePeeker; not the PUT in flight and the recent
// PUTs: their item is read by PortalState, which the reconcile uses) and
// whether lease name is free at now (no record, or its end before now) in
// one strongly consistent BatchGetItem: a caller waiting for another
// holder to apply its change costs one read per poll, and tries to take
// the lease only when it is free. Only the attributes the poll needs are
// read: the state item's lists (owned, own saves) are most of its size.
func (s *Store) PortalStateAndLease(ctx context.Context, name string, now time.Time) (ipguard.PortalState, bool, error) {
	st, free, _, err := s.PortalStateAndHolder(ctx, name, now)
	return st, free, err
}

// PortalStateAndHolder is PortalStateAndLease that also says since when
// the lease's holder has held it (onboard.HolderWatcher; zero when it is
// free, or was taken by a version that did not record it).
func (s *Store) PortalStateAndHolder(ctx context.Context, name string, now time.Time) (ipguard.PortalState, bool, time.Time, error) {
	const op = "get the portal allowlist state and its lease"
	items, err := s.batchGetAttrs(ctx, op, []map[string]types.AttributeValue{key(portalStatePK), key(leasePrefix + name)}, peekAttrs)
	if err != nil {
		return ipguard.PortalState{}, false, time.Time{}, err
	}
	var st ipguard.PortalState
	var since time.Time
	free := true
	for _, item := range items {
		pk, _ := item["pk"].(*types.AttributeValueMemberS)
		switch {
		case pk == nil:
		case pk.Value == portalStatePK:
			_, packed, err := statePacked(item)
			if err == nil && !packed && (item[progressAttr] != nil || item["pending"] != nil || item["applied"] != nil) {
				// Written one attribute a field (a version before the
				// packing wrote last: pending is there, or no progress):
				// the projection did not read them; read it all.
				if st, err = s.PortalState(ctx); err != nil {
					return ipguard.PortalState{}, false, time.Time{}, err
				}
				continue
			}
			if err == nil {
				st, err = decodePortalState(item)
			}
			if err != nil {
				return ipguard.PortalState{}, false, time.Time{}, s.corrupt(op, err)
			}
		case pk.Value == leasePrefix+name:
			until, ok, err := getN(item, "leaseUntil")
			if err != nil {
				return ipguard.PortalState{}, false, time.Time{}, s.corrupt(op, err)
			}
			free = !ok || until < now.UnixMilli()
			if since, err = leaseSince(item, now); err != nil {
				return ipguard.PortalState{}, false, time.Time{}, s.corrupt(op, err)
			}
		}
	}
	return st, free, since, nil
}

// leaseSince is when the holder of the lease record item took it, zero
// when it is free at now (or was taken by a version that did not record it).
func leaseSince(item map[string]types.AttributeValue, now time.Time) (time.Time, error) {
	until, ok, err := getN(item, "leaseUntil")
	if err != nil || !ok || until < now.UnixMilli() {
		return time.Time{}, err
	}
	ms, ok, err := getN(item, "since")
	if err != nil || !ok {
		return time.Time{}, err
	}
	return time.UnixMilli(ms), nil
}

// peekAttrs are the attributes PortalStateAndLease reads: the key, the
// lease's end and start, and the state's counters and progress document
// (pending, the list last seen with its setting, the last pass's length:
// progressAttr), and pending, which every write of a version before the
// packing wrote (statePacked).
var peekAttrs = []string{"pk", "leaseUntil", "since", "version", "applied", "adds", "addsApplied", "dueMarks", "writtenBy", progressAttr, writeIDAttr, "pending"}

// budgetKeep is how long after its start a window of the request budget
// stays before TTL may delete it (its end and a few minutes).
const budgetKeep = 5 * time.Minute

// budgetTries bounds the reservations of one Reserve: the chunk, then what
// is left when the window had less, again if another container took it first.
const budgetTries = 3

// Reserve implements docspace.RequestBudget over the item
// budget#portal#<window start, Unix seconds>: one UpdateItem ADD n :c with
// the condition that n stays within max. When refused, the refusal returns
// the item's n (ReturnValuesOnConditionCheckFailure) and Reserve asks for
// what is left instead, if anything; so the grants of a window never add up
// to more than max, and it returns 0, nil when the window is used up. A
// lost answer that the SDK sends again may count a chunk twice: fewer
// requests, the safe side.
func (s *Store) Reserve(ctx context.Context, window time.Time, n, max int) (int, error) {
	pk := unixKey(budgetPrefix, window)
	op := "reserve portal requests " + pk
	n = min(n, max)
	for try := 0; try < budgetTries && n > 0; try++ {
		_, err := s.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName:                           aws.String(s.table),
			Key:                                 key(pk),
			UpdateExpression:                    aws.String("ADD #n :c SET expiresAt = if_not_exists(expiresAt, :exp)"),
			ConditionExpression:                 aws.String("attribute_not_exists(#n) OR #n <= :room"),
			ExpressionAttributeNames:            map[string]string{"#n": "n"},
			ExpressionAttributeValues:           map[string]types.AttributeValue{":c": num(int64(n)), ":room": num(int64(max - n)), ":exp": num(window.Add(budgetKeep).Unix())},
			ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		})
		if err == nil {
			return n, nil
		}
		var ccf *types.ConditionalCheckFailedException
		if !errors.As(err, &ccf) {
			return 0, s.fail(op, err)
		}
		used := max // an answer without the item: take it as used up
		if u, ok, gerr := getN(ccf.Item, "n"); gerr != nil {
			return 0, s.corrupt(op, gerr)
		} else if ok {
			used = int(u)
		}
		n = min(n-1, max-used) // less than refused, and no more than is left
	}
	return 0, nil
}
