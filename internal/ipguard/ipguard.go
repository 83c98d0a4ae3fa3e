// Package ipguard holds the domain types shared by onboarding and auditing:
// users and their allowlists, portal restrictions, login events, and the
// error codes every other package classifies its failures with. It knows
// nothing of AWS or HTTP.
package ipguard

import (
	"encoding/json"
	"strings"
	"time"
)

// User is one onboarded DocSpace user as stored in the source of truth.
// Entries are canonical allowlist entries (see package allowlist).
type User struct {
	ID        string
	Email     string
	Entries   []string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Restriction is one entry of the portal's IP allowlist as the portal stores
// it: a single address compared as an exact string, optionally for admins only.
type Restriction struct {
	IP       string `json:"ip"`
	ForAdmin bool   `json:"forAdmin"`
}

// LoginEvent is one row of the portal's login history.
// Date is an instant (the portal's UTC offset already applied).
// IP is the text the portal returned: IPv6 addresses arrive cut at the first colon.
// Raw is the event exactly as the API returned it.
type LoginEvent struct {
	ID       int64           `json:"id"`
	Date     time.Time       `json:"date"`
	User     string          `json:"user,omitempty"`
	UserID   string          `json:"userId,omitempty"`
	Login    string          `json:"login,omitempty"`
	Action   string          `json:"action,omitempty"`
	ActionID int             `json:"actionId"`
	IP       string          `json:"ip,omitempty"`
	Raw      json.RawMessage `json:"-"`
}

// CanonicalUserID trims a user id and lower-cases it when it is a GUID, the
// form the portal's login events carry, so that ids from the onboarding
// pipeline and from the portal meet.
func CanonicalUserID(id string) string {
	id = strings.TrimSpace(id)
	if isGUID(id) {
		return strings.ToLower(id)
	}
	return id
}

func isGUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, r := range s {
		switch i {
		case 8, 13, 18, 23:
			if r != '-' {
				return false
			}
		default:
			if !('0' <= r && r <= '9' || 'a' <= r && r <= 'f' || 'A' <= r && r <= 'F') {
				return false
			}
		}
	}
	return true
}
