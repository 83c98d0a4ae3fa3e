package onboard_test

import (
	"ipguard/internal/onboard"
	"ipguard/internal/onboard/onboardtest"
)

// onboardtest declares onboard.Store's method set again (onboard's own
// tests import it, so it cannot import onboard): the two must stay the same
// set, and the shared fake must be an onboard.Store.
var (
	_ onboard.Store            = onboardtest.OnboardStore(nil)
	_ onboardtest.OnboardStore = onboard.Store(nil)
	_ onboard.Store            = (*onboardtest.Store)(nil)
)
