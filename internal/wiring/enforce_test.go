package wiring

import (
	"slices"
	"testing"

	"ipguard/internal/config"
	"ipguard/internal/enforce"
)

func TestConfigurationOffersExactlyTheEnforcementModes(t *testing.T) {
	var modes []string
	for _, m := range enforce.Modes {
		modes = append(modes, string(m))
	}
	if !slices.Equal(modes, config.EnforcementModes) {
		t.Errorf("config accepts %v, enforce knows %v", config.EnforcementModes, modes)
	}
}
