package config

import (
	"slices"
	"strings"
	"time"
)

// Behaviour is the behaviour detection's configuration (issue #17).
type Behaviour struct {
	// Rules is BEHAVIOUR_RULES: a comma-separated list of BehaviourRules
	// (default all of them; "none" switches behaviour detection off).
	Rules []string
	// MinSeverity is BEHAVIOUR_MIN_SEVERITY (default medium): behaviour
	// findings below it are counted and logged (and go to the digest) but
	// sent in no message.
	MinSeverity string
	// Enforce is ENFORCE_BEHAVIOUR: the rules whose findings enforcement
	// acts on (default none). password_spray cannot be named: failed logins
	// have no session.
	Enforce []string
	// MinLogins is BASELINE_MIN_LOGINS (default 5) and MinDays
	// BASELINE_MIN_DAYS (default 14): a user's baseline judges new countries
	// and devices once it has either.
	MinLogins int
	MinDays   int
	// SprayMinAccounts is SPRAY_MIN_ACCOUNTS (default 10): distinct accounts
	// with failed logins within SprayWindow that make a password spray.
	SprayMinAccounts int
	// SprayWindow is SPRAY_WINDOW in minutes (default 30): the sliding
	// window of password_spray and failed_login_burst (not the run's
	// window; WHERE §9).
	SprayWindow time.Duration
	// GuessWindow is GUESS_WINDOW in minutes (default 15): failed logins
	// from an address make a later successful login from it
	// password_guess_succeeded only within this long before it, whatever
	// the run's window (WHERE §9).
	GuessWindow time.Duration
	// AlertMode is ALERT_MODE: AlertGrouped (default) or AlertEvery. It
	// says how people are told, never what is found (WHERE §1): every
	// switches episodes, familiar-place demotion and the unknown-user
	// digest off, and nothing else.
	AlertMode string
	// EpisodeHours is EPISODE_HOURS (default 24): further misses of the same
	// user from the same network or country within it update one episode
	// instead of sending a message of their own (grouped mode only).
	EpisodeHours int
}

// The values of ALERT_MODE.
const (
	AlertGrouped = "grouped"
	AlertEvery   = "every"
)

// Grouped reports whether messages are grouped (ALERT_MODE=grouped).
func (b Behaviour) Grouped() bool { return b.AlertMode != AlertEvery }

// BehaviourRules are the values of BEHAVIOUR_RULES and ENFORCE_BEHAVIOUR
// (the finding kinds of package behaviour).
var BehaviourRules = []string{"impossible_travel", "new_country", "new_device", "password_spray"}

// Severities are the values of BEHAVIOUR_MIN_SEVERITY, lowest first.
var Severities = []string{"low", "medium", "high", "critical"}

// On reports whether behaviour detection has any rule on.
func (b Behaviour) On() bool { return len(b.Rules) > 0 }

func (r *reader) behaviour() Behaviour {
	var b Behaviour
	b.Rules = r.ruleList("BEHAVIOUR_RULES", BehaviourRules)
	b.MinSeverity = strings.ToLower(strings.TrimSpace(r.getenv("BEHAVIOUR_MIN_SEVERITY")))
	if b.MinSeverity == "" {
		b.MinSeverity = "medium"
	} else if !slices.Contains(Severities, b.MinSeverity) {
		r.fail("BEHAVIOUR_MIN_SEVERITY", b.MinSeverity, "must be low, medium, high or critical")
	}
	b.Enforce = r.ruleList("ENFORCE_BEHAVIOUR", nil)
	for _, e := range b.Enforce {
		switch {
		case e == "password_spray":
			r.fail("ENFORCE_BEHAVIOUR", e, "cannot name password_spray: failed logins have no session to end")
		case !slices.Contains(b.Rules, e):
			r.fail("ENFORCE_BEHAVIOUR", e, "names a rule that BEHAVIOUR_RULES does not switch on")
		}
	}
	b.MinLogins = r.integer("BASELINE_MIN_LOGINS", 5, 1, 100_000)
	b.MinDays = r.integer("BASELINE_MIN_DAYS", 14, 1, 180)
	b.SprayMinAccounts = r.integer("SPRAY_MIN_ACCOUNTS", 10, 2, 100_000)
	b.SprayWindow = time.Duration(r.integer("SPRAY_WINDOW", 30, 1, 1440)) * time.Minute
	b.GuessWindow = time.Duration(r.integer("GUESS_WINDOW", 15, 1, 1440)) * time.Minute
	switch m := strings.ToLower(strings.TrimSpace(r.getenv("ALERT_MODE"))); m {
	case "", AlertGrouped:
		b.AlertMode = AlertGrouped
	case AlertEvery:
		b.AlertMode = AlertEvery
	default:
		r.fail("ALERT_MODE", m, "must be grouped or every")
		b.AlertMode = AlertGrouped
	}
	b.EpisodeHours = r.integer("EPISODE_HOURS", 24, 1, 720)
	return b
}

// ruleList reads a comma-separated list of behaviour rules; empty gives def,
// "none" gives no rule. Duplicates are kept once.
func (r *reader) ruleList(name string, def []string) []string {
	v := strings.ToLower(strings.TrimSpace(r.getenv(name)))
	switch v {
	case "":
		return append([]string(nil), def...)
	case "none":
		return []string{}
	}
	out := []string{}
	for _, part := range strings.Split(v, ",") {
		part = strings.TrimSpace(part)
		if part == "" || slices.Contains(out, part) {
			continue
		}
		if !slices.Contains(BehaviourRules, part) {
			r.fail(name, part, "must list rules among %s (comma-separated), or none", strings.Join(BehaviourRules, ", "))
			continue
		}
		out = append(out, part)
	}
	return out
}
