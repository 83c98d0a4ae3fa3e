package behaviour

import (
	"fmt"
	"strings"
	"time"

	"ipguard/internal/audit"
)

// Two looks at a trip (issue #21 §2; ALERT_MODE=grouped and the new_country
// rule on, else none of this applies).
//
// Told once per trip is still one alert per traveller who does not declare
// their trip. So a login that looks like the start of a trip is looked at
// twice:
//
//  1. A probable trip: a login outside the allowlist whose only other
//     reason is new_country, of a user who has learned (not Learning), on
//     a device the baseline vouches for, from a place reachable since the
//     user's last placed login (both places known, no impossible travel),
//     or of a user none of whose logins ever had a place (an unplaced
//     history: every login through an "anywhere" entry, such as a VPN
//     whose exits move; a new country is then as likely an exit they
//     never onboarded, and nothing placed says they could not be there).
//     It stays an ip_not_allowed finding (counted, recorded, on the bus,
//     enforced as before); it is told low, to the digest, and the baseline
//     remembers it (Baseline.Trip).
//  2. The user's next placed login decides (travelUsable: a login through
//     an entry whose place is "anywhere" has no place and decides nothing):
//     from the same country (or through a declared entry there) the trip is
//     confirmed, quietly; from another country the user has no ground in
//     (outside the allowlist, not vouched for) it is the trip's next leg,
//     and that login may be a probable trip itself, carrying the legs so
//     far; from the user's own ground (inside the allowlist, or a country
//     the baseline vouches for) after a trip of one login, it was a trip
//     of one login, or not the user: that login gets a new_country reason
//     at high severity that names both logins (the reason's EventID is the
//     trip's login).
//     Impossible travel from the trip's login fires as always; the reason
//     is then not repeated.
//
// What this trades: a stolen password used once from a new country on the
// victim's own device is told at the victim's next placed login, not at
// once. For a user with an unplaced history that login may be long in
// coming (their logins through "anywhere" entries decide nothing): such a
// theft stays a digest line until then. A thief who logs in twice (from
// the same new country, or from two new countries, with no login of the
// victim's between) looks like a trip of two logins and stays a digest
// line (the ip_not_allowed finding is recorded and enforced as always).

// PendingTrip is a probable trip waiting for the user's next placed login.
type PendingTrip struct {
	EventID int64     `json:"eventId"`
	At      time.Time `json:"at"`
	Country string    `json:"country"` // country key
	Name    string    `json:"name,omitempty"`
	City    string    `json:"city,omitempty"`
	IP      string    `json:"ip,omitempty"`
	// Logins is how many probable-trip logins the trip has had so far, one
	// per leg (0 in items written before legs were counted: one).
	Logins int `json:"logins,omitempty"`
}

// logins is t's logins abroad so far (at least one).
func (t *PendingTrip) logins() int { return max(1, t.Logins) }

// reachable: the user could have travelled from prev (their last login with
// a place) to l: both places are known and covering the distance takes no
// more than MaxSpeedKmh (or they are too close to judge).
func reachable(prev *Sighting, l Login) bool {
	if prev == nil || !l.travelUsable() {
		return false
	}
	here, there := sideOfLogin(l).place, sideOfSighting(prev).place
	if !here.Known() || !there.Known() {
		return false
	}
	least, _ := Apart(here, there)
	if least < MinJudgedKm {
		return true
	}
	gap := l.At.Sub(prev.At)
	return gap > 0 && least/gap.Hours() <= MaxSpeedKmh
}

// probableTrip reports whether the login's verdict makes it a probable trip
// (see above); v is the verdict of the rules alone.
func probableTrip(b *Baseline, prev *Sighting, l Login, v Verdict, learning bool) bool {
	if learning || l.Declared || !l.placeUsable() || len(v.Reasons) != 1 || v.Reasons[0].Kind != RuleNewCountry {
		return false
	}
	dk := DeviceKey(l.Browser, l.Platform)
	if dk == "" || !b.VouchedDevice(dk) {
		return false
	}
	// An unplaced history: no login of the user ever had a place (every one
	// came through an entry whose place is "anywhere"), so nothing says
	// where they are and travel has nothing to rule out; their countries
	// are their provider's exits. A new one is as likely an exit they never
	// onboarded as a trip, and is looked at twice like one.
	if prev == nil && b.Last == nil {
		return l.travelUsable()
	}
	return reachable(prev, l)
}

// pendingOf is the pending trip a probable-trip login leaves.
func pendingOf(l Login) *PendingTrip {
	return &PendingTrip{EventID: l.EventID, At: l.At, Country: countryKey(l.Country), Name: clip(strings.TrimSpace(l.Country)),
		City: clip(strings.TrimSpace(l.City)), IP: clip(l.IP), Logins: 1}
}

// placedCountry is the country key of a login with a place: its declared
// entry's country (a city of the table), else the portal's; ok is false
// for a login without a place (an "anywhere" entry, no country, a cut
// address) or a declared place given by coordinates alone without a
// GeoIP country.
func placedCountry(l Login) (key string, ok bool) {
	if !l.travelUsable() {
		return "", false
	}
	if dp, isDeclared := l.declaredPlace(); isDeclared && dp.Place.Code != "" {
		return dp.Place.Code, true
	}
	if !l.placeUsable() {
		return "", false
	}
	return countryKey(l.Country), true
}

// decideTrip is what login l (newer than the pending trip t) says of t:
// decided (l has a place), and if so contradicted: l is on the user's own
// ground (home reports whether l's country is: inside the allowlist, or a
// country the baseline vouches for), in another country than the trip's,
// and the trip had one login. A placed login in another country the user
// has no ground in is the trip's next leg: decided, not contradicted, and
// legs is the trip's logins so far (a multi-country trip of one login per
// country is a trip, not a theft).
func decideTrip(t *PendingTrip, l Login, home func(country string) bool) (decided, contradicted bool, legs int) {
	if t == nil || l.EventID == t.EventID || !l.At.After(t.At) {
		return false, false, 0
	}
	c, ok := placedCountry(l)
	if !ok {
		return false, false, 0
	}
	if c == t.Country {
		return true, false, 0
	}
	if !home(c) {
		return true, false, t.logins()
	}
	return true, t.logins() <= 1, 0
}

// tripReason is the reason a login contradicting a one-login trip gets:
// "Sat 2026-11-21 15:00 UTC from Lagos, Nigeria (a new country, one login),
// then Mon 2026-11-23 08:30 UTC from Berlin, Germany: a trip of one login,
// or not alice".
func tripReason(t *PendingTrip, l Login) audit.Reason {
	who := strings.TrimSpace(l.Who)
	if who == "" {
		who = "the user"
	}
	then := placeName(Place{City: t.City}, t.Name)
	now := sideOfLogin(l).where()
	text := fmt.Sprintf("%s from %s (a new country, one login), then %s %s: a trip of one login, or not %s",
		t.At.UTC().Format("Mon 2006-01-02 15:04 UTC"), then, l.At.UTC().Format("Mon 2006-01-02 15:04 UTC"), now, who)
	return audit.Reason{Kind: RuleNewCountry, Severity: audit.SeverityHigh, Text: text, EventID: t.EventID}
}

// probableTripText is what the digest says of a probable trip.
func probableTripText(prev *Sighting, l Login) string {
	if prev == nil {
		return fmt.Sprintf("outside the allowlist from a new country, %s, where no earlier login had a place (they came through entries whose place is anywhere): probably a trip or another exit of their provider; told if the next login with a place does not confirm it",
			strings.TrimSpace(l.Country))
	}
	return fmt.Sprintf("outside the allowlist from a new country, %s, reachable since the last login %s (%s): probably a trip; told if the next login does not confirm it",
		strings.TrimSpace(l.Country), sideOfSighting(prev).where(), prev.At.UTC().Format("2006-01-02 15:04 UTC"))
}

// withTripReason adds to v (the verdict of login l, which contradicts the
// pending trip t) the reason that names both logins, unless impossible
// travel from the trip's login already does.
func withTripReason(v Verdict, t *PendingTrip, l Login) Verdict {
	for _, r := range v.Reasons {
		if r.Kind == RuleImpossibleTravel {
			return v
		}
	}
	r := tripReason(t, l)
	v.Reasons = append(v.Reasons, r)
	if v.Explanation == "" {
		v.Explanation = r.Text + "."
	} else {
		v.Explanation = r.Text + "; " + v.Explanation
	}
	return v
}

// asProbableTrip demotes the finding of a probable trip's login to low,
// saying why (shape sends it to the digest).
func asProbableTrip(f audit.Finding, prev *Sighting, l Login) audit.Finding {
	f.Severity = audit.SeverityLow
	text := probableTripText(prev, l)
	f.Reasons = append([]audit.Reason(nil), f.Reasons...)
	for i, r := range f.Reasons {
		if r.Kind == RuleNewCountry {
			f.Reasons[i].Severity, f.Reasons[i].Text = audit.SeverityLow, text
		}
	}
	f.Explanation = text + ". " + f.Explanation
	f.Trip = &audit.ProbableTrip{Place: placeName(Place{City: strings.TrimSpace(l.City)}, l.Country), Device: DeviceName(l.Browser, l.Platform)}
	if prev != nil {
		f.Trip.Since = sideOfSighting(prev).where() + " at " + prev.At.UTC().Format("2006-01-02 15:04 UTC")
	}
	return f
}
