package dynamo

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
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
	item, err := s.getItem(ctx, op, portalStatePK)
	if err != nil {
		return ipguard.PortalState{}, err
	}
	st, err := decodePortalState(item)
	if err != nil {
		return ipguard.PortalState{}, s.corrupt(op, err)
	}
	return st, nil
}

// PutPortalState stores every field of st but Version, which only
// BumpVersion moves (callers bump it concurrently). Applied never goes
// down: a slower writer with an older Applied leaves the newer one.
func (s *Store) PutPortalState(ctx context.Context, st ipguard.PortalState) error {
	owned := strList(st.Owned)
	lastReconcile := ""
	if !st.LastReconcile.IsZero() {
		lastReconcile = st.LastReconcile.UTC().Format(time.RFC3339Nano)
	}
	saves := listAttr(st.OwnSaves, func(t time.Time) types.AttributeValue { return str(t.UTC().Format(time.RFC3339Nano)) })
	late := strList(st.LateSent)
	sentAt := ""
	if !st.SentAt.IsZero() {
		sentAt = st.SentAt.UTC().Format(time.RFC3339Nano)
	}
	// One write: applied moves forward only (a slower writer with an older
	// Applied keeps the newer one), the rest is replaced.
	in := &dynamodb.UpdateItemInput{
		TableName: aws.String(s.table),
		Key:       key(portalStatePK),
		UpdateExpression: aws.String("SET applied = :a, owned = :owned, seen = :seen, " +
			"lastEnabled = :enabled, reconciled = :reconciled, pending = :pending, pendingCode = :pcode, pendingVersion = :pv, " +
			"lastReconcile = :lr, driftEpisode = :drift, lockoutNotice = :lockout, handOff = :handOff, " +
			"sent = :sent, sentEnable = :sentEnable, sentOutcome = :sentOutcome, sentAt = :sentAt, ownSaves = :saves, keyUser = :keyUser, lateSent = :late, alertsDue = :due REMOVE lastSeen"),
		ConditionExpression: aws.String("attribute_not_exists(applied) OR applied <= :a"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":a": num(st.Applied), ":owned": owned,
			":seen": str(encodeSent(st.LastSeen, nil)), ":enabled": &types.AttributeValueMemberBOOL{Value: st.LastEnabled},
			":reconciled": &types.AttributeValueMemberBOOL{Value: st.Reconciled},
			":pending":    str(st.Pending), ":pcode": str(string(st.PendingCode)), ":pv": num(st.PendingVersion), ":lr": str(lastReconcile), ":drift": str(st.DriftEpisode),
			":lockout": str(st.LockoutNotice), ":handOff": &types.AttributeValueMemberBOOL{Value: st.HandOff},
			":sent": str(encodeSent(st.Sent, st.SentAdded)), ":sentEnable": &types.AttributeValueMemberBOOL{Value: st.SentEnable},
			":sentOutcome": str(st.SentOutcome), ":sentAt": str(sentAt), ":saves": saves,
			":keyUser": str(st.KeyUser), ":late": late,
			":due": &types.AttributeValueMemberBOOL{Value: st.AlertsDue},
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
	if b, ok := item["alertsDue"].(*types.AttributeValueMemberBOOL); ok {
		st.AlertsDue = b.Value
	}
	if lr, _, err := getS(item, "lastReconcile"); err != nil {
		return st, err
	} else if lr != "" {
		if st.LastReconcile, err = time.Parse(time.RFC3339Nano, lr); err != nil {
			return st, fmt.Errorf("attribute lastReconcile: %w", err)
		}
	}
	if st.Owned, err = listStrings(item, "owned"); err != nil {
		return st, err
	}
	if seen, ok, err := getS(item, "seen"); err != nil {
		return st, err
	} else if ok {
		if st.LastSeen, _, err = decodeSent(seen); err != nil {
			return st, fmt.Errorf("attribute seen: %w", err)
		}
	} else if l, ok := item["lastSeen"].(*types.AttributeValueMemberL); ok {
		// Written before the compact form.
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
	if sent, _, err := getS(item, "sent"); err != nil {
		return st, err
	} else if st.Sent, st.SentAdded, err = decodeSent(sent); err != nil {
		return st, fmt.Errorf("attribute sent: %w", err)
	}
	if b, ok := item["sentEnable"].(*types.AttributeValueMemberBOOL); ok {
		st.SentEnable = b.Value
	}
	if st.SentOutcome, _, err = getS(item, "sentOutcome"); err != nil {
		return st, err
	}
	if v, _, err := getS(item, "sentAt"); err != nil {
		return st, err
	} else if v != "" {
		if st.SentAt, err = time.Parse(time.RFC3339Nano, v); err != nil {
			return st, fmt.Errorf("attribute sentAt: %w", err)
		}
	}
	if st.KeyUser, _, err = getS(item, "keyUser"); err != nil {
		return st, err
	}
	if st.LateSent, err = listStrings(item, "lateSent"); err != nil {
		return st, err
	}
	if l, ok := item["ownSaves"].(*types.AttributeValueMemberL); ok {
		for i, v := range l.Value {
			sv, isS := v.(*types.AttributeValueMemberS)
			if !isS {
				return st, fmt.Errorf("ownSaves[%d] is %T, want a string", i, v)
			}
			t, err := time.Parse(time.RFC3339Nano, sv.Value)
			if err != nil {
				return st, fmt.Errorf("ownSaves[%d]: %w", i, err)
			}
			st.OwnSaves = append(st.OwnSaves, t)
		}
	}
	return st, nil
}

// encodeSent writes a portal list (the last seen one, or that of a PUT in
// flight) compactly (one line per
// entry: "a" admin-only, "+" added by that PUT, "-" any other, then the
// address), so that it fits next to lastSeen and owned at the largest
// allowed list (2,500 IPv6 entries) in one item.
func encodeSent(list []ipguard.Restriction, added []string) string {
	isAdded := make(map[string]bool, len(added))
	for _, a := range added {
		isAdded[a] = true
	}
	var b strings.Builder
	for _, r := range list {
		switch {
		case r.ForAdmin:
			b.WriteByte('a')
		case isAdded[r.IP]:
			b.WriteByte('+')
			isAdded[r.IP] = false // one entry per added address
		default:
			b.WriteByte('-')
		}
		b.WriteString(lineEscaper.Replace(r.IP))
		b.WriteByte('\n')
	}
	return b.String()
}

// The portal stores addresses only, but its text is not ours: a newline in
// it must not split an entry.
var (
	lineEscaper   = strings.NewReplacer("%", "%25", "\n", "%0A")
	lineUnescaper = strings.NewReplacer("%0A", "\n", "%25", "%")
)

func decodeSent(v string) (list []ipguard.Restriction, added []string, err error) {
	for i, line := range strings.Split(strings.TrimSuffix(v, "\n"), "\n") {
		if line == "" {
			continue
		}
		r := ipguard.Restriction{IP: lineUnescaper.Replace(line[1:])}
		switch line[0] {
		case 'a':
			r.ForAdmin = true
		case '+':
			added = append(added, r.IP)
		case '-':
		default:
			return nil, nil, fmt.Errorf("line %d starts with %q", i, line[0])
		}
		list = append(list, r)
	}
	return list, added, nil
}

// The onboarding outbox is one item (pk outbox#onboard) with one attribute
// per due alert ("a_" and its key), so adding or clearing one never
// rewrites another, and the portal state item stays within its size.
const outboxPK = "outbox#onboard"

// AddDueAlert records a as due (replacing a due alert with the same key).
func (s *Store) AddDueAlert(ctx context.Context, a ipguard.DueAlert) error {
	b, err := json.Marshal(a)
	if err != nil {
		return s.corrupt("record a due alert", err)
	}
	_, err = s.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(s.table), Key: key(outboxPK),
		UpdateExpression:          aws.String("SET #a = :v"),
		ExpressionAttributeNames:  map[string]string{"#a": outboxAttr(a.Key)},
		ExpressionAttributeValues: map[string]types.AttributeValue{":v": str(string(b))},
	})
	if err != nil {
		return s.fail("record a due alert", err)
	}
	return nil
}

// DueAlerts returns the alerts recorded as due, oldest first (strongly consistent).
func (s *Store) DueAlerts(ctx context.Context) ([]ipguard.DueAlert, error) {
	const op = "read the due alerts"
	item, err := s.getItem(ctx, op, outboxPK)
	if err != nil {
		return nil, err
	}
	var due []ipguard.DueAlert
	for name, v := range item {
		if !strings.HasPrefix(name, "a_") {
			continue
		}
		sv, ok := v.(*types.AttributeValueMemberS)
		if !ok {
			return nil, s.corrupt(op, fmt.Errorf("attribute %s is %T, want a string", name, v))
		}
		var a ipguard.DueAlert
		if err := json.Unmarshal([]byte(sv.Value), &a); err != nil {
			return nil, s.corrupt(op, fmt.Errorf("attribute %s: %w", name, err))
		}
		due = append(due, a)
	}
	sort.Slice(due, func(i, j int) bool { return due[i].Since.Before(due[j].Since) })
	return due, nil
}

// ClearDueAlert removes the due alert with key (none is fine).
func (s *Store) ClearDueAlert(ctx context.Context, k string) error {
	_, err := s.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(s.table), Key: key(outboxPK),
		UpdateExpression:         aws.String("REMOVE #a"),
		ExpressionAttributeNames: map[string]string{"#a": outboxAttr(k)},
	})
	if err != nil {
		return s.fail("clear a due alert", err)
	}
	return nil
}

// outboxAttr is the attribute of key k: hashed, so any key is a valid,
// short attribute name.
func outboxAttr(k string) string {
	sum := sha256.Sum256([]byte(k))
	return "a_" + hex.EncodeToString(sum[:12])
}
