package dynamo_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"ipguard/internal/config"
	"ipguard/internal/dynamo"
	"ipguard/internal/ipguard"
	"ipguard/internal/onboard"
	"ipguard/internal/testbed/localaws"
)

// TestPortalStateHoldsTheLargestAllowedList: the portal state is one
// DynamoDB item (at most 400 KB). With PORTAL_MAX_ENTRIES at its largest
// accepted value and every entry a full-length IPv6 address the tool owns
// (the largest state there can be), a reconcile must still be able to store
// it; otherwise every reconcile fails past some size, blaming the table.
func TestPortalStateHoldsTheLargestAllowedList(t *testing.T) {
	db := motoDB(t)
	localaws.TableT(t, db, "statesize")
	s := dynamo.New(db, "statesize")

	n := config.MaxPortalEntries
	st := ipguard.PortalState{Reconciled: true, LastEnabled: true, Pending: strings.Repeat("p", 1000), LockoutNotice: strings.Repeat("l", 1000),
		DriftEpisode: strings.Repeat("d", 64), SentOutcome: ipguard.SentUnknown, SentAt: time.Now(), SentEnable: true,
		KeyUser: strings.Repeat("k", 36)}
	for i := range n {
		ip := fmt.Sprintf("2001:db8:ffff:ffff:ffff:ffff:%04x:%04x", i/65536, i%65536)
		st.LastSeen = append(st.LastSeen, ipguard.Restriction{IP: ip})
		st.Owned = append(st.Owned, ip)
		// A PUT in flight whose every entry is new (the largest "sent").
		sent := fmt.Sprintf("2001:db8:eeee:ffff:ffff:ffff:%04x:%04x", i/65536, i%65536)
		st.Sent = append(st.Sent, ipguard.Restriction{IP: sent})
		st.SentAdded = append(st.SentAdded, sent)
	}
	for range onboard.MaxLateSent {
		st.LateSent = append(st.LateSent, strings.Repeat("h", 32)+" "+strings.Repeat("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff,", onboard.MaxLateKept))
	}
	for range onboard.MaxOwnSaves {
		st.OwnSaves = append(st.OwnSaves, time.Now())
	}
	if err := s.PutPortalState(context.Background(), st); err != nil {
		t.Fatalf("state of %d owned IPv6 entries (PORTAL_MAX_ENTRIES at its maximum): %v", n, err)
	}
	got, err := s.PortalState(context.Background())
	if err != nil || len(got.LastSeen) != n || len(got.Owned) != n || len(got.Sent) != n || len(got.SentAdded) != n ||
		len(got.OwnSaves) != onboard.MaxOwnSaves {
		t.Fatalf("read back %d/%d/%d/%d entries, %d saves, %v", len(got.LastSeen), len(got.Owned), len(got.Sent), len(got.SentAdded),
			len(got.OwnSaves), err)
	}
}
