package evaluate

import (
	"fmt"
	"sort"
	"time"

	"ipguard/internal/behaviour"
)

// MaxGenuineKmh is the fastest a person of the population moves between two
// of their own logins (a plane door to door is slower).
const MaxGenuineKmh = 900.0

// distanceKm is the great-circle distance between two cities.
func distanceKm(a, b City) float64 {
	return behaviour.DistanceKm(behaviour.Point{Lat: a.Lat, Lon: a.Lon}, behaviour.Point{Lat: b.Lat, Lon: b.Lon})
}

// CheckHonesty lists every way the population lies about itself (empty:
// none):
//   - a genuine move faster than travel allows: two consecutive logins of a
//     person where they were (Physical) farther apart than MaxGenuineKmh
//     covers in the time between them;
//   - a planted impossible pair that is not impossible by the behaviour
//     rules' own measure (the places' least distance, after GeoIP's
//     precision, at least behaviour.MinJudgedKm and faster than
//     behaviour.MaxSpeedKmh);
//   - a city the place table does not know, an attacker's address used by
//     a genuine login, an event with neither or both labels.
func (p *Population) CheckHonesty() []string {
	var bad []string
	byPerson := map[string][]Event{}
	attackIPs := map[string]int{}
	for _, a := range p.Attacks {
		for _, ip := range a.IPs {
			attackIPs[ip]++
		}
	}
	for _, e := range p.Events {
		if pl := behaviour.Locate(e.City.Country, e.City.Name); pl.City == "" {
			bad = append(bad, fmt.Sprintf("event %d: city %s, %s is not in the place table", e.ID, e.City.Name, e.City.Country))
		}
		if (e.Attack < 0) == (e.Benign == "") {
			bad = append(bad, fmt.Sprintf("event %d: labelled attack %d and benign %q", e.ID, e.Attack, e.Benign))
		}
		if e.Attack < 0 && attackIPs[e.IP] > 0 {
			bad = append(bad, fmt.Sprintf("event %d: genuine login from the attacker's address %s", e.ID, e.IP))
		}
		if e.Attack < 0 && e.Physical {
			byPerson[e.Person] = append(byPerson[e.Person], e)
		}
	}
	for ip, n := range attackIPs {
		if n > 1 {
			bad = append(bad, fmt.Sprintf("address %s is used by %d attacks", ip, n))
		}
	}
	for who, evs := range byPerson {
		sort.SliceStable(evs, func(i, j int) bool { return evs[i].Date.Before(evs[j].Date) })
		for i := 1; i < len(evs); i++ {
			a, b := evs[i-1], evs[i]
			km := distanceKm(a.City, b.City)
			if km == 0 {
				continue
			}
			gap := b.Date.Sub(a.Date)
			if gap <= 0 || km/gap.Hours() > MaxGenuineKmh {
				bad = append(bad, fmt.Sprintf("%s: genuine move %s → %s, %.0f km in %s (events %d, %d)", who, a.City.Name, b.City.Name, km, gap, a.ID, b.ID))
			}
		}
	}
	planted := 0
	for i, a := range p.Attacks {
		if a.Pair[0] < 0 {
			if a.Type == AttackSharedOffice {
				bad = append(bad, fmt.Sprintf("attack %d (%s) has no impossible pair", i, a.Type))
			}
			continue
		}
		planted++
		x, y := p.Events[a.Pair[0]], p.Events[a.Pair[1]]
		least, _ := behaviour.Apart(behaviour.Locate(x.City.Country, x.City.Name), behaviour.Locate(y.City.Country, y.City.Name))
		gap := x.Date.Sub(y.Date)
		if gap < 0 {
			gap = -gap
		}
		if least < behaviour.MinJudgedKm || (gap > 0 && least/gap.Hours() <= behaviour.MaxSpeedKmh) {
			bad = append(bad, fmt.Sprintf("attack %d (%s): pair %s → %s, at least %.0f km in %s, is not impossible", i, a.Type, y.City.Name, x.City.Name, least, gap))
		}
		if x.Attack != i || y.Attack >= 0 || x.Person != y.Person {
			bad = append(bad, fmt.Sprintf("attack %d (%s): pair is not the attacker's login and its victim's genuine one", i, a.Type))
		}
	}
	for _, a := range p.Attacks {
		for _, ix := range a.Events {
			e := p.Events[ix]
			if e.Date.Before(p.LearnUntil) || !e.Date.Before(p.End) {
				bad = append(bad, fmt.Sprintf("attack event %d (%s) at %s is outside the audited days", e.ID, a.Type, e.Date.Format(time.RFC3339)))
			}
		}
	}
	return bad
}
