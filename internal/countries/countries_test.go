package countries

import "testing"

// TestCodeAliases pins the names the portal's GeoIP and people give that
// two tables once read differently ("UK" was the British Virgin Islands to
// the behaviour rules and Great Britain to the OCSF records).
func TestCodeAliases(t *testing.T) {
	for want, names := range map[string][]string{
		"GB": {"UK", "uk", "Britain", "Great Britain", "United Kingdom", "England", "Britain (UK)", "GB"},
		"US": {"US", "USA", "United States", "United States of America"},
		"VG": {"Virgin Islands (UK)", "British Virgin Islands"},
		"VI": {"Virgin Islands (US)", "U.S. Virgin Islands"},
		"DE": {"Germany", "de"},
		"CI": {"Côte d'Ivoire", "Ivory Coast"},
		"KR": {"South Korea", "Korea, Republic of"},
		"KP": {"North Korea"},
		"CZ": {"Czechia", "Czech Republic"},
		"RU": {"Russia"},
		"TR": {"Türkiye"},
		"MM": {"Burma"},
		"WS": {"Samoa"},
		"AS": {"American Samoa"},
		"BA": {"Bosnia & Herzegovina"},
		"MF": {"St Martin (French)"},
	} {
		for _, name := range names {
			if got, ok := Code(name); got != want || !ok {
				t.Errorf("Code(%q) = %q, %v; want %q, true", name, got, ok, want)
			}
		}
	}
}

func TestCodeUnknown(t *testing.T) {
	for _, name := range []string{"", "  ", "Atlantis", "Virgin Islands", "XX", "american", "south"} {
		if got, ok := Code(name); ok || got != "" {
			t.Errorf("Code(%q) = %q, %v; want unknown", name, got, ok)
		}
	}
}

// TestNoNameNamesTwoCountries: the sources agree; no name, alias or code
// of one country is a name of another.
func TestNoNameNamesTwoCountries(t *testing.T) {
	loadTables()
	for _, c := range clashes {
		t.Errorf("a name of two countries: %s", c)
	}
}

// TestEveryCodeIsACountry: every code a name maps to is in the table, with
// a name and at least one point.
func TestEveryCodeIsACountry(t *testing.T) {
	loadTables()
	for k, code := range byKey {
		c := Lookup(code)
		if c == nil || c.Name == "" {
			t.Errorf("%q maps to %s, which the table does not have", k, code)
		}
	}
	if gb := Lookup("GB"); gb == nil || len(gb.Points) == 0 {
		t.Fatalf("GB has no points: %+v", gb)
	}
	if ps, ok := Lookup("GB").City(Key("London")); !ok || len(ps) != 1 {
		t.Errorf("London is not a city of GB: %v %v", ps, ok)
	}
}

func TestCities(t *testing.T) {
	sp := Cities("são paulo")
	if len(sp) != 1 || sp[0].Code != "BR" || sp[0].Name != "Sao Paulo" {
		t.Errorf("Cities(são paulo) = %+v", sp)
	}
	if got := Cities("Atlantis"); got != nil {
		t.Errorf("Cities(Atlantis) = %+v, want none", got)
	}
}

// TestKey: the spellings that must meet.
func TestKey(t *testing.T) {
	for want, spellings := range map[string][]string{
		"sao paulo":              {"São Paulo", "Sao_Paulo", "sao  paulo"},
		"saint helena":           {"St. Helena", "St Helena", "Saint Helena"},
		"bosnia and herzegovina": {"Bosnia & Herzegovina", "Bosnia&Herzegovina", "Bosnia and Herzegovina"},
		"cote divoire":           {"  Côte d'Ivoire ", "Cote d'Ivoire"},
		"korea republic of":      {"Korea, Republic of"},
	} {
		for _, in := range spellings {
			if got := Key(in); got != want {
				t.Errorf("Key(%q) = %q, want %q", in, got, want)
			}
		}
	}
}
