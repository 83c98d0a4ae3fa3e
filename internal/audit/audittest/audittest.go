// Package audittest holds the one in-memory audit store every test uses
// (also the lease backend an audit run holds), and the other fakes of an
// audit run: the portal's login history and people (Source, People), the
// alert topic and the revised-item store behind the publisher chain (Topic,
// Revised). Package auditcontract below it holds the table of promises
// both the store fake and the DynamoDB store must pass, so that no test
// passes against store behaviour production never has (alerted records
// that never expire, errors nobody can classify).
//
// It does not import package audit, so that audit's own (in-package) tests
// can use it.
package audittest

import (
	"context"
	"maps"
	"slices"
	"sort"
	"sync"
	"time"

	"ipguard/internal/ipguard"
	"ipguard/internal/lease/leasetest"
)

// maxSpans is how many spans one address keeps (the newest-expiring), as in
// the DynamoDB store.
const maxSpans = 500

// Store is the in-memory audit store, and the lease backend an audit run
// holds (the embedded leasetest.Backend), as the DynamoDB store is both.
// Expiry is kept as DynamoDB keeps it: in whole epoch seconds, compared with
// now by the reader. Make it with NewStore; it is safe for concurrent use.
// The exported fields may be read and set between calls, not during them.
type Store struct {
	leasetest.Backend

	mu sync.Mutex
	// UserItems are the stored users by id.
	UserItems map[string]ipguard.User
	// Saved is the saved progress; Saves counts SetProgress calls.
	Saved ipguard.AuditProgress
	Saves int
	// AlertedUntil holds, per alerted event id, when its record expires.
	AlertedUntil map[int64]time.Time
	spans        map[string][]storedSpan
	// Writes counts RecordAlerted and RecordAlertedSpan calls.
	Writes int
	// FailWrites makes RecordAlerted and RecordAlertedSpan fail with an
	// EUnavailable error, as an unavailable table would.
	FailWrites bool
	// FailureItems are the remembered failed logins per address, one
	// record per 10-minute bucket of their last date, as DynamoDB keeps
	// them (RecordFailures merges into a bucket's record: counts kept at
	// the larger, the span widened).
	FailureItems map[string][]ipguard.AddressFailures
	// FailRecordFailures makes RecordFailures fail with an EUnavailable
	// error, as an unavailable table would.
	FailRecordFailures bool
	// ForgetFailures is what RecordFailures reports as forgotten (addresses
	// that gave way, as under a flood in the DynamoDB store); the fake
	// itself keeps every address.
	ForgetFailures int
	// HistoryItems are the users' allowlist histories (written by
	// onboarding; a test's seed here).
	HistoryItems map[string]ipguard.AllowlistHistory
	// AccountKey is the account-hash key (AccountHashKey).
	AccountKey []byte
}

type storedSpan struct {
	ipguard.TimeSpan
	expires int64 // epoch seconds
}

// NewStore returns an empty store holding users.
func NewStore(users ...ipguard.User) *Store {
	s := &Store{UserItems: map[string]ipguard.User{}, AlertedUntil: map[int64]time.Time{}, spans: map[string][]storedSpan{},
		FailureItems: map[string][]ipguard.AddressFailures{}, HistoryItems: map[string]ipguard.AllowlistHistory{}}
	for _, u := range users {
		s.UserItems[u.ID] = u
	}
	return s
}

// PutUser stores u (a test's seed; the audit never writes users).
func (s *Store) PutUser(u ipguard.User) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.UserItems[u.ID] = u
}

// Users implements audit.Store.
func (s *Store) Users(_ context.Context, ids []string) (map[string]ipguard.User, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return pick(s.UserItems, ids), nil
}

// pick is the entries of m under ids, where m has them.
func pick[V any](m map[string]V, ids []string) map[string]V {
	out := map[string]V{}
	for _, id := range ids {
		if v, ok := m[id]; ok {
			out[id] = v
		}
	}
	return out
}

// AllUsers implements audit.Store.
func (s *Store) AllUsers(context.Context) ([]ipguard.User, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Collect(maps.Values(s.UserItems)), nil
}

// Progress implements audit.Store.
func (s *Store) Progress(context.Context) (ipguard.AuditProgress, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return copyProgress(s.Saved), nil
}

// SetProgress implements audit.Store.
func (s *Store) SetProgress(_ context.Context, p ipguard.AuditProgress) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Saved = copyProgress(p)
	s.Saves++
	return nil
}

func copyProgress(p ipguard.AuditProgress) ipguard.AuditProgress {
	if p.Cursor != nil {
		c := *p.Cursor
		p.Cursor = &c
	}
	return p
}

// Alerted implements audit.Store.
func (s *Store) Alerted(_ context.Context, ids []int64, now time.Time) (map[int64]bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[int64]bool{}
	for _, id := range ids {
		if exp, ok := s.AlertedUntil[id]; ok && exp.Unix() > now.Unix() {
			out[id] = true
		}
	}
	return out, nil
}

// RecordAlerted implements audit.Store.
func (s *Store) RecordAlerted(_ context.Context, ids []int64, at time.Time, keep time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.FailWrites {
		return unavailable("record alerted events")
	}
	s.Writes++
	for _, id := range ids {
		s.AlertedUntil[id] = time.Unix(at.Add(keep).Unix(), 0).UTC()
	}
	return nil
}

// AlertedSpans implements audit.Store.
func (s *Store) AlertedSpans(_ context.Context, ips []string, now time.Time) (map[string][]ipguard.TimeSpan, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return perAddress(ips, s.spans, func(sp storedSpan) (ipguard.TimeSpan, bool) {
		return sp.TimeSpan, sp.expires > now.Unix()
	}), nil
}

// perAddress is, for each address of ips, what keep makes of the items it
// keeps of the address's items, in order; addresses with none are absent.
func perAddress[T, U any](ips []string, items map[string][]T, keep func(T) (U, bool)) map[string][]U {
	out := map[string][]U{}
	for _, ip := range ips {
		if _, done := out[ip]; done {
			continue
		}
		for _, x := range items[ip] {
			if u, ok := keep(x); ok {
				out[ip] = append(out[ip], u)
			}
		}
	}
	return out
}

// RecordAlertedSpan implements audit.Store. Like DynamoDB it keeps whole
// seconds: From rounded down, To up.
func (s *Store) RecordAlertedSpan(_ context.Context, ip string, span ipguard.TimeSpan, at time.Time, keep time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.FailWrites {
		return unavailable("record alerted burst from " + ip)
	}
	s.Writes++
	var live []storedSpan
	for _, sp := range s.spans[ip] {
		if sp.expires > at.Unix() {
			live = append(live, sp)
		}
	}
	to := span.To.Unix()
	if span.To.Nanosecond() > 0 {
		to++
	}
	live = append(live, storedSpan{
		TimeSpan: ipguard.TimeSpan{From: time.Unix(span.From.Unix(), 0).UTC(), To: time.Unix(to, 0).UTC()},
		expires:  at.Add(keep).Unix(),
	})
	sort.SliceStable(live, func(i, j int) bool { return live[i].expires > live[j].expires })
	s.spans[ip] = live[:min(len(live), maxSpans)]
	return nil
}

func unavailable(op string) error {
	return ipguard.Errorf(ipguard.EUnavailable, "dynamodb: %s: service unavailable", op)
}

// AllowlistHistory implements audit.Store: the histories of ids that have one.
func (s *Store) AllowlistHistory(_ context.Context, ids []string) (map[string]ipguard.AllowlistHistory, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return pick(s.HistoryItems, ids), nil
}

// RecordFailures implements audit.Store: each address's record merges with
// what is remembered (ipguard.MergeAddressFailures); it keeps every address
// and reports ForgetFailures as forgotten.
func (s *Store) RecordFailures(_ context.Context, fs []ipguard.AddressFailures, _ time.Duration) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.FailRecordFailures {
		return 0, &ipguard.Error{Code: ipguard.EUnavailable, Message: "dynamodb: table unavailable"}
	}
	for _, x := range fs {
		if (x.Count <= 0 && len(x.Accounts) == 0 && len(x.Counted) == 0) || x.IP == "" {
			continue
		}
		recs := s.FailureItems[x.IP]
		i := slices.IndexFunc(recs, func(r ipguard.AddressFailures) bool {
			return r.Last.Truncate(failureBucket).Equal(x.Last.Truncate(failureBucket))
		})
		if i < 0 {
			s.FailureItems[x.IP] = append(recs, ipguard.MergeAddressFailures(ipguard.AddressFailures{}, x))
			continue
		}
		recs[i] = ipguard.MergeAddressFailures(recs[i], x)
	}
	return s.ForgetFailures, nil
}

// AccountHashKey implements audit.Store: a fixed key (AccountKey when a
// test set one).
func (s *Store) AccountHashKey(context.Context) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.AccountKey == nil {
		s.AccountKey = []byte("audittest account-hash key 32 b.")
	}
	return s.AccountKey, nil
}

// failureBucket is the DynamoDB store's bucket of remembered failed logins
// (audit.FailureBucket; this package may not import audit).
const failureBucket = 10 * time.Minute

// Failures implements audit.Store: the remembered failures of ips whose
// last failure lies within [from, to].
func (s *Store) Failures(_ context.Context, ips []string, from, to time.Time) (map[string][]ipguard.AddressFailures, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := perAddress(ips, s.FailureItems, func(x ipguard.AddressFailures) (ipguard.AddressFailures, bool) {
		return x, !x.Last.Before(from) && !x.Last.After(to)
	})
	for _, fs := range out {
		sort.Slice(fs, func(i, j int) bool { return fs[i].Last.Before(fs[j].Last) })
	}
	return out, nil
}
