package behaviour

import (
	"time"

	"ipguard/internal/audit"
	"ipguard/internal/ipguard"
)

// A user's learning status at a login is judged from the user's logins
// before it (#21 §3: findings do not depend on how time is cut into runs).
// A run reads its window newest first, in pieces: when it judges a login of
// a newer piece it has not read the older logins of its own window yet, so
// it cannot count them. A user who is still learning when the run first
// meets them (fewer than BASELINE_MIN_LOGINS logins and fewer than
// BASELINE_MIN_DAYS days before the run) may stop learning within the
// window: every login of such a user, and its finding, is held until the
// run's last piece, which judges them with that piece's logins, in time
// order. A learned user cannot become learning again, so their logins are
// judged where they are read, as before.
//
// Nothing held is lost: the audit does not move its cursor below a held
// login (audit.Holder), so a run that fails or stops before its last piece
// leaves the held logins to be read again; a run that stops at its
// deadline judges them in the piece it stops after (Piece.Last), as they
// stand (the older logins it did not read are not counted, as before).
// At most maxHeld logins are held: past it they are judged at once, as
// they stand.

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
// findings, of the users still learning when the run met them, unless the
// run judged one of their logins already.
func (d *Detector) hold(logins []*ipguard.LoginEvent, fs []audit.Finding) ([]*ipguard.LoginEvent, []audit.Finding) {
	h := &d.held
	if h.users == nil {
		h.users, h.ids = map[string]bool{}, map[int64]bool{}
	}
	var keep []*ipguard.LoginEvent
	for _, ev := range logins {
		id := ipguard.CanonicalUserID(ev.UserID)
		hold, met := h.users[id]
		if !met {
			_, judged := d.refs[id]
			e := d.baselines[id]
			hold = !judged && e != nil && e.b.Learning(ev.Date, d.Settings.minLogins(), d.Settings.minDays())
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
