// Package auditcontract holds StoreContract, the promises of audit.Store as a
// table that every implementation must pass: the in-memory audittest.Store
// (its own test) and the DynamoDB store (internal/dynamo, under moto).
package auditcontract

import (
	"bytes"
	"context"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"testing"
	"time"

	"ipguard/internal/audit"
	"ipguard/internal/ipguard"
)

// StoreContract checks the promises of audit.Store on stores made by
// newStore (each call a fresh, empty one), which also returns how to seed a
// user into it.
func StoreContract(t *testing.T, newStore func(t *testing.T) (audit.Store, func(ipguard.User))) {
	ctx := context.Background()
	t0 := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	// The failed-login cases write into the 10-minute bucket b0; u is the
	// unix second a minute into it.
	b0 := t0.Truncate(10 * time.Minute)
	u := b0.Add(time.Minute).Unix()

	t.Run("users: the stored ones among ids, and all of them", func(t *testing.T) {
		s, put := newStore(t)
		alice := ipguard.User{ID: "alice", Email: "alice@example.com", Entries: []string{"203.0.113.10"}, CreatedAt: t0, UpdatedAt: t0}
		bob := ipguard.User{ID: "bob", Email: "bob@example.com", Entries: []string{"198.51.100.0/30"}, CreatedAt: t0, UpdatedAt: t0}
		put(alice)
		put(bob)
		got, err := s.Users(ctx, []string{"alice", "nobody", "alice"})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got["alice"].Email != alice.Email || !slices.Equal(got["alice"].Entries, alice.Entries) {
			t.Errorf("Users = %+v; want alice alone", got)
		}
		if got, err := s.Users(ctx, nil); err != nil || len(got) != 0 {
			t.Errorf("Users(none) = %v, %v; want empty", got, err)
		}
		all, err := s.AllUsers(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, u := range all {
			ids = append(ids, u.ID)
		}
		slices.Sort(ids)
		if !slices.Equal(ids, []string{"alice", "bob"}) {
			t.Errorf("AllUsers ids = %v; want alice, bob", ids)
		}
	})

	t.Run("progress: zero first, then what was saved, cursor and all", func(t *testing.T) {
		s, _ := newStore(t)
		p, err := s.Progress(ctx)
		if err != nil || !p.Until.IsZero() || p.Cursor != nil {
			t.Fatalf("Progress before any save = %+v, %v; want zero", p, err)
		}
		want := ipguard.AuditProgress{Until: t0.Add(123456789), Cursor: &ipguard.AuditCursor{
			From: t0.Add(time.Second), To: t0.Add(15 * time.Minute), Below: t0.Add(10*time.Minute + 1), Guesses: `[{"eventId":9}]`,
			Attempts: 2, Piece: 125, ArchivedBelow: t0.Add(9*time.Minute + 7)}}
		if err := s.SetProgress(ctx, want); err != nil {
			t.Fatal(err)
		}
		want.Cursor.Below = t0 // the store holds a copy, not the caller's cursor
		got, err := s.Progress(ctx)
		if err != nil || !got.Until.Equal(t0.Add(123456789)) || got.Cursor == nil ||
			!got.Cursor.From.Equal(t0.Add(time.Second)) || !got.Cursor.To.Equal(t0.Add(15*time.Minute)) || !got.Cursor.Below.Equal(t0.Add(10*time.Minute+1)) ||
			got.Cursor.Guesses != `[{"eventId":9}]` || got.Cursor.Attempts != 2 || got.Cursor.Piece != 125 || !got.Cursor.ArchivedBelow.Equal(t0.Add(9*time.Minute+7)) {
			t.Fatalf("Progress = %+v (cursor %+v), %v", got, got.Cursor, err)
		}
		if err := s.SetProgress(ctx, ipguard.AuditProgress{Until: t0.Add(15 * time.Minute)}); err != nil {
			t.Fatal(err)
		}
		if got, err := s.Progress(ctx); err != nil || got.Cursor != nil || !got.Until.Equal(t0.Add(15*time.Minute)) {
			t.Errorf("Progress after a save without cursor = %+v, %v; want the cursor gone", got, err)
		}
	})

	t.Run("alerted records count until they expire", func(t *testing.T) {
		s, _ := newStore(t)
		if err := s.RecordAlerted(ctx, []int64{1, 2, 2}, t0, time.Hour); err != nil {
			t.Fatal(err)
		}
		if err := s.RecordAlerted(ctx, []int64{1}, t0, time.Hour); err != nil {
			t.Fatalf("recording again (idempotent): %v", err)
		}
		if err := s.RecordAlerted(ctx, []int64{3}, t0, 2*time.Hour); err != nil {
			t.Fatal(err)
		}
		if err := s.RecordAlerted(ctx, nil, t0, time.Hour); err != nil {
			t.Fatalf("recording nothing: %v", err)
		}
		steps := []struct {
			name string
			now  time.Time
			want []int64
		}{
			{"while they live", t0.Add(59 * time.Minute), []int64{1, 2, 3}},
			{"a second before the end", t0.Add(time.Hour - time.Second), []int64{1, 2, 3}},
			{"at the end", t0.Add(time.Hour), []int64{3}},
			{"after the longer keep", t0.Add(2 * time.Hour), nil},
		}
		for _, st := range steps {
			got, err := s.Alerted(ctx, []int64{1, 2, 3, 4, 1}, st.now)
			if err != nil {
				t.Fatalf("%s: %v", st.name, err)
			}
			var ids []int64
			for id, ok := range got {
				if ok {
					ids = append(ids, id)
				}
			}
			slices.Sort(ids)
			if !slices.Equal(ids, st.want) {
				t.Errorf("%s: alerted %v; want %v", st.name, ids, st.want)
			}
		}
		if got, err := s.Alerted(ctx, nil, t0); err != nil || len(got) != 0 {
			t.Errorf("Alerted(none) = %v, %v; want empty", got, err)
		}
	})

	t.Run("alerted spans: whole seconds, per address, until they expire", func(t *testing.T) {
		s, _ := newStore(t)
		a := ipguard.TimeSpan{From: t0.Add(500 * time.Millisecond), To: t0.Add(10*time.Second + 1)}
		b := ipguard.TimeSpan{From: t0.Add(time.Minute), To: t0.Add(2 * time.Minute)}
		if err := s.RecordAlertedSpan(ctx, "198.51.100.7", a, t0, time.Hour); err != nil {
			t.Fatal(err)
		}
		if err := s.RecordAlertedSpan(ctx, "198.51.100.7", b, t0.Add(time.Minute), 2*time.Hour); err != nil {
			t.Fatal(err)
		}
		got, err := s.AlertedSpans(ctx, []string{"198.51.100.7", "203.0.113.9", "198.51.100.7"}, t0.Add(30*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := got["203.0.113.9"]; ok || len(got) != 1 {
			t.Errorf("AlertedSpans = %v; want the one address with spans", got)
		}
		wantA := ipguard.TimeSpan{From: t0, To: t0.Add(11 * time.Second)}
		spans := got["198.51.100.7"]
		if len(spans) != 2 || !hasSpan(spans, wantA) || !hasSpan(spans, b) {
			t.Errorf("spans = %v; want %v (whole seconds, widened) and %v", spans, wantA, b)
		}
		got, err = s.AlertedSpans(ctx, []string{"198.51.100.7"}, t0.Add(time.Hour))
		if err != nil || len(got["198.51.100.7"]) != 1 || !hasSpan(got["198.51.100.7"], b) {
			t.Errorf("after the first expired: %v, %v; want only %v", got, err, b)
		}
		got, err = s.AlertedSpans(ctx, []string{"198.51.100.7"}, t0.Add(3*time.Hour))
		if err != nil || len(got["198.51.100.7"]) != 0 {
			t.Errorf("after both expired: %v, %v; want none", got, err)
		}
	})

	t.Run("failed logins: per address, read back within the asked span, the larger count kept", func(t *testing.T) {
		s, _ := newStore(t)
		ip := "198.51.100.7"
		rec := ipguard.AddressFailures{IP: ip, Count: 3, First: t0, Last: t0.Add(time.Minute)}
		if _, err := s.RecordFailures(ctx, []ipguard.AddressFailures{rec}, time.Hour); err != nil {
			t.Fatal(err)
		}
		got, err := s.Failures(ctx, []string{ip, "203.0.113.99"}, t0.Add(-5*time.Minute), t0.Add(5*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || len(got[ip]) != 1 || got[ip][0].Count != 3 || !got[ip][0].Last.Equal(rec.Last) {
			t.Errorf("Failures = %+v; want %s with 3 failures, the last at %s", got, ip, rec.Last)
		}
		rec.Count = 5 // the same failures counted again, and more
		if _, err := s.RecordFailures(ctx, []ipguard.AddressFailures{rec}, time.Hour); err != nil {
			t.Fatal(err)
		}
		if got, err := s.Failures(ctx, []string{ip}, t0.Add(-5*time.Minute), t0.Add(5*time.Minute)); err != nil || len(got[ip]) != 1 || got[ip][0].Count != 5 {
			t.Errorf("after a second record: %+v, %v; want 5 failures", got, err)
		}
		if got, err := s.Failures(ctx, []string{ip}, t0.Add(20*time.Minute), t0.Add(30*time.Minute)); err != nil || len(got) != 0 {
			t.Errorf("Failures outside the span = %+v, %v; want none", got, err)
		}
	})

	t.Run("failed logins: one record per 10-minute bucket, never merged across buckets", func(t *testing.T) {
		// GUESS_WINDOW (#21 §3) asks whether a failed login lies within the
		// window before a login: a record spanning two buckets could not say.
		s, _ := newStore(t)
		ip := "198.51.100.8"
		early := ipguard.AddressFailures{IP: ip, Count: 2, First: b0.Add(time.Minute), Last: b0.Add(2 * time.Minute)}
		late := ipguard.AddressFailures{IP: ip, Count: 4, First: b0.Add(31 * time.Minute), Last: b0.Add(33 * time.Minute)}
		if _, err := s.RecordFailures(ctx, []ipguard.AddressFailures{early, late}, time.Hour); err != nil {
			t.Fatal(err)
		}
		got, err := s.Failures(ctx, []string{ip}, b0, b0.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if len(got[ip]) != 2 || !reflect.DeepEqual(got[ip][0], early) || !reflect.DeepEqual(got[ip][1], late) {
			t.Errorf("Failures = %+v; want the two records as written, oldest first", got[ip])
		}
	})

	t.Run("failed logins: per account, the seconds of failures and successes united; a record of successes only is kept", func(t *testing.T) {
		// #21: a typo (an account's own failure resolved by its own
		// success) is told apart from guessing across runs.
		s, _ := newStore(t)
		ip := "198.51.100.9"
		run1 := ipguard.AddressFailures{IP: ip, Count: 2, First: b0.Add(time.Minute), Last: b0.Add(2 * time.Minute),
			Accounts: []ipguard.AccountFailures{{Account: "00000000000000aa", Failed: []int64{u, u + 60}}}}
		run2 := ipguard.AddressFailures{IP: ip, Count: 2, First: b0.Add(2 * time.Minute), Last: b0.Add(3 * time.Minute),
			Accounts: []ipguard.AccountFailures{{Account: "00000000000000aa", Failed: []int64{u + 60}, Succeeded: []int64{u + 120}},
				{Account: "00000000000000bb", Failed: []int64{u + 100}}}, MoreAccounts: 1}
		okOnly := ipguard.AddressFailures{IP: ip, First: b0.Add(12 * time.Minute), Last: b0.Add(12 * time.Minute),
			Accounts: []ipguard.AccountFailures{{Account: "00000000000000bb", Succeeded: []int64{u + 660}}}}
		got := recordRunsAndRead(t, s, ip, b0, run1, run2, okOnly)
		want := []ipguard.AddressFailures{
			{IP: ip, Count: 2, First: b0.Add(time.Minute), Last: b0.Add(3 * time.Minute), MoreAccounts: 1, Accounts: []ipguard.AccountFailures{
				{Account: "00000000000000aa", Failed: []int64{u, u + 60}, Succeeded: []int64{u + 120}},
				{Account: "00000000000000bb", Failed: []int64{u + 100}}}},
			okOnly,
		}
		for _, r := range got[ip] {
			sort.Slice(r.Accounts, func(i, j int) bool { return r.Accounts[i].Account < r.Accounts[j].Account })
			for i := range r.Accounts {
				if len(r.Accounts[i].Failed) == 0 {
					r.Accounts[i].Failed = nil
				}
				if len(r.Accounts[i].Succeeded) == 0 {
					r.Accounts[i].Succeeded = nil
				}
			}
		}
		if !reflect.DeepEqual(got[ip], want) {
			t.Errorf("Failures = %+v\nwant %+v", got[ip], want)
		}
	})

	t.Run("failed logins: the counted failed logins kept per second with how many, united across runs, beyond 64", func(t *testing.T) {
		// #21 §3: a burst threshold above 64 is counted across runs.
		s, _ := newStore(t)
		ip := "198.51.100.10"
		run1 := ipguard.AddressFailures{IP: ip, Count: 4, First: b0.Add(time.Minute), Last: b0.Add(2 * time.Minute),
			Counted: []ipguard.SecondCount{{At: u, N: 3}, {At: u + 5, N: 1}}}
		run2 := ipguard.AddressFailures{IP: ip, Count: 72, First: b0.Add(time.Minute), Last: b0.Add(2 * time.Minute),
			Counted: []ipguard.SecondCount{{At: u, N: 2}, {At: u + 7, N: 70}}}
		got := recordRunsAndRead(t, s, ip, b0, run1, run2)
		want := []ipguard.SecondCount{{At: u, N: 3}, {At: u + 5, N: 1}, {At: u + 7, N: 70}}
		if len(got[ip]) != 1 || !reflect.DeepEqual(got[ip][0].Counted, want) {
			t.Errorf("Failures = %+v; want one record counting %v", got[ip], want)
		}
	})

	t.Run("failed logins: accounts beyond 16 from two runs keep their resolution; only unresolved ones left out count", func(t *testing.T) {
		// #21 §3: an office NAT's resolved typos, written by two runs into
		// one bucket, are not counted as unresolved accounts.
		s, _ := newStore(t)
		ip := "198.51.100.11"
		typos := func(from, n int) []ipguard.AccountFailures {
			var out []ipguard.AccountFailures
			for i := from; i < from+n; i++ {
				out = append(out, ipguard.AccountFailures{Account: fmt.Sprintf("%016x", i+1), Failed: []int64{u}, Succeeded: []int64{u + 30}})
			}
			return out
		}
		run1 := ipguard.AddressFailures{IP: ip, Count: 16, First: b0.Add(time.Minute), Last: b0.Add(2 * time.Minute), Accounts: typos(0, 16)}
		run2 := ipguard.AddressFailures{IP: ip, Count: 10, First: b0.Add(time.Minute), Last: b0.Add(2 * time.Minute), Accounts: typos(16, 10)}
		got := recordRunsAndRead(t, s, ip, b0, run1, run2)
		if len(got[ip]) != 1 || got[ip][0].MoreAccounts != 0 || len(got[ip][0].Accounts) != 26 {
			t.Errorf("Failures = %+v; want one record with the 26 resolved accounts and none counted as more", got[ip])
		}
	})

	t.Run("account-hash key: at least 16 bytes, the same at every call", func(t *testing.T) {
		s, _ := newStore(t)
		k1, err := s.AccountHashKey(ctx)
		if err != nil || len(k1) < 16 {
			t.Fatalf("AccountHashKey = %d bytes, %v; want at least 16", len(k1), err)
		}
		k2, err := s.AccountHashKey(ctx)
		if err != nil || !bytes.Equal(k1, k2) {
			t.Errorf("a second AccountHashKey differs from the first (%v)", err)
		}
	})

	t.Run("allowlist history: none for users without one", func(t *testing.T) {
		s, _ := newStore(t)
		got, err := s.AllowlistHistory(ctx, []string{"alice", "", "alice"})
		if err != nil || len(got) != 0 {
			t.Errorf("AllowlistHistory = %+v, %v; want none", got, err)
		}
	})
}

func hasSpan(spans []ipguard.TimeSpan, want ipguard.TimeSpan) bool {
	for _, s := range spans {
		if s.From.Equal(want.From) && s.To.Equal(want.To) {
			return true
		}
	}
	return false
}

// recordRunsAndRead records each run's failures of ip as its own write
// (as separate audit runs do) and reads back the hour from b0.
func recordRunsAndRead(t *testing.T, s audit.Store, ip string, b0 time.Time, runs ...ipguard.AddressFailures) map[string][]ipguard.AddressFailures {
	t.Helper()
	ctx := context.Background()
	for _, r := range runs {
		if _, err := s.RecordFailures(ctx, []ipguard.AddressFailures{r}, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Failures(ctx, []string{ip}, b0, b0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return got
}
