package lambdafn

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"ipguard/internal/audit"
	"ipguard/internal/docspace"
	"ipguard/internal/humantext"
	"ipguard/internal/ipguard"
	"ipguard/internal/keywatch"
	"ipguard/internal/redact"
	"ipguard/internal/snsalert"
	"ipguard/internal/status"
)

// KeySource is the DocSpace client as package keywatch asks for it.
// Keys, when set, lets a refused key be named by its last characters.
type KeySource struct {
	Client *docspace.Client
	Keys   docspace.KeyProvider
}

var _ keywatch.Source = KeySource{}

// CurrentKey implements keywatch.Source: GET keys/@self; a 404 is
// keywatch.ErrNotSupported, a 401 keywatch.ErrRefused (the client's error
// stays in the chain, and with it the ConfigurationError code).
func (k KeySource) CurrentKey(ctx context.Context) (keywatch.Key, error) {
	key, err := k.Client.CurrentKey(ctx)
	var de *docspace.Error
	switch {
	case errors.Is(err, docspace.ErrNotSupported):
		return keywatch.Key{}, fmt.Errorf("%w: %w", keywatch.ErrNotSupported, err)
	case errors.As(err, &de) && de.Status == http.StatusUnauthorized:
		var refused keywatch.Key
		if k.Keys != nil {
			if secret, kerr := k.Keys.Key(ctx); kerr == nil {
				refused.Postfix = keywatch.PostfixOf(secret)
			}
		}
		return refused, fmt.Errorf("%w: %w", keywatch.ErrRefused, err)
	case err != nil:
		return keywatch.Key{}, err
	}
	return keywatch.Key{ID: key.ID, Name: key.Name, Postfix: key.Postfix, ExpiresAt: key.ExpiresAt, IsActive: key.IsActive}, nil
}

// KeyWatch wires the key watch: it publishes to the alert topic.
func (d Deps) KeyWatch() *keywatch.Watch {
	return &keywatch.Watch{
		Source:    KeySource{d.Portal, d.APIKeys},
		Store:     d.Store,
		Publisher: snsalert.New(d.snsClient(), d.Config.Audit.TopicARN),
		Portal:    d.Config.DocSpace.Host,
		Log:       d.Log,
	}
}

// StatusService wires the status operation.
func (d Deps) StatusService() *status.Service {
	return &status.Service{Store: d.Store, Portal: d.Portal, Keys: KeySource{d.Portal, d.APIKeys}, Schedule: d.Config.Audit.Schedule}
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
