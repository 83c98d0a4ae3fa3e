// Package behaviour learns each user's normal from their successful logins
// (countries, devices, the last login's place and time) and judges logins
// that depart from it: impossible_travel, new_country, new_device, and
// password_spray over failed logins (issue #17). It is pure: the baselines
// come from and go to a Store, the login history from a Source.
package behaviour

import (
	"net/netip"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"ipguard/internal/countries"
)

// Bounds of one baseline (one DynamoDB item per user, a few KB at most).
const (
	MaxCountries = 50
	MaxDevices   = 50
	// MaxCities and MaxNetworks bound the places a login outside the
	// allowlist is judged familiar by (issue #21 §2).
	MaxCities   = 50
	MaxNetworks = 32
	maxKeyRunes = 64
)

// Baseline is one user's learned normal. Countries and devices are kept at
// most MaxCountries and MaxDevices, the least recently seen dropped first.
//
// Order: learning a login older than what the baseline knows never moves
// anything backwards (Newest, Last, a country's or device's At only grow),
// so learning is idempotent and the order of runs does not matter.
type Baseline struct {
	UserID string `json:"userId"`
	// Logins counts the successful logins learned, each once: a login is
	// counted when it is newer than Newest or older than First (one between
	// them may have been learned before, and is not).
	Logins int `json:"logins"`
	// First and Newest are the oldest and newest login learned.
	First  time.Time `json:"first"`
	Newest time.Time `json:"newest"`
	// Countries by key (ISO code, or the portal's name when the table does
	// not know it); Devices by "browser family/platform family".
	Countries []Seen `json:"countries,omitempty"`
	Devices   []Seen `json:"devices,omitempty"`
	// Last is the newest login with a usable place (travel compares with it).
	Last *Sighting `json:"last,omitempty"`
	// Cities by "country key/city" and Networks by /24 or /48 (N counts the
	// logins learned from it): a login outside the allowlist from a known
	// city, network and device is told low, to the digest (issue #21 §2).
	Cities   []Seen `json:"cities,omitempty"`
	Networks []Seen `json:"networks,omitempty"`
	// Trip is a probable trip waiting for the user's next placed login
	// (ALERT_MODE=grouped; trips.go).
	Trip *PendingTrip `json:"trip,omitempty"`
}

// Seen is one country or device of a baseline and when it was last seen.
type Seen struct {
	Key  string    `json:"key"`
	Name string    `json:"name,omitempty"` // as the portal spelled it, for explanations
	At   time.Time `json:"at"`
	N    int       `json:"n,omitempty"` // networks: logins learned from it
	// Unvouched: known only from logins after guessed passwords
	// (LearnGuessed). The behaviour rules know the key, but it makes no
	// login familiar: a takeover's place is not demoted for its next visit
	// (issue #21 §2). Cleared by the first other new login.
	Unvouched bool `json:"unvouched,omitempty"`
	// Told (networks): a miss from it was told as an alert (LearnTold) and
	// no login inside the allowlist (nor history) came from it since. It
	// may be familiar (an undeclared trip is told once), but the digest
	// never suggests adding it to the allowlist: an attacker's alerted
	// network is not offered as "the user's own".
	Told bool `json:"told,omitempty"`
}

// Sighting is a login's place and time.
type Sighting struct {
	EventID  int64     `json:"eventId"`
	At       time.Time `json:"at"`
	Country  string    `json:"country"`
	City     string    `json:"city,omitempty"`
	IP       string    `json:"ip,omitempty"`
	Declared bool      `json:"declared,omitempty"` // through one of the user's allowlist entries
	// Entry, Note and Place: the entry a declared login came through, its
	// note and its declared place (#21 §4; Place "" means the portal's GeoIP).
	Entry string `json:"entry,omitempty"`
	Note  string `json:"note,omitempty"`
	Place string `json:"place,omitempty"`
}

// Login is what the rules see of one successful login.
type Login struct {
	EventID  int64
	UserID   string
	At       time.Time
	IP       string
	Whole    bool // the address is whole (not an IPv6 cut by the portal, not empty)
	Country  string
	City     string
	Browser  string
	Platform string
	Declared bool // through one of the user's own allowlist entries
	// Entry, EntryNote and EntryPlace: the entry a Declared login came
	// through as onboarded; EntryPlace, when set, is used instead of the
	// portal's GeoIP ("anywhere": the login has no place for travel).
	Entry      string
	EntryNote  string
	EntryPlace string
	// Who names the user in messages (the portal's name or login).
	Who string
}

// declaredPlace is the place the login's entry declares, if any.
func (l Login) declaredPlace() (DeclaredPlace, bool) {
	if !l.Declared {
		return DeclaredPlace{}, false
	}
	return storedPlace(l.EntryPlace)
}

// travelUsable: the login has a place travel may compare (its entry's
// declared place, else the portal's country for a whole address) and did
// not come through an entry whose place is "anywhere".
func (l Login) travelUsable() bool {
	if dp, ok := l.declaredPlace(); ok {
		return l.Whole && !dp.Anywhere
	}
	return l.placeUsable()
}

// sighting is the login's place and time as a baseline keeps it.
func (l Login) sighting() Sighting {
	s := Sighting{EventID: l.EventID, At: l.At, Country: clip(strings.TrimSpace(l.Country)),
		City: clip(strings.TrimSpace(l.City)), IP: clip(l.IP), Declared: l.Declared}
	if l.Declared {
		s.Entry, s.Note = clip(l.Entry), clip(l.EntryNote)
		if dp, ok := l.declaredPlace(); ok {
			s.Place = dp.Canonical
		}
	}
	return s
}

// placeUsable: the login's country can be trusted (the portal gave one,
// for a whole address).
func (l Login) placeUsable() bool { return l.Whole && strings.TrimSpace(l.Country) != "" }

// countryKey is the key of the login's country in a baseline.
func countryKey(country string) string {
	if c := CountryCode(country); c != "" {
		return c
	}
	return clip(countries.Key(country))
}

// memo remembers a bounded number of computed names (the same browser,
// platform and country strings come back at nearly every login).
type memo struct {
	mu sync.Mutex
	m  map[[2]string]string
}

// maxMemo bounds a memo: portal text is chosen by whoever logs in.
const maxMemo = 4096

func (m *memo) get(key [2]string, f func() string) string {
	m.mu.Lock()
	v, ok := m.m[key]
	m.mu.Unlock()
	if ok {
		return v
	}
	v = f()
	m.mu.Lock()
	if m.m == nil {
		m.m = map[[2]string]string{}
	}
	if len(m.m) < maxMemo {
		m.m[key] = v
	}
	m.mu.Unlock()
	return v
}

var deviceKeys, deviceNames, countryCodes memo

// DeviceKey is "browser family/platform family": versions are dropped
// ("Firefox 126.0" on "Windows 10" → "firefox/windows"); "" when both are empty.
func DeviceKey(browser, platform string) string {
	return deviceKeys.get([2]string{browser, platform}, func() string { return deviceKey(browser, platform) })
}

func deviceKey(browser, platform string) string {
	b, p := family(browser), family(platform)
	if b == "" && p == "" {
		return ""
	}
	return clip(b + "/" + p)
}

// DeviceName is the readable form: "Firefox on Windows".
func DeviceName(browser, platform string) string {
	return deviceNames.get([2]string{browser, platform}, func() string { return deviceName(browser, platform) })
}

func deviceName(browser, platform string) string {
	b, p := familyName(browser), familyName(platform)
	switch {
	case b == "":
		return p
	case p == "":
		return b
	}
	return b + " on " + p
}

// familyName drops version tokens: every word from the first that starts
// with a digit ("Mac OS X 10.15" → "Mac OS X", "Chrome 125.0" → "Chrome").
func familyName(s string) string {
	var keep []string
	for _, w := range strings.Fields(s) {
		if w[0] >= '0' && w[0] <= '9' {
			break
		}
		keep = append(keep, w)
	}
	return strings.Join(keep, " ")
}

func family(s string) string { return strings.ToLower(familyName(s)) }

func clip(s string) string {
	if utf8.RuneCountInString(s) <= maxKeyRunes {
		return s
	}
	r := []rune(s)
	return string(r[:maxKeyRunes])
}

// Learning reports whether the baseline is still too young to judge a login
// at at by new_country/new_device: fewer than minLogins logins learned and
// less than minDays of history.
func (b *Baseline) Learning(at time.Time, minLogins int, minDays time.Duration) bool {
	if b.Logins >= minLogins {
		return false
	}
	return b.First.IsZero() || at.Sub(b.First) < minDays
}

// placeKey is the key of a city in a baseline: "<country key>/<city>".
func placeKey(country, city string) string {
	return clip(countryKey(country) + "/" + countries.Key(city))
}

// Network is the /24 (IPv4) or /48 (IPv6) of a whole address, "" otherwise.
func Network(ip string) string {
	a, err := netip.ParseAddr(strings.TrimSpace(ip))
	if err != nil || a.Zone() != "" {
		return ""
	}
	a = a.Unmap()
	bits := 48
	if a.Is4() {
		bits = 24
	}
	p, err := a.Prefix(bits)
	if err != nil {
		return ""
	}
	return p.String()
}

// HasCity / HasNetwork report whether the baseline knows the login's city
// (in its country) and network; NetworkLogins how many logins came from it
// (0 when it is Unvouched: only told misses came from it).
func (b *Baseline) HasCity(country, city string) bool {
	return strings.TrimSpace(city) != "" && has(b.Cities, placeKey(country, city))
}
func (b *Baseline) NetworkLogins(network string) int {
	for _, s := range b.Networks {
		if s.Key == network {
			if s.Unvouched {
				return 0
			}
			return max(s.N, 1)
		}
	}
	return 0
}

// VouchedCity / VouchedCountry / VouchedDevice are HasCity / HasCountry /
// HasDevice counting only what a vouching login taught (not Unvouched):
// what makes a miss familiar.
func (b *Baseline) VouchedCity(country, city string) bool {
	return strings.TrimSpace(city) != "" && vouched(b.Cities, placeKey(country, city))
}
func (b *Baseline) VouchedCountry(key string) bool { return vouched(b.Countries, key) }
func (b *Baseline) VouchedDevice(key string) bool  { return vouched(b.Devices, key) }

func vouched(ss []Seen, key string) bool {
	for _, s := range ss {
		if s.Key == key {
			return !s.Unvouched
		}
	}
	return false
}

// HasCountry / HasDevice report whether the baseline knows the key.
func (b *Baseline) HasCountry(key string) bool { return has(b.Countries, key) }
func (b *Baseline) HasDevice(key string) bool  { return has(b.Devices, key) }

func has(ss []Seen, key string) bool {
	for _, s := range ss {
		if s.Key == key {
			return true
		}
	}
	return false
}

// How a login is learned (what it vouches for).
type learnMode int

const (
	learnClean    learnMode = iota // inside the allowlist, history: vouches, clears Told
	learnFamiliar                  // a familiar miss: vouches, leaves Told as it is
	learnTold                      // a miss told as an alert: vouches, marks its network Told
	learnGuessed                   // after guessed passwords: adds Unvouched, marks Told
)

// Learn adds a successful login to the baseline and reports whether
// anything changed. Learning the same login twice changes nothing.
func (b *Baseline) Learn(l Login) bool { return b.learn(l, learnClean) }

// LearnFamiliar, LearnTold and LearnGuessed are Learn for a login outside
// the allowlist demoted as familiar, told as an alert, or after guessed
// passwords (see Seen.Told and Seen.Unvouched).
func (b *Baseline) LearnFamiliar(l Login) bool { return b.learn(l, learnFamiliar) }
func (b *Baseline) LearnTold(l Login) bool     { return b.learn(l, learnTold) }
func (b *Baseline) LearnGuessed(l Login) bool  { return b.learn(l, learnGuessed) }

// NetworkTold reports whether network is Told.
func (b *Baseline) NetworkTold(network string) bool {
	for _, s := range b.Networks {
		if s.Key == network {
			return s.Told
		}
	}
	return false
}

func (b *Baseline) learn(l Login, mode learnMode) bool {
	changed := true
	switch {
	case b.First.IsZero():
		b.First, b.Newest, b.Logins = l.At, l.At, 1
	case l.At.After(b.Newest):
		b.Newest = l.At
		b.Logins++
	case l.At.Before(b.First): // older history (learn, a backfill)
		b.First = l.At
		b.Logins++
	default:
		changed = false // within what was learned: possibly this very login
	}
	counted := changed
	// A login learned before (a re-read) vouches for nothing anew; a login
	// after guessed passwords never does (what it adds stays Unvouched).
	told := mode == learnGuessed || !counted
	if l.placeUsable() && strings.TrimSpace(l.City) != "" {
		if upsert(&b.Cities, placeKey(l.Country, l.City), clip(strings.TrimSpace(l.City)), l.At, MaxCities, told) {
			changed = true
		}
	}
	if n := Network(l.IP); n != "" && l.Whole {
		if upsert(&b.Networks, n, "", l.At, MaxNetworks, told) {
			changed = true
		}
		if counted {
			for i := range b.Networks {
				if b.Networks[i].Key == n {
					b.Networks[i].N++
					switch mode {
					case learnTold, learnGuessed:
						b.Networks[i].Told = true
					case learnClean:
						b.Networks[i].Told = false
					}
					changed = true
				}
			}
		}
	}
	if l.placeUsable() {
		if upsert(&b.Countries, countryKey(l.Country), clip(strings.TrimSpace(l.Country)), l.At, MaxCountries, told) {
			changed = true
		}
	}
	// Last: the newest login travel may compare with ("anywhere" entries
	// leave no sighting; a declared place counts without a GeoIP country).
	if l.travelUsable() && (b.Last == nil || l.At.After(b.Last.At)) {
		sg := l.sighting()
		b.Last = &sg
		changed = true
	}
	if k := DeviceKey(l.Browser, l.Platform); k != "" {
		if upsert(&b.Devices, k, clip(DeviceName(l.Browser, l.Platform)), l.At, MaxDevices, told) {
			changed = true
		}
	}
	return changed
}

// upsert records key seen at at (its At only grows) and keeps at most max
// entries, the most recently seen. A told login (LearnTold) adds the key
// Unvouched; any other login vouches for it.
func upsert(ss *[]Seen, key, name string, at time.Time, max int, told bool) bool {
	for i := range *ss {
		if (*ss)[i].Key == key {
			changed := false
			if !told && (*ss)[i].Unvouched {
				(*ss)[i].Unvouched = false
				changed = true
			}
			if at.After((*ss)[i].At) {
				(*ss)[i].At = at
				changed = true
			}
			return changed
		}
	}
	*ss = append(*ss, Seen{Key: key, Name: name, At: at, Unvouched: told})
	if len(*ss) > max {
		sort.SliceStable(*ss, func(i, j int) bool { return (*ss)[i].At.After((*ss)[j].At) })
		dropped := (*ss)[max]
		*ss = (*ss)[:max]
		return dropped.Key != key // an older one than all kept changes nothing
	}
	return true
}
