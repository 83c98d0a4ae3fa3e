package docspace

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"
)

const pathKeySelf = "/api/2.0/keys/@self"

// APIKey describes the API key the client authenticates with, as
// GET keys/@self reports it. It never holds the key itself: Masked is the
// portal's "sk-***abcd" form and Postfix its last four characters.
type APIKey struct {
	ID          string
	Name        string
	Masked      string
	Postfix     string
	Permissions []string  // empty or "*" means full access
	LastUsed    time.Time // zero when the portal reports none
	CreatedOn   time.Time
	CreatedBy   KeyCreator
	ExpiresAt   time.Time // zero: the key never expires
	IsActive    bool
}

// KeyCreator is the user an API key acts as.
type KeyCreator struct {
	ID          string
	DisplayName string
}

// NeverExpires reports whether the key has no expiry date.
func (k APIKey) NeverExpires() bool { return k.ExpiresAt.IsZero() }

// CurrentKey returns the key this client authenticates with (GET
// keys/@self; any scope, available since DocSpace v3.1.1). Dates are in
// UTC. An older portal answers 404: the error then satisfies
// errors.Is(err, ErrNotSupported). An expired or deactivated key cannot
// describe itself: the portal answers 401 as for every call. Retried like
// every GET.
func (c *Client) CurrentKey(ctx context.Context) (APIKey, error) {
	var k APIKey
	err := c.do(ctx, call{
		op: "get current api key", method: http.MethodGet, path: pathKeySelf, notFound: ErrNotSupported,
		decode: func(raw json.RawMessage) error {
			if raw == nil {
				return errors.New("no key in the response")
			}
			var w struct {
				ID          string   `json:"id"`
				Name        string   `json:"name"`
				Key         string   `json:"key"`
				KeyPostfix  string   `json:"keyPostfix"`
				Permissions []string `json:"permissions"`
				LastUsed    *string  `json:"lastUsed"`
				CreateOn    *string  `json:"createOn"`
				CreateBy    *struct {
					ID          string `json:"id"`
					DisplayName string `json:"displayName"`
				} `json:"createBy"`
				ExpiresAt *string `json:"expiresAt"`
				IsActive  *bool   `json:"isActive"`
			}
			if err := json.Unmarshal(raw, &w); err != nil {
				return err
			}
			if w.CreateBy == nil || w.CreateBy.ID == "" {
				return errors.New(`key has no "createBy" user`)
			}
			if w.IsActive == nil {
				return errors.New(`key has no "isActive"`)
			}
			k = APIKey{ID: w.ID, Name: w.Name, Masked: w.Key, Postfix: w.KeyPostfix,
				Permissions: w.Permissions, CreatedBy: KeyCreator{ID: w.CreateBy.ID, DisplayName: w.CreateBy.DisplayName},
				IsActive: *w.IsActive}
			for _, d := range []struct {
				name string
				in   *string
				out  *time.Time
			}{{"lastUsed", w.LastUsed, &k.LastUsed}, {"createOn", w.CreateOn, &k.CreatedOn}, {"expiresAt", w.ExpiresAt, &k.ExpiresAt}} {
				if d.in == nil || *d.in == "" {
					continue
				}
				// A date without a zone is read as UTC (off by at most
				// the portal's offset, hours against the days of the
				// expiry watch).
				t, err := parseDateOrUTC(*d.in)
				switch {
				case err != nil && d.name == "expiresAt":
					return fmt.Errorf("key %s %q is not an RFC 3339 instant", d.name, *d.in)
				case err != nil:
					continue // only for information: the expiry is what is watched
				}
				*d.out = t.UTC()
			}
			return nil
		},
	})
	if err != nil {
		return APIKey{}, err
	}
	return k, nil
}

// KeyUser returns the id of the user the API key acts as: its creator, from
// GET keys/@self. A portal older than v3.1.1 has no keys/@self; the key acts
// as its creator there too, so GET people/@self names the same user. This is
// the one answer to "who is the key's user" (enforcement guards and the
// onboarding lock-out preflight both ask it).
func (c *Client) KeyUser(ctx context.Context) (string, error) {
	k, err := c.CurrentKey(ctx)
	if errors.Is(err, ErrNotSupported) {
		u, err := c.CurrentUser(ctx)
		if err != nil {
			return "", err
		}
		if u.ID == "" {
			return "", errors.New("docspace: GET people/@self named no id")
		}
		return u.ID, nil
	}
	if err != nil {
		return "", err
	}
	if k.CreatedBy.ID == "" {
		return "", errors.New("docspace: GET keys/@self named no createBy.id")
	}
	return k.CreatedBy.ID, nil
}
