package dynamo_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"ipguard/internal/config"
	"ipguard/internal/ipguard"
	"ipguard/internal/onboard"
)

// portalColumn is the widest text the portal stores as one entry (its
// tenants_iprestrictions.ip column, docs/docspace-api.md §2.2): entries the
// tool did not write (others', kept as they are) can be that long.
const portalColumn = 50

// maxItem is DynamoDB's item size limit (400 KB, names and values).
const maxItem = 400 * 1024

// worstEntry is entry i at the portal column's full width, with a "%"
// (which the compact form escapes to three bytes).
func worstEntry(prefix string, i int) string {
	s := fmt.Sprintf("%s%%%07d", prefix, i)
	return strings.Repeat("f", portalColumn-len(s)) + s
}

// fullIPv6 is a canonical IPv6 address of full length (39 characters),
// what the tool itself writes and owns at the longest.
func fullIPv6(tag, i int) string {
	return fmt.Sprintf("2001:db8:%04x:ffff:ffff:ffff:%04x:%04x", tag, i/65536%65536, i%65536)
}

// largestState is the largest portal state the reconciler can store with
// PORTAL_MAX_ENTRIES at its largest accepted value (config.MaxPortalEntries):
// every list full, every entry at its longest. The portal list seen and the
// list of a PUT in flight are both at the cap with entries of others at the
// column's full width (the tool keeps them as they are), every owned address
// is a full-length IPv6 one, the recent PUTs remembered (LateSent) each keep
// the most entries of others at full width, the own saves are all there and
// the pending reason is at its bound.
func largestState(n int) ipguard.PortalState {
	st := ipguard.PortalState{Applied: 1, Reconciled: true, LastEnabled: true, Pending: strings.Repeat("p", 10_000),
		PendingCode: ipguard.EUnavailable, PendingVersion: 1, LockoutNotice: strings.Repeat("l", 64), DriftEpisode: strings.Repeat("d", 64),
		SentOutcome: ipguard.SentUnknown, SentAt: time.Now(), SentEnable: true, KeyUser: strings.Repeat("k", 36), AlertsDue: true,
		LastReconcile: time.Now(), RecheckDue: time.Now().Add(77 * time.Second)}
	for i := range n {
		st.LastSeen = append(st.LastSeen, ipguard.Restriction{IP: worstEntry("s", i), ForAdmin: i%2 == 0})
		st.Owned = append(st.Owned, fullIPv6(0xffff, i))
		sent := worstEntry("t", i)
		st.Sent = append(st.Sent, ipguard.Restriction{IP: sent})
		st.SentAdded = append(st.SentAdded, sent)
	}
	for h := range onboard.MaxLateSent {
		kept := make([]string, onboard.MaxLateKept)
		for i := range kept {
			kept[i] = worstEntry(fmt.Sprint("l", h), i)
		}
		st.LateSent = append(st.LateSent, strings.Repeat("h", 31)+fmt.Sprint(h)+" "+strings.Join(kept, ","))
	}
	for range onboard.MaxOwnSaves {
		st.OwnSaves = append(st.OwnSaves, time.Now())
		st.UnansweredSaves = append(st.UnansweredSaves, ipguard.SaveWindow{From: time.Now(), Until: time.Now()})
	}
	return st
}

// TestPortalStateHoldsTheLargestAllowedList: the reconciler's memory of the
// portal (the list it saw, the addresses it owns, and the PUT in flight with
// the recent PUTs that may still land) must be storable at the largest
// allowed list (WHERE-ISSUES-MEET §15), with every list at the cap and every
// entry at its longest; otherwise every reconcile past some size fails, and
// with it a security removal. It is read back whole, and each item it takes
// stays within DynamoDB's 400 KB with room to spare (a quarter).
func TestPortalStateHoldsTheLargestAllowedList(t *testing.T) {
	db := motoDB(t)
	s := tableStore(t, db, "statesize")
	ctx := context.Background()
	n := config.MaxPortalEntries
	st := largestState(n)
	if err := s.PutPortalState(ctx, st); err != nil {
		t.Fatalf("state with every list at PORTAL_MAX_ENTRIES's largest value (%d) and every entry at its longest: %v", n, err)
	}
	got, err := s.PortalState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.LastSeen) != n || got.LastSeen[n-1] != st.LastSeen[n-1] || len(got.Owned) != n || len(got.Sent) != n ||
		got.Sent[n-1] != st.Sent[n-1] || len(got.SentAdded) != n || len(got.LateSent) != onboard.MaxLateSent ||
		got.LateSent[onboard.MaxLateSent-1] != st.LateSent[onboard.MaxLateSent-1] || len(got.OwnSaves) != onboard.MaxOwnSaves ||
		got.SentOutcome != st.SentOutcome || got.KeyUser != st.KeyUser || got.Pending == "" || !got.RecheckDue.Equal(st.RecheckDue) {
		t.Fatalf("read back %d seen, %d owned, %d sent (%d added), %d late, %d saves, outcome %q", len(got.LastSeen), len(got.Owned),
			len(got.Sent), len(got.SentAdded), len(got.LateSent), len(got.OwnSaves), got.SentOutcome)
	}
	scan, err := db.Scan(ctx, &dynamodb.ScanInput{TableName: aws.String("statesize")})
	if err != nil {
		t.Fatal(err)
	}
	for _, item := range scan.Items {
		size := itemSize(item)
		t.Logf("item %v: %d bytes at the cap (%d%% of DynamoDB's 400 KB)", item["pk"].(*types.AttributeValueMemberS).Value, size, size*100/maxItem)
		if size > maxItem*3/4 {
			t.Errorf("item %v takes %d bytes at the cap: more than three quarters of DynamoDB's %d", item["pk"], size, maxItem)
		}
	}
}

// Hand edits can push the portal list past the cap; then only removals go
// out (a security removal never waits), as a PUT of the whole list. Its
// state must still be storable well past the cap, and one no item can hold
// is a ConfigurationError naming the entries, not DynamoDB's refusal.
func TestPortalStatePastTheCap(t *testing.T) {
	s := tableStore(t, motoDB(t), "statepast")
	ctx := context.Background()
	tests := []struct {
		name    string
		n       int
		wantErr bool
	}{
		{"half as much again as the cap (removals only)", config.MaxPortalEntries * 3 / 2, false},
		{"far past what one item holds", config.MaxPortalEntries * 5, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := largestState(tc.n)
			st.Owned = st.Owned[:config.MaxPortalEntries] // owned addresses are the tool's own: at most the cap
			err := s.PutPortalState(ctx, st)
			if !tc.wantErr {
				if err != nil {
					t.Fatalf("state of a %d-entry portal list: %v", tc.n, err)
				}
				if got, err := s.PortalState(ctx); err != nil || len(got.LastSeen) != tc.n || len(got.Sent) != tc.n {
					t.Fatalf("read back %d seen, %d sent, %v", len(got.LastSeen), len(got.Sent), err)
				}
				return
			}
			if ipguard.ErrorCode(err) != ipguard.EConfig || !strings.Contains(err.Error(), fmt.Sprint(tc.n, " entries")) ||
				!strings.Contains(err.Error(), "remove entries on the portal") {
				t.Fatalf("error = %v; want a ConfigurationError naming the %d entries", err, tc.n)
			}
		})
	}
}

// A state written before the in-flight part had an item of its own (the
// PUT in flight in the state item) is read as it was, and the next write
// moves it.
func TestPortalStateWrittenBeforeTheSplitIsRead(t *testing.T) {
	db := motoDB(t)
	s := tableStore(t, db, "statelegacy")
	ctx := context.Background()
	_, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String("statelegacy"), Item: map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: "state#portal-allowlist"}, "version": &types.AttributeValueMemberN{Value: "3"},
		"applied": &types.AttributeValueMemberN{Value: "2"}, "seen": &types.AttributeValueMemberS{Value: "-192.0.2.1\n"},
		"sent":        &types.AttributeValueMemberS{Value: "-192.0.2.1\n+203.0.113.5\n"},
		"sentOutcome": &types.AttributeValueMemberS{Value: ipguard.SentUnknown},
		"lateSent":    &types.AttributeValueMemberL{Value: []types.AttributeValue{&types.AttributeValueMemberS{Value: "h1 "}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	st, err := s.PortalState(ctx)
	if err != nil || len(st.Sent) != 2 || len(st.SentAdded) != 1 || st.SentOutcome != ipguard.SentUnknown || len(st.LateSent) != 1 || st.Applied != 2 {
		t.Fatalf("legacy state = %+v, %v", st, err)
	}
	st.Sent, st.SentAdded, st.SentOutcome = nil, nil, ""
	if err := s.PutPortalState(ctx, st); err != nil {
		t.Fatal(err)
	}
	if got, err := s.PortalState(ctx); err != nil || got.Sent != nil || got.SentOutcome != "" || len(got.LateSent) != 1 || got.Version != 3 {
		t.Fatalf("after the next write: %+v, %v; want the PUT in flight cleared, the late PUTs kept", got, err)
	}
}

// An operator who rolls back to a version before the split and forward
// again: the older version wrote the PUT in flight into the state item
// (after the last write of the #sent item, which every newer write removes
// from the state item), so the state item's in-flight part is the newer
// one; the #sent item left from before the rollback is stale.
func TestPortalStateAfterARollbackReadsTheOlderVersionsWrite(t *testing.T) {
	db := motoDB(t)
	s := tableStore(t, db, "staterollback")
	ctx := context.Background()
	// Before the rollback: a PUT in flight, recorded in the #sent item.
	if err := s.PutPortalState(ctx, ipguard.PortalState{Applied: 1, Sent: []ipguard.Restriction{{IP: "198.51.100.9"}},
		SentAdded: []string{"198.51.100.9"}, SentOutcome: ipguard.SentUnknown, LateSent: []string{"old "}}); err != nil {
		t.Fatal(err)
	}
	// The older version's write: its PUT answered, nothing in flight.
	_, err := db.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String("staterollback"),
		Key:              map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "state#portal-allowlist"}},
		UpdateExpression: aws.String("SET applied = :a, sent = :empty, sentOutcome = :empty, sentAt = :empty, lateSent = :late"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":a": &types.AttributeValueMemberN{Value: "2"},
			":empty": &types.AttributeValueMemberS{Value: ""},
			":late":  &types.AttributeValueMemberL{Value: []types.AttributeValue{&types.AttributeValueMemberS{Value: "new "}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	st, err := s.PortalState(ctx)
	if err != nil || st.Sent != nil || st.SentOutcome != "" || len(st.LateSent) != 1 || st.LateSent[0] != "new " {
		t.Fatalf("state = %+v, %v; want the older version's later write (nothing in flight, late PUTs [new ])", st, err)
	}
}

// A state that fits in half an item is written with one UpdateItem of the
// state item, its PUT in flight included; a larger one in two items. A
// state that grows past that and shrinks again (or the other way) reads
// back, by PortalState and by a change's one read alike, the in-flight
// part last written, never a #sent item left from an earlier write.
func TestPortalStateMovesBetweenOneItemAndTwo(t *testing.T) {
	db := motoDB(t)
	s := tableStore(t, db, "statemoves")
	ctx := context.Background()
	large := largestState(config.MaxPortalEntries)
	small := func(sent string, late string) ipguard.PortalState {
		st := ipguard.PortalState{Applied: 1, Reconciled: true, LastSeen: []ipguard.Restriction{{IP: "192.0.2.1"}}, Owned: []string{"192.0.2.1"}, LateSent: []string{late}}
		if sent != "" {
			st.Sent, st.SentAdded, st.SentOutcome, st.SentAt = []ipguard.Restriction{{IP: sent}}, []string{sent}, ipguard.SentInFlight, time.Now().UTC().Truncate(time.Millisecond)
		}
		return st
	}
	steps := []struct {
		name  string
		st    ipguard.PortalState
		items int // items of the state written
	}{
		{"small, a PUT in flight", small("198.51.100.1", "a "), 1},
		{"at the cap", large, 2},
		{"small again, nothing in flight", small("", "b "), 2}, // the #sent item stays, stale
		{"small, another PUT in flight", small("198.51.100.2", "c "), 2},
		{"at the cap again", large, 2},
	}
	for _, step := range steps {
		if err := s.PutPortalState(ctx, step.st); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		got, err := s.PortalState(ctx)
		if err != nil {
			t.Fatal(err)
		}
		cs, err := s.ChangeRead(ctx, "nobody", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range []struct {
			how string
			st  ipguard.PortalState
		}{{"PortalState", got}, {"ChangeRead", cs.State}} {
			if len(r.st.Sent) != len(step.st.Sent) || len(step.st.Sent) > 0 && r.st.Sent[0] != step.st.Sent[0] ||
				!slices.Equal(r.st.LateSent, step.st.LateSent) || r.st.SentOutcome != step.st.SentOutcome || len(r.st.LastSeen) != len(step.st.LastSeen) {
				t.Errorf("%s, read by %s: %d sent, outcome %q, late %d; want %d sent, outcome %q, late %d",
					step.name, r.how, len(r.st.Sent), r.st.SentOutcome, len(r.st.LateSent), len(step.st.Sent), step.st.SentOutcome, len(step.st.LateSent))
			}
		}
		scan, err := db.Scan(ctx, &dynamodb.ScanInput{TableName: aws.String("statemoves")})
		if err != nil {
			t.Fatal(err)
		}
		if len(scan.Items) != step.items {
			t.Errorf("%s: %d items stored; want %d", step.name, len(scan.Items), step.items)
		}
	}
}

// The state's lists (owned addresses, own saves, recent PUTs) are strings
// of lines, cheap on every call on the item. A state written before, with
// them as lists, is read; and when a version before (a rollback) writes
// the lists after this version's last write, its lists are the ones read.
func TestPortalStateListsAsLines(t *testing.T) {
	db := motoDB(t)
	ctx := context.Background()
	save := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
	list := func(xs ...string) *types.AttributeValueMemberL {
		l := &types.AttributeValueMemberL{Value: []types.AttributeValue{}}
		for _, x := range xs {
			l.Value = append(l.Value, &types.AttributeValueMemberS{Value: x})
		}
		return l
	}
	older := map[string]types.AttributeValue{"owned": list("192.0.2.7"), "ownSaves": list(save.Format(time.RFC3339Nano)), "lateSent": list("h9 ")}
	tests := []struct {
		name   string
		first  *ipguard.PortalState // written by this version first (nil: nothing)
		older  bool                 // then the older version's lists
		owned  []string
		late   []string
		nSaves int
	}{
		{"written by this version", &ipguard.PortalState{Owned: []string{"192.0.2.1", "a\nb%"}, OwnSaves: []time.Time{save, save}, LateSent: []string{"h1 x,y"}}, false,
			[]string{"192.0.2.1", "a\nb%"}, []string{"h1 x,y"}, 2},
		{"written by a version before", nil, true, []string{"192.0.2.7"}, []string{"h9 "}, 1},
		{"a version before wrote after this one", &ipguard.PortalState{Owned: []string{"192.0.2.1"}, LateSent: []string{"h1 "}}, true,
			[]string{"192.0.2.7"}, []string{"h9 "}, 1},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			table := fmt.Sprintf("statelines-%d", i)
			s := tableStore(t, db, table)
			if tc.first != nil {
				if err := s.PutPortalState(ctx, *tc.first); err != nil {
					t.Fatal(err)
				}
			}
			if tc.older {
				_, err := db.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(table),
					Key:              map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "state#portal-allowlist"}},
					UpdateExpression: aws.String("SET owned = :o, ownSaves = :s, lateSent = :l, sent = :e"),
					ExpressionAttributeValues: map[string]types.AttributeValue{":o": older["owned"], ":s": older["ownSaves"], ":l": older["lateSent"],
						":e": &types.AttributeValueMemberS{Value: ""}},
				})
				if err != nil {
					t.Fatal(err)
				}
			}
			st, err := s.PortalState(ctx)
			if err != nil || !slices.Equal(st.Owned, tc.owned) || !slices.Equal(st.LateSent, tc.late) || len(st.OwnSaves) != tc.nSaves || !st.OwnSaves[0].Equal(save) {
				t.Fatalf("read %q owned, %q late, %v saves, %v; want %q, %q, %d", st.Owned, st.LateSent, st.OwnSaves, err, tc.owned, tc.late, tc.nSaves)
			}
			// The next write of this version keeps what it read.
			if err := s.PutPortalState(ctx, st); err != nil {
				t.Fatal(err)
			}
			if again, err := s.PortalState(ctx); err != nil || !slices.Equal(again.Owned, tc.owned) || !slices.Equal(again.LateSent, tc.late) || len(again.OwnSaves) != tc.nSaves {
				t.Fatalf("after the next write: %q owned, %q late, %d saves, %v", again.Owned, again.LateSent, len(again.OwnSaves), err)
			}
		})
	}
}

// The writes waiting for a second look in the audit trail live in an item
// of their own (#15 §5, WHERE-ISSUES-MEET §15): one past their bound
// (onboard.MaxRechecks: the write before the merge), each at the largest a
// record takes (about 20 KB as stored: onboard's
// TestSecondLookRecordsFitTheirItem) with its alerted keys at their bound, the item stays
// within three quarters of DynamoDB's 400 KB, and each write of it returns
// every record.
func TestRecheckItemHoldsItsBound(t *testing.T) {
	db := motoDB(t)
	s := tableStore(t, db, "rechecksize")
	ctx := context.Background()
	body := strings.Repeat("ü", 10*1024) // 20 KB as stored (nothing to escape)
	for i := range onboard.MaxRechecks + 1 {
		var alerted []string
		for j := range 20 { // a merged record's bound: 20 saves alerted, a mark per span (32)
			alerted = append(alerted, fmt.Sprintf("2026-11-25T10:00:%02dZ#%s", j, strings.Repeat("u", 64)))
		}
		for j := range 32 {
			alerted = append(alerted, fmt.Sprintf("unchecked#2026-11-25T10:%02d:00.123456789Z", j))
		}
		r := ipguard.Recheck{Key: fmt.Sprintf("2026-11-25T10:%02d:00.123456789Z", i), From: time.Now().Add(time.Duration(i) * time.Second), Body: body, Alerted: alerted}
		all, err := s.PutRecheck(ctx, r, nil)
		if err != nil || len(all) != i+1 {
			t.Fatalf("record %d: %d records back, %v", i, len(all), err)
		}
	}
	out, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String("rechecksize"), Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "recheck#portal"}}})
	if err != nil {
		t.Fatal(err)
	}
	size := itemSize(out.Item)
	t.Logf("recheck#portal one past its bound: %d bytes (%d%% of 400 KB)", size, size*100/maxItem)
	if size > maxItem*3/4 {
		t.Errorf("recheck#portal takes %d bytes one past its bound: more than three quarters of DynamoDB's %d", size, maxItem)
	}
}

// An attribute of recheck#portal that cannot be decoded (not a string, or
// not the record's JSON: written by hand, or by another version) fails
// neither the read nor the write of the records: it comes back as a record
// with an empty body (so the second look alerts it as unreadable and drops
// it) under a key ClearRechecks removes it by, and the other records are
// read whole. (Before: every read of the item failed, the second look only
// logged it on each reconcile, and no record was ever looked at again.)
func TestUnreadableRecheckRecordIsReturnedToBeDropped(t *testing.T) {
	db := motoDB(t)
	s := tableStore(t, db, "recheckcorrupt")
	ctx := context.Background()
	good := ipguard.Recheck{Key: "2026-11-25T10:00:00.5Z", From: time.Date(2026, 11, 25, 10, 0, 0, 5e8, time.UTC), Body: `{"spans":[]}`, Alerted: []string{"x#1"}}
	if _, err := s.PutRecheck(ctx, good, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String("recheckcorrupt"), Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "recheck#portal"}},
		UpdateExpression: aws.String("SET r_0badjson = :j, r_0badtype = :n"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":j": &types.AttributeValueMemberS{Value: "{not json"}, ":n": &types.AttributeValueMemberN{Value: "7"},
		},
	}); err != nil {
		t.Fatal(err)
	}
	all, err := s.Rechecks(ctx)
	if err != nil {
		t.Fatalf("Rechecks with an unreadable record: %v; want the records, the unreadable ones with an empty body", err)
	}
	var bad []string
	for _, r := range all {
		switch {
		case r.Key == good.Key:
			if r.Body != good.Body || !slices.Equal(r.Alerted, good.Alerted) {
				t.Errorf("the readable record came back as %+v", r)
			}
		case r.Body == "":
			bad = append(bad, r.Key)
		default:
			t.Errorf("unexpected record %+v", r)
		}
	}
	if len(bad) != 2 {
		t.Fatalf("records %+v; want the two unreadable ones with an empty body", all)
	}
	if again, err := s.PutRecheck(ctx, ipguard.Recheck{Key: "k2", From: good.From.Add(time.Second), Body: "b"}, nil); err != nil || len(again) != 4 {
		t.Fatalf("PutRecheck beside unreadable records: %d back, %v; want 4", len(again), err)
	}
	if err := s.ClearRechecks(ctx, bad); err != nil {
		t.Fatal(err)
	}
	if all, err = s.Rechecks(ctx); err != nil || len(all) != 2 {
		t.Errorf("after clearing the unreadable records: %+v, %v; want the two readable ones", all, err)
	}
}

// An unreadable record comes back with the keys noted of it (its alert
// already sent, when its removal failed after: onboard's
// TestSecondLookWhoseRecordCannotBeRemovedDoesNotAlertTwice), as the fake
// store gives them, so that the next look does not alert it again.
func TestUnreadableRecheckRecordKeepsWhatWasNotedOfIt(t *testing.T) {
	db := motoDB(t)
	s := tableStore(t, db, "recheckcorruptnoted")
	ctx := context.Background()
	if _, err := db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String("recheckcorruptnoted"), Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "recheck#portal"}},
		UpdateExpression:          aws.String("SET r_0badjson = :j"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":j": &types.AttributeValueMemberS{Value: "{not json"}},
	}); err != nil {
		t.Fatal(err)
	}
	all, err := s.Rechecks(ctx)
	if err != nil || len(all) != 1 {
		t.Fatalf("Rechecks: %+v, %v; want the unreadable record", all, err)
	}
	if err := s.AddRecheckAlerted(ctx, all[0].Key, []string{"unreadable"}); err != nil {
		t.Fatal(err)
	}
	if all, err = s.Rechecks(ctx); err != nil || len(all) != 1 || !slices.Equal(all[0].Alerted, []string{"unreadable"}) {
		t.Errorf("after noting the unreadable record: %+v, %v; want it with the key noted", all, err)
	}
}

// zoneEntry is entry i of others at the portal column's full width, an
// IPv6 address with a zone (the text after "%", which the portal stores
// verbatim: docs/docspace-api.md §2.4) made of the characters in odd,
// repeated.
func zoneEntry(odd string, i int) string {
	s := fmt.Sprintf("fe80::%x%%", i)
	return s + strings.Repeat(odd, portalColumn)[:portalColumn-len(s)]
}

// The packed documents are JSON: a character JSON escapes takes more room
// there than it took in an attribute of its own. Each state below was
// stored by the attributes; it must be stored packed too, read back as
// written, each item within three quarters of 400 KB:
//
//   - entries of others with "<", ">" and "&" (an address's zone, by hand)
//     at the largest allowed list: HTML escaping took six bytes for each,
//     and the state was a ConfigurationError (every reconcile, a security
//     removal included, refused);
//   - a PUT in flight whose list holds many entries that JSON escapes
//     (added by hand since the last reconcile, so not in the list last
//     seen): the one-item write (splitAt) counted them as text, went into
//     one item past DynamoDB's 400 KB, and every reconcile's first write
//     was refused as the table's error. Counted as stored, escaped, it is
//     written in two items.
func TestPortalStateWithOddEntriesHoldsTheLargestAllowedList(t *testing.T) {
	db := motoDB(t)
	ctx := context.Background()
	atTheCap := largestState(config.MaxPortalEntries)
	for i := range atTheCap.LastSeen {
		atTheCap.LastSeen[i].IP = zoneEntry("<&>", i)
		atTheCap.Sent[i].IP, atTheCap.SentAdded[i] = zoneEntry("&<>", i), zoneEntry("&<>", i)
	}
	escapedInFlight := ipguard.PortalState{Applied: 1, Reconciled: true, LastSeen: []ipguard.Restriction{{IP: "192.0.2.1"}}, Owned: []string{"192.0.2.1"},
		SentOutcome: ipguard.SentInFlight, SentAt: time.Now().UTC(), SentEnable: true}
	for i := range config.MaxPortalEntries {
		escapedInFlight.Sent = append(escapedInFlight.Sent, ipguard.Restriction{IP: zoneEntry("\x01<\"", i)})
	}
	tests := []struct {
		name, table string
		st          ipguard.PortalState
	}{
		{"entries of others with <, > and & at the cap", "stateodd", atTheCap},
		{"a PUT in flight of entries JSON escapes", "stateescaped", escapedInFlight},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := tableStore(t, db, tc.table)
			if err := s.PutPortalState(ctx, tc.st); err != nil {
				t.Fatalf("%d seen, a PUT of %d like %q: %v", len(tc.st.LastSeen), len(tc.st.Sent), tc.st.Sent[0].IP, err)
			}
			got, err := s.PortalState(ctx)
			if err != nil || !slices.Equal(got.LastSeen, tc.st.LastSeen) || !slices.Equal(got.Sent, tc.st.Sent) ||
				!slices.Equal(got.SentAdded, tc.st.SentAdded) || got.SentOutcome != tc.st.SentOutcome {
				t.Fatalf("read back %d seen, %d sent, outcome %q, %v; want them as written", len(got.LastSeen), len(got.Sent), got.SentOutcome, err)
			}
			scan, err := db.Scan(ctx, &dynamodb.ScanInput{TableName: aws.String(tc.table)})
			if err != nil {
				t.Fatal(err)
			}
			for _, item := range scan.Items {
				if size := itemSize(item); size > maxItem*3/4 {
					t.Errorf("item %v takes %d bytes: more than three quarters of DynamoDB's %d", item["pk"], size, maxItem)
				}
			}
		})
	}
}

// A PUT in flight is recorded before it is sent, an empty list included
// (the last entry leaving the portal list): its Sent is empty, not nil,
// and nil means nothing in flight (onboard's settle and its "hadSent").
// Stored, an empty list is an empty string: it must read back empty with
// its outcome, in the state item and in the #sent item alike, as the
// in-memory store keeps it; read back nil, the next reconcile took it for
// nothing in flight and judged the portal against the list last seen, not
// the PUT that may have landed (found before the packing; it read so too).
func TestPortalStateEmptyPUTInFlightReadsBackInFlight(t *testing.T) {
	db := motoDB(t)
	ctx := context.Background()
	small := ipguard.PortalState{Applied: 1, Reconciled: true, LastSeen: []ipguard.Restriction{{IP: "192.0.2.1"}}}
	where := []string{"in the state item (one write)", "in the #sent item (a large state)"}
	for i, base := range []ipguard.PortalState{small, largestState(config.MaxPortalEntries)} {
		t.Run(where[i], func(t *testing.T) {
			s, st := tableStore(t, db, fmt.Sprint("emptysent-", i)), base
			st.Sent, st.SentAdded, st.SentOutcome, st.SentAt = []ipguard.Restriction{}, nil, ipguard.SentUnknown, time.Now().UTC()
			if err := s.PutPortalState(ctx, st); err != nil {
				t.Fatal(err)
			}
			got, err := s.PortalState(ctx)
			if err != nil || got.Sent == nil || len(got.Sent) != 0 || got.SentOutcome != ipguard.SentUnknown {
				t.Fatalf("read back sent %#v (nil %v), outcome %q, %v; want an empty PUT still in flight", got.Sent, got.Sent == nil, got.SentOutcome, err)
			}
			cs, err := s.ChangeRead(ctx, "nobody", time.Now())
			if err != nil || cs.State.Sent == nil {
				t.Fatalf("a change's read: sent %#v, %v; want an empty PUT still in flight", cs.State.Sent, err)
			}
			// Nothing in flight stays nothing.
			st.Sent, st.SentOutcome, st.SentAt = nil, "", time.Time{}
			if err := s.PutPortalState(ctx, st); err != nil {
				t.Fatal(err)
			}
			if got, err := s.PortalState(ctx); err != nil || got.Sent != nil {
				t.Fatalf("after the PUT settled: sent %#v, %v; want nil", got.Sent, err)
			}
		})
	}
}
