package behaviour

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"ipguard/internal/countries"
)

// Declared places (issue #21 §4): an allowlist entry may say where the
// logins through it come from, instead of the portal's GeoIP. Its "place"
// is one of
//
//	anywhere        a VPN or provider range whose exits move: logins
//	                through it are left out of travel (no sighting)
//	Berlin          a city of the place table (a time zone's principal
//	                city; "Berlin, DE" or "Berlin, Germany" when the name
//	                alone is not unique)
//	52.52,13.405    coordinates: latitude -90..90, longitude -180..180
//
// ParsePlace checks a place and returns its canonical text, which is what
// is stored with the entry ("anywhere", "Berlin, DE", "52.52,13.405").

// PlaceAnywhere is the place of an entry whose exits move.
const PlaceAnywhere = "anywhere"

// MaxPlaceLength bounds a place's text (bytes).
const MaxPlaceLength = 100

// DeclaredRadiusKm is how far from a declared point a login through the
// entry may be: a declared place is the office's, not GeoIP's guess.
const DeclaredRadiusKm = 50.0

// DeclaredPlace is an entry's place, parsed.
type DeclaredPlace struct {
	// Anywhere: the entry's exits move (no place).
	Anywhere bool
	// Place is where logins through the entry come from (Known unless Anywhere).
	Place Place
	// Name is how messages name it: the city ("Berlin") or the coordinates.
	Name string
	// Canonical is the text stored with the entry.
	Canonical string
}

// ParsePlace reads an entry's place (see the package comment above). The
// error says what is wrong in words a caller can act on; the caller names
// the field and the value.
func ParsePlace(s string) (DeclaredPlace, error) {
	t := strings.TrimSpace(s)
	switch {
	case t == "":
		return DeclaredPlace{}, fmt.Errorf("is empty; give a city of the place table (such as Berlin), coordinates \"lat,lon\" (such as 52.52,13.405), or %q, or leave place out to use the portal's GeoIP", PlaceAnywhere)
	case len(t) > MaxPlaceLength:
		return DeclaredPlace{}, fmt.Errorf("is %d bytes long; at most %d are allowed", len(t), MaxPlaceLength)
	case strings.EqualFold(t, PlaceAnywhere):
		return DeclaredPlace{Anywhere: true, Name: PlaceAnywhere, Canonical: PlaceAnywhere}, nil
	}
	if looksLikeCoordinates(t) {
		return parseCoordinates(t)
	}
	return parseCity(t)
}

func looksLikeCoordinates(s string) bool {
	for _, r := range s {
		if !strings.ContainsRune("0123456789.,+- ", r) {
			return false
		}
	}
	return strings.ContainsAny(s, "0123456789")
}

func parseCoordinates(s string) (DeclaredPlace, error) {
	latS, lonS, ok := strings.Cut(s, ",")
	if !ok || strings.Contains(lonS, ",") {
		return DeclaredPlace{}, fmt.Errorf("is not coordinates \"lat,lon\" (such as 52.52,13.405)")
	}
	lat, err1 := strconv.ParseFloat(strings.TrimSpace(latS), 64)
	lon, err2 := strconv.ParseFloat(strings.TrimSpace(lonS), 64)
	if err1 != nil || err2 != nil || math.IsNaN(lat) || math.IsNaN(lon) {
		return DeclaredPlace{}, fmt.Errorf("is not coordinates \"lat,lon\" (such as 52.52,13.405)")
	}
	if lat < -90 || lat > 90 {
		return DeclaredPlace{}, fmt.Errorf("has latitude %s; it must be from -90 to 90", strings.TrimSpace(latS))
	}
	if lon < -180 || lon > 180 {
		return DeclaredPlace{}, fmt.Errorf("has longitude %s; it must be from -180 to 180", strings.TrimSpace(lonS))
	}
	// Four decimals are about 10 m: more says nothing more.
	lat, lon = math.Round(lat*1e4)/1e4, math.Round(lon*1e4)/1e4
	c := strconv.FormatFloat(lat, 'f', -1, 64) + "," + strconv.FormatFloat(lon, 'f', -1, 64)
	return DeclaredPlace{Place: Place{Points: []Point{{Lat: lat, Lon: lon}}, Radius: DeclaredRadiusKm}, Name: c, Canonical: c}, nil
}

func parseCity(s string) (DeclaredPlace, error) {
	name, country, qualified := strings.Cut(s, ",")
	refs := countries.Cities(name)
	if len(refs) == 0 {
		return DeclaredPlace{}, fmt.Errorf("is not a city of the place table (a time zone's principal city, such as Berlin, New York or Sao Paulo), nor coordinates \"lat,lon\", nor %q", PlaceAnywhere)
	}
	if qualified {
		code := CountryCode(country)
		var in []countries.City
		for _, r := range refs {
			if r.Code == code {
				in = append(in, r)
			}
		}
		if len(in) == 0 {
			return DeclaredPlace{}, fmt.Errorf("names a city the place table has in %s, not in %q", codesOf(refs), strings.TrimSpace(country))
		}
		refs = in
	}
	if len(refs) > 1 {
		return DeclaredPlace{}, fmt.Errorf("names a city the place table has in %s; add the country (\"%s, %s\")", codesOf(refs), refs[0].Name, refs[0].Code)
	}
	r := refs[0]
	return DeclaredPlace{
		Place: Place{Code: r.Code, Country: countries.Lookup(r.Code).Name, City: r.Name, Points: []Point{r.Point}, Radius: DeclaredRadiusKm},
		Name:  r.Name, Canonical: r.Name + ", " + r.Code,
	}, nil
}

func codesOf(refs []countries.City) string {
	var cs []string
	for _, r := range refs {
		cs = append(cs, r.Code)
	}
	sort.Strings(cs)
	return strings.Join(cs, ", ")
}

// storedPlace parses a place as stored with an entry; ok false for none
// or one that no longer parses (then the portal's GeoIP is used).
func storedPlace(s string) (DeclaredPlace, bool) {
	if strings.TrimSpace(s) == "" {
		return DeclaredPlace{}, false
	}
	p, err := ParsePlace(s)
	return p, err == nil
}
