package evaluate

import "time"

// The populations of make test and make evaluate (the seed is fixed).
const (
	Seed        = 21
	SmallPeople = 40
	FullPeople  = 300
)

// DefaultStart is where make evaluate's three weeks begin: the Monday at or
// before 21 days before now, so that the weeks end in the past (the audit
// reads no further than now) and fall on the same weekdays every time.
func DefaultStart(now time.Time, days int) time.Time {
	d := now.UTC().Truncate(24*time.Hour).AddDate(0, 0, -days)
	for d.Weekday() != time.Monday {
		d = d.AddDate(0, 0, -1)
	}
	return d
}
