package enforce_test

import (
	"context"
	"slices"
	"testing"

	"ipguard/internal/audit"
	"ipguard/internal/enforce"
	"ipguard/internal/enforce/enforcetest"
)

// Enforcement follows a finding's reasons: ip_not_allowed as always, a
// behaviour reason only where ENFORCE_BEHAVIOUR names its rule.
func TestBehaviourReasonsAreEnforcedOnlyWhenNamed(t *testing.T) {
	travel := audit.Reason{Kind: audit.KindImpossibleTravel, Severity: audit.SeverityHigh}
	device := audit.Reason{Kind: audit.KindNewDevice, Severity: audit.SeverityLow}
	allowedTravel := audit.Finding{EventID: 70, Kind: audit.KindImpossibleTravel, Severity: audit.SeverityHigh, UserID: user(70), IP: "198.51.100.70", Reasons: []audit.Reason{travel}}
	newDevice := audit.Finding{EventID: 71, Kind: audit.KindNewDevice, Severity: audit.SeverityLow, UserID: user(71), IP: "198.51.100.71", Reasons: []audit.Reason{device}, NotMessaged: true}
	unknownTravel := audit.Finding{EventID: 72, Kind: audit.KindUnknownUser, Severity: audit.SeverityHigh, UserID: user(72), IP: "198.51.100.72",
		Reasons: []audit.Reason{{Kind: audit.KindUnknownUser, Severity: audit.SeverityMedium}, travel}}
	outside := violation(73, user(73))
	outside.Reasons = []audit.Reason{{Kind: audit.KindIPNotAllowed, Severity: audit.SeverityHigh}, device}
	for _, c := range []struct {
		name    string
		enforce []string
		want    []string
	}{
		{"none named: only the allowlist finding", nil, []string{"-", "-", "-", "ended"}},
		{"impossible_travel named", []string{audit.KindImpossibleTravel}, []string{"ended", "-", "ended", "ended"}},
		{"new_device named", []string{audit.KindNewDevice}, []string{"-", "ended", "-", "ended"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := newPortal(70, 71, 72, 73)
			svc := newService(p, &enforcetest.Store{}, enforce.Settings{Mode: enforce.ModeEndSession, Behaviour: c.enforce})
			fs := []audit.Finding{allowedTravel, newDevice, unknownTravel, outside}
			svc.Respond(context.Background(), fs, false)
			if got := outcomes(fs); !slices.Equal(got, c.want) {
				t.Errorf("outcomes %v, want %v", got, c.want)
			}
		})
	}
}
