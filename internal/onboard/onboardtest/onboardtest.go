// Package onboardtest holds the one in-memory onboarding store every test
// uses. Package onboardcontract below it holds the table of promises both
// this fake and the DynamoDB store must pass, so that no test passes against
// store behaviour production never has.
//
// It does not import package onboard, so that onboard's own (in-package)
// tests can use it.
package onboardtest

import (
	"context"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"ipguard/internal/ipguard"
)

// Store is the in-memory onboarding store. Make it with NewStore; it is safe
// for concurrent use. The exported fields may be read and set between
// calls, not during them.
type Store struct {
	mu sync.Mutex
	// UserItems are the stored users by id.
	UserItems map[string]ipguard.User
	// State is the stored portal state.
	State ipguard.PortalState
	// Writes counts applied PutUserIf, DeleteUser and DeleteUserIf calls.
	Writes int
	// LoseAnswers: the next this many PutUserIf calls are applied but
	// report that the condition failed (DynamoDB applied the write, the
	// answer was lost, and the SDK's resend found the record changed).
	LoseAnswers int
	// BumpErrs: the next this many BumpVersion calls fail (a throttled
	// counter, or its answer lost).
	BumpErrs int
	// Outbox holds the due alerts by key; Claims the flushers' claims on
	// them (token and until).
	Outbox map[string]ipguard.DueAlert
	Claims map[string]DueClaim
	// OffboardedAt remembers each offboarding's request time and expiry.
	OffboardedAt map[string][2]time.Time
	// Arrived remembers each invocation's first arrival by request id.
	Arrived map[string]time.Time
	// RecheckItems are the writes recorded for a second look in the audit
	// trail (onboard.Rechecks) by key; RecheckErr, when set, fails every
	// Rechecks call (a store outage).
	RecheckItems map[string]ipguard.Recheck
	RecheckErr   error
	// dueMarks counts MarkAlertsDue (State.DueMarks: the marks the last
	// state written had read).
	dueMarks int64
}

// FirstArrival implements onboard.Arrivals (kept for good: request ids
// are unique, DynamoDB's TTL only cleans up).
func (s *Store) FirstArrival(_ context.Context, requestID string, now time.Time, _ time.Duration) (time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if at, ok := s.Arrived[requestID]; ok {
		return at, nil
	}
	if s.Arrived == nil {
		s.Arrived = map[string]time.Time{}
	}
	s.Arrived[requestID] = now.UTC().Truncate(time.Millisecond)
	return s.Arrived[requestID], nil
}

// PutOffboarded implements onboard.Tombstones: an older time never
// replaces a newer one that has not expired.
func (s *Store) PutOffboarded(_ context.Context, id string, at, expires time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.OffboardedAt == nil {
		s.OffboardedAt = map[string][2]time.Time{}
	}
	if old, ok := s.OffboardedAt[id]; ok && old[0].After(at.Truncate(time.Millisecond)) {
		return nil
	}
	s.OffboardedAt[id] = [2]time.Time{at.UTC().Truncate(time.Millisecond), expires} // to the millisecond, as DynamoDB
	return nil
}

// Offboarded implements onboard.Tombstones.
func (s *Store) Offboarded(_ context.Context, id string, now time.Time) (time.Time, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.OffboardedAt[id]
	if !ok || r[1].Before(now) {
		return time.Time{}, false, nil
	}
	return r[0], true, nil
}

// NewStore returns an empty store.
func NewStore() *Store { return &Store{UserItems: map[string]ipguard.User{}} }

// GetUser implements onboard.Store.
func (s *Store) GetUser(_ context.Context, id string) (ipguard.User, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.UserItems[id]
	return u, ok, nil
}

// PutUserIf implements onboard.Store.
func (s *Store) PutUserIf(_ context.Context, u ipguard.User, prev int64) (bool, error) {
	return s.putUserIf(u, prev, false)
}

// putUserIf is PutUserIf, with stored also only over a stored record.
func (s *Store) putUserIf(u ipguard.User, prev int64, stored bool) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.UserItems[u.ID]; old.Rev != prev || stored && !ok {
		return false, nil
	}
	s.Writes++
	if u.Touched != nil {
		// Request times are kept to the millisecond, as DynamoDB keeps them.
		touched := make(map[string]time.Time, len(u.Touched))
		for e, t := range u.Touched {
			touched[e] = t.UTC().Truncate(time.Millisecond)
		}
		u.Touched = touched
	}
	s.UserItems[u.ID] = u
	if s.LoseAnswers > 0 {
		s.LoseAnswers--
		return false, nil
	}
	return true, nil
}

// ReplaceUserIf implements onboard.UserReplacer: PutUserIf only while a
// record is stored.
func (s *Store) ReplaceUserIf(_ context.Context, u ipguard.User, prev int64) (bool, error) {
	return s.putUserIf(u, prev, true)
}

// DeleteUser implements onboard.Store.
func (s *Store) DeleteUser(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Writes++
	delete(s.UserItems, id)
	return nil
}

// DeleteUserIf implements onboard.Store: it deletes only while the stored
// rev is still rev (a user not stored is fine).
func (s *Store) DeleteUserIf(_ context.Context, id string, rev int64) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u, ok := s.UserItems[id]; ok && u.Rev != rev {
		return false, nil
	}
	s.Writes++
	delete(s.UserItems, id)
	return true, nil
}

// AllUsers implements onboard.Store.
func (s *Store) AllUsers(context.Context) ([]ipguard.User, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Collect(maps.Values(s.UserItems)), nil
}

// BumpVersion implements onboard.Store.
func (s *Store) BumpVersion(ctx context.Context) (int64, error) {
	v, _, err := s.BumpVersionAdding(ctx, 0)
	return v, err
}

// BumpVersionAdding implements onboard.AddsCounter: the version and the
// count move in one step.
func (s *Store) BumpVersionAdding(_ context.Context, adds int) (int64, int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.BumpErrs > 0 {
		s.BumpErrs--
		return 0, 0, ipguard.Errorf(ipguard.EUnavailable, "bump the allowlist version: throttled")
	}
	s.State.Version++
	s.State.Adds += int64(max(adds, 0))
	return s.State.Version, s.State.Adds, nil
}

// PortalState implements onboard.Store.
func (s *Store) PortalState(context.Context) (ipguard.PortalState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := cloneState(s.State)
	st.DueMarks = s.dueMarks
	st.AlertsDue = st.AlertsDue || s.dueMarks > s.State.DueMarks
	return st, nil
}

// PutPortalState implements onboard.Store: fenced by Pass (see
// onboard.ErrSuperseded) as the DynamoDB store's condition.
func (s *Store) PutPortalState(_ context.Context, st ipguard.PortalState) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st.Pass != "" && s.State.Pass != "" && s.State.Pass != st.Pass && s.State.Pass != st.Base {
		return &ipguard.Error{Code: ipguard.EConflict, Err: ipguard.ErrSuperseded,
			Message: "put the portal allowlist state: pass " + st.Pass + " started from " + st.Base + ", but " + s.State.Pass + " wrote since"}
	}
	st = cloneState(st)
	st.Version, st.Adds, st.Base = s.State.Version, s.State.Adds, ""
	if st.Pass == "" {
		st.Pass = s.State.Pass
	}
	if st.Applied < s.State.Applied {
		st.Applied, st.AddsApplied = s.State.Applied, s.State.AddsApplied
	}
	s.State = st
	return nil
}

// MarkAlertsDue implements onboard.Store.
func (s *Store) MarkAlertsDue(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dueMarks++
	return nil
}

func cloneState(st ipguard.PortalState) ipguard.PortalState {
	st.Owned, st.LastSeen, st.Sent, st.SentAdded = slices.Clone(st.Owned), slices.Clone(st.LastSeen), slices.Clone(st.Sent), slices.Clone(st.SentAdded)
	st.OwnSaves, st.LateSent, st.UnansweredSaves = slices.Clone(st.OwnSaves), slices.Clone(st.LateSent), slices.Clone(st.UnansweredSaves)
	return st
}

// AddDueAlert implements onboard.Store.
func (s *Store) AddDueAlert(_ context.Context, a ipguard.DueAlert) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Outbox == nil {
		s.Outbox = map[string]ipguard.DueAlert{}
	}
	s.Outbox[a.Key] = cloneDue(a)
	delete(s.Claims, a.Key) // a newer alert is due again, unclaimed
	return nil
}

// DueClaim is a flusher's claim on a due alert.
type DueClaim struct {
	Token string
	Until time.Time
}

// ClaimDueAlert implements onboard.Store.
func (s *Store) ClaimDueAlert(_ context.Context, key, token string, until, now time.Time) (ipguard.DueAlert, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.Outbox[key]
	if !ok {
		return ipguard.DueAlert{}, false, nil
	}
	if c, held := s.Claims[key]; held && !c.Until.Before(now) {
		return ipguard.DueAlert{}, false, nil
	}
	if s.Claims == nil {
		s.Claims = map[string]DueClaim{}
	}
	s.Claims[key] = DueClaim{Token: token, Until: until}
	return cloneDue(a), true, nil
}

// SettleDueAlert implements onboard.Store.
func (s *Store) SettleDueAlert(_ context.Context, key, token string, sent bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, held := s.Claims[key]; !held || c.Token != token {
		return nil
	}
	delete(s.Claims, key)
	if sent {
		delete(s.Outbox, key)
	}
	return nil
}

// cloneDue is a sharing nothing with the caller, as a DynamoDB item would.
func cloneDue(a ipguard.DueAlert) ipguard.DueAlert {
	a.Alert.Kinds = slices.Clone(a.Alert.Kinds)
	return a
}

// DueAlerts implements onboard.Store: oldest first.
func (s *Store) DueAlerts(context.Context) ([]ipguard.DueAlert, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []ipguard.DueAlert
	for _, a := range s.Outbox {
		out = append(out, cloneDue(a))
	}
	slices.SortFunc(out, func(a, b ipguard.DueAlert) int { return a.Since.Compare(b.Since) })
	return out, nil
}

// ClearDueAlert implements onboard.Store.
func (s *Store) ClearDueAlert(_ context.Context, k string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.Outbox, k)
	delete(s.Claims, k)
	return nil
}

// PutRecheck implements onboard.Rechecks.
func (s *Store) PutRecheck(_ context.Context, r ipguard.Recheck, drop []string) ([]ipguard.Recheck, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.RecheckErr != nil {
		return nil, s.RecheckErr
	}
	if s.RecheckItems == nil {
		s.RecheckItems = map[string]ipguard.Recheck{}
	}
	alerted := slices.Clone(s.RecheckItems[r.Key].Alerted)
	for _, k := range r.Alerted {
		if !slices.Contains(alerted, k) {
			alerted = append(alerted, k)
		}
	}
	r.Alerted = sortedOrNil(alerted)
	for _, k := range drop {
		delete(s.RecheckItems, k)
	}
	s.RecheckItems[r.Key] = r
	return s.rechecksLocked(), nil
}

// Rechecks implements onboard.Rechecks: oldest first.
func (s *Store) Rechecks(context.Context) ([]ipguard.Recheck, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.RecheckErr != nil {
		return nil, s.RecheckErr
	}
	return s.rechecksLocked(), nil
}

func (s *Store) rechecksLocked() []ipguard.Recheck {
	out := []ipguard.Recheck{}
	for _, r := range s.RecheckItems {
		r.Alerted = slices.Clone(r.Alerted)
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b ipguard.Recheck) int {
		if c := a.From.Compare(b.From); c != 0 {
			return c
		}
		return strings.Compare(a.Key, b.Key)
	})
	return out
}

// AddRecheckAlerted implements onboard.Rechecks.
func (s *Store) AddRecheckAlerted(_ context.Context, key string, alerted []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.RecheckErr != nil {
		return s.RecheckErr
	}
	r, ok := s.RecheckItems[key]
	if !ok {
		return nil
	}
	for _, k := range alerted {
		if !slices.Contains(r.Alerted, k) {
			r.Alerted = append(slices.Clone(r.Alerted), k)
		}
	}
	r.Alerted = sortedOrNil(r.Alerted)
	s.RecheckItems[key] = r
	return nil
}

// ClearRechecks implements onboard.Rechecks.
func (s *Store) ClearRechecks(_ context.Context, keys []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.RecheckErr != nil {
		return s.RecheckErr
	}
	for _, k := range keys {
		delete(s.RecheckItems, k)
	}
	return nil
}

// sortedOrNil is xs sorted (a set, as DynamoDB's string set reads back in
// no order), nil when empty.
func sortedOrNil(xs []string) []string {
	if len(xs) == 0 {
		return nil
	}
	xs = slices.Clone(xs)
	slices.Sort(xs)
	return xs
}
