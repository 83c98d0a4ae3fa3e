package behaviour

import (
	"time"

	"ipguard/internal/audit"
	"ipguard/internal/ipguard"
)

// Each user's logins are judged in time order, whatever the cut into runs
// and pieces (#21 §3: findings do not depend on how time is cut into runs).
// A run reads its window newest first, in pieces: when it judges a login
// of a newer piece it has not read the older logins of its own window yet.
// So the logins of every user the run meets in a piece before its last,
// and their findings, are held for the run's last piece, which judges them
// with that piece's logins, in time order. A user is held for a reason, or
// tentatively:
//   - for a reason: a user still learning when the run first meets them
//     (fewer than BASELINE_MIN_LOGINS logins and fewer than
//     BASELINE_MIN_DAYS days before the run), who may stop learning within
//     the window; and, from the piece where it shows on, a user with a
//     login whose judgement depends on the older logins not read yet
//     (orderSensitive: a new country or device, which an older login of
//     the window may have brought first; impossible travel from the
//     baseline's last login, when an older login of the window may be the
//     true predecessor; with ALERT_MODE=grouped, a login outside the
//     allowlist, whose episode and familiar place depend on the older ones);
//   - tentatively: any other learned user met before the run judged one of
//     their logins (a login of an older piece may still give a reason).
// At most maxHeld logins are held. Past it, the tentatively held users are
// judged first, with the piece that passed it (their logins of that piece
// and the held newer ones in time order): what a tentative user's held
// logins were judged for does not depend on older logins (no reason
// showed). Should those still be more than maxHeld, every held login is
// judged at once, as it stands, and the run says so (Notes: a warning).
// A user judged before a reason shows (released, or met after the run
// judged them) is held from that piece on; what was judged of them stands.
// Other findings (bursts, sprays, failed logins, the allowlist findings of
// users not held) are sent with their piece.
//
// Nothing held is lost: the audit does not move its cursor below a held
// login (audit.Holder), so a run that fails or stops before its last piece
// leaves the held logins to be read again; a run that stops at its
// deadline judges them in the piece it stops after (Piece.Last), as they
// stand (the older logins it did not read are not counted, as before).

// maxHeld bounds the logins held for the run's last piece (a quarter of a
// default piece; about 0.5 MB), so that the piece a run stops after at its
// deadline margin judges little more than its own logins.
const maxHeld = 500

// held is what a run holds for its last piece.
type held struct {
	events   []ipguard.LoginEvent
	findings []audit.Finding
	ids      map[int64]bool
	// kinds: the held findings by login and kind, so that a login handed
	// again while held (with its finding again) is released with one.
	kinds map[heldKind]bool
	// users: per user met in the run, whether their logins are held;
	// tentative: the held users without a reason (judged first past maxHeld).
	users     map[string]bool
	tentative map[string]bool
	newest    time.Time
}

func (h *held) len() int { return len(h.events) }

// heldKind names a held finding: its login and kind.
type heldKind struct {
	id   int64
	kind string
}

// hold takes out of logins (oldest first) and fs the logins, and their
// findings, of the users whose judgement waits for the run's last piece
// (see above).
func (d *Detector) hold(logins []*ipguard.LoginEvent, fs []audit.Finding, p audit.Piece) ([]*ipguard.LoginEvent, []audit.Finding) {
	h := &d.held
	if h.users == nil {
		h.users, h.tentative, h.ids = map[string]bool{}, map[string]bool{}, map[int64]bool{}
	}
	if h.kinds == nil {
		h.kinds = map[heldKind]bool{}
	}
	sensitive := d.orderSensitive(logins, fs, p)
	var keep []*ipguard.LoginEvent
	for _, ev := range logins {
		id := ipguard.CanonicalUserID(ev.UserID)
		hold, met := h.users[id]
		switch {
		case sensitive[id]:
			hold = true
			delete(h.tentative, id)
		case !met:
			_, judged := d.refs[id]
			e := d.baselines[id]
			hold = !judged && e != nil
			if hold && !e.b.Learning(ev.Date, d.Settings.minLogins(), d.Settings.minDays()) {
				h.tentative[id] = true
			}
		}
		h.users[id] = hold
		if !hold {
			keep = append(keep, ev)
			continue
		}
		if !h.ids[ev.ID] {
			h.ids[ev.ID] = true
			h.events = append(h.events, *ev) // a copy: the piece's events are not kept
			if ev.Date.After(h.newest) {
				h.newest = ev.Date
			}
		}
	}
	if len(h.ids) == 0 {
		return logins, fs
	}
	out := make([]audit.Finding, 0, len(fs))
	for _, f := range fs {
		if f.EventID != 0 && f.EventIDs == nil && h.ids[f.EventID] {
			if k := (heldKind{f.EventID, f.Kind}); !h.kinds[k] {
				h.kinds[k] = true
				h.findings = append(h.findings, f)
			}
			continue
		}
		out = append(out, f)
	}
	return keep, out
}

// orderSensitive returns the users of logins (oldest first), not held yet,
// whose judgement in this piece would depend on the older logins of the
// window the run has not read: a login the baseline finds new (country,
// device), a first login of the piece that is impossible travel from the
// login the baseline knew before the run, or (ALERT_MODE=grouped) a login
// outside the allowlist, whose episode (the first miss is told, the later
// ones are repeats) and familiar place depend on the user's older misses
// and logins. Judged as the piece's loop judges them (the same rules and
// inputs), without learning anything.
func (d *Detector) orderSensitive(logins []*ipguard.LoginEvent, fs []audit.Finding, p audit.Piece) map[string]bool {
	out := map[string]bool{}
	if d.Settings.Grouped {
		for _, f := range fs {
			if f.Kind == audit.KindIPNotAllowed && f.EventID != 0 && f.EventIDs == nil {
				out[ipguard.CanonicalUserID(f.UserID)] = true
			}
		}
	}
	placed := map[string]bool{}
	for _, ev := range logins {
		id := ipguard.CanonicalUserID(ev.UserID)
		if out[id] || (d.held.users[id] && !d.held.tentative[id]) {
			continue
		}
		e := d.baselines[id]
		if e == nil {
			continue
		}
		newest, last, start := e.b.Newest, e.b.Last, &e.b
		if ref := d.refs[id]; ref != nil {
			newest, last, start = ref.newest, ref.last, &Baseline{Logins: ref.logins, First: ref.first}
		}
		l := loginOf(*ev, p.Declared, p.Entry)
		if !l.At.After(newest) {
			continue // learned before the run: judged for neither novelty nor travel
		}
		learning := e.b.Learning(l.At, d.Settings.minLogins(), d.Settings.minDays())
		if !l.At.After(e.b.Newest) {
			learning = start.Learning(l.At, d.Settings.minLogins(), d.Settings.minDays())
		}
		var prev *Sighting
		if !placed[id] {
			prev = last
		}
		if len(judgeWith(&e.b, prev, l, d.Settings, true, learning).Reasons) > 0 {
			out[id] = true
		}
		placed[id] = placed[id] || l.travelUsable()
	}
	return out
}

// release returns logins with the held ones among them (oldest first) and
// fs with their findings, and holds nothing more.
func (h *held) release(logins []*ipguard.LoginEvent, fs []audit.Finding) ([]*ipguard.LoginEvent, []audit.Finding) {
	logins, fs = h.releaseIf(logins, fs, func(string) bool { return true })
	*h = held{}
	return logins, fs
}

// releaseTentative is release for the tentatively held users only: the
// others stay held (newest is theirs).
func (h *held) releaseTentative(logins []*ipguard.LoginEvent, fs []audit.Finding) ([]*ipguard.LoginEvent, []audit.Finding) {
	tentative := h.tentative
	logins, fs = h.releaseIf(logins, fs, func(id string) bool { return tentative[id] })
	for id := range tentative {
		h.users[id] = false // judged: held again only for a reason
	}
	h.tentative = map[string]bool{}
	return logins, fs
}

// releaseIf moves the held logins of the users out says yes to, and their
// findings, into logins (oldest first) and fs.
func (h *held) releaseIf(logins []*ipguard.LoginEvent, fs []audit.Finding, out func(id string) bool) ([]*ipguard.LoginEvent, []audit.Finding) {
	if len(h.events) == 0 {
		return logins, fs
	}
	all := make([]ipguard.LoginEvent, 0, len(logins)+len(h.events))
	for _, ev := range logins {
		all = append(all, *ev)
	}
	var stay []ipguard.LoginEvent
	h.newest = time.Time{}
	for _, ev := range h.events {
		if out(ipguard.CanonicalUserID(ev.UserID)) {
			all = append(all, ev)
			delete(h.ids, ev.ID)
			continue
		}
		stay = append(stay, ev)
		if ev.Date.After(h.newest) {
			h.newest = ev.Date
		}
	}
	h.events = stay
	var kept []audit.Finding
	for _, f := range h.findings {
		if out(ipguard.CanonicalUserID(f.UserID)) {
			delete(h.kinds, heldKind{f.EventID, f.Kind})
			fs = append(fs, f)
			continue
		}
		kept = append(kept, f)
	}
	h.findings = kept
	return successfulLogins(all), fs
}
