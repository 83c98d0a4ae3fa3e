package onboardtest_test

import (
	"testing"

	"ipguard/internal/onboard"
	"ipguard/internal/onboard/onboardtest"
	"ipguard/internal/onboard/onboardtest/onboardcontract"
)

func TestFakeKeepsTheContract(t *testing.T) {
	onboardcontract.StoreContract(t, func(*testing.T) onboard.Store { return onboardtest.NewStore() })
}

func TestFakeKeepsTheFastPathContract(t *testing.T) {
	onboardcontract.FastPathContract(t, func(*testing.T) onboard.Store { return onboardtest.NewStore() })
}

func TestFakeKeepsTheSnapshotContract(t *testing.T) {
	onboardcontract.SnapshotContract(t, func(*testing.T) onboard.Store { return onboardtest.NewStore() })
}
