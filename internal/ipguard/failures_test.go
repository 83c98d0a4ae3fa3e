package ipguard

import (
	"fmt"
	"testing"
)

// #21 §3: merging two records of one address and bucket (two runs, or a
// re-read) beyond MaxRecordAccounts keeps the unresolved accounts and
// counts in MoreAccounts only the unresolved ones left out: a resolved
// typo raises nothing, kept or not, and an unresolved account is never
// lost. Before, every account of the second record past the bound counted
// as tried and unresolved.
func TestMergedRecordsCountOnlyUnresolvedAccountsLeftOut(t *testing.T) {
	accts := func(from, n int, resolved bool) []AccountFailures {
		var out []AccountFailures
		for i := from; i < from+n; i++ {
			x := AccountFailures{Account: fmt.Sprintf("%016x", i+1), Failed: []int64{100}}
			if resolved {
				x.Succeeded = []int64{130}
			}
			out = append(out, x)
		}
		return out
	}
	resolvedIn := func(from, n int, ok []int64) []AccountFailures { // failed in one record, its success in the other
		var out []AccountFailures
		for i := from; i < from+n; i++ {
			out = append(out, AccountFailures{Account: fmt.Sprintf("%016x", i+1), Failed: []int64{100}, Succeeded: ok})
		}
		return out
	}
	tests := []struct {
		name       string
		a, b       []AccountFailures
		wantMore   int
		wantKept   int
		unresolved int // accounts kept that are unresolved
	}{
		{"a full record of typos and 10 more typos: none more", accts(0, MaxRecordAccounts, true), accts(1000, 10, true), 0, MaxRecordAccounts, 0},
		{"a full record of typos and 3 guesses: the guesses kept, none more", accts(0, MaxRecordAccounts, true), accts(1000, 3, false), 0, MaxRecordAccounts, 3},
		{"guesses beyond the bound: the ones left out count", accts(0, MaxRecordAccounts, false), accts(1000, 7, false), 7, MaxRecordAccounts, MaxRecordAccounts},
		{"a failure in one record, its success in the other: resolved", resolvedIn(0, MaxRecordAccounts, nil), resolvedIn(0, MaxRecordAccounts, []int64{130}), 0, MaxRecordAccounts, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := MergeAddressFailures(AddressFailures{IP: "198.51.100.1", Count: 1, Accounts: tt.a}, AddressFailures{IP: "198.51.100.1", Count: 1, Accounts: tt.b})
			un := 0
			for _, x := range got.Accounts {
				if x.Unresolved() {
					un++
				}
			}
			if got.MoreAccounts != tt.wantMore || len(got.Accounts) != tt.wantKept || un != tt.unresolved {
				t.Errorf("merged: %d accounts kept (%d unresolved), %d more; want %d kept (%d unresolved), %d more",
					len(got.Accounts), un, got.MoreAccounts, tt.wantKept, tt.unresolved, tt.wantMore)
			}
		})
	}
}

// #21 §3: counted failed logins are kept per second with how many, and
// two reads of the same logins count once (the larger count per second).
func TestCountedSecondsUniteAsTwoReadsOfTheSameLogins(t *testing.T) {
	var a, b []SecondCount
	for i := 0; i < 70; i++ {
		a = AddCounted(a, 5, 1)
	}
	a = AddCounted(a, 3, 1)
	b = AddCounted(AddCounted(b, 5, 2), 9, 1)
	got := UnionCounted(a, b)
	want := []SecondCount{{3, 1}, {5, 70}, {9, 1}}
	if fmt.Sprint(got) != fmt.Sprint(want) || CountedTotal(got) != 72 {
		t.Errorf("UnionCounted = %v (%d); want %v (72)", got, CountedTotal(got), want)
	}
}
