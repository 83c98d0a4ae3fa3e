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
func SnapshotContract(t *testing.T, newStore func(t *testing.T) onboard.Store) {
	t.Run("portal state: a read is one write's whole state while others write", func(t *testing.T) {
		ctx := context.Background()
		s := newStore(t)
		// Write i says i in both halves of the state: the list last seen and
		// the PUT in flight.
		state := func(i int) ipguard.PortalState {
			l := []ipguard.Restriction{{IP: fmt.Sprintf("198.51.100.%d", i%250)}}
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
		const writes, readsEach = 25, 25
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
					if len(st.LastSeen) != 1 || len(st.Sent) != 1 || st.LastSeen[0] != st.Sent[0] {
						errs <- fmt.Errorf("read the list last seen %v with the PUT in flight %v: half of each of two writes", st.LastSeen, st.Sent)
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
			if st, err := read(); err != nil || st.Applied != writes || len(st.Sent) != 1 || st.Sent[0] != state(writes).Sent[0] {
				t.Errorf("after the writes: %+v, %v; want the last write's state", st, err)
			}
		}
	})
}
