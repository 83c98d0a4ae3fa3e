package dynamo_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"ipguard/internal/ipguard"
)

// An entry's declared place (#21 §4) is stored in the entry's details
// ("place" S); a user item written before places existed still reads, its
// entries without place (the audit then uses the portal's GeoIP).
func TestEntryPlaceIsStoredAndOldItemsStillRead(t *testing.T) {
	db := motoDB(t)
	s := tableStore(t, db, "places")
	ctx := context.Background()

	u := ipguard.User{ID: "u1", Email: "a@example.com", Entries: []string{"203.0.113.0/24", "192.0.2.9"}, Rev: 1,
		Details: map[string]ipguard.EntryDetail{"203.0.113.0/24": {Note: "office", Place: "Berlin, DE"}, "192.0.2.9": {Place: "anywhere"}}}
	if ok, err := s.PutUserIf(ctx, u, 0); !ok || err != nil {
		t.Fatalf("put: %v, %v", ok, err)
	}
	raw, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String("places"), Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "user#u1"}}})
	if err != nil {
		t.Fatal(err)
	}
	details := raw.Item["entryDetails"].(*types.AttributeValueMemberM).Value
	if p := details["203.0.113.0/24"].(*types.AttributeValueMemberM).Value["place"].(*types.AttributeValueMemberS).Value; p != "Berlin, DE" {
		t.Errorf("stored place %q", p)
	}
	if _, ok := details["192.0.2.9"].(*types.AttributeValueMemberM).Value["note"]; ok {
		t.Error("an entry with a place only stored a note")
	}

	// An item as the code before places wrote it.
	old := map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: "user#u2"}, "id": &types.AttributeValueMemberS{Value: "u2"},
		"email":      &types.AttributeValueMemberS{Value: "b@example.com"},
		"allowedIps": &types.AttributeValueMemberL{Value: []types.AttributeValue{&types.AttributeValueMemberS{Value: "198.51.100.7"}}},
		"entryDetails": &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{
			"198.51.100.7": &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"note": &types.AttributeValueMemberS{Value: "home"}}}}},
		"rev": &types.AttributeValueMemberN{Value: "3"}, "createdAt": &types.AttributeValueMemberS{Value: "2026-11-01T00:00:00Z"},
		"updatedAt": &types.AttributeValueMemberS{Value: "2026-11-01T00:00:00Z"},
	}
	if _, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String("places"), Item: old}); err != nil {
		t.Fatal(err)
	}
	got, ok, err := s.GetUser(ctx, "u2")
	if err != nil || !ok || got.Details["198.51.100.7"] != (ipguard.EntryDetail{Note: "home"}) || got.Unreadable != "" {
		t.Errorf("old item: %+v, %v, %v", got, ok, err)
	}
	got, _, _ = s.GetUser(ctx, "u1")
	if got.Details["203.0.113.0/24"].Place != "Berlin, DE" || got.Details["192.0.2.9"].Place != "anywhere" {
		t.Errorf("read back %+v", got.Details)
	}
}
