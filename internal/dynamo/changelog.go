package dynamo

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"ipguard/internal/ipguard"
)

// The change log (onboard.ChangeLogStore, issue 15 §6): each version bump
// appends the id of the user it is for to the list attribute changed of
// the state item, in the same UpdateItem that adds one to version, so
// that changed[i] is the user of version changedBase+i+1. A reconcile
// that read every user at version v before then reads only the users
// named after v (ipguard.PortalState.ChangedSince). changedBase is -1
// while the log says nothing (never reset, or a bump of a version before
// the log, which adds to version only): ResetChangeLog starts it again.

// MaxChangeLog bounds the entries kept: a bump that finds more drops the
// oldest half. At onboard.MaxIDLength (128 bytes) each, the log takes at
// most maxChangeLogBytes of the state item (PutPortalState counts them;
// TestPortalStateHoldsTheLargestAllowedList fills it).
const MaxChangeLog = 200

const maxChangeLogBytes = (MaxChangeLog + 1) * (128 + 2)

// BumpVersionFor is BumpVersionAdding that also logs id ("" for none) as
// the user of the new version. A resend after a lost answer logs the id
// twice (and bumps twice): both name the same user.
func (s *Store) BumpVersionFor(ctx context.Context, id string, adds int) (int64, error) {
	var out *dynamodb.UpdateItemOutput
	err := retryConflicts(ctx, func() (err error) {
		out, err = s.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName: aws.String(s.table),
			Key:       key(portalStatePK),
			UpdateExpression: aws.String("ADD version :one, adds :adds " +
				"SET changed = list_append(if_not_exists(changed, :empty), :ids), changedBase = if_not_exists(changedBase, :none)"),
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":one": num(1), ":adds": num(int64(max(adds, 0))),
				":empty": &types.AttributeValueMemberL{Value: []types.AttributeValue{}},
				":ids":   strList([]string{id}), ":none": num(-1),
			},
			ReturnValues: types.ReturnValueUpdatedNew,
		})
		return err
	})
	if err != nil {
		return 0, s.failWrite("bump the allowlist version", err)
	}
	v, _, err := getN(out.Attributes, "version")
	if err != nil {
		return 0, s.corrupt("bump the allowlist version", err)
	}
	if l, ok := out.Attributes["changed"].(*types.AttributeValueMemberL); ok && len(l.Value) > MaxChangeLog {
		s.trimChangeLog(ctx, len(l.Value)/2)
	}
	return v, nil
}

// trimChangeLog drops the oldest k entries of the log, moving its base
// with them (a base of -1, a log that says nothing, stays), unless another
// bump trimmed it first (the log is no longer past the bound). A failure
// is left for the next bump: the log only stays longer.
func (s *Store) trimChangeLog(ctx context.Context, k int) {
	rm := make([]string, k)
	for i := range rm {
		rm[i] = fmt.Sprintf("changed[%d]", i)
	}
	for _, counting := range []bool{true, false} {
		in := &dynamodb.UpdateItemInput{
			TableName:                 aws.String(s.table),
			Key:                       key(portalStatePK),
			UpdateExpression:          aws.String("REMOVE " + strings.Join(rm, ", ")),
			ConditionExpression:       aws.String("size(changed) > :max AND changedBase < :zero"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":max": num(MaxChangeLog), ":zero": num(0)},
		}
		if counting {
			in.UpdateExpression = aws.String(*in.UpdateExpression + " SET changedBase = changedBase + :k")
			in.ConditionExpression = aws.String("size(changed) > :max AND changedBase >= :zero")
			in.ExpressionAttributeValues[":k"] = num(int64(k))
		}
		_, err := s.api.UpdateItem(ctx, in)
		if ok, err := s.conditional("trim the change log", err); ok || err != nil {
			return
		}
	}
}

// ResetChangeLog empties the change log and sets its base to the version
// stored now (one write, so no bump falls between): from then on it
// covers every bump again. The reconcile calls it after reading every user
// when the log said nothing.
func (s *Store) ResetChangeLog(ctx context.Context) error {
	_, err := s.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:           aws.String(s.table),
		Key:                 key(portalStatePK),
		UpdateExpression:    aws.String("SET changed = :empty, changedBase = version"),
		ConditionExpression: aws.String("attribute_exists(version)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":empty": &types.AttributeValueMemberL{Value: []types.AttributeValue{}},
		},
	})
	if _, err := s.conditional("reset the change log", err); err != nil {
		return err
	}
	return nil
}

// GetUsers returns the stored users among ids (strongly consistent; an
// id with no record is left out; one whose record cannot be decoded comes
// back with Unreadable set, as from AllUsers).
func (s *Store) GetUsers(ctx context.Context, ids []string) ([]ipguard.User, error) {
	var users []ipguard.User
	for start := 0; start < len(ids); start += 100 {
		keys := make([]map[string]types.AttributeValue, 0, 100)
		for _, id := range ids[start:min(start+100, len(ids))] {
			keys = append(keys, key(userPrefix+id))
		}
		items, err := s.batchGet(ctx, "get users", keys)
		if err != nil {
			return nil, err
		}
		for _, item := range items {
			users = append(users, decodeOrMark(item))
		}
	}
	return users, nil
}

// decodeChangeLog reads the change log attributes of the state item.
func decodeChangeLog(item map[string]types.AttributeValue, st *ipguard.PortalState) error {
	base, ok, err := getN(item, "changedBase")
	if err != nil {
		return err
	}
	if st.Changed, err = listStrings(item, "changed"); err != nil {
		return err
	}
	st.ChangedBase, st.ChangedLog = base, ok && base >= 0
	return nil
}
