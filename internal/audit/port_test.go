package audit_test

import (
	"ipguard/internal/audit"
	"ipguard/internal/audit/audittest"
	"ipguard/internal/lease"
)

// audittest declares audit.Store's method set again (audit's own tests
// import it, so it cannot import audit): the two must stay the same set, and
// the shared fake must be both the store and the lease backend.
var (
	_ audit.Store          = audittest.AuditStore(nil)
	_ audittest.AuditStore = audit.Store(nil)
	_ audit.Store          = (*audittest.Store)(nil)
	_ lease.Backend        = (*audittest.Store)(nil)
)
