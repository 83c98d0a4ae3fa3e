package lambdafn

import (
	"context"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sns"

	"ipguard/internal/audit"
	"ipguard/internal/config"
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
			MaxEntries: p.MaxEntries, DriftRepair: p.DriftRepair, OffboardRemovedUsers: p.OffboardRemoved,
			OffboardMaxPercent: p.OffboardMaxPct},
		LeaseWait: p.LeaseWait,
		// One attempt of a portal write: the client's timeout.
		WriteAttempt: d.Portal.AttemptTimeout(),
		Alerts:       snsalert.New(d.snsClient(), p.AlertTopicARN),
		Logins:       d.Portal,
		Directory:    portalDirectory{d.Portal},
		Trail:        portalTrail{d.Portal},
		PortalName:   d.Config.DocSpace.Host,
		Log:          d.Log,
	}
}

// AuditService wires the audit service from the shared adapters and SNS.
func (d Deps) AuditService() *audit.Service {
	a := d.Config.Audit
	return &audit.Service{
		Source:    d.Portal,
		Clock:     d.Portal,
		Store:     d.Store,
		Publisher: snsalert.New(d.snsClient(), a.TopicARN),
		Leases:    d.Store,
		Responder: d.Enforcement(),
		Settings: audit.Settings{
			Portal:         d.Config.DocSpace.Host,
			Overlap:        a.Overlap,
			Lookback:       a.Lookback,
			AlertRetention: a.AlertRetention,
			DeadlineMargin: a.DeadlineMargin,
			Policy:         audit.Policy{AlertUnknownUsers: a.AlertUnknownUsers, FailedLoginThreshold: a.FailedLoginThreshold},
			Concurrency:    a.Concurrency,
		},
		Log: d.Log,
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

// AuditHandler runs the audit: a scheduled event (its time ends the window),
// an EventBridge Scheduler Input, or a backfill. After the audit it checks
// the API key (package keywatch: expiry alerts; an inactive or expired key
// fails the invocation with a ConfigurationError naming it, also when the
// portal refused the key during the audit). Each invocation writes
// one EMF metrics line (see AuditMetrics), whose lag is measured from the
// checkpoint after the run, and records its outcome for the status operation.
func (d Deps) AuditHandler() func(context.Context, []byte) (audit.Result, error) {
	svc := d.AuditService()
	pages := &pageCounter{Source: svc.Source}
	svc.Source = pages
	mw := d.metricsWriter()
	keys := d.KeyWatch()
	return func(ctx context.Context, payload []byte) (res audit.Result, err error) {
		start := time.Now()
		pages.pages.Store(0)
		defer func() {
			took := time.Since(start)
			metrics := auditMetrics(res, err, took, pages.pages.Load(), d.lag(ctx, res, err))
			mw.write(ctx, metrics, map[string]any{"errorType": errorTypeOrEmpty(err), "from": res.From, "to": res.To})
			d.saveLastRun(ctx, res, err, took)
		}()
		detail, at, err := eventbridge.Unwrap(payload)
		if err != nil {
			return audit.Result{}, err
		}
		// The audit goes first, with all the time there is; the key check
		// (one GET) follows, or, when the portal refused the key, names it.
		res, err = svc.Handle(ctx, detail, at)
		if err != nil {
			if keyRefused(err) {
				if _, kerr := checkKey(ctx, keys); kerr != nil {
					return res, kerr
				}
			}
			return res, err
		}
		keyWarnings, kerr := checkKey(ctx, keys)
		res.Warnings = append(res.Warnings, keyWarnings...)
		res.WarningCount += len(keyWarnings)
		return res, kerr
	}
}

// detailType is the "detail-type" of payload when it is an EventBridge
// event, else "".
func detailType(payload []byte) string {
	if ev, ok, err := eventbridge.Decode(payload); err == nil && ok {
		return ev.DetailType
	}
	return ""
}

func (d Deps) snsClient() *sns.Client { return sns.NewFromConfig(d.AWS) }

// lag is how far behind now the audit has safely read: the result's
// safeUntil (every event up to it is done), otherwise (and for a backfill,
// whose safeUntil is the end of its own past window) the stored checkpoint;
// -1 when it cannot be known (no checkpoint yet, or the store failed), so
// that the heartbeat alarm sees missing data.
func (d Deps) lag(ctx context.Context, res audit.Result, err error) time.Duration {
	now := time.Now()
	if err == nil && res.SafeUntil != "" && !res.Backfill {
		if to, perr := time.Parse(time.RFC3339, res.SafeUntil); perr == nil {
			return max(now.Sub(to), 0)
		}
	}
	if d.Store == nil {
		return -1
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Second)
	defer cancel()
	cp, ok, cerr := d.Store.Checkpoint(cctx)
	if cerr != nil || !ok {
		return -1
	}
	return max(now.Sub(cp), 0)
}

func (d Deps) metricsWriter() metricsWriter {
	out := d.MetricsOut
	if out == nil {
		out = os.Stdout
	}
	ns := d.Config.MetricsNamespace
	if ns == "" {
		ns = config.DefaultMetricsNamespace
	}
	return metricsWriter{out: out, namespace: ns, now: time.Now, level: d.Config.LogLevel}
}

func errorTypeOrEmpty(err error) string {
	if err == nil {
		return ""
	}
	return ErrorType(err)
}
