package wiring

import (
	"context"
	"errors"
	"fmt"
	"ipguard/internal/audit"
	"ipguard/internal/docspace"
	"ipguard/internal/enforce"
	"ipguard/internal/eventbridge"
	"ipguard/internal/humantext"
	"ipguard/internal/ipguard"
	"ipguard/internal/keywatch"
	"ipguard/internal/redact"
	"ipguard/internal/snsalert"
	"ipguard/internal/status"
	"net/http"
	"time"
)

// The AuditFunction's wiring: the audit service, enforcement, the key watch, the status operation and the handler that chooses between them.

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

// AuditHandler runs the audit: a scheduled event (its time ends the window),
// an EventBridge Scheduler Input, or a backfill. After the audit it checks
// the API key (package keywatch: expiry alerts; an inactive or expired key
// fails the invocation with a ConfigurationError naming it, also when the
// portal refused the key during the audit). Each invocation writes
// one EMF metrics line (see AuditMetrics), whose lag is measured from the
// checkpoint after the run, and records its outcome for the status operation.
// A payload rejected as bad input (InvalidInput naming the field) changes
// nothing stored: the audit did not run, so the last run stays as it was.
func (d Deps) AuditHandler() func(context.Context, []byte) (audit.Result, error) {
	svc := d.AuditService()
	pages := &pageCounter{Source: svc.Source}
	svc.Source = pages
	mw := d.metricsWriter()
	keys := d.KeyWatch()
	return func(ctx context.Context, payload []byte) (res audit.Result, err error) {
		start := time.Now()
		pages.pages.Store(0)
		rejected := false
		defer func() {
			took := time.Since(start)
			metrics := auditMetrics(res, err, took, pages.pages.Load(), d.lag(ctx, res, err))
			mw.write(ctx, metrics, map[string]any{"errorType": errorTypeOrEmpty(err), "from": res.From, "to": res.To})
			if !rejected {
				d.saveLastRun(ctx, res, err, took)
			}
		}()
		detail, at, err := eventbridge.Unwrap(payload)
		if err != nil {
			rejected = ipguard.ErrorCode(err) == ipguard.EInvalid
			return audit.Result{}, err
		}
		now := time.Now()
		if svc.Now != nil {
			now = svc.Now()
		}
		t, err := audit.DecodeTrigger(detail, at, now)
		if err != nil {
			rejected = true
			return audit.Result{}, err
		}
		// The audit goes first, with all the time there is; the key check
		// (one GET) follows, or, when the portal refused the key, names it.
		res, err = svc.Run(ctx, t)
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

// AuditFunction is the whole AuditFunction handler: {"action": "status"}
// answers the status (status.Report) without auditing; anything else is an
// audit run (AuditHandler). A status writes its metrics line too (one per
// invocation): every count 0, and the lag of the stored checkpoint.
func (d Deps) AuditFunction() func(context.Context, []byte) (any, error) {
	run := d.AuditHandler()
	st := d.StatusService()
	mw := d.metricsWriter()
	return func(ctx context.Context, payload []byte) (any, error) {
		if status.IsRequest(payload) {
			start := time.Now()
			rep := st.Report(ctx)
			lag := time.Duration(-1)
			if rep.LagSeconds != nil {
				lag = time.Duration(*rep.LagSeconds * float64(time.Second))
			}
			mw.write(ctx, auditMetrics(audit.Result{}, nil, time.Since(start), 0, lag), map[string]any{"action": "status"})
			return rep, nil
		}
		return run(ctx, payload)
	}
}

// Enforcement wires the audit's responder from the configuration.
func (d Deps) Enforcement() *enforce.Service {
	e := d.Config.Audit.Enforcement
	return &enforce.Service{
		Portal: docspace.EnforcePortal{Client: d.Portal},
		Store:  d.Store,
		Settings: enforce.Settings{
			Mode:         enforce.Mode(e.Mode),
			UnknownUsers: e.UnknownUsers,
			MaxPerRun:    e.MaxPerRun,
			DisableAfter: e.DisableAfter,
			Retention:    d.Config.Audit.AlertRetention,
			Budget:       30 * time.Second,
		},
		Log: d.Log,
	}
}

// KeyWatch wires the key watch: it publishes to the alert topic.
func (d Deps) KeyWatch() *keywatch.Watch {
	return &keywatch.Watch{
		Source:    docspace.KeyWatchSource{Client: d.Portal, Keys: d.APIKeys},
		Store:     d.Store,
		Publisher: snsalert.New(d.snsClient(), d.Config.Audit.TopicARN),
		Portal:    d.Config.DocSpace.Host,
		Log:       d.Log,
	}
}

// StatusService wires the status operation.
func (d Deps) StatusService() *status.Service {
	return &status.Service{Store: d.Store, Portal: d.Portal, Keys: docspace.KeyWatchSource{Client: d.Portal, Keys: d.APIKeys}, Schedule: d.Config.Audit.Schedule}
}

// keyRefused reports whether err is the portal refusing the API key (401).
func keyRefused(err error) bool {
	var de *docspace.Error
	return errors.As(err, &de) && de.Status == http.StatusUnauthorized
}

// checkKey runs the key watch after an audit. An inactive, expired or
// refused key fails the run with a ConfigurationError naming the key; any
// other trouble of the watch becomes a warning of the run (the alert is
// tried again by the next run, as it was not recorded).
func checkKey(ctx context.Context, w *keywatch.Watch) (warnings []string, err error) {
	rep, err := w.Check(ctx)
	if err != nil {
		if ipguard.ErrorCode(err) == ipguard.EConfig {
			return nil, err
		}
		w.Log.Error("keywatch failed", "error", err.Error())
		return []string{"API key check failed: " + err.Error()}, nil
	}
	if rep.Warning != "" {
		warnings = append(warnings, rep.Warning)
	}
	if len(rep.AlertsSent) > 0 && rep.DaysLeft != nil {
		warnings = append(warnings, fmt.Sprintf("the DocSpace API key %q (ending in %s) expires in %d days, at %s: alert %s sent",
			rep.Name, rep.Postfix, *rep.DaysLeft, rep.ExpiresAt, keywatch.Kind))
	}
	return warnings, nil
}

// saveLastRun records the run's outcome for the status operation; a failure
// to record is logged, not returned.
func (d Deps) saveLastRun(ctx context.Context, res audit.Result, err error, took time.Duration) {
	if d.Store == nil {
		return
	}
	rec := status.LastRun{Outcome: "succeeded", At: time.Now().UTC().Format(time.RFC3339), From: res.From, To: res.To,
		Backfill: res.Backfill, EventsScanned: res.EventsScanned, AlertsPublished: res.AlertsPublished, DurationMs: took.Milliseconds()}
	switch {
	case err != nil:
		rec.Outcome, rec.ErrorType, rec.Error = "failed", ErrorType(err), humantext.Line(redact.Clean(err.Error()), 1000)
	case res.Skipped:
		rec.Outcome = "skipped"
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Second)
	defer cancel()
	if serr := d.Store.SaveLastRun(cctx, rec); serr != nil {
		d.Log.WarnContext(ctx, "could not save the last run's outcome for the status operation", "error", serr.Error())
	}
}

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

// detailType is the "detail-type" of payload when it is an EventBridge
// event, else "".
func detailType(payload []byte) string {
	if ev, ok, err := eventbridge.Decode(payload); err == nil && ok {
		return ev.DetailType
	}
	return ""
}
