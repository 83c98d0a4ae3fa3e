package devportal

import (
	"net/http"
	"strings"
)

// role is what an API key authenticates as.
type role int

const (
	roleNone  role = iota // unknown or missing key: 401
	roleUser              // a user without EditPortalSettings: 403
	roleAdmin             // owner or DocSpace admin
)

// authenticate maps "Authorization: Bearer <key>" to a role. The scheme name
// is matched case-insensitively; anything else is roleNone.
func (p *Portal) authenticate(r *http.Request) role {
	h := r.Header.Get("Authorization")
	const scheme = "bearer "
	if len(h) <= len(scheme) || !strings.EqualFold(h[:len(scheme)], scheme) {
		return roleNone
	}
	key := strings.TrimSpace(h[len(scheme):])
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.keys[key]
}

// writeUnauthorized is the authentication challenge: 401 with an empty body,
// not the JSON envelope.
func writeUnauthorized(w http.ResponseWriter) {
	w.WriteHeader(http.StatusUnauthorized)
}

// demandEditPortalSettings is PermissionContext.DemandPermissionsAsync(
// EditPortalSettings): it answers 403 "Access denied" and returns false
// unless the caller is an admin. Actions call it after model binding, so a
// non-admin with invalid parameters gets the 400 first, as on the real server.
func demandEditPortalSettings(w http.ResponseWriter, rl role, action string) bool {
	if rl == roleAdmin {
		return true
	}
	writeError(w, http.StatusForbidden, "Access denied",
		"ASC.Common.Security.Authorizing.AuthorizingException",
		"   at ASC.Core.Security.PermissionContext.DemandPermissionsAsync(IAction[] actions)\n   at "+action,
		hresultException)
	return false
}
