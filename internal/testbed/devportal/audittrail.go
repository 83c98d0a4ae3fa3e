package devportal

import (
	"net/http"
	"slices"
	"strings"
	"time"
)

// Behaviour of api/2.0/security/audit/events/{filter,last}, the audit trail
// of configuration changes (docspace-api.md §9.4).

// AuditEvent is one row of the portal's audit trail. Like login events, IP
// is stored in full and cut at the first ':' when written out, and Date is
// stored with second precision. Action overrides the English text of
// ActionID when set.
type AuditEvent struct {
	ID       int64     `json:"id"`
	Date     time.Time `json:"date"`
	UserID   string    `json:"userId"`
	User     string    `json:"user"`
	ActionID int       `json:"actionId"`
	Action   string    `json:"action"`
	IP       string    `json:"ip"`
	Country  string    `json:"country"`
	City     string    `json:"city"`
	Browser  string    `json:"browser"`
	Platform string    `json:"platform"`
	Page     string    `json:"page"`
	Target   []string  `json:"target"`
}

// auditActions are the audit-trail MessageAction codes the portal knows, with
// their enum names and English texts.
var auditActions = map[int]struct{ name, text string }{
	4018: {"UserDeleted", "User Deleted"},
	4020: {"UsersUpdatedStatus", "Users Updated Status"},
	4022: {"UsersDeleted", "Users Deleted"},
	4034: {"UserLogoutActiveConnections", "User Logout Active Connections"},
	4035: {"UserLogoutActiveConnection", "User Logout Active Connection"},
	4036: {"UserLogoutActiveConnectionsForUser", "User Logout Active Connections For User"},
	6036: {"TwoFactorAuthenticationDisabled", "Two-factor Authentication Disabled"},
	6037: {"TwoFactorAuthenticationEnabledBySms", "Two-factor Authentication Enabled by SMS"},
	6038: {"TwoFactorAuthenticationEnabledByTfaApp", "Two-factor Authentication Enabled by App"},
	6058: {"ApiKeyCreated", "API Key Created"},
	6059: {"ApiKeyUpdated", "API Key Updated"},
	6060: {"ApiKeyDeleted", "API Key Deleted"},
	6094: {"IPRestrictionsSettingsUpdated", "IP Restrictions Settings Updated"},
	6095: {"LoginSettingsUpdated", "Login Settings Updated"},
}

// AddAuditEvents stores audit-trail events and returns their ids in argument
// order, with the same id and date rules as AddLoginEvents (own id
// sequence). A user name left empty is filled from the portal's users.
func (p *Portal) AddAuditEvents(evs ...AuditEvent) []int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.addAuditEventsLocked(evs...)
}

func (p *Portal) addAuditEventsLocked(evs ...AuditEvent) []int64 {
	ids := make([]int64, len(evs))
	for i, ev := range evs {
		p.stampLocked(&p.nextAuditID, &ev.ID, &ev.Date)
		if ev.User == "" {
			if u, ok := p.users[canonicalGUID(ev.UserID)]; ok {
				ev.User = u.DisplayName
			}
		}
		ev.Target = append([]string(nil), ev.Target...)
		p.audit = append(p.audit, ev)
		ids[i] = ev.ID
	}
	return ids
}

// AuditEvents returns the stored audit-trail events in insertion order.
func (p *Portal) AuditEvents() []AuditEvent {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]AuditEvent, len(p.audit))
	for i, ev := range p.audit {
		out[i] = ev
		out[i].Target = append([]string(nil), ev.Target...)
	}
	return out
}

// auditEventDto is AuditEventDto, reduced to what callers read; empty
// optional fields are omitted.
type auditEventDto struct {
	ID       int64  `json:"id"`
	Date     string `json:"date"`
	User     string `json:"user"`
	UserID   string `json:"userId"`
	Action   string `json:"action"`
	ActionID int    `json:"actionId"`
	clientDto
	Target []string `json:"target,omitempty"`
}

func toAuditDto(ev AuditEvent, tz time.Duration) auditEventDto {
	user := ev.User
	if user == "" {
		user = "Unknown"
	}
	action := ev.Action
	if action == "" {
		if a, ok := auditActions[ev.ActionID]; ok {
			action = a.text
		} else {
			action = actionText(ev.ActionID)
		}
	}
	return auditEventDto{ID: ev.ID, Date: formatAPIDateTime(ev.Date, tz), User: user, UserID: userIDOrEmpty(ev.UserID),
		Action: action, ActionID: ev.ActionID, clientDto: clientOf(ev.IP, ev.Country, ev.City, ev.Browser, ev.Platform, ev.Page),
		Target: ev.Target}
}

// sortedAuditLocked returns the audit trail newest first (equal dates: higher id first).
func (p *Portal) sortedAuditLocked() []AuditEvent {
	evs := append([]AuditEvent(nil), p.audit...)
	newestFirst(evs, func(ev AuditEvent) (time.Time, int64) { return ev.Date, ev.ID })
	return evs
}

// getLastAuditEvents serves GET events/last: the 20 newest audit events.
func (p *Portal) getLastAuditEvents(w http.ResponseWriter, r *http.Request, c caller) {
	if !demandEditPortalSettings(w, c.role, "ASC.Web.Api.Controllers.SecurityController.GetLastAuditEventsAsync()") {
		return
	}
	p.writeAudit(w, r, func(evs []AuditEvent) []AuditEvent { return evs[:min(lastEventsCount, len(evs))] })
}

// getAuditEventsByFilter serves GET events/filter. Parameters bind like
// login/filter (userId, action, from, to, count, startIndex; 400 validation
// envelope), then admin is demanded (403). Unlike login/filter the filters
// apply BEFORE the page window, as AuditEventsRepository does. With the
// plan fallback on it answers like events/last.
func (p *Portal) getAuditEventsByFilter(w http.ResponseWriter, r *http.Request, c caller) {
	f, ok := bindFilterAsAdmin(w, r, c, "ASC.Web.Api.Controllers.SecurityController.GetAuditEventsByFilterAsync(AuditEventRequestDto inDto)")
	if !ok {
		return
	}
	if p.fallbackOn() {
		p.writeAudit(w, r, func(evs []AuditEvent) []AuditEvent { return evs[:min(lastEventsCount, len(evs))] })
		return
	}
	p.writeAudit(w, r, func(evs []AuditEvent) []AuditEvent {
		kept := evs[:0:0]
		for _, ev := range evs {
			if f.keeps(ev.UserID, ev.ActionID, ev.Date) {
				kept = append(kept, ev)
			}
		}
		if f.startIndex > 0 {
			kept = kept[min(f.startIndex, len(kept)):]
		}
		return kept[:min(f.count, len(kept))]
	})
}

// writeAudit answers with pick applied to the audit trail, newest first
// (without the events not written yet: SetAuditLag).
func (p *Portal) writeAudit(w http.ResponseWriter, r *http.Request, pick func([]AuditEvent) []AuditEvent) {
	p.mu.Lock()
	evs := p.sortedAuditLocked()
	if p.auditLag > 0 {
		now := p.nowLocked()
		evs = slices.DeleteFunc(evs, func(ev AuditEvent) bool { return ev.ActionID >= 2000 && now.Before(ev.Date.Add(p.auditLag)) })
	}
	evs, tz := pick(evs), p.tz
	p.mu.Unlock()
	writeRows(w, r, evs, tz, toAuditDto)
}

// routeAvailable reports whether route is served: keys/@self and the audit
// trail can be switched off to play a portal older than v3.1.1 / v3.7.1.
func (p *Portal) routeAvailable(route string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case route == "/keys/@self":
		return !p.noKeysSelf
	case strings.HasPrefix(route, "/security/audit/events/"):
		return !p.noAuditTrail
	}
	return true
}

// SetKeysSelfAvailable switches GET keys/@self on (the default) or off;
// off, it answers 404 like a portal older than v3.1.1.
func (p *Portal) SetKeysSelfAvailable(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.noKeysSelf = !on
}

// SetAuditTrailAvailable switches GET security/audit/events/{filter,last}
// on (the default) or off; off, they answer 404 like an older portal.
func (p *Portal) SetAuditTrailAvailable(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.noAuditTrail = !on
}

// SetAuditLag makes the audit trail show an event of action 2000 and up
// (an allowlist save is 6094) only lag after its date, by the portal's
// clock (SetClockSkew moves it), as a real DocSpace does: it holds such
// events in a message cache and writes them in batches, up to about a
// minute later (MessagesRepository, messaging:CacheTimeFromMinutes). Zero
// (the default): every event shows at once. Opt-in, for the tests of what
// the tool does about that lag.
func (p *Portal) SetAuditLag(lag time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.auditLag = max(lag, 0)
}
