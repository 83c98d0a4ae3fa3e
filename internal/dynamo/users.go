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
	"ipguard/internal/onboard"
)

// GetUser returns the user with id, with ok false if there is none.
// The read is strongly consistent.
func (s *Store) GetUser(ctx context.Context, id string) (u ipguard.User, ok bool, err error) {
	op := "get user " + id
	item, err := s.getItem(ctx, op, userPrefix+id)
	if err != nil || item == nil {
		return ipguard.User{}, false, err
	}
	u, err = decodeUser(item)
	if err != nil {
		return ipguard.User{}, false, s.corrupt(op, err)
	}
	return u, true, nil
}

// PutUser replaces the whole item of u.ID with u, whatever is stored.
// CreatedAt and UpdatedAt are stored in UTC to the second (RFC 3339); a nil
// Entries is stored as an empty list.
func (s *Store) PutUser(ctx context.Context, u ipguard.User) error {
	return s.putItem(ctx, "put user "+u.ID, encodeUser(u))
}

// PutUserIf replaces the item of u.ID with u (stored with rev u.Rev) only if
// the stored record's rev is still prevRev; prevRev 0 means no record, or a
// record written before revs existed. It reports false, with a nil error,
// when someone else wrote in between. A resend of an applied write (lost
// answer) also reports false; the caller re-reads and finds its own write.
func (s *Store) PutUserIf(ctx context.Context, u ipguard.User, prevRev int64) (bool, error) {
	cond, vals := sameRev(prevRev, false)
	return s.putUserIf(ctx, u, cond, vals)
}

// ReplaceUserIf implements onboard.UserReplacer: PutUserIf only while a
// record is stored (prevRev 0: one written before revs, never none).
func (s *Store) ReplaceUserIf(ctx context.Context, u ipguard.User, prevRev int64) (bool, error) {
	cond, vals := sameRev(prevRev, false)
	if prevRev == 0 {
		cond = aws.String("attribute_exists(pk) AND attribute_not_exists(rev)")
	}
	return s.putUserIf(ctx, u, cond, vals)
}

// putUserIf writes u whole under the condition cond (with vals).
func (s *Store) putUserIf(ctx context.Context, u ipguard.User, cond *string, vals map[string]types.AttributeValue) (bool, error) {
	_, err := s.api.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(s.table), Item: encodeUser(u), ConditionExpression: cond, ExpressionAttributeValues: vals,
	})
	return s.conditional("put user "+u.ID, err)
}

// sameRev is the condition that a user's stored rev is still rev (0: none
// stored, or a record written before revs), or with orGone also that none
// is stored (a delete's resend whose first answer was lost).
func sameRev(rev int64, orGone bool) (*string, map[string]types.AttributeValue) {
	if rev == 0 {
		return aws.String("attribute_not_exists(pk) OR attribute_not_exists(rev)"), nil
	}
	cond := "rev = :rev"
	if orGone {
		cond = "attribute_not_exists(pk) OR " + cond
	}
	return aws.String(cond), map[string]types.AttributeValue{":rev": num(rev)}
}

// DeleteUser removes the user id; deleting a user that is not stored is fine.
func (s *Store) DeleteUser(ctx context.Context, id string) error {
	_, err := s.api.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(s.table), Key: key(userPrefix + id)})
	if err != nil {
		return s.fail("delete user "+id, err)
	}
	return nil
}

// DeleteUserIf removes the user id only while its rev is still rev (0: a
// record written before revs), or when none is stored (the SDK's resend of
// a delete whose answer was lost). It reports false, with no error, when
// another write came first.
func (s *Store) DeleteUserIf(ctx context.Context, id string, rev int64) (bool, error) {
	cond, vals := sameRev(rev, true)
	_, err := s.api.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName: aws.String(s.table), Key: key(userPrefix + id), ConditionExpression: cond, ExpressionAttributeValues: vals,
	})
	return s.conditional("delete user "+id, err)
}

// Users returns the stored users among ids, keyed by id; ids with no user
// are absent from the map. An item that cannot be decoded comes back as a
// user with only ID and Unreadable set, so one bad item cannot stop the
// audit. Duplicates in ids are read once. Reads are
// strongly consistent, 100 keys per call; keys DynamoDB leaves unprocessed
// are retried with backoff with backoff at most 10 times per call (fewer when ctx ends first).
func (s *Store) Users(ctx context.Context, ids []string) (map[string]ipguard.User, error) {
	users := make(map[string]ipguard.User, len(ids))
	err := s.getItems(ctx, "users", prefixed(userPrefix, ids), func(item map[string]types.AttributeValue) {
		u := decodeOrMark(item)
		users[u.ID] = u
	})
	if err != nil {
		return nil, err
	}
	return users, nil
}

// AllUsers returns every stored user, in no particular order. It scans the
// whole table (all pages, strongly consistent), so a write that completed
// before the call is seen. An item that cannot be decoded comes
// back as in Users.
func (s *Store) AllUsers(ctx context.Context) ([]ipguard.User, error) {
	return s.scanUsers(ctx, "scan users", "")
}

// DesiredUsers implements onboard.DesiredReader: AllUsers reading only the
// key, the entries and their details (desiredAttrs), so that the answer of
// the scan on every reconcile pass is a fraction of the users' items. The
// id comes from the key, as AllUsers falls back to.
func (s *Store) DesiredUsers(ctx context.Context) ([]ipguard.User, error) {
	return s.scanUsers(ctx, "scan users' entries", desiredAttrs)
}

// desiredAttrs are the attributes DesiredUsers reads.
const desiredAttrs = "pk, allowedIps, entryDetails"

// scanUsers scans every user item (all pages, strongly consistent),
// reading only the attributes of projection when it is not empty.
func (s *Store) scanUsers(ctx context.Context, op, projection string) ([]ipguard.User, error) {
	var users []ipguard.User
	in := &dynamodb.ScanInput{
		TableName:                 aws.String(s.table),
		FilterExpression:          aws.String("begins_with(pk, :user)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":user": str(userPrefix)},
		ConsistentRead:            aws.Bool(true),
	}
	if projection != "" {
		in.ProjectionExpression = aws.String(projection)
	}
	for {
		out, err := s.api.Scan(ctx, in)
		if err != nil {
			return nil, s.fail(op, err)
		}
		for _, item := range out.Items {
			users = append(users, decodeOrMark(item))
		}
		if len(out.LastEvaluatedKey) == 0 {
			return users, nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}

func encodeUser(u ipguard.User) map[string]types.AttributeValue {
	ips := strList(u.Entries)
	item := map[string]types.AttributeValue{
		"pk":         str(userPrefix + u.ID),
		"id":         str(u.ID),
		"email":      str(u.Email),
		"allowedIps": ips,
		"createdAt":  str(u.CreatedAt.UTC().Format(time.RFC3339)),
		"updatedAt":  str(u.UpdatedAt.UTC().Format(time.RFC3339)),
	}
	if u.Rev != 0 {
		item["rev"] = num(u.Rev)
	}
	details := map[string]types.AttributeValue{}
	for e, d := range u.Details {
		if d.ExpiresAt.IsZero() && d.Note == "" && d.Place == "" {
			continue
		}
		m := encodeDetail(d.ExpiresAt, d.Note)
		if d.Place != "" {
			m.Value["place"] = str(d.Place) // the declared place (#21 §4); items before it have none
		}
		details[e] = m
	}
	if len(details) > 0 {
		item["entryDetails"] = &types.AttributeValueMemberM{Value: details}
	}
	if len(u.Touched) > 0 {
		m := make(map[string]types.AttributeValue, len(u.Touched))
		for e, t := range u.Touched {
			m[e] = str(t.UTC().Truncate(time.Millisecond).Format(time.RFC3339Nano)) // request times: to the millisecond
		}
		item["touched"] = &types.AttributeValueMemberM{Value: m}
	}
	if u.GoneChecks > 0 {
		item["goneChecks"] = num(int64(u.GoneChecks))
	}
	if len(u.Expired) > 0 {
		l := make([]types.AttributeValue, len(u.Expired))
		for i, x := range u.Expired {
			m := encodeDetail(x.ExpiresAt, x.Note)
			m.Value["entry"] = str(x.Entry)
			l[i] = m
		}
		item["expired"] = &types.AttributeValueMemberL{Value: l}
	}
	return item
}

func encodeDetail(exp time.Time, note string) *types.AttributeValueMemberM {
	m := map[string]types.AttributeValue{}
	if !exp.IsZero() {
		m["expiresAt"] = str(exp.UTC().Format(time.RFC3339))
	}
	if note != "" {
		m["note"] = str(note)
	}
	return &types.AttributeValueMemberM{Value: m}
}

func decodeDetail(v types.AttributeValue) (exp time.Time, note, entry string, err error) {
	m, ok := v.(*types.AttributeValueMemberM)
	if !ok {
		return time.Time{}, "", "", fmt.Errorf("entry detail is %T, want a map", v)
	}
	if note, _, err = getS(m.Value, "note"); err != nil {
		return
	}
	if entry, _, err = getS(m.Value, "entry"); err != nil {
		return
	}
	var e string
	if e, _, err = getS(m.Value, "expiresAt"); err != nil || e == "" {
		return
	}
	exp, err = time.Parse(time.RFC3339, e)
	return exp.UTC(), note, entry, err
}

func decodeUser(item map[string]types.AttributeValue) (ipguard.User, error) {
	pk, _, err := getS(item, "pk")
	if err != nil {
		return ipguard.User{}, err
	}
	id, ok, err := getS(item, "id")
	if err != nil {
		return ipguard.User{}, fmt.Errorf("item %s: %w", pk, err)
	}
	if !ok {
		id = strings.TrimPrefix(pk, userPrefix)
	}
	u := ipguard.User{ID: id}
	if u.Email, _, err = getS(item, "email"); err != nil {
		return ipguard.User{}, fmt.Errorf("item %s: %w", pk, err)
	}
	if _, ok, err := getL(item, "allowedIps"); err != nil {
		return ipguard.User{}, fmt.Errorf("item %s: %w", pk, err)
	} else if ok {
		entries, err := listStrings(item, "allowedIps")
		if err != nil {
			return ipguard.User{}, fmt.Errorf("item %s: %w", pk, err)
		}
		u.Entries = append([]string{}, entries...) // a stored list, even an empty one, is not nil
	}
	if u.Rev, _, err = getN(item, "rev"); err != nil {
		return ipguard.User{}, fmt.Errorf("item %s: %w", pk, err)
	}
	if m, ok, err := getM(item, "entryDetails"); err != nil {
		return ipguard.User{}, fmt.Errorf("item %s: %w", pk, err)
	} else if ok {
		u.Details = make(map[string]ipguard.EntryDetail, len(m))
		for e, dv := range m {
			exp, note, _, err := decodeDetail(dv)
			if err != nil {
				return ipguard.User{}, fmt.Errorf("item %s: entryDetails[%s]: %w", pk, e, err)
			}
			// place is optional: items written before #21 §4 have none.
			place, _, err := getS(dv.(*types.AttributeValueMemberM).Value, "place")
			if err != nil {
				return ipguard.User{}, fmt.Errorf("item %s: entryDetails[%s]: %w", pk, e, err)
			}
			u.Details[e] = ipguard.EntryDetail{ExpiresAt: exp, Note: note, Place: place}
		}
	}
	if l, ok, err := getL(item, "expired"); err != nil {
		return ipguard.User{}, fmt.Errorf("item %s: %w", pk, err)
	} else if ok {
		for i, xv := range l {
			exp, note, entry, err := decodeDetail(xv)
			if err != nil {
				return ipguard.User{}, fmt.Errorf("item %s: expired[%d]: %w", pk, i, err)
			}
			u.Expired = append(u.Expired, ipguard.ExpiredEntry{Entry: entry, ExpiresAt: exp, Note: note})
		}
	}
	if m, ok, err := getM(item, "touched"); err != nil {
		return ipguard.User{}, fmt.Errorf("item %s: %w", pk, err)
	} else if ok {
		u.Touched = make(map[string]time.Time, len(m))
		for e, tv := range m {
			sv, isS := tv.(*types.AttributeValueMemberS)
			if !isS {
				return ipguard.User{}, fmt.Errorf("item %s: touched[%s] is %T, want a string", pk, e, tv)
			}
			t, err := time.Parse(time.RFC3339Nano, sv.Value)
			if err != nil {
				return ipguard.User{}, fmt.Errorf("item %s: touched[%s]: %w", pk, e, err)
			}
			u.Touched[e] = t.UTC().Truncate(time.Millisecond)
		}
	}
	gone, _, err := getN(item, "goneChecks")
	if err != nil {
		return ipguard.User{}, fmt.Errorf("item %s: %w", pk, err)
	}
	u.GoneChecks = int(gone)
	for _, f := range []struct {
		name string
		dst  *time.Time
	}{{"createdAt", &u.CreatedAt}, {"updatedAt", &u.UpdatedAt}} {
		v, ok, err := getS(item, f.name)
		if err != nil {
			return ipguard.User{}, fmt.Errorf("item %s: %w", pk, err)
		}
		if !ok || v == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return ipguard.User{}, fmt.Errorf("item %s: attribute %s: %w", pk, f.name, err)
		}
		*f.dst = t.UTC()
	}
	return u, nil
}

// decodeOrMark decodes item, or returns a user with Unreadable set.
func decodeOrMark(item map[string]types.AttributeValue) ipguard.User {
	u, err := decodeUser(item)
	if err == nil {
		return u
	}
	pk, _, _ := getS(item, "pk")
	id, _, _ := getS(item, "id")
	if id == "" {
		id = strings.TrimPrefix(pk, userPrefix)
	}
	return ipguard.User{ID: id, Unreadable: err.Error()}
}

// PutOffboarded remembers that user id was offboarded by a request made at
// at, until expires (the item's TTL): a later record of an older time never
// replaces a newer one.
func (s *Store) PutOffboarded(ctx context.Context, id string, at, expires time.Time) error {
	_, err := s.api.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(s.table),
		Item: map[string]types.AttributeValue{
			"pk":           str(offboardedPrefix + id),
			"offboardedAt": num(at.UnixMilli()),
			"expiresAt":    num(expires.Unix()),
		},
		ConditionExpression:       aws.String("attribute_not_exists(pk) OR offboardedAt <= :at OR expiresAt < :now"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":at": num(at.UnixMilli()), ":now": num(time.Now().Unix())},
	})
	// Not applied: a newer offboarding is remembered.
	if _, err := s.conditional("remember the offboarding of user "+id, err); err != nil {
		return err
	}
	return nil
}

// ChangeRead reads what a change of user id starts from in one strongly
// consistent read (onboard.ChangeReader): the user's record, the portal
// state (both its items, as PortalState: readState), the user's
// remembered offboarding (as Offboarded at now), and since when the
// reconcile lease has been held (LeaseSince, zero when free at now). One
// round trip instead of four on every change.
func (s *Store) ChangeRead(ctx context.Context, id string, now time.Time) (onboard.ChangeStart, error) {
	op := "read user " + id + ", the portal state and the user's offboarding"
	st, items, err := s.readState(ctx, op, key(userPrefix+id), key(offboardedPrefix+id), key(leasePrefix+onboard.LeaseName))
	if err != nil {
		return onboard.ChangeStart{}, err
	}
	cs := onboard.ChangeStart{State: st}
	for _, item := range items {
		pk, _ := item["pk"].(*types.AttributeValueMemberS)
		switch {
		case pk == nil:
		case pk.Value == userPrefix+id:
			if cs.User, err = decodeUser(item); err != nil {
				return onboard.ChangeStart{}, s.corrupt(op, err)
			}
			cs.Found = true
		case pk.Value == offboardedPrefix+id:
			if cs.Offboarded, cs.WasOffboarded, err = offboardedOf(item, now); err != nil {
				return onboard.ChangeStart{}, s.corrupt(op, err)
			}
		case pk.Value == leasePrefix+onboard.LeaseName:
			if cs.LeaseSince, err = leaseSince(item, now); err != nil {
				return onboard.ChangeStart{}, s.corrupt(op, err)
			}
		}
	}
	return cs, nil
}

// Offboarded returns the request time of user id's last offboarding, with
// ok false when none is remembered at now (none, or its TTL passed: TTL
// deletes late, so the expiry is compared here).
func (s *Store) Offboarded(ctx context.Context, id string, now time.Time) (time.Time, bool, error) {
	op := "get the offboarding of user " + id
	item, err := s.getItem(ctx, op, offboardedPrefix+id)
	if err != nil || item == nil {
		return time.Time{}, false, err
	}
	at, ok, err := offboardedOf(item, now)
	if err != nil {
		return time.Time{}, false, s.corrupt(op, err)
	}
	return at, ok, nil
}

// offboardedOf decodes an offboarding's item: its request time, ok false
// when it expired at now.
func offboardedOf(item map[string]types.AttributeValue, now time.Time) (time.Time, bool, error) {
	at, ok, err := getN(item, "offboardedAt")
	if err != nil || !ok {
		return time.Time{}, false, fmt.Errorf("offboardedAt: %v", err)
	}
	if exp, ok, _ := getN(item, "expiresAt"); ok && exp < now.Unix() {
		return time.Time{}, false, nil
	}
	return time.UnixMilli(at).UTC(), true, nil
}

// FirstArrival implements onboard.Arrivals: item arrival#<requestId> holds
// the invocation's first arrival (epoch ms), written only when absent (one
// conditional PutItem; when it is there, the refusal returns the stored
// item, ReturnValuesOnConditionCheckFailure), kept by TTL for keep. A
// resend whose first write was applied finds that write: the same time.
func (s *Store) FirstArrival(ctx context.Context, requestID string, now time.Time, keep time.Duration) (time.Time, error) {
	const op = "remember an invocation's first arrival"
	at := now.UnixMilli()
	_, err := s.api.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(s.table),
		Item: map[string]types.AttributeValue{
			"pk": str(arrivalPrefix + requestID), "arrivedAt": num(at), "expiresAt": num(now.Add(keep).Unix()),
		},
		ConditionExpression:                 aws.String("attribute_not_exists(pk)"),
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		stored, ok, gerr := getN(ccf.Item, "arrivedAt")
		if gerr != nil || !ok {
			return time.Time{}, s.corrupt(op, fmt.Errorf("arrivedAt: %v", gerr))
		}
		at = stored
	} else if err != nil {
		return time.Time{}, s.fail(op, err)
	}
	return time.UnixMilli(at).UTC(), nil
}
