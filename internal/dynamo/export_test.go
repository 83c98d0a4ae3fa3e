package dynamo

// Table returns the table name s writes to, for tests that inspect raw items.
func Table(s *Store) string { return s.table }
