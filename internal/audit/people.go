package audit

import (
	"context"
	"errors"
	"fmt"
	"time"

	"ipguard/internal/ipguard"
)

// People tells the portal's type of a user (docspace.Client: GET
// people/{id}), so that the daily digest names guests as guests.
// Optional on Service; without it the digest lists people without types.
type People interface {
	// UserType returns the type of the portal user with id: UserGuest,
	// UserRegular, UserRoomAdmin, UserDocSpaceAdmin or UserOwner, "" when
	// the portal does not know the user (any more). Errors are classified.
	UserType(ctx context.Context, id string) (string, error)
}

// The user types People reports (the portal's EmployeeType; an owner is
// reported as the owner).
const (
	UserGuest         = "guest"
	UserRegular       = "user"
	UserRoomAdmin     = "room_admin"
	UserDocSpaceAdmin = "docspace_admin"
	UserOwner         = "owner"
)

// MaxUserTypeLookups bounds the people a run looks up (one portal request
// each, from the run's share of the portal's request budget). Only users
// of DigestOnly findings are looked up, each once per run; beyond the
// bound they are listed without their type.
const MaxUserTypeLookups = 50

// MaxUserTypeLookupTime bounds the time one piece spends looking up user
// types (at most a quarter of what is left before the run's deadline): the
// types are a courtesy of the digest, and the piece's alerts wait for them.
const MaxUserTypeLookupTime = 10 * time.Second

// nameUsers sets UserType on the DigestOnly findings of fs from the run's
// cache, looking up users not met yet in this run (at most
// MaxUserTypeLookups a run, within MaxUserTypeLookupTime a piece). A failed
// lookup is a warning, never a failed run: the person is listed all the
// same. Once a piece's lookups ran out of their time, the run looks up no
// more (a slow people endpoint would hold back every piece's alerts).
func (p *piecer) nameUsers(ctx context.Context, fs []Finding) {
	r, s := p.run, p.run.s
	if s.People == nil || r.userTypesStopped {
		return
	}
	budget := MaxUserTypeLookupTime
	if dl, ok := ctx.Deadline(); ok {
		budget = min(budget, time.Until(dl)/4)
	}
	outer := ctx
	ctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	for i := range fs {
		f := &fs[i]
		if !f.DigestOnly || f.UserType != "" {
			continue
		}
		id := ipguard.CanonicalUserID(f.UserID)
		if id == "" {
			continue
		}
		t, ok := r.userTypes[id]
		if !ok && ctx.Err() != nil && outer.Err() == nil {
			r.userTypesStopped = true
			r.warn(fmt.Sprintf("looking up the user types of people without an allowlist took longer than this piece allows (%s): the rest of this run's are listed in the digest without their user type (guest or not)", budget.Round(time.Millisecond)))
			return
		}
		if !ok {
			if r.userTypeLookups >= MaxUserTypeLookups {
				r.warn(fmt.Sprintf("more than %d people without an allowlist logged in during this run: the rest are listed in the digest without their user type (guest or not)", MaxUserTypeLookups))
				continue
			}
			r.userTypeLookups++
			var err error
			t, err = s.People.UserType(ctx, id)
			if err != nil {
				t = ""
				if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
					r.warn("the user type of people without an allowlist could not be looked up before the deadline: they are listed in the digest without it")
				} else {
					r.warn("could not look up the user type of a person without an allowlist (they are listed in the digest without it): " + err.Error())
				}
			}
			if r.userTypes == nil {
				r.userTypes = map[string]string{}
			}
			r.userTypes[id] = t
		}
		f.UserType = t
	}
}
