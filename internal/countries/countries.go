// Package countries is the one country table: the ISO 3166-1 alpha-2 code of
// every name a portal's GeoIP or a person gives a country (ISO's short, common
// and official names, the tz database's names, and aliases such as "UK",
// "Britain", "England" or "USA"), each country's English name, and where it
// is (the principal cities of its time zones). The behaviour rules, the OCSF
// records and the declared places all read it, so a name means one country
// everywhere.
//
// Sources: the IANA time zone database (tzdata 2025b, as Debian ships it in
// /usr/share/zoneinfo), files zone.tab and iso3166.tab, copied unchanged
// into data/ (public domain): zone.tab gives, for every time zone, its
// country and the coordinates of the zone's principal city, iso3166.tab the
// countries' English names; and names.go, the ISO 3166-1 names (the
// iso-codes project's) and GeoIP's short names. Nothing else is added but
// the aliases below.
//
// The table is read-only after package initialisation and safe for
// concurrent use.
package countries

import (
	_ "embed"
	"strconv"
	"strings"
	"sync"
	"unicode"
)

//go:embed data/zone.tab
var zoneTab string

//go:embed data/iso3166.tab
var isoTab string

// Point is a position in degrees.
type Point struct{ Lat, Lon float64 }

// Country is one entry of the table.
type Country struct {
	Code   string  // ISO 3166-1 alpha-2
	Name   string  // its English name as tz's iso3166.tab gives it ("Britain (UK)")
	Points []Point // the principal cities of its time zones; shared, not to be changed
	cities map[string][]Point
}

// City is a time zone's principal city.
type City struct {
	Name  string // as tz spells it, with spaces ("Sao Paulo")
	Code  string // its country
	Point Point
}

// City returns the point of one of the country's principal cities (a slice
// of one, shared, not to be changed), key as Key gives it; false when the
// table does not have the city.
func (c *Country) City(key string) ([]Point, bool) {
	ps, ok := c.cities[key]
	return ps, ok
}

// aliases are names people and GeoIP databases give that neither list
// spells so; keys as Key gives them. "uk" is here because tz's
// "Virgin Islands (UK)" must not claim it.
var aliases = map[string]string{
	"uk": "GB", "britain": "GB", "great britain": "GB", "united kingdom": "GB",
	"england": "GB", "scotland": "GB", "wales": "GB", "northern ireland": "GB",
	"usa": "US", "united states of america": "US",
	"south korea": "KR", "republic of korea": "KR", "north korea": "KP",
	"czechia": "CZ", "russian federation": "RU",
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

var (
	byCode  map[string]*Country // ISO code → country
	byKey   map[string]string   // folded name, alias or lower-case code → code
	byCity  map[string][]City   // folded city name → the cities of that name
	clashes []string            // names the sources give two countries (a test holds it empty)
)

// loadTables builds the tables above from the embedded files, once, on the
// first lookup: not at start, so that a process that never looks a country
// up (the onboarding function) does not pay for it in its cold start.
var loadTables = sync.OnceFunc(func() {
	byCode, byKey, byCity = map[string]*Country{}, map[string]string{}, map[string][]City{}
	tz := rows(isoTab, 2)
	bases := map[string]int{} // tz names' bases before "(": two countries share "Virgin Islands"
	for _, f := range tz {
		if i := strings.IndexByte(f[1], '('); i > 0 {
			bases[Key(f[1][:i])]++
		}
	}
	for _, f := range tz {
		code, name := f[0], f[1]
		byCode[code] = &Country{Code: code, Name: name, cities: map[string][]Point{}}
		add(strings.ToLower(code), code)
		add(Key(name), code)
		// "Britain (UK)" is also "Britain"; "Virgin Islands (UK)" is not
		// "Virgin Islands" (two countries are), nor "UK" (an alias says so).
		if i := strings.IndexByte(name, '('); i > 0 && bases[Key(name[:i])] == 1 {
			add(Key(name[:i]), code)
		}
	}
	for n, code := range isoNames {
		add(Key(n), code)
	}
	for k, code := range aliases {
		add(k, code)
	}
	for _, f := range rows(zoneTab, 3) {
		c := byCode[f[0]]
		p, ok := parseISO6709(f[1])
		if c == nil || !ok {
			continue
		}
		c.Points = append(c.Points, p)
		name := strings.ReplaceAll(f[2][strings.LastIndexByte(f[2], '/')+1:], "_", " ")
		k := Key(name)
		c.cities[k] = []Point{p}
		byCity[k] = append(byCity[k], City{Name: name, Code: c.Code, Point: p})
	}
})

// add records that key names code, and a clash when it already names
// another.
func add(key, code string) {
	if old, ok := byKey[key]; ok && old != code {
		clashes = append(clashes, key+": "+old+" and "+code)
	}
	byKey[key] = code
}

// rows are the tab-separated lines of a tz table with at least n fields.
func rows(tab string, n int) [][]string {
	var out [][]string
	for _, line := range strings.Split(tab, "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		if f := strings.Split(line, "\t"); len(f) >= n {
			out = append(out, f)
		}
	}
	return out
}

// Code returns the ISO 3166-1 alpha-2 code of a country as a portal or a
// person names it: any name or alias of the table, or a code, in any case,
// with or without accents and punctuation ("UK", "united kingdom",
// "Côte d'Ivoire", "de"); false when the table does not know it.
func Code(name string) (string, bool) {
	k := Key(name)
	if k == "" {
		return "", false
	}
	loadTables()
	c, ok := byKey[k]
	return c, ok
}

// Lookup returns the country of an ISO code (upper case); nil when the
// table does not have it.
func Lookup(code string) *Country {
	loadTables()
	return byCode[code]
}

// Cities returns the principal cities of the table called name (folded as
// Key folds it; more than one where countries share a name); nil for none.
func Cities(name string) []City {
	loadTables()
	return byCity[Key(name)]
}

// Key folds a place name for lookups: lower case, accents stripped,
// punctuation dropped, "&" spelled "and" and a leading "St" "saint", spaces
// collapsed ("São Paulo" and "Sao_Paulo" meet). Stored keys (a baseline's
// cities) are made with it, so it must not change lightly.
func Key(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	var b strings.Builder
	space := false
	for _, r := range s {
		if f, ok := fold[r]; ok {
			r = f
		}
		switch {
		case r == '&':
			if b.Len() > 0 {
				b.WriteByte(' ')
			}
			b.WriteString("and")
			space = true
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
