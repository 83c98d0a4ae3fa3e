package audit

import "context"

// Responder acts on a run's findings (ending the offending sessions) before
// they are alerted, so that the alert says what was done. See package enforce.
type Responder interface {
	// Begin starts the responses of one run (backfill: a backfill run);
	// whatever the responder counts per run (its circuit breaker, one
	// logoutall per user) spans all the pieces of that run.
	Begin(backfill bool) RunResponder
}

// RunResponder is the responses of one run.
type RunResponder interface {
	// Respond is called once per piece of the run (see Settings.PieceEvents;
	// a run of a usual size is one piece), after the piece's findings were
	// evaluated and the already-alerted ones dropped, and before any of
	// them is published. It sets Response on each finding it has an answer
	// for, in place, and returns notices for the alert (e.g. that
	// enforcement was suspended, and why).
	//
	// It never fails the run and never blocks the alert: its own failures
	// become outcomes of the findings, and it returns well before ctx ends.
	Respond(ctx context.Context, fs []Finding) []string
}

// Outcomes of a Response.
const (
	// OutcomeEnded: the portal said the session was active and is now closed
	// (for end-all-sessions: the user's sessions were ended).
	OutcomeEnded = "ended"
	// OutcomeNotActive: the session had already ended.
	OutcomeNotActive = "not_active"
	// OutcomeRefused: the portal refused the call (HTTP 403).
	OutcomeRefused = "refused"
	// OutcomeFailed: the call failed; Error says how.
	OutcomeFailed = "failed"
	// OutcomeWouldEnd: report mode; nothing was called.
	OutcomeWouldEnd = "would_end"
	// OutcomeSkipped: a guard stopped the action; Guard names it.
	OutcomeSkipped = "skipped"
	// OutcomeDisabled is an escalation's outcome: the user was disabled.
	OutcomeDisabled = "disabled"
)

// Guards that make a Response skipped.
const (
	GuardBackfill       = "backfill"        // a backfill never enforces
	GuardAPIKeyUser     = "api_key_user"    // the user the API key acts as
	GuardOwner          = "owner"           // the portal owner
	GuardCircuitBreaker = "circuit_breaker" // too many actions in one run
	GuardClaimedEarlier = "claimed_earlier" // an earlier run claimed the event and recorded no outcome
)

// Outcomes lists the outcomes of a Response, in the order results count them.
var Outcomes = []string{OutcomeEnded, OutcomeNotActive, OutcomeRefused, OutcomeFailed, OutcomeWouldEnd, OutcomeSkipped}

// Response is what was done about a finding's login.
type Response struct {
	Outcome string `json:"outcome"`
	// Action is what was (or would have been) done: end-session or end-all-sessions.
	Action string `json:"action,omitempty"`
	// At is when the portal answered (RFC3339, UTC); empty for would_end and skipped.
	At string `json:"at,omitempty"`
	// Guard names what stopped a skipped action: backfill, api_key_user,
	// owner, circuit_breaker, claimed_earlier.
	Guard string `json:"guard,omitempty"`
	// Error is the failure behind a refused or failed outcome.
	Error string `json:"error,omitempty"`
	// Recorded says the outcome was read back from the record of an
	// earlier try (a retried run): this run did not act, and it is not
	// counted in sessionEnded.
	Recorded bool `json:"recorded,omitempty"`
	// Escalation is set when this violation made the user reach
	// ENFORCEMENT_DISABLE_AFTER within 24 hours. On a Recorded response it
	// is the escalation of the earlier try that acted (told again, not
	// done again, and not counted in usersDisabled), or, when that try's
	// disable failed, this run's new try (not counted in usersDisabled
	// either).
	Escalation *Escalation `json:"escalation,omitempty"`
}

// Escalation is the outcome of disabling a user: disabled, refused or failed.
type Escalation struct {
	Outcome    string `json:"outcome"`
	Violations int    `json:"violations"` // enforced violations of the user within 24 hours
	At         string `json:"at,omitempty"`
	Error      string `json:"error,omitempty"`
}
