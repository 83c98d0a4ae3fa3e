package dynamo

// Table returns the table name s writes to, for tests that inspect raw items.
func Table(s *Store) string { return s.table }

// SetMaxSpans sets the bound of alerted spans per address for a test and
// returns a function that restores it.
func SetMaxSpans(n int) func() { old := maxSpans; maxSpans = n; return func() { maxSpans = old } }
