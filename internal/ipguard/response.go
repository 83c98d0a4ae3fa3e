package ipguard

import "time"

// ResponseRecord is the exactly-once record of one enforcement action: ending
// the session of a login event, or disabling a user. It is written (claimed)
// before the action and settled with the outcome after it, so that no crash,
// retry or concurrent run acts on the same thing twice.
type ResponseRecord struct {
	// Key names what is acted on, e.g. "event#90211" or "disable#<userId>".
	Key string
	// Token is the random token of the run that claimed the record.
	Token  string
	UserID string
	// Action is what the claiming run set out to do (end-session,
	// end-all-sessions, disable).
	Action string
	// Outcome is empty while the action is only intended (claimed, not
	// settled); then what happened (ended, not_active, refused, failed, disabled).
	Outcome string
	// Detail is the error behind a refused or failed outcome.
	Detail    string
	ClaimedAt time.Time
	SettledAt time.Time // zero until settled
	// ExpiresAt is when the record stops counting (and TTL may delete it).
	ExpiresAt time.Time
}

// Settled reports whether the record holds an outcome.
func (r ResponseRecord) Settled() bool { return r.Outcome != "" }
