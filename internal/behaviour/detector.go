package behaviour

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"ipguard/internal/allowlist"
	"ipguard/internal/audit"
	"ipguard/internal/ipguard"
)

// BaselinePrefix is the key prefix of a baseline item: "baseline#<userId>"
// (the DynamoDB adapter and the template's IAM condition use it).
const BaselinePrefix = "baseline#"

// Store keeps the baselines, one bounded item per user. Errors are
// classified (EUnavailable, EConfig).
type Store interface {
	// Baselines returns the stored baselines among ids (canonical user
	// ids); ids without one are absent. Batched: a call per 100 ids at most.
	Baselines(ctx context.Context, ids []string) (map[string]Baseline, error)
	// SaveBaselines writes the given baselines (only changed ones are passed).
	SaveBaselines(ctx context.Context, bs []Baseline) error
}

// Detector is the audit's Behaviour hook (audit.Behaviour): it loads the
// baselines of each piece's users (one batched read per piece), judges
// each user's successful logins in time order, merges the reasons into the
// login's finding, finds password sprays, and saves the baselines that
// changed after the piece's alerts were sent (Settle).
//
// DynamoDB calls per run are bounded by the distinct users in it: one
// batched read for those not read yet in the run, one write per changed
// baseline.
type Detector struct {
	Store    Store
	Settings Settings
	// EpisodeStore keeps the episodes of logins outside the allowlist
	// (Settings.Grouped; episodes.go). Nil: kept in memory only.
	EpisodeStore EpisodeStore

	// Windows (optional) keeps password_spray's sliding window across runs
	// (bounded buckets per minute, #21 §3); nil: a spray is seen only
	// within one run.
	Windows WindowStore

	mu        sync.Mutex
	baselines map[string]*entry
	spray     *windowSprayer
	// unsaved: the spray buckets of the last run, saved with the baselines.
	unsaved []SprayBucket
	final   bool // the last piece judged was its run's last
	pending bool // a piece was judged and not settled yet
	geo     GeoStats
	// refs: per user of this run, what travel compares with (see runRef).
	refs map[string]*runRef
	// episodes: the open episodes of the users met in this run (episodes.go).
	episodes map[string]*episodeEntry
	// held: the logins of users whose judgement waits for the older
	// logins of the run's window, held for its last piece (learning.go).
	held held
	// notes: what the run should be told (Notes).
	notes []string
}

// runRef is what a run keeps per user for travel, so that each login is
// compared with its predecessor even when the run's pieces come newest
// first: the baseline's newest login and last place when the run first met
// the user, and the previous login with a place in the current piece.
// Logins not newer than newest were learned before (an overlap re-read, a
// backfill) and are not judged for travel.
type runRef struct {
	newest time.Time
	last   *Sighting
	prev   *Sighting
	// logins and first are the baseline's when the run first met the
	// user: a login older than one this run already learned (a later,
	// older piece) is judged as still learning if the baseline was then.
	logins int
	first  time.Time
	// next is the oldest login with a place this run judged in a newer
	// piece (the walk reads newest first), nextEv its event: once an older
	// piece is judged, its newest login with a place is next's true
	// predecessor, and the pair is judged for travel (each user's logins
	// judged in time order, whatever the pieces, #21 §3). oldest is the
	// oldest such login of the piece being judged.
	next   *Sighting
	nextEv *ipguard.LoginEvent
	oldest *Sighting
	oldEv  *ipguard.LoginEvent
	// nextDigest / oldDigest: next's (oldest's) finding went to the digest
	// only (a probable trip, a familiar place, a repeat). Its event is then
	// recorded, so a finding on it later in the run would be dropped as
	// already alerted: the impossible pair is told on its predecessor,
	// prevEv (the newest login with a place of the piece being judged).
	nextDigest, oldDigest bool
	prevEv                *ipguard.LoginEvent
	// decider is the oldest login with a place, after the user's pending
	// trip, that a piece before the run's last judged (the walk reads
	// newest first, so only the last piece decides a trip in time order):
	// if no login of the last piece decides the trip, this one does there,
	// so a run that read the user's next login decides the trip whatever
	// piece held it (a backlog, a busy portal).
	decider *tripDecider
}

// tripDecider is a login of a piece before the run's last that decides the
// user's pending trip, and what it decided.
type tripDecider struct {
	ev           ipguard.LoginEvent
	l            Login
	trip         int64 // the trip's EventID
	contradicted bool
	travelTold   bool // its verdict had impossible travel (which names the trip already)
}

type entry struct {
	b     Baseline
	dirty bool
}

// GeoStats counts the successful logins from whole addresses with and
// without a country: all without means the portal has no GeoIP table.
type GeoStats struct {
	WithCountry    int `json:"withCountry"`
	WithoutCountry int `json:"withoutCountry"`
}

// NoGeoIP reports whether the logins seen say the portal has no GeoIP data
// (at least 10 logins from whole addresses, none with a country).
func (g GeoStats) NoGeoIP() bool { return g.WithCountry == 0 && g.WithoutCountry >= 10 }

// Geo returns what the detector has seen of the portal's GeoIP data since
// it started.
func (d *Detector) Geo() GeoStats {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.geo
}

var (
	_ audit.Behaviour = (*Detector)(nil)
	_ audit.Holder    = (*Detector)(nil)
	_ audit.Noter     = (*Detector)(nil)
)

// Judge implements audit.Behaviour.
func (d *Detector) Judge(ctx context.Context, p audit.Piece, fs []audit.Finding) ([]audit.Finding, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	// A run's first piece (Piece.First, set by the audit) starts anew, and
	// so does any piece when no run is under way (none yet, or the last
	// one ended with its Final piece). Nothing is inferred from dates: a
	// run after a failed one in the same process may hand pieces whose
	// Done is below the failed run's.
	if p.First || d.spray == nil {
		// What an unfinished run (stopped at its deadline) learned from the
		// pieces it committed is saved first; then every baseline is read
		// anew. If its last piece was judged but never settled (its alerts
		// failed), nothing of it is saved: those logins are read again and
		// must find the baselines as they were.
		// Logins held by the run before are above its cursor (Holder):
		// read again, not judged from memory; what it had to tell
		// (Notes) was of a run that failed before it was asked.
		d.held = held{}
		d.notes = nil
		if d.pending {
			d.baselines = nil
			d.unsaved = nil
			if d.EpisodeStore != nil {
				d.episodes = nil
			}
		} else {
			if d.spray != nil {
				d.unsaved = d.spray.toSave()
			}
			if err := d.flush(ctx); err != nil {
				return nil, err
			}
		}
		d.spray = newWindowSprayer(d.Settings.sprayMin(), d.Settings.sprayWindow())
		d.refs = map[string]*runRef{}
	}
	d.final = p.Final
	d.pending = true
	for _, r := range d.refs {
		r.prev, r.prevEv = nil, nil
		if r.oldest != nil {
			r.next, r.nextEv, r.nextDigest = r.oldest, r.oldEv, r.oldDigest
		}
		r.oldest, r.oldEv, r.oldDigest = nil, nil, false
	}
	if d.baselines == nil {
		d.baselines = map[string]*entry{}
	}

	logins := successfulLogins(p.Events)
	release := p.Final || p.Last
	if release {
		logins, fs = d.held.release(logins, fs)
	}
	if err := d.load(ctx, logins); err != nil {
		return nil, err
	}
	if !release {
		logins, fs = d.hold(logins, fs, p)
		// maxHeld bounds what is held, not the piece (a default piece has
		// more successful logins than that): past it, the users held
		// without a reason are judged here, and if that is not enough, all.
		if d.held.len() > maxHeld {
			logins, fs = d.held.releaseTentative(logins, fs)
		}
		if n := d.held.len(); n > maxHeld {
			d.notes = append(d.notes, fmt.Sprintf("%d logins held for time order (users still learning, or with a new country, device, travel or a miss in grouped mode) were judged at once, before the older logins of the run's window (at most %d are held): their findings may differ from those of shorter runs", n, maxHeld))
			logins, fs = d.held.release(logins, fs)
		}
		if len(logins) > 0 {
			if err := d.load(ctx, logins); err != nil { // a Settle may have forgotten earlier pieces' users
				return nil, err
			}
		}
	}
	byEvent := map[int64]int{}
	var missed []string // users with a login outside their allowlist
	for i, f := range fs {
		if f.EventID != 0 && f.EventIDs == nil {
			byEvent[f.EventID] = i
			if f.Kind == audit.KindIPNotAllowed && d.Settings.Grouped {
				missed = append(missed, ipguard.CanonicalUserID(f.UserID))
			}
		}
	}
	if d.Settings.Grouped {
		if err := d.loadEpisodes(ctx, missed); err != nil {
			return nil, err
		}
	}
	for _, ev := range logins {
		l := loginOf(*ev, p.Declared, p.Entry)
		if l.Whole {
			if strings.TrimSpace(l.Country) == "" {
				d.geo.WithoutCountry++
			} else {
				d.geo.WithCountry++
			}
		}
		e := d.baselines[l.UserID]
		ref := d.refs[l.UserID]
		if ref == nil {
			ref = &runRef{newest: e.b.Newest, logins: e.b.Logins, first: e.b.First}
			if e.b.Last != nil {
				last := *e.b.Last // a copy: learning updates the baseline's in place
				ref.last = &last
			}
			d.refs[l.UserID] = ref
		}
		var prev *Sighting
		newInRun := l.At.After(ref.newest)
		if newInRun {
			prev = ref.last
			if ref.prev != nil {
				prev = ref.prev
			}
		}
		// Time order: a login newer than all the baseline learned is judged
		// against it; one older than a login this run learned already is
		// judged against the countries and devices known (which a newer
		// login may have added: then it is not new), with the learning
		// period as it stood when the run began; one not newer than what
		// the baseline had before the run was judged then (or is a backfill).
		learning := e.b.Learning(l.At, d.Settings.minLogins(), d.Settings.minDays())
		if newInRun && !l.At.After(e.b.Newest) {
			start := Baseline{Logins: ref.logins, First: ref.first}
			learning = start.Learning(l.At, d.Settings.minLogins(), d.Settings.minDays())
		}
		v := judgeWith(&e.b, prev, l, d.Settings, newInRun, learning)
		var fam *audit.Familiar
		i, hasFinding := byEvent[ev.ID]
		shaped := hasFinding && d.Settings.Grouped && fs[i].Kind == audit.KindIPNotAllowed
		// Two looks at a trip (trips.go): this login decides the user's
		// pending trip, or is one. Only in time order: a run's pieces come
		// newest first, so only its last (oldest) piece decides a trip (a
		// deciding login of an earlier piece is kept in runRef.decider and
		// decides there if none of the last piece does); a login older than
		// one already learned, or while a trip is still undecided, is no
		// probable trip (told as before).
		var contradicts *PendingTrip
		probable, legs := false, 0
		if d.Settings.Grouped && newInRun && d.Settings.on(RuleNewCountry) {
			outside := hasFinding && fs[i].Kind == audit.KindIPNotAllowed
			home := func(c string) bool { return !outside || e.b.VouchedCountry(c) }
			if decided, contra, n := decideTrip(e.b.Trip, l, home); decided && p.Final {
				if contra {
					contradicts = e.b.Trip
					v = withTripReason(v, contradicts, l)
				}
				e.b.Trip, e.dirty, legs = nil, true, n
			} else if decided && (ref.decider == nil || l.At.Before(ref.decider.l.At)) {
				travel := false
				for _, r := range v.Reasons {
					travel = travel || r.Kind == RuleImpossibleTravel
				}
				ref.decider = &tripDecider{ev: *ev, l: l, trip: e.b.Trip.EventID, contradicted: contra, travelTold: travel}
			}
			probable = shaped && e.b.Trip == nil && contradicts == nil && l.At.After(e.b.Newest) && probableTrip(&e.b, prev, l, v, learning)
		}
		if shaped {
			fam = familiar(&e.b, l, v, learning) // against the baseline before this login
		}
		if l.travelUsable() {
			sg := l.sighting()
			ref.prev, ref.prevEv = &sg, ev
			if newInRun && ref.oldest == nil {
				s, c := sg, *ev // copies: the piece's events are not kept
				ref.oldest, ref.oldEv = &s, &c
			}
		}
		// A login after guessed passwords vouches for nothing (its place is
		// never familiar); a miss told as an alert marks its network Told
		// (never suggested for the allowlist by the digest).
		learn := e.b.Learn
		switch {
		case hasFinding && fs[i].Kind == audit.KindPasswordGuessSucceeded:
			learn = e.b.LearnGuessed
		case hasFinding && fs[i].Kind == audit.KindIPNotAllowed && fam != nil:
			learn = e.b.LearnFamiliar
		case hasFinding && fs[i].Kind == audit.KindIPNotAllowed:
			learn = e.b.LearnTold
		}
		if learn(l) {
			e.dirty = true
		}
		if hasFinding && len(v.Reasons) > 0 {
			fs[i] = d.told(merge(fs[i], v), v)
		}
		toldAs := ""
		if probable {
			toldAs = fs[i].Severity
			fs[i] = asProbableTrip(fs[i], prev, l)
			e.b.Trip, e.dirty = pendingOf(l), true
			e.b.Trip.Logins += legs // the next leg of a trip already under way
		}
		if shaped {
			fs[i] = d.shape(fs[i], l, fam, !newInRun, toldAs)
		}
		if hasFinding && contradicts != nil {
			fs[i] = d.loud(fs[i]) // a contradicted trip is a message, whatever its episode said
		}
		oldest := ref.oldEv != nil && ref.oldEv.ID == ev.ID
		if hasFinding && oldest {
			ref.oldDigest = fs[i].Digest
		}
		if len(v.Reasons) == 0 || hasFinding {
			continue
		}
		f := d.newFinding(*ev, v)
		if contradicts != nil {
			f = d.loud(f)
		}
		if oldest {
			ref.oldDigest = f.Digest
		}
		fs = append(fs, f)
	}
	if p.Final {
		var err error
		if fs, err = d.decideLeftTrips(ctx, fs); err != nil {
			return nil, err
		}
	}
	fs = d.judgeSuccessors(logins, fs, p.Declared, p.Entry)
	if d.Settings.on(RulePasswordSpray) {
		d.spray.add(p.Events, p.Declared)
		// Each piece judges the periods whose failed logins (and
		// SPRAY_WINDOW before them) were all read, and forgets what no
		// later judgement needs, so a run holds about twice SPRAY_WINDOW of
		// failed logins, not all of them (#16 §4). Periods are told oldest
		// first at the run's last piece (a period that continues the one
		// before it is not told again).
		if d.Windows != nil {
			if ms := d.spray.wanted(p.Done, p.Final); len(ms) > 0 {
				got, err := d.Windows.SprayBuckets(ctx, ms)
				if err != nil {
					return nil, ipguard.Errorf(ipguard.ErrorCode(err), "behaviour: read the spray window's buckets: %w", err)
				}
				d.spray.setStored(ms, got)
			}
		}
		for _, f := range d.spray.decide(p.Done, p.Final) {
			fs = append(fs, d.quiet(f))
		}
	}
	if p.Final {
		d.unsaved = d.spray.toSave()
		d.spray = nil
		d.refs = nil
	}
	return fs, nil
}

// decideLeftTrips, at a run's last piece, decides each pending trip that
// no login of that piece decided with the oldest login after it that an
// earlier piece of the run judged (runRef.decider): confirmed or the next
// leg, it is dropped quietly (that login was told as it stood); a one-login
// trip contradicted gets a finding on that login naming both, as if the
// login had been judged in time order.
func (d *Detector) decideLeftTrips(ctx context.Context, fs []audit.Finding) ([]audit.Finding, error) {
	var ids []string
	var evs []*ipguard.LoginEvent // their baselines may have been saved and forgotten (maxCached)
	for id, r := range d.refs {
		if r.decider != nil {
			ids = append(ids, id)
			evs = append(evs, &r.decider.ev)
		}
	}
	sort.Strings(ids)
	if err := d.load(ctx, evs); err != nil {
		return nil, err
	}
	for _, id := range ids {
		r, e := d.refs[id].decider, d.baselines[id]
		d.refs[id].decider = nil
		if e == nil || e.b.Trip == nil || e.b.Trip.EventID != r.trip {
			continue // decided by a login of the last piece, or gone
		}
		t := e.b.Trip
		e.b.Trip, e.dirty = nil, true
		if !r.contradicted || r.travelTold {
			continue
		}
		v := withTripReason(Verdict{}, t, r.l)
		fs = append(fs, d.loud(d.newFinding(r.ev, v)))
	}
	return fs, nil
}

// judgeSuccessors judges for travel, per user of this piece, the oldest
// login a newer piece of the run held (judged then against the login the
// baseline knew before the run) against its true predecessor, this
// piece's newest login with a place: a backfill read in pieces finds the
// same impossible pair as short runs do. A finding on a login already
// alerted is dropped by the audit as alerted.
func (d *Detector) judgeSuccessors(logins []*ipguard.LoginEvent, fs []audit.Finding, declared func(ipguard.LoginEvent) bool, entry func(ipguard.LoginEvent) (audit.DeclaredEntry, bool)) []audit.Finding {
	if !d.Settings.on(RuleImpossibleTravel) {
		return fs
	}
	done := map[string]bool{}
	for _, ev := range logins {
		id := ipguard.CanonicalUserID(ev.UserID)
		ref := d.refs[id]
		// A predecessor the baseline had learned before the run (an overlap
		// read again) is the baseline's last sighting, which next was
		// judged against already.
		if done[id] || ref == nil || ref.next == nil || ref.prev == nil || !ref.prev.At.Before(ref.next.At) || !ref.prev.At.After(ref.newest) {
			continue
		}
		done[id] = true
		next := loginOf(*ref.nextEv, declared, entry)
		only := d.Settings
		only.Rules = []string{RuleImpossibleTravel}
		v := judgeWith(&Baseline{}, ref.prev, next, only, false, true)
		switch {
		case len(v.Reasons) == 0:
		case !ref.nextDigest || ref.prevEv == nil:
			fs = append(fs, d.newFinding(*ref.nextEv, v))
		default:
			// next went to the digest (a probable trip, a familiar place)
			// and is recorded: the pair is told on its predecessor, as a
			// message, and a trip next began is told, not pending.
			fs = d.tellOnPredecessor(fs, *ref.prevEv, *ref.next, declared, entry)
			if e := d.baselines[id]; e != nil && e.b.Trip != nil && e.b.Trip.EventID == ref.nextEv.ID {
				e.b.Trip, e.dirty = nil, true
			}
		}
		ref.next, ref.nextEv, ref.nextDigest = nil, nil, false // judged against its predecessor
	}
	return fs
}

// tellOnPredecessor tells the impossible pair (prev, then next, a login
// whose finding went to the digest) on prev's login: merged into its
// finding of this piece if it has one, else a finding of its own; either
// way a message (its reason names next by EventID).
func (d *Detector) tellOnPredecessor(fs []audit.Finding, prev ipguard.LoginEvent, next Sighting, declared func(ipguard.LoginEvent) bool, entry func(ipguard.LoginEvent) (audit.DeclaredEntry, bool)) []audit.Finding {
	only := d.Settings
	only.Rules = []string{RuleImpossibleTravel}
	v := judgeWith(&Baseline{}, &next, loginOf(prev, declared, entry), only, false, true)
	if len(v.Reasons) == 0 {
		return fs
	}
	for i, f := range fs {
		if f.EventID == prev.ID && f.EventIDs == nil {
			if len(f.Reasons) == 0 {
				f = merge(f, v)
			} else { // reasons merged already: add the pair's
				f.Reasons = append(append([]audit.Reason(nil), f.Reasons...), v.Reasons...)
				for _, r := range v.Reasons {
					if audit.SeverityRank(r.Severity) > audit.SeverityRank(f.Severity) {
						f.Severity = r.Severity
					}
				}
				f.Explanation = strings.TrimSpace(v.Explanation + " " + f.Explanation)
			}
			fs[i] = d.loud(f)
			return fs
		}
	}
	return append(fs, d.loud(d.newFinding(prev, v)))
}

// loud makes f a message (not the digest's, not quiet) unless it is below
// BEHAVIOUR_MIN_SEVERITY.
func (d *Detector) loud(f audit.Finding) audit.Finding {
	if audit.SeverityRank(f.Severity) < audit.SeverityRank(d.Settings.minSeverity()) {
		return f
	}
	f.Digest, f.NotMessaged = false, false
	if f.Episode != nil {
		e := *f.Episode
		e.Repeat = false
		f.Episode = &e
	}
	return f
}

// maxCached bounds the baselines a run keeps in memory (about 10 MB):
// beyond it, Settle saves and forgets them after the piece.
const maxCached = 5000

// Notes implements audit.Noter: what the detector has to tell the run
// since it was last asked (held logins judged at once).
func (d *Detector) Notes() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := d.notes
	d.notes = nil
	return n
}

// Holding implements audit.Holder: the date of the newest login held for
// the run's last piece (zero: none).
func (d *Detector) Holding() time.Time {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.held.newest
}

// Settle implements audit.Behaviour: after the run's last piece (or once
// more than maxCached baselines are held) it saves the baselines that
// changed and forgets them all, so that a run writes each changed baseline
// once and reads each once. The next run reads them anew (a learn in
// between holds the same lease, so nothing is overwritten with an older copy).
func (d *Detector) Settle(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.pending = false
	if !d.final && len(d.baselines) <= maxCached {
		return nil
	}
	return d.flush(ctx)
}

// flush saves the changed baselines and the last run's spray buckets, and
// forgets every cached baseline.
func (d *Detector) flush(ctx context.Context) error {
	if len(d.unsaved) > 0 && d.Windows != nil {
		if err := d.Windows.SaveSprayBuckets(ctx, d.unsaved, SprayKeep(d.Settings.sprayWindow())); err != nil {
			return ipguard.Errorf(ipguard.ErrorCode(err), "behaviour: save the spray window's buckets: %w", err)
		}
	}
	d.unsaved = nil
	var changed []Baseline
	for _, e := range d.baselines {
		if e.dirty {
			changed = append(changed, e.b)
		}
	}
	sort.Slice(changed, func(i, j int) bool { return changed[i].UserID < changed[j].UserID })
	if len(changed) > 0 {
		if err := d.Store.SaveBaselines(ctx, changed); err != nil {
			return err
		}
	}
	d.baselines = nil
	return d.flushEpisodes(ctx)
}

// load reads the baselines of the users of logins not read yet.
func (d *Detector) load(ctx context.Context, logins []*ipguard.LoginEvent) error {
	var ids []string
	for _, ev := range logins {
		id := ipguard.CanonicalUserID(ev.UserID)
		if _, ok := d.baselines[id]; !ok {
			d.baselines[id] = &entry{b: Baseline{UserID: id}}
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	stored, err := d.Store.Baselines(ctx, ids)
	if err != nil {
		for _, id := range ids {
			delete(d.baselines, id)
		}
		return ipguard.Errorf(ipguard.ErrorCode(err), "behaviour: read baselines: %w", err)
	}
	for id, b := range stored {
		if e := d.baselines[id]; e != nil {
			b.UserID = id
			e.b = b
		}
	}
	return nil
}

// successfulLogins returns the successful logins of users with an id,
// oldest first (ties by event id): each user's logins are judged in time order.
func successfulLogins(evs []ipguard.LoginEvent) []*ipguard.LoginEvent {
	var out []*ipguard.LoginEvent
	for i := range evs {
		if evs[i].IsSuccessfulLogin() && ipguard.CanonicalUserID(evs[i].UserID) != "" {
			out = append(out, &evs[i])
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].Date.Equal(out[j].Date) {
			return out[i].Date.Before(out[j].Date)
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// loginOf is what the rules see of ev; entry (optional) gives the entry a
// declared login came through, with its declared place.
func loginOf(ev ipguard.LoginEvent, declared func(ipguard.LoginEvent) bool, entry func(ipguard.LoginEvent) (audit.DeclaredEntry, bool)) Login {
	_, whole := allowlist.ParseLoginIP(ev.IP)
	l := Login{EventID: ev.ID, UserID: ipguard.CanonicalUserID(ev.UserID), At: ev.Date, IP: ev.IP, Whole: whole,
		Country: ev.Country, City: ev.City, Browser: ev.Browser, Platform: ev.Platform,
		Declared: whole && declared != nil && declared(ev), Who: who(ev)}
	if l.Declared && entry != nil {
		if de, ok := entry(ev); ok {
			l.Entry, l.EntryNote, l.EntryPlace = de.Entry, de.Note, de.Place
		}
	}
	return l
}

// who names a login's user in messages: the portal's name, else the login
// typed, else the id (messages make it safe when they show it).
func who(ev ipguard.LoginEvent) string {
	for _, s := range []string{ev.User, ev.Login, ev.UserID} {
		if s = strings.TrimSpace(s); s != "" {
			return s
		}
	}
	return ""
}

// merge adds a verdict to the allowlist finding of the same login: the kind
// stays (WHERE-ISSUES-MEET §3), the reasons list the allowlist rule first,
// the severity is the highest among them. Such a finding is always sent.
func merge(f audit.Finding, v Verdict) audit.Finding {
	f.Reasons = append([]audit.Reason{{Kind: f.Kind, Severity: f.Severity, Text: f.Reason}}, v.Reasons...)
	for _, r := range v.Reasons {
		if audit.SeverityRank(r.Severity) > audit.SeverityRank(f.Severity) {
			f.Severity = r.Severity
		}
	}
	f.Explanation = v.Explanation
	return f
}

// newFinding is the finding of a login its allowlist allows (or no rule
// of the audit flagged) that breaks behaviour rules: the kind of its
// highest-severity reason.
func (d *Detector) newFinding(ev ipguard.LoginEvent, v Verdict) audit.Finding {
	top := v.Reasons[0]
	var kinds []string
	for _, r := range v.Reasons {
		if audit.SeverityRank(r.Severity) > audit.SeverityRank(top.Severity) {
			top = r
		}
		kinds = append(kinds, r.Kind)
	}
	f := audit.Finding{
		EventID: ev.ID, UserID: ev.UserID, User: ev.User, Login: ev.Login, IP: ev.IP,
		Country: ev.Country, City: ev.City, Browser: ev.Browser, Platform: ev.Platform,
		Date: ev.Date.UTC().Format(time.RFC3339), Action: ev.Action, ActionID: ev.ActionID, Raw: ev.Raw,
		// Reason is our own text (alerts show it as it is); what the portal
		// said (places, devices) is in Reasons and Explanation, shown escaped.
		Kind: top.Kind, Severity: top.Severity, Reason: "successful login unlike the user's normal: " + strings.Join(kinds, ", "),
		Reasons: v.Reasons, Explanation: v.Explanation,
	}
	return d.quiet(f)
}

// told makes a DigestOnly finding (a login of a user without an allowlist,
// UNKNOWN_USER_POLICY=digest) a message again when the login breaks a
// behaviour rule at or above the minimum severity: the digest lists people
// without an allowlist, it never hides a takeover's signs (#21 §1).
func (d *Detector) told(f audit.Finding, v Verdict) audit.Finding {
	for _, r := range v.Reasons {
		if audit.SeverityRank(r.Severity) >= audit.SeverityRank(d.Settings.minSeverity()) {
			f.DigestOnly = false
		}
	}
	return f
}

// quiet handles a behaviour-only finding below the minimum severity
// (WHERE-ISSUES-MEET §4): to the digest when DIGEST_SEVERITIES names its
// severity (it is published, and the digest holds the message back), else
// not messaged; either way it is counted and logged.
func (d *Detector) quiet(f audit.Finding) audit.Finding {
	if audit.SeverityRank(f.Severity) < audit.SeverityRank(d.Settings.minSeverity()) && !slices.Contains(d.Settings.Digest, f.Severity) {
		f.NotMessaged = true
	}
	return f
}
