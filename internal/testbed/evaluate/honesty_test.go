package evaluate

import (
	"testing"
	"time"
)

// The generator checks its own honesty: no genuine move faster than travel
// allows, every planted impossible pair impossible by the rules' measure,
// every label consistent; for the small and the full population and a few
// other seeds. It also holds the population to its brief: every attack type
// planted, every kind of person and benign behaviour present.
func TestGeneratorIsHonest(t *testing.T) {
	start := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		name   string
		people int
		seed   uint64
		place  bool
	}{
		{"small", SmallPeople, Seed, false},
		{"full", FullPeople, Seed, true},
		{"seed 2", 100, 2, false},
		{"seed 3", 60, 3, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := Generate(Options{Seed: tt.seed, People: tt.people, Start: start, Place: tt.place})
			for _, b := range p.CheckHonesty() {
				t.Error(b)
			}
			people, benign := p.Counts()
			for _, k := range []string{KindCommuter, KindTraveller, KindVPN, KindPhone, KindGuest, KindAdmin} {
				if people[k] == 0 {
					t.Errorf("no %s in the population", k)
				}
			}
			for _, b := range []string{BenignDeclaredTrip, BenignUndeclaredTrip, BenignNewLaptop, BenignCarrierChange, BenignVPNHop, BenignTypo, BenignGuest, BenignNightlyScript} {
				if benign[b] == 0 {
					t.Errorf("no %q event in the population", b)
				}
			}
			types := map[string]int{}
			for _, a := range p.Attacks {
				types[a.Type]++
			}
			for _, at := range AttackTypes {
				if types[at] < 2 {
					t.Errorf("%d attacks of type %q, want at least 2", types[at], at)
				}
			}
			again := Generate(Options{Seed: tt.seed, People: tt.people, Start: start, Place: tt.place})
			if len(again.Events) != len(p.Events) || again.Events[len(p.Events)/2] != p.Events[len(p.Events)/2] {
				t.Error("the same options generate another population")
			}
		})
	}
}

// The honesty check finds what it promises to find: a genuine login moved
// faster than a plane, and a planted pair made possible.
func TestHonestyCheckCatchesLies(t *testing.T) {
	start := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	p := Generate(Options{Seed: Seed, People: SmallPeople, Start: start})
	// A genuine login of a Berlin commuter placed in Tokyo one hour after
	// the previous one.
	for i, e := range p.Events {
		if e.Attack < 0 && e.Physical && e.City == berlin && e.Succeeded() {
			p.Events[i].City = tokyo
			break
		}
	}
	if len(p.CheckHonesty()) == 0 {
		t.Error("a genuine jump to Tokyo passed the honesty check")
	}
	p = Generate(Options{Seed: Seed, People: SmallPeople, Start: start})
	for _, a := range p.Attacks {
		if a.Pair[0] >= 0 {
			p.Events[a.Pair[0]].Date = p.Events[a.Pair[1]].Date.Add(2 * 24 * time.Hour)
			break
		}
	}
	if len(p.CheckHonesty()) == 0 {
		t.Error("a planted pair two days apart passed the honesty check")
	}
}
