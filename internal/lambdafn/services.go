package lambdafn

import (
	"bytes"
	"context"
	"encoding/json"

	"github.com/aws/aws-sdk-go-v2/service/sns"

	"ipguard/internal/audit"
	"ipguard/internal/eventbridge"
	"ipguard/internal/onboard"
	"ipguard/internal/snsalert"
)

// OnboardService wires the onboarding service from the shared adapters.
func (d Deps) OnboardService() *onboard.Service {
	p := d.Config.Portal
	return &onboard.Service{
		Store:  d.Store,
		Portal: d.Portal,
		Leases: d.Store,
		Rules: onboard.Rules{MaxRangeAddresses: p.MaxRangeAddresses, Breakglass: p.Breakglass, Enforce: p.Enforce, Limits: p.Limits,
			MaxEntries: p.MaxEntries, DriftRepair: p.DriftRepair, OffboardRemovedUsers: p.OffboardRemoved},
		LeaseWait:  p.LeaseWait,
		Alerts:     snsalert.New(sns.NewFromConfig(d.AWS), p.AlertTopicARN),
		Logins:     d.Portal,
		PortalName: d.Config.DocSpace.Host,
		Log:        d.Log,
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

// OnboardHandler is the OnboardFunction handler: the payload, or an
// EventBridge event's detail, onboarded.
func (d Deps) OnboardHandler() func(context.Context, []byte) (onboard.Result, error) {
	svc := d.OnboardService()
	return func(ctx context.Context, payload []byte) (onboard.Result, error) {
		detail, _, err := eventbridge.Unwrap(payload)
		if err != nil {
			return onboard.Result{}, err
		}
		return svc.HandleEvent(ctx, detailType(payload, detail), detail)
	}
}

// AuditHandler is the AuditFunction handler: a scheduled event (its time
// ends the window), an EventBridge Scheduler Input, or a backfill.
func (d Deps) AuditHandler() func(context.Context, []byte) (audit.Result, error) {
	svc := d.AuditService()
	return func(ctx context.Context, payload []byte) (audit.Result, error) {
		detail, at, err := eventbridge.Unwrap(payload)
		if err != nil {
			return audit.Result{}, err
		}
		return svc.Handle(ctx, detail, at)
	}
}

// detailType is the "detail-type" of payload when Unwrap took it for an
// EventBridge envelope (its detail differs from the payload), else "".
func detailType(payload, detail []byte) string {
	if bytes.Equal(payload, detail) {
		return ""
	}
	var env struct {
		DetailType string `json:"detail-type"`
	}
	_ = json.Unmarshal(payload, &env) // Unwrap already read it as an object
	return env.DetailType
}
