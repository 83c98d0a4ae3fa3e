package wiring

import (
	"context"
	"ipguard/internal/config"
	"ipguard/internal/docspace"
	"ipguard/internal/eventbridge"
	"ipguard/internal/onboard"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"
)

// The OnboardFunction's wiring: configuration and adapters to the onboarding service and its handler.

// OnboardService wires the onboarding service from the shared adapters.
func (d Deps) OnboardService() *onboard.Service {
	svc, _ := d.onboardWiring()
	return svc
}

// onboardWiring is the onboarding service and the alert chain its handler
// counts: the service publishes through that chain, so that what the
// findings bus refused and the chat copies that failed during an invocation
// are on the invocation's metrics line (busMetrics: BusUndelivered,
// ChatUndelivered), as the audit's are.
func (d Deps) onboardWiring() (*onboard.Service, alertChain) {
	p := d.Config.Onboard
	chain := d.alertChain(d.Config.AlertTopicARN, config.Onboard, false)
	return &onboard.Service{
		Store:   d.Store,
		History: d.Store,
		Portal:  d.Portal,
		Leases:  d.Store,
		Settings: onboard.Settings{MaxRangeAddresses: p.MaxRangeAddresses, Breakglass: p.Breakglass, Enforce: p.Enforce, Limits: p.Limits,
			MaxEntries: p.MaxEntries, DriftRepair: p.DriftRepair, OffboardRemovedUsers: p.OffboardRemoved,
			OffboardMaxPercent: p.OffboardMaxPct},
		LeaseWait: p.LeaseWait,
		// One attempt of a portal write: the client's timeout (the lease fence).
		WriteAttempt: d.Portal.AttemptTimeout(),
		Alerts:       chain.Publisher, // the findings bus and chat too (findings.go)
		Logins:       d.Portal,
		Directory:    docspace.Directory{Client: d.Portal},
		Trail:        docspace.AllowlistTrail{Client: d.Portal},
		PortalName:   d.Config.DocSpace.Host,
		UserChecks:   &onboard.UserChecks{Store: d.Store, Every: p.SyncEvery},
		Log:          d.Log,
	}, chain
}

// OnboardHandler is the OnboardFunction handler: the payload, or an
// EventBridge event's detail, onboarded. Each invocation writes one EMF
// metrics line (see OnboardMetrics); bad input counts as Rejected, a panic
// as an InternalError in Failures.
func (d Deps) OnboardHandler() func(context.Context, []byte) (onboard.Result, error) {
	svc, chain := d.onboardWiring()
	mw := d.metricsWriter()
	return func(ctx context.Context, payload []byte) (res onboard.Result, err error) {
		start := time.Now()
		chain.retryOutbox(ctx, d) // what the bus refused an earlier invocation
		// Alerts that did not reach the topic (AlertsUndelivered, alarmed).
		var delivery onboard.AlertDelivery
		ctx = onboard.WithAlertDelivery(ctx, &delivery)
		defer func() {
			mw.write(ctx, append(onboardMetrics(res, err, time.Since(start), delivery.Undelivered()), chain.busMetrics()...), map[string]any{"errorType": errorTypeOrEmpty(err)})
		}()
		defer func() { recovered(ctx, d.Log, recover(), &err) }()
		if lc, ok := lambdacontext.FromContext(ctx); ok && lc.AwsRequestID != "" {
			// Lambda's retry of an asynchronous invocation keeps its
			// request id: a direct payload without requestedAt is dated by
			// the id's first arrival (onboard.Arrivals).
			ctx = onboard.WithRequestID(ctx, lc.AwsRequestID)
		}
		detail, at, err := eventbridge.Unwrap(payload)
		if err != nil {
			return onboard.Result{}, err
		}
		return svc.HandleEventAt(ctx, detailType(payload), at, detail)
	}
}
