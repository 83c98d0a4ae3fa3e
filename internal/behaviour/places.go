package behaviour

import (
	"math"
	"strings"

	"ipguard/internal/countries"
)

// The place table is internal/countries (the tz database's zones and
// names, ISO's names and GeoIP's aliases).
//
// What follows from it, and what the rules may claim:
//   - a city is known only when it is a zone's principal city (Berlin,
//     New York, Kolkata, São Paulo, ... about 400 of them); its position is
//     taken to be within CityRadiusKm of the zone's point (GeoIP places an
//     address at its provider's city, often the nearest large one);
//   - a country is the set of its zones' points, each with CountryRadiusKm:
//     no populated place of a country is much farther than that from the
//     nearest zone point of its country (the far ends of India and Japan
//     are about 2,050 km away, the rest less); this is deliberately coarse,
//     so that two neighbouring countries are "too close to judge".

// Radii of a place's points.
const (
	CityRadiusKm    = 250.0
	CountryRadiusKm = 2100.0
)

// Point is a position in degrees.
type Point = countries.Point

// Place is where a login came from, as precisely as the table knows it.
type Place struct {
	Code    string  // ISO 3166 alpha-2
	Country string  // its English name (tz's iso3166.tab)
	City    string  // set when the city is in the table
	Points  []Point // where it may be: any of these, within Radius
	Radius  float64 // km
}

// Known reports whether the place has a position.
func (p Place) Known() bool { return len(p.Points) > 0 }

// CountryCode returns the ISO code of a country as the portal names it (an
// English name or a code); "" when the table does not know it.
func CountryCode(country string) string {
	if strings.TrimSpace(country) == "" {
		return ""
	}
	return countryCodes.get([2]string{country}, func() string { return countryCode(country) })
}

func countryCode(country string) string {
	c, _ := countries.Code(country)
	return c
}

// Locate returns the place of a country and city as the portal names them:
// the city's point when the table has it, else the country's points; not
// Known when the country is empty or unknown.
func Locate(country, city string) Place {
	code := CountryCode(country)
	c := countries.Lookup(code)
	if c == nil {
		return Place{}
	}
	if strings.TrimSpace(city) != "" {
		if ps, ok := c.City(cityKey(city)); ok {
			return Place{Code: code, Country: c.Name, City: strings.TrimSpace(city), Points: ps, Radius: CityRadiusKm}
		}
	}
	return Place{Code: code, Country: c.Name, Points: c.Points, Radius: CountryRadiusKm}
}

var cityKeys memo

func cityKey(city string) string {
	return cityKeys.get([2]string{city}, func() string { return countries.Key(city) })
}

// earthRadiusKm is the mean radius of the Earth.
const earthRadiusKm = 6371.0

// DistanceKm is the great-circle distance between two points (haversine).
func DistanceKm(a, b Point) float64 {
	rad := math.Pi / 180
	dlat := (b.Lat - a.Lat) * rad
	dlon := (b.Lon - a.Lon) * rad
	h := math.Sin(dlat/2)*math.Sin(dlat/2) + math.Cos(a.Lat*rad)*math.Cos(b.Lat*rad)*math.Sin(dlon/2)*math.Sin(dlon/2)
	return 2 * earthRadiusKm * math.Asin(math.Min(1, math.Sqrt(h)))
}

// Apart returns how far apart two places are: at least least km (the
// nearest points, less both radii; 0 when they may overlap), and about
// about km (the nearest points), for explanations.
func Apart(a, b Place) (least, about float64) {
	about = math.Inf(1)
	for _, p := range a.Points {
		for _, q := range b.Points {
			about = math.Min(about, DistanceKm(p, q))
		}
	}
	if math.IsInf(about, 1) {
		return 0, 0
	}
	return math.Max(0, about-a.Radius-b.Radius), about
}
