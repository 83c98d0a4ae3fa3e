// Package ipguard holds the domain types shared by onboarding and auditing:
// users and their allowlists, portal restrictions, login events, and the
// error codes every other package classifies its failures with. It knows
// nothing of AWS or HTTP.
package ipguard

import (
	"encoding/json"
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
