package wiring

import (
	"context"
	"time"

	"ipguard/internal/audit"
	"ipguard/internal/behaviour"
	"ipguard/internal/status"
)

// The behaviour detection's wiring (issue #17): the audit's Behaviour hook,
// the learn operation, and what the metrics line and the status say of it.

// behaviourSettings are the rules' settings from the configuration.
func (d Deps) behaviourSettings() behaviour.Settings {
	b := d.Config.Audit.Behaviour
	return behaviour.Settings{Rules: b.Rules, MinSeverity: b.MinSeverity, MinLogins: b.MinLogins, MinDays: b.MinDays,
		SprayMinAccounts: b.SprayMinAccounts, SprayWindow: b.SprayWindow, Digest: d.Config.Findings.DigestSeverities,
		Grouped: b.Grouped(), EpisodeHours: b.EpisodeHours} // ALERT_MODE, EPISODE_HOURS (#21 §2)
}

// BehaviourHook is the audit's Behaviour hook, nil when BEHAVIOUR_RULES
// switches every rule off.
func (d Deps) BehaviourHook() audit.Behaviour {
	if !d.Config.Audit.Behaviour.On() || d.Store == nil {
		return nil
	}
	// Windows: password_spray's sliding window spans runs (#21 §3).
	return &behaviour.Detector{Store: d.Store, Windows: d.Store, Settings: d.behaviourSettings(), EpisodeStore: d.Store}
}

// Learn answers {"action": "learn", "days": N, "dryRun": bool}.
func (d Deps) Learn(ctx context.Context, req behaviour.LearnRequest) (behaviour.LearnResult, error) {
	l := &behaviour.Learner{Source: d.Portal, Store: d.Store, Users: d.Store.Users, Leases: d.Store,
		Settings: d.behaviourSettings(), DeadlineMargin: d.Config.Audit.DeadlineMargin}
	start := time.Now()
	res, err := l.Learn(ctx, req)
	d.Log.InfoContext(ctx, "learn done", "days", req.Days, "dryRun", req.DryRun, "complete", res.Complete, "eventsRead", res.EventsRead,
		"logins", res.Logins, "users", res.Users, "baselinesWritten", res.BaselinesWritten, "tookMs", time.Since(start).Milliseconds())
	return res, err
}

// behaviourCounts are the run's behaviour findings per rule: the findings
// that have the rule among their reasons (merged into an allowlist finding
// or of its own kind).
func behaviourCounts(res audit.Result) map[string]int {
	out := map[string]int{}
	for _, k := range audit.BehaviourKinds {
		out[k] = res.BehaviourReasons[k]
	}
	return out
}

// behaviourProps adds the behaviour counts to the metrics line as EMF
// properties, not metrics (WHERE-ISSUES-MEET §6: no alarm reads them).
func behaviourProps(res audit.Result, hook audit.Behaviour, props map[string]any) map[string]any {
	if hook == nil {
		return props
	}
	props["behaviourFindings"] = behaviourCounts(res)
	props["findingsLow"] = res.Severities[audit.SeverityLow]
	props["notMessaged"] = res.NotMessaged
	if det, ok := hook.(*behaviour.Detector); ok && det.Geo().NoGeoIP() {
		props["noGeoIP"] = true
	}
	return props
}

// behaviourLastRun adds the behaviour counts and the GeoIP state to the
// record the status operation shows.
func behaviourLastRun(res audit.Result, hook audit.Behaviour) func(*status.LastRun) {
	return func(r *status.LastRun) {
		if hook == nil {
			return
		}
		n := behaviourCounts(res)
		r.Behaviour = status.BehaviourCounts{ImpossibleTravel: n[audit.KindImpossibleTravel], NewCountry: n[audit.KindNewCountry],
			NewDevice: n[audit.KindNewDevice], PasswordSpray: n[audit.KindPasswordSpray]}
		if det, ok := hook.(*behaviour.Detector); ok {
			r.NoGeoIP = det.Geo().NoGeoIP()
		}
	}
}
