package devportal

import (
	"encoding/json"
	"io"
	"net/http"
	"sort"
	"strconv"
	"time"
)

// Sessions and the calls that end them (docspace-api.md §9.1).
//
// Every login event with a successful-login action code starts a session
// whose key is the event's id. A session is active until logout/{id},
// logoutall/{userId} or the termination of its user ends it:
//
//	success login event (id N) ──► active ──logout/N──────────────► ended "logout"
//	                                  │ ──logoutall/{its user}──► ended "logoutall"
//	                                  └ ──user terminated───────► ended "terminated"

// successLoginActions are the MessageAction codes of successful logins; the
// same list as the audit package's (docspace-api.md §3.5).
var successLoginActions = map[int]bool{
	1000: true, 1001: true, 1007: true, 1010: true, 1011: true, 1012: true, 1015: true,
	1019: true, 1021: true, 1024: true, 1027: true, 1028: true, 1029: true,
}

// Session is the state of the session started by one successful login event.
type Session struct {
	EventID int64  `json:"eventId"`
	UserID  string `json:"userId"`
	Active  bool   `json:"active"`
	EndedBy string `json:"endedBy,omitempty"` // "logout", "logoutall" or "terminated"
}

// LogoutCall is one call of a logout route the portal answered (any status).
type LogoutCall struct {
	Route    string `json:"route"`  // "logout" or "logoutall"
	Target   string `json:"target"` // the login event id or the user id, as sent
	CallerID string `json:"callerId"`
	Status   int    `json:"status"`           // HTTP status answered
	Result   *bool  `json:"result,omitempty"` // logout's response; absent for logoutall and refusals
}

// Sessions returns every session (one per successful login event) in event id order.
func (p *Portal) Sessions() []Session {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []Session
	for _, ev := range p.events {
		if successLoginActions[ev.ActionID] {
			out = append(out, p.sessionLocked(ev))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].EventID < out[j].EventID })
	return out
}

// Session returns the session of login event id; ok is false when no
// successful login event has that id.
func (p *Portal) Session(id int64) (s Session, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ev, ok := p.eventLocked(id)
	if !ok || !successLoginActions[ev.ActionID] {
		return Session{}, false
	}
	return p.sessionLocked(ev), true
}

// Logouts returns the logout calls answered so far, in order.
func (p *Portal) Logouts() []LogoutCall {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]LogoutCall(nil), p.logouts...)
}

// ResetLogouts empties the list of logout calls.
func (p *Portal) ResetLogouts() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.logouts = nil
}

func (p *Portal) sessionLocked(ev LoginEvent) Session {
	by, ended := p.ended[ev.ID]
	return Session{EventID: ev.ID, UserID: canonicalGUID(ev.UserID), Active: !ended, EndedBy: by}
}

func (p *Portal) eventLocked(id int64) (LoginEvent, bool) {
	for _, ev := range p.events {
		if ev.ID == id {
			return ev, true
		}
	}
	return LoginEvent{}, false
}

// endUserSessionsLocked ends every active session of userID. Callers hold p.mu.
func (p *Portal) endUserSessionsLocked(userID, by string) {
	for _, ev := range p.events {
		if successLoginActions[ev.ActionID] && canonicalGUID(ev.UserID) == userID {
			if _, done := p.ended[ev.ID]; !done {
				p.ended[ev.ID] = by
			}
		}
	}
}

// putLogout serves PUT security/activeconnections/logout/{loginEventId}:
// the session's own user or any admin may call (403 otherwise, also for an
// unknown id unless the caller is an admin). The response is true when that
// session was active and is now closed, false when it was not active or is
// unknown. A closed session writes audit event 4035.
func (p *Portal) putLogout(w http.ResponseWriter, r *http.Request, c caller) {
	const frame = "ASC.Web.Api.Controllers.ConnectionsController.LogOutActiveConnection(Int32 loginEventId)"
	target := lastSegment(r)
	id, err := strconv.ParseInt(target, 10, 32)
	if err != nil {
		writeValidation(w, r, map[string][]string{"loginEventId": {"The value '" + target + "' is not valid."}})
		return
	}
	p.mu.Lock()
	ev, known := p.eventLocked(id)
	if c.role != roleAdmin && (!known || canonicalGUID(ev.UserID) != c.userID) {
		p.logouts = append(p.logouts, LogoutCall{Route: "logout", Target: target, CallerID: c.userID, Status: http.StatusForbidden})
		p.mu.Unlock()
		writeAccessDenied(w, frame)
		return
	}
	_, alreadyEnded := p.ended[id]
	closed := known && successLoginActions[ev.ActionID] && !alreadyEnded
	if closed {
		p.ended[id] = "logout"
		p.addAuditEventsLocked(AuditEvent{ActionID: 4035, UserID: c.userID, IP: c.addr, Target: []string{canonicalGUID(ev.UserID)}})
	}
	p.logouts = append(p.logouts, LogoutCall{Route: "logout", Target: target, CallerID: c.userID, Status: http.StatusOK, Result: &closed})
	p.mu.Unlock()
	writeSuccess(w, r, closed, 1)
}

// putLogoutAll serves PUT security/activeconnections/logoutall/{userId}:
// the user or any admin may call (403 otherwise). It ends every session of
// the user and answers without a response (count 0). Called on the key's own
// user, it then writes a fresh LoginSuccess (1000) event from the caller's
// address, which starts a new session, as the real portal signs the caller
// in again. It writes audit event 4036.
func (p *Portal) putLogoutAll(w http.ResponseWriter, r *http.Request, c caller) {
	const frame = "ASC.Web.Api.Controllers.ConnectionsController.LogOutAllActiveConnectionsForUserAsync(Guid userId)"
	target := lastSegment(r)
	userID := canonicalGUID(target)
	if userID == "" {
		writeValidation(w, r, map[string][]string{"userId": {"The value '" + target + "' is not valid."}})
		return
	}
	p.mu.Lock()
	if c.role != roleAdmin && userID != c.userID {
		p.logouts = append(p.logouts, LogoutCall{Route: "logoutall", Target: target, CallerID: c.userID, Status: http.StatusForbidden})
		p.mu.Unlock()
		writeAccessDenied(w, frame)
		return
	}
	p.endUserSessionsLocked(userID, "logoutall")
	p.addAuditEventsLocked(AuditEvent{ActionID: 4036, UserID: c.userID, IP: c.addr, Target: []string{userID}})
	if userID == c.userID {
		ev := LoginEvent{UserID: userID, ActionID: 1000, IP: c.addr, Page: r.URL.Path}
		if u, ok := p.users[userID]; ok {
			ev.User, ev.Login = u.DisplayName, u.Email
		}
		p.addLoginEventsLocked(ev)
	}
	p.logouts = append(p.logouts, LogoutCall{Route: "logoutall", Target: target, CallerID: c.userID, Status: http.StatusOK})
	p.mu.Unlock()
	writeSuccess(w, r, nil, 0)
}

// SetClockSkew sets how far the portal's clock is ahead (positive) or
// behind (negative) the real one: it moves the Date header of every answer,
// expiry checks of API keys, and the dates of events the portal writes
// itself (allowlist changes, logouts, lastUsed, events added without a date).
func (p *Portal) SetClockSkew(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.skew = d
}

// now is the portal's clock.
func (p *Portal) now() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.nowLocked()
}

func (p *Portal) nowLocked() time.Time { return time.Now().Add(p.skew) }

// decodeJSON decodes one JSON value from r into v.
func decodeJSON(r io.Reader, v any) error {
	dec := json.NewDecoder(r)
	return dec.Decode(v)
}
