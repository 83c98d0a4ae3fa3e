// Package status answers the audit function's {"action": "status"} without
// auditing: how far the audit has read and its lag, the last run's outcome,
// the API key's name, postfix and expiry, the portal allowlist's state, the
// number of users stored, the configured schedule and who receives the alerts
// (the alert topic's confirmed subscriptions).
//
// Each part is read on its own: a part that cannot be read is left out and
// named in Warnings, so the status answers whatever else it can.
package status

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"ipguard/internal/humantext"
	"ipguard/internal/ipguard"
	"ipguard/internal/keywatch"
)

// Store is the source of truth's side of the status.
type Store interface {
	// Checkpoint is how far the audit has safely read; ok is false before the first run.
	Checkpoint(ctx context.Context) (until time.Time, ok bool, err error)
	// LastRun decodes the last run's record into v; ok is false before the first run.
	LastRun(ctx context.Context, v any) (ok bool, err error)
	// CountUsers is the number of users stored.
	CountUsers(ctx context.Context) (int, error)
	// LastKey returns the key's description the last audit run saved
	// (keywatch's SaveKey); ok is false if none.
	LastKey(ctx context.Context) (k keywatch.Key, seen time.Time, ok bool, err error)
}

// Portal is the portal's side of the status.
type Portal interface {
	// IPRestrictions returns the portal's list. An answer without a list
	// (or with one of the wrong shape) is an error, never an empty list.
	IPRestrictions(ctx context.Context) ([]ipguard.Restriction, error)
	// IPRestrictionsEnabled reports whether restrictions are on.
	IPRestrictionsEnabled(ctx context.Context) (bool, error)
}

// Delivery is who receives the alerts.
type Delivery interface {
	// Subscribers counts the alert topic's confirmed subscriptions and
	// those waiting for confirmation.
	Subscribers(ctx context.Context) (confirmed, pending int, err error)
}

// DeliveryState is the alert topic's subscriptions.
type DeliveryState struct {
	ConfirmedSubscribers int `json:"confirmedSubscribers"`
	PendingSubscribers   int `json:"pendingSubscribers"`
}

// NoSubscriber is the warning of a status (and a run) whose alert topic has
// no confirmed subscription: alerts reach nobody.
const NoSubscriber = "no confirmed subscriber on the alert topic: alerts reach nobody; subscribe an address (e.g. the template parameter AlertEmail) and confirm the e-mail from AWS Notifications, then send {\"action\": \"test-alert\"}"

// SubscriberWarnings are the warnings for confirmed and pending subscriptions.
func SubscriberWarnings(confirmed, pending int) []string {
	var w []string
	if confirmed == 0 {
		w = append(w, NoSubscriber)
	}
	if pending > 0 {
		w = append(w, fmt.Sprintf("%d subscription(s) of the alert topic wait for confirmation: open the link in the e-mail from AWS Notifications (it expires after 3 days)", pending))
	}
	return w
}

// LastRun is the record of one audit run, written after every run.
type LastRun struct {
	Outcome  string `json:"outcome"` // succeeded, failed or skipped
	At       string `json:"at"`      // when it ended, RFC3339
	From     string `json:"from,omitempty"`
	To       string `json:"to,omitempty"`
	Backfill bool   `json:"backfill,omitempty"`
	// Complete is true when the run finished its window (see audit.Result);
	// RunsWithoutProgress counts the runs in a row, this one included, that
	// did not move the audit's cursor while logins waited below it.
	Complete            bool   `json:"complete"`
	RunsWithoutProgress int    `json:"runsWithoutProgress,omitempty"`
	EventsScanned       int    `json:"eventsScanned"`
	AlertsPublished     int    `json:"alertsPublished"`
	ErrorType           string `json:"errorType,omitempty"`
	Error               string `json:"error,omitempty"`
	DurationMs          int64  `json:"durationMs"`

	// Behaviour counts the run's behaviour findings per kind (messaged or
	// not), and NoGeoIP says the portal gave no country for any login of
	// whole address the audit has seen (place rules cannot fire).
	Behaviour BehaviourCounts `json:"behaviour,omitzero"`
	NoGeoIP   bool            `json:"noGeoIP,omitempty"`
}

// BehaviourCounts are a run's behaviour findings per rule (a comparable
// value, so that a LastRun is one).
type BehaviourCounts struct {
	ImpossibleTravel int `json:"impossible_travel"`
	NewCountry       int `json:"new_country"`
	NewDevice        int `json:"new_device"`
	PasswordSpray    int `json:"password_spray"`
}

// Key is the API key as the status shows it.
type Key struct {
	Name      string `json:"name"`
	Postfix   string `json:"postfix"`
	ExpiresAt string `json:"expiresAt"` // "never" when it does not expire
	DaysLeft  *int   `json:"daysLeft,omitempty"`
	IsActive  bool   `json:"isActive"`
	// Seen says where this comes from: "portal" (asked now) or the time
	// the last audit run saw it.
	Seen string `json:"seen"`
}

// PortalState is the portal allowlist's state.
type PortalState struct {
	RestrictionsEnabled bool `json:"restrictionsEnabled"`
	Entries             int  `json:"entries"`
}

// Report is the status; it is the Lambda's JSON response.
type Report struct {
	Action      string       `json:"action"` // always "status"
	Now         string       `json:"now"`
	ReadUntil   string       `json:"readUntil,omitempty"` // the checkpoint
	LagSeconds  *float64     `json:"lagSeconds,omitempty"`
	LastRun     *LastRun     `json:"lastRun,omitempty"`
	APIKey      *Key         `json:"apiKey,omitempty"`
	Portal      *PortalState `json:"portal,omitempty"`
	UsersStored *int         `json:"usersStored,omitempty"`
	Schedule    string       `json:"schedule"` // "" when the function is not scheduled
	// Delivery is the alert topic's subscriptions; absent when they could
	// not be listed (the reason is in Warnings).
	Delivery *DeliveryState `json:"delivery,omitempty"`
	Warnings []string       `json:"warnings"`
}

// NoGeoIPWarning is the status's one line when the portal has no GeoIP data.
const NoGeoIPWarning = "the portal gives no GeoIP data (no country on any login from a whole address): new_country and impossible_travel cannot fire; install the GeoIP table on the DocSpace server"

// maxWarningBytes bounds one warning of the report (humantext.Line).
const maxWarningBytes = 1000

// IsRequest reports whether payload asks for the status: a JSON object whose
// "action" is "status".
func IsRequest(payload []byte) bool {
	var v struct {
		Action *string `json:"action"`
	}
	return json.Unmarshal(payload, &v) == nil && v.Action != nil && strings.EqualFold(strings.TrimSpace(*v.Action), "status")
}

// DefaultPortalBudget is how long a Report waits for the portal in all
// (PortalBudget): well inside the 60 s `aws lambda invoke` waits for an
// answer by default, so that a portal that does not answer is named in the
// warnings instead of the status timing out.
const DefaultPortalBudget = 25 * time.Second

// Service assembles a Report. Store, Portal and Keys are required.
type Service struct {
	Store    Store
	Portal   Portal
	Keys     keywatch.Source
	Schedule string
	// Delivery, optional, counts who receives the alerts.
	Delivery Delivery
	Now      func() time.Time
	// PortalBudget bounds the portal's parts (the key, the allowlist)
	// together; 0 means DefaultPortalBudget.
	PortalBudget time.Duration
}

// Report reads every part; it never fails (see the package comment).
func (s *Service) Report(ctx context.Context) Report {
	now := time.Now().UTC()
	if s.Now != nil {
		now = s.Now().UTC()
	}
	r := Report{Action: "status", Now: now.Format(time.RFC3339), Schedule: s.Schedule, Warnings: []string{}}
	warn := func(what string, err error) {
		r.Warnings = append(r.Warnings, humantext.Line(what+": "+err.Error(), maxWarningBytes))
	}

	if cp, ok, err := s.Store.Checkpoint(ctx); err != nil {
		warn("checkpoint", err)
	} else if ok {
		r.ReadUntil = cp.UTC().Format(time.RFC3339)
		lag := now.Sub(cp).Seconds()
		r.LagSeconds = &lag
	} else {
		r.Warnings = append(r.Warnings, "the audit has not run yet: no checkpoint")
	}
	var last LastRun
	if ok, err := s.Store.LastRun(ctx, &last); err != nil {
		warn("last run", err)
	} else if ok {
		r.LastRun = &last
		if last.NoGeoIP {
			r.Warnings = append(r.Warnings, NoGeoIPWarning)
		}
	}
	if n, err := s.Store.CountUsers(ctx); err != nil {
		warn("users", err)
	} else {
		r.UsersStored = &n
	}
	if s.Delivery != nil {
		if c, p, err := s.Delivery.Subscribers(ctx); err != nil {
			warn("alert subscriptions", err)
		} else {
			r.Delivery = &DeliveryState{ConfirmedSubscribers: c, PendingSubscribers: p}
			r.Warnings = append(r.Warnings, SubscriberWarnings(c, p)...)
		}
	}
	budget := s.PortalBudget
	if budget <= 0 {
		budget = DefaultPortalBudget
	}
	pctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	r.APIKey = s.key(ctx, pctx, now, warn)
	if on, err := s.Portal.IPRestrictionsEnabled(pctx); err != nil {
		warn("portal restrictions", err)
	} else if list, err := s.Portal.IPRestrictions(pctx); err != nil {
		warn("portal allowlist", err)
	} else {
		r.Portal = &PortalState{RestrictionsEnabled: on, Entries: len(list)}
	}
	return r
}

// key asks the portal (within pctx), and falls back to what the last run saw.
func (s *Service) key(ctx, pctx context.Context, now time.Time, warn func(string, error)) *Key {
	k, err := s.Keys.CurrentKey(pctx)
	seen := "portal"
	if err != nil {
		warn("API key", err)
		var at time.Time
		var ok bool
		var lerr error
		if k, at, ok, lerr = s.Store.LastKey(ctx); lerr != nil || !ok {
			return nil
		}
		seen = at.UTC().Format(time.RFC3339)
	}
	out := &Key{Name: k.Name, Postfix: k.Postfix, IsActive: k.IsActive, Seen: seen, ExpiresAt: "never"}
	if !k.ExpiresAt.IsZero() {
		out.ExpiresAt = k.ExpiresAt.UTC().Format(time.RFC3339)
		d := keywatch.DaysLeft(k.ExpiresAt, now)
		out.DaysLeft = &d
	}
	return out
}
