package onboard

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"ipguard/internal/humantext"
	"ipguard/internal/ipguard"
)

// One reconcile, under the portal-allowlist lease:
//
//	DynamoDB (desired state)                    portal
//	  users' entries ─┐
//	  break-glass ────┼─► desired addresses ──┐
//	  expiry (now) ───┘                       │
//	  ownership, last seen list ──────────────┼──► plan ──► invariant ──► PUT ──► re-read
//	                                          │      ▲                            │
//	                   GET settings, GET list ┴──────┘     (hand edit meanwhile?) ┘
//	  state ◄── applied version, owned, list as left, drift episode
//
// Everything slow (the scan of users, expiry housekeeping, the key check)
// happens before the two GETs, so the window in which a hand edit could be
// overwritten is the GETs, a pure plan and the PUT. The re-read after the
// PUT finds an edit that landed meanwhile: its entries are kept, ours are
// put back, and the result says so.

// outcome is what converge reports to a change or a sync.
type outcome struct {
	portal       string    // PortalApplied or PortalPending
	reason       string    // why pending
	err          error     // the portal failure behind a pending outcome of this request
	by           string    // "this request", "another request", "already"
	put          bool      // this request sent at least one PUT
	puts         int       // how many PUTs this reconcile sent
	windowStart  time.Time // when the GET→PUT window of the last PUT began
	prevSave     time.Time // when the reconcile before it ended (its own saves are no later)
	added        []string
	removed      []string
	expired      []ExpiredView
	enabled      bool
	warnings     []string
	drift        *Drift
	missingOwned []string
}

func (o *outcome) merge(n outcome) {
	o.portal, o.reason, o.by, o.enabled, o.err = n.portal, n.reason, n.by, n.enabled, n.err
	o.put = o.put || n.put
	if n.put {
		o.puts, o.windowStart, o.prevSave = n.puts, n.windowStart, n.prevSave
	}
	o.added = append(o.added, n.added...)
	o.removed = append(o.removed, n.removed...)
	o.expired = append(o.expired, n.expired...)
	o.warnings = append(o.warnings, n.warnings...)
	o.missingOwned = append(o.missingOwned, n.missingOwned...)
	if n.drift != nil {
		o.drift = n.drift
	}
}

// reconcile brings the portal to the desired state stored at version
// st.Version. A portal failure is not an error: the state records it as
// pending (with the reason) and the outcome says so. Store failures are
// errors.
func (s *Service) reconcile(ctx context.Context, st ipguard.PortalState) (outcome, error) {
	now := s.now().UTC()
	version := st.Version
	users, err := s.Store.AllUsers(ctx)
	if err != nil {
		return outcome{}, err
	}
	out := outcome{by: "this request"}
	if out.expired, err = s.expire(ctx, users, now); err != nil {
		return outcome{}, err
	}
	d := DesiredState(users, s.Rules, now)
	en := s.enableRule(ctx)

	pending := func(cause error) (outcome, error) {
		reason := cause.Error()
		out.err = cause
		st.Pending, st.PendingCode, st.PendingVersion = reason, ipguard.ErrorCode(cause), version
		if err := s.Store.PutPortalState(ctx, st); err != nil {
			return outcome{}, err
		}
		out.portal, out.reason = PortalPending, reason
		s.log().Warn("portal allowlist update pending", "reason", reason, "version", version)
		return out, nil
	}

	// The GET→PUT window starts here.
	windowStart := s.now()
	enabled, err := s.Portal.IPRestrictionsEnabled(ctx)
	if err != nil {
		return pending(fmt.Errorf("could not read the portal restriction setting: %w", err))
	}
	current, err := s.Portal.IPRestrictions(ctx)
	if err != nil {
		return pending(fmt.Errorf("could not read the portal allowlist: %w", err))
	}
	drift := detectDrift(st, current, enabled, s.Rules)
	// Switched off by hand, now or at an earlier reconcile that left them
	// off: they stay off unless drift repair is on.
	en.KeepOff = !s.Rules.DriftRepair && !enabled && (drift != nil && drift.SwitchedOff || st.HandOff)
	plan, err := PlanReconcile(current, enabled, st.Owned, d, s.Rules, en)
	if err != nil {
		return pending(err)
	}
	out.warnings = append(out.warnings, plan.Warnings...)
	after, final := current, plan
	if plan.Put {
		if after, final, err = s.write(ctx, current, enabled, st.Owned, d, en, plan, &out); err != nil {
			// Unknown outcome: the PUT may still land. Remember what it
			// would have added as owned, so a late landing is ours.
			st.Owned = union(st.Owned, plan.Added)
			return pending(err)
		}
		out.put = true
		out.added, out.removed = final.Added, final.Removed
		out.windowStart, out.prevSave = windowStart, st.LastReconcile
	}
	out.enabled = final.Enable
	out.missingOwned = plan.MissingOwned
	if drift != nil {
		drift.Restored = plan.MissingOwned
		drift.Reenabled = drift.SwitchedOff && final.Enable
	}

	prevReconcile := st.LastReconcile
	st.Applied, st.Owned, st.LastSeen, st.LastEnabled = version, final.Owned, after, final.Enable
	st.Reconciled, st.Pending, st.PendingCode, st.PendingVersion, st.LastReconcile = true, "", "", 0, now
	st.HandOff = en.KeepOff && !final.Enable
	prevEpisode := st.DriftEpisode
	st.DriftEpisode = drift.fingerprint()
	lockout := !en.Allowed && s.Rules.Enforce && !enabled
	if !lockout {
		// The lock-out episode (if any) is over: its notice is sent again
		// when the condition comes back.
		st.LockoutNotice = ""
	}
	if err := s.Store.PutPortalState(ctx, st); err != nil {
		return outcome{}, err
	}
	if drift != nil {
		out.drift = drift
		s.attribute(ctx, drift, prevReconcile, out.puts)
		if st.DriftEpisode != prevEpisode {
			s.alertDrift(ctx, drift)
		}
	}
	if lockout {
		s.alertLockout(ctx, en.Why)
	}
	out.portal = PortalApplied
	s.log().Info("reconciled portal allowlist", "version", version, "put", out.put, "added", len(out.added),
		"removed", len(out.removed), "expired", len(out.expired), "entries", len(after), "enabled", final.Enable)
	return out, nil
}

// write sends the plan and reads the list back. If the list read back is not
// the list sent, someone changed it meanwhile (a hand edit, or a late PUT):
// their entries are kept, ours are planned again and sent once more.
func (s *Service) write(ctx context.Context, current []ipguard.Restriction, enabled bool, owned []string, d Desired, en EnableRule, plan Plan, out *outcome) ([]ipguard.Restriction, Plan, error) {
	first := plan
	for round := 0; ; round++ {
		if err := CheckKept(current, plan.List, owned); err != nil {
			return nil, Plan{}, err
		}
		out.puts++
		if err := s.Portal.PutIPRestrictions(ctx, plan.List, plan.Enable); err != nil {
			return nil, Plan{}, fmt.Errorf("could not update the portal allowlist: %w", err)
		}
		after, err := s.Portal.IPRestrictions(ctx)
		if err != nil {
			return nil, Plan{}, fmt.Errorf("updated the portal allowlist but could not read it back: %w", err)
		}
		if sameList(after, plan.List) {
			if round > 0 {
				plan.Added = union(first.Added, plan.Added)
				plan.Removed = union(first.Removed, plan.Removed)
			}
			return after, plan, nil
		}
		appeared := diffList(after, plan.List)
		lost := diffList(plan.List, after)
		msg := "the portal allowlist changed while this reconcile wrote it (a hand edit or a late update)"
		if len(appeared) > 0 {
			msg += "; entries that appeared were kept: " + describeAll(appeared)
		}
		if len(lost) > 0 {
			msg += "; entries it dropped were put back: " + describeAll(lost)
		}
		out.warnings = append(out.warnings, msg)
		s.log().Warn("portal allowlist changed during the update", "appeared", len(appeared), "lost", len(lost))
		if round >= 2 {
			return nil, Plan{}, fmt.Errorf("the portal allowlist kept changing during the update")
		}
		// The list read back is the new starting point; what we owned in the
		// plan stays owned.
		current, owned = after, plan.Owned
		if plan, err = PlanReconcile(current, enabled, owned, d, s.Rules, en); err != nil {
			return nil, Plan{}, err
		}
		if !plan.Put {
			return after, plan, nil
		}
	}
}

// checkForeignSaves looks in the portal's audit trail for allowlist saves
// since the window started: more than this reconcile's own PUTs means
// someone saved the allowlist meanwhile, and a save between our GET and our
// PUT was overwritten by it (the list cannot show that; only the trail
// can). The result names who, when and from where. The trail has second
// precision: when the previous reconcile's own save fell in the window's
// first second, counting starts at the next second.
func (s *Service) checkForeignSaves(ctx context.Context, windowStart, prevSave time.Time, out *outcome) {
	if s.Trail == nil {
		return
	}
	since := windowStart.UTC().Truncate(time.Second)
	if !prevSave.IsZero() && !prevSave.UTC().Truncate(time.Second).Before(since) {
		since = since.Add(time.Second)
	}
	changes, err := s.Trail.AllowlistChanges(ctx, since)
	if err != nil || len(changes) <= out.puts {
		return
	}
	var who []string
	for _, c := range changes {
		who = append(who, fmt.Sprintf("%s by %s from %s", c.When.UTC().Format(time.RFC3339), humantext.Line(c.User, 100), humantext.Line(c.IP, 64)))
	}
	out.warnings = append(out.warnings, fmt.Sprintf(
		"the portal's audit trail shows %d allowlist saves during this update but it sent %d: someone else saved the allowlist meanwhile (%s); an entry they added just before our update may have been overwritten, check the portal",
		len(changes), out.puts, strings.Join(who, "; ")))
}

// expire moves the entries whose time ran out at now from the users'
// entries to their expired list (so the audit stops accepting them), in
// users and in the store. A user written concurrently is left for the next
// reconcile (its entries are still filtered by time here).
func (s *Service) expire(ctx context.Context, users []ipguard.User, now time.Time) ([]ExpiredView, error) {
	var views []ExpiredView
	for i, u := range users {
		active := u.ActiveEntries(now)
		if len(active) == len(u.Entries) {
			continue
		}
		next := u
		next.Entries, next.Details = active, map[string]ipguard.EntryDetail{}
		next.Expired = slices.Clone(u.Expired)
		for _, e := range u.Entries {
			d := u.Details[e]
			if slices.Contains(active, e) {
				if d != (ipguard.EntryDetail{}) {
					next.Details[e] = d
				}
				continue
			}
			next.Expired = append(next.Expired, ipguard.ExpiredEntry{Entry: e, ExpiresAt: d.ExpiresAt, Note: d.Note})
			views = append(views, ExpiredView{UserID: u.ID, Entry: e, ExpiresAt: d.ExpiresAt.Format(time.RFC3339), Note: d.Note})
		}
		if len(next.Expired) > 50 {
			next.Expired = next.Expired[len(next.Expired)-50:]
		}
		next.UpdatedAt, next.Rev = now, u.Rev+1
		ok, err := s.Store.PutUserIf(ctx, next, u.Rev)
		if err != nil {
			return nil, err
		}
		if ok {
			users[i] = next
		}
	}
	return views, nil
}

func union(a, b []string) []string {
	out := slices.Clone(a)
	for _, x := range b {
		if !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}

func describeAll(rs []ipguard.Restriction) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = describe(r)
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}
