package onboard

import (
	"context"
	"sync"
	"time"

	"ipguard/internal/ipguard"
)

// ChangeLogStore is optional on a Store (issue 15 §6): every version bump
// logs which user its change was for, in the same write, so that a
// reconcile pass that closely follows another reads only the users named
// since instead of every user.
type ChangeLogStore interface {
	// BumpVersionFor is AddsCounter's BumpVersionAdding that also logs id
	// ("" for none) as the user of the new version (PortalState.Changed).
	// BumpVersion and BumpVersionAdding log "" (read every user).
	BumpVersionFor(ctx context.Context, id string, adds int) (int64, error)
	// GetUsers returns the stored users among ids, strongly consistent (an
	// id with no record is left out; one that cannot be decoded has
	// Unreadable set).
	GetUsers(ctx context.Context, ids []string) ([]ipguard.User, error)
	// ResetChangeLog restarts the log at the version stored now, when it
	// says nothing (PortalState.ChangedLog false).
	ResetChangeLog(ctx context.Context) error
}

// userCacheAge is how long the users a pass read in full may stand in for
// a full read: a pass later than that (or a sync) reads every user again.
const userCacheAge = time.Minute

// userCache is every stored user as a pass of this process read them at
// a version (each write whose bump is at most version is in it).
type userCache struct {
	sync.Mutex
	version int64
	at      time.Time
	users   map[string]ipguard.User
}

// passUsers returns every stored user for a reconcile pass that read the
// state st (its Version and change log) before. A pass that closely
// follows one of this process's passes that read every user, with the
// change log covering every bump since, reads only the users named since
// (one BatchGetItem instead of a scan) and updates its copy; otherwise,
// and always when full (a sync: it also catches writes that bump
// nothing), it reads every user. The copy is used only while none of its
// users has an entry whose time ran out: expiry writes users without a
// bump, so it always works on a full read.
func (s *Service) passUsers(ctx context.Context, st ipguard.PortalState, full bool) ([]ipguard.User, error) {
	log, logs := s.Store.(ChangeLogStore)
	now := s.now()
	c := &s.users
	c.Lock()
	defer c.Unlock()
	if logs && !full && c.users != nil && now.Sub(c.at) < userCacheAge {
		if ids, ok := st.ChangedSince(c.version); ok {
			defer span(ctx, "changedUsers", time.Now())
			got, err := log.GetUsers(ctx, ids)
			if err != nil {
				return nil, err
			}
			next := make(map[string]ipguard.User, len(c.users)+len(got))
			for id, u := range c.users {
				next[id] = u
			}
			for _, id := range ids {
				delete(next, id) // gone unless read back
			}
			for _, u := range got {
				next[u.ID] = u
			}
			users := make([]ipguard.User, 0, len(next))
			expiring := false
			for _, u := range next {
				users = append(users, u)
				expiring = expiring || len(u.ActiveEntries(now)) != len(u.Entries)
			}
			if !expiring {
				c.version, c.at, c.users = st.Version, now, next
				return users, nil
			}
		}
	}
	defer span(ctx, "scan", time.Now())
	users, err := s.Store.AllUsers(ctx)
	if err != nil {
		c.users = nil
		return nil, err
	}
	c.users = nil
	if logs {
		if !st.ChangedLog {
			if err := log.ResetChangeLog(ctx); err != nil {
				return nil, err
			}
			// Covers the bumps after the version read now, not st's.
			return users, nil
		}
		m := make(map[string]ipguard.User, len(users))
		for _, u := range users {
			m[u.ID] = u
		}
		c.version, c.at, c.users = st.Version, now, m
	}
	return users, nil
}
