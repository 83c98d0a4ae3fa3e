package docspace

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"ipguard/internal/ipguard"
)

const (
	pathLogout    = "/api/2.0/security/activeconnections/logout/"
	pathLogoutAll = "/api/2.0/security/activeconnections/logoutall/"
)

// EndSession ends the one session started by the successful login event
// loginEventID (PUT security/activeconnections/logout/{id}); the id is the
// one LoginEvents reports. ended is true when the portal says that session
// was active and is now closed, false when it was not active (already
// ended, unknown, or an error the portal swallows). The session's own user
// or any admin may call; otherwise 403 (EConfig).
//
// Ending a session is idempotent, so the call is retried like a GET. The
// one cost: when an attempt closed the session but its answer was lost, the
// retry answers false. So false may, rarely, mean "ended by this call's
// earlier attempt" — either way the session is over.
func (c *Client) EndSession(ctx context.Context, loginEventID int64) (ended bool, err error) {
	if loginEventID <= 0 || loginEventID > 1<<31-1 {
		return false, ipguard.Invalid("loginEventId", strconv.FormatInt(loginEventID, 10), "must be a login event id (1..2147483647)")
	}
	var got *bool
	err = c.do(ctx, call{
		op: "end session", method: http.MethodPut, path: pathLogout + strconv.FormatInt(loginEventID, 10),
		decode: func(raw json.RawMessage) error {
			if raw == nil {
				return errors.New("no true/false in the response")
			}
			return json.Unmarshal(raw, &got)
		},
	})
	if err != nil {
		return false, err
	}
	if got == nil {
		return false, nil
	}
	return *got, nil
}

// EndAllSessions ends every session (cookie and personal access token) of
// the user with userID (PUT security/activeconnections/logoutall/{userId}).
// It does not stop API keys. The user or any admin may call; otherwise 403
// (EConfig). Called on the key's own user, the portal signs the caller in
// again and writes a fresh successful login event from the caller's
// address. Idempotent, so retried like a GET.
func (c *Client) EndAllSessions(ctx context.Context, userID string) error {
	if strings.TrimSpace(userID) == "" || strings.ContainsAny(userID, "/?#") {
		return ipguard.Invalid("userId", userID, "must be a portal user id (a GUID)")
	}
	return c.do(ctx, call{
		op: "end all sessions", method: http.MethodPut, path: pathLogoutAll + url.PathEscape(userID),
	})
}
