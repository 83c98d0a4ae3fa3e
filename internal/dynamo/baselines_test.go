package dynamo_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"ipguard/internal/behaviour"
	"ipguard/internal/dynamo"
)

var _ behaviour.Store = (*dynamo.Store)(nil)

// Baselines are read in batches of 100 and written back whole; an id with
// no item, or with an item that no longer decodes, is absent.
func TestBaselines(t *testing.T) {
	ctx := context.Background()
	s, rec, db := recordedStore(t, "baselines")
	t0 := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	var bs []behaviour.Baseline
	var ids []string
	for i := 0; i < 130; i++ {
		b := behaviour.Baseline{UserID: fmt.Sprintf("u%03d", i)}
		b.Learn(behaviour.Login{EventID: int64(i + 1), At: t0, IP: "198.51.100.7", Whole: true, Country: "Germany", City: "Berlin", Browser: "Firefox 126", Platform: "Linux"})
		bs = append(bs, b)
		ids = append(ids, b.UserID)
	}
	// Written through a store without the recorder (writes run 4 at once).
	if err := dynamo.New(db, "baselines").SaveBaselines(ctx, bs); err != nil {
		t.Fatal(err)
	}
	if _, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String("baselines"), Item: map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: dynamo.BaselinePrefix + "broken"}, "data": &types.AttributeValueMemberS{Value: "{not json"}}}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Baselines(ctx, append(ids, "nobody", "broken", "u001"))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 130 || len(rec.batchSizes) != 2 || rec.batchSizes[0] != 100 || rec.batchSizes[1] != 32 {
		t.Fatalf("got %d baselines in batches %v; want 130 in 100 + 32", len(got), rec.batchSizes)
	}
	b := got["u007"]
	if b.Logins != 1 || !b.HasCountry("DE") || b.Last == nil || b.Last.EventID != 8 || !b.Newest.Equal(t0) {
		t.Errorf("round trip: %+v", b)
	}
}
