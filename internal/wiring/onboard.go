package wiring

import (
	"context"
	"ipguard/internal/docspace"
	"ipguard/internal/eventbridge"
	"ipguard/internal/onboard"
	"ipguard/internal/snsalert"
	"time"
)

// The OnboardFunction's wiring: configuration and adapters to the onboarding service and its handler.

// OnboardService wires the onboarding service from the shared adapters.
func (d Deps) OnboardService() *onboard.Service {
	p := d.Config.Portal
	return &onboard.Service{
		Store:  d.Store,
		Portal: d.Portal,
		Leases: d.Store,
		Rules: onboard.Rules{MaxRangeAddresses: p.MaxRangeAddresses, Breakglass: p.Breakglass, Enforce: p.Enforce, Limits: p.Limits,
			MaxEntries: p.MaxEntries, DriftRepair: p.DriftRepair, OffboardRemovedUsers: p.OffboardRemoved,
			OffboardMaxPercent: p.OffboardMaxPct},
		LeaseWait: p.LeaseWait,
		// One attempt of a portal write: the client's timeout (the lease fence).
		WriteAttempt: d.Portal.AttemptTimeout(),
		Alerts:       snsalert.New(d.snsClient(), p.AlertTopicARN),
		Logins:       d.Portal,
		Directory:    docspace.Directory{Client: d.Portal},
		Trail:        docspace.AllowlistTrail{Client: d.Portal},
		PortalName:   d.Config.DocSpace.Host,
		Log:          d.Log,
	}
}

// OnboardHandler is the OnboardFunction handler: the payload, or an
// EventBridge event's detail, onboarded. Each invocation writes one EMF
// metrics line (see OnboardMetrics).
func (d Deps) OnboardHandler() func(context.Context, []byte) (onboard.Result, error) {
	svc := d.OnboardService()
	mw := d.metricsWriter()
	return func(ctx context.Context, payload []byte) (res onboard.Result, err error) {
		start := time.Now()
		defer func() {
			mw.write(ctx, onboardMetrics(res, err, time.Since(start)), map[string]any{"errorType": errorTypeOrEmpty(err)})
		}()
		detail, at, err := eventbridge.Unwrap(payload)
		if err != nil {
			return onboard.Result{}, err
		}
		return svc.HandleEventAt(ctx, detailType(payload), at, detail)
	}
}
