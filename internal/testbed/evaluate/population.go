// Package evaluate measures detection quality (issue #21 §5): a seeded,
// labelled population of portal users with labelled takeovers and the
// benign events a naive tool flags, onboarded through the onboarding
// function, learned from the first third of the days and audited for the
// rest the way the schedule would (a run every five minutes of simulated
// time) against moto and the dev portal. It reports recall per attack type
// and false alerts per 100 users a week, by finding kind and by benign
// behaviour, counting the messages people receive (SNS messages other than
// the digest and the test message), never digest lines.
//
// It is test infrastructure (make evaluate, and a small population in make
// test); it is not part of either Lambda function.
package evaluate

import (
	"fmt"
	"ipguard/internal/countries"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"time"
)

// Person kinds of the population (issue #21's list).
const (
	KindCommuter  = "commuter"  // office commuter
	KindTraveller = "traveller" // commuter with one trip; half declare it
	KindVPN       = "vpn"       // behind a VPN provider whose exits move
	KindPhone     = "phone"     // phone user behind carrier NAT
	KindGuest     = "guest"     // external guest, not onboarded
	KindAdmin     = "admin"     // admin with a nightly script
)

// Benign behaviours an event may be labelled with (what a naive tool flags,
// and the routine around them).
const (
	BenignRoutine        = "routine"
	BenignDeclaredTrip   = "declared trip"
	BenignUndeclaredTrip = "undeclared trip"
	BenignNewLaptop      = "new laptop"
	BenignCarrierChange  = "carrier address change"
	BenignVPN            = "VPN (same exit)"
	BenignVPNHop         = "VPN hop"
	BenignTypo           = "typo"
	BenignGuest          = "guest (not onboarded)"
	BenignNightlyScript  = "nightly script"
)

// Attack types (labelled takeovers).
const (
	AttackNewCountry   = "theft from a new country"
	AttackStolenToken  = "stolen token, new device"
	AttackSharedOffice = "shared-office login while away"
	AttackSprayOne     = "password spray, one address"
	AttackSprayMany    = "password spray, many addresses"
	AttackStuffing     = "credential stuffing ending in a success"
	AttackBurst        = "burst on one account"
	// AttackReachable is theft from a new country at a time the victim
	// could have flown there since their last login: no impossible travel,
	// so only the victim's next login can tell it from a trip.
	AttackReachable = "theft from a new country, reachable"
)

// AttackTypes in the order the report lists them.
var AttackTypes = []string{AttackNewCountry, AttackReachable, AttackStolenToken, AttackSharedOffice, AttackSprayOne, AttackSprayMany, AttackStuffing, AttackBurst}

// Portal login actions used.
const (
	actionSuccess    = 1000 // LoginSuccess
	actionSuccessAPI = 1010 // LoginSuccessViaApi (the nightly script)
	actionFail       = 1002 // LoginFailInvalidCombination
)

// City is a place as the portal's GeoIP names it; every one is a principal
// city of the place table (internal/countries), which says where it is.
type City struct {
	Name, Country string
	Lat, Lon      float64
}

// city is the table's principal city name in country.
func city(name, country string) City {
	code, _ := countries.Code(country)
	for _, c := range countries.Cities(name) {
		if c.Code == code {
			return City{name, country, c.Point.Lat, c.Point.Lon}
		}
	}
	panic("evaluate: " + name + ", " + country + " is not a city of the place table")
}

var (
	berlin    = city("Berlin", "Germany")
	london    = city("London", "United Kingdom")
	paris     = city("Paris", "France")
	madrid    = city("Madrid", "Spain")
	amsterdam = city("Amsterdam", "Netherlands")
	warsaw    = city("Warsaw", "Poland")
	stockholm = city("Stockholm", "Sweden")
	zurich    = city("Zurich", "Switzerland")
	newYork   = city("New York", "United States")
	lisbon    = city("Lisbon", "Portugal")
	tokyo     = city("Tokyo", "Japan")
	singapore = city("Singapore", "Singapore")
	lagos     = city("Lagos", "Nigeria")
	jakarta   = city("Jakarta", "Indonesia")
	saoPaulo  = city("São Paulo", "Brazil")
	dubai     = city("Dubai", "United Arab Emirates")
	kolkata   = city("Kolkata", "India")
	rome      = city("Rome", "Italy")
	vienna    = city("Vienna", "Austria")
)

// offices are the company's offices; each has one shared NAT address.
var offices = []City{berlin, london, paris}

// Near and far trip destinations (far ones are where the shared-office
// takeover is planted: more than 3,000 km from every office).
var (
	nearTrips = []City{madrid, lisbon, rome, vienna, warsaw, stockholm}
	farTrips  = []City{newYork, tokyo, singapore, dubai, saoPaulo}
	// thieves' countries: never a home, office or trip country.
	thiefCities = []City{lagos, jakarta, kolkata}
	guestCities = []City{amsterdam, zurich, vienna, warsaw, stockholm, madrid, newYork}
	vpnExits    = []City{amsterdam, stockholm, zurich, london}
)

// Device is a browser and platform as the portal records them.
type Device struct{ Browser, Platform string }

var (
	laptopWin = Device{"Chrome 131", "Windows 10"}
	laptopMac = Device{"Safari 18", "Mac OS X"}
	newLaptop = Device{"Edge 131", "Windows 11"}
	iphone    = Device{"Mobile Safari 18", "iOS 18"}
	android   = Device{"Chrome Mobile 131", "Android 14"}
	script    = Device{"python-requests 2", "Linux"}
	thiefDev  = Device{"Firefox 133", "Linux"}
)

// Entry is one allowlist entry as the onboarding event sends it.
type Entry struct {
	IP        string
	ExpiresAt time.Time // zero: never
	Note      string
	Place     string // "" (none), a city of the place table, or "anywhere"
}

// Person is one portal user.
type Person struct {
	ID, Email, Name string
	Kind            string
	Home            City
	Office          City // commuters, travellers, admins
	Onboarded       bool
	Entries         []Entry
	// Trip (travellers): where and when; Declared says the hotel's
	// network was onboarded before it.
	Trip *Trip
}

// Trip is a traveller's trip.
type Trip struct {
	To         City
	Leave, End time.Time // the day they fly out and the day they are back
	Declared   bool
	Network    string // the hotel's /24
}

// Event is one login event with its label.
type Event struct {
	ID       int64
	Date     time.Time
	UserID   string // "" for a login name the portal does not know
	Login    string
	ActionID int
	IP       string
	City     City
	Device   Device
	// Person is the portal user whose account it is ("" for unknown names).
	Person string
	// Benign is the behaviour of a genuine login (empty for an attack's).
	Benign string
	// Attack is the index in Population.Attacks, -1 for a genuine event.
	Attack int
	// Physical: the account's owner was where City says (not a VPN exit,
	// not a server's script, not an attacker): the honesty check holds
	// their moves to travel speed.
	Physical bool
}

// Succeeded reports whether the event is a successful login.
func (e Event) Succeeded() bool { return e.ActionID == actionSuccess || e.ActionID == actionSuccessAPI }

// Attack is one labelled takeover.
type Attack struct {
	Type   string
	Victim string   // person id ("" for sprays over many accounts)
	Events []int    // indexes in Population.Events
	IPs    []string // the attacker's addresses (never used by anyone else)
	// Pair, for a planted impossible pair, is the attacker's login and the
	// victim's genuine login it is impossible with (indexes; -1 if none).
	Pair [2]int
}

// Population is a generated, labelled portal population.
type Population struct {
	Options Options
	People  []Person
	Events  []Event // sorted by date, ids 1.. in that order
	Attacks []Attack
	// Start is the first day's midnight (UTC); LearnUntil ends the learned
	// days; End ends the last day.
	Start, LearnUntil, End time.Time
}

// Options of Generate.
type Options struct {
	Seed   uint64
	People int
	Days   int       // default 21
	Start  time.Time // the first day (truncated to midnight UTC)
	// Place: onboarding entries carry "place" (the office city; "anywhere"
	// for VPN ranges; the trip's city for a declared trip), as a careful
	// admin declares them (issue #21 §4). The command and the test set it
	// unless told otherwise.
	Place bool
	// AttacksPerType, default max(2, People/40).
	AttacksPerType int
}

// Generate builds the population: deterministic for given Options.
func Generate(o Options) *Population {
	if o.Days <= 0 {
		o.Days = 21
	}
	if o.AttacksPerType <= 0 {
		o.AttacksPerType = max(2, o.People/40)
	}
	g := &gen{r: rand.New(rand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15)), p: &Population{Options: o}}
	g.p.Start = o.Start.UTC().Truncate(24 * time.Hour)
	learnDays := o.Days / 3
	g.p.LearnUntil = g.p.Start.AddDate(0, 0, learnDays)
	g.p.End = g.p.Start.AddDate(0, 0, o.Days)
	g.people()
	g.routine()
	g.attacks()
	g.finish()
	return g.p
}

type gen struct {
	r *rand.Rand
	p *Population
	// addresses handed out, by purpose, so none is used twice by accident
	next map[string]int
	// per person: the devices they use and their own addresses
	devices map[string][]Device
	homeIP  map[string]string
	carrier map[string][2]string // two onboarded /24 prefixes ("a.b.c.")
	// far travellers not yet the victim of a shared-office attack
	farTravellers []int
}

func (g *gen) addr(prefix string) string {
	if g.next == nil {
		g.next = map[string]int{}
	}
	n := g.next[prefix]
	g.next[prefix] = n + 1
	return fmt.Sprintf("%s%d.%d", prefix, n/250, n%250+1)
}

// officeIP is the shared NAT address of an office.
func officeIP(c City) string {
	for i, o := range offices {
		if o == c {
			return fmt.Sprintf("81.10.%d.10", i)
		}
	}
	return "81.10.99.10"
}

// vpnRange is the /22 of the VPN provider's exit i, as "a.b.c." with c its
// first third octet. Blocks this large are kept for the audit and not
// pushed to the portal (PORTAL_MAX_RANGE_ADDRESSES).
func vpnRange(i int) string { return fmt.Sprintf("185.77.%d.", 4*i) }

func (g *gen) people() {
	n := g.p.Options.People
	kinds := make([]string, n)
	for i := range kinds {
		switch f := float64(i) / float64(n); {
		case f < 0.35:
			kinds[i] = KindCommuter
		case f < 0.55:
			kinds[i] = KindTraveller
		case f < 0.65:
			kinds[i] = KindVPN
		case f < 0.80:
			kinds[i] = KindPhone
		case f < 0.94:
			kinds[i] = KindGuest
		default:
			kinds[i] = KindAdmin
		}
	}
	g.r.Shuffle(n, func(i, j int) { kinds[i], kinds[j] = kinds[j], kinds[i] })
	g.devices, g.homeIP, g.carrier = map[string][]Device{}, map[string]string{}, map[string][2]string{}
	travellers := 0
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("00000000-0000-4000-8000-%012d", i+1)
		p := Person{ID: id, Name: fmt.Sprintf("person%03d", i+1), Email: fmt.Sprintf("person%03d@example.com", i+1), Kind: kinds[i], Onboarded: kinds[i] != KindGuest}
		office := offices[g.r.IntN(len(offices))]
		place := func(c City) string {
			if g.p.Options.Place {
				return c.Name
			}
			return ""
		}
		anywhere := ""
		if g.p.Options.Place {
			anywhere = "anywhere"
		}
		switch p.Kind {
		case KindCommuter, KindTraveller, KindAdmin:
			p.Home, p.Office = office, office
			g.homeIP[id] = g.addr(fmt.Sprintf("84.%d.", 20+indexOf(offices, office)))
			g.devices[id] = []Device{[]Device{laptopWin, laptopMac}[g.r.IntN(2)], []Device{iphone, android}[g.r.IntN(2)]}
			p.Entries = []Entry{{IP: officeIP(office), Note: "office", Place: place(office)}, {IP: g.homeIP[id], Note: "home", Place: place(office)}}
			if p.Kind == KindAdmin {
				g.homeIP[id+"/server"] = g.addr("88.99.")
				p.Entries = append(p.Entries, Entry{IP: g.homeIP[id+"/server"], Note: "backup server", Place: place(amsterdam)})
				g.devices[id] = append(g.devices[id], script)
			}
			if p.Kind == KindTraveller {
				far := travellers%2 == 0 // every other traveller flies far
				travellers++
				to := nearTrips[g.r.IntN(len(nearTrips))]
				if far {
					to = farTrips[g.r.IntN(len(farTrips))]
				}
				audit := g.p.LearnUntil
				days := int(g.p.End.Sub(audit).Hours() / 24)
				leave := audit.AddDate(0, 0, 1+g.r.IntN(max(1, days-6)))
				t := &Trip{To: to, Leave: leave, End: leave.AddDate(0, 0, 2+g.r.IntN(3)), Declared: g.r.IntN(2) == 0,
					Network: fmt.Sprintf("203.0.%d.%d/28", travellers/16, 16*(travellers%16))}
				p.Trip = t
				if t.Declared {
					p.Entries = append(p.Entries, Entry{IP: t.Network, ExpiresAt: t.End.AddDate(0, 0, 2), Note: "trip to " + to.Name, Place: place(to)})
				}
				if far {
					g.farTravellers = append(g.farTravellers, i)
				}
			}
		case KindVPN:
			p.Home = office
			g.devices[id] = []Device{laptopWin}
			for k := 0; k < 3; k++ { // the provider's exits they onboarded
				p.Entries = append(p.Entries, Entry{IP: vpnRange(k) + "0/22", Note: "VPN provider", Place: anywhere})
			}
		case KindPhone:
			p.Home = office
			g.devices[id] = []Device{[]Device{iphone, android}[g.r.IntN(2)]}
			c := g.r.IntN(3)
			// the carrier's two NAT pools (/22: kept for the audit, not
			// pushed to the portal)
			a, b := fmt.Sprintf("80.187.%d.", 16*c), fmt.Sprintf("80.187.%d.", 16*c+8)
			g.carrier[id] = [2]string{a, b}
			p.Entries = []Entry{{IP: a + "0/22", Note: "carrier", Place: place(office)}, {IP: b + "0/22", Note: "carrier", Place: place(office)}}
		case KindGuest:
			p.Home = guestCities[g.r.IntN(len(guestCities))]
			g.homeIP[id] = g.addr("77.40.")
			g.devices[id] = []Device{laptopWin}
		}
		g.p.People = append(g.p.People, p)
	}
}

func indexOf(cs []City, c City) int {
	for i, x := range cs {
		if x == c {
			return i
		}
	}
	return -1
}

// jitter is a time within ±m minutes.
func (g *gen) jitter(m int) time.Duration {
	return time.Duration(g.r.IntN(2*m*60+1)-m*60) * time.Second
}

func (g *gen) add(e Event) int {
	g.p.Events = append(g.p.Events, e)
	return len(g.p.Events) - 1
}

// login adds a genuine successful login, preceded by a typo (one or two
// failed attempts from the same address) in 3 % of cases.
func (g *gen) login(p *Person, at time.Time, ip string, c City, d Device, benign string, physical bool) int {
	if g.r.IntN(100) < 3 && benign != BenignNightlyScript {
		for k := g.r.IntN(2); k >= 0; k-- {
			g.add(Event{Date: at.Add(-time.Duration(20+g.r.IntN(40)*(k+1)) * time.Second), UserID: p.ID, Login: p.Email, ActionID: actionFail,
				IP: ip, City: c, Device: d, Person: p.ID, Benign: BenignTypo, Attack: -1, Physical: physical})
		}
	}
	action := actionSuccess
	if benign == BenignNightlyScript {
		action = actionSuccessAPI
	}
	return g.add(Event{Date: at, UserID: p.ID, Login: p.Email, ActionID: action, IP: ip, City: c, Device: d, Person: p.ID, Benign: benign, Attack: -1, Physical: physical})
}

func weekend(t time.Time) bool { return t.Weekday() == time.Saturday || t.Weekday() == time.Sunday }

// routine adds every person's genuine logins.
func (g *gen) routine() {
	for i := range g.p.People {
		p := &g.p.People[i]
		// A new laptop from a random day of the audited part (12 % of the
		// people with an office).
		var laptopFrom time.Time
		if p.Office != (City{}) && g.r.IntN(100) < 12 {
			laptopFrom = g.p.LearnUntil.AddDate(0, 0, g.r.IntN(int(g.p.End.Sub(g.p.LearnUntil).Hours()/24)))
		}
		lastVPN := -1
		for day := g.p.Start; day.Before(g.p.End); day = day.AddDate(0, 0, 1) {
			we := weekend(day)
			switch p.Kind {
			case KindCommuter, KindTraveller, KindAdmin:
				if t := p.Trip; t != nil && !day.Before(t.Leave) && !day.After(t.End) {
					g.tripDay(p, day)
					continue
				}
				dev, benign := g.devices[p.ID][0], BenignRoutine
				if !laptopFrom.IsZero() && !day.Before(laptopFrom) {
					dev, benign = newLaptop, BenignNewLaptop
				}
				if !we {
					at := day.Add(8*time.Hour + 30*time.Minute + g.jitter(60))
					if t := p.Trip; t != nil && day.Equal(t.End.AddDate(0, 0, 1)) {
						at = day.Add(11*time.Hour + g.jitter(30)) // back from the airport
					}
					g.login(p, at, officeIP(p.Office), p.Office, dev, benign, true)
					if g.r.IntN(100) < 50 {
						g.login(p, day.Add(13*time.Hour+30*time.Minute+g.jitter(60)), officeIP(p.Office), p.Office, dev, benign, true)
					}
				}
				eve := p.Trip != nil && day.Equal(p.Trip.Leave.AddDate(0, 0, -1))
				if g.r.IntN(100) < 40 || eve {
					d := g.devices[p.ID][1]
					at := day.Add(20*time.Hour + g.jitter(60))
					if eve {
						at = day.Add(19 * time.Hour) // the evening before the flight
					}
					g.login(p, at, g.homeIP[p.ID], p.Home, d, BenignRoutine, true)
				}
				if p.Kind == KindAdmin {
					g.login(p, day.Add(2*time.Hour+g.jitter(5)), g.homeIP[p.ID+"/server"], amsterdam, script, BenignNightlyScript, false)
				}
			case KindVPN:
				if we {
					continue
				}
				for k := 1 + g.r.IntN(2); k > 0; k-- {
					exit := g.r.IntN(3)
					if g.r.IntN(100) < 10 {
						exit = 3 // an exit whose range they never onboarded
					}
					benign := BenignVPN
					if exit != lastVPN && lastVPN >= 0 {
						benign = BenignVPNHop
					}
					lastVPN = exit
					at := day.Add(time.Duration(9+4*k)*time.Hour + g.jitter(90))
					g.login(p, at, g.addrIn(vpnRange(exit)), vpnExits[exit], g.devices[p.ID][0], benign, false)
				}
			case KindPhone:
				for k := 1 + g.r.IntN(3); k > 0; k-- {
					if we && k > 1 {
						continue
					}
					pre, benign := g.carrier[p.ID][g.r.IntN(2)], BenignRoutine
					if g.r.IntN(100) < 5 {
						pre, benign = fmt.Sprintf("80.188.%d.", 4*g.r.IntN(50)), BenignCarrierChange // a block they never onboarded
					}
					at := day.Add(time.Duration(7+5*k)*time.Hour + g.jitter(120))
					g.login(p, at, g.addrIn(pre), p.Home, g.devices[p.ID][0], benign, true)
				}
			case KindGuest:
				if we || g.r.IntN(100) >= 60 {
					continue
				}
				g.login(p, day.Add(10*time.Hour+g.jitter(120)), g.homeIP[p.ID], p.Home, g.devices[p.ID][0], BenignGuest, true)
			}
		}
	}
}

// addrIn is a random host of a /22 given as "a.b.c." (c its first third
// octet), or of a /24 "a.b.c." when small.
func (g *gen) addrIn(prefix string) string {
	parts := strings.Split(strings.TrimSuffix(prefix, "."), ".")
	var a, b, c int
	fmt.Sscanf(parts[0]+" "+parts[1]+" "+parts[2], "%d %d %d", &a, &b, &c)
	return fmt.Sprintf("%d.%d.%d.%d", a, b, c+g.r.IntN(4), 1+g.r.IntN(254))
}

// hotelAddr is a host of a trip's /28.
func (g *gen) hotelAddr(network string) string {
	base := strings.TrimSuffix(network, "/28")
	i := strings.LastIndex(base, ".")
	var last int
	fmt.Sscanf(base[i+1:], "%d", &last)
	return fmt.Sprintf("%s.%d", base[:i], last+1+g.r.IntN(14))
}

// tripDay: a traveller's day away (flying out on Leave, back on End).
func (g *gen) tripDay(p *Person, day time.Time) {
	t := p.Trip
	benign := BenignUndeclaredTrip
	if t.Declared {
		benign = BenignDeclaredTrip
	}
	flight := flightTime(p.Home, t.To)
	d := g.devices[p.ID][0]
	switch {
	case day.Equal(t.Leave): // leave at 07:00, first login after landing
		g.login(p, day.Add(7*time.Hour+flight+2*time.Hour), g.hotelAddr(t.Network), t.To, d, benign, true)
	case day.Equal(t.End): // last login before the flight home at 10:00 + flight
		g.login(p, day.Add(6*time.Hour), g.hotelAddr(t.Network), t.To, d, benign, true)
	default:
		g.login(p, day.Add(9*time.Hour+g.jitter(60)), g.hotelAddr(t.Network), t.To, d, benign, true)
		g.login(p, day.Add(18*time.Hour+g.jitter(60)), g.hotelAddr(t.Network), t.To, g.devices[p.ID][1], benign, true)
	}
}

// flightTime is a generous door-to-door time between two cities: 700 km/h
// and three hours on the ground.
func flightTime(a, b City) time.Duration {
	return time.Duration((distanceKm(a, b)/700 + 3) * float64(time.Hour)).Round(time.Minute)
}

// attacks plants AttacksPerType of each type in the audited days.
func (g *gen) attacks() {
	n := g.p.Options.AttacksPerType
	auditDays := int(g.p.End.Sub(g.p.LearnUntil).Hours() / 24)
	someDay := func() time.Time { return g.p.LearnUntil.AddDate(0, 0, 1+g.r.IntN(auditDays-1)) }
	onboarded := func(kinds ...string) []int {
		var out []int
		for i, p := range g.p.People {
			for _, k := range kinds {
				if p.Kind == k {
					out = append(out, i)
				}
			}
		}
		return out
	}
	office := onboarded(KindCommuter, KindTraveller, KindPhone, KindAdmin)
	accounts := onboarded(KindCommuter, KindTraveller, KindPhone, KindAdmin, KindVPN)
	pick := func(from []int) *Person { return &g.p.People[from[g.r.IntN(len(from))]] }
	newAttack := func(typ, victim string) int {
		g.p.Attacks = append(g.p.Attacks, Attack{Type: typ, Victim: victim, Pair: [2]int{-1, -1}})
		return len(g.p.Attacks) - 1
	}
	ev := func(a int, e Event) {
		e.Attack = a
		i := g.add(e)
		g.p.Attacks[a].Events = append(g.p.Attacks[a].Events, i)
		if e.IP != "" && !slices.Contains(g.p.Attacks[a].IPs, e.IP) && !strings.HasPrefix(e.IP, "81.10.") {
			g.p.Attacks[a].IPs = append(g.p.Attacks[a].IPs, e.IP)
		}
	}
	for k := 0; k < n; k++ {
		// Theft from a new country: the stolen password used from abroad.
		v := pick(office)
		a := newAttack(AttackNewCountry, v.ID)
		c := thiefCities[g.r.IntN(len(thiefCities))]
		ev(a, Event{Date: someDay().Add(time.Duration(10+g.r.IntN(12)) * time.Hour), UserID: v.ID, Login: v.Email, ActionID: actionSuccess,
			IP: g.addr("45.155."), City: c, Device: g.devices[v.ID][0], Person: v.ID})

		// A stolen token replayed from a new device, from the victim's city.
		v = pick(office)
		a = newAttack(AttackStolenToken, v.ID)
		ev(a, Event{Date: someDay().Add(time.Duration(9+g.r.IntN(12)) * time.Hour), UserID: v.ID, Login: v.Email, ActionID: actionSuccess,
			IP: g.addr("91.200."), City: v.Home, Device: thiefDev, Person: v.ID})

		// The shared office address used while its user is far away.
		if len(g.farTravellers) > 0 {
			vi := g.farTravellers[k%len(g.farTravellers)]
			v = &g.p.People[vi]
			a = newAttack(AttackSharedOffice, v.ID)
			// 90 minutes after one of the victim's logins abroad (not the
			// day they fly home).
			mid := -1
			for i, e := range g.p.Events {
				if e.Person == v.ID && e.Attack < 0 && e.Succeeded() && e.City == v.Trip.To && e.Date.After(v.Trip.Leave.Add(24*time.Hour)) && e.Date.Before(v.Trip.End) {
					mid = i
					break
				}
			}
			if mid < 0 { // a short trip: after the landing
				for i, e := range g.p.Events {
					if e.Person == v.ID && e.Attack < 0 && e.Succeeded() && e.City == v.Trip.To {
						mid = i
						break
					}
				}
			}
			at := g.p.Events[mid].Date.Add(90 * time.Minute)
			ev(a, Event{Date: at, UserID: v.ID, Login: v.Email, ActionID: actionSuccess, IP: officeIP(v.Office), City: v.Office,
				Device: g.devices[v.ID][0], Person: v.ID})
			g.p.Attacks[a].Pair = [2]int{g.p.Attacks[a].Events[0], mid}
		}

		// A spray from one address: 15 accounts, one or two tries each, 10 minutes.
		a = newAttack(AttackSprayOne, "")
		ip := g.addr("193.32.")
		at := someDay().Add(time.Duration(g.r.IntN(24)) * time.Hour)
		for j := 0; j < 15; j++ {
			v := &g.p.People[accounts[g.r.IntN(len(accounts))]]
			for t := 1 + g.r.IntN(2); t > 0; t-- {
				ev(a, Event{Date: at.Add(time.Duration(g.r.IntN(600)) * time.Second), UserID: v.ID, Login: v.Email, ActionID: actionFail, IP: ip, City: lagos, Device: thiefDev, Person: v.ID})
			}
		}

		// A spray from many addresses: 20 accounts, 30 addresses, one or
		// two tries each, over 40 minutes (slower than one run).
		a = newAttack(AttackSprayMany, "")
		at = someDay().Add(time.Duration(g.r.IntN(24)) * time.Hour)
		targets := append([]int(nil), accounts...)
		g.r.Shuffle(len(targets), func(i, j int) { targets[i], targets[j] = targets[j], targets[i] })
		for j := 0; j < 30; j++ {
			ip := g.addr("146.70.")
			v := &g.p.People[targets[j%min(20, len(targets))]]
			c := thiefCities[g.r.IntN(len(thiefCities))]
			for t := 1 + g.r.IntN(2); t > 0; t-- {
				ev(a, Event{Date: at.Add(time.Duration(g.r.IntN(2400)) * time.Second), UserID: v.ID, Login: v.Email, ActionID: actionFail, IP: ip, City: c, Device: thiefDev, Person: v.ID})
			}
		}

		// Credential stuffing: 25 names from a leak, ten of them not
		// accounts here, then one success.
		a = newAttack(AttackStuffing, "")
		ip = g.addr("5.188.")
		at = someDay().Add(time.Duration(g.r.IntN(24)) * time.Hour)
		var victim *Person
		for j := 0; j < 25; j++ {
			when := at.Add(time.Duration(j*12) * time.Second)
			if j < 10 {
				ev(a, Event{Date: when, Login: fmt.Sprintf("leaked%d.%d@example.org", k, j), ActionID: actionFail, IP: ip, City: jakarta, Device: thiefDev})
				continue
			}
			victim = &g.p.People[accounts[g.r.IntN(len(accounts))]]
			ev(a, Event{Date: when, UserID: victim.ID, Login: victim.Email, ActionID: actionFail, IP: ip, City: jakarta, Device: thiefDev, Person: victim.ID})
		}
		g.p.Attacks[a].Victim = victim.ID
		ev(a, Event{Date: at.Add(6 * time.Minute), UserID: victim.ID, Login: victim.Email, ActionID: actionSuccess, IP: ip, City: jakarta, Device: thiefDev, Person: victim.ID})

		// A burst on one account: 20 tries in 4 minutes from one address.
		v = pick(accounts)
		a = newAttack(AttackBurst, v.ID)
		ip = g.addr("194.26.")
		at = someDay().Add(time.Duration(g.r.IntN(24)) * time.Hour)
		for j := 0; j < 20; j++ {
			ev(a, Event{Date: at.Add(time.Duration(j*12) * time.Second), UserID: v.ID, Login: v.Email, ActionID: actionFail, IP: ip, City: lagos, Device: thiefDev, Person: v.ID})
		}
	}
	// Theft from a new country, reachable: the stolen password used from
	// abroad, on the victim's own device, no sooner than the victim could
	// have flown there from their last login (flightTime, as genuine trips;
	// planted after the others, so that they stay as they were).
	// (Not an admin: their nightly script logs in every night from a
	// server, so they never have the hours a flight takes.)
	people := onboarded(KindCommuter, KindTraveller, KindPhone)
	for k := 0; k < n; k++ {
		v := pick(people)
		c := thiefCities[g.r.IntN(len(thiefCities))]
		var at time.Time
		for tries := 0; at.IsZero() || !at.Before(g.p.End.Add(-time.Hour)); tries++ { // within the audited days
			if tries > 0 && tries%20 == 0 {
				v = pick(people)
			}
			at = someDay().Add(time.Duration(6+g.r.IntN(12)) * time.Hour)
			for {
				var last *Event
				for i := range g.p.Events {
					e := &g.p.Events[i]
					if e.Person == v.ID && e.Succeeded() && e.Attack < 0 && e.Date.Before(at) && (last == nil || e.Date.After(last.Date)) {
						last = e
					}
				}
				if last == nil || !last.Date.Add(flightTime(last.City, c)).After(at) {
					break
				}
				at = last.Date.Add(flightTime(last.City, c))
			}
		}
		a := newAttack(AttackReachable, v.ID)
		ev(a, Event{Date: at, UserID: v.ID, Login: v.Email, ActionID: actionSuccess, IP: g.addr("45.155."), City: c, Device: g.devices[v.ID][0], Person: v.ID})
	}
}

// finish sorts the events by date and numbers them 1.. in that order (ties
// keep their order), keeping the attacks' indexes right.
func (g *gen) finish() {
	ev := g.p.Events
	order := make([]int, len(ev))
	for i := range order {
		order[i] = i
		ev[i].Date = ev[i].Date.UTC().Truncate(time.Second)
	}
	sort.SliceStable(order, func(a, b int) bool { return ev[order[a]].Date.Before(ev[order[b]].Date) })
	where := make([]int, len(ev))
	sorted := make([]Event, len(ev))
	for newI, oldI := range order {
		where[oldI] = newI
		sorted[newI] = ev[oldI]
		sorted[newI].ID = int64(newI + 1)
	}
	for a := range g.p.Attacks {
		at := &g.p.Attacks[a]
		for i, x := range at.Events {
			at.Events[i] = where[x]
		}
		for i, x := range at.Pair {
			if x >= 0 {
				at.Pair[i] = where[x]
			}
		}
	}
	g.p.Events = sorted
}

// Counts is how many people of each kind and events of each label there are.
func (p *Population) Counts() (people, benign map[string]int) {
	people, benign = map[string]int{}, map[string]int{}
	for _, x := range p.People {
		people[x.Kind]++
	}
	for _, e := range p.Events {
		if e.Attack < 0 {
			benign[e.Benign]++
		}
	}
	return people, benign
}
