package dynamo_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"ipguard/internal/dynamo"
	"ipguard/internal/ipguard"
)

// expressionRecorder is a dynamo.API that keeps the update expressions of
// the UpdateItem calls made through it.
type expressionRecorder struct {
	dynamo.API
	mu      sync.Mutex
	updates []string
}

func (r *expressionRecorder) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, o ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	r.mu.Lock()
	r.updates = append(r.updates, aws.ToString(in.UpdateExpression))
	r.mu.Unlock()
	return r.API.UpdateItem(ctx, in, o...)
}

// actions counts the actions of an update expression ("SET a = :a, b = :b
// REMOVE c" has three).
func actions(expr string) int {
	n := 0
	for _, clause := range []string{"SET ", "REMOVE ", "ADD ", "DELETE "} {
		i := strings.Index(expr, clause)
		if i < 0 {
			continue
		}
		rest := expr[i+len(clause):]
		for _, next := range []string{" SET ", " REMOVE ", " ADD ", " DELETE "} {
			if j := strings.Index(rest, next); j >= 0 {
				rest = rest[:j]
			}
		}
		n += strings.Count(rest, ",") + 1
	}
	return n
}

// fullState is a state with every field set.
func fullState() ipguard.PortalState {
	at := time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC)
	return ipguard.PortalState{
		Applied: 3, AddsApplied: 2, Owned: []string{"192.0.2.1", "a\nb%"},
		LastSeen:    []ipguard.Restriction{{IP: "192.0.2.1"}, {IP: "198.51.100.0/24", ForAdmin: true}},
		LastEnabled: true, Reconciled: true, Pending: "the portal <did not> answer & \"more\"", PendingCode: ipguard.EUnavailable, PendingVersion: 3,
		LastReconcile: at, DriftEpisode: "d1", LockoutNotice: "l1", TrailNotice: "t1", RecordNotice: "r1", HandOff: true,
		Sent: []ipguard.Restriction{{IP: "192.0.2.1"}, {IP: "203.0.113.5"}}, SentAdded: []string{"203.0.113.5"}, SentEnable: true,
		SentOutcome: ipguard.SentUnknown, SentAt: at.Add(time.Second), LateSent: []string{"h1 192.0.2.9"}, AlertsDue: true,
		OwnSaves: []time.Time{at, at.Add(time.Minute)}, KeyUser: "u-key", LastPass: 420 * time.Millisecond,
		UnansweredSaves: []ipguard.SaveWindow{{From: at, Until: at.Add(2 * time.Second)}}, RecheckDue: at.Add(time.Hour),
	}
}

// sameStoredState compares what a write of want stores with got (the
// counters that only bumps move aside).
func sameStoredState(got, want ipguard.PortalState) bool {
	got.Version, got.Adds, got.DueMarks, want.Version, want.Adds, want.DueMarks = 0, 0, 0, 0, 0, 0
	got.Pass, got.Base, want.Pass, want.Base = "", "", "", ""
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	return string(g) == string(w)
}

// The state item's own fields are two documents (#15 §6): a state write is
// a handful of actions, whatever the state holds, where it was one a field
// (31), and a store's cost of a write grows with its actions. Every field
// reads back as written, the poll's read included.
func TestPortalStateWriteIsPacked(t *testing.T) {
	db := motoDB(t)
	tableStore(t, db, "statepacked")
	rec := &expressionRecorder{API: db}
	s := dynamo.New(rec, "statepacked")
	ctx := context.Background()
	want := fullState()
	if _, err := s.PortalState(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.PutPortalState(ctx, want); err != nil {
		t.Fatal(err)
	}
	if len(rec.updates) != 1 || actions(rec.updates[0]) > 5 {
		t.Errorf("state write: %q (%d actions); want one UpdateItem of at most 5 actions", rec.updates, actions(rec.updates[0]))
	}
	got, err := s.PortalState(ctx)
	if err != nil || !sameStoredState(got, want) {
		t.Fatalf("read back:\n%+v, %v\nwant\n%+v", got, err, want)
	}
	raw, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String("statepacked"),
		Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "state#portal-allowlist"}}})
	if err != nil {
		t.Fatal(err)
	}
	for name := range raw.Item {
		if !slices.Contains([]string{"pk", "applied", "addsApplied", "progress", "rest", "writeId"}, name) {
			t.Errorf("state item attribute %q: want only the counters, the documents and the write's id", name)
		}
	}
	peek, free, err := s.PortalStateAndLease(ctx, "portal-allowlist", time.Now())
	if err != nil || !free || peek.Applied != 3 || peek.Pending != want.Pending || peek.PendingVersion != 3 || !peek.Reconciled ||
		!peek.LastEnabled || len(peek.LastSeen) != 2 || !peek.LastSeen[1].ForAdmin || peek.LastPass != want.LastPass {
		t.Errorf("poll = %+v, %v, %v; want the progress as written", peek, free, err)
	}
}

// A state written by a version before the packing (one attribute a field,
// pending in every write) is read from its attributes, by a full read and
// by the poll; the next write moves it into the documents and removes the
// attributes, whether the writing process read them first or not (a fresh
// container: its write's condition finds them). A version before that
// writes after the documents (a rollback) is read from its attributes
// again.
func TestPortalStateBeforeThePackingIsMovedByTheNextWrite(t *testing.T) {
	db := motoDB(t)
	ctx := context.Background()
	legacy := map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: "state#portal-allowlist"}, "version": &types.AttributeValueMemberN{Value: "4"},
		"applied": &types.AttributeValueMemberN{Value: "4"}, "seen": &types.AttributeValueMemberS{Value: "-192.0.2.1\na198.51.100.7\n"},
		"owns": &types.AttributeValueMemberS{Value: "192.0.2.1\n"}, "pending": &types.AttributeValueMemberS{Value: ""},
		"reconciled": &types.AttributeValueMemberBOOL{Value: true}, "lastEnabled": &types.AttributeValueMemberBOOL{Value: true},
		"driftEpisode": &types.AttributeValueMemberS{Value: "ep1"}, "passMs": &types.AttributeValueMemberN{Value: "300"},
		"writeId": &types.AttributeValueMemberS{Value: "w-old"},
	}
	attrsLeft := func(t *testing.T, table string) []string {
		t.Helper()
		raw, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table),
			Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "state#portal-allowlist"}}})
		if err != nil {
			t.Fatal(err)
		}
		var left []string
		for name := range raw.Item {
			if !slices.Contains([]string{"pk", "version", "applied", "addsApplied", "progress", "rest", "writeId"}, name) {
				left = append(left, name)
			}
		}
		return left
	}
	for _, readFirst := range []bool{true, false} {
		name := map[bool]string{true: "read first", false: "a fresh process"}[readFirst]
		t.Run(name, func(t *testing.T) {
			table := map[bool]string{true: "statebefore-read", false: "statebefore-fresh"}[readFirst]
			tableStore(t, db, table)
			if _, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: legacy}); err != nil {
				t.Fatal(err)
			}
			reader := dynamo.New(db, table)
			st, err := reader.PortalState(ctx)
			if err != nil || st.Applied != 4 || len(st.LastSeen) != 2 || !slices.Equal(st.Owned, []string{"192.0.2.1"}) || st.DriftEpisode != "ep1" || !st.Reconciled {
				t.Fatalf("legacy state = %+v, %v", st, err)
			}
			if peek, _, err := reader.PortalStateAndLease(ctx, "portal-allowlist", time.Now()); err != nil || len(peek.LastSeen) != 2 || !peek.Reconciled || peek.LastPass != 300*time.Millisecond {
				t.Fatalf("poll of the legacy state = %+v, %v; want its attributes", peek, err)
			}
			writer := reader
			if !readFirst {
				writer = dynamo.New(db, table)
			}
			next := st
			next.Owned, next.DriftEpisode = []string{"192.0.2.1", "192.0.2.2"}, ""
			if err := writer.PutPortalState(ctx, next); err != nil {
				t.Fatal(err)
			}
			if left := attrsLeft(t, table); len(left) > 0 {
				t.Errorf("after the next write, attributes of the version before are left: %q", left)
			}
			if got, err := reader.PortalState(ctx); err != nil || !sameStoredState(got, next) || got.Version != 4 {
				t.Errorf("after the next write: %+v, %v; want %+v", got, err, next)
			}
			// A rollback: the version before writes again, one attribute a field.
			if _, err := db.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(table),
				Key:              map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "state#portal-allowlist"}},
				UpdateExpression: aws.String("SET applied = :a, seen = :seen, owns = :owns, pending = :p, reconciled = :r, writeId = :w"),
				ExpressionAttributeValues: map[string]types.AttributeValue{":a": &types.AttributeValueMemberN{Value: "5"},
					":seen": &types.AttributeValueMemberS{Value: "-192.0.2.3\n"}, ":owns": &types.AttributeValueMemberS{Value: "192.0.2.3\n"},
					":p": &types.AttributeValueMemberS{Value: "older"}, ":r": &types.AttributeValueMemberBOOL{Value: true},
					":w": &types.AttributeValueMemberS{Value: "w-older"}},
			}); err != nil {
				t.Fatal(err)
			}
			got, err := reader.PortalState(ctx)
			if err != nil || got.Applied != 5 || !slices.Equal(got.Owned, []string{"192.0.2.3"}) || got.Pending != "older" {
				t.Errorf("after the version before wrote again: %+v, %v; want its attributes (applied 5, owns 192.0.2.3, pending older)", got, err)
			}
			if peek, _, err := dynamo.New(db, table).PortalStateAndLease(ctx, "portal-allowlist", time.Now()); err != nil || peek.Pending != "older" || len(peek.LastSeen) != 1 {
				t.Errorf("poll after the version before wrote again: %+v, %v; want its attributes", peek, err)
			}
		})
	}
}
