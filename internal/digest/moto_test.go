package digest_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"ipguard/internal/audit"
	"ipguard/internal/audit/audittest"
	"ipguard/internal/digest"
	"ipguard/internal/dynamo"
	"ipguard/internal/testbed/localaws"
)

// The digest over the DynamoDB store: gathered across two publishes, sent
// once, and the item says so.
func TestDigestInDynamoDB(t *testing.T) {
	ctx := context.Background()
	db := localaws.MotoTableT(t, "t")
	now := time.Date(2026, 12, 4, 20, 0, 0, 0, time.UTC)
	out := &audittest.Topic{}
	store := dynamo.New(db, "t")
	p := &digest.Publisher{Next: out, Store: store, Severities: map[string]bool{"low": true}, Hour: 8, Portal: "p", Now: func() time.Time { return now }}
	for i := int64(1); i <= 2; i++ {
		if _, err := p.Publish(ctx, lowAlert(t, audit.Finding{EventID: i, Kind: "new_device", Severity: "low", Email: "ann@example.com", IP: "203.0.113.9"})); err != nil {
			t.Fatal(err)
		}
	}
	now = now.Add(12 * time.Hour) // 08:00 the next day
	for i := 0; i < 2; i++ {
		if _, err := p.SendDue(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if len(out.Sent) != 1 || !strings.Contains(out.Sent[0].Email, "new_device: 2") {
		t.Fatalf("sent %d digests: %+v", len(out.Sent), out.Sent)
	}
	var d digest.Digest
	if _, ok, err := store.LoadRevised(ctx, digest.Prefix+"2026-12-05", &d); err != nil || !ok || d.Sent == "" || d.Total != 2 {
		t.Errorf("item = %+v, %v, %v", d, ok, err)
	}
}
