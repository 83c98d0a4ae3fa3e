package behaviour

import "testing"

// TestCountryAliasesAreTheirCountry: the rules read the one country table
// (internal/countries); "UK" was the British Virgin Islands and "US" the
// US Virgin Islands while the rules had a table of their own.
func TestCountryAliasesAreTheirCountry(t *testing.T) {
	tests := []struct{ country, city, want string }{
		{"UK", "London", "GB"},
		{"Britain", "", "GB"},
		{"United Kingdom", "London", "GB"},
		{"US", "New York", "US"},
		{"USA", "", "US"},
		{"Virgin Islands (UK)", "", "VG"},
	}
	for _, tt := range tests {
		if got := CountryCode(tt.country); got != tt.want {
			t.Errorf("CountryCode(%q) = %q, want %q", tt.country, got, tt.want)
		}
		if p := Locate(tt.country, tt.city); p.Code != tt.want || !p.Known() {
			t.Errorf("Locate(%q, %q) = %+v, want a known place in %s", tt.country, tt.city, p, tt.want)
		}
	}
}
