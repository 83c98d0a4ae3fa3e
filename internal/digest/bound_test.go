package digest_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"ipguard/internal/audit"
	"ipguard/internal/digest"
)

// A day's digest is one DynamoDB item (at most 400 KB) whatever the portal's
// names: every text it keeps is cut to a bound when it is added. Before,
// the users it counts, the familiar misses, the trips and the episodes
// kept the portal's login names and countries whole: 300 people whose
// login names were 2 KB each made an item DynamoDB refuses, so adding to
// the digest failed, and with it every audit run until the digest hour
// (the failure is a failed publish) (attack review of the audit path).
func TestADigestItemStaysWithinOneItemWhateverThePortalNames(t *testing.T) {
	long := strings.Repeat("é", 1500) // 3 KB
	var d digest.Digest
	for i := range 2000 {
		id := fmt.Sprintf("aaaaaaaa-0000-4000-8000-%012d", i)
		kinds := []audit.Finding{
			{EventID: int64(i) + 1, Kind: audit.KindUnknownUser, Severity: audit.SeverityMedium, DigestOnly: true, UserID: id, Login: long + fmt.Sprint(i), User: long, IP: fmt.Sprintf("198.51.%d.%d", i/250, i%250), Date: "2026-12-04T09:00:00Z"},
			{EventID: int64(i) + 100000, Kind: audit.KindIPNotAllowed, Severity: audit.SeverityLow, Digest: true, UserID: id, Login: long + fmt.Sprint(i), IP: "203.0.113.9", Country: long, Date: "2026-12-04T09:00:00Z",
				Episode:  &audit.Episode{Key: id + "|" + long, Country: long, First: "2026-12-04T09:00:00Z", Count: 2, Repeat: true, Hours: 24},
				Familiar: &audit.Familiar{Network: "203.0.113.0/24", Place: long, Device: long, Logins: 3},
				Trip:     &audit.ProbableTrip{Place: long, Device: long, Since: long}},
		}
		for _, f := range kinds {
			d.Add(f)
		}
	}
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > 350_000 {
		t.Errorf("the digest item is %d bytes; want it well within DynamoDB's 400 KB", len(b))
	}
}
