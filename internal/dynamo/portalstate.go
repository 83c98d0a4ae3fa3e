package dynamo

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"ipguard/internal/ipguard"
)

// BumpVersion adds one to the desired-state version (item
// state#portal-allowlist, attribute version) and returns the new value.
// Concurrent callers get distinct values. A resend after a lost answer
// bumps twice; that only makes a reconcile look needed once more. A
// conflict with a reconcile's transaction on the item is tried again.
func (s *Store) BumpVersion(ctx context.Context) (int64, error) {
	v, _, err := s.BumpVersionAdding(ctx, 0)
	return v, err
}

// BumpVersionAdding is BumpVersion that also adds adds to the count of
// addresses the stored changes may have added (attribute adds; see
// ipguard.PortalState.Adds), in the same write (onboard.AddsCounter). A
// resend after a lost answer counts twice: the bound only grows. A
// conflict with a reconcile's transaction on the item is tried again. It
// returns the version and, when adds > 0, the count after this bump (from
// the write's own answer: the other changes' bumps before it included).
func (s *Store) BumpVersionAdding(ctx context.Context, adds int) (int64, int64, error) {
	var out *dynamodb.UpdateItemOutput
	err := retryConflicts(ctx, func() (err error) {
		out, err = s.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName:                 aws.String(s.table),
			Key:                       key(portalStatePK),
			UpdateExpression:          aws.String("ADD version :one, adds :adds"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":one": num(1), ":adds": num(int64(max(adds, 0)))},
			ReturnValues:              types.ReturnValueUpdatedNew,
		})
		return err
	})
	if err != nil {
		return 0, 0, s.failWrite("bump the allowlist version", err)
	}
	v, _, err := getN(out.Attributes, "version")
	if err != nil {
		return 0, 0, s.corrupt("bump the allowlist version", err)
	}
	total, _, err := getN(out.Attributes, "adds")
	if err != nil {
		return 0, 0, s.corrupt("bump the allowlist version", err)
	}
	return v, total, nil
}

// The portal state is one item, or two when it is large:
//
//	state#portal-allowlist       version, applied, the list last seen, the
//	                             owned addresses, pending, episodes, own saves
//	                             and, while they fit with the rest, the PUT in
//	                             flight and the recent PUTs
//	state#portal-allowlist#sent  the PUT in flight (its list, added, enable,
//	                             outcome, time) and the recent PUTs (lateSent)
//	                             when they do not fit in the state item
//
// A state whose parts fit together in half an item (every list of a few
// hundred entries) is written with one UpdateItem of the state item, the
// in-flight part included (splitAt); a larger one in one transaction of
// both items, the in-flight part removed from the state item, so that each
// fits DynamoDB's 400 KB item at the largest allowed list
// (PORTAL_MAX_ENTRIES at config.MaxPortalEntries, every entry at the
// portal column's 50 characters), with room for a portal list that hand
// edits pushed well past the cap (a removal-only PUT of it still goes out).
// One write instead of a transaction on every reconcile's two state writes:
// a transaction costs twice the write capacity on DynamoDB (and moto, the
// load test's stand-in, copies the whole table for each).
//
// The rule of reading: the in-flight part is the state item's when it has
// one (attribute sent), else the #sent item's. Every write either puts it
// in the state item or removes it from there, so the part read is always
// the last written; a #sent item left from an earlier split write is stale
// then, and ignored. (Versions before the split, and an operator's rollback
// to one, wrote it in the state item too: read the same way.)
const portalSentPK = portalStatePK + "#sent"

// splitAt is the size (as counted for maxStateItem) of the state and its
// in-flight part together up to which both are written in the state item.
const splitAt = maxStateItem / 2

// MaxPendingBytes bounds the pending reason stored (the failure's text).
const MaxPendingBytes = 2048

// maxStateItem is the size either item may take: DynamoDB's 400 KB less a
// margin for the attribute names and numbers not counted exactly.
const maxStateItem = 400*1024 - 8*1024

// PortalState reads the tool's memory of the portal allowlist (strongly
// consistent, both items as one write left them: readState); the zero
// value when nothing was stored yet.
func (s *Store) PortalState(ctx context.Context) (ipguard.PortalState, error) {
	st, _, err := s.readState(ctx, "get the portal allowlist state")
	return st, err
}

// writeIDAttr names the attribute that PutPortalState sets, to one new
// random value per write, on both items of the portal state: two items
// read with the same value were written by the same transaction.
const writeIDAttr = "writeId"

// maxTornReads bounds the reads of the portal state while each one finds
// its two items from different writes (a race: only the lease holder
// writes it, a few times a pass).
const maxTornReads = 5

// readState reads the portal state's two items, and the items of more, in
// one strongly consistent BatchGetItem (one call, one round trip), and
// decodes the state; the other items come back as read. It is the one read
// of the portal state: PortalState and ChangeRead use it.
//
// BatchGetItem reads each item consistently but not the two as one: a
// PutPortalState that commits between its reads of them (or between a
// read and the retry of an unprocessed key) would give the list last seen
// of one write with the PUT in flight of another. Every PutPortalState
// stamps both items with one new writeId, so such a read is seen (the two
// ids differ) and read again; a torn read is never returned:
//
//	read 1:  state ── id B ──┐    #sent ── id A     torn: read again
//	write B:        commits ─┘ (between the item reads)
//	read 2:  state ── id B        #sent ── id B     one write: returned
//
// The same two different ids on two reads in a row are no race (a read
// that saw a write on one item sees it on both the next time): the items
// were not written together (the state item restored from a backup alone,
// or edited by hand), and the state item wins, as it does when a version
// before the split wrote it (it then holds the in-flight part itself).
// Still torn after maxTornReads reads: EUnavailable.
func (s *Store) readState(ctx context.Context, op string, more ...map[string]types.AttributeValue) (ipguard.PortalState, []map[string]types.AttributeValue, error) {
	keys := append([]map[string]types.AttributeValue{key(portalStatePK), key(portalSentPK)}, more...)
	var prev [2]string
	for attempt := 1; ; attempt++ {
		items, err := s.batchGet(ctx, op, keys)
		if err != nil {
			return ipguard.PortalState{}, nil, err
		}
		var state, sent map[string]types.AttributeValue
		var others []map[string]types.AttributeValue
		for _, item := range items {
			pk, _ := item["pk"].(*types.AttributeValueMemberS)
			switch {
			case pk != nil && pk.Value == portalStatePK:
				state = item
			case pk != nil && pk.Value == portalSentPK:
				sent = item
			default:
				others = append(others, item)
			}
		}
		// A state item with the in-flight part holds the whole state: a
		// write of one item (a small state, or a version before the split)
		// wrote it last, and the #sent item is older than it (the rule of
		// reading, above).
		olderWrote := inFlightInState(state)
		if hasStateAttrsBefore(state) {
			s.olderState.Store(true) // the next write removes them
		}
		ids := [2]string{writeID(state), writeID(sent)}
		whole := olderWrote || ids[0] == ids[1]
		if !whole && attempt > 1 && ids == prev {
			sent, whole = nil, true // not written together: the state item wins
		}
		if whole {
			st, err := decodePortalState(state)
			if err == nil && sent != nil && !olderWrote {
				err = decodeInFlight(sent, &st)
			}
			if err != nil {
				return ipguard.PortalState{}, nil, s.corrupt(op, err)
			}
			if st.Sent == nil && st.SentOutcome != "" {
				// A PUT of an empty list in flight: stored as an empty
				// string, it is still in flight (nil is nothing in flight;
				// every write that settles a PUT clears its outcome too).
				st.Sent = []ipguard.Restriction{}
			}
			return st, others, nil
		}
		if attempt == maxTornReads {
			return ipguard.PortalState{}, nil, ipguard.Errorf(ipguard.EUnavailable,
				"dynamodb: %s (ALLOWLIST_TABLE=%s): the portal state was written during each of %d reads", op, s.table, attempt)
		}
		prev = ids
		if err := backoff(ctx, attempt); err != nil {
			return ipguard.PortalState{}, nil, s.fail(op, err)
		}
	}
}

// writeID is the writeId of a portal state item ("" for none, or no item).
func writeID(item map[string]types.AttributeValue) string {
	if v, ok := item[writeIDAttr].(*types.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}

// PutPortalState stores every field of st but Version and Adds, which only
// BumpVersion moves (callers bump it concurrently), and DueMarks, which
// only MarkAlertsDue moves (st.DueMarks is stored as dueMarksSeen).
// Applied, and with it AddsApplied, never goes down: a writer with an
// older Applied leaves the newer ones. A write with st.Pass set is fenced
// (writtenBy must be st.Pass or st.Base, or absent): otherwise nothing is
// written and the error is EConflict with ipguard.ErrSuperseded, so a pass
// whose lease ran out never replaces a newer pass's owned, seen or
// in-flight fields. It is one UpdateItem of the state item, or, for a
// large state, one transaction of both items (all or nothing; see
// splitAt). A state that no
// item can hold (a portal list far past the cap, by hand) is EConfig
// naming its size, never DynamoDB's refusal blamed on the table.
func (s *Store) PutPortalState(ctx context.Context, st ipguard.PortalState) error {
	const op = "put the portal allowlist state"
	sentAt := fmtTime(st.SentAt)
	sent, late := encodeSent(st.Sent, st.SentAdded), str(encodeLines(st.LateSent))
	pending := clipBytes(st.Pending, MaxPendingBytes)
	// One new id on both items: a read tells this write's pair from a
	// torn one (readState).
	wid := newWriteID()
	// One item while the state and its in-flight part fit in half of one
	// (see splitAt), counted as the state item stores them: the in-flight
	// part JSON-escaped in the rest document (a character JSON escapes
	// takes up to six bytes there: counted as text, a PUT of such entries
	// went into one item past DynamoDB's 400 KB). Else two items, each
	// within one.
	progress, rest := packState(st, pending, true)
	single := len(progress)+len(rest) <= splitAt
	if !single {
		progress, rest = packState(st, pending, false)
		stateSize, sentSize := len(progress)+len(rest), len(sent)
		for _, l := range st.LateSent {
			sentSize += len(l) + 1
		}
		if stateSize > maxStateItem || sentSize > maxStateItem {
			return ipguard.Errorf(ipguard.EConfig,
				"dynamodb: %s: the portal list of %d entries (and a PUT of %d) takes %d and %d bytes as the tool records it, more than one DynamoDB item holds (400 KB); remove entries on the portal (hand edits pushed it far past PORTAL_MAX_ENTRIES)",
				op, len(st.LastSeen), len(st.Sent), stateSize, sentSize)
		}
	}
	// applied moves forward only (a slower writer with an older Applied
	// keeps the newer one), the rest is replaced: the two documents (see
	// progressAttr), the in-flight part in the rest or in the #sent item.
	// The attributes of a version before the packing leave: with every
	// write of two items (rare: a large state), and with the first write
	// after a read that found them (Store.olderState).
	older := !single || s.olderState.Load()
	// The fence: a pass that names itself writes only while the state is
	// still its own or the one it started from (see ipguard.PortalState.Pass).
	fence := ""
	if st.Pass != "" {
		fence = "(attribute_not_exists(writtenBy) OR writtenBy = :pass OR writtenBy = :base)"
	}
	withApplied := true
	// build sets the write's expression and condition: the applied
	// versions unless a newer reconcile stored more; the attributes of a
	// version before the packing removed (older), or else their absence a
	// condition (attributeBefore: such a version wrote last).
	build := func(u *types.Update) {
		e := "SET "
		if fence != "" {
			e += "writtenBy = :pass, "
		}
		var conds []string
		if withApplied {
			e += "applied = :a, addsApplied = :aa, "
			conds = append(conds, "(attribute_not_exists(applied) OR applied <= :a)")
			u.ExpressionAttributeValues[":a"], u.ExpressionAttributeValues[":aa"] = num(st.Applied), num(st.AddsApplied)
		} else {
			delete(u.ExpressionAttributeValues, ":a")
			delete(u.ExpressionAttributeValues, ":aa")
		}
		e += "progress = :progress, rest = :rest, writeId = :wid"
		if older {
			e += " REMOVE " + strings.Join(stateAttrsBefore, ", ")
		} else {
			conds = append(conds, "attribute_not_exists("+attributeBefore+")")
		}
		if fence != "" {
			conds = append(conds, fence)
		}
		u.UpdateExpression, u.ConditionExpression = aws.String(e), nil
		if len(conds) > 0 {
			u.ConditionExpression = aws.String(strings.Join(conds, " AND "))
		}
	}
	stateUpdate := &types.Update{
		TableName: aws.String(s.table),
		Key:       key(portalStatePK),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":progress": str(progress), ":rest": str(rest), ":wid": str(wid),
		},
	}
	if fence != "" {
		stateUpdate.ExpressionAttributeValues[":pass"], stateUpdate.ExpressionAttributeValues[":base"] = str(st.Pass), str(st.Base)
	}
	build(stateUpdate)
	sentValues := map[string]types.AttributeValue{
		":sent": str(sent), ":sentEnable": &types.AttributeValueMemberBOOL{Value: st.SentEnable},
		":sentOutcome": str(st.SentOutcome), ":sentAt": str(sentAt), ":late": late, ":wid": str(wid),
	}
	sentUpdate := &types.Update{
		TableName:                 aws.String(s.table),
		Key:                       key(portalSentPK),
		UpdateExpression:          aws.String("SET sent = :sent, sentEnable = :sentEnable, sentOutcome = :sentOutcome, sentAt = :sentAt, late = :late, writeId = :wid REMOVE lateSent"),
		ExpressionAttributeValues: sentValues,
	}
	write := func() error {
		return retryConflicts(ctx, func() error {
			if single {
				_, err := s.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
					TableName: stateUpdate.TableName, Key: stateUpdate.Key, UpdateExpression: stateUpdate.UpdateExpression,
					ConditionExpression: stateUpdate.ConditionExpression, ExpressionAttributeValues: stateUpdate.ExpressionAttributeValues,
				})
				return err
			}
			_, err := s.api.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{
				TransactItems: []types.TransactWriteItem{{Update: stateUpdate}, {Update: sentUpdate}},
			})
			return err
		})
	}
	err := write()
	if !older && stateConditionFailed(err) {
		// Maybe a version before the packing wrote last: write again,
		// removing its attributes.
		older = true
		build(stateUpdate)
		err = write()
	}
	if stateConditionFailed(err) {
		// A newer reconcile already stored more: keep its applied version.
		withApplied = false
		build(stateUpdate)
		err = write()
		if fence != "" && stateConditionFailed(err) {
			return &ipguard.Error{Code: ipguard.EConflict, Err: ipguard.ErrSuperseded,
				Message: fmt.Sprintf("dynamodb: %s: reconcile pass %s started from %q, but another pass wrote the state since (its lease ran out): nothing written", op, st.Pass, st.Base)}
		}
	}
	if err != nil {
		return s.failWrite(op, err)
	}
	if older {
		s.olderState.Store(false)
	}
	return nil
}

// newWriteID is a random id for one PutPortalState (96 bits: never the
// same twice).
func newWriteID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// MarkAlertsDue implements onboard.Store: ADD dueMarks 1 on the state
// item (PutPortalState never writes dueMarks; it records the marks its
// state had read as dueMarksSeen, and a read shows alertsDue while
// dueMarks > dueMarksSeen). A conflict with a reconcile's transaction is
// tried again.
func (s *Store) MarkAlertsDue(ctx context.Context) error {
	err := retryConflicts(ctx, func() error {
		_, err := s.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName:                 aws.String(s.table),
			Key:                       key(portalStatePK),
			UpdateExpression:          aws.String("ADD dueMarks :one"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":one": num(1)},
		})
		return err
	})
	if err != nil {
		return s.failWrite("mark an onboarding alert as due", err)
	}
	return nil
}

// maxConflictAttempts bounds the tries of a write to the portal state
// that DynamoDB refused for a concurrent write to the same item.
const maxConflictAttempts = 6

// retryConflicts runs write, again (after a backoff, at most
// maxConflictAttempts in all) while DynamoDB refuses it as a conflict
// with a concurrent write to the same item: a change's BumpVersion
// (UpdateItem) racing a reconcile's PutPortalState (a transaction) is
// refused to whichever comes second, and the SDK does not retry either.
func retryConflicts(ctx context.Context, write func() error) error {
	for n := 1; ; n++ {
		err := write()
		if !transactionConflict(err) || n >= maxConflictAttempts {
			return err
		}
		if werr := backoff(ctx, n); werr != nil {
			return err
		}
	}
}

// transactionConflict reports whether err is DynamoDB's refusal of a
// write for a concurrent one on the same item, or a transaction cancelled
// for throttling (the SDK retries a throttled single write, not that).
func transactionConflict(err error) bool {
	var tce *types.TransactionConflictException
	if errors.As(err, &tce) {
		return true
	}
	var cancelled *types.TransactionCanceledException
	if !errors.As(err, &cancelled) {
		return false
	}
	conflict := false
	for _, r := range cancelled.CancellationReasons {
		switch aws.ToString(r.Code) {
		case "TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded", "RequestLimitExceeded":
			conflict = true
		case "", "None":
		default:
			return false // a condition or a size: not a race
		}
	}
	return conflict
}

// failWrite is fail for a write to the portal state: a conflict or a
// throttled transaction still refused after maxConflictAttempts is a
// passing outage (EUnavailable), not an unexpected answer.
func (s *Store) failWrite(op string, err error) error {
	if transactionConflict(err) {
		return &ipguard.Error{Code: ipguard.EUnavailable, Err: err,
			Message: fmt.Sprintf("dynamodb: %s (ALLOWLIST_TABLE=%s): %v", op, s.table, err)}
	}
	return s.fail(op, err)
}

// stateConditionFailed reports whether a portal state write failed the
// state item's condition (applied, the fence): the single UpdateItem's
// refusal, or the transaction cancelled for it.
func stateConditionFailed(err error) bool {
	if isConditionFailed(err) {
		return true
	}
	var tce *types.TransactionCanceledException
	if !errors.As(err, &tce) {
		return false
	}
	return len(tce.CancellationReasons) > 0 && aws.ToString(tce.CancellationReasons[0].Code) == "ConditionalCheckFailed"
}

// clipBytes cuts v to at most n bytes at a rune boundary, marking the cut.
func clipBytes(v string, n int) string {
	if len(v) <= n {
		return v
	}
	cut := n - len("…")
	for cut > 0 && !utf8.RuneStart(v[cut]) {
		cut--
	}
	return v[:cut] + "…"
}

func decodePortalState(item map[string]types.AttributeValue) (ipguard.PortalState, error) {
	if item == nil {
		return ipguard.PortalState{}, nil
	}
	p, packed, err := statePacked(item)
	if err != nil {
		return ipguard.PortalState{}, err
	}
	if packed {
		return decodePackedState(item, p)
	}
	return decodeStateAttrs(item)
}

// decodeStateAttrs reads a state item written one attribute a field (by a
// version before the packed state).
func decodeStateAttrs(item map[string]types.AttributeValue) (ipguard.PortalState, error) {
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
	if st.Adds, _, err = getN(item, "adds"); err != nil {
		return st, err
	}
	if st.AddsApplied, _, err = getN(item, "addsApplied"); err != nil {
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
	if st.TrailNotice, _, err = getS(item, "trailNotice"); err != nil {
		return st, err
	}
	if st.RecordNotice, _, err = getS(item, "recordNotice"); err != nil {
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
	seen := int64(0)
	if st.DueMarks, _, err = getN(item, "dueMarks"); err != nil {
		return st, err
	}
	if seen, _, err = getN(item, "dueMarksSeen"); err != nil {
		return st, err
	}
	st.AlertsDue = st.AlertsDue || st.DueMarks > seen
	if st.Pass, _, err = getS(item, "writtenBy"); err != nil {
		return st, err
	}
	if ms, _, err := getN(item, "passMs"); err != nil {
		return st, err
	} else {
		st.LastPass = time.Duration(ms) * time.Millisecond
	}
	if rd, _, err := getS(item, "recheckDue"); err != nil {
		return st, err
	} else if rd != "" {
		if st.RecheckDue, err = time.Parse(time.RFC3339Nano, rd); err != nil {
			return st, fmt.Errorf("attribute recheckDue: %w", err)
		}
	}
	if lr, _, err := getS(item, "lastReconcile"); err != nil {
		return st, err
	} else if lr != "" {
		if st.LastReconcile, err = time.Parse(time.RFC3339Nano, lr); err != nil {
			return st, fmt.Errorf("attribute lastReconcile: %w", err)
		}
	}
	if st.Owned, err = linesOrList(item, "owns", "owned"); err != nil {
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
	// Written before the in-flight part had an item of its own.
	if err := decodeInFlight(item, &st); err != nil {
		return st, err
	}
	if st.KeyUser, _, err = getS(item, "keyUser"); err != nil {
		return st, err
	}
	saves, err := linesOrList(item, "saves", "ownSaves")
	if err != nil {
		return st, err
	}
	for i, v := range saves {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return st, fmt.Errorf("own save %d: %w", i, err)
		}
		st.OwnSaves = append(st.OwnSaves, t)
	}
	// Absent in a state written before the spans of unanswered saves.
	windows, _, err := getS(item, "unanswered")
	if err != nil {
		return st, err
	}
	st.UnansweredSaves, err = decodeWindows(windows)
	return st, err
}

// decodeInFlight reads the PUT in flight and the recent PUTs into st.
func decodeInFlight(item map[string]types.AttributeValue, st *ipguard.PortalState) error {
	var err error
	if sent, _, err := getS(item, "sent"); err != nil {
		return err
	} else if st.Sent, st.SentAdded, err = decodeSent(sent); err != nil {
		return fmt.Errorf("attribute sent: %w", err)
	}
	if b, ok := item["sentEnable"].(*types.AttributeValueMemberBOOL); ok {
		st.SentEnable = b.Value
	}
	if st.SentOutcome, _, err = getS(item, "sentOutcome"); err != nil {
		return err
	}
	if v, _, err := getS(item, "sentAt"); err != nil {
		return err
	} else if v != "" {
		if st.SentAt, err = time.Parse(time.RFC3339Nano, v); err != nil {
			return fmt.Errorf("attribute sentAt: %w", err)
		}
	}
	if st.LateSent, err = linesOrList(item, "late", "lateSent"); err != nil {
		return err
	}
	return nil
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
		writeLine(&b, r.IP)
	}
	return b.String()
}

// writeLine writes x escaped (a newline in it must not split it) and a newline.
func writeLine(b *strings.Builder, x string) {
	b.WriteString(lineEscaper.Replace(x))
	b.WriteByte('\n')
}

// encodeLines writes a list of strings as one string of lines (each
// escaped as in encodeSent): the state's lists (owned addresses, own
// saves, recent PUTs) are strings, not lists, because a store's cost of
// every call on the item grows with its list elements (moto, the load
// test's stand-in, copies each on every read, poll and version bump).
func encodeLines(xs []string) string {
	var b strings.Builder
	for _, x := range xs {
		writeLine(&b, x)
	}
	return b.String()
}

// linesOrList reads the string list attribute lines (encodeLines), or the
// list attribute list written by a version before it. The list wins when
// both are there: every write of this version removes it, so an older
// version (a rollback) wrote it after.
func linesOrList(item map[string]types.AttributeValue, lines, list string) ([]string, error) {
	if _, ok := item[list]; ok {
		return listStrings(item, list)
	}
	v, _, err := getS(item, lines)
	if err != nil {
		return nil, err
	}
	return splitLines(v), nil
}

// splitLines reads a string of lines written by encodeLines or encodeSent
// back into its lines, unescaped; nil for "".
func splitLines(v string) []string {
	if v == "" {
		return nil
	}
	out := strings.Split(strings.TrimSuffix(v, "\n"), "\n")
	for i, x := range out {
		out[i] = lineUnescaper.Replace(x)
	}
	return out
}

// The portal stores addresses only, but its text is not ours: a newline in
// it must not split an entry.
var (
	lineEscaper   = strings.NewReplacer("%", "%25", "\n", "%0A")
	lineUnescaper = strings.NewReplacer("%0A", "\n", "%25", "%")
)

func decodeSent(v string) (list []ipguard.Restriction, added []string, err error) {
	for i, line := range splitLines(v) {
		if line == "" {
			continue
		}
		r := ipguard.Restriction{IP: line[1:]}
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

// AddDueAlert records a as due (replacing a due alert with the same key,
// and dropping any claim on it: the newer alert is due again).
func (s *Store) AddDueAlert(ctx context.Context, a ipguard.DueAlert) error {
	b, err := json.Marshal(a)
	if err != nil {
		return s.corrupt("record a due alert", err)
	}
	attr, claim, until := outboxAttrs(a.Key)
	_, err = s.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(s.table), Key: key(outboxPK),
		UpdateExpression:          aws.String("SET #a = :v REMOVE #c, #u"),
		ExpressionAttributeNames:  map[string]string{"#a": attr, "#c": claim, "#u": until},
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
		a, err := decodeDue(name, v)
		if err != nil {
			return nil, s.corrupt(op, err)
		}
		due = append(due, a)
	}
	sort.Slice(due, func(i, j int) bool { return due[i].Since.Before(due[j].Since) })
	return due, nil
}

func decodeDue(name string, v types.AttributeValue) (ipguard.DueAlert, error) {
	var a ipguard.DueAlert
	sv, ok := v.(*types.AttributeValueMemberS)
	if !ok {
		return a, fmt.Errorf("attribute %s is %T, want a string", name, v)
	}
	if err := json.Unmarshal([]byte(sv.Value), &a); err != nil {
		return a, fmt.Errorf("attribute %s: %w", name, err)
	}
	return a, nil
}

// ClearDueAlert removes the due alert with key (none is fine), and any claim on it.
func (s *Store) ClearDueAlert(ctx context.Context, k string) error {
	attr, claim, until := outboxAttrs(k)
	_, err := s.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(s.table), Key: key(outboxPK),
		UpdateExpression:         aws.String("REMOVE #a, #c, #u"),
		ExpressionAttributeNames: map[string]string{"#a": attr, "#c": claim, "#u": until},
	})
	if err != nil {
		return s.fail("clear a due alert", err)
	}
	return nil
}

// ClaimDueAlert claims the due alert k for token until until (epoch ms in
// attribute "u_…", the token in "c_…"): a conditional write that succeeds
// only while the alert is due and no claim on it runs at now. It returns
// the alert as stored when claimed.
func (s *Store) ClaimDueAlert(ctx context.Context, k, token string, until, now time.Time) (ipguard.DueAlert, bool, error) {
	const op = "claim a due alert"
	attr, claim, untilAttr := outboxAttrs(k)
	out, err := s.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(s.table), Key: key(outboxPK),
		UpdateExpression:         aws.String("SET #c = :tok, #u = :until"),
		ConditionExpression:      aws.String("attribute_exists(#a) AND (attribute_not_exists(#u) OR #u < :now)"),
		ExpressionAttributeNames: map[string]string{"#a": attr, "#c": claim, "#u": untilAttr},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":tok": str(token), ":until": num(until.UnixMilli()), ":now": num(now.UnixMilli()),
		},
		ReturnValues: types.ReturnValueAllNew,
	})
	if isConditionFailed(err) {
		return ipguard.DueAlert{}, false, nil
	}
	if err != nil {
		return ipguard.DueAlert{}, false, s.fail(op, err)
	}
	a, err := decodeDue(attr, out.Attributes[attr])
	if err != nil {
		return ipguard.DueAlert{}, false, s.corrupt(op, err)
	}
	return a, true, nil
}

// SettleDueAlert ends token's claim on k: sent removes the alert, else it
// stays due, unclaimed. A claim no longer token's is left alone.
func (s *Store) SettleDueAlert(ctx context.Context, k, token string, sent bool) error {
	attr, claim, until := outboxAttrs(k)
	expr, names := "REMOVE #c, #u", map[string]string{"#c": claim, "#u": until}
	if sent {
		expr, names["#a"] = "REMOVE #a, #c, #u", attr
	}
	_, err := s.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(s.table), Key: key(outboxPK),
		UpdateExpression:          aws.String(expr),
		ConditionExpression:       aws.String("#c = :tok"),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: map[string]types.AttributeValue{":tok": str(token)},
	})
	if isConditionFailed(err) {
		return nil
	}
	if err != nil {
		return s.fail("settle a due alert", err)
	}
	return nil
}

// outboxAttrs are the attributes of key k: the alert ("a_"), its claim's
// token ("c_") and end ("u_"); hashed, so any key gives valid, short names.
func outboxAttrs(k string) (alert, claim, until string) {
	sum := sha256.Sum256([]byte(k))
	h := hex.EncodeToString(sum[:12])
	return "a_" + h, "c_" + h, "u_" + h
}

// The writes of the reconcile recorded for a second look in the audit
// trail (onboard.Rechecks, #15 §5) are one item (pk recheck#portal), as
// the outbox: one attribute per record ("r_" and its key's hash: the
// record's JSON) and one for the keys of the saves already alerted ("k_",
// a string set, so concurrent adds all stay). Adding or removing one never
// rewrites another, and the portal state item stays within its size.
const recheckPK = "recheck#portal"

// unreadableRecheck prefixes the key of a record attribute that cannot be
// decoded (decodeRechecks): the attribute's own name follows, so that
// ClearRechecks removes it. A record's own key never has it (onboard keys
// its records by an instant).
const unreadableRecheck = "unreadable attribute "

// recheckAttrs are the attributes of the record with key k.
func recheckAttrs(k string) (record, alerted string) {
	if name, ok := strings.CutPrefix(k, unreadableRecheck); ok && strings.HasPrefix(name, "r_") {
		return name, "k_" + strings.TrimPrefix(name, "r_")
	}
	sum := sha256.Sum256([]byte(k))
	h := hex.EncodeToString(sum[:12])
	return "r_" + h, "k_" + h
}

// storedRecheck is a record's attribute (its alerted keys are apart).
type storedRecheck struct {
	Key  string    `json:"key"`
	From time.Time `json:"from"`
	Body string    `json:"body"`
}

// PutRecheck implements onboard.Rechecks: one UpdateItem that sets r,
// adds its alerted keys and removes the records keyed drop, returning the
// item as it is after the write.
func (s *Store) PutRecheck(ctx context.Context, r ipguard.Recheck, drop []string) ([]ipguard.Recheck, error) {
	const op = "record a write for a second look in the audit trail"
	b, err := json.Marshal(storedRecheck{Key: r.Key, From: r.From.UTC(), Body: r.Body})
	if err != nil {
		return nil, s.corrupt(op, err)
	}
	rec, al := recheckAttrs(r.Key)
	expr := "SET #r = :v"
	names := map[string]string{"#r": rec}
	values := map[string]types.AttributeValue{":v": str(string(b))}
	if len(r.Alerted) > 0 {
		expr += " ADD #k :al"
		names["#k"] = al
		values[":al"] = &types.AttributeValueMemberSS{Value: stringSet(r.Alerted)}
	}
	var removes []string
	for i, k := range drop {
		if k == r.Key {
			continue
		}
		dr, dk := recheckAttrs(k)
		names[fmt.Sprintf("#d%d", i)], names[fmt.Sprintf("#e%d", i)] = dr, dk
		removes = append(removes, fmt.Sprintf("#d%d", i), fmt.Sprintf("#e%d", i))
	}
	if len(removes) > 0 {
		expr += " REMOVE " + strings.Join(removes, ", ")
	}
	out, err := s.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(s.table), Key: key(recheckPK),
		UpdateExpression: aws.String(expr), ExpressionAttributeNames: names, ExpressionAttributeValues: values,
		ReturnValues: types.ReturnValueAllNew,
	})
	if err != nil {
		return nil, s.fail(op, err)
	}
	all, err := decodeRechecks(out.Attributes)
	if err != nil {
		return nil, s.corrupt(op, err)
	}
	return all, nil
}

// Rechecks implements onboard.Rechecks (strongly consistent), oldest first.
func (s *Store) Rechecks(ctx context.Context) ([]ipguard.Recheck, error) {
	const op = "read the writes recorded for a second look in the audit trail"
	item, err := s.getItem(ctx, op, recheckPK)
	if err != nil {
		return nil, err
	}
	all, err := decodeRechecks(item)
	if err != nil {
		return nil, s.corrupt(op, err)
	}
	return all, nil
}

// decodeRechecks reads the records of the item, oldest first; an alerted
// set without its record (added as the record was removed) is ignored. A
// record attribute that cannot be decoded fails neither the read nor the
// others: it comes back first with an empty Body under the key
// unreadableRecheck + its name (onboard alerts it as unreadable and clears
// it by that key), never left to fail every read of the item in silence.
func decodeRechecks(item map[string]types.AttributeValue) ([]ipguard.Recheck, error) {
	all := []ipguard.Recheck{}
	for name, v := range item {
		if !strings.HasPrefix(name, "r_") {
			continue
		}
		var r storedRecheck
		sv, ok := v.(*types.AttributeValueMemberS)
		var rec ipguard.Recheck
		if !ok || json.Unmarshal([]byte(sv.Value), &r) != nil || r.Key == "" {
			rec = ipguard.Recheck{Key: unreadableRecheck + name} // with what was noted of it (its alert)
		} else {
			rec = ipguard.Recheck{Key: r.Key, From: r.From, Body: r.Body}
		}
		if ss, ok := item["k_"+strings.TrimPrefix(name, "r_")].(*types.AttributeValueMemberSS); ok && len(ss.Value) > 0 {
			rec.Alerted = stringSet(ss.Value)
		}
		all = append(all, rec)
	}
	sort.Slice(all, func(i, j int) bool {
		if !all[i].From.Equal(all[j].From) {
			return all[i].From.Before(all[j].From)
		}
		return all[i].Key < all[j].Key
	})
	return all, nil
}

// AddRecheckAlerted implements onboard.Rechecks: ADD to the record's
// string set, only while the record is stored.
func (s *Store) AddRecheckAlerted(ctx context.Context, k string, alerted []string) error {
	if len(alerted) == 0 {
		return nil
	}
	rec, al := recheckAttrs(k)
	_, err := s.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(s.table), Key: key(recheckPK),
		UpdateExpression:          aws.String("ADD #k :al"),
		ConditionExpression:       aws.String("attribute_exists(#r)"),
		ExpressionAttributeNames:  map[string]string{"#k": al, "#r": rec},
		ExpressionAttributeValues: map[string]types.AttributeValue{":al": &types.AttributeValueMemberSS{Value: stringSet(alerted)}},
	})
	if isConditionFailed(err) {
		return nil
	}
	if err != nil {
		return s.fail("note the overwritten saves alerted for a recorded write", err)
	}
	return nil
}

// ClearRechecks implements onboard.Rechecks: one UpdateItem removing each
// record and its alerted keys.
func (s *Store) ClearRechecks(ctx context.Context, keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	names := map[string]string{}
	var removes []string
	for i, k := range stringSet(keys) {
		r, a := recheckAttrs(k)
		names[fmt.Sprintf("#r%d", i)], names[fmt.Sprintf("#k%d", i)] = r, a
		removes = append(removes, fmt.Sprintf("#r%d", i), fmt.Sprintf("#k%d", i))
	}
	_, err := s.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(s.table), Key: key(recheckPK),
		UpdateExpression:         aws.String("REMOVE " + strings.Join(removes, ", ")),
		ExpressionAttributeNames: names,
	})
	if err != nil {
		return s.fail("remove the writes looked at again in the audit trail", err)
	}
	return nil
}

// stringSet is xs sorted without repeats (a string set's values).
func stringSet(xs []string) []string {
	out := slices.Clone(xs)
	slices.Sort(out)
	return slices.Compact(out)
}
