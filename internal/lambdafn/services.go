package lambdafn

import (
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"ipguard/internal/audit"
	"ipguard/internal/onboard"
	"ipguard/internal/snsalert"
)

// OnboardService wires the onboarding service from the shared adapters.
func (d Deps) OnboardService() *onboard.Service {
	p := d.Config.Portal
	return &onboard.Service{
		Store:     d.Store,
		Portal:    d.Portal,
		Leases:    d.Store,
		Rules:     onboard.Rules{MaxRangeAddresses: p.MaxRangeAddresses, Breakglass: p.Breakglass, Enforce: p.Enforce, Limits: p.Limits},
		LeaseWait: p.LeaseWait,
		Log:       d.Log,
	}
}

// AuditService wires the audit service from the shared adapters and SNS.
func (d Deps) AuditService() *audit.Service {
	a := d.Config.Audit
	return &audit.Service{
		Source:    d.Portal,
		Store:     d.Store,
		Publisher: snsalert.New(sns.NewFromConfig(d.AWS), a.TopicARN),
		Leases:    d.Store,
		Settings: audit.Settings{
			Portal:         d.Config.DocSpace.Host,
			Overlap:        a.Overlap,
			Lookback:       a.Lookback,
			AlertRetention: a.AlertRetention,
			DeadlineMargin: a.DeadlineMargin,
			Policy:         audit.Policy{AlertUnknownUsers: a.AlertUnknownUsers, FailedLoginThreshold: a.FailedLoginThreshold},
		},
		Log: d.Log,
	}
}
