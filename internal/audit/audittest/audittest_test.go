package audittest_test

import (
	"context"
	"testing"
	"time"

	"ipguard/internal/audit"
	"ipguard/internal/audit/audittest"
	"ipguard/internal/audit/audittest/auditcontract"
	"ipguard/internal/ipguard"
	"ipguard/internal/lease"
)

// The fake is an audit.Store (and the lease backend an audit run holds)
// that keeps the same promises as the DynamoDB store.
func TestFakeKeepsTheContract(t *testing.T) {
	var _ lease.Backend = audittest.NewStore()
	auditcontract.StoreContract(t, func(*testing.T) (audit.Store, func(ipguard.User)) {
		s := audittest.NewStore()
		return s, s.PutUser
	})
}

// A failing write is classified, as the DynamoDB store's are, so callers
// see the errorType production would give.
func TestFailedWritesAreUnavailable(t *testing.T) {
	s := audittest.NewStore()
	s.FailWrites = true
	ctx, at := context.Background(), time.Now()
	for name, err := range map[string]error{
		"RecordAlerted":     s.RecordAlerted(ctx, []int64{1}, at, time.Hour),
		"RecordAlertedSpan": s.RecordAlertedSpan(ctx, "192.0.2.1", ipguard.TimeSpan{From: at, To: at}, at, time.Hour),
	} {
		if ipguard.ErrorCode(err) != ipguard.EUnavailable {
			t.Errorf("%s with FailWrites: %v (code %s); want EUnavailable", name, err, ipguard.ErrorCode(err))
		}
	}
	if s.Writes != 0 {
		t.Errorf("%d writes counted; a failed write writes nothing", s.Writes)
	}
}
