package audit

import (
	"fmt"
	"strings"

	"ipguard/internal/humantext"
)

// Message shaping of ip_not_allowed (issue #21 §2). It changes messages
// only (WHERE-ISSUES-MEET §1): a finding that goes to the digest is still
// published (the findings bus, then the digest), recorded as alerted,
// counted in the result and archived like every other, and enforcement
// sees it as it is.

// Episode is the episode a login outside its user's allowlist belongs to:
// misses of the same user from the same network or country, each within
// EPISODE_HOURS of the one before. Only the episode's first miss (or one
// that tells something new: a higher severity, a reason not told yet) is
// sent as a message; the others (Repeat) are counted in the daily digest.
type Episode struct {
	// Key names the episode: "<userId>|<network or country>".
	Key string `json:"key"`
	// Network is the login's /24 (IPv4) or /48 (IPv6); Country the
	// country as the portal spelled it.
	Network string `json:"network,omitempty"`
	Country string `json:"country,omitempty"`
	// First is when the episode began (RFC3339); Count how many misses it
	// has held so far, this one included.
	First string `json:"first"`
	Count int    `json:"count"`
	// Repeat: a further miss of an episode already told (to the digest).
	Repeat bool `json:"repeat,omitempty"`
	// Hours is EPISODE_HOURS.
	Hours int `json:"hours"`
}

// Familiar says why a login outside the allowlist was demoted to low: its
// place and device are those the user's baseline knows.
type Familiar struct {
	Network string `json:"network"` // the /24 or /48 the login came from
	Place   string `json:"place"`   // "Berlin, Germany" as the portal spelled it
	Device  string `json:"device"`  // "Chrome on Android"
	// Logins is how many earlier logins of the user came from Network; 0
	// when the network is new but the city and device are the user's.
	Logins int `json:"logins"`
	// NoSuggestion: the digest does not suggest adding Network to the
	// allowlist: it is new to the user (Logins 0), or a miss from it was
	// told as an alert and no login inside the allowlist came from it since.
	NoSuggestion bool `json:"noSuggestion,omitempty"`
}

// Line is the digest's line for a familiar miss: "80.187.12.9, Berlin,
// Germany, Chrome on Android, like 43 logins before" (portal text cleaned).
func (f Familiar) Line(ip string) string {
	where := whereFrom(ip, f.Place, f.Device)
	if f.Logins == 0 {
		return where + ", a network new to them in a city they log in from"
	}
	return fmt.Sprintf("%s, like %d login(s) before", where, f.Logins)
}

// ProbableTrip says why a login outside the allowlist from a new country
// was told low: on a device the user has, reachable since their last login
// with a place (or no login of theirs ever had one), it looks like the start
// of a trip. The user's next login with a place decides: from the same
// country it confirms the trip; from elsewhere it is told as an alert that
// names both logins (package behaviour, trips.go).
type ProbableTrip struct {
	Place  string `json:"place"`  // "Paris, France" as the portal spelled it
	Device string `json:"device"` // "Chrome on Android"
	// Since is the user's last login with a place ("from Berlin, Germany at
	// 2026-11-21 08:30 UTC"); "" when none ever had one.
	Since string `json:"since,omitempty"`
}

// Line is the digest's line for a probable trip: "198.51.100.7, Paris,
// France, Chrome on Android; last login from Berlin, Germany at ..."
// (portal text cleaned).
func (t ProbableTrip) Line(ip string) string {
	where := whereFrom(ip, t.Place, t.Device)
	if strings.TrimSpace(t.Since) == "" {
		return where + "; no earlier login had a place"
	}
	return where + "; last login " + humantext.Line(t.Since, 160)
}

// whereFrom is a digest line's "address, place, device", each cleaned for
// a person (humantext.Line); an empty place or device is left out.
func whereFrom(ip, place, device string) string {
	parts := []string{humantext.Line(ip, 60)}
	for _, s := range []string{place, device} {
		if strings.TrimSpace(s) != "" {
			parts = append(parts, humantext.Line(s, 120))
		}
	}
	return strings.Join(parts, ", ")
}

// writeEpisode adds the episode line to a finding's e-mail entry.
func writeEpisode(b *strings.Builder, f Finding) {
	if f.Episode == nil || f.Episode.Repeat {
		return
	}
	where := f.Episode.Network
	if where == "" {
		where = humantext.Line(f.Episode.Country, 80)
	} else if f.Episode.Country != "" {
		where += " or " + humantext.Line(f.Episode.Country, 80)
	}
	fmt.Fprintf(b, "   Episode: further logins of this user from %s outside the allowlist within %d hours of each other are counted in the daily digest, not sent one by one.\n",
		where, f.Episode.Hours)
}
