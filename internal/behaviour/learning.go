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
// Where that matters, the login waits: every login of such a user, and its
// finding, from the piece where it shows on, is held until the run's last
// piece, which judges them with that piece's logins, in time order:
//   - a user still learning when the run first meets them (fewer than
//     BASELINE_MIN_LOGINS logins and fewer than BASELINE_MIN_DAYS days
//     before the run) may stop learning within the window;
//   - a learned user with a login its baseline finds new (a country or a
//     device; new_country, new_device) may have an older login of the
//     window from the same country or device, which is then the new one;
//   - a user whose first login of the piece is impossible travel from the
//     baseline's last login may have older logins of the window between
//     the two, one of which is its true predecessor.
// Any other login's judgement does not depend on the logins not read yet:
// novelty only grows the baseline by logins found new (held), travel
// pairs a piece's later logins with their predecessor in the piece, and
// the piece's oldest with its true predecessor in an older piece
// (judgeSuccessors). Findings of logins not held (bursts, sprays, the
// allowlist findings of other users' logins) are sent with their piece.
//
// Nothing held is lost: the audit does not move its cursor below a held
// login (audit.Holder), so a run that fails or stops before its last piece
// leaves the held logins to be read again; a run that stops at its
// deadline judges them in the piece it stops after (Piece.Last), as they
// stand (the older logins it did not read are not counted, as before).
// At most maxHeld logins are held: past it they are judged at once, as
// they stand, and the run says so (Notes: a warning).

// maxHeld bounds the logins held for the run's last piece (a quarter of a
// default piece; about 0.5 MB), so that the piece a run stops after at its
// deadline margin judges little more than its own logins.
const maxHeld = 500

// held is what a run holds for its last piece.
type held struct {
	events   []ipguard.LoginEvent
	findings []audit.Finding
	ids      map[int64]bool
	// users: per user met in the run, whether their logins are held.
	users  map[string]bool
	newest time.Time
}

func (h *held) len() int { return len(h.events) }

// hold takes out of logins (oldest first) and fs the logins, and their
// findings, of the users whose judgement waits for the run's last piece:
// a user still learning when the run met them, unless the run judged one
// of their logins already, and, from this piece on, a user with a login
// whose judgement depends on the older logins not read yet (orderSensitive).
func (d *Detector) hold(logins []*ipguard.LoginEvent, fs []audit.Finding, p audit.Piece) ([]*ipguard.LoginEvent, []audit.Finding) {
	h := &d.held
	if h.users == nil {
		h.users, h.ids = map[string]bool{}, map[int64]bool{}
	}
	sensitive := d.orderSensitive(logins, p)
	var keep []*ipguard.LoginEvent
	for _, ev := range logins {
		id := ipguard.CanonicalUserID(ev.UserID)
		hold, met := h.users[id]
		if !hold && (!met || sensitive[id]) {
			_, judged := d.refs[id]
			e := d.baselines[id]
			learning := !met && !judged && e != nil && e.b.Learning(ev.Date, d.Settings.minLogins(), d.Settings.minDays())
			hold = learning || sensitive[id]
			h.users[id] = hold
		}
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
			h.findings = append(h.findings, f)
			continue
		}
		out = append(out, f)
	}
	return keep, out
}

// orderSensitive returns the users of logins (oldest first), not held yet,
// whose judgement in this piece would depend on the older logins of the
// window the run has not read: a login the baseline finds new (country,
// device), or a first login of the piece that is impossible travel from
// the login the baseline knew before the run. Judged as the piece's loop
// judges them (the same rules and inputs), without learning anything.
func (d *Detector) orderSensitive(logins []*ipguard.LoginEvent, p audit.Piece) map[string]bool {
	out := map[string]bool{}
	placed := map[string]bool{}
	for _, ev := range logins {
		id := ipguard.CanonicalUserID(ev.UserID)
		if out[id] || d.held.users[id] {
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
	if len(h.events) > 0 {
		all := make([]ipguard.LoginEvent, 0, len(logins)+len(h.events))
		for _, ev := range logins {
			all = append(all, *ev)
		}
		all = append(all, h.events...)
		logins = successfulLogins(all)
		fs = append(fs, h.findings...)
	}
	*h = held{}
	return logins, fs
}
