package docspace

import (
	"context"
	"errors"
	"slices"
	"time"

	"ipguard/internal/audit"
	"ipguard/internal/onboard"
)

// Directory is onboard.Directory over the client: who the key acts as
// (Client.KeyUser) and who a user is (people/{id}).
type Directory struct{ Client *Client }

var _ onboard.Directory = Directory{}

// KeyCreator implements onboard.Directory with Client.KeyUser.
func (d Directory) KeyCreator(ctx context.Context) (string, error) {
	return d.Client.KeyUser(ctx)
}

// Person implements onboard.Directory: found is false only when the portal
// answered that the user does not exist (ErrUserNotFound).
func (d Directory) Person(ctx context.Context, id string) (onboard.Person, bool, error) {
	u, found, err := d.Client.lookUser(ctx, id)
	if !found {
		return onboard.Person{}, false, err
	}
	return onboard.Person{ID: u.ID, Name: u.DisplayName, IsOwner: u.IsOwner, IsAdmin: u.IsAdmin, Status: int(u.Status)}, true, nil
}

var _ audit.People = Directory{}

// UserType implements audit.People: the user's type (PortalUser.Type), ""
// when the portal answered that the user does not exist. One GET
// people/{id} per call; the audit bounds and caches the calls per run.
func (d Directory) UserType(ctx context.Context, id string) (string, error) {
	u, _, err := d.Client.lookUser(ctx, id)
	return u.Type, err
}

// AllowlistTrail is onboard.Trail over the portal's audit trail (action
// 6094, "IP restrictions saved").
type AllowlistTrail struct{ Client *Client }

var _ onboard.Trail = AllowlistTrail{}

// AllowlistChanges implements onboard.Trail: every save since the given
// instant, oldest first. The plan fallback (only the newest events visible)
// is an error: an incomplete trail must not be taken for the whole.
func (t AllowlistTrail) AllowlistChanges(ctx context.Context, since time.Time) ([]onboard.Change, error) {
	evs, complete, err := t.Client.AllowlistChanges(ctx, since)
	if err != nil {
		return nil, err
	}
	if !complete {
		return nil, errors.New("the portal answered with its plan fallback (no audit feature on this plan)")
	}
	out := make([]onboard.Change, 0, len(evs))
	for _, ev := range evs {
		out = append(out, onboard.Change{When: ev.Date, User: ev.User, UserID: ev.UserID, IP: ev.IP})
	}
	slices.Reverse(out) // oldest first
	return out, nil
}
