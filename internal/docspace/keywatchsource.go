package docspace

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"ipguard/internal/keywatch"
)

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
		var refused keywatch.Key
		if k.Keys != nil {
			if secret, kerr := k.Keys.Key(ctx); kerr == nil {
				refused.Postfix = keywatch.PostfixOf(secret)
			}
		}
		return refused, fmt.Errorf("%w: %w", keywatch.ErrRefused, err)
	case err != nil:
		return keywatch.Key{}, err
	}
	return keywatch.Key{ID: key.ID, Name: key.Name, Postfix: key.Postfix, ExpiresAt: key.ExpiresAt, IsActive: key.IsActive}, nil
}
