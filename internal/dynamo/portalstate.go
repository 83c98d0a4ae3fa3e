package dynamo

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"ipguard/internal/ipguard"
)

// BumpVersion adds one to the desired-state version (item
// state#portal-allowlist, attribute version) and returns the new value.
// Concurrent callers get distinct values. A resend after a lost answer
// bumps twice; that only makes a reconcile look needed once more.
func (s *Store) BumpVersion(ctx context.Context) (int64, error) {
	out, err := s.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(s.table),
		Key:                       key(portalStatePK),
		UpdateExpression:          aws.String("ADD version :one"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":one": num(1)},
		ReturnValues:              types.ReturnValueUpdatedNew,
	})
	if err != nil {
		return 0, s.fail("bump the allowlist version", err)
	}
	v, _, err := getN(out.Attributes, "version")
	if err != nil {
		return 0, s.corrupt("bump the allowlist version", err)
	}
	return v, nil
}

// PortalState reads the tool's memory of the portal allowlist (strongly
// consistent); the zero value when nothing was stored yet.
func (s *Store) PortalState(ctx context.Context) (ipguard.PortalState, error) {
	const op = "get the portal allowlist state"
	out, err := s.api.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(s.table), Key: key(portalStatePK), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return ipguard.PortalState{}, s.fail(op, err)
	}
	st, err := decodePortalState(out.Item)
	if err != nil {
		return ipguard.PortalState{}, s.corrupt(op, err)
	}
	return st, nil
}

// PutPortalState stores every field of st but Version, which only
// BumpVersion moves (callers bump it concurrently). Applied never goes
// down: a slower writer with an older Applied leaves the newer one.
func (s *Store) PutPortalState(ctx context.Context, st ipguard.PortalState) error {
	owned := make([]types.AttributeValue, len(st.Owned))
	for i, a := range st.Owned {
		owned[i] = str(a)
	}
	seen := make([]types.AttributeValue, len(st.LastSeen))
	for i, r := range st.LastSeen {
		seen[i] = &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{
			"ip": str(r.IP), "forAdmin": &types.AttributeValueMemberBOOL{Value: r.ForAdmin}}}
	}
	lastReconcile := ""
	if !st.LastReconcile.IsZero() {
		lastReconcile = st.LastReconcile.UTC().Format(time.RFC3339Nano)
	}
	// One write: applied moves forward only (a slower writer with an older
	// Applied keeps the newer one), the rest is replaced.
	in := &dynamodb.UpdateItemInput{
		TableName: aws.String(s.table),
		Key:       key(portalStatePK),
		UpdateExpression: aws.String("SET applied = :a, owned = :owned, lastSeen = :seen, " +
			"lastEnabled = :enabled, reconciled = :reconciled, pending = :pending, pendingCode = :pcode, pendingVersion = :pv, " +
			"lastReconcile = :lr, driftEpisode = :drift, lockoutNotice = :lockout, handOff = :handOff"),
		ConditionExpression: aws.String("attribute_not_exists(applied) OR applied <= :a"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":a": num(st.Applied), ":owned": &types.AttributeValueMemberL{Value: owned},
			":seen": &types.AttributeValueMemberL{Value: seen}, ":enabled": &types.AttributeValueMemberBOOL{Value: st.LastEnabled},
			":reconciled": &types.AttributeValueMemberBOOL{Value: st.Reconciled},
			":pending":    str(st.Pending), ":pcode": str(string(st.PendingCode)), ":pv": num(st.PendingVersion), ":lr": str(lastReconcile), ":drift": str(st.DriftEpisode),
			":lockout": str(st.LockoutNotice), ":handOff": &types.AttributeValueMemberBOOL{Value: st.HandOff},
		},
	}
	_, err := s.api.UpdateItem(ctx, in)
	if isConditionFailed(err) {
		// A newer reconcile already stored more: keep its applied version.
		in.UpdateExpression = aws.String(strings.Replace(*in.UpdateExpression, "SET applied = :a, ", "SET ", 1))
		in.ConditionExpression = nil
		delete(in.ExpressionAttributeValues, ":a")
		_, err = s.api.UpdateItem(ctx, in)
	}
	if err != nil {
		return s.fail("put the portal allowlist state", err)
	}
	return nil
}

func decodePortalState(item map[string]types.AttributeValue) (ipguard.PortalState, error) {
	var st ipguard.PortalState
	if item == nil {
		return st, nil
	}
	var err error
	if st.Version, _, err = getN(item, "version"); err != nil {
		return st, err
	}
	if st.Applied, _, err = getN(item, "applied"); err != nil {
		return st, err
	}
	if st.PendingVersion, _, err = getN(item, "pendingVersion"); err != nil {
		return st, err
	}
	if st.Pending, _, err = getS(item, "pending"); err != nil {
		return st, err
	}
	var code string
	if code, _, err = getS(item, "pendingCode"); err != nil {
		return st, err
	}
	st.PendingCode = ipguard.Code(code)
	if st.DriftEpisode, _, err = getS(item, "driftEpisode"); err != nil {
		return st, err
	}
	if st.LockoutNotice, _, err = getS(item, "lockoutNotice"); err != nil {
		return st, err
	}
	if b, ok := item["lastEnabled"].(*types.AttributeValueMemberBOOL); ok {
		st.LastEnabled = b.Value
	}
	if b, ok := item["reconciled"].(*types.AttributeValueMemberBOOL); ok {
		st.Reconciled = b.Value
	}
	if b, ok := item["handOff"].(*types.AttributeValueMemberBOOL); ok {
		st.HandOff = b.Value
	}
	if lr, _, err := getS(item, "lastReconcile"); err != nil {
		return st, err
	} else if lr != "" {
		if st.LastReconcile, err = time.Parse(time.RFC3339Nano, lr); err != nil {
			return st, fmt.Errorf("attribute lastReconcile: %w", err)
		}
	}
	if l, ok := item["owned"].(*types.AttributeValueMemberL); ok {
		for i, v := range l.Value {
			sv, isS := v.(*types.AttributeValueMemberS)
			if !isS {
				return st, fmt.Errorf("owned[%d] is %T, want a string", i, v)
			}
			st.Owned = append(st.Owned, sv.Value)
		}
	}
	if l, ok := item["lastSeen"].(*types.AttributeValueMemberL); ok {
		for i, v := range l.Value {
			m, isM := v.(*types.AttributeValueMemberM)
			if !isM {
				return st, fmt.Errorf("lastSeen[%d] is %T, want a map", i, v)
			}
			ip, _, err := getS(m.Value, "ip")
			if err != nil {
				return st, fmt.Errorf("lastSeen[%d]: %w", i, err)
			}
			r := ipguard.Restriction{IP: ip}
			if b, ok := m.Value["forAdmin"].(*types.AttributeValueMemberBOOL); ok {
				r.ForAdmin = b.Value
			}
			st.LastSeen = append(st.LastSeen, r)
		}
	}
	return st, nil
}

func isConditionFailed(err error) bool {
	var ccf *types.ConditionalCheckFailedException
	return errors.As(err, &ccf)
}
