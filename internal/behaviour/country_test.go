package behaviour

import "testing"

// TestCountryAliasesAreTheirCountry: the rules read the one country table
// (internal/countries); "UK" was the British Virgin Islands and "US" the
// US Virgin Islands while the rules had a table of their own.
func TestCountryAliasesAreTheirCountry(t *testing.T) {
	for _, in := range [][3]string{
		// country, city, the code wanted
		{"UK", "London", "GB"},
		{"Britain", "", "GB"},
		{"United Kingdom", "London", "GB"},
		{"US", "New York", "US"},
		{"USA", "", "US"},
		{"Virgin Islands (UK)", "", "VG"},
	} {
		country, city, want := in[0], in[1], in[2]
		if got := CountryCode(country); got != want {
			t.Errorf("CountryCode(%q) = %q, want %q", country, got, want)
		}
		if p := Locate(country, city); p.Code != want || !p.Known() {
			t.Errorf("Locate(%q, %q) = %+v, want a known place in %s", country, city, p, want)
		}
	}
}
