package audit

import (
	"context"
	"fmt"
	"testing"
	"time"

	"ipguard/internal/ipguard"
)

// slowPeople answers every lookup only after delay (a portal whose people
// endpoint times out: the client gives up after its timeout and retries),
// then fails.
type slowPeople struct {
	delay time.Duration
	calls int
}

func (p *slowPeople) UserType(ctx context.Context, _ string) (string, error) {
	p.calls++
	select {
	case <-time.After(p.delay):
		return "", ipguard.Errorf(ipguard.EUnavailable, "docspace: get people: no answer within the timeout")
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// Naming guests in the digest is a courtesy: a people endpoint that times
// out must not hold back the piece's alerts. The lookups (at most
// MaxUserTypeLookups, each as long as the client's timeout and retries)
// get a bounded share of the run's time; past it the rest are listed
// without a type. Before, 50 slow lookups took the run's whole time before
// its messages, so the high finding of the same piece was never sent, run
// after run (attack review of the audit path).
func TestSlowUserTypeLookupsDoNotHoldBackThePiecesAlerts(t *testing.T) {
	var evs []ipguard.LoginEvent
	for i := int64(1); i <= MaxUserTypeLookups; i++ {
		evs = append(evs, at(i, fmt.Sprintf("person-%03d", i), 1010, "198.51.100.1", time.Duration(i)*time.Second))
	}
	v := at(1000, "alice", 1010, "198.51.100.1", 2*time.Minute) // outside alice's allowlist: high
	evs = append(evs, v)
	s, _, _, pub := newAudit(evs...)
	s.Settings.Policy.UnknownUsers = UnknownDigest
	people := &slowPeople{delay: 200 * time.Millisecond}
	s.People = people
	s.Settings.DeadlineMargin = 300 * time.Millisecond
	res := runWithin(t, s, 3*time.Second)
	got := alertedIDs(t, pub.sent)
	if got[v.ID] != 1 {
		t.Errorf("the violation was alerted %d times; want once in this run (result: complete %v, %d lookups, warnings %q)", got[v.ID], res.Complete, people.calls, res.Warnings)
	}
}
