package onboard

import (
	"context"
	"slices"
	"time"

	"ipguard/internal/allowlist"
	"ipguard/internal/ipguard"
)

// Portal states of a result.
const (
	PortalApplied = "applied" // the portal holds the desired state including this change
	PortalPending = "pending" // stored; the portal update failed or waits (see portalReason)
)

// Result is what a request did; it is the Lambda's JSON response.
type Result struct {
	Action string `json:"action"`
	UserID string `json:"userId,omitempty"`
	Email  string `json:"email,omitempty"`
	// Entries are the user's stored (unexpired) entries after the change.
	Entries []string `json:"entries"`
	// Stored: this request changed the stored record.
	Stored bool `json:"stored"`
	// Added and Removed are the user's entries the change added and removed.
	Added   []string `json:"added"`
	Removed []string `json:"removed"`
	// Portal is "applied" or "pending" (with PortalReason).
	Portal       string `json:"portal"`
	PortalReason string `json:"portalReason,omitempty"`
	// AppliedBy: "this request" (it sent the PUT), "another request" (a
	// concurrent holder applied it), "already" (nothing to do).
	AppliedBy string `json:"appliedBy,omitempty"`
	// PortalAdded and PortalRemoved are the portal addresses this request's
	// PUT added and removed (of every user: one reconcile applies all).
	PortalAdded   []string `json:"portalAdded"`
	PortalRemoved []string `json:"portalRemoved"`
	// PortalUpdated: this request sent a PUT.
	PortalUpdated       bool          `json:"portalUpdated"`
	NotPushed           []NotPushed   `json:"notPushed"`
	RestrictionsEnabled bool          `json:"restrictionsEnabled"`
	Expired             []ExpiredView `json:"expired,omitempty"`
	Drift               *Drift        `json:"drift,omitempty"`
	Warnings            []string      `json:"warnings"`

	// get
	User *UserView `json:"user,omitempty"`
	// sync
	UsersLeft []LeftView `json:"usersLeft,omitempty"`
	// preview
	Preview *PreviewResult `json:"preview,omitempty"`
}

// ExpiredView is a time-bound entry a reconcile expired.
type ExpiredView struct {
	UserID    string `json:"userId"`
	Entry     string `json:"entry"`
	ExpiresAt string `json:"expiresAt"`
	Note      string `json:"note,omitempty"`
}

func newResult(action, id string) Result {
	if action == ActionReplace {
		action = "replace"
	}
	return Result{Action: action, UserID: id, Entries: []string{}, Added: []string{}, Removed: []string{},
		PortalAdded: []string{}, PortalRemoved: []string{}, NotPushed: []NotPushed{}, Warnings: []string{}}
}

func (r *Result) absorb(o outcome) {
	r.Portal, r.PortalReason, r.AppliedBy = o.portal, o.reason, o.by
	r.PortalUpdated = o.put
	r.PortalAdded = append(r.PortalAdded, o.added...)
	r.PortalRemoved = append(r.PortalRemoved, o.removed...)
	r.RestrictionsEnabled = o.enabled
	r.Expired = append(r.Expired, o.expired...)
	r.Drift = o.drift
	r.Warnings = append(r.Warnings, o.warnings...)
}

// notPushedOf lists the user's entries the portal cannot hold.
func notPushedOf(u ipguard.User, r Settings, now time.Time) []NotPushed {
	d := DesiredState([]ipguard.User{u}, Settings{MaxRangeAddresses: r.MaxRangeAddresses}, now)
	if np := d.NotPushed[u.ID]; np != nil {
		return np
	}
	return []NotPushed{}
}

// UserView is a stored user with each entry's portal state.
type UserView struct {
	ID        string      `json:"id"`
	Email     string      `json:"email"`
	CreatedAt string      `json:"createdAt"`
	UpdatedAt string      `json:"updatedAt"`
	Entries   []EntryView `json:"entries"`
}

// EntryView is one entry and where its addresses stand on the portal.
type EntryView struct {
	Entry     string `json:"entry"`
	ExpiresAt string `json:"expiresAt,omitempty"`
	Note      string `json:"note,omitempty"`
	// Place is the entry's declared place (#21 §4), when it has one.
	Place string `json:"place,omitempty"`
	// State: "on portal", "partly on portal", "not on portal", "not pushed", "expired".
	State     string   `json:"state"`
	Reason    string   `json:"reason,omitempty"`
	OnPortal  []string `json:"onPortal,omitempty"`
	Missing   []string `json:"missing,omitempty"`
	Owned     []string `json:"owned,omitempty"`
	AdminOnly []string `json:"adminOnly,omitempty"` // present only as forAdmin entries
}

// get returns the stored record with each entry's state on the portal as
// it is now (one GET of the list; nothing is written): it reads
// (readUserAndPortal), then shapes the view (userView).
func (s *Service) get(ctx context.Context, req Request) (Result, error) {
	id, err := canonicalID(req.ID)
	if err != nil {
		return Result{}, err
	}
	res := newResult(ActionGet, id)
	r, err := s.readUserAndPortal(ctx, id)
	if err != nil {
		return Result{}, err
	}
	now := s.now().UTC()
	res.Email, res.Entries, res.User = r.user.Email, r.user.ActiveEntries(now), s.userView(r, now)
	res.NotPushed = notPushedOf(r.user, s.Settings, now)
	res.RestrictionsEnabled = r.enabled
	res.setPortalFrom(r.state)
	return res, nil
}

// userAndPortal is what get reads: the stored user, the portal memory, and
// the portal's list and restriction setting as they are now.
type userAndPortal struct {
	user    ipguard.User
	state   ipguard.PortalState
	list    []ipguard.Restriction
	enabled bool
}

// readUserAndPortal reads user id (EInvalid when not stored), the portal
// memory, and the portal's list and setting, in that order; a portal
// error keeps its code.
func (s *Service) readUserAndPortal(ctx context.Context, id string) (userAndPortal, error) {
	var r userAndPortal
	u, found, err := s.Store.GetUser(ctx, id)
	if err != nil {
		return r, err
	}
	if !found {
		return r, &ipguard.Error{Code: ipguard.EInvalid, Field: "id", Value: id, Message: "is not a stored user"}
	}
	r.user = u
	if r.state, err = s.Store.PortalState(ctx); err != nil {
		return r, err
	}
	if r.list, err = s.Portal.IPRestrictions(ctx); err != nil {
		return r, ipguard.Errorf(ipguard.ErrorCode(err), "get %s: read the portal allowlist: %w", id, err)
	}
	if r.enabled, err = s.Portal.IPRestrictionsEnabled(ctx); err != nil {
		return r, ipguard.Errorf(ipguard.ErrorCode(err), "get %s: read the portal restriction setting: %w", id, err)
	}
	return r, nil
}

// setPortalFrom answers the portal outcome from the portal memory alone:
// applied, unless an update is pending or a stored version is not applied
// yet.
func (r *Result) setPortalFrom(st ipguard.PortalState) {
	r.Portal = PortalApplied
	if st.Pending != "" || st.Applied < st.Version {
		r.Portal, r.PortalReason = PortalPending, st.Pending
	}
}

// splitByAdmin returns the addresses of list's plain entries and of its
// forAdmin entries.
func splitByAdmin(list []ipguard.Restriction) (plain, admin map[string]bool) {
	plain, admin = map[string]bool{}, map[string]bool{}
	for _, r := range list {
		if r.ForAdmin {
			admin[r.IP] = true
		} else {
			plain[r.IP] = true
		}
	}
	return plain, admin
}

// userView shapes the user's record as get shows it: each stored entry
// with its state on the portal list (entryView), in stored order, then the
// entries already expired and removed. Entries is never nil.
func (s *Service) userView(r userAndPortal, now time.Time) *UserView {
	u := r.user
	plain, admin := splitByAdmin(r.list)
	v := &UserView{ID: u.ID, Email: u.Email, CreatedAt: fmtTime(u.CreatedAt), UpdatedAt: fmtTime(u.UpdatedAt), Entries: []EntryView{}}
	for _, raw := range u.Entries {
		v.Entries = append(v.Entries, s.entryView(u.ID, raw, u.Details[raw], r.state, plain, admin, now))
	}
	for _, x := range u.Expired {
		v.Entries = append(v.Entries, EntryView{Entry: x.Entry, ExpiresAt: fmtTime(x.ExpiresAt), Note: x.Note,
			State: "expired", Reason: "expired at " + fmtTime(x.ExpiresAt) + " and removed from the allowlist"})
	}
	return v
}

// entryView is one stored entry's state: "expired" (past its expiresAt),
// "not pushed" (unreadable, or too wide to expand), or, by its addresses
// on the portal's plain entries (plain; admin: forAdmin ones, which do not
// count), "on portal", "partly on portal" or "not on portal", with the
// reason when any address is missing and which addresses the tool owns.
func (s *Service) entryView(userID, raw string, d ipguard.EntryDetail, st ipguard.PortalState, plain, admin map[string]bool, now time.Time) EntryView {
	ev := EntryView{Entry: raw, ExpiresAt: fmtTime(d.ExpiresAt), Note: d.Note, Place: d.Place}
	if !d.ExpiresAt.IsZero() && !now.Before(d.ExpiresAt) {
		ev.State, ev.Reason = "expired", "expired at "+fmtTime(d.ExpiresAt)+"; the next reconcile removes it from the portal"
		return ev
	}
	es, err := allowlist.ParseStored([]string{raw})
	if err != nil {
		ev.State, ev.Reason = "not pushed", err.Error()
		return ev
	}
	addrs, ok := es[0].Expand(s.Settings.MaxRangeAddresses)
	if !ok {
		ev.State = "not pushed"
		ev.Reason = notPushedOf(ipguard.User{ID: userID, Entries: []string{raw}}, s.Settings, now)[0].Reason
		return ev
	}
	for _, a := range addrs {
		t := a.String()
		switch {
		case plain[t]:
			ev.OnPortal = append(ev.OnPortal, t)
		case admin[t]:
			ev.AdminOnly = append(ev.AdminOnly, t)
			ev.Missing = append(ev.Missing, t)
		default:
			ev.Missing = append(ev.Missing, t)
		}
		if slices.Contains(st.Owned, t) {
			ev.Owned = append(ev.Owned, t)
		}
	}
	switch {
	case len(ev.Missing) == 0:
		ev.State = "on portal"
	case len(ev.OnPortal) > 0:
		ev.State = "partly on portal"
	default:
		ev.State = "not on portal"
	}
	if len(ev.Missing) > 0 {
		switch {
		case st.Pending != "":
			ev.Reason = "portal update pending: " + st.Pending
		case st.Applied < st.Version:
			ev.Reason = "not applied yet"
		default:
			// Every stored change is on the portal (a cap or a failure
			// would have left Pending): the address left it since.
			ev.Reason = "removed from the portal since the last reconcile applied it (drift: changed outside the tool); the next reconcile (at the latest the scheduled sync) puts it back"
		}
	}
	return ev
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}
