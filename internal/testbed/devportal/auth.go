package devportal

import (
	"net/http"
	"strings"
	"time"
)

// role is what an API key authenticates as.
type role int

const (
	roleNone  role = iota // unknown, inactive or expired key, or its user cannot sign in: 401
	roleUser              // a user without EditPortalSettings: 403
	roleAdmin             // owner or DocSpace admin
)

// caller is who an authenticated request acts as: the key's creator.
type caller struct {
	role   role
	userID string   // the key's createBy
	keyID  string   // the key's id
	scopes []string // the key's permissions; empty means full access
	addr   string   // the request's client address (see clientAddr)
}

// authenticate maps "Authorization: Bearer <key>" to the key's creator, the
// way ApiKeyBearerAuthHandler does: the key must be known, active and not
// past its expiry (on the portal's clock), and its creator must exist and not
// be terminated; otherwise the request is not authenticated (roleNone, 401).
// The role follows the creator's current rights, so a demoted creator's key
// gets 403 on admin routes. Each successful use stamps the key's lastUsed.
func (p *Portal) authenticate(r *http.Request) caller {
	h := r.Header.Get("Authorization")
	const scheme = "bearer "
	if len(h) <= len(scheme) || !strings.EqualFold(h[:len(scheme)], scheme) {
		return caller{}
	}
	secret := strings.TrimSpace(h[len(scheme):])
	p.mu.Lock()
	defer p.mu.Unlock()
	k, ok := p.keys[secret]
	if !ok || !k.IsActive {
		return caller{}
	}
	now := p.nowLocked()
	if k.ExpiresAt != nil && !now.Before(*k.ExpiresAt) {
		return caller{}
	}
	u, ok := p.users[k.CreateBy]
	if !ok || u.Deleted || u.Status == StatusTerminated {
		return caller{}
	}
	t := now.Truncate(time.Second)
	k.LastUsed = &t
	c := caller{role: roleUser, userID: u.ID, keyID: k.ID, scopes: append([]string(nil), k.Permissions...), addr: clientAddr(r)}
	if u.IsOwner || u.IsAdmin {
		c.role = roleAdmin
	}
	return c
}

// scopeAllows is the API-key scope check (AuthorizationExtension): a key
// with no permissions or with "*" has full access; otherwise a GET needs
// "*:read" or "*:write" and any other method "*:write". The route
// keys/@self needs no scope at all.
func scopeAllows(scopes []string, method, route string) bool {
	if len(scopes) == 0 || route == "/keys/@self" {
		return true
	}
	for _, s := range scopes {
		switch strings.ToLower(s) {
		case "*", "*:write":
			return true
		case "*:read":
			if method == http.MethodGet {
				return true
			}
		}
	}
	return false
}

// clientAddr is the address the portal sees for a request: the peer's IP,
// or, when the peer is loopback (the default known proxy), the last
// X-Forwarded-For value, as ASP.NET's forwarded-headers middleware does with
// ForwardLimit 1.
func clientAddr(r *http.Request) string {
	host := r.RemoteAddr
	if i := strings.LastIndexByte(host, ':'); i >= 0 {
		host = host[:i]
	}
	host = strings.Trim(host, "[]")
	if host == "127.0.0.1" || host == "::1" {
		if xff := r.Header.Values("X-Forwarded-For"); len(xff) > 0 {
			parts := strings.Split(xff[len(xff)-1], ",")
			if v := strings.TrimSpace(parts[len(parts)-1]); v != "" {
				return v
			}
		}
	}
	return host
}

// writeUnauthorized is the authentication challenge: 401 with an empty body,
// not the JSON envelope.
func writeUnauthorized(w http.ResponseWriter) {
	w.WriteHeader(http.StatusUnauthorized)
}

// writeAccessDenied is the 403 an AuthorizingException or SecurityException
// becomes: the error envelope with "Access denied".
func writeAccessDenied(w http.ResponseWriter, action string) {
	writeError(w, http.StatusForbidden, "Access denied",
		"ASC.Common.Security.Authorizing.AuthorizingException",
		"   at ASC.Core.Security.PermissionContext.DemandPermissionsAsync(IAction[] actions)\n   at "+action,
		hresultException)
}

// demandEditPortalSettings is PermissionContext.DemandPermissionsAsync(
// EditPortalSettings): it answers 403 "Access denied" and returns false
// unless the caller is an admin. Actions call it after model binding, so a
// non-admin with invalid parameters gets the 400 first, as on the real server.
func demandEditPortalSettings(w http.ResponseWriter, rl role, action string) bool {
	if rl == roleAdmin {
		return true
	}
	writeAccessDenied(w, action)
	return false
}
