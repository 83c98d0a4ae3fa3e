package dynamo_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"ipguard/internal/behaviour"
	"ipguard/internal/dynamo"
)

// The behaviour detector's stores, baselines and episodes (the Store is
// both: dynamo_test.go).

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

// Episodes are one item per user under episode#, expiring EPISODE_HOURS
// after the newest episode's last miss; read in batches of 100; an item
// past its expiry (not yet deleted by TTL) is absent.
func TestEpisodes(t *testing.T) {
	ctx := context.Background()
	s, rec, db := recordedStore(t, "episodes")
	now := time.Now().UTC().Truncate(time.Second)
	var es []behaviour.Episodes
	var ids []string
	for i := 0; i < 110; i++ {
		last := now
		if i == 0 {
			last = now.Add(-48 * time.Hour) // closed a day ago
		}
		es = append(es, behaviour.Episodes{UserID: fmt.Sprintf("u%03d", i), Open: []behaviour.OpenEpisode{{Network: "198.51.100.0/24", Country: "ES",
			First: last.Add(-time.Hour), Last: last, Count: 3, Told: "high"}}})
		ids = append(ids, es[i].UserID)
	}
	if err := s.SaveEpisodes(ctx, es, 24); err != nil {
		t.Fatal(err)
	}
	out, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String("episodes"), Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: dynamo.EpisodePrefix + "u007"}}})
	if err != nil {
		t.Fatal(err)
	}
	exp, _ := out.Item["expiresAt"].(*types.AttributeValueMemberN)
	if exp == nil || exp.Value != strconv.FormatInt(now.Add(24*time.Hour).Unix(), 10) {
		t.Errorf("expiresAt %+v, want %d", out.Item["expiresAt"], now.Add(24*time.Hour).Unix())
	}
	rec.batchSizes = nil
	got, err := s.Episodes(ctx, append(ids, "nobody"))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 109 || len(rec.batchSizes) != 2 {
		t.Fatalf("got %d users' episodes in batches %v; want 109 (u000 expired) in 2", len(got), rec.batchSizes)
	}
	if e := got["u042"]; len(e.Open) != 1 || e.Open[0].Count != 3 || e.UserID != "u042" {
		t.Errorf("round trip %+v", e)
	}
}
