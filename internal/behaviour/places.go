package behaviour

import (
	_ "embed"
	"math"
	"strconv"
	"strings"
	"unicode"
)

// The place table.
//
// Source: the IANA time zone database (tzdata 2025b, as Debian ships it in
// /usr/share/zoneinfo), files zone.tab and iso3166.tab, copied unchanged into
// placedata/. The tz database is in the public domain. zone.tab gives, for
// every time zone, its country (ISO 3166 alpha-2) and the coordinates of
// the zone's principal city; iso3166.tab the countries' English names.
// Nothing else is added but the alias names below (the portal's GeoIP says
// "United Kingdom" where tz says "Britain (UK)").
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

//go:embed placedata/zone.tab
var zoneTab string

//go:embed placedata/iso3166.tab
var isoTab string

// Radii of a place's points.
const (
	CityRadiusKm    = 250.0
	CountryRadiusKm = 2100.0
)

// Point is a position in degrees.
type Point struct{ Lat, Lon float64 }

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

type countryData struct {
	code, name string
	points     []Point
	cities     map[string][]Point // normalised city name → its point (a slice of one, shared)
}

var (
	countries   map[string]*countryData // by code
	countryKeys map[string]string       // normalised name or code → code
)

// aliases are names GeoIP databases give that tz's iso3166.tab spells
// otherwise; keys are normalised (see normName).
var aliases = map[string]string{
	"united kingdom": "GB", "great britain": "GB", "england": "GB", "scotland": "GB", "wales": "GB",
	"south korea": "KR", "republic of korea": "KR", "north korea": "KP",
	"czechia": "CZ", "russian federation": "RU", "united states of america": "US", "usa": "US",
	"ivory coast": "CI", "cote divoire": "CI", "dr congo": "CD", "democratic republic of the congo": "CD",
	"republic of the congo": "CG", "congo": "CG", "cabo verde": "CV", "eswatini": "SZ", "swaziland": "SZ",
	"vatican": "VA", "holy see": "VA", "the netherlands": "NL", "netherlands": "NL", "macao": "MO", "macau": "MO",
	"burma": "MM", "myanmar": "MM", "palestinian territory": "PS", "iran islamic republic of": "IR",
	"moldova republic of": "MD", "laos": "LA", "lao peoples democratic republic": "LA", "syrian arab republic": "SY",
	"viet nam": "VN", "turkiye": "TR", "turkey": "TR", "east timor": "TL", "timor-leste": "TL",
	"micronesia": "FM", "federated states of micronesia": "FM", "brunei darussalam": "BN",
	"bolivia plurinational state of": "BO", "venezuela bolivarian republic of": "VE", "tanzania united republic of": "TZ",
	"north macedonia": "MK", "macedonia": "MK", "reunion": "RE", "curacao": "CW", "aland islands": "AX",
	"saint barthelemy": "BL", "sao tome and principe": "ST",
}

func init() {
	countries = map[string]*countryData{}
	countryKeys = map[string]string{}
	for _, line := range strings.Split(isoTab, "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) < 2 {
			continue
		}
		code, name := f[0], f[1]
		countries[code] = &countryData{code: code, name: name, cities: map[string][]Point{}}
		countryKeys[strings.ToLower(code)] = code
		for _, n := range nameVariants(name) {
			countryKeys[n] = code
		}
	}
	for k, code := range aliases {
		countryKeys[k] = code
	}
	for _, line := range strings.Split(zoneTab, "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) < 3 {
			continue
		}
		c := countries[f[0]]
		p, ok := parseISO6709(f[1])
		if c == nil || !ok {
			continue
		}
		c.points = append(c.points, p)
		zone := f[2][strings.LastIndexByte(f[2], '/')+1:]
		c.cities[normName(strings.ReplaceAll(zone, "_", " "))] = []Point{p}
	}
}

// nameVariants: "Britain (UK)" → "britain (uk)", "britain", "uk";
// "Bosnia & Herzegovina" → "bosnia and herzegovina".
func nameVariants(name string) []string {
	out := []string{normName(name)}
	if i := strings.IndexByte(name, '('); i > 0 {
		out = append(out, normName(name[:i]))
		if j := strings.IndexByte(name[i:], ')'); j > 0 {
			out = append(out, normName(name[i+1:i+j]))
		}
	}
	return out
}

// normName lower-cases, strips accents and punctuation, spells "&" "and" and
// "St" "saint", and collapses spaces: "São Paulo" and "Sao_Paulo" meet.
func normName(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	var b strings.Builder
	space := false
	for _, r := range s {
		if f, ok := fold[r]; ok {
			r = f
		}
		switch {
		case r == '&':
			if b.Len() > 0 && !space {
				b.WriteByte(' ')
			}
			b.WriteString("and")
			space = false
		case unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-':
			if space && b.Len() > 0 {
				b.WriteByte(' ')
			}
			space = false
			b.WriteRune(r)
		case r == '.' || r == '\'':
			// dropped: "St." → "st", "Cote d'Ivoire" → "cote divoire"
		default:
			space = true
		}
	}
	out := b.String()
	if strings.HasPrefix(out, "st ") {
		out = "saint " + out[3:]
	}
	return out
}

// fold maps the accented Latin letters of city and country names to their
// base letter (the standard library has no Unicode decomposition).
var fold = func() map[rune]rune {
	m := map[rune]rune{}
	for base, accented := range map[rune]string{
		'a': "àáâãäåāăą", 'c': "çćčĉċ", 'd': "ďđ", 'e': "èéêëēĕėęě", 'g': "ğĝġģ", 'h': "ĥħ",
		'i': "ìíîïĩīĭįı", 'j': "ĵ", 'k': "ķ", 'l': "ĺļľŀł", 'n': "ñńņňŉ", 'o': "òóôõöøōŏő",
		'r': "ŕŗř", 's': "śŝşšș", 't': "ţťŧț", 'u': "ùúûüũūŭůűų", 'w': "ŵ", 'y': "ýÿŷ", 'z': "źżž",
	} {
		for _, r := range accented {
			m[r] = base
		}
	}
	return m
}()

// parseISO6709 reads ±DDMM±DDDMM or ±DDMMSS±DDDMMSS.
func parseISO6709(s string) (Point, bool) {
	i := strings.IndexAny(s[1:], "+-") + 1
	if i <= 0 {
		return Point{}, false
	}
	lat, ok1 := dms(s[:i], 2)
	lon, ok2 := dms(s[i:], 3)
	return Point{lat, lon}, ok1 && ok2
}

func dms(s string, degDigits int) (float64, bool) {
	if len(s) < 1+degDigits+2 {
		return 0, false
	}
	sign := 1.0
	if s[0] == '-' {
		sign = -1
	}
	d := s[1:]
	deg, err1 := strconv.Atoi(d[:degDigits])
	min, err2 := strconv.Atoi(d[degDigits : degDigits+2])
	sec := 0
	var err3 error
	if len(d) >= degDigits+4 {
		sec, err3 = strconv.Atoi(d[degDigits+2 : degDigits+4])
	}
	if err1 != nil || err2 != nil || err3 != nil {
		return 0, false
	}
	return sign * (float64(deg) + float64(min)/60 + float64(sec)/3600), true
}

// CountryCode returns the ISO code of a country as the portal names it (an
// English name or a code); "" when the table does not know it.
func CountryCode(country string) string {
	if strings.TrimSpace(country) == "" {
		return ""
	}
	return countryCodes.get([2]string{country}, func() string { return countryCode(country) })
}

func countryCode(country string) string {
	n := normName(country)
	if c, ok := countryKeys[n]; ok {
		return c
	}
	return ""
}

// Locate returns the place of a country and city as the portal names them:
// the city's point when the table has it, else the country's points; not
// Known when the country is empty or unknown.
func Locate(country, city string) Place {
	code := CountryCode(country)
	c := countries[code]
	if c == nil {
		return Place{}
	}
	if strings.TrimSpace(city) != "" {
		if ps, ok := c.cities[cityKey(city)]; ok {
			return Place{Code: code, Country: c.name, City: strings.TrimSpace(city), Points: ps, Radius: CityRadiusKm}
		}
	}
	return Place{Code: code, Country: c.name, Points: c.points, Radius: CountryRadiusKm}
}

var cityKeys memo

func cityKey(city string) string {
	return cityKeys.get([2]string{city}, func() string { return normName(city) })
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
