package onboardcontract

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"ipguard/internal/ipguard"
	"ipguard/internal/onboard"
)

// SnapshotContract checks that a read of the portal state (PortalState, and
// ChangeRead where the store has it) returns what one PutPortalState wrote,
// whole, while others write: never the list last seen of one write with the
// PUT in flight of another (#15: the DynamoDB store keeps them in two items,
// written in one transaction). Under writes without a pause (harder than
// the reconciler's, a few a pass between portal calls) a read may fail as
// unavailable (EUnavailable: written during each of its tries); once the
// writes stop it returns the last one.
//
// It runs with lists of one entry and of 3,000 (past PORTAL_MAX_ENTRIES,
// as hand edits may leave the portal): a store may keep a small state in
// fewer items than a large one.
func SnapshotContract(t *testing.T, newStore func(t *testing.T) onboard.Store) {
	for _, size := range []int{1, 3000} {
		t.Run(fmt.Sprintf("portal state: a read is one write's whole state while others write (lists of %d)", size), func(t *testing.T) {
			snapshot(t, newStore(t), size)
		})
	}
}

// snapshot is the contract case on s with lists of size entries.
func snapshot(t *testing.T, s onboard.Store, size int) {
	ctx := context.Background()
	// Write i says i in both halves of the state: the list last seen and
	// the PUT in flight, each of size entries.
	state := func(i int) ipguard.PortalState {
		l := []ipguard.Restriction{{IP: fmt.Sprintf("198.51.100.%d", i%250)}}
		for j := 1; j < size; j++ {
			l = append(l, ipguard.Restriction{IP: fmt.Sprintf("2001:db8:aaaa:bbbb:cccc:dddd:%04x:%04x", j/65536, j%65536)})
		}
		return ipguard.PortalState{Applied: int64(i), Reconciled: true, LastSeen: l, Sent: l, SentOutcome: ipguard.SentUnknown}
	}
	if err := s.PutPortalState(ctx, state(1)); err != nil {
		t.Fatal(err)
	}
	reads := []func() (ipguard.PortalState, error){func() (ipguard.PortalState, error) { return s.PortalState(ctx) }}
	if r, ok := s.(onboard.ChangeReader); ok {
		reads = append(reads, func() (ipguard.PortalState, error) {
			cs, err := r.ChangeRead(ctx, "u1", time.Now())
			return cs.State, err
		})
	}
	const writes, readsEach = 15, 15
	var wg sync.WaitGroup
	errs := make(chan error, writes+readsEach*len(reads))
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 2; i <= writes; i++ {
			if err := s.PutPortalState(ctx, state(i)); err != nil {
				errs <- err
				return
			}
		}
	}()
	for _, read := range reads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range readsEach {
				st, err := read()
				if ipguard.ErrorCode(err) == ipguard.EUnavailable {
					continue
				}
				if err != nil {
					errs <- err
					return
				}
				if len(st.LastSeen) != size || len(st.Sent) != size || st.LastSeen[0] != st.Sent[0] {
					errs <- fmt.Errorf("read the list last seen (%d entries, first %v) with the PUT in flight (%d, first %v): half of each of two writes",
						len(st.LastSeen), st.LastSeen[:min(1, len(st.LastSeen))], len(st.Sent), st.Sent[:min(1, len(st.Sent))])
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for _, read := range reads {
		if st, err := read(); err != nil || st.Applied != writes || len(st.Sent) != size || st.Sent[0] != state(writes).Sent[0] {
			t.Errorf("after the writes: applied %d, %d entries in flight, %v; want the last write's state", st.Applied, len(st.Sent), err)
		}
	}
}
