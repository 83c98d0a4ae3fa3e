package behaviourtest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"ipguard/internal/behaviour"
)

// Stores are the two ports a Contract holds to their promises.
type Stores interface {
	behaviour.Store
	behaviour.EpisodeStore
}

// Contract runs the promises of behaviour.Store and behaviour.EpisodeStore
// against a fresh, empty store of newStore for each case.
func Contract(t *testing.T, newStore func(t *testing.T) Stores) {
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	t.Run("baselines come back whole, under their user, each id once; ids without one are absent", func(t *testing.T) {
		s := newStore(t)
		var bs []behaviour.Baseline
		var ids []string
		for i := range 130 {
			b := behaviour.Baseline{UserID: fmt.Sprintf("u%03d", i)}
			b.Learn(behaviour.Login{EventID: int64(i + 1), At: now, IP: "198.51.100.7", Whole: true, Country: "Germany", City: "Berlin", Browser: "Firefox 126", Platform: "Linux"})
			bs, ids = append(bs, b), append(ids, b.UserID)
		}
		if err := s.SaveBaselines(ctx, bs); err != nil {
			t.Fatal(err)
		}
		got, err := s.Baselines(ctx, append(ids, "nobody", "u001"))
		if err != nil {
			t.Fatal(err)
		}
		if b := got["u007"]; len(got) != 130 || b.UserID != "u007" || b.Logins != 1 || !b.HasCountry("DE") {
			t.Errorf("got %d baselines, u007 %+v; want 130, u007 with one login from DE", len(got), b)
		}
	})
	t.Run("a saved baseline replaces its user's", func(t *testing.T) {
		s := newStore(t)
		b := behaviour.Baseline{UserID: "u1"}
		for i := range 2 {
			b.Learn(behaviour.Login{EventID: int64(i + 1), At: now.Add(time.Duration(i) * time.Minute), IP: "198.51.100.7", Whole: true, Country: "France", Browser: "Firefox 126", Platform: "Linux"})
			if err := s.SaveBaselines(ctx, []behaviour.Baseline{b}); err != nil {
				t.Fatal(err)
			}
		}
		got, err := s.Baselines(ctx, []string{"u1"})
		if err != nil || got["u1"].Logins != 2 {
			t.Errorf("Baselines = %+v, %v; want u1 with 2 logins", got, err)
		}
	})
	t.Run("episodes come back under their user until they expire", func(t *testing.T) {
		s := newStore(t)
		open := func(id string, last time.Time) behaviour.Episodes {
			return behaviour.Episodes{UserID: id, Open: []behaviour.OpenEpisode{{Network: "198.51.100.0/24", Country: "ES",
				First: last.Add(-time.Hour), Last: last, Count: 3, Told: "high"}}}
		}
		es := []behaviour.Episodes{open("closed", now.Add(-48*time.Hour))}
		for i := range 110 {
			es = append(es, open(fmt.Sprintf("u%03d", i), now))
		}
		if err := s.SaveEpisodes(ctx, es, 24); err != nil {
			t.Fatal(err)
		}
		got, err := s.Episodes(ctx, []string{"closed", "u042", "u109", "nobody", "u042"})
		if err != nil {
			t.Fatal(err)
		}
		if e := got["u042"]; len(got) != 2 || e.UserID != "u042" || len(e.Open) != 1 || e.Open[0].Count != 3 {
			t.Errorf("got %+v; want u042 and u109, each with its one open episode (closed expired a day ago)", got)
		}
	})
}
