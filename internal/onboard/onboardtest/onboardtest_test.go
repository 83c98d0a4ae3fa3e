package onboardtest_test

import (
	"testing"

	"ipguard/internal/onboard/onboardtest"
)

func TestFakeKeepsTheContract(t *testing.T) {
	onboardtest.StoreContract(t, func(*testing.T) onboardtest.OnboardStore { return onboardtest.NewStore() })
}
