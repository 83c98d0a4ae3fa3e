package behaviour

import (
	"fmt"
	"strings"
	"time"
)

// travelSide is one login of an impossible_travel pair, as messages tell it
// (#21 §4: "10:05 UTC through the Berlin office entry 203.0.113.0/24,
// 10:50 UTC from New York, United States, ...: one of the two is not alice").
type travelSide struct {
	at       time.Time
	place    Place
	country  string // as the portal gave it
	declared bool
	entry    string
	note     string
	named    string // the declared place's name ("" : the portal's GeoIP)
}

func sideOfLogin(l Login) travelSide {
	s := travelSide{at: l.At, country: l.Country, declared: l.Declared, entry: l.Entry, note: l.EntryNote}
	if dp, ok := l.declaredPlace(); ok && !dp.Anywhere {
		s.place, s.named = dp.Place, dp.Name
	} else {
		s.place = Locate(l.Country, l.City)
	}
	return s
}

func sideOfSighting(g *Sighting) travelSide {
	s := travelSide{at: g.At, country: g.Country, declared: g.Declared, entry: g.Entry, note: g.Note}
	if dp, ok := storedPlace(g.Place); ok && g.Declared && !dp.Anywhere {
		s.place, s.named = dp.Place, dp.Name
	} else {
		s.place = Locate(g.Country, g.City)
	}
	return s
}

// label is an entry's note when it reads as a short label ("office",
// "Berlin HQ"): at most three words and 32 bytes; else "".
func label(note string) string {
	n := strings.TrimSpace(note)
	if n == "" || len(n) > 32 || len(strings.Fields(n)) > 3 {
		return ""
	}
	return n
}

// where says where the login came from: "from New York, United States",
// "through the Berlin office entry 203.0.113.0/24", "from Berlin, Germany
// (through the office entry 203.0.113.10)" (a declared entry without
// place: GeoIP's place).
func (s travelSide) where() string {
	if !s.declared {
		return "from " + placeName(s.place, s.country)
	}
	if s.entry == "" {
		if s.named != "" {
			return "through a " + s.named + " entry of the user's allowlist"
		}
		return "from " + placeName(s.place, s.country) + " (through one of the user's own allowlist entries)"
	}
	var b strings.Builder
	b.WriteString("through the ")
	if s.named != "" {
		b.WriteString(s.named + " ")
	}
	if l := label(s.note); l != "" {
		b.WriteString(l + " ")
	} else if s.named == "" {
		b.WriteString("user's own ")
	}
	b.WriteString("entry " + s.entry)
	if s.named == "" {
		return "from " + placeName(s.place, s.country) + " (" + b.String() + ")"
	}
	return b.String()
}

// clock renders when a side's login was: "10:05 UTC", with the date when
// the pair spans days.
func clock(t time.Time, withDate bool) string {
	if withDate {
		return t.UTC().Format("2006-01-02 15:04 UTC")
	}
	return t.UTC().Format("15:04 UTC")
}

// travelText is the impossible_travel reason: both logins in time order,
// each with where it came from and whether through a declared entry.
func travelText(a, b travelSide, about float64, gap time.Duration, who string) string {
	if b.at.Before(a.at) {
		a, b = b, a
	}
	days := a.at.UTC().Format("2006-01-02") != b.at.UTC().Format("2006-01-02")
	if who = strings.TrimSpace(who); who == "" {
		who = "the user"
	}
	return fmt.Sprintf("%s %s, %s %s, about %s km apart in %s (faster than %s km/h): one of the two is not %s",
		clock(a.at, days), a.where(), clock(b.at, days), b.where(), km(about), ago(gap), km(MaxSpeedKmh), who)
}
