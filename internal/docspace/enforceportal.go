package docspace

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"ipguard/internal/enforce"
	"ipguard/internal/ipguard"
)

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
// "session ended" events (4035) by the API key's user since since.
func (p EnforcePortal) SessionsEnded(ctx context.Context, since time.Time) (int, error) {
	self, err := p.APIKeyUser(ctx)
	if err != nil {
		return 0, err
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

func refused(err error) error {
	var de *Error
	if errors.As(err, &de) && de.Status == http.StatusForbidden {
		return fmt.Errorf("%w: %w", enforce.ErrRefused, err)
	}
	return err
}
