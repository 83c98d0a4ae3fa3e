package onboard

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"ipguard/internal/humantext"
	"ipguard/internal/ipguard"
	"ipguard/internal/lease"
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
// The scan of users (and expiry housekeeping) runs while the two GETs are
// out, the key check after them, so the window in which a hand edit could
// be overwritten is the GETs or the scan (whichever ends later), a pure
// plan, the in-flight record and the PUT. The re-read after the
// PUT finds an edit that landed meanwhile: its entries are kept, ours are
// put back, and the result says so.

// outcome is what converge reports to a change or a sync.
type outcome struct {
	portal          string    // PortalApplied or PortalPending
	reason          string    // why pending
	err             error     // the portal failure behind a pending outcome of this request
	by              string    // "this request", "another request", "already"
	put             bool      // this request sent at least one PUT
	puts            int       // how many PUTs this reconcile sent
	windowStart     time.Time // when the GET→PUT window of the first PUT began
	saves           []time.Time
	ownSaves        []time.Time           // the state's own saves after this reconcile
	unansweredSaves []ipguard.SaveWindow  // the state's spans of undated saves after this reconcile
	dueAdded        bool                  // this reconcile recorded an alert as due
	unanswered      bool                  // a PUT of the tool went unanswered and may have landed unseen
	landBy          time.Time             // an unanswered PUT of this reconcile may land until then (the lease is kept)
	changedAfter    []time.Time           // read-backs that differed from the list sent, not by a late PUT of the tool
	savedAfter      []time.Time           // the portal's Date of each PUT whose read-back so differed
	seenBefore      []ipguard.Restriction // the list the reconcile read before it wrote
	// lateLanded, when set: an earlier PUT of the tool that went without
	// an answer was found landed (the portal holds exactly its list), so
	// a save by someone else while it was out was overwritten unseen.
	lateLanded   *lateLanding
	added        []string
	removed      []string
	expired      []ExpiredView
	enabled      bool
	warnings     []string
	drift        *Drift
	missingOwned []string
	// trail, when not nil, answers the read of the audit trail since the
	// window started (checkForeignSaves), sent with the read-back of the
	// pass's last PUT, so that it is out while the list is read back and
	// the state written (#15 §6); its answer is awaited before the lease is
	// released (holdConverge). A read-back that differs drops it: the trail
	// is read again after that (trailChanges).
	trail func() ([]Change, error)
	// written is the state as this reconcile stored it at its end (nil when
	// it stored none): under the lease nothing but the version bump (Version,
	// Adds) moves it meanwhile, so the holder's next pass starts from it.
	written *ipguard.PortalState
	// recorded: this pass recorded its write for the second look in the
	// trail (recordWrite); recheckKeys are the records stored, recheckErr
	// why one could not be (then only the check right after the write ran).
	recorded    bool
	recheckKeys []string
	recheckErr  error
	// recordNoted: the state keeps whether recheckErr was alerted
	// (RecordNotice, noteTrailEpisode).
	recordNoted bool
}

func (o *outcome) merge(n outcome) {
	o.portal, o.reason, o.by, o.enabled, o.err = n.portal, n.reason, n.by, n.enabled, n.err
	// A pass whose PUT was answered (saves), also one that then failed
	// (its read-back): the trail is read from its window on.
	if len(n.saves) > 0 && len(o.saves) == 0 {
		o.windowStart, o.seenBefore, o.trail = n.windowStart, n.seenBefore, n.trail
	} else if len(n.saves) > 0 {
		o.trail = nil // read after the last pass's PUTs (checkForeignSaves)
	}
	o.recheckKeys = append(o.recheckKeys, n.recheckKeys...)
	if o.recheckErr == nil {
		o.recheckErr = n.recheckErr
	}
	o.put = o.put || n.put
	o.dueAdded = o.dueAdded || n.dueAdded
	o.unanswered = o.unanswered || n.unanswered
	if n.landBy.After(o.landBy) {
		o.landBy = n.landBy
	}
	if n.ownSaves != nil {
		o.ownSaves = n.ownSaves
	}
	if n.unansweredSaves != nil {
		o.unansweredSaves = n.unansweredSaves
	}
	o.puts += n.puts
	o.changedAfter = append(o.changedAfter, n.changedAfter...)
	o.savedAfter = append(o.savedAfter, n.savedAfter...)
	o.saves = append(o.saves, n.saves...)
	o.added = append(o.added, n.added...)
	o.removed = append(o.removed, n.removed...)
	o.expired = append(o.expired, n.expired...)
	o.warnings = append(o.warnings, n.warnings...)
	o.missingOwned = append(o.missingOwned, n.missingOwned...)
	if n.drift != nil {
		o.drift = n.drift
	}
	if n.lateLanded != nil {
		o.lateLanded = n.lateLanded
	}
}

// lateLanding is a PUT of the tool that got no answer (its outcome unknown,
// or the pass ended while it was out), found landed by a later reconcile:
// sent at from, seen landed by the read at to; before is the list the
// reconcile that sent it read, as that PUT kept it.
type lateLanding struct {
	from, to time.Time
	before   []ipguard.Restriction
	// readSawDrift: the reconcile that sent it found the list changed by
	// someone else in its read (its drift episode, recorded with the PUT's
	// outcome), and alerted that, naming who.
	readSawDrift bool
}

// landedBy is when a PUT of the tool sent at sentAt and found landed by
// the read at read landed at the latest: the read, or the end of the span
// in which it could land (its fence, kept in windows, widened by
// unansweredSlack for the trail's clock) when that is sooner. A save by
// someone else after that came after its landing, not under it.
func landedBy(windows []ipguard.SaveWindow, sentAt, read time.Time) time.Time {
	for _, w := range windows {
		if w.From.Equal(sentAt.UTC()) {
			if end := w.Until.Add(unansweredSlack); end.Before(read) {
				return end
			}
			break
		}
	}
	return read
}

// MaxLateSent bounds the remembered lists of the tool's recent PUTs, any
// of which may still land late.
const MaxLateSent = 8

// MaxLateKept bounds the entries of others remembered per recent PUT: a
// PUT that kept more is not remembered (its late landing is then drift).
const MaxLateKept = 50

// lateKept returns the non-admin entries the tool did not own that the
// recent PUT with list hash h kept (non-nil, maybe empty), or nil when no
// recent PUT had that list. Each LateSent record is "hash ip1,ip2,...".
func lateKept(late []string, h string) []string {
	for _, rec := range late {
		hash, kept, _ := strings.Cut(rec, " ")
		if hash == h {
			if kept == "" {
				return []string{}
			}
			return strings.Split(kept, ",")
		}
	}
	return nil
}

// notOwned lists the non-admin entries of the plan's list the tool does not own.
func notOwned(p Plan) []string {
	out := []string{}
	for _, r := range p.List {
		if !r.ForAdmin && !slices.Contains(p.Owned, r.IP) {
			out = append(out, r.IP)
		}
	}
	return out
}

// listHash fingerprints a list (order ignored) and its enable flag.
func listHash(list []ipguard.Restriction, enable bool) string {
	parts := make([]string, len(list))
	for i, r := range list {
		parts[i] = describe(r)
	}
	sort.Strings(parts)
	sum := sha256.Sum256([]byte(fmt.Sprint(enable, "\n", strings.Join(parts, "\n"))))
	return hex.EncodeToString(sum[:16])
}

// MaxOwnSaves bounds the remembered instants of the tool's own saves (and
// the spans of its undated ones).
const MaxOwnSaves = 20

// unansweredSlack widens a span in which an undated save of the tool may
// have landed (ipguard.PortalState.UnansweredSaves, the function's clock)
// when it is compared with the trail (the portal's clock, whole seconds).
const unansweredSlack = 2 * time.Second

// noteUnanswered records in st that a PUT of the tool sent at from may
// land, undated, until until (the span is the newest of st's).
func noteUnanswered(st *ipguard.PortalState, from, until time.Time) {
	st.UnansweredSaves = lastN(append(slices.Clone(st.UnansweredSaves), ipguard.SaveWindow{From: from.UTC(), Until: until.UTC()}), MaxOwnSaves)
}

// landedUntil narrows the newest span of st's undated saves (the PUT just
// sent) to end at until.
func landedUntil(st *ipguard.PortalState, until time.Time) {
	if n := len(st.UnansweredSaves); n > 0 {
		st.UnansweredSaves[n-1].Until = until.UTC()
	}
}

// fenceMargin is the lease time kept beyond one write attempt and its
// landing: no PUT (and no retry of one) starts with less than writeFence
// left.
const fenceMargin = 2 * time.Second

// writeFence is the lease time a PUT attempt needs left when it starts: the
// attempt itself (WriteAttempt, the client's timeout), the time a PUT the
// client gave up on may still take to land (one attempt more: the portal
// may still be working on it, see write's landBy) and the margin. So the
// lease outlives every attempt's landing, not only its answer.
func (s *Service) writeFence() time.Duration { return 2*s.writeAttempt() + fenceMargin }

// leaseGrace is how long the reconcile lease lasts past the invocation's
// deadline (lease.Options.Grace): the client starts no attempt later than
// one attempt before the deadline, so the last is given up at the deadline
// and may land until one attempt after it; a function killed at its
// deadline can neither keep nor release the lease, so the lease must last
// that long by itself. Within the invocation the deadline, not the lease,
// then bounds the attempts (writeFence holds exactly when one attempt
// fits before the deadline).
func (s *Service) leaseGrace() time.Duration { return s.writeAttempt() + fenceMargin }

func (s *Service) writeAttempt() time.Duration {
	if s.WriteAttempt > 0 {
		return s.WriteAttempt
	}
	return 10 * time.Second
}

// settle reads what became of the tool's last PUT whose landing was not
// seen (st.Sent) from the list the portal holds now, and returns the list
// and setting the portal is expected to hold without anyone else's doing
// (the base drift is measured against):
//
//	portal holds Sent          it landed: its added addresses become owned;
//	                           unless the trail shows no save by the key's
//	                           user while it could land (sentNeverLanded:
//	                           the list was made by hand, never owned)
//	portal holds LastSeen      not landed (yet): Sent stays expected
//	portal holds an older PUT  an attempt of it landed late, after newer
//	  of the tool (LateSent)   ones: the addresses it brought back are the
//	                           tool's own (owned again, so the plan removes
//	                           those no longer needed), and it is no drift;
//	                           unless the audit trail shows the newest save
//	                           was someone else's (savedByOther: a late
//	                           landing is the key's user's): then it is
//	                           their doing, measured as below
//	none of these              the nearer of LastSeen and Sent is the base
//	                           (Sent on a tie: it was sent after LastSeen
//	                           was read); Sent's added addresses on the
//	                           portal become owned only when Sent is it,
//	                           and not when the trail shows no save by the
//	                           key's user while Sent could land (it never
//	                           landed: what is there is someone else's);
//	                           the trail is believed only once it may show
//	                           the landing (TrailLag: the portal writes its
//	                           audit events up to a minute late)
func settle(st *ipguard.PortalState, current []ipguard.Restriction, enabled bool, facts settleFacts) (base []ipguard.Restriction, baseEnabled bool) {
	claim := func() {
		present := map[string]bool{}
		for _, r := range current {
			if !r.ForAdmin {
				present[r.IP] = true
			}
		}
		inSent := map[string]bool{}
		for _, r := range st.Sent {
			if !r.ForAdmin {
				inSent[r.IP] = true
			}
		}
		// Owned stays owned (a PUT taken for landed that did not land must
		// not disown what it would have removed); what it added is owned
		// where the portal shows it.
		owned := slices.Clone(st.Owned)
		for _, a := range st.SentAdded {
			if inSent[a] && present[a] && !slices.Contains(owned, a) {
				owned = append(owned, a)
			}
		}
		st.Owned = owned
		st.LastSeen, st.LastEnabled = st.Sent, st.SentEnable
		st.Sent, st.SentAdded, st.SentOutcome, st.SentAt = nil, nil, "", time.Time{}
	}
	dist := func(a, b []ipguard.Restriction) int { return len(diffList(a, b)) + len(diffList(b, a)) }
	switch {
	case st.Sent != nil && sameList(current, st.Sent) && enabled == st.SentEnable:
		if st.SentOutcome != ipguard.SentUnconfirmed && facts.sentNeverLanded != nil && facts.sentNeverLanded() {
			// Never landed: the list is someone else's doing (an admin
			// who added by hand just what it was to add), never owned.
			st.Sent, st.SentAdded, st.SentOutcome, st.SentAt = nil, nil, "", time.Time{}
			break
		}
		claim()
	case sameList(current, st.LastSeen):
	case lateKept(st.LateSent, listHash(current, enabled)) != nil && (facts.savedByOther == nil || !facts.savedByOther()):
		// What that PUT owned is the tool's; an entry of an admin's that
		// it merely kept is still the admin's.
		kept := lateKept(st.LateSent, listHash(current, enabled))
		for _, r := range diffList(current, st.LastSeen) {
			if !r.ForAdmin && !slices.Contains(kept, r.IP) && !slices.Contains(st.Owned, r.IP) {
				st.Owned = append(st.Owned, r.IP)
			}
		}
		return current, enabled
	case st.Sent != nil && dist(current, st.Sent) <= dist(current, st.LastSeen):
		if st.SentOutcome != ipguard.SentUnconfirmed && facts.sentNeverLanded != nil && facts.sentNeverLanded() {
			// Never landed (past its lease, the fence: it no longer can):
			// forgotten, so no later reconcile asks again.
			st.Sent, st.SentAdded, st.SentOutcome, st.SentAt = nil, nil, "", time.Time{}
			break
		}
		claim()
	}
	return st.LastSeen, st.LastEnabled
}

// reconcile brings the portal to the desired state stored at version
// st.Version, under the lease held. A portal failure is not an error: the
// state records it as pending (with the reason) and the outcome says so.
// Store failures are errors.
func (s *Service) reconcile(ctx context.Context, st ipguard.PortalState, held *lease.Held) (outcome, error) {
	now := s.now().UTC()
	version := st.Version
	defer span(ctx, "reconcile", time.Now())
	dueLeft := false
	if st.AlertsDue {
		// Under the lease, the flush is bounded (maxFlushUnderLease): a
		// topic that does not answer never holds the allowlist back; what
		// it leaves is sent again after the lease.
		if dueLeft = s.flushDueBy(ctx, time.Now().Add(maxFlushUnderLease)); !dueLeft {
			// Sent what an earlier reconcile left due: the outbox is empty.
			st.AlertsDue = false
		}
	}
	// A write recorded for a second look in the audit trail (#15 §5) that
	// is due now is looked at beside this pass's reads and its PUT; its
	// outcome goes into the state with this pass's last state write
	// (takeRecheck), never holding the PUT back.
	recheck := s.startRecheck(ctx, st)
	var recheckAlerted bool
	takeRecheck := func(st *ipguard.PortalState) {
		if recheck == nil {
			return
		}
		r := recheck()
		st.RecheckDue, recheckAlerted = r.next, r.alerted
		recheck = nil
		st.AlertsDue = st.AlertsDue || recheckAlerted
	}
	defer func() {
		// A pass that ended before any state write: an alert the second
		// look recorded is still marked due, for the next reconcile.
		if recheck != nil {
			if recheck().alerted {
				if err := s.Store.MarkAlertsDue(ctx); err != nil {
					s.log().Error("mark an alert as due (the next sync sends it)", "error", err)
				}
			}
		}
	}()
	// The GET→PUT window starts here. The two GETs go out together, and
	// while they are out the pass reads every user (and writes the expiry
	// of entries that expired): the scan, the longest store call of the
	// pass, costs no round trip of its own. The window is the GETs or the
	// scan, whichever ends later, then a pure plan and the PUT; an edit
	// that lands in it is found by the read-back and alerted (noteDrift).
	// A scan that outlasts the GETs by more than maxScanOverhang (many
	// users) is followed by the GETs again, so the window stays the GETs
	// and at most that much.
	var windowStart, getsEnded time.Time
	var enabled bool
	var current []ipguard.Restriction
	var enErr, getErr error
	gets := func() {
		windowStart = s.now()
		done := make(chan struct{})
		go func() {
			defer close(done)
			enabled, enErr = s.Portal.IPRestrictionsEnabled(ctx)
		}()
		current, getErr = s.Portal.IPRestrictions(ctx)
		<-done
		getsEnded = time.Now()
		span(ctx, "gets", windowStart)
	}
	getsDone := make(chan struct{})
	var getsPanic any
	go func() {
		defer close(getsDone)
		defer func() { getsPanic = recover() }()
		gets()
	}()
	waitGets := func() {
		<-getsDone
		if getsPanic != nil {
			panic(getsPanic) // in the caller's goroutine, where the handler recovers it
		}
	}
	tscan := time.Now()
	users, err := s.desiredUsers(ctx)
	span(ctx, "scan", tscan)
	if err != nil {
		waitGets()
		return outcome{}, err
	}
	out := outcome{by: "this request", dueAdded: dueLeft}
	// The fence of the state write: this pass writes only while the state
	// is the one it read (or its own), so a pass whose lease ran out never
	// replaces what a newer holder's pass wrote (owned, seen, in flight).
	st.Base, st.Pass = st.Pass, passID(held)
	// superseded: a newer pass wrote the state (this one's lease ran out
	// before it recorded its result): the newer pass, which read every
	// change stored before it started, stands and applies this change.
	superseded := func(err error) (outcome, error) {
		if !errors.Is(err, ErrSuperseded) {
			// A store failure: a PUT of this pass that went unanswered
			// may still land all the same (the lease is kept, landBy),
			// and one that landed is still checked in the audit trail
			// (holdConverge), with the alerts it recorded as due.
			return outcome{landBy: out.landBy, put: out.put, puts: out.puts, saves: out.saves, windowStart: out.windowStart,
				seenBefore: out.seenBefore, trail: out.trail, unanswered: out.unanswered, ownSaves: out.ownSaves,
				unansweredSaves: out.unansweredSaves, changedAfter: out.changedAfter, savedAfter: out.savedAfter,
				drift: out.drift, dueAdded: out.dueAdded, recheckKeys: out.recheckKeys, recheckErr: out.recheckErr}, err
		}
		out.portal, out.written, out.landBy, out.drift = PortalPending, nil, time.Time{}, nil
		out.reason = "this reconcile's lease ran out and a newer reconcile took over the portal allowlist; it applies the change"
		out.err = ipguard.Errorf(ipguard.EUnavailable, "%s", out.reason)
		s.log().Warn("portal allowlist state not written: a newer reconcile took over", "version", version, "error", err)
		return out, nil
	}
	if out.expired, err = s.expire(ctx, users, now, &out.warnings); err != nil {
		waitGets()
		return outcome{}, err
	}
	d := DesiredState(users, s.Settings, now)

	pending := func(cause error) (outcome, error) {
		reason := cause.Error()
		out.err = cause
		st.Pending, st.PendingCode, st.PendingVersion = reason, ipguard.ErrorCode(cause), version
		takeRecheck(&st)
		out.dueAdded = out.dueAdded || recheckAlerted
		recorded := s.recordWrite(ctx, &st, &out) // a PUT answered before the failure
		err := s.Store.PutPortalState(ctx, st)
		recorded()
		if err != nil {
			return superseded(err)
		}
		out.portal, out.reason = PortalPending, reason
		s.log().Warn("portal allowlist update pending", "reason", reason, "version", version)
		return out, nil
	}

	waitGets()
	if time.Since(getsEnded) > maxScanOverhang {
		gets() // the scan ran long after the GETs: read the portal again
	}
	if enErr != nil {
		return pending(fmt.Errorf("could not read the portal restriction setting: %w", enErr))
	}
	if getErr != nil {
		return pending(fmt.Errorf("could not read the portal allowlist: %w", getErr))
	}
	prevReconcile, prevSaves := st.LastReconcile, slices.Clone(st.OwnSaves)
	s.seedKeyUser(st.KeyUser)
	hadSent := st.Sent != nil
	sent, sentEnable, sentAt, sentOutcome, driftBeforeSent := st.Sent, st.SentEnable, st.SentAt, st.SentOutcome, st.DriftEpisode
	// The list the reconcile that sent it read, as its PUT kept it: the
	// list sent without the addresses it added (it removed only its own).
	keptOfRead := []ipguard.Restriction{}
	for _, r := range sent {
		if r.ForAdmin || !slices.Contains(st.SentAdded, r.IP) {
			keptOfRead = append(keptOfRead, r)
		}
	}
	base, baseEnabled := settle(&st, current, enabled, s.settleFacts(ctx, st))
	if hadSent && sentOutcome != ipguard.SentUnconfirmed && !sentAt.IsZero() && sameList(current, sent) && enabled == sentEnable && sameList(st.LastSeen, sent) {
		// A PUT that went unanswered landed: what others saved while it
		// was out is gone, and no answer dated it (checkLateLanded).
		out.lateLanded = &lateLanding{from: sentAt, to: landedBy(st.UnansweredSaves, sentAt, windowStart), before: keptOfRead, readSawDrift: driftBeforeSent != ""}
	}
	// A PUT of the tool that got no answer may have landed at an instant
	// no answer dated: its trail event is the key's user's, at no own save.
	// An attempt that went unanswered lands inside its span (the state's
	// UnansweredSaves, which attribution by facts reads): a PUT still
	// expected (hadSent) does not make every save by the key's user "maybe
	// the tool's", only one inside that span. An old list of the tool's
	// found landed (LateSent: a duplicate of an answered PUT may have no
	// span) does.
	out.unanswered = !sameList(base, st.LastSeen)
	drift := detectDrift(st, base, baseEnabled, current, enabled, s.Settings)
	// Switched off by hand, now or at an earlier reconcile that left them
	// off: they stay off unless drift repair is on.
	keepOff := !s.Settings.DriftRepair && !enabled && (drift != nil && drift.SwitchedOff || st.HandOff)
	// The lock-out preflight is asked only when its answer matters, and
	// never from a cache: a rotated key is judged as it is now. From the
	// preflight on, the pass's portal calls keep to the key it judged
	// (ipguard.KeyPin): a key rotated before the PUT cannot switch
	// restrictions on with the old key's answer.
	en := EnableRule{Allowed: true, KeepOff: keepOff}
	if !enabled && s.Settings.Enforce {
		ctx = ipguard.WithKeyPin(ctx)
		en = s.enableRule(ctx)
		en.KeepOff = keepOff
	}
	plan, err := PlanReconcile(current, enabled, st.Owned, d, s.Settings, en)
	if err != nil {
		// A hand edit past the cap is still drift: alert it.
		out.dueAdded = s.noteDrift(ctx, &st, drift, prevReconcile, prevSaves, nil) || out.dueAdded
		return pending(err)
	}
	out.warnings = append(out.warnings, plan.Warnings...)
	after, final := current, plan
	if plan.Put {
		// The second look is not waited for here: the PUT goes out as
		// soon as the pass's own reads allow (the GET→PUT window does not
		// grow by the trail's read); its outcome goes into the pass's last
		// state write, which waits for it (a look that outlasts the pass
		// lengthens it; a pass that ends before it: the deferred wait
		// above).
		out.windowStart, out.seenBefore = windowStart, current
		after, final, err = s.write(ctx, held, &st, current, enabled, d, en, plan, &out)
		st.OwnSaves = lastN(append(st.OwnSaves, out.saves...), MaxOwnSaves)
		out.ownSaves = st.OwnSaves
		if errors.Is(err, ErrSuperseded) {
			return superseded(err)
		}
		if err != nil {
			out.dueAdded = s.noteDrift(ctx, &st, drift, prevReconcile, prevSaves, out.saves) || out.dueAdded
			return pending(err)
		}
		out.put = true
		out.added, out.removed = final.Added, final.Removed
	}
	out.enabled = final.Enable
	out.missingOwned = plan.MissingOwned
	if drift != nil {
		drift.Restored = plan.MissingOwned
		drift.Reenabled = drift.SwitchedOff && final.Enable
	}

	st.Applied, st.Owned, st.LastSeen, st.LastEnabled = version, final.Owned, after, final.Enable
	st.Reconciled, st.Pending, st.PendingCode, st.PendingVersion, st.LastReconcile = true, "", "", 0, now
	if final.CapErr == nil {
		// Every change counted when st was read is on the portal now.
		st.AddsApplied = st.Adds
	} else {
		// Only the removals went out: the additions wait for the cap.
		st.Pending, st.PendingCode, st.PendingVersion = final.CapErr.Error(), ipguard.ErrorCode(final.CapErr), version
		out.warnings = append(out.warnings, "only removals were applied: "+final.CapErr.Error())
	}
	st.HandOff = en.KeepOff && !final.Enable
	// A preflight that could not ask (429, 5xx, no answer) is no lock-out
	// risk: no alert, and the episode neither ends nor starts. The pass
	// ends pending (EUnavailable), so the next reconcile asks again and a
	// lasting outage shows as one (no Syncs: SyncHeartbeatAlarm).
	unasked := en.Unavailable != nil && !en.KeepOff && !final.Enable
	if unasked && final.CapErr == nil {
		st.Pending, st.PendingCode, st.PendingVersion = en.Unavailable.Error(), ipguard.EUnavailable, version
	}
	lockout := !en.Allowed && s.Settings.Enforce && !enabled && en.Unavailable == nil
	if !lockout && en.Unavailable == nil {
		// The lock-out episode (if any) is over: its notice is sent again
		// when the condition comes back.
		st.LockoutNotice = ""
	}
	out.dueAdded = s.noteDrift(ctx, &st, drift, prevReconcile, prevSaves, out.saves) || out.dueAdded
	if lockout && st.LockoutNotice != en.Kind {
		st.LockoutNotice = en.Kind
		s.due(ctx, "lockout#"+en.Kind, s.lockoutAlert(en.Why))
		out.dueAdded = true
	}
	takeRecheck(&st)
	out.dueAdded = out.dueAdded || recheckAlerted
	st.AlertsDue = st.AlertsDue || out.dueAdded
	out.ownSaves, out.unansweredSaves = st.OwnSaves, st.UnansweredSaves
	if ku := s.cachedKeyUser(); ku != "" {
		// Kept for a fresh container that cannot ask (seedKeyUser).
		st.KeyUser = ku
	}
	if took := passTook(ctx); took > 0 && s.warmPasses.Swap(true) {
		// Not the first pass of this process: a cold one (the function
		// starting, its first connections) would make the waiters of the
		// next, faster pass sleep past its end.
		st.LastPass = nextLastPass(st.LastPass, took)
	}
	tps := time.Now()
	defer span(ctx, "stateWrite", tps)
	out.drift = drift // also for the trail check should this write fail
	// The window recorded for the second look is written beside the state.
	recorded := s.recordWrite(ctx, &st, &out)
	err = s.Store.PutPortalState(ctx, st)
	recorded()
	if err != nil {
		return superseded(err)
	}
	out.written = &st
	out.portal = PortalApplied
	if final.CapErr != nil {
		out.portal, out.reason, out.err = PortalPending, final.CapErr.Error(), final.CapErr
	} else if unasked {
		out.portal, out.reason, out.err = PortalPending, en.Unavailable.Error(), en.Unavailable
	}
	s.log().Info("reconciled portal allowlist", "version", version, "put", out.put, "added", len(out.added),
		"removed", len(out.removed), "expired", len(out.expired), "entries", len(after), "enabled", final.Enable)
	return out, nil
}

// maxScanOverhang bounds how much longer than its GETs a pass's scan of
// users (and expiry) may run and still use their answers: a longer scan
// is followed by the GETs again, so that the window in which a hand edit
// is overwritten does not grow with the number of users.
var maxScanOverhang = 250 * time.Millisecond

// nextLastPass is the pass length waiting changes go by after a pass that
// took took: a shorter pass is taken at once, a longer one only a quarter
// of the way (a waiter that wakes early polls once more; one that sleeps
// past the pass's end waits for nothing).
func nextLastPass(last, took time.Duration) time.Duration {
	if last <= 0 || took < last {
		return took
	}
	return last + (took-last)/4
}

// passID names a reconcile pass in the state it writes: the token of the
// lease it holds (a random one without a lease).
func passID(held *lease.Held) string {
	if held != nil && held.Owner != "" {
		return held.Owner
	}
	return "pass-" + claimToken()
}

// noteDrift attributes a drift and records its alert as due once per
// episode (the same drift seen again is not alerted again).
func (s *Service) noteDrift(ctx context.Context, st *ipguard.PortalState, drift *Drift, prev time.Time, prevSaves, saves []time.Time) bool {
	fp := drift.fingerprint()
	if drift == nil || fp == st.DriftEpisode {
		st.DriftEpisode = fp
		return false
	}
	st.DriftEpisode = fp
	s.attribute(ctx, drift, prev, append(slices.Clone(prevSaves), saves...), st.UnansweredSaves)
	s.due(ctx, "drift#"+fp[:16], s.driftAlert(drift))
	st.AlertsDue = true
	return true
}

func lastN[T any](xs []T, n int) []T {
	if len(xs) > n {
		return slices.Clone(xs[len(xs)-n:])
	}
	return xs
}

// write sends the plan and reads the list back, fenced by the lease, and
// records in st what became of each PUT:
//
//	before sending   Sent = the list, "in flight" (stored)
//	refused (4xx)    not applied: Sent back to what it was; nothing owned
//	no answer, 5xx   "unknown": it may land later; nothing owned
//	2xx, no re-read  "unconfirmed": owned once a later reconcile sees it
//	2xx, re-read     seen: its added addresses that are there are owned
//
// If the list read back is not the list sent, someone changed it meanwhile
// (a hand edit, or a late PUT): their entries are kept, ours are planned
// again and sent once more.
func (s *Service) write(ctx context.Context, held *lease.Held, st *ipguard.PortalState, current []ipguard.Restriction, enabled bool, d Desired, en EnableRule, plan Plan, out *outcome) ([]ipguard.Restriction, Plan, error) {
	first := plan
	owned := st.Owned
	for round := 0; ; round++ {
		if err := CheckKept(current, plan.List, owned); err != nil {
			return nil, Plan{}, err
		}
		if held != nil && time.Until(held.Until) < s.writeFence() {
			return nil, Plan{}, ipguard.Errorf(ipguard.EUnavailable,
				"not sent: less than one write attempt (%s), the time it may still take to land and a margin is left on the portal allowlist lease; the next reconcile sends it", s.writeAttempt())
		}
		prev := *st
		// Any attempt of this PUT may land late, after newer ones (a
		// client retry, a slow proxy): remember its list to repair it then
		// as the tool's own doing, not alert it as drift.
		if h, kept := listHash(plan.List, plan.Enable), notOwned(plan); lateKept(st.LateSent, h) == nil && len(kept) <= MaxLateKept {
			st.LateSent = lastN(append(st.LateSent, h+" "+strings.Join(kept, ",")), MaxLateSent)
		}
		st.Sent, st.SentAdded, st.SentEnable, st.SentOutcome, st.SentAt = plan.List, plan.Added, plan.Enable, ipguard.SentInFlight, s.now().UTC()
		if st.Sent == nil {
			st.Sent = []ipguard.Restriction{}
		}
		// Until its answer, it may land undated at any time before the
		// lease ends (the fence): recorded with "in flight", so that a
		// holder killed meanwhile leaves the span to attribution by facts.
		mayLand := s.now().Add(s.writeFence())
		if held != nil {
			mayLand = s.now().Add(time.Until(held.Until))
		}
		noteUnanswered(st, st.SentAt, mayLand)
		tif := time.Now()
		if err := s.Store.PutPortalState(ctx, *st); err != nil {
			return nil, Plan{}, err
		}
		span(ctx, "inFlightWrite", tif)
		wctx, cancel := ctx, func() {}
		if held != nil {
			// The client starts an attempt only while one attempt's time is
			// left before this deadline: its last is given up by then and
			// may land one attempt later, still inside the lease.
			wctx, cancel = context.WithDeadline(ctx, held.Until.Add(-fenceMargin-s.writeAttempt()))
		}
		var unanswered ipguard.UnansweredWrites
		wctx = ipguard.WithUnansweredWrites(wctx, &unanswered)
		out.puts++
		tput := time.Now()
		date, err := s.Portal.SaveIPRestrictions(wctx, plan.List, plan.Enable)
		cancel()
		span(ctx, "put", tput)
		if last := unanswered.Last(); err == nil && !last.IsZero() {
			// Answered on a retry, after an attempt that went unanswered:
			// that attempt may still land (the same list, but after
			// anything written once the lease is gone), so the lease is
			// kept until it can no longer, as after an unanswered PUT;
			// and its trail event has no dated instant.
			out.unanswered = true
			if by := last.Add(s.writeAttempt()); by.After(out.landBy) {
				out.landBy = by
			}
			landedUntil(st, s.now().Add(s.writeAttempt()))
		} else if err == nil {
			// Answered, every attempt: its save is dated (ownSaves).
			st.UnansweredSaves = prev.UnansweredSaves
		}
		if err != nil {
			if errors.Is(err, ipguard.ErrNotApplied) {
				// Not applied, so it cannot land late either.
				st.Sent, st.SentAdded, st.SentEnable, st.SentOutcome, st.SentAt = prev.Sent, prev.SentAdded, prev.SentEnable, prev.SentOutcome, prev.SentAt
				st.LateSent, st.UnansweredSaves = prev.LateSent, prev.UnansweredSaves
				return nil, Plan{}, fmt.Errorf("the portal refused the allowlist update (not applied): %w", err)
			}
			st.SentOutcome = ipguard.SentUnknown
			landedUntil(st, s.now().Add(s.writeAttempt()))
			// The portal may still be working on it: the lease is kept
			// until one attempt's time has passed since it went
			// unanswered (the fence), so the next holder reads the list
			// after it landed (settle: landed, no drift) instead of
			// writing under it.
			out.landBy = time.Now().Add(s.writeAttempt())
			return nil, Plan{}, fmt.Errorf("could not update the portal allowlist (outcome unknown: it may still land; the next reconcile checks): %w", err)
		}
		if date.IsZero() {
			date = s.now().UTC()
		}
		out.saves = append(out.saves, date)
		if s.Trail != nil {
			// The audit trail's read goes out with the read-back (#15 §6:
			// its answer is then in while the state is written, and the
			// lease is released sooner). A read-back that differs sends
			// the list again, and the trail is read again after that PUT
			// (this answer is then dropped, never used).
			out.trail = s.readTrail(ctx, out.windowStart.UTC().Truncate(time.Second))
		}
		trb := time.Now()
		after, err := s.Portal.IPRestrictions(ctx)
		span(ctx, "readBack", trb)
		if err != nil {
			out.trail = nil
			st.SentOutcome = ipguard.SentUnconfirmed
			return nil, Plan{}, fmt.Errorf("updated the portal allowlist but could not read it back (applied, not confirmed): %w", err)
		}
		st.Sent, st.SentAdded, st.SentOutcome, st.SentAt = nil, nil, "", time.Time{}
		if sameList(after, plan.List) {
			if round > 0 {
				plan.Added = union(first.Added, plan.Added)
				plan.Removed = union(first.Removed, plan.Removed)
			}
			return after, plan, nil
		}
		// Someone's save (or a late PUT) came after ours: the trail read
		// that went out with this read-back may have missed it, so it is
		// read again after the next PUT, or before the release when none
		// follows (trailChanges).
		out.trail = nil
		if lateKept(st.LateSent, listHash(after, plan.Enable)) == nil {
			// Someone saved between our PUT and the read-back: the trail
			// must show it (see checkForeignSaves).
			out.changedAfter = append(out.changedAfter, s.now().UTC())
			out.savedAfter = append(out.savedAfter, date)
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
		// Owned from now on: what the plan owned and the list read back
		// shows (seen after our own PUT).
		owned = nil
		for _, a := range plan.Owned {
			if holds(after, []string{a}) {
				owned = append(owned, a)
			}
		}
		st.Owned = owned
		// This PUT landed and was seen: its list is the tool's own doing,
		// the base the next reconcile measures drift from if a further
		// round fails (refused, fenced). Before, the list from before this
		// PUT stayed, and the next reconcile took the addresses this PUT
		// added for entries it did not know: drift about itself. What
		// someone else changed meanwhile stays drift (and is alerted).
		st.LastSeen, st.LastEnabled = plan.List, plan.Enable
		if round >= 2 {
			return nil, Plan{}, fmt.Errorf("the portal allowlist kept changing during the update")
		}
		current = after
		if plan, err = PlanReconcile(current, enabled, owned, d, s.Settings, en); err != nil {
			return nil, Plan{}, err
		}
		if !plan.Put {
			return after, plan, nil
		}
	}
}

// isOwn tells the tool's own saves in the audit trail from anyone else's by
// facts: a save is the tool's only when it is by the user the key acts as
// (when known) and at one of the instants the portal dated the answers to
// the tool's PUTs (the trail has second precision). Each own instant
// accounts for one save at most, so an admin's save in the same second is
// still someone else's.
//
// With unanswered (a PUT of the tool went without an answer, so its landing
// has no dated instant), an unmatched save by the key's user counts as the
// tool's too; so does one inside a span in which an undated save of the
// tool may have landed (windows, widened by unansweredSlack).
//
// The key's user is asked once per process; when saves by others remain,
// it is asked again (one keys/@self): the key may have been rotated since
// to one another user created, whose saves are the tool's now.
func (s *Service) foreign(ctx context.Context, changes []Change, saves []time.Time, unanswered bool, windows []ipguard.SaveWindow) []Change {
	keyUser := s.keyUser(ctx, false)
	out := foreignOf(keyUser, changes, saves, unanswered, windows)
	if keyUser != "" && len(out) > 0 {
		if fresh := s.keyUser(ctx, true); fresh != keyUser {
			s.log().Info("the API key acts as another portal user than when last asked (rotated)")
			out = foreignOf(fresh, changes, saves, unanswered, windows)
		}
	}
	return out
}

// foreignOf is foreign with the key's user known (keyUser, "" unknown).
func foreignOf(keyUser string, changes []Change, saves []time.Time, unanswered bool, windows []ipguard.SaveWindow) []Change {
	used := make([]bool, len(saves))
	own := make([]bool, len(changes))
	// Newest first (the tool's save comes after the edits its reconcile
	// read), the same second first, then the second before the answer's
	// Date (the portal stamps the event while it works and dates the
	// answer when it is done).
	for _, slack := range []time.Duration{0, time.Second} {
		for j := len(changes) - 1; j >= 0; j-- {
			c := changes[j]
			if own[j] || keyUser != "" && !strings.EqualFold(ipguard.CanonicalUserID(c.UserID), keyUser) {
				continue
			}
			for i, t := range saves {
				if dt := t.Truncate(time.Second).Sub(c.When.Truncate(time.Second)); !used[i] && dt == slack {
					used[i], own[j] = true, true
					break
				}
			}
		}
	}
	var out []Change
	for j, c := range changes {
		if keyUser != "" && strings.EqualFold(ipguard.CanonicalUserID(c.UserID), keyUser) && (unanswered || inWindow(c.When, windows)) {
			own[j] = true
		}
		if !own[j] {
			out = append(out, c)
		}
	}
	return out
}

// inWindow reports whether a trail instant (whole seconds) falls in one of
// the spans, each widened by unansweredSlack.
func inWindow(at time.Time, windows []ipguard.SaveWindow) bool {
	at = at.Truncate(time.Second)
	for _, w := range windows {
		if !at.Before(w.From.Add(-unansweredSlack).Truncate(time.Second)) && !at.After(w.Until.Add(unansweredSlack)) {
			return true
		}
	}
	return false
}

// keyUser is the portal user the key acts as (its creator), asked once per
// process (again when refresh); "" when unknown.
func (s *Service) keyUser(ctx context.Context, refresh bool) string {
	if s.Directory == nil {
		return ""
	}
	s.preflight.Lock()
	k := s.knownKeyUser
	s.preflight.Unlock()
	if k != "" && !refresh {
		return k
	}
	id, err := s.Directory.KeyCreator(ctx)
	if err != nil {
		return k
	}
	id = ipguard.CanonicalUserID(id)
	s.preflight.Lock()
	s.knownKeyUser = id
	s.preflight.Unlock()
	return id
}

// cachedKeyUser is the key's user as this process knows it ("" unknown).
func (s *Service) cachedKeyUser() string {
	s.preflight.Lock()
	defer s.preflight.Unlock()
	return s.knownKeyUser
}

// seedKeyUser gives a process that does not know the key's user yet the
// one the state keeps (the last reconcile that knew it): attribution by
// facts needs it, also when keys/@self cannot be asked now. A key rotated
// since is learnt as before: saves that remain someone else's make
// foreign ask keys/@self again.
func (s *Service) seedKeyUser(id string) {
	if id == "" {
		return
	}
	s.preflight.Lock()
	defer s.preflight.Unlock()
	if s.knownKeyUser == "" {
		s.knownKeyUser = ipguard.CanonicalUserID(id)
	}
}

// readTrail reads the audit trail's allowlist changes since from in the
// background; the function it returns waits for the answer (a panic of
// the read is its error: the check is skipped, as when the read fails).
func (s *Service) readTrail(ctx context.Context, from time.Time) func() ([]Change, error) {
	var changes []Change
	var err error
	wait := background(func() { changes, err = s.Trail.AllowlistChanges(ctx, from) },
		func(p any) { err = fmt.Errorf("read the audit trail: panic: %v", p) })
	return func() ([]Change, error) {
		wait()
		return changes, err
	}
}

// background runs f in a goroutine of its own; the function it returns
// waits for it. A panic of f is given to caught (in that goroutine), so
// what the caller waits for is never lost to it.
func background(f func(), caught func(p any)) (wait func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() {
			if p := recover(); p != nil {
				caught(p)
			}
		}()
		f()
	}()
	return func() { <-done }
}

// checkForeignSaves looks in the portal's audit trail for allowlist saves
// since the window started that are not the tool's own (see foreign). A
// save between our GET and our last PUT was overwritten by it (the list
// cannot show that; only the trail can): it is alerted as drift naming
// who and when, with the list the tool saw before it wrote, so that they
// can redo the change. Every foreign save is named in the result.
func (s *Service) checkForeignSaves(ctx context.Context, out *outcome) {
	if s.Trail == nil || len(out.saves) == 0 {
		return
	}
	since := out.windowStart.UTC().Truncate(time.Second)
	changes, err := s.trailChanges(ctx, out)
	if err != nil {
		out.warnings = append(out.warnings, uncheckedText(out, err))
		if rs, ok := s.Store.(Rechecks); ok && out.written != nil && out.written.TrailNotice != "" {
			// Alerted as not checked (or covered by its episode's alert):
			// a second look given up later says it not again.
			for _, k := range out.recheckKeys {
				if err := rs.AddRecheckAlerted(ctx, k, []string{uncheckedMark + k}); err != nil {
					s.log().Error("note the write alerted as not checked in its record", "error", err)
				}
			}
		}
		return
	}
	// The write's window: our own saves (the state remembers this
	// reconcile's and the earlier ones, as a multiset: two saves in one
	// second are two), its span, what its read saw (overwrittenBy).
	others, overwritten := s.overwrittenBy(ctx, s.windowOf(out), changes)
	s.checkKeyUserEdit(ctx, out, changes, others)
	if len(others) == 0 {
		return
	}
	var who []string
	for _, c := range others {
		who = append(who, fmt.Sprintf("%s by %s from %s", c.When.UTC().Format(time.RFC3339), humantext.Line(c.User, 100), humantext.Line(c.IP, 64)))
	}
	out.warnings = append(out.warnings, fmt.Sprintf(
		"the portal's audit trail shows %d allowlist save(s) by someone else during this update (%s); a change saved just before our update may have been overwritten, check the portal",
		len(others), strings.Join(who, "; ")))
	if len(overwritten) == 0 {
		return
	}
	// A save in the second an earlier back-to-back write's window shares
	// with this one's may have been alerted already (by that write's check
	// right after or its look, noted in the records): alerted once.
	recs, rerr := s.recordedWrites(ctx)
	if fresh := slices.DeleteFunc(slices.Clone(overwritten), func(v ChangeView) bool { return alertedIn(recs, v) }); len(fresh) > 0 {
		key, a := s.overwrittenAlert(since, out.seenBefore, len(out.seenBefore), fresh)
		s.dueNow(ctx, key, a)
	}
	// The second look, once the trail caught up, alerts only others (of
	// this write's and of the others' records).
	s.noteAlerted(ctx, out, overwritten, recs, rerr)
}

// recordedWrites are the records for the second look (none with a store
// without Rechecks; err logged).
func (s *Service) recordedWrites(ctx context.Context) ([]ipguard.Recheck, error) {
	rs, _ := s.Store.(Rechecks)
	if rs == nil {
		return nil, nil
	}
	recs, err := rs.Rechecks(ctx)
	if err != nil {
		// A save alerted already may be alerted once more: at least once.
		s.log().Error("read the writes recorded for a second look, for the overwritten saves alerted", "error", err)
	}
	return recs, err
}

// alertedIn reports whether a record of recs whose window holds the save v
// has it among its alerted keys.
func alertedIn(recs []ipguard.Recheck, v ChangeView) bool {
	for _, r := range recs {
		var w overwriteWindow
		if slices.Contains(r.Alerted, alertedKey(v)) && json.Unmarshal([]byte(r.Body), &w) == nil && w.holds(v) {
			return true
		}
	}
	return false
}

// holds reports whether the save v (as shown) falls in one of w's spans.
func (w overwriteWindow) holds(v ChangeView) bool {
	at, err := time.Parse(time.RFC3339, v.When)
	return err == nil && w.inside(at)
}

// checkLateLanded looks in the audit trail for allowlist saves by someone
// else while an unanswered PUT of the tool was out (from its second until
// the read that found it landed): the portal holds exactly the list that
// PUT sent, so those saves were overwritten by it. They are alerted as
// drift naming who and when, with the list the tool had last seen before
// it, as for an answered PUT (checkForeignSaves). Saves by the key's user
// count as the tool's own (its unanswered attempts have no dated instant).
func (s *Service) checkLateLanded(ctx context.Context, l lateLanding) {
	if s.Trail == nil {
		return
	}
	since := l.from.UTC().Truncate(time.Second)
	changes, err := s.Trail.AllowlistChanges(ctx, since)
	if err != nil {
		// Not checked: a save by someone else it overwrote goes unseen, a
		// lost coverage a person must know of (as after an answered write,
		// noteTrailEpisode). A late landing is found once (its Sent is
		// settled), so this is one alert per landing; keyed by it, so a
		// landing found again (its state write lost) is not alerted twice.
		s.log().Error("audit trail unreadable after a late landing: not checked for an overwritten save", "error", err)
		s.dueNow(ctx, "trailcheck#late#"+l.from.UTC().Format(time.RFC3339Nano), s.uncheckedAlertOf(uncheckedSpanText(l.from, l.to, err),
			"The update went unanswered and was found landed later (at the end of that span).\n"))
		return
	}
	var overwritten []ChangeView
	for _, c := range s.foreign(ctx, changes, nil, true, nil) {
		// A save in the PUT's own second may have come before the read
		// that preceded it (whole seconds: the trail cannot tell): when
		// that read saw the list changed, it was alerted as drift then,
		// and its entries were kept, so it decides (as checkForeignSaves
		// does with the drift its read saw).
		if l.readSawDrift && c.When.UTC().Truncate(time.Second).Equal(since) {
			continue
		}
		if !c.When.After(l.to) {
			overwritten = append(overwritten, changeView(c))
		}
	}
	if len(overwritten) == 0 {
		return
	}
	before := l.before
	if before == nil {
		before = []ipguard.Restriction{}
	}
	d := &Drift{MissingOwned: []string{}, Unknown: []ipguard.Restriction{}, Restored: []string{}, Changes: overwritten,
		Overwritten: before, Since: since.Format(time.RFC3339), overwrittenAsKept: true}
	s.dueNow(ctx, "overwritten#"+overwritten[0].When+"#"+overwritten[0].UserID, s.driftAlert(d))
}

// dueNow records a as due under key and sends what is due. It is for
// alerts found outside a reconcile's state write (after the lease was
// released), where no reconcile sets the state's due flag: it is marked
// here, so that the next change's reconcile sends the alert if this
// publish fails (not only the next sync).
func (s *Service) dueNow(ctx context.Context, key string, a ipguard.Alert) {
	s.due(ctx, key, a)
	if err := s.Store.MarkAlertsDue(ctx); err != nil {
		s.log().Error("mark an alert as due (the next sync sends it if this publish fails)", "error", err)
	}
	s.flushDue(ctx)
}

// settleFacts are the audit trail's answers settle asks for, each only when
// the lists alone cannot tell (a nil one: not known, the lists decide).
type settleFacts struct {
	// savedByOther: the newest save since the last reconcile is not the
	// key's user's (so not a late landing of the tool's).
	savedByOther func() bool
	// sentNeverLanded: no save by the key's user while Sent could land
	// (so Sent, not answered 2xx, never landed).
	sentNeverLanded func() bool
}

// settleFacts asks the trail about st (read as the reconcile found it).
func (s *Service) settleFacts(ctx context.Context, st ipguard.PortalState) settleFacts {
	return settleFacts{
		savedByOther:    func() bool { return s.savedByOther(ctx, st.LastReconcile, st.OwnSaves, st.UnansweredSaves) },
		sentNeverLanded: func() bool { return s.sentNeverLanded(ctx, st.SentAt, st.UnansweredSaves) },
	}
}

// TrailLag is how long after a save the portal's audit trail may first
// show it: DocSpace holds audit events (action 2000 and up; an allowlist
// save is 6094) in a message cache and writes them in batches, at most a
// minute after the last batch by default (its
// messaging:CacheTimeFromMinutes; the cache is polled every 100 ms). A
// trail without a save proves that the save was not made only once it is
// this long past (the minute and a margin for the write and the clocks).
var TrailLag = 75 * time.Second

// sentNeverLanded reports whether the audit trail shows no allowlist save
// by the user the key acts as while a PUT of the tool sent at sentAt could
// land (from sentAt until the end of its span in windows, the fence; each
// widened by unansweredSlack for the two clocks): that PUT never landed. A
// save of the key's user after the span (the owner may be the key's user,
// and edit by hand) is not its landing. False when it cannot tell: also
// while the span's end is less than TrailLag past (the trail may not show
// the landing yet), and then the list decides.
func (s *Service) sentNeverLanded(ctx context.Context, sentAt time.Time, windows []ipguard.SaveWindow) bool {
	if s.Trail == nil || sentAt.IsZero() {
		return false
	}
	end, bounded := sentAt.Add(s.writeFence()), false
	for _, w := range windows {
		if w.From.Equal(sentAt.UTC()) {
			end, bounded = w.Until, true
			break
		}
	}
	if s.now().Before(end.Add(unansweredSlack + TrailLag)) {
		return false // the trail may not show its landing yet
	}
	keyUser := s.keyUser(ctx, false)
	if keyUser == "" {
		return false
	}
	changes, err := s.Trail.AllowlistChanges(ctx, sentAt.Add(-unansweredSlack).UTC().Truncate(time.Second))
	if err != nil {
		return false
	}
	inSpan := func(c Change) bool { return !bounded || !c.When.After(end.Add(unansweredSlack)) }
	savedBy := func(user string) bool {
		return slices.ContainsFunc(changes, func(c Change) bool {
			return strings.EqualFold(ipguard.CanonicalUserID(c.UserID), user) && inSpan(c)
		})
	}
	if savedBy(keyUser) {
		return false
	}
	if slices.ContainsFunc(changes, inSpan) {
		// Saves by someone else in the span: the key may have been rotated
		// since this process asked (to one another user created, whose
		// saves are the tool's now): asked again, as foreign does.
		if fresh := s.keyUser(ctx, true); fresh != "" && fresh != keyUser && savedBy(fresh) {
			return false
		}
	}
	return true
}

// savedByOther reports whether the newest allowlist save in the audit
// trail since since (its second) is by someone else than the user the key
// acts as: then the list the portal holds is that person's doing, not a
// late landing of a PUT of the tool (which is a save by the key's user). A
// save by someone else in the newest second decides for them (an alert
// rather than a silent repair). False when it cannot tell (no trail, no
// key user, the trail unreadable).
//
// The trail is written late (TrailLag), so a trail that does not show the
// other person's save yet shows no late landing either: a late landing is
// an attempt of the tool's that went unanswered, inside its span
// (windows), and once every span is TrailLag past it would show, as a save
// by the key's user at none of the tool's dated instants (ownSaves). A
// duplicate of an answered PUT (a proxy's retry) may land late too, near
// that PUT's instant: an own save that recent counts as a span. With no
// such save and no span that recent, the list is someone else's doing.
func (s *Service) savedByOther(ctx context.Context, since time.Time, ownSaves []time.Time, windows []ipguard.SaveWindow) bool {
	if s.Trail == nil {
		return false
	}
	keyUser := s.keyUser(ctx, false)
	if keyUser == "" {
		return false
	}
	changes, err := s.Trail.AllowlistChanges(ctx, since.UTC().Truncate(time.Second))
	if err != nil {
		return false
	}
	if len(changes) > 0 {
		newest := slices.MaxFunc(changes, func(a, b Change) int { return a.When.Compare(b.When) }).When.Truncate(time.Second)
		if slices.ContainsFunc(changes, func(c Change) bool {
			return c.When.Truncate(time.Second).Equal(newest) && !strings.EqualFold(ipguard.CanonicalUserID(c.UserID), keyUser)
		}) {
			return true
		}
	}
	for _, w := range windows {
		if s.now().Before(w.Until.Add(unansweredSlack + TrailLag)) {
			return false // a late landing may not show yet
		}
	}
	for _, d := range ownSaves {
		if s.now().Before(d.Add(s.writeFence() + unansweredSlack + TrailLag)) {
			return false // a duplicate of it landing late may not show yet
		}
	}
	undated := func(user string) bool {
		// Each dated instant accounts for one save of the key's user (as in
		// attribution): a second save in its second is undated.
		return slices.ContainsFunc(foreignOf(user, changes, ownSaves, false, nil), func(c Change) bool {
			return strings.EqualFold(ipguard.CanonicalUserID(c.UserID), user)
		})
	}
	if undated(keyUser) {
		return false // a save of the key's user no answer dated: maybe a late landing
	}
	if len(changes) > 0 {
		// The key may have been rotated since this process asked.
		if fresh := s.keyUser(ctx, true); fresh != "" && fresh != keyUser && undated(fresh) {
			return false
		}
	}
	return true
}

// noteTrailEpisode, under the lease after a pass that wrote the portal,
// records whether its read of the audit trail answered (terr): a write
// whose trail could not be read was not checked for a save by someone else
// it overwrote (checkForeignSaves), a lost coverage a person must know of.
// It is alerted once per episode, keyed by the failure's kind (an error
// code, never its text): the state's TrailNotice, written again (the
// holder's own pass, under its lease) only when the episode begins or ends.
// The same write records the episode of the write's record for the second
// look that could not be stored (RecordNotice, see recordEpisode).
func (s *Service) noteTrailEpisode(ctx context.Context, out *outcome, terr error) {
	if s.Trail == nil || out.written == nil || len(out.saves) == 0 {
		return
	}
	kind := ""
	if terr != nil {
		if kind = string(ipguard.ErrorCode(terr)); kind == "" {
			kind = "failed"
		}
		s.log().Error("audit trail unreadable after the allowlist update: not checked for an overwritten save", "kind", kind, "error", terr)
	}
	record := s.recordEpisode(out)
	out.recordNoted = true // its episode is in the state (alerted below when it begins)
	if kind == out.written.TrailNotice && record == out.written.RecordNotice {
		return
	}
	st := *out.written
	if kind != st.TrailNotice {
		st.TrailNotice = kind
		if kind != "" {
			s.due(ctx, "trailcheck#"+kind, s.uncheckedAlert(out, terr))
			out.dueAdded, st.AlertsDue = true, true
		}
	}
	if record != st.RecordNotice {
		st.RecordNotice = record
		if record != "" {
			s.due(ctx, "trailcheck#record#"+record, s.unrecordedAlert(out))
			out.dueAdded, st.AlertsDue = true, true
		}
	}
	if err := s.Store.PutPortalState(ctx, st); err != nil {
		// Not recorded: the next unchecked write alerts again (at least once).
		s.log().Error("record the audit-trail episode", "error", err)
		return
	}
	out.written = &st
}

// recordEpisode is the kind of the failure to store the records for the
// second look of out's writes (out.recheckErr, an error code), "" when they
// were stored, and the state's RecordNotice unchanged when none was to be.
func (s *Service) recordEpisode(out *outcome) string {
	switch {
	case out.recheckErr != nil:
		if kind := string(ipguard.ErrorCode(out.recheckErr)); kind != "" {
			return kind
		}
		return "failed"
	case len(out.recheckKeys) > 0:
		return ""
	}
	return out.written.RecordNotice
}

// uncheckedText says that the write of out was not checked in the trail.
func uncheckedText(out *outcome, terr error) string {
	return uncheckedSpanText(out.windowStart, slices.MaxFunc(out.saves, func(a, b time.Time) int { return a.Compare(b) }), terr)
}

// uncheckedSpanText says that a write of the tool between from and to was
// not checked in the trail.
func uncheckedSpanText(from, to time.Time, terr error) string {
	from, to = from.UTC().Truncate(time.Second), to.UTC().Truncate(time.Second)
	return fmt.Sprintf("the portal's audit trail could not be read after this update (%s), so it was not checked for an allowlist save by someone else between %s and %s, which the update would have overwritten: check the portal's audit trail (IP restrictions saved) for that time and redo such a change",
		humantext.Line(terr.Error(), 300), from.Format(time.RFC3339), to.Format(time.RFC3339))
}

// uncheckedAlert is the alert of a write not checked for overwritten saves
// (an allowlist_drift of severity medium: a change outside the tool may
// have been overwritten, and nothing could tell).
func (s *Service) uncheckedAlert(out *outcome, terr error) ipguard.Alert {
	more := "Further updates are not alerted again until the audit trail answers.\n"
	if _, ok := s.Store.(Rechecks); ok {
		more += fmt.Sprintf("The update is looked at again once the trail answers (for up to %.0f hours); a save it overwrote that shows then is alerted as drift.\n", RecheckGiveUp.Hours())
	}
	return s.uncheckedAlertOf(uncheckedText(out, terr), more)
}

// uncheckedAlertOf is the alert of a write not checked, what saying which
// (then more, a paragraph of its own).
func (s *Service) uncheckedAlertOf(what, more string) ipguard.Alert {
	def, _ := json.Marshal(map[string]any{"kind": "allowlist_drift", "severity": "medium", "portal": s.PortalName, "unchecked": true, "what": what})
	return ipguard.Alert{
		Subject:  "DocSpace: IP allowlist update not checked for overwritten saves (audit trail unreadable)",
		Default:  string(def),
		Email:    "DocSpace IP Guard updated the IP allowlist of " + humantext.Line(s.PortalName, 200) + ", but " + what + ".\n\n" + more,
		SMS:      "DocSpace IP Guard: allowlist update not checked for overwritten saves (audit trail unreadable). See email.",
		Severity: "medium",
		Kinds:    []string{"allowlist_drift"},
	}
}

// savedAfterPUT marks the saves by someone else (others, oldest first) that
// were made after a PUT of the tool rather than before it, where the
// trail's second cannot tell: each PUT whose read-back showed a save after
// it (its Date in savedAfter) accounts for one save in its second (or the
// second before: the portal dates its answer once done), newest first.
// That save's entries were kept (the read-back), so it was not
// overwritten. Within one second the trail cannot tell which of two saves
// came after the PUT: the newest listed is taken for it.
func savedAfterPUT(others []Change, savedAfter []time.Time) []bool {
	after := make([]bool, len(others))
	used := make([]bool, len(savedAfter))
	for _, slack := range []time.Duration{0, time.Second} {
		for i, d := range savedAfter {
			if used[i] {
				continue
			}
			for j := len(others) - 1; j >= 0; j-- {
				if !after[j] && d.Truncate(time.Second).Sub(others[j].When.Truncate(time.Second)) == slack {
					after[j], used[i] = true, true
					break
				}
			}
		}
	}
	return after
}

// trailChanges is the audit trail's allowlist changes since the window
// started: the answer of the read sent with the last PUT's read-back
// (out.trail), or read now (after several passes' PUTs, or when the list
// read back differed); nil without a trail or a PUT.
func (s *Service) trailChanges(ctx context.Context, out *outcome) ([]Change, error) {
	if s.Trail == nil || len(out.saves) == 0 {
		return nil, nil
	}
	if out.trail != nil {
		return out.trail()
	}
	return s.Trail.AllowlistChanges(ctx, out.windowStart.UTC().Truncate(time.Second))
}

// checkKeyUserEdit: the list read back after one of our PUTs differed from
// what we sent (and not by a late PUT of ours), so someone saved in
// between; when the trail names nobody but the key's own user then, the
// facts of the trail (same user, same second) cannot tell that save from
// the tool's, but the content can: it was a hand edit by the key's user
// (or several tool saves and one of theirs). It is named as a possible hand
// edit, with the key user's saves of those seconds, in the result.
func (s *Service) checkKeyUserEdit(ctx context.Context, out *outcome, changes, others []Change) {
	if len(out.changedAfter) == 0 {
		return
	}
	first := out.windowStart.UTC().Truncate(time.Second)
	last := slices.MaxFunc(out.changedAfter, func(a, b time.Time) int { return a.Compare(b) })
	inside := func(c Change) bool { return !c.When.Before(first) && !c.When.After(last) }
	keyUser := s.keyUser(ctx, false)
	byKeyUser := func(c Change) bool {
		return keyUser == "" || strings.EqualFold(ipguard.CanonicalUserID(c.UserID), keyUser)
	}
	if slices.ContainsFunc(others, func(c Change) bool { return inside(c) && !byKeyUser(c) }) {
		return // someone else's save is named already
	}
	var who []string
	for _, c := range changes {
		if inside(c) && byKeyUser(c) {
			who = append(who, fmt.Sprintf("%s by %s from %s", c.When.UTC().Format(time.RFC3339), humantext.Line(c.User, 100), humantext.Line(c.IP, 64)))
		}
	}
	msg := "the portal allowlist changed between this reconcile's save and its read-back, yet the audit trail shows no save by anyone but the user the key acts as"
	if len(who) > 0 {
		msg += " (" + strings.Join(who, "; ") + ")"
	}
	msg += ": a possible hand edit by the key's own user in the tool's second, which the trail cannot tell from the tool's own save (same user, same second); its entries were kept and the tool's put back, check the portal"
	out.warnings = append(out.warnings, msg)
	s.log().Warn("possible hand edit by the key's user during the update", "saves", len(who))
}

// expire moves the entries whose time ran out at now from the users'
// entries to their expired list (so the audit stops accepting them), in
// users and in the store. A user written concurrently is left for the next
// reconcile (its entries are still filtered by time here).
//
// users may be as DesiredUsers read them (the other fields zero): a user
// with an entry to move is read whole first, and that record is written,
// so nothing the scan left out is lost. A record that does not decode
// whole (EInternal: an attribute beside the entries broken, which the
// scan did not read) cannot be written back without losing what it holds:
// it is left as a user written concurrently (its expired entries leave the
// portal by time, and stay in its record), with a warning in warns naming
// it, and the pass goes on (one such item failed every pass).
func (s *Service) expire(ctx context.Context, users []ipguard.User, now time.Time, warns *[]string) ([]ExpiredView, error) {
	var views []ExpiredView
	_, partial := s.Store.(DesiredReader)
	for i, u := range users {
		active := u.ActiveEntries(now)
		if len(active) == len(u.Entries) {
			continue
		}
		if partial {
			whole, found, err := s.Store.GetUser(ctx, u.ID)
			if ipguard.ErrorCode(err) == ipguard.EInternal {
				*warns = append(*warns, fmt.Sprintf("stored user %s has entries whose time ran out, but its record cannot be read whole (%s): past their time they are not in the desired list, but they stay in its record until its item (pk user#<id>) is fixed or deleted in the table",
					humantext.Line(u.ID, 128), humantext.Line(err.Error(), 300)))
				s.log().Warn("expired entries not moved: the user's record cannot be read whole", "user", humantext.Line(u.ID, 128), "error", err)
				continue
			}
			if err != nil {
				return nil, err
			}
			if !found {
				continue // deleted since the scan: nothing to move
			}
			if u, active = whole, whole.ActiveEntries(now); len(active) == len(u.Entries) {
				users[i] = u // changed since the scan: nothing to move now
				continue
			}
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
		ok, err := s.replaceUser(ctx, next, u.Rev) // never over an offboarding meanwhile
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
