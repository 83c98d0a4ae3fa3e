package digest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"ipguard/internal/allowlist"
	"ipguard/internal/audit"
	"ipguard/internal/humantext"
)

// What the digest says of logins outside the allowlist (issue #21 §2): the
// misses from familiar places, the episodes whose repeats it counts, and per
// user a ready onboarding event that would add the networks behind the
// week's familiar misses, so the admin removes the noise at its source.

// Bounds of one digest item.
const (
	maxFamiliarLines = 50 // familiar misses listed (the rest counted)
	maxSuggestUsers  = 50 // users with a suggestion
	maxSuggestNets   = 16 // networks per user
)

// EpisodeLine is one episode as the digest counts it.
type EpisodeLine struct {
	User    string `json:"user"`
	Where   string `json:"where"`
	First   string `json:"first"`
	Count   int    `json:"count"`   // misses of the episode so far (the told one included)
	Repeats int    `json:"repeats"` // of them, held back into this digest
}

// UserNetworks are the networks behind a user's familiar misses.
type UserNetworks struct {
	User     string   `json:"user"` // as shown (e-mail, login or id)
	Networks []string `json:"networks"`
}

// addMiss counts f's episode and familiar place (no-op for other findings).
func (d *Digest) addMiss(f audit.Finding, user string) {
	if f.Familiar != nil {
		if len(d.Familiar) < maxFamiliarLines {
			d.Familiar = append(d.Familiar, kept(kept(user, maxNameBytes)+": "+f.Familiar.Line(kept(f.IP, maxAddrBytes)), maxLineBytes))
		} else {
			d.FamiliarOthers++
		}
		if !f.Familiar.NoSuggestion {
			d.suggest(f.UserID, user, f.Familiar.Network)
		}
	}
	if f.Trip != nil {
		if len(d.Trips) < maxFamiliarLines {
			d.Trips = append(d.Trips, kept(kept(user, maxNameBytes)+": "+f.Trip.Line(kept(f.IP, maxAddrBytes)), maxLineBytes))
		} else {
			d.TripsOthers++
		}
	}
	if e := f.Episode; e != nil {
		if d.Episodes == nil {
			d.Episodes = map[string]EpisodeLine{}
		}
		key := episodeKey(e.Key)
		line, ok := d.Episodes[key]
		if !ok && len(d.Episodes) >= maxTracked {
			d.Others.Episodes++
			return
		}
		where := e.Network
		if e.Country != "" {
			if where != "" {
				where += ", "
			}
			where += e.Country
		}
		line.User, line.Where, line.First = kept(user, maxNameBytes), kept(where, maxNameBytes), humantext.Clip(e.First, maxDateBytes)
		line.Count = max(line.Count, e.Count)
		if e.Repeat {
			line.Repeats++
		}
		d.Episodes[key] = line
	}
}

func (d *Digest) suggest(id, user, network string) {
	if id == "" || network == "" {
		return
	}
	if d.Networks == nil {
		d.Networks = map[string]*UserNetworks{}
	}
	u := d.Networks[id]
	if u == nil {
		if len(d.Networks) >= maxSuggestUsers {
			return
		}
		u = &UserNetworks{User: kept(user, maxNameBytes)}
		d.Networks[id] = u
	}
	for _, n := range u.Networks {
		if n == network {
			return
		}
	}
	if len(u.Networks) < maxSuggestNets {
		u.Networks = append(u.Networks, network)
	}
}

// episodeKey is the key the digest counts an episode under: its own
// ("<userId>|<network or country>"), or, when a portal's country makes it
// long, its beginning and a hash of the whole, so that the item stays
// bounded and distinct episodes stay distinct.
func episodeKey(k string) string {
	if len(k) <= maxNameBytes {
		return k
	}
	sum := sha256.Sum256([]byte(k))
	return humantext.Clip(k, maxNameBytes-20) + "#" + hex.EncodeToString(sum[:8])
}

// mergeWeek adds the suggestions of another day's digest to week.
func mergeWeek(week map[string]*UserNetworks, d Digest) {
	for id, u := range d.Networks {
		w := week[id]
		if w == nil {
			if len(week) >= maxSuggestUsers {
				continue
			}
			w = &UserNetworks{User: u.User}
			week[id] = w
		}
		for _, n := range u.Networks {
			known := false
			for _, m := range w.Networks {
				known = known || m == n
			}
			if !known && len(w.Networks) < maxSuggestNets {
				w.Networks = append(w.Networks, n)
			}
		}
	}
}

// SuggestedEvent is the onboarding event that adds the networks to the
// user's allowlist: {"action": "add", "id": ..., "allowedIps": [...]},
// adjacent networks merged (allowlist.Merged). ok is false when there is
// nothing to add.
func SuggestedEvent(userID string, networks []string) (event []byte, ok bool) {
	var ps []netip.Prefix
	for _, n := range networks {
		if p, err := netip.ParsePrefix(n); err == nil {
			ps = append(ps, p)
		}
	}
	entries := allowlist.Merged(ps)
	if userID == "" || len(entries) == 0 {
		return nil, false
	}
	b, err := json.Marshal(struct {
		Action     string   `json:"action"`
		ID         string   `json:"id"`
		AllowedIPs []string `json:"allowedIps"`
	}{"add", userID, entries})
	return b, err == nil
}

// renderMisses writes the digest's sections on logins outside the allowlist.
func renderMisses(b *strings.Builder, d Digest, week map[string]*UserNetworks) {
	c := func(s string) string { return humantext.Line(s, 300) }
	section := func(title string, lines []string, others int) {
		if len(lines) == 0 {
			return
		}
		b.WriteString("\n" + title + ":\n")
		for _, l := range lines {
			fmt.Fprintf(b, "  - %s\n", c(l))
		}
		if others > 0 {
			fmt.Fprintf(b, "  (and %d more)\n", others)
		}
	}
	section("Outside the allowlist from a familiar place (the user's known city, network and device; low, not sent one by one)", d.Familiar, d.FamiliarOthers)
	section("Probably trips (outside the allowlist from a new country, on a device the user has, reachable since their last login; low: sent as an alert if the user's next login with a place is from elsewhere)", d.Trips, d.TripsOthers)
	if len(d.Episodes) > 0 {
		var keys []string
		for k := range d.Episodes {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b.WriteString("\nEpisodes outside the allowlist (logins of a user from the same network or country within EPISODE_HOURS of each other: one that told something new was sent as an alert, one from a familiar place or a probable trip was not; the rest are counted here):\n")
		for _, k := range keys {
			e := d.Episodes[k]
			fmt.Fprintf(b, "  - %s: %d login(s) from %s since %s (%d held back into this digest)\n", c(e.User), e.Count, c(e.Where), c(e.First), e.Repeats)
		}
		if d.Others.Episodes > 0 {
			fmt.Fprintf(b, "  (and %d more episodes)\n", d.Others.Episodes)
		}
	}
	if len(week) == 0 {
		return
	}
	var ids []string
	for id := range week {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	b.WriteString("\nSuggested fix: these users' familiar misses of the last 7 days came from networks outside their allowlist.\n" +
		"If they are the users' own (home, carrier, VPN), send the onboarding event shown to add them, and the noise stops at its source:\n")
	for _, id := range ids {
		u := week[id]
		ev, ok := SuggestedEvent(id, u.Networks)
		if !ok || humantext.Line(id, 300) != id {
			continue // an id that would not print as it is: no ready event
		}
		fmt.Fprintf(b, "  - %s: %s\n    %s\n", c(u.User), c(strings.Join(u.Networks, ", ")), string(ev))
	}
}
