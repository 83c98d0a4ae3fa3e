package behaviour

import (
	"fmt"
	"math"
	"strings"
	"time"

	"ipguard/internal/audit"
)

// Rules, as BEHAVIOUR_RULES and ENFORCE_BEHAVIOUR name them (the finding kinds).
const (
	RuleImpossibleTravel = audit.KindImpossibleTravel
	RuleNewCountry       = audit.KindNewCountry
	RuleNewDevice        = audit.KindNewDevice
	RulePasswordSpray    = audit.KindPasswordSpray
)

// AllRules are every rule (BEHAVIOUR_RULES' default).
var AllRules = []string{RuleImpossibleTravel, RuleNewCountry, RuleNewDevice, RulePasswordSpray}

// Severity of each rule's finding (password_spray: critical when one of its
// accounts then logged in successfully).
var Severity = map[string]string{
	RuleImpossibleTravel: audit.SeverityHigh,
	RuleNewCountry:       audit.SeverityMedium,
	RuleNewDevice:        audit.SeverityLow,
	RulePasswordSpray:    audit.SeverityHigh,
}

// Defaults of Settings.
const (
	DefaultMinLogins        = 5
	DefaultMinDays          = 14
	DefaultSprayMinAccounts = 10
	DefaultSprayWindow      = 30 * time.Minute
	// MaxSpeedKmh: faster than this between two logins is impossible travel.
	MaxSpeedKmh = 1000.0
	// MinJudgedKm: two places that may be less than this apart (after
	// their precision) are too close to judge.
	MinJudgedKm = 500.0
)

// Settings are the rules' configuration.
type Settings struct {
	// Rules are the enabled rules (BEHAVIOUR_RULES); nil means all.
	Rules []string
	// MinSeverity (BEHAVIOUR_MIN_SEVERITY, default medium): behaviour
	// findings below it are NotMessaged (counted, logged, for the digest).
	MinSeverity string
	// MinLogins and MinDays (BASELINE_MIN_LOGINS, BASELINE_MIN_DAYS): a
	// baseline judges new_country/new_device once it has either.
	MinLogins int
	MinDays   int
	// SprayMinAccounts (SPRAY_MIN_ACCOUNTS): distinct accounts within
	// SprayWindow (SPRAY_WINDOW) that make a password_spray.
	SprayMinAccounts int
	SprayWindow      time.Duration
	// Digest are the severities the daily digest takes (DIGEST_SEVERITIES,
	// package digest): a finding below MinSeverity of one of them is
	// published like any other and the digest holds it back from the alert
	// topic (the findings bus still gets it); below MinSeverity and not
	// digested, it is NotMessaged.
	Digest []string
	// Grouped is ALERT_MODE=grouped (the zero value is every: no episodes,
	// no familiar-place demotion). EpisodeHours is EPISODE_HOURS (default
	// 24): see episodes.go.
	Grouped      bool
	EpisodeHours int
}

func (s Settings) on(rule string) bool {
	if s.Rules == nil {
		return true
	}
	for _, r := range s.Rules {
		if r == rule {
			return true
		}
	}
	return false
}

// positiveOr is v, or def where v is zero or negative (a setting not set).
func positiveOr[T int | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

func (s Settings) minLogins() int { return positiveOr(s.MinLogins, DefaultMinLogins) }

func (s Settings) minDays() time.Duration {
	return time.Duration(positiveOr(s.MinDays, DefaultMinDays)) * 24 * time.Hour
}

func (s Settings) sprayMin() int { return positiveOr(s.SprayMinAccounts, DefaultSprayMinAccounts) }

func (s Settings) sprayWindow() time.Duration { return positiveOr(s.SprayWindow, DefaultSprayWindow) }

func (s Settings) minSeverity() string {
	if s.MinSeverity == "" {
		return audit.SeverityMedium
	}
	return s.MinSeverity
}

// Verdict is what the rules say of one login.
type Verdict struct {
	Reasons []audit.Reason
	// Explanation says in plain words what is new and what is normal.
	Explanation string
}

// Judge applies the enabled rules to a successful login against the user's
// baseline as it was before the login (b may be empty, never nil) and prev,
// the login's predecessor with a place (nil: none known, or the login is not
// newer than what the baseline had learned, e.g. re-read by an overlap).
// It does not learn the login (see Baseline.Learn).
//
//   - impossible_travel: the login and prev's place are at
//     least MinJudgedKm apart after both places' precision, and covering
//     that distance in the time between them (either order: a backfilled
//     older login is compared too) takes over MaxSpeedKmh. Needs no
//     learning period.
//   - new_country: a country the baseline does not have, once it has
//     learned (MinLogins logins or MinDays days).
//   - new_device: a browser family and platform it does not have, once learned.
//
// A login with an empty country or from an address that is not whole (IPv6
// cut by the portal) raises no place finding (impossible_travel,
// new_country). A login through one of the user's own entries (Declared)
// raises no new_country, but it is a place and a time (#21 §4,
// WHERE-ISSUES-MEET §5): its entry's declared place (Login.EntryPlace),
// else the portal's GeoIP; travel compares it with its predecessor like any
// login, and the reason says which of the two came through a declared
// entry. An entry whose place is "anywhere" gives no place: such a login is
// left out of travel.
func Judge(b *Baseline, prev *Sighting, l Login, s Settings) Verdict {
	return judgeWith(b, prev, l, s, true, b.Learning(l.At, s.minLogins(), s.minDays()))
}

// judgeWith is Judge with the novelty rules' inputs given: novelty false
// judges no new_country/new_device (a login learned before), learning
// true says the baseline is still learning.
func judgeWith(b *Baseline, prev *Sighting, l Login, s Settings, novelty, learning bool) Verdict {
	var v Verdict
	var what []string
	place := l.placeUsable() && !l.Declared
	// Travel pairs two logins: a declared one is compared too (#21 §4: the
	// shared-office takeover), at its entry's declared place when it has one.
	if l.travelUsable() && s.on(RuleImpossibleTravel) && prev != nil && prev.EventID != l.EventID {
		hs, ts := sideOfLogin(l), sideOfSighting(prev)
		here, there := hs.place, ts.place
		// Two logins through the same declared entry are one network the
		// user declared: its GeoIP moving is not the user moving.
		same := l.Declared && prev.Declared && ((l.Entry != "" && l.Entry == prev.Entry) || l.IP == prev.IP)
		if here.Known() && there.Known() && !same {
			least, about := Apart(here, there)
			gap := l.At.Sub(prev.At)
			if gap < 0 {
				gap = -gap
			}
			if least >= MinJudgedKm && (gap <= 0 || least/gap.Hours() > MaxSpeedKmh) {
				order := "after"
				if l.At.Before(prev.At) {
					order = "before"
				}
				text := travelText(ts, hs, about, gap, l.Who)
				v.Reasons = append(v.Reasons, audit.Reason{Kind: RuleImpossibleTravel, Severity: Severity[RuleImpossibleTravel], Text: text, EventID: prev.EventID})
				what = append(what, fmt.Sprintf("the last login was %s %s %s, about %s km away", ts.where(), ago(gap), earlierLater(order), km(about)))
			}
		}
	}
	if place && novelty && s.on(RuleNewCountry) && !learning && !b.HasCountry(countryKey(l.Country)) {
		name := strings.TrimSpace(l.Country)
		v.Reasons = append(v.Reasons, audit.Reason{Kind: RuleNewCountry, Severity: Severity[RuleNewCountry], Text: "first login from " + name})
		what = append([]string{"first login from " + name}, what...)
	}
	if dk := DeviceKey(l.Browser, l.Platform); dk != "" && novelty && s.on(RuleNewDevice) && !learning && !b.HasDevice(dk) {
		name := DeviceName(l.Browser, l.Platform)
		v.Reasons = append(v.Reasons, audit.Reason{Kind: RuleNewDevice, Severity: Severity[RuleNewDevice], Text: "first login with " + name})
		what = append(what, "first login with "+name)
	}
	if len(v.Reasons) > 0 {
		// Travel without a new country: say where this login came from first.
		if v.Reasons[0].Kind == RuleImpossibleTravel && !strings.HasPrefix(what[0], "first login from") {
			what = append([]string{"login " + sideOfLogin(l).where()}, what...)
		}
		v.Explanation = strings.Join(what, "; ") + ". " + b.Normal()
	}
	return v
}

func earlierLater(order string) string {
	if order == "after" {
		return "earlier"
	}
	return "later"
}

// Normal describes the baseline in one sentence.
func (b *Baseline) Normal() string {
	if b.Logins == 0 {
		return "No earlier login of this user is known."
	}
	names := func(ss []Seen, max int) string {
		var out []string
		for i, s := range ss {
			if i == max {
				out = append(out, fmt.Sprintf("%d more", len(ss)-max))
				break
			}
			out = append(out, s.Name)
		}
		return strings.Join(out, ", ")
	}
	s := fmt.Sprintf("Normal for this user (%s since %s):", plural(b.Logins, "login"), b.First.UTC().Format("2006-01-02"))
	if len(b.Countries) > 0 {
		s += " from " + names(b.Countries, 5)
	}
	if len(b.Devices) > 0 {
		if len(b.Countries) > 0 {
			s += ";"
		}
		s += " with " + names(b.Devices, 5)
	}
	return s + "."
}

func placeName(p Place, asGiven string) string {
	if p.City != "" {
		return p.City + ", " + strings.TrimSpace(asGiven)
	}
	return strings.TrimSpace(asGiven)
}

// ago renders a gap: "40 minutes", "3 hours 5 minutes", "2 days".
func ago(d time.Duration) string {
	switch {
	case d < time.Minute:
		return "less than a minute"
	case d < time.Hour:
		return plural(int(d/time.Minute), "minute")
	case d < 48*time.Hour:
		h, m := int(d/time.Hour), int(d%time.Hour/time.Minute)
		if m == 0 {
			return plural(h, "hour")
		}
		return plural(h, "hour") + " " + plural(m, "minute")
	}
	return plural(int(d/(24*time.Hour)), "day")
}

func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return fmt.Sprintf("%d %ss", n, unit)
}

// km renders a distance rounded to 100 km with thousands separators.
func km(d float64) string {
	n := int(math.Round(d/100) * 100)
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
