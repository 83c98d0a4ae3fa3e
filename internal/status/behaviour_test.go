package status

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"ipguard/internal/ipguard"
	"ipguard/internal/keywatch"
)

// lastRunStore returns a stored last run.
type lastRunStore struct {
	fakeStore
	last LastRun
}

func (s lastRunStore) LastRun(_ context.Context, v any) (bool, error) {
	b, _ := json.Marshal(s.last)
	return true, json.Unmarshal(b, v)
}

type quietPortal struct{}

func (quietPortal) IPRestrictions(context.Context) ([]ipguard.Restriction, error) { return nil, nil }
func (quietPortal) IPRestrictionsEnabled(context.Context) (bool, error)           { return true, nil }
func (quietPortal) CurrentKey(context.Context) (keywatch.Key, error) {
	return keywatch.Key{Name: "k", IsActive: true}, nil
}

// The status shows the last run's behaviour findings per rule, and says
// once, among its warnings, that the portal has no GeoIP data.
func TestStatusCountsBehaviourAndSaysOnceThereIsNoGeoIP(t *testing.T) {
	for _, noGeo := range []bool{false, true} {
		st := lastRunStore{last: LastRun{Outcome: "succeeded", Behaviour: BehaviourCounts{ImpossibleTravel: 1, NewCountry: 2}, NoGeoIP: noGeo}}
		r := (&Service{Store: st, Portal: quietPortal{}, Keys: quietPortal{}, PortalBudget: time.Second}).Report(context.Background())
		if r.LastRun == nil || r.LastRun.Behaviour.NewCountry != 2 {
			t.Fatalf("last run %+v", r.LastRun)
		}
		n := 0
		for _, w := range r.Warnings {
			if w == NoGeoIPWarning {
				n++
			}
		}
		if want := map[bool]int{false: 0, true: 1}[noGeo]; n != want || (noGeo && !slices.Contains(r.Warnings, NoGeoIPWarning)) {
			t.Errorf("noGeoIP %v: warnings %q", noGeo, r.Warnings)
		}
	}
}
