package audittest_test

import (
	"context"
	"testing"
	"time"

	"ipguard/internal/audit/audittest"
	"ipguard/internal/ipguard"
)

func TestFakeKeepsTheContract(t *testing.T) {
	audittest.StoreContract(t, func(*testing.T) (audittest.AuditStore, func(ipguard.User)) {
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
