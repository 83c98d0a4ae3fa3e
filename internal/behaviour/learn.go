package behaviour

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"ipguard/internal/audit"
	"ipguard/internal/ipguard"
	"ipguard/internal/lease"
)

// MaxLearnDays is the longest history learn reads (the portal keeps 180 days).
const MaxLearnDays = 180

// maxLearnLogins bounds the successful logins one learn keeps (the most
// recent ones; about 40 MB at most).
const maxLearnLogins = 250_000

// maxListedUsers is how many users a dry run names per kind.
const maxListedUsers = 20

// LearnRequest is {"action": "learn", "days": N, "dryRun": bool}.
type LearnRequest struct {
	Days   int
	DryRun bool
}

// DecodeLearn reports whether payload asks to learn, and reads it: days is
// required, 1..MaxLearnDays; dryRun is optional. Bad values are EInvalid
// errors naming the field.
func DecodeLearn(payload []byte) (LearnRequest, bool, error) {
	var v struct {
		Action *string          `json:"action"`
		Days   *json.RawMessage `json:"days"`
		DryRun *json.RawMessage `json:"dryRun"`
	}
	if json.Unmarshal(payload, &v) != nil || v.Action == nil || !strings.EqualFold(strings.TrimSpace(*v.Action), "learn") {
		return LearnRequest{}, false, nil
	}
	var r LearnRequest
	if err := learnFieldsKnown(payload); err != nil {
		return r, true, err
	}
	if v.Days == nil {
		return r, true, ipguard.Invalid("days", "", "is required: how many days of login history to learn from (1 to %d)", MaxLearnDays)
	}
	if err := json.Unmarshal(*v.Days, &r.Days); err != nil || r.Days < 1 || r.Days > MaxLearnDays {
		return r, true, ipguard.Invalid("days", string(*v.Days), "must be a whole number of days from 1 to %d (the portal keeps 180 days)", MaxLearnDays)
	}
	if v.DryRun != nil {
		if err := json.Unmarshal(*v.DryRun, &r.DryRun); err != nil {
			return r, true, ipguard.Invalid("dryRun", string(*v.DryRun), "must be true or false")
		}
	}
	return r, true, nil
}

// learnFields are the fields of a learn request (matched case-insensitively).
var learnFields = []string{"action", "days", "dryRun"}

// learnFieldsKnown refuses a field learn does not know, and a known one
// given twice: a misspelt "dryRun" ("dry-run", or "DryRun" after "dryRun")
// would otherwise be ignored and the dry run learn for real.
func learnFieldsKnown(payload []byte) error {
	ms, err := ipguard.ObjectMembers(payload, "event")
	if err != nil {
		return nil // not an object: DecodeLearn's caller saw an action in it
	}
	if name, ok := ipguard.UnknownMember(ms, learnFields); ok {
		return ipguard.Invalid(name, "", "is not a field of learn; send {\"action\": \"learn\", \"days\": N} and optionally \"dryRun\": true (nothing was read or written)")
	}
	_, err = ipguard.ByKnownName(ms, learnFields, "")
	return err
}

// Learner reads the portal's login history of the last N days into the
// baselines ({"action": "learn"}), or, as a dry run, reports per kind how
// many findings those days would have produced, for which users, changing
// nothing.
//
// It holds the audit's lease for its whole length, so that it and a
// scheduled audit never talk to the portal at once (one request budget per
// portal, WHERE-ISSUES-MEET §17; the portal client paces every request by
// PORTAL_REQUESTS_PER_MINUTE): a scheduled run meanwhile is skipped and
// catches up from its checkpoint afterwards.
type Learner struct {
	Source audit.Source
	Store  Store
	// Users returns the stored allowlists among ids (audit.Store.Users):
	// logins through a user's own entries raise no place finding.
	Users    func(ctx context.Context, ids []string) (map[string]ipguard.User, error)
	Leases   lease.Backend
	Settings Settings
	// DeadlineMargin: stop reading this long before the invocation's deadline.
	DeadlineMargin time.Duration
	Now            func() time.Time
}

// LearnResult is the Lambda's answer to a learn.
type LearnResult struct {
	Action string `json:"action"` // "learn"
	DryRun bool   `json:"dryRun"`
	Days   int    `json:"days"`
	From   string `json:"from"`
	To     string `json:"to"`
	// Complete is false when the deadline or the size bound stopped the
	// reading: OldestRead says how far back it got (the most recent logins
	// are read first).
	Complete   bool   `json:"complete"`
	OldestRead string `json:"oldestRead,omitempty"`
	Pages      int    `json:"pages"`
	EventsRead int    `json:"eventsRead"`
	Logins     int    `json:"logins"` // successful logins of users with an id
	Users      int    `json:"users"`
	// BaselinesWritten counts the baselines that changed (not in a dry run).
	BaselinesWritten int `json:"baselinesWritten"`
	// WouldAlert (dry run) is, per kind, what the rules would have found
	// over those days had they been on from the first of them, each user
	// starting with no baseline (so the learning period applies as on a
	// new installation).
	WouldAlert map[string]*KindSummary `json:"wouldAlert,omitempty"`
	NoGeoIP    bool                    `json:"noGeoIP,omitempty"`
	Skipped    bool                    `json:"skipped,omitempty"`
	SkipReason string                  `json:"skipReason,omitempty"`
	Warnings   []string                `json:"warnings"`
}

// KindSummary is a dry run's count for one kind.
type KindSummary struct {
	// Findings: logins (for password_spray: episodes) with this reason.
	Findings int `json:"findings"`
	// Messaged: of those, the ones at or above BEHAVIOUR_MIN_SEVERITY (a
	// merged allowlist finding is always sent; the dry run does not know
	// which logins the allowlist would flag, so this counts the reason's
	// own severity).
	Messaged int      `json:"messaged"`
	Users    []string `json:"users"`
	// MoreUsers: users beyond the listed 20.
	MoreUsers int `json:"moreUsers,omitempty"`
	seen      map[string]bool
}

// Learn runs a learn request.
func (l *Learner) Learn(ctx context.Context, req LearnRequest) (LearnResult, error) {
	now := time.Now().UTC()
	if l.Now != nil {
		now = l.Now().UTC()
	}
	from := now.Add(-time.Duration(req.Days) * 24 * time.Hour)
	res := LearnResult{Action: "learn", DryRun: req.DryRun, Days: req.Days, From: from.Format(time.RFC3339), To: now.Format(time.RFC3339),
		Complete: true, Warnings: []string{}}
	held, err := lease.Acquire(ctx, l.Leases, audit.LeaseName, lease.Options{})
	if ipguard.ErrorCode(err) == ipguard.EConflict {
		res.Skipped, res.SkipReason = true, "an audit run holds the portal (lease \"audit\"): try again in a few minutes"
		return res, nil
	}
	if err != nil {
		return LearnResult{}, ipguard.Errorf(ipguard.ErrorCode(err), "learn: acquire lease: %w", err)
	}
	defer held.Release(context.WithoutCancel(ctx))

	lists := audit.NewAllowlists(nil, nil)
	loaded := map[string]bool{}
	byUser := map[string][]Login{}
	var fails []ipguard.LoginEvent
	seen := map[int64]bool{}
	var geo GeoStats
	for start := 0; ; start += audit.PageSize {
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < l.DeadlineMargin {
			res.Complete = false
			res.Warnings = append(res.Warnings, "the invocation's time ran out: learned the most recent logins only (see oldestRead); invoke again with fewer days or a longer timeout")
			break
		}
		page, err := l.Source.LoginEvents(ctx, from, start, audit.PageSize)
		if err != nil {
			return LearnResult{}, ipguard.Errorf(ipguard.ErrorCode(err), "learn: read login history (page at %d): %w", start, err)
		}
		res.Pages++
		if err := l.loadUsers(ctx, lists, loaded, page); err != nil {
			return LearnResult{}, err
		}
		for _, ev := range page {
			if ev.Unreadable != "" || seen[ev.ID] || ev.Date.Before(from) {
				continue // rows shifted by new ones come again: each event once
			}
			seen[ev.ID] = true
			res.EventsRead++
			if res.OldestRead == "" || ev.Date.UTC().Format(time.RFC3339) < res.OldestRead {
				res.OldestRead = ev.Date.UTC().Format(time.RFC3339)
			}
			switch {
			case ev.IsSuccessfulLogin() && ipguard.CanonicalUserID(ev.UserID) != "":
				lg := loginOf(ev, lists.Declared, lists.DeclaredEntry)
				if lg.Whole {
					if strings.TrimSpace(lg.Country) == "" {
						geo.WithoutCountry++
					} else {
						geo.WithCountry++
					}
				}
				byUser[lg.UserID] = append(byUser[lg.UserID], lg)
				res.Logins++
			case req.DryRun && ev.IsFailedLogin() && len(fails) < maxFailures:
				ev.Raw = nil
				if lists.Declared(ev) {
					continue
				}
				fails = append(fails, ev)
			}
		}
		if res.Logins >= maxLearnLogins {
			res.Complete = false
			res.Warnings = append(res.Warnings, fmt.Sprintf("the history holds more than %d logins: learned the most recent ones only (see oldestRead)", maxLearnLogins))
			break
		}
		if len(page) < audit.PageSize {
			break
		}
	}
	res.Users = len(byUser)
	res.NoGeoIP = geo.NoGeoIP()
	if res.NoGeoIP {
		res.Warnings = append(res.Warnings, "the portal gives no GeoIP data (every login's country is empty): new_country and impossible_travel cannot fire until it does")
	}
	ids := make([]string, 0, len(byUser))
	for id, ls := range byUser {
		ids = append(ids, id)
		sort.SliceStable(ls, func(i, j int) bool {
			if !ls[i].At.Equal(ls[j].At) {
				return ls[i].At.Before(ls[j].At)
			}
			return ls[i].EventID < ls[j].EventID
		})
	}
	sort.Strings(ids)
	if req.DryRun {
		res.WouldAlert = l.dryRun(ids, byUser, fails)
		return res, nil
	}
	stored, err := l.Store.Baselines(ctx, ids)
	if err != nil {
		return LearnResult{}, ipguard.Errorf(ipguard.ErrorCode(err), "learn: read baselines: %w", err)
	}
	var changed []Baseline
	for _, id := range ids {
		b := stored[id]
		b.UserID = id
		dirty := false
		// Logins from where the baseline starts on, oldest first; older ones
		// newest first, so that each is counted as it extends the history back.
		ls, first := byUser[id], b.First
		for _, lg := range ls {
			if (first.IsZero() || !lg.At.Before(first)) && b.Learn(lg) {
				dirty = true
			}
		}
		for i := len(ls) - 1; i >= 0 && !first.IsZero(); i-- {
			if ls[i].At.Before(first) && b.Learn(ls[i]) {
				dirty = true
			}
		}
		if dirty {
			changed = append(changed, b)
		}
	}
	if err := l.Store.SaveBaselines(ctx, changed); err != nil {
		return LearnResult{}, ipguard.Errorf(ipguard.ErrorCode(err), "learn: write baselines: %w", err)
	}
	res.BaselinesWritten = len(changed)
	return res, nil
}

func (l *Learner) loadUsers(ctx context.Context, lists *audit.Allowlists, loaded map[string]bool, page []ipguard.LoginEvent) error {
	if l.Users == nil {
		return nil
	}
	var ids []string
	for _, ev := range page {
		if id := ipguard.CanonicalUserID(ev.UserID); id != "" && !loaded[id] {
			loaded[id] = true
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	users, err := l.Users(ctx, ids)
	if err != nil {
		return ipguard.Errorf(ipguard.ErrorCode(err), "learn: load allowlists: %w", err)
	}
	lists.Add(users)
	return nil
}

// dryRun judges every user's logins in time order from an empty baseline,
// and the failed logins for sprays, and counts what would have been found.
func (l *Learner) dryRun(ids []string, byUser map[string][]Login, fails []ipguard.LoginEvent) map[string]*KindSummary {
	out := map[string]*KindSummary{}
	for _, r := range AllRules {
		if l.Settings.on(r) {
			out[r] = &KindSummary{Users: []string{}, seen: map[string]bool{}}
		}
	}
	min := audit.SeverityRank(l.Settings.minSeverity())
	count := func(kind, sev, user string) {
		k := out[kind]
		if k == nil {
			return
		}
		k.Findings++
		if audit.SeverityRank(sev) >= min {
			k.Messaged++
		}
		if user != "" && !k.seen[user] {
			k.seen[user] = true
			if len(k.Users) < maxListedUsers {
				k.Users = append(k.Users, user)
			} else {
				k.MoreUsers++
			}
		}
	}
	for _, id := range ids {
		b := &Baseline{UserID: id}
		var prev *Sighting
		for _, lg := range byUser[id] {
			v := Judge(b, prev, lg, l.Settings)
			for _, r := range v.Reasons {
				count(r.Kind, r.Severity, id)
			}
			b.Learn(lg)
			if lg.travelUsable() {
				sg := lg.sighting()
				prev = &sg
			}
		}
	}
	if l.Settings.on(RulePasswordSpray) && len(fails) > 0 {
		sp := newSprayer(l.Settings.sprayMin(), l.Settings.sprayWindow())
		for _, ls := range byUser {
			for _, lg := range ls {
				sp.success[lg.UserID] = maxTime(sp.success[lg.UserID], lg.At)
			}
		}
		sp.add(fails, nil)
		for _, ep := range sp.episodes(time.Time{}, true) {
			f := sp.finding(ep)
			count(RulePasswordSpray, f.Severity, "")
		}
	}
	return out
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
