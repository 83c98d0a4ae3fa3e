package lambdafn

import (
	"context"
	"errors"
	"slices"
	"time"

	"ipguard/internal/docspace"
	"ipguard/internal/onboard"
)

// portalDirectory is onboard.Directory over the DocSpace client: who the
// key is (keys/@self) and who a user is (people/{id}).
type portalDirectory struct{ c *docspace.Client }

func (d portalDirectory) KeyCreator(ctx context.Context) (string, error) {
	k, err := d.c.CurrentKey(ctx)
	if err != nil {
		return "", err
	}
	if k.CreatedBy.ID == "" {
		return "", errors.New("keys/@self names no creator")
	}
	return k.CreatedBy.ID, nil
}

func (d portalDirectory) Person(ctx context.Context, id string) (onboard.Person, bool, error) {
	u, err := d.c.User(ctx, id)
	if errors.Is(err, docspace.ErrUserNotFound) {
		return onboard.Person{}, false, nil
	}
	if err != nil {
		return onboard.Person{}, false, err
	}
	return onboard.Person{ID: u.ID, Name: u.DisplayName, IsOwner: u.IsOwner, IsAdmin: u.IsAdmin, Status: int(u.Status)}, true, nil
}

// portalTrail is onboard.Trail over the portal's audit trail (action 6094).
type portalTrail struct{ c *docspace.Client }

func (t portalTrail) AllowlistChanges(ctx context.Context, since time.Time) ([]onboard.Change, error) {
	evs, complete, err := t.c.AllowlistChanges(ctx, since)
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
