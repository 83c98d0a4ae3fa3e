package behaviour

import (
	"context"
	"slices"
	"sort"
	"strings"
	"time"

	"ipguard/internal/audit"
	"ipguard/internal/ipguard"
)

// Message shaping of logins outside the allowlist (issue #21 §2), with
// ALERT_MODE=grouped (Settings.Grouped) only. The finding stays
// ip_not_allowed and enforcement acts on it as before; only how loudly it
// is told changes:
//
//   - familiar: the user's baseline has learned (not Learning), knows the
//     login's country, city, network (/24 or /48) and device, and no rule
//     fired (no impossible travel, new country or new device): severity
//     low, to the digest ("like 43 logins before");
//   - a new country, a new device or impossible travel: the one finding
//     carries all its reasons at the highest severity (merge);
//   - a user still learning: the severity of the allowlist rule (high).
//
// Episodes: a miss of the same user from the same network or the same
// country within EPISODE_HOURS of the episode's last miss joins that
// episode (the window slides: an undeclared trip of a week is one episode).
// A joining miss is a Repeat, for the digest only, unless it tells
// something the episode has not told yet: a higher severity or another
// reason (another new device or country counts as another reason). The first miss of an episode is told as above.
//
// Repeats and familiar misses are marked audit.Finding.Digest when the
// digest is on (Settings.Digest not empty), else NotMessaged: either way
// they are counted, recorded and on the findings bus.

// EpisodePrefix keys a user's open episodes: "episode#<userId>".
const EpisodePrefix = "episode#"

// MaxEpisodes bounds the open episodes kept per user (the least recently
// updated dropped first): one item per user of a few KB.
const MaxEpisodes = 16

// DefaultEpisodeHours is EPISODE_HOURS' default.
const DefaultEpisodeHours = 24

// Episodes is one user's open episodes (one DynamoDB item, expiring
// EPISODE_HOURS after the last miss of its newest episode).
type Episodes struct {
	UserID string        `json:"userId"`
	Open   []OpenEpisode `json:"open"`
}

// OpenEpisode is one episode's state.
type OpenEpisode struct {
	Network     string    `json:"network,omitempty"` // the first miss's /24 or /48
	Country     string    `json:"country,omitempty"` // country key
	CountryName string    `json:"countryName,omitempty"`
	First       time.Time `json:"first"`
	Last        time.Time `json:"last"`
	Count       int       `json:"count"`
	// Told is the highest severity told in a message, Kinds the reasons told
	// (toldKey: a new device or country by what it names; at most
	// maxToldKinds, the latest).
	Told  string   `json:"told"`
	Kinds []string `json:"kinds,omitempty"`
}

// maxToldKinds bounds the reasons an episode remembers as told.
const maxToldKinds = 16

// toldKey is what a reason of login l tells, for an episode's Kinds: a new
// device or a new country by the device or country it names (another new
// device within the episode is a new sign, not a repeat), other reasons by
// their kind.
func toldKey(kind string, l Login) string {
	switch kind {
	case RuleNewDevice:
		return kind + "#" + DeviceKey(l.Browser, l.Platform)
	case RuleNewCountry:
		return kind + "#" + countryKey(l.Country)
	}
	return kind
}

// Expires is when the newest episode of es closes (zero: none open).
func (es Episodes) Expires(hours int) time.Time {
	var last time.Time
	for _, e := range es.Open {
		if e.Last.After(last) {
			last = e.Last
		}
	}
	if last.IsZero() {
		return last
	}
	return last.Add(time.Duration(hours) * time.Hour)
}

// EpisodeStore keeps the open episodes, one bounded item per user.
type EpisodeStore interface {
	// Episodes returns the stored episodes among ids (batched).
	Episodes(ctx context.Context, ids []string) (map[string]Episodes, error)
	// SaveEpisodes writes the given users' episodes, each item expiring at
	// Expires(hours).
	SaveEpisodes(ctx context.Context, es []Episodes, hours int) error
}

type episodeEntry struct {
	e     Episodes
	dirty bool
}

func (s Settings) episodeHours() int { return positiveOr(s.EpisodeHours, DefaultEpisodeHours) }

// loadEpisodes reads the episodes of the users of fs' ip_not_allowed
// findings not read yet in this run (one batched read).
func (d *Detector) loadEpisodes(ctx context.Context, users []string) error {
	if d.episodes == nil {
		d.episodes = map[string]*episodeEntry{}
	}
	var ids []string
	for _, id := range users {
		if _, ok := d.episodes[id]; !ok {
			d.episodes[id] = &episodeEntry{e: Episodes{UserID: id}}
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 || d.EpisodeStore == nil {
		return nil
	}
	got, err := d.EpisodeStore.Episodes(ctx, ids)
	if err != nil {
		for _, id := range ids {
			delete(d.episodes, id)
		}
		return ipguard.Errorf(ipguard.ErrorCode(err), "behaviour: read episodes: %w", err)
	}
	for id, es := range got {
		if e := d.episodes[id]; e != nil {
			es.UserID = id
			e.e = es
		}
	}
	return nil
}

// flushEpisodes saves the changed episodes. Without an EpisodeStore they
// stay in memory (tests, one process).
func (d *Detector) flushEpisodes(ctx context.Context) error {
	if d.EpisodeStore == nil {
		return nil
	}
	var changed []Episodes
	for _, e := range d.episodes {
		if e.dirty {
			changed = append(changed, e.e)
		}
	}
	sort.Slice(changed, func(i, j int) bool { return changed[i].UserID < changed[j].UserID })
	if len(changed) > 0 {
		if err := d.EpisodeStore.SaveEpisodes(ctx, changed, d.Settings.episodeHours()); err != nil {
			return err
		}
	}
	d.episodes = nil
	return nil
}

// familiar reports how a login outside the allowlist is familiar to the
// baseline b (as it was before the login): nil when it is not.
func familiar(b *Baseline, l Login, v Verdict, learning bool) *audit.Familiar {
	if learning || len(v.Reasons) > 0 || !l.placeUsable() {
		return nil
	}
	net := Network(l.IP)
	dk := DeviceKey(l.Browser, l.Platform)
	// Familiar: a device the user has, in a country they log in from, and
	// either a city they log in from or a network they use (a carrier's
	// other pool or a VPN's other exit in a known city is familiar; a new
	// device, a new country or a new city on a new network is not).
	// Only what vouching logins taught counts (Seen.Unvouched): an
	// attacker's told logins do not make their own place familiar.
	if net == "" || dk == "" || !b.VouchedCountry(countryKey(l.Country)) || !b.VouchedDevice(dk) {
		return nil
	}
	n := b.NetworkLogins(net)
	if n == 0 && !b.VouchedCity(l.Country, l.City) {
		return nil
	}
	return &audit.Familiar{Network: net, Place: placeName(Place{City: strings.TrimSpace(l.City)}, l.Country),
		Device: DeviceName(l.Browser, l.Platform), Logins: n,
		// Suggested for the allowlist only when the user used it before and
		// no miss from it was told as an alert (an attacker's network is
		// not offered as "the user's own").
		NoSuggestion: n == 0 || b.NetworkTold(net)}
}

// MaxEpisodeSpan is the longest an episode lasts from its first miss,
// however often it is extended.
const MaxEpisodeSpan = 7 * 24 * time.Hour

// shape applies familiar-place demotion and episodes to the ip_not_allowed
// finding f of login l (fam from familiar; seen: the login is not newer than
// what the baseline had learned before this run, i.e. judged before).
// toldAs, when set, is the severity f had before it was demoted as a
// probable trip (trips.go): f goes to the digest, and its episode counts
// it as told at toldAs, so that the trip's further misses are repeats (the
// trip's next placed login decides it instead).
func (d *Detector) shape(f audit.Finding, l Login, fam *audit.Familiar, seen bool, toldAs string) audit.Finding {
	if fam != nil {
		f.Severity = audit.SeverityLow
		f.Familiar = fam
	}
	told := f.Severity
	if toldAs != "" {
		told = toldAs
	}
	hours := d.Settings.episodeHours()
	window := time.Duration(hours) * time.Hour
	entry := d.episodes[l.UserID]
	net, ck := Network(l.IP), ""
	if l.placeUsable() {
		ck = countryKey(l.Country)
	}
	var kinds []string
	for _, r := range f.Reasons {
		if r.Kind != f.Kind {
			kinds = append(kinds, toldKey(r.Kind, l))
		}
	}
	if entry != nil && (net != "" || ck != "") {
		// Closed episodes go away: EPISODE_HOURS after their last miss, or
		// MaxEpisodeSpan after their first (so that a network outside the
		// allowlist that the user, or someone else, keeps using is told
		// again at least that often, not held back for as long as it lasts).
		open := entry.e.Open[:0]
		for _, e := range entry.e.Open {
			if !l.At.After(e.Last.Add(window)) && l.At.Sub(e.First) < MaxEpisodeSpan {
				open = append(open, e)
			} else {
				entry.dirty = true
			}
		}
		entry.e.Open = open
		idx := -1
		for i, e := range entry.e.Open {
			if ((net != "" && e.Network == net) || (ck != "" && e.Country == ck)) && !l.At.Before(e.First.Add(-window)) {
				idx = i
				break
			}
		}
		switch {
		case idx >= 0:
			e := &entry.e.Open[idx]
			repeat := audit.SeverityRank(f.Severity) <= audit.SeverityRank(e.Told)
			for _, k := range kinds {
				if !slices.Contains(e.Kinds, k) {
					repeat = false
				}
			}
			if !seen {
				e.Count++
				if l.At.After(e.Last) {
					e.Last = l.At
				}
				if l.At.Before(e.First) {
					e.First = l.At
				}
				if !repeat {
					if audit.SeverityRank(told) > audit.SeverityRank(e.Told) {
						e.Told = told
					}
					for _, k := range kinds {
						if !slices.Contains(e.Kinds, k) {
							e.Kinds = append(e.Kinds, k)
						}
					}
					if n := len(e.Kinds); n > maxToldKinds {
						e.Kinds = append([]string(nil), e.Kinds[n-maxToldKinds:]...) // the oldest told go: told again at worst
					}
				}
				entry.dirty = true
			}
			f.Episode = &audit.Episode{Key: l.UserID + "|" + firstNonEmpty(e.Network, e.Country), Network: e.Network, Country: e.CountryName,
				First: e.First.UTC().Format(time.RFC3339), Count: e.Count, Repeat: repeat, Hours: hours}
		case !seen:
			e := OpenEpisode{Network: net, Country: ck, CountryName: clip(strings.TrimSpace(l.Country)), First: l.At, Last: l.At, Count: 1,
				Told: told, Kinds: kinds}
			entry.e.Open = append(entry.e.Open, e)
			if len(entry.e.Open) > MaxEpisodes {
				sort.SliceStable(entry.e.Open, func(i, j int) bool { return entry.e.Open[i].Last.After(entry.e.Open[j].Last) })
				entry.e.Open = entry.e.Open[:MaxEpisodes]
			}
			entry.dirty = true
			f.Episode = &audit.Episode{Key: l.UserID + "|" + firstNonEmpty(net, ck), Network: net, Country: e.CountryName,
				First: l.At.UTC().Format(time.RFC3339), Count: 1, Hours: hours}
		}
	}
	if f.Familiar != nil || (f.Episode != nil && f.Episode.Repeat) || toldAs != "" {
		if len(d.Settings.Digest) > 0 {
			f.Digest = true
		} else {
			f.NotMessaged = true
		}
	}
	return f
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}
