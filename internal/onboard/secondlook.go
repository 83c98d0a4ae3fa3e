package onboard

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"ipguard/internal/humantext"
	"ipguard/internal/ipguard"
)

// The second look in the audit trail (#15 §5; docs/allowlist-reconcile.md
// "The second look in the trail"): each write that PUT is recorded, and the
// first reconcile due after the portal's trail caught up decides it again.

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
	var decoded []overwriteWindow // every record read, for the tool's own saves below
	for _, r := range recs {
		var w overwriteWindow
		err := json.Unmarshal([]byte(r.Body), &w)
		if err == nil {
			decoded = append(decoded, w)
		}
		if err != nil || len(w.Spans) == 0 {
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
	for _, w := range decoded {
		own = unionTimes(own, w.OwnSaves)
		for _, u := range w.UnansweredSaves {
			if !slices.Contains(undated, u) {
				undated = append(undated, u)
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
