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
	users, err := s.Store.AllUsers(ctx)
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
	if out.expired, err = s.expire(ctx, users, now); err != nil {
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
	lockout := !en.Allowed && s.Settings.Enforce && !enabled
	if !lockout {
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

// Rechecks is optional on a Store: the records of the tool's writes to
// look at again in the audit trail once it has caught up (#15 §5: the
// portal writes its trail up to a minute late, so a save by someone else
// that a write overwrote is mostly not in it when the write is checked
// right after). One item of their own, one attribute per record: adding
// or removing one never rewrites another, and the portal state item stays
// within its size.
type Rechecks interface {
	// PutRecheck stores r (replacing the record with its key; r.Alerted
	// is added to the keys already stored with it) and removes the records
	// keyed drop, in one write. It returns every record stored after the
	// write, oldest first.
	PutRecheck(ctx context.Context, r ipguard.Recheck, drop []string) ([]ipguard.Recheck, error)
	// Rechecks returns every stored record, oldest first (From), strongly
	// consistent. A record the store cannot decode comes back with an
	// empty Body under a key ClearRechecks removes it by (alerted as
	// unreadable and dropped), never failing the read of the others.
	Rechecks(ctx context.Context) ([]ipguard.Recheck, error)
	// AddRecheckAlerted adds keys to the Alerted of the record with key
	// (concurrent adds all stay); a record not stored is not made.
	AddRecheckAlerted(ctx context.Context, key string, alerted []string) error
	// ClearRechecks removes the records with keys (an unknown key is fine).
	ClearRechecks(ctx context.Context, keys []string) error
}

// MaxRechecks bounds the records of writes waiting for their second look
// in the trail: past it the two oldest are merged into one (never dropped:
// see mergeRechecks), so the item stays within DynamoDB's 400 KB (each
// record is at most a few tens of KB, mostly a few).
const MaxRechecks = 12

// RecheckGiveUp bounds how long a recorded write whose trail cannot be
// read is tried again: then it is alerted as not checked (once) and
// dropped.
var RecheckGiveUp = 24 * time.Hour

// recheckRetry is how long after a trail read that failed the records it
// was to check are tried again (not on every reconcile under load).
var recheckRetry = time.Minute

// maxRecheckUnderLease bounds the second look's read of the trail, which
// runs under the lease (beside the reconcile's own reads): a trail that
// does not answer in time counts as unreadable, and the records are tried
// again later.
var maxRecheckUnderLease = 3 * time.Second

// The bounds of one record's lists (a merged record's unions; the seen
// list is clipped to MaxAlertList, with its full count).
const (
	maxWindowSpans = 32
	maxWindowSaves = 60
	// maxWindowAlerted bounds the saves a merged record keeps as alerted
	// (the oldest beyond it may be alerted once more).
	maxWindowAlerted = 20
)

// overwriteWindow is what deciding which saves a write of the tool
// overwrote needs (overwrittenBy), kept in a Recheck's body until the
// trail has caught up.
type overwriteWindow struct {
	// Spans: from each window's start (its GET) to its last own save; one
	// per write, several after a merge (a save between two of them was
	// read by the later one, not overwritten).
	Spans []writeSpan `json:"spans"`
	// KeyUser is the portal user the key acted as when the write was made
	// (its saves were that user's, whatever the key acts as later).
	KeyUser string `json:"keyUser,omitempty"`
	// OwnSaves are the tool's dated saves (the state's, as the write left
	// them); Unanswered and UnansweredSaves its undated ones (see foreign).
	OwnSaves        []time.Time          `json:"own,omitempty"`
	Unanswered      bool                 `json:"unanswered,omitempty"`
	UnansweredSaves []ipguard.SaveWindow `json:"undated,omitempty"`
	// OwnUntil, set when a merge clipped the oldest of OwnSaves or
	// UnansweredSaves (maxWindowSaves): a save by the key's user (KeyUser,
	// or the one it acts as now) up to this instant's second counts as the
	// tool's, as its instant is no longer kept (never alerted as someone
	// else's save the tool overwrote).
	OwnUntil time.Time `json:"ownUntil,omitzero"`
	// SavedAfter are the Dates of the PUTs whose read-back showed a save
	// after them (savedAfterPUT).
	SavedAfter []time.Time `json:"savedAfter,omitempty"`
	// DriftSaves are the saves the reconcile's own read saw (seenKey),
	// alerted as its drift (not overwritten); kept up to maxWindowSaves
	// (one past it could only be alerted once more, never lost).
	DriftSaves []string `json:"driftSaves,omitempty"`
	// Seen is the list the tool read before its write (clipped to
	// MaxAlertList; SeenCount entries in all).
	Seen      []ipguard.Restriction `json:"seen"`
	SeenCount int                   `json:"seenCount"`
	// Due: the trail shows every save of the window from then on; Written:
	// when the record was made (RecheckGiveUp).
	Due     time.Time `json:"due"`
	Written time.Time `json:"written"`
}

type writeSpan struct {
	From    time.Time `json:"from"`
	LastOwn time.Time `json:"lastOwn"`
}

// inside reports whether a trail instant (whole seconds) falls in one of
// the window's spans: from its start's second to its last own save's.
func (w overwriteWindow) inside(at time.Time) bool {
	at = at.Truncate(time.Second)
	for _, sp := range w.Spans {
		if !at.Before(sp.From.Truncate(time.Second)) && !at.After(sp.LastOwn.Truncate(time.Second)) {
			return true
		}
	}
	return false
}

// since is the window's first second (the trail is read from it).
func (w overwriteWindow) since() time.Time {
	return w.Spans[0].From.UTC().Truncate(time.Second)
}

// recheckDue is when the trail shows every save of a window whose last own
// save is lastOwn (the portal's Date): an overwritten save came before it,
// and the trail shows a save TrailLag after it at the latest (with the
// slack for the two clocks).
func recheckDue(lastOwn time.Time) time.Time {
	return lastOwn.Add(TrailLag + unansweredSlack).UTC()
}

// firstDue is when the window's oldest span is due (recheckDue of its last
// own save): a merged window's Due is its newest span's.
func (w overwriteWindow) firstDue() time.Time {
	return recheckDue(w.Spans[0].LastOwn)
}

// splitDue parts a merged window whose oldest spans are due at now, but
// not all of them: due holds those (each span's due is its last own
// save's), rest the others (from its first span on: a save between the two
// parts was read by the later write, overwritten by neither). ok is false
// when there is nothing to part.
func (w overwriteWindow) splitDue(now time.Time) (due, rest overwriteWindow, ok bool) {
	i := 0
	for i < len(w.Spans) && !now.Before(recheckDue(w.Spans[i].LastOwn)) {
		i++
	}
	if i == 0 || i == len(w.Spans) {
		return w, w, false
	}
	due, rest = w, w
	due.Spans, due.Due = slices.Clone(w.Spans[:i]), recheckDue(w.Spans[i-1].LastOwn)
	rest.Spans, rest.Written = slices.Clone(w.Spans[i:]), w.Spans[i].LastOwn
	return due, rest, true
}

// windowOf is the window of the write(s) of out (checkForeignSaves).
func (s *Service) windowOf(out *outcome) overwriteWindow {
	saves := out.ownSaves
	if len(saves) == 0 {
		saves = out.saves
	}
	lastOwn := slices.MaxFunc(out.saves, func(a, b time.Time) int { return a.Compare(b) })
	w := overwriteWindow{
		Spans:   []writeSpan{{From: out.windowStart.UTC(), LastOwn: lastOwn.UTC()}},
		KeyUser: s.cachedKeyUser(), OwnSaves: slices.Clone(saves), Unanswered: out.unanswered, UnansweredSaves: slices.Clone(out.unansweredSaves),
		SavedAfter: slices.Clone(out.savedAfter), Seen: slices.Clone(clipList(out.seenBefore)), SeenCount: len(out.seenBefore),
		Due: recheckDue(lastOwn), Written: s.now().UTC(),
	}
	if out.drift != nil {
		for _, c := range out.drift.Changes {
			w.DriftSaves = append(w.DriftSaves, seenKey(c))
		}
	}
	return w
}

// overwrittenBy decides, from the trail's changes, the saves by someone
// else since w's start (others: not the tool's own, see foreign) and of
// them those the tool's write overwrote: inside a span of w (up to its last
// own save's second), not made after one of its PUTs (savedAfterPUT), and
// not one the reconcile's read already saw (its drift, alerted as such).
// The check right after the write (checkForeignSaves) and the second look
// once the trail caught up (recheckWrites) both decide by it.
func (s *Service) overwrittenBy(ctx context.Context, w overwriteWindow, changes []Change) (others []Change, overwritten []ChangeView) {
	since := w.since()
	changes = slices.DeleteFunc(slices.Clone(changes), func(c Change) bool { return c.When.Before(since) })
	others = s.foreign(ctx, changes, w.OwnSaves, w.Unanswered, w.UnansweredSaves)
	keyUser := s.cachedKeyUser()
	if w.KeyUser != "" && !strings.EqualFold(w.KeyUser, keyUser) {
		// The key may have been rotated since the write (or this process
		// knew of a rotation only later): the write's saves were those of
		// one of the two users, the one whose saves are at the tool's own
		// instants (a fact of the trail); the other's saves are someone
		// else's, also when that user is the key's now (an admin who made
		// a key of their own after the write overwrote their save).
		then := foreignOf(w.KeyUser, changes, w.OwnSaves, w.Unanswered, w.UnansweredSaves)
		if keyUser == "" || ownCount(changes, w.KeyUser, then) >= ownCount(changes, keyUser, others) {
			others, keyUser = then, w.KeyUser
		}
	}
	if !w.OwnUntil.IsZero() && len(others) > 0 && keyUser != "" {
		// The oldest own saves of a long merged record, kept by their
		// last instant only: the saves of the write's key user up to it
		// are the tool's.
		until := w.OwnUntil.Truncate(time.Second)
		others = slices.DeleteFunc(others, func(c Change) bool {
			return !c.When.Truncate(time.Second).After(until) && strings.EqualFold(ipguard.CanonicalUserID(c.UserID), keyUser)
		})
	}
	after := savedAfterPUT(others, w.SavedAfter)
	for j, c := range others {
		if v := changeView(c); !after[j] && w.inside(c.When) && !slices.Contains(w.DriftSaves, seenKey(v)) {
			overwritten = append(overwritten, v)
		}
	}
	return others, overwritten
}

// ownCount is how many of changes by user are the tool's own (not in
// foreign, foreignOf's answer for that user as the key's).
func ownCount(changes []Change, user string, foreign []Change) int {
	n := 0
	for _, c := range changes {
		if strings.EqualFold(ipguard.CanonicalUserID(c.UserID), user) && !slices.Contains(foreign, c) {
			n++
		}
	}
	return n
}

// seenKey names a save the reconcile's read saw (its second, who, from
// where), the way the window keeps it: hashed, so it is small whatever the
// portal wrote.
func seenKey(v ChangeView) string {
	sum := sha256.Sum256([]byte(v.When + "\n" + v.UserID + "\n" + v.IP))
	return hex.EncodeToString(sum[:8])
}

// alertedKey names an overwritten save (its second and who) among the
// ones already alerted (ipguard.Recheck.Alerted).
func alertedKey(v ChangeView) string { return v.When + "#" + v.UserID }

// overwrittenAlert is the drift alert of the saves overwritten by a write
// that read seen (count entries in all) before it, and its outbox key.
func (s *Service) overwrittenAlert(since time.Time, seen []ipguard.Restriction, count int, overwritten []ChangeView) (string, ipguard.Alert) {
	if seen == nil {
		seen = []ipguard.Restriction{}
	}
	d := &Drift{MissingOwned: []string{}, Unknown: []ipguard.Restriction{}, Restored: []string{}, Changes: overwritten,
		Overwritten: seen, Since: since.UTC().Format(time.RFC3339)}
	if count > len(seen) {
		d.OverwrittenCount = count
	}
	return "overwritten#" + alertedKey(overwritten[0]), s.driftAlert(d)
}

// minDue is the earlier of two instants, zero standing for none.
func minDue(a, b time.Time) time.Time {
	if a.IsZero() || !b.IsZero() && b.Before(a) {
		return b
	}
	return a
}

// recordWrite, under the lease with the state write of a pass whose PUT
// was answered, records the pass's window for the second look in the
// trail (a Recheck) and sets st.RecheckDue; the record is written while
// the state is (the returned function waits for it, and notes in out what
// became of it). A store without Rechecks records nothing.
func (s *Service) recordWrite(ctx context.Context, st *ipguard.PortalState, out *outcome) func() {
	rs, _ := s.Store.(Rechecks)
	if rs == nil || s.Trail == nil || len(out.saves) == 0 || out.recorded {
		return func() {}
	}
	out.recorded = true
	w := s.windowOf(out)
	key := out.windowStart.UTC().Format(time.RFC3339Nano)
	st.RecheckDue = minDue(st.RecheckDue, w.Due)
	w.DriftSaves = lastN(w.DriftSaves, maxWindowSaves) // kept small (the check right after uses all)
	var err error
	wait := background(func() {
		if w.KeyUser == "" {
			// Asked once per process (beside the state write): whose saves
			// the write's were, should the key be rotated before the look.
			w.KeyUser = s.keyUser(ctx, false)
		}
		var body []byte
		if body, err = json.Marshal(w); err != nil {
			return
		}
		var all []ipguard.Recheck
		all, err = rs.PutRecheck(ctx, ipguard.Recheck{Key: key, From: w.Spans[0].From, Body: string(body)}, nil)
		for err == nil && len(readable(all)) > MaxRechecks {
			// The two oldest readable ones (an unreadable record is
			// alerted and dropped by the next second look, and does not
			// hold the others past their bound meanwhile).
			ok := readable(all)
			merged, merr := mergeRechecks(ok[0], ok[1])
			if merr != nil {
				s.log().Error("merge the oldest writes recorded for a second look in the trail", "error", merr)
				break
			}
			s.log().Info("recorded writes for a second look in the trail past their bound: the two oldest merged", "records", len(all))
			var merr2 error
			if all, merr2 = rs.PutRecheck(ctx, merged, []string{ok[0].Key, ok[1].Key}); merr2 != nil {
				// The write's record is stored (its second look comes);
				// the item is one past its bound until a later write merges.
				s.log().Error("merge the oldest writes recorded for a second look in the trail (merged by a later write)", "error", merr2)
				break
			}
		}
	}, func(p any) { err = fmt.Errorf("record the write for a second look in the trail: panic: %v", p) })
	return func() {
		if wait(); err != nil {
			out.recheckErr = err
			return
		}
		out.recheckKeys = append(out.recheckKeys, key)
	}
}

// readable is the records of all whose body is a window (oldest first).
func readable(all []ipguard.Recheck) []ipguard.Recheck {
	return slices.DeleteFunc(slices.Clone(all), func(r ipguard.Recheck) bool {
		var w overwriteWindow
		return json.Unmarshal([]byte(r.Body), &w) != nil || len(w.Spans) == 0
	})
}

// mergeRechecks makes one record of the two oldest (a older than b), kept
// under a key of its own (a's and b's are dropped): every span of both, the unions of their saves, of the
// saves their reads saw and of the ones alerted, the list a's write read
// and b's due. Nothing either would find is lost; a save between their
// spans (read by b's reconcile, not overwritten) stays outside both.
func mergeRechecks(a, b ipguard.Recheck) (ipguard.Recheck, error) {
	var wa, wb overwriteWindow
	if err := json.Unmarshal([]byte(a.Body), &wa); err != nil {
		return a, fmt.Errorf("record %s: %w", a.Key, err)
	}
	if err := json.Unmarshal([]byte(b.Body), &wb); err != nil {
		return a, fmt.Errorf("record %s: %w", b.Key, err)
	}
	m := wa
	alerted := union(a.Alerted, b.Alerted)
	m.Spans = append(slices.Clone(wa.Spans), wb.Spans...)
	marked := make([]bool, len(m.Spans)) // each span's write alerted as not checked (uncheckedMark)
	for i, sp := range m.Spans {
		marked[i] = slices.Contains(alerted, uncheckedMark+sp.From.UTC().Format(time.RFC3339Nano))
	}
	for len(m.Spans) > maxWindowSpans {
		// The two oldest spans as one (more saves inside, none outside),
		// marked only when both were.
		m.Spans = append([]writeSpan{{From: m.Spans[0].From, LastOwn: m.Spans[1].LastOwn}}, m.Spans[2:]...)
		marked = append([]bool{marked[0] && marked[1]}, marked[2:]...)
	}
	// The alerted keys are bounded as the lists are: a mark per span kept
	// (uncheckedAlerted reads no other), the newest maxWindowAlerted of
	// the saves alerted (an older one may be alerted once more, never lost)
	// and the unreadable mark.
	var saves, keep []string
	for _, k := range alerted {
		if k == unreadableMark {
			keep = append(keep, k)
		} else if !strings.HasPrefix(k, uncheckedMark) {
			saves = append(saves, k)
		}
	}
	slices.Sort(saves) // alertedKey: its second first (RFC 3339), so oldest first
	keep = append(keep, lastN(saves, maxWindowAlerted)...)
	for i, sp := range m.Spans {
		if marked[i] {
			keep = append(keep, uncheckedMark+sp.From.UTC().Format(time.RFC3339Nano))
		}
	}
	// Own saves past the bound are dropped oldest first, and OwnUntil
	// moves up to the last one dropped: the key's user's saves up to it
	// are still the tool's (overwrittenBy), never someone else's.
	if wb.OwnUntil.After(m.OwnUntil) {
		m.OwnUntil = wb.OwnUntil
	}
	own := unionTimes(wa.OwnSaves, wb.OwnSaves)
	if cut := len(own) - maxWindowSaves; cut > 0 {
		m.OwnUntil = latest(m.OwnUntil, own[cut-1])
		own = own[cut:]
	}
	m.OwnSaves = own
	m.SavedAfter = lastN(unionTimes(wa.SavedAfter, wb.SavedAfter), maxWindowSaves)
	m.Unanswered = wa.Unanswered || wb.Unanswered
	m.UnansweredSaves = slices.Clone(wa.UnansweredSaves)
	for _, u := range wb.UnansweredSaves {
		if !slices.Contains(m.UnansweredSaves, u) {
			m.UnansweredSaves = append(m.UnansweredSaves, u)
		}
	}
	if cut := len(m.UnansweredSaves) - maxWindowSaves; cut > 0 {
		for _, u := range m.UnansweredSaves[:cut] {
			m.OwnUntil = latest(m.OwnUntil, u.Until.Add(unansweredSlack))
		}
		m.UnansweredSaves = m.UnansweredSaves[cut:]
	}
	m.DriftSaves = lastN(union(wa.DriftSaves, wb.DriftSaves), maxWindowSaves)
	if wb.Due.After(m.Due) {
		m.Due = wb.Due
	}
	body, err := json.Marshal(m)
	if err != nil {
		return a, err
	}
	// A key of its own (both a and b are dropped): the store adds a
	// record's alerted keys to those it keeps, so only a new record keeps
	// no more than keep.
	key := "merged " + m.Spans[0].From.UTC().Format(time.RFC3339Nano) + " " + m.Spans[len(m.Spans)-1].From.UTC().Format(time.RFC3339Nano)
	return ipguard.Recheck{Key: key, From: a.From, Body: string(body), Alerted: keep}, nil
}

// latest is the later of two instants.
func latest(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// unionTimes is the multiset union of two sorted-or-not lists of instants
// (each instant as often as in the list that has it most: two saves in one
// second are two), oldest first.
func unionTimes(a, b []time.Time) []time.Time {
	count := func(xs []time.Time, t time.Time) int {
		n := 0
		for _, x := range xs {
			if x.Equal(t) {
				n++
			}
		}
		return n
	}
	out := slices.Clone(a)
	for _, t := range b {
		if count(out, t) < count(b, t) {
			out = append(out, t)
		}
	}
	slices.SortFunc(out, func(x, y time.Time) int { return x.Compare(y) })
	return out
}

// noteAlerted adds the overwritten saves alerted (now or before) to the
// records of out's writes, and to those of the other writes whose windows
// hold one (noteAlertedInOthers: a save in the second an earlier write's
// window shares with this one's), so no second look alerts them again.
// recs and rerr: the records as read before the alert (recordedWrites).
func (s *Service) noteAlerted(ctx context.Context, out *outcome, overwritten []ChangeView, recs []ipguard.Recheck, rerr error) {
	keys := make([]string, len(overwritten))
	for i, v := range overwritten {
		keys[i] = alertedKey(v)
	}
	rs, _ := s.Store.(Rechecks)
	if rs == nil {
		return
	}
	for _, k := range out.recheckKeys {
		if err := rs.AddRecheckAlerted(ctx, k, keys); err != nil {
			// The second look may alert them once more: at least once.
			s.log().Error("note the overwritten saves alerted in the write's record", "error", err)
		}
	}
	if rerr == nil {
		// An earlier write's record not read: its look may alert one once
		// more (at least once).
		s.noteAlertedInOthers(ctx, rs, recs, out.recheckKeys, overwritten)
	}
}

// uncheckedMark and a write's key (its window's start), among a record's
// alerted keys, say that the write was alerted as not checked right after
// it (the trail unreadable: the episode's alert covers it). Per write, so
// that a merged record is covered only when each of its writes is
// (uncheckedAlerted).
const uncheckedMark = "unchecked#"

// unreadableMark, among an unreadable record's alerted keys, says that it
// was alerted as unreadable already (its removal failed after).
const unreadableMark = "unreadable"

// uncheckedAlerted reports whether every write of w was alerted as not
// checked right after it (alerted: its record's alerted keys).
func uncheckedAlerted(alerted []string, w overwriteWindow) bool {
	for _, sp := range w.Spans {
		if !slices.Contains(alerted, uncheckedMark+sp.From.UTC().Format(time.RFC3339Nano)) {
			return false
		}
	}
	return len(w.Spans) > 0
}

// startRecheck, under the lease at a reconcile's start, begins the second
// look in the trail when a recorded write is due (st.RecheckDue), beside
// the reconcile's own reads; the function it returns waits for it and
// gives the next RecheckDue and whether an alert was recorded as due. The
// scheduled sync (withRecheckSweep) reads the records whatever RecheckDue
// says (one read each sync): a record whose pass's state write was refused
// (a newer pass took over, and its state does not know the record) is
// looked at by the next sync all the same. The trail is read only when a
// record is due.
func (s *Service) startRecheck(ctx context.Context, st ipguard.PortalState) func() recheckResult {
	if _, sweep := ctx.Value(recheckSweepKey{}).(bool); !sweep && (st.RecheckDue.IsZero() || s.now().Before(st.RecheckDue)) {
		return func() recheckResult { return recheckResult{next: st.RecheckDue} }
	}
	var r recheckResult
	wait := background(func() {
		defer span(ctx, "recheck", time.Now())
		s.seedKeyUser(st.KeyUser)
		r = s.recheckWrites(ctx, st)
	}, func(p any) {
		s.log().Error("second look in the audit trail: panic (tried again later)", "panic", fmt.Sprint(p))
		r = recheckResult{next: st.RecheckDue}
	})
	return func() recheckResult {
		wait()
		return r
	}
}

// recheckResult is what a second look in the trail leaves for the state:
// the next RecheckDue and whether it recorded an alert as due.
type recheckResult struct {
	next    time.Time
	alerted bool
}

// recheckSweepKey marks the context of the scheduled sync's reconcile
// (withRecheckSweep).
type recheckSweepKey struct{}

// withRecheckSweep makes the reconcile of ctx read the records for the
// second look whatever the state's RecheckDue says (startRecheck).
func withRecheckSweep(ctx context.Context) context.Context {
	return context.WithValue(ctx, recheckSweepKey{}, true)
}

// recheckWrites looks again at the recorded writes that are due: one read
// of the trail from the oldest one's start, each decided as right after
// its write (overwrittenBy), and the overwritten saves not alerted yet are
// alerted as drift (recorded as due: the caller marks the state), naming
// who and when, with the list the tool read before that write. Checked
// records are removed. When the trail cannot be read they stay (tried
// again after recheckRetry), but one past RecheckGiveUp is alerted as not
// checked and dropped: those given up in one look are one alert, naming
// only the writes whose check right after failed too, but was not covered
// by that alert (uncheckedMark: "further updates are not alerted again
// until the audit trail answers" said it of the others already). It
// returns the next RecheckDue (due, unchanged, when the records cannot be
// read) and whether it recorded an alert.
func (s *Service) recheckWrites(ctx context.Context, st ipguard.PortalState) (res recheckResult) {
	due := st.RecheckDue
	rs, _ := s.Store.(Rechecks)
	if rs == nil {
		return recheckResult{}
	}
	recs, err := rs.Rechecks(ctx)
	if err != nil {
		s.log().Error("read the writes recorded for a second look in the trail (tried again by the next reconcile)", "error", err)
		return recheckResult{next: due}
	}
	var next time.Time
	var alerted bool
	defer func() { res.next, res.alerted = next, alerted }()
	now := s.now()
	type record struct {
		rec ipguard.Recheck
		w   overwriteWindow
		// rest: the spans of a merged record not due yet, kept in the
		// record once w (its due spans) was looked at.
		rest *overwriteWindow
	}
	var todo []record
	var done []string
	// noted: what a record removed (done) had alerted now, kept in it
	// should its removal fail, so that the next look alerts none of it
	// again (the outbox sends a key again once it was sent and cleared).
	noted := map[string][]string{}
	for _, r := range recs {
		var w overwriteWindow
		if err := json.Unmarshal([]byte(r.Body), &w); err != nil || len(w.Spans) == 0 {
			// Unreadable: what it would check is lost, said once (also
			// when its removal failed after it was said: unreadableMark).
			done = append(done, r.Key)
			if slices.Contains(r.Alerted, unreadableMark) {
				continue
			}
			noted[r.Key] = []string{unreadableMark}
			s.log().Error("a write recorded for a second look in the trail is unreadable: dropped", "key", r.Key, "error", err)
			s.due(ctx, "trailcheck#recheck#"+r.Key, s.uncheckedAlertOf(fmt.Sprintf("its record for a second look in the audit trail (record %s) could not be read, so that update was not checked again for an allowlist save by someone else that it overwrote: check the portal's audit trail (IP restrictions saved) around that time and redo such a change",
				humantext.Line(r.Key, 64)), ""))
			alerted = true
			continue
		}
		if now.Before(w.Due) {
			// A merged record whose older spans are due already: they
			// are looked at now, not held back by the newest write merged
			// in (a long burst of writes), and the rest is kept.
			if due, rest, ok := w.splitDue(now); ok {
				todo = append(todo, record{r, due, &rest})
				next = minDue(next, rest.firstDue())
			} else {
				next = minDue(next, w.firstDue())
			}
			continue
		}
		todo = append(todo, record{r, w, nil})
	}
	// The tool's own saves are those of every write it recorded and of the
	// state (the newest): a write's record knows only the saves up to its
	// own, and the next pass's read and PUT may fall in the second of its
	// last save (back-to-back passes), where that save, by the key's user,
	// would be taken for someone else's inside the window.
	own, undated := slices.Clone(st.OwnSaves), slices.Clone(st.UnansweredSaves)
	for _, r := range recs {
		var w overwriteWindow
		if json.Unmarshal([]byte(r.Body), &w) == nil {
			own = unionTimes(own, w.OwnSaves)
			for _, u := range w.UnansweredSaves {
				if !slices.Contains(undated, u) {
					undated = append(undated, u)
				}
			}
		}
	}
	for i := range todo {
		todo[i].w.OwnSaves = unionTimes(own, todo[i].w.OwnSaves)
		todo[i].w.UnansweredSaves = undated
	}
	if len(todo) > 0 && s.Trail == nil {
		for _, t := range todo {
			done = append(done, t.rec.Key) // no trail to look in (any more)
		}
		todo = nil
	}
	if len(todo) > 0 {
		from := todo[0].w.since()
		for _, t := range todo {
			if t.w.since().Before(from) {
				from = t.w.since()
			}
		}
		// The trail's read is bounded (maxRecheckUnderLease); the store's
		// calls after it (the alerts, the removal) are not cut short by it.
		tctx, cancel := context.WithTimeout(ctx, maxRecheckUnderLease)
		changes, terr := s.Trail.AllowlistChanges(tctx, from)
		cancel()
		// alertedNow: the saves this look alerted, oldest write first (a
		// save in the second two writes' windows share is alerted once,
		// by the older's look; noted in the other records below).
		var alertedNow []ChangeView
		defer func() { s.noteAlertedInOthers(ctx, rs, recs, done, alertedNow) }()
		var givenUp []string           // the records' keys
		var giveFrom, giveTo time.Time // from the first one's start to the last one's last save
		// finish removes a record looked at, or keeps the rest of a
		// merged one (alerted: the saves alerted from it now).
		finish := func(t record, alerted []string) {
			if t.rest == nil {
				done = append(done, t.rec.Key)
				if len(alerted) > 0 {
					noted[t.rec.Key] = alerted
				}
				return
			}
			body, err := json.Marshal(*t.rest)
			if err == nil {
				_, err = rs.PutRecheck(ctx, ipguard.Recheck{Key: t.rec.Key, From: t.rest.Spans[0].From, Body: string(body), Alerted: alerted}, nil)
			}
			if err != nil {
				// Looked at again whole (an alert may go twice: at least once).
				s.log().Error("keep the rest of a merged write recorded for a second look in the trail", "error", err)
				next = minDue(next, now)
			}
		}
		for _, t := range todo {
			first, last := t.w.Spans[0].From, t.w.Spans[len(t.w.Spans)-1].LastOwn
			if terr != nil {
				if now.Sub(t.w.Written) < RecheckGiveUp {
					next = minDue(next, now.Add(recheckRetry))
					continue
				}
				s.log().Error("audit trail unreadable for a day after the allowlist update: no longer checked for an overwritten save", "key", t.rec.Key, "error", terr)
				if !uncheckedAlerted(t.rec.Alerted, t.w) {
					if len(givenUp) == 0 || first.Before(giveFrom) {
						giveFrom = first
					}
					giveTo = latest(giveTo, last)
					givenUp = append(givenUp, t.rec.Key)
				}
				var marks []string // each write alerted as not checked (uncheckedAlerted)
				for _, sp := range t.w.Spans {
					marks = append(marks, uncheckedMark+sp.From.UTC().Format(time.RFC3339Nano))
				}
				finish(t, marks)
				continue
			}
			_, over := s.overwrittenBy(ctx, t.w, changes)
			over = slices.DeleteFunc(over, func(v ChangeView) bool {
				return slices.Contains(t.rec.Alerted, alertedKey(v)) || slices.ContainsFunc(alertedNow, func(a ChangeView) bool { return alertedKey(a) == alertedKey(v) })
			})
			alertedNow = append(alertedNow, over...)
			if len(over) > 0 {
				key, a := s.overwrittenAlert(t.w.since(), t.w.Seen, t.w.SeenCount, over)
				s.log().Warn("a save by someone else overwritten by the tool's write, found once the audit trail caught up", "saves", len(over))
				s.due(ctx, key, a)
				alerted = true
			}
			keys := make([]string, len(over))
			for i, v := range over {
				keys[i] = alertedKey(v)
			}
			finish(t, keys)
		}
		if terr != nil {
			s.log().Warn("audit trail unreadable for the second look at the tool's writes (tried again later)", "error", terr)
		}
		if len(givenUp) > 0 {
			// One alert for the writes this look gives up (those whose
			// check right after was alerted as not checked are not again).
			what := uncheckedSpanText(giveFrom, giveTo, terr)
			if len(givenUp) > 1 {
				what += fmt.Sprintf(" (%d updates in that time)", len(givenUp))
			}
			s.due(ctx, "trailcheck#recheck#"+givenUp[0], s.uncheckedAlertOf(what,
				fmt.Sprintf("It was tried again for %.0f hours after the update, while the trail kept failing; this update is no longer checked.\n", RecheckGiveUp.Hours())))
			alerted = true
		}
	}
	if len(done) > 0 {
		if err := rs.ClearRechecks(ctx, done); err != nil {
			// Looked at again by the next reconcile, which alerts nothing
			// of what this look alerted (noted; if that cannot be kept
			// either, an alert may go twice: at least once).
			s.log().Error("remove the writes looked at again in the trail", "error", err)
			next = minDue(next, now)
			for _, k := range done {
				if keys := noted[k]; len(keys) > 0 {
					if err := rs.AddRecheckAlerted(ctx, k, keys); err != nil {
						s.log().Error("note what a write looked at again alerted in its record", "error", err)
					}
				}
			}
		}
	}
	return res // next and alerted: the deferred
}

// noteAlertedInOthers adds the saves alerted (alerted, by a look or by the
// check right after a write) to the alerted keys of each other record
// kept (not in done) whose window holds one: the trail's second cannot
// say which of two back-to-back writes overwrote a save in the second they
// share, and it is alerted once.
func (s *Service) noteAlertedInOthers(ctx context.Context, rs Rechecks, recs []ipguard.Recheck, done []string, alerted []ChangeView) {
	if len(alerted) == 0 {
		return
	}
	for _, r := range recs {
		var w overwriteWindow
		if slices.Contains(done, r.Key) || json.Unmarshal([]byte(r.Body), &w) != nil || len(w.Spans) == 0 {
			continue
		}
		var keys []string
		for _, v := range alerted {
			if w.holds(v) && !slices.Contains(r.Alerted, alertedKey(v)) {
				keys = append(keys, alertedKey(v))
			}
		}
		if len(keys) > 0 {
			if err := rs.AddRecheckAlerted(ctx, r.Key, keys); err != nil {
				// Its look may alert them once more: at least once.
				s.log().Error("note the overwritten saves alerted in another write's record", "error", err)
			}
		}
	}
}

// noteUnrecorded, after the lease, alerts a write whose record for the
// second look in the trail could not be stored (out.recheckErr) when its
// pass wrote no state to keep the episode in (noteTrailEpisode keeps it,
// alerted once per episode, RecordNotice): only the check right after it
// ran, before the trail may show a save made during it, a lost coverage a
// person must know of.
func (s *Service) noteUnrecorded(ctx context.Context, out *outcome) {
	if out.recheckErr == nil || len(out.saves) == 0 || out.recordNoted {
		return
	}
	s.dueNow(ctx, "trailcheck#record#"+out.windowStart.UTC().Truncate(time.Second).Format(time.RFC3339), s.unrecordedAlert(out))
}

// unrecordedAlert is the alert of out's write whose record for the second
// look could not be stored (out.recheckErr).
func (s *Service) unrecordedAlert(out *outcome) ipguard.Alert {
	s.log().Error("record the allowlist update for a second look in the audit trail: not checked again once the trail caught up", "error", out.recheckErr)
	from, to := out.windowStart.UTC().Truncate(time.Second), slices.MaxFunc(out.saves, func(a, b time.Time) int { return a.Compare(b) }).UTC().Truncate(time.Second)
	return s.uncheckedAlertOf(fmt.Sprintf(
		"its record for a second look in the portal's audit trail could not be stored (%s); the trail shows a save up to a minute late, so the update was checked only before an allowlist save by someone else between %s and %s, which it would have overwritten, may show: check the portal's audit trail (IP restrictions saved) for that time and redo such a change",
		humantext.Line(out.recheckErr.Error(), 300), from.Format(time.RFC3339), to.Format(time.RFC3339)),
		"Further updates whose record cannot be stored are not alerted again until one is stored: check the portal's audit trail for every allowlist update until then.\n")
}
