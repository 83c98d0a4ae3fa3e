package docspace

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"ipguard/internal/audit"
	"ipguard/internal/enforce"
	"ipguard/internal/ipguard"
	"ipguard/internal/keywatch"
	"ipguard/internal/onboard"
)

// The client as each domain package asks for it: enforce.Portal,
// onboard.Directory and onboard.Trail, audit.People, keywatch.Source.

// EnforcePortal is the client as package enforce asks for it: a 403 from
// the portal becomes an error for which errors.Is(err, enforce.ErrRefused).
type EnforcePortal struct{ Client *Client }

var _ enforce.Portal = EnforcePortal{}

// APIKeyUser implements enforce.Portal with Client.KeyUser.
func (p EnforcePortal) APIKeyUser(ctx context.Context) (string, error) {
	return p.Client.KeyUser(ctx)
}

// IsOwner implements enforce.Portal (GET people/{id} → isOwner). A user the
// portal does not know (deleted) is not the owner.
func (p EnforcePortal) IsOwner(ctx context.Context, userID string) (bool, error) {
	u, _, err := p.Client.lookUser(ctx, userID)
	return u.IsOwner, err
}

// EndSession implements enforce.Portal: sent once; a lost answer is an
// error for which errors.Is(err, enforce.ErrUnconfirmed).
func (p EnforcePortal) EndSession(ctx context.Context, loginEventID int64) (bool, error) {
	ended, err := p.Client.EndSession(ctx, loginEventID)
	var de *Error
	if errors.As(err, &de) && de.MaybeApplied {
		return false, fmt.Errorf("%w: %w", enforce.ErrUnconfirmed, err)
	}
	return ended, refused(err)
}

// SessionsEnded implements enforce.Portal from the audit trail: the
// "session ended" events (4035) by the API key's user since since. since is
// on our clock and the trail on the portal's, so since is moved later by the
// portal's clock skew (the Date of its latest answer) when the portal is 2 s
// or more ahead: a portal clock ahead would otherwise date sessions ended
// before since after it, and confirm a lost logout by them. since is never
// moved earlier: a Date behind widens the count, and it cannot be told from
// the Date's whole second plus a slow answer (both clocks right) or a stale
// or garbled header. With a portal clock really behind, a lost logout is
// then left unconfirmed (failed, "may still be active"), never the reverse.
func (p EnforcePortal) SessionsEnded(ctx context.Context, since time.Time) (int, error) {
	self, err := p.APIKeyUser(ctx)
	if err != nil {
		return 0, err
	}
	if date, received := p.Client.ServerDate(); !date.IsZero() {
		// Date has whole seconds: a skew under 2 s is the header's own
		// rounding, not a clock that differs.
		if skew := date.Sub(received); skew >= 2*time.Second {
			since = since.Add(skew)
		}
	}
	return p.Client.SessionsEndedBy(ctx, self, since)
}

// EndAllSessions implements enforce.Portal.
func (p EnforcePortal) EndAllSessions(ctx context.Context, userID string) error {
	return refused(p.Client.EndAllSessions(ctx, userID))
}

// DisableUser implements enforce.Portal. The portal skips ids it does not
// know and answers with the users it changed, so an answer that does not
// name the user is an error: nobody was disabled.
func (p EnforcePortal) DisableUser(ctx context.Context, userID string) error {
	users, err := p.Client.TerminateUsers(ctx, userID)
	if err != nil {
		return refused(err)
	}
	for _, u := range users {
		if ipguard.CanonicalUserID(u.ID) == ipguard.CanonicalUserID(userID) {
			return nil
		}
	}
	return fmt.Errorf("docspace: PUT people/status/Terminated answered without user %s: the portal changed no one (unknown or deleted user)", userID)
}

// UserDisabled implements enforce.Portal (GET people/{id} → status 2,
// Terminated). A user the portal does not know (deleted) is not disabled.
func (p EnforcePortal) UserDisabled(ctx context.Context, userID string) (bool, error) {
	u, found, err := p.Client.lookUser(ctx, userID)
	return found && u.Status == UserTerminated, err
}

func refused(err error) error {
	var de *Error
	if errors.As(err, &de) && de.Status == http.StatusForbidden {
		return fmt.Errorf("%w: %w", enforce.ErrRefused, err)
	}
	return err
}

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

// KeyWatchSource is the client as package keywatch asks for it. Keys, when
// set, lets a refused key be named by its last characters.
type KeyWatchSource struct {
	Client *Client
	Keys   KeyProvider
}

var _ keywatch.Source = KeyWatchSource{}

// CurrentKey implements keywatch.Source: GET keys/@self; a 404 is
// keywatch.ErrNotSupported, a 401 keywatch.ErrRefused (the client's error
// stays in the chain, and with it the ConfigurationError code).
func (k KeyWatchSource) CurrentKey(ctx context.Context) (keywatch.Key, error) {
	key, err := k.Client.CurrentKey(ctx)
	var de *Error
	switch {
	case errors.Is(err, ErrNotSupported):
		return keywatch.Key{}, fmt.Errorf("%w: %w", keywatch.ErrNotSupported, err)
	case errors.As(err, &de) && de.Status == http.StatusUnauthorized:
		return k.inUse(ctx), fmt.Errorf("%w: %w", keywatch.ErrRefused, err)
	case err != nil:
		// The key in use by its last characters: a portal that does not
		// answer now is only a warning while this key was checked lately.
		return k.inUse(ctx), err
	}
	return keywatch.Key{ID: key.ID, Name: key.Name, Postfix: key.Postfix, ExpiresAt: key.ExpiresAt, IsActive: key.IsActive}, nil
}

// inUse is the key in use as known without the portal: its Postfix, from
// the secret (nothing without Keys or when the secret cannot be read).
func (k KeyWatchSource) inUse(ctx context.Context) keywatch.Key {
	var key keywatch.Key
	if k.Keys != nil {
		if secret, kerr := k.Keys.Key(ctx); kerr == nil {
			key.Postfix = keywatch.PostfixOf(secret)
		}
	}
	return key
}
