package docspace

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"ipguard/internal/audit"
	"ipguard/internal/ipguard"
)

const (
	pathPeople     = "/api/2.0/people/"
	pathPeopleSelf = "/api/2.0/people/@self"
)

// UserStatus is a portal user's EmployeeStatus.
type UserStatus int

// The user statuses the portal reports.
const (
	UserActive     UserStatus = 1
	UserTerminated UserStatus = 2 // disabled: no sign-in, its API keys stop working
	UserPending    UserStatus = 4 // invited, not yet signed in
)

// PortalUser is a DocSpace user as GET people/{id} reports it. IsAdmin is
// false for the owner (check IsOwner).
type PortalUser struct {
	ID          string
	DisplayName string
	Email       string
	Status      UserStatus
	IsAdmin     bool
	IsOwner     bool
	IsLDAP      bool
	IsSSO       bool
	// Type is the user's type (UserType), from the flags EmployeeFullDto
	// carries; "" when the answer sets none of them.
	Type string
}

// The user types (the portal's EmployeeType as EmployeeFullDto reports it,
// docs/docspace-api.md §9.3): isOwner; isAdmin (DocSpaceAdmin); isRoomAdmin;
// isCollaborator (the type the UI calls "User" since v3, "Power user"
// before); isVisitor (the lowest type: "Guest" since v3, "User" before).
// The values are audit's (audit.UserGuest, ...).
const (
	TypeOwner         = audit.UserOwner
	TypeDocSpaceAdmin = audit.UserDocSpaceAdmin
	TypeRoomAdmin     = audit.UserRoomAdmin
	TypeUser          = audit.UserRegular
	TypeGuest         = audit.UserGuest
)

// wireUser is EmployeeFullDto, the fields read.
type wireUser struct {
	ID             string  `json:"id"`
	DisplayName    string  `json:"displayName"`
	Email          string  `json:"email"`
	Status         flexInt `json:"status"`
	IsAdmin        bool    `json:"isAdmin"`
	IsOwner        bool    `json:"isOwner"`
	IsLDAP         bool    `json:"isLDAP"`
	IsSSO          bool    `json:"isSSO"`
	IsRoomAdmin    bool    `json:"isRoomAdmin"`
	IsVisitor      bool    `json:"isVisitor"`
	IsCollaborator bool    `json:"isCollaborator"`
}

// userType is the type the flags say, the most privileged first.
func (w wireUser) userType() string {
	switch {
	case w.IsOwner:
		return TypeOwner
	case w.IsAdmin:
		return TypeDocSpaceAdmin
	case w.IsRoomAdmin:
		return TypeRoomAdmin
	case w.IsCollaborator:
		return TypeUser
	case w.IsVisitor:
		return TypeGuest
	}
	return ""
}

func (w wireUser) user() (PortalUser, error) {
	if w.ID == "" {
		return PortalUser{}, errors.New(`user has no "id"`)
	}
	if !w.Status.set {
		return PortalUser{}, fmt.Errorf("user %s has no status", w.ID)
	}
	return PortalUser{ID: w.ID, DisplayName: w.DisplayName, Email: w.Email, Status: UserStatus(w.Status.n),
		IsAdmin: w.IsAdmin, IsOwner: w.IsOwner, IsLDAP: w.IsLDAP, IsSSO: w.IsSSO, Type: w.userType()}, nil
}

// User returns the portal user with id (GET people/{id}). An unknown or
// deleted user is a 404 whose error satisfies errors.Is(err,
// ErrUserNotFound). An id that is empty or holds a '/' is EInvalid. Retried
// like every GET.
func (c *Client) User(ctx context.Context, id string) (PortalUser, error) {
	if strings.TrimSpace(id) == "" || strings.ContainsAny(id, "/?#") {
		return PortalUser{}, ipguard.Invalid("userId", id, "must be a portal user id (a GUID)")
	}
	return c.getUser(ctx, "get user", pathPeople+url.PathEscape(id), ErrUserNotFound)
}

// lookUser is User with a user the portal does not know (ErrUserNotFound)
// as found == false and no error: the one reading every port adapter of
// "who is this user" shares.
func (c *Client) lookUser(ctx context.Context, id string) (u PortalUser, found bool, err error) {
	u, err = c.User(ctx, id)
	switch {
	case errors.Is(err, ErrUserNotFound):
		return PortalUser{}, false, nil
	case err != nil:
		return PortalUser{}, false, err
	}
	return u, true, nil
}

// A 404 means ErrUserNotFound only when it is the API's own JSON error
// answer: a proxy page, an empty body or a wrong path prefix (which would
// make every user look deleted) is an EConfig error like any other 404.

// CurrentUser returns the user the API key acts as (GET people/@self).
func (c *Client) CurrentUser(ctx context.Context) (PortalUser, error) {
	return c.getUser(ctx, "get current user", pathPeopleSelf, nil)
}

func (c *Client) getUser(ctx context.Context, op, path string, notFound error) (PortalUser, error) {
	var u PortalUser
	err := c.do(ctx, call{
		op: op, method: http.MethodGet, path: path, notFound: notFound, notFoundFromAPI: true,
		decode: func(raw json.RawMessage) error {
			if raw == nil {
				return errors.New("no user in the response")
			}
			var w wireUser
			if err := json.Unmarshal(raw, &w); err != nil {
				return err
			}
			var err error
			u, err = w.user()
			return err
		},
	})
	if err != nil {
		return PortalUser{}, err
	}
	return u, nil
}

// TerminateUsers disables the users with ids (PUT people/status/Terminated)
// and returns them as the portal reports them afterwards. A disabled user's
// sessions end and its API keys stop working. Only an admin's key may call;
// the portal refuses the whole request with 403 (EConfig) when a target is
// the key's own user, the owner, an LDAP user, or — unless the key is the
// owner's — a DocSpace admin. Unknown ids are skipped by the portal.
//
// Setting a status is idempotent, so the call is retried like a GET: an
// attempt whose answer was lost is simply repeated.
func (c *Client) TerminateUsers(ctx context.Context, ids ...string) ([]PortalUser, error) {
	return c.setStatus(ctx, "terminate users", "Terminated", ids)
}

// ActivateUsers re-enables the users with ids (PUT people/status/Active),
// with the same rights, refusals and retries as TerminateUsers.
func (c *Client) ActivateUsers(ctx context.Context, ids ...string) ([]PortalUser, error) {
	return c.setStatus(ctx, "activate users", "Active", ids)
}

func (c *Client) setStatus(ctx context.Context, op, status string, ids []string) ([]PortalUser, error) {
	if len(ids) == 0 {
		return nil, ipguard.Invalid("userIds", "", "must name at least one user")
	}
	for i, id := range ids {
		if strings.TrimSpace(id) == "" {
			return nil, ipguard.Invalid(fmt.Sprintf("userIds[%d]", i), id, "must be a portal user id (a GUID)")
		}
	}
	users := []PortalUser{}
	err := c.do(ctx, call{
		op: op, method: http.MethodPut, path: pathPeople + "status/" + status,
		body: struct {
			UserIDs []string `json:"userIds"`
		}{ids},
		decode: func(raw json.RawMessage) error {
			if raw == nil {
				return errors.New("no users in the response")
			}
			var ws []wireUser
			if err := json.Unmarshal(raw, &ws); err != nil {
				return err
			}
			for _, w := range ws {
				u, err := w.user()
				if err != nil {
					return err
				}
				users = append(users, u)
			}
			return nil
		},
	})
	if err != nil {
		return nil, err
	}
	return users, nil
}

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
