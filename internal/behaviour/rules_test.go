package behaviour

import (
	"strings"
	"testing"
	"time"

	"ipguard/internal/audit"
)

var t0 = time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)

// learned is a baseline past its learning period: Germany, Firefox on Windows.
func learned() *Baseline { return berlinDaily(12, 20) }

// young has 3 logins within 2 days: still learning.
func young() *Baseline { return berlinDaily(3, 2) }

// berlinDaily is u1's baseline of n logins from Berlin, Firefox on
// Windows, one a day, the first daysAgo days before t0.
func berlinDaily(n, daysAgo int) *Baseline {
	b := &Baseline{UserID: "u1"}
	for i := 0; i < n; i++ {
		b.Learn(Login{EventID: int64(i + 1), At: t0.Add(-time.Duration(daysAgo-i) * 24 * time.Hour), IP: "198.51.100.7", Whole: true,
			Country: "Germany", City: "Berlin", Browser: "Firefox 126.0", Platform: "Windows 10"})
	}
	return b
}

func berlinAt(d time.Duration) *Sighting {
	return &Sighting{EventID: 99, At: t0.Add(d), Country: "Germany", City: "Berlin", IP: "198.51.100.7"}
}

func login(country, city, browser, platform string) Login {
	return Login{EventID: 500, UserID: "u1", At: t0, IP: "203.0.113.9", Whole: true, Country: country, City: city, Browser: browser, Platform: platform}
}

func kinds(v Verdict) string {
	var ks []string
	for _, r := range v.Reasons {
		ks = append(ks, r.Kind)
	}
	return strings.Join(ks, ",")
}

func TestRules(t *testing.T) {
	brazil := login("Brazil", "São Paulo", "Firefox 127.0", "Windows 11")
	declared := brazil
	declared.Declared = true
	noCountry := brazil
	noCountry.Country, noCountry.City = "", ""
	cut := brazil
	cut.IP, cut.Whole = "2001", false
	paris := login("France", "Paris", "Firefox 126.0", "Windows 10")
	newYork := login("United States", "New York", "Firefox 126.0", "Windows 10")
	edge := login("Germany", "Berlin", "Edge 120", "Windows 10")
	bavaria := login("Germany", "Munich", "Firefox 126.0", "Windows 10")
	unknownCountry := login("Atlantis", "", "Firefox 126.0", "Windows 10")
	newerFirefox := login("Germany", "", "Firefox 130.1", "Windows 11")
	old := learned()
	old.Learn(Login{EventID: 40, At: t0.Add(-40 * 24 * time.Hour), Whole: true, IP: "198.51.100.7", Country: "Germany"}) // history > 14 days
	for _, c := range []struct {
		name  string
		b     *Baseline
		prev  *Sighting
		l     Login
		rules []string
		want  string
	}{
		{"Berlin then São Paulo 40 minutes later: impossible travel and a new country", learned(), berlinAt(-40 * time.Minute), brazil, nil, "impossible_travel,new_country"},
		{"impossible travel needs no learned baseline", &Baseline{}, berlinAt(-40 * time.Minute), brazil, nil, "impossible_travel"},
		{"learning: no new_country or new_device", young(), nil, brazil, nil, ""},
		{"learning ends after MinDays even with few logins", func() *Baseline {
			b := &Baseline{}
			b.Learn(Login{EventID: 1, At: t0.Add(-15 * 24 * time.Hour), Whole: true, IP: "198.51.100.7", Country: "Germany", Browser: "Firefox 1", Platform: "Windows"})
			return b
		}(), nil, brazil, nil, "new_country"},
		{"Berlin then São Paulo 12 hours later is possible", learned(), berlinAt(-12 * time.Hour), brazil, []string{RuleImpossibleTravel}, ""},
		{"a declared entry raises no new_country, but travel pairs it with the login before (#21 §4)", learned(), berlinAt(-40 * time.Minute), declared, nil, "impossible_travel"},
		{"a declared entry raises nothing by itself", learned(), nil, declared, nil, ""},
		{"two logins through the same declared entry are not travel (GeoIP of one network moving)", learned(),
			&Sighting{EventID: 99, At: t0.Add(-40 * time.Minute), Country: "Germany", City: "Berlin", IP: "203.0.113.9", Declared: true}, declared, nil, ""},
		{"an empty country raises no place finding", learned(), berlinAt(-40 * time.Minute), noCountry, nil, ""},
		{"a cut IPv6 address raises no place finding", learned(), berlinAt(-40 * time.Minute), cut, nil, ""},
		{"Berlin then Paris 10 minutes later is too close to judge", learned(), berlinAt(-10 * time.Minute), paris, []string{RuleImpossibleTravel}, ""},
		{"Berlin then Paris: a new country", learned(), berlinAt(-10 * time.Minute), paris, nil, "new_country"},
		{"Berlin then New York 2 hours later", learned(), berlinAt(-2 * time.Hour), newYork, nil, "impossible_travel,new_country"},
		{"a backfilled login before the last one is compared too", learned(), berlinAt(30 * time.Minute), newYork, []string{RuleImpossibleTravel}, "impossible_travel"},
		{"the same event is not compared with itself", learned(), &Sighting{EventID: 500, At: t0, Country: "Germany"}, newYork, []string{RuleImpossibleTravel}, ""},
		{"a country the table does not know is never travel", learned(), berlinAt(-time.Minute), unknownCountry, []string{RuleImpossibleTravel}, ""},
		{"a new browser family is a new device", learned(), nil, edge, nil, "new_device"},
		{"a new version of a known browser and platform is not", learned(), nil, newerFirefox, nil, ""},
		{"another city of a known country is nothing", old, berlinAt(-time.Hour), bavaria, nil, ""},
		{"rules switched off", learned(), berlinAt(-40 * time.Minute), brazil, []string{RuleNewDevice}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			v := Judge(c.b, c.prev, c.l, Settings{Rules: c.rules})
			if got := kinds(v); got != c.want {
				t.Fatalf("reasons %q, want %q (%+v)", got, c.want, v.Reasons)
			}
			if c.want != "" && v.Explanation == "" {
				t.Error("no explanation")
			}
		})
	}
}

func TestExplanationSaysWhatIsNewAndWhatIsNormal(t *testing.T) {
	v := Judge(learned(), berlinAt(-40*time.Minute), login("Brazil", "São Paulo", "Firefox 126.0", "Windows 10"), Settings{})
	for _, want := range []string{"first login from Brazil", "the last login was from Berlin, Germany 40 minutes earlier, about 10,200 km away",
		"Normal for this user (12 logins since 2026-10-13): from Germany; with Firefox on Windows."} {
		if !strings.Contains(v.Explanation, want) {
			t.Errorf("explanation %q lacks %q", v.Explanation, want)
		}
	}
	if v.Reasons[0].Severity != audit.SeverityHigh || v.Reasons[1].Severity != audit.SeverityMedium {
		t.Errorf("severities %+v", v.Reasons)
	}
}

func TestBaselineIsBoundedAndNeverMovesBackwards(t *testing.T) {
	b := &Baseline{}
	for i := 0; i < 80; i++ {
		b.Learn(Login{EventID: int64(i), At: t0.Add(time.Duration(i) * time.Hour), Whole: true, IP: "198.51.100.1",
			Country: "Country" + string(rune('A'+i%26)) + string(rune('A'+i/26)), Browser: "B" + string(rune('A'+i%26)) + string(rune('A'+i/26)), Platform: "P"})
	}
	if len(b.Countries) != MaxCountries || len(b.Devices) != MaxDevices || b.Logins != 80 {
		t.Fatalf("countries %d devices %d logins %d", len(b.Countries), len(b.Devices), b.Logins)
	}
	if b.HasCountry(countryKey("CountryAA")) || !b.HasCountry(countryKey("CountryBC")) {
		t.Error("the least recent country should have been dropped first")
	}
	last := *b.Last
	// An older login, and the same login again, change nothing backwards.
	if b.Learn(Login{EventID: 3, At: t0.Add(3 * time.Hour), Whole: true, IP: "198.51.100.1", Country: "CountryDA", Browser: "BDA", Platform: "P"}) != false {
		t.Error("learning a login seen before changed the baseline")
	}
	b.Learn(Login{EventID: 7, At: t0, Whole: true, IP: "198.51.100.1", Country: "Germany"})
	if *b.Last != last || b.Logins != 80 {
		t.Errorf("an older login moved last %+v → %+v, logins %d", last, *b.Last, b.Logins)
	}
}

// A setting not set (zero) or negative is its default; a positive one is
// itself.
func TestSettingsDefaultWhereNotPositive(t *testing.T) {
	for _, c := range []struct {
		name string
		s    Settings
		want [5]any // minLogins, minDays, sprayMin, sprayWindow, episodeHours
	}{
		{"not set", Settings{}, [5]any{DefaultMinLogins, DefaultMinDays * 24 * time.Hour, DefaultSprayMinAccounts, DefaultSprayWindow, DefaultEpisodeHours}},
		{"negative", Settings{MinLogins: -1, MinDays: -1, SprayMinAccounts: -1, SprayWindow: -time.Minute, EpisodeHours: -1},
			[5]any{DefaultMinLogins, DefaultMinDays * 24 * time.Hour, DefaultSprayMinAccounts, DefaultSprayWindow, DefaultEpisodeHours}},
		{"set", Settings{MinLogins: 3, MinDays: 2, SprayMinAccounts: 4, SprayWindow: time.Hour, EpisodeHours: 6},
			[5]any{3, 48 * time.Hour, 4, time.Hour, 6}},
	} {
		got := [5]any{c.s.minLogins(), c.s.minDays(), c.s.sprayMin(), c.s.sprayWindow(), c.s.episodeHours()}
		if got != c.want {
			t.Errorf("%s: minLogins, minDays, sprayMin, sprayWindow, episodeHours = %v, want %v", c.name, got, c.want)
		}
	}
}
