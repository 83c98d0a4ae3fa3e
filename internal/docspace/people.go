package docspace

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

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
