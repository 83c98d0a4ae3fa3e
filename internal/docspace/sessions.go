package docspace

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

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
// The call is sent once: it is retried only when the portal turned it away
// before acting (429, 503). When its answer is lost after it may have
// reached the portal (no answer, 500, 502, 504), the error is an *Error
// with MaybeApplied set: a resend would answer false for a session this
// call ended, so the caller confirms from the audit trail instead (see
// SessionsEndedBy).
func (c *Client) EndSession(ctx context.Context, loginEventID int64) (ended bool, err error) {
	if loginEventID <= 0 || loginEventID > 1<<31-1 {
		return false, ipguard.Invalid("loginEventId", strconv.FormatInt(loginEventID, 10), "must be a login event id (1..2147483647)")
	}
	var got *bool
	err = c.do(ctx, call{
		op: "end session", method: http.MethodPut, path: pathLogout + strconv.FormatInt(loginEventID, 10), once: true,
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

// ActionSessionEnded is the audit-trail code written when one session is
// ended (UserLogoutActiveConnection).
const ActionSessionEnded = 4035

// SessionsEndedBy counts the "session ended" events (4035) by userID in
// the audit trail dated at or after since (truncated to the second). The
// real portal's event names who ended a session, not which one. It pages
// (the trail filters before paging) and counts each event id once, since
// rows shift down while new ones arrive; more than maxSessionsEndedPages
// pages is an error rather than a guess.
func (c *Client) SessionsEndedBy(ctx context.Context, userID string, since time.Time) (int, error) {
	seen := map[int64]bool{}
	for page := 0; page < maxSessionsEndedPages; page++ {
		evs, err := c.AuditEvents(ctx, ActionSessionEnded, since, page*100, 100)
		if err != nil {
			return 0, err
		}
		for _, ev := range evs {
			if ev.ActionID == ActionSessionEnded && ipguard.CanonicalUserID(ev.UserID) == ipguard.CanonicalUserID(userID) &&
				!ev.Date.Before(since.Truncate(time.Second)) {
				seen[ev.ID] = true
			}
		}
		if len(evs) < 100 {
			return len(seen), nil
		}
	}
	return 0, fmt.Errorf("docspace: more than %d pages of ended sessions since %s in the audit trail; not counted", maxSessionsEndedPages, since.UTC().Format(time.RFC3339))
}

// maxSessionsEndedPages bounds SessionsEndedBy's reads.
const maxSessionsEndedPages = 20
