package audittest_test

import (
	"context"
	"slices"
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

// The source pages as the portal does: newest first, ties by id
// descending, from inclusive, skip/take; rows added later are served in
// their place.
func TestSourcePagesNewestFirst(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	ev := func(id int64, min int) ipguard.LoginEvent {
		return ipguard.LoginEvent{ID: id, Date: t0.Add(time.Duration(min) * time.Minute)}
	}
	s := audittest.NewSource(ev(1, 0), ev(3, 2), ev(2, 2), ev(4, 5))
	s.Add(ev(5, 1))
	for _, tc := range []struct {
		from         int
		start, count int
		want         []int64
	}{
		{from: 0, start: 0, count: 10, want: []int64{4, 3, 2, 5, 1}},
		{from: 0, start: 1, count: 2, want: []int64{3, 2}},
		{from: 2, start: 0, count: 10, want: []int64{4, 3, 2}},
		{from: 2, start: 3, count: 10, want: nil},
	} {
		got, err := s.LoginEvents(context.Background(), t0.Add(time.Duration(tc.from)*time.Minute), tc.start, tc.count)
		if err != nil {
			t.Fatal(err)
		}
		var ids []int64
		for _, e := range got {
			ids = append(ids, e.ID)
		}
		if !slices.Equal(ids, tc.want) {
			t.Errorf("from +%dm start %d count %d: ids %v, want %v", tc.from, tc.start, tc.count, ids, tc.want)
		}
	}
	if s.Calls() != 4 {
		t.Errorf("Calls() = %d, want 4", s.Calls())
	}
}
