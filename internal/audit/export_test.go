package audit

import (
	"ipguard/internal/ipguard"
	"ipguard/internal/lease"
)

// BenchStore gives the external benchmarks (package audit_test, which may
// import the DocSpace client) the in-memory store, lease backend and
// publisher the unit tests use.
func BenchStore(users ...ipguard.User) (Store, lease.Backend, Publisher) {
	st := newFakeStore()
	for _, u := range users {
		st.users[u.ID] = u
	}
	return st, st, &fakePublisher{}
}
