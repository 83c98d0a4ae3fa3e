package wiring

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"ipguard/internal/audit"
	"ipguard/internal/behaviour"
	"ipguard/internal/chatnotify"
	"ipguard/internal/config"
	"ipguard/internal/docspace"
	"ipguard/internal/emf"
	"ipguard/internal/enforce"
	"ipguard/internal/eventbridge"
	"ipguard/internal/findingsbus"
	"ipguard/internal/humantext"
	"ipguard/internal/ipguard"
	"ipguard/internal/keywatch"
	"ipguard/internal/redact"
	"ipguard/internal/snsalert"
	"ipguard/internal/status"
	"net/http"
	"os"
	"runtime/debug"
	"strings"
	"time"
)

// The AuditFunction's wiring: the audit service, enforcement, the key watch, the status operation and the handler that chooses between them.

// AuditService wires the audit service from the shared adapters and SNS
// (with the findings bus, chat and digest chained in: findings.go).
func (d Deps) AuditService() *audit.Service {
	a := d.Config.Audit
	return &audit.Service{
		Source:    d.Portal,
		Clock:     d.Portal,
		Retention: d.Portal,
		Store:     d.Store,
		Publisher: d.alertChain(d.Config.AlertTopicARN, config.Audit, true).Publisher,
		Leases:    d.Store,
		Responder: d.Enforcement(),
		Behaviour: d.BehaviourHook(),
		Archive:   d.loginArchive(),
		People:    d.auditPeople(),
		Settings: audit.Settings{
			Portal:         d.Config.DocSpace.Host,
			Overlap:        a.Overlap,
			Lookback:       a.Lookback,
			AlertRetention: a.AlertRetention,
			DeadlineMargin: a.DeadlineMargin,
			Policy:         audit.Policy{UnknownUsers: a.UnknownUserMessages(), FailedLoginThreshold: a.FailedLoginThreshold},
			Concurrency:    a.Concurrency,
			// GUESS_WINDOW (WHERE §9): its own window, not the run's.
			GuessWindow: a.Behaviour.GuessWindow,
			// SPRAY_WINDOW also for failed_login_burst (WHERE §9).
			BurstWindow: a.Behaviour.SprayWindow,
		},
		Log: d.Log,
	}
}

// auditPeople is the audit's People (user types of people without an
// allowlist, for the digest): only where their logins go to the digest.
func (d Deps) auditPeople() audit.People {
	if d.Config.Audit.UnknownUserMessages() != config.UnknownDigest || d.Portal == nil {
		return nil
	}
	return docspace.Directory{Client: d.Portal}
}

// AuditHandler runs the audit: a scheduled event (its time ends the window),
// an EventBridge Scheduler Input, or a backfill. After the audit it checks
// the API key (package keywatch: expiry alerts; an inactive or expired key
// fails the invocation with a ConfigurationError naming it, also when the
// portal refused the key during the audit). A scheduled run also counts the
// alert topic's confirmed subscriptions (a failure to list them is a
// warning). Each invocation writes one EMF metrics line (see AuditMetrics),
// whose lag is measured from the checkpoint after the run, and records its
// outcome for the status operation. A payload it does not know (another
// action, an unknown field, malformed JSON) is InvalidInput naming the
// field, counted as Rejected, and changes nothing stored: the audit did not
// run, so the last run stays as it was. A panic is an InternalError counted
// in Failures.
func (d Deps) AuditHandler() func(context.Context, []byte) (audit.Result, error) {
	svc := d.AuditService()
	chain := d.alertChain(d.Config.AlertTopicARN, config.Audit, true)
	svc.Publisher = chain.Publisher
	pages := &pageCounter{Source: svc.Source}
	svc.Source = pages
	mw := d.metricsWriter()
	keys := d.KeyWatch()
	keys.Publisher = chain.withoutDigest(d) // the run's bus and chat copy, so their undelivered counts are the run's
	subs := d.Subscriptions()
	return func(ctx context.Context, payload []byte) (res audit.Result, err error) {
		start := time.Now()
		pages.pages.Store(0)
		subscribers := -1
		rejected := false
		scheduled := false                // a run of the schedule: only it declares LagSeconds (lagAsField)
		findingsProps := map[string]any{} // outbox and digest counts: EMF properties (findings.go)
		undelivered := 0                  // the digest and the key check that failed (AlertsUndelivered)
		defer func() {
			took := time.Since(start)
			metrics := append(auditMetrics(res, err, took, pages.pages.Load(), d.runLag(ctx, res, err, scheduled)), subscriberMetrics(subscribers)...)
			metrics = append(metrics, count(MetricAlertsUndelivered, undelivered))
			props := map[string]any{"errorType": errorTypeOrEmpty(err), "from": res.From, "to": res.To}
			for k, v := range findingsProps {
				props[k] = v
			}
			if !scheduled { // a backfill, or a payload refused before it was known to be one
				metrics = lagAsField(metrics, props)
			}
			mw.write(ctx, append(metrics, chain.busMetrics()...), behaviourProps(res, svc.Behaviour, props))
			if !rejected {
				d.saveLastRun(ctx, res, err, took, behaviourLastRun(res, svc.Behaviour))
			}
		}()
		defer func() { recovered(ctx, d.Log, recover(), &err) }()
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
		scheduled = !t.Backfill
		// The audit goes first, with all the time there is; the key check
		// (one GET) and the subscriptions (one SNS call a page) follow, or,
		// when the portal refused the key, the key check names it.
		// Findings the bus refused earlier are sent first; the digest
		// whose hour has come after a scheduled run.
		busWarnings := chain.beforeAudit(ctx, findingsProps)
		res, err = svc.Run(ctx, t)
		if err == nil {
			digestWarnings, n := chain.afterAudit(ctx, res, findingsProps)
			undelivered += n
			for _, w := range digestWarnings {
				d.Log.ErrorContext(ctx, w) // "daily digest not sent: ..." (AuditAlertsUndeliveredAlarm's runbook)
			}
			more := append(busWarnings, digestWarnings...)
			res.Warnings = append(res.Warnings, more...)
			res.WarningCount += len(more)
		}
		if !t.Backfill {
			var warn string
			subscribers, warn = d.countSubscribers(ctx, subs)
			if warn != "" && err == nil {
				res.Warnings = append(res.Warnings, warn)
				res.WarningCount++
			}
		}
		keyWarnings, n, kerr := keyCheckAfter(ctx, keys, err)
		undelivered += n
		if err != nil {
			return res, kerr
		}
		res.Warnings = append(res.Warnings, keyWarnings...)
		res.WarningCount += len(keyWarnings)
		return res, kerr
	}
}

// keyCheckAfter runs the key check after the audit's run (runErr its
// error). The key check runs even when the audit failed: a key about to
// expire is alerted whatever else is wrong (a refused, inactive or expired
// key names the key: that error is returned, else runErr). Its own trouble
// is then only logged, not counted in undelivered: AlertsUndelivered (and
// AuditAlertsUndeliveredAlarm, whose runbook says the runs themselves
// succeeded) is the trouble after a run that succeeded; a failed run pages
// through AuditErrorsAlarm, and a portal outage that fails both the run and
// the key check is one page, not two.
func keyCheckAfter(ctx context.Context, keys *keywatch.Watch, runErr error) (warnings []string, undelivered int, err error) {
	if runErr == nil {
		return checkKey(ctx, keys)
	}
	if _, _, kerr := checkKey(ctx, keys); kerr != nil && (keyRefused(runErr) || ipguard.ErrorCode(kerr) == ipguard.EConfig) {
		return nil, 0, kerr
	}
	return nil, 0, runErr
}

// Actions of the audit function besides a run.
const (
	ActionStatus    = "status"
	ActionTestAlert = "test-alert"
	// ActionLearn reads the login history into the behaviour baselines
	// ({"action": "learn", "days": N, "dryRun": bool}; package behaviour).
	ActionLearn = "learn"
)

// AuditFunction is the whole AuditFunction handler: {"action": "status"}
// answers the status (status.Report) without auditing; {"action":
// "test-alert"} sends one test message (TestAlert); anything else goes to
// AuditHandler, which runs a scheduled event, a Scheduler Input or a
// backfill and refuses every other payload (another action, an unknown
// field) as InvalidInput without running. A status writes its metrics line
// too (one per invocation): every count 0, the lag of the stored checkpoint
// (a field, not the metric: a status is no run, see lagAsField) and
// ConfirmedSubscribers; a learn writes Failures, Rejected and RunSeconds.
func (d Deps) AuditFunction() func(context.Context, []byte) (any, error) {
	setAuditMemoryLimit(os.Getenv)
	run := d.AuditHandler()
	st := d.StatusService()
	test := d.TestAlert()
	mw := d.metricsWriter()
	return func(ctx context.Context, payload []byte) (out any, err error) {
		switch auditAction(payload) {
		case ActionStatus:
			start := time.Now()
			var rep status.Report
			defer func() {
				lag := time.Duration(-1)
				if rep.LagSeconds != nil {
					lag = time.Duration(*rep.LagSeconds * float64(time.Second))
				}
				subscribers := -1
				if rep.Delivery != nil {
					subscribers = rep.Delivery.ConfirmedSubscribers
				}
				ms := append(auditMetrics(audit.Result{}, err, time.Since(start), 0, lag), subscriberMetrics(subscribers)...)
				props := map[string]any{"action": ActionStatus, "errorType": errorTypeOrEmpty(err)}
				mw.write(ctx, lagAsField(ms, props), props) // a status is no run of the schedule
			}()
			defer func() { recovered(ctx, d.Log, recover(), &err) }()
			rep = st.Report(ctx)
			return rep, nil
		case ActionTestAlert:
			return test(ctx)
		case ActionLearn:
			// Its line too: AuditErrorsAlarm subtracts Rejected from Lambda's
			// Errors, so a mistyped learn (InvalidInput) must say Rejected 1.
			start := time.Now()
			defer func() {
				ms := append(failureMetrics(err), emf.Metric{Name: MetricRunSeconds, Unit: emf.Seconds, Value: time.Since(start).Seconds()})
				mw.write(ctx, ms, map[string]any{"action": ActionLearn, "errorType": errorTypeOrEmpty(err)})
			}()
			defer func() { recovered(ctx, d.Log, recover(), &err) }()
			detail, _, uerr := eventbridge.Unwrap(payload)
			if uerr != nil {
				return nil, uerr
			}
			req, _, derr := behaviour.DecodeLearn(detail)
			if derr != nil {
				return nil, derr
			}
			return d.Learn(ctx, req)
		}
		return run(ctx, payload)
	}
}

// scheduledRun reports whether payload is a run of the audit's schedule as
// AuditHandler judges it: no action, a trigger it accepts, no backfill.
func scheduledRun(payload []byte) bool {
	if auditAction(payload) != "" {
		return false
	}
	detail, at, err := eventbridge.Unwrap(payload)
	if err != nil {
		return false
	}
	t, err := audit.DecodeTrigger(detail, at, time.Now())
	return err == nil && !t.Backfill
}

// auditAction is the "action" of payload (or of the EventBridge event's
// detail), lower case, when it is status or test-alert; "" otherwise
// (AuditHandler decides, and refuses what it does not know).
func auditAction(payload []byte) string {
	detail, _, err := eventbridge.Unwrap(payload)
	if err != nil {
		return ""
	}
	var v struct {
		Action *string `json:"action"`
	}
	if json.Unmarshal(detail, &v) != nil || v.Action == nil {
		return ""
	}
	switch a := strings.ToLower(strings.TrimSpace(*v.Action)); a {
	case ActionStatus, ActionTestAlert, ActionLearn:
		return a
	}
	return ""
}

// TestAlertResult is the answer of {"action": "test-alert"}.
type TestAlertResult struct {
	Action string `json:"action"` // always "test-alert"
	Test   bool   `json:"test"`   // always true
	// Sent lists each channel the message went through.
	Sent []SentTest `json:"sent"`
	// ConfirmedSubscribers is how many confirmed subscriptions of the alert
	// topic receive it; absent when they could not be listed.
	ConfirmedSubscribers *int     `json:"confirmedSubscribers,omitempty"`
	PendingSubscribers   *int     `json:"pendingSubscribers,omitempty"`
	Warnings             []string `json:"warnings"`
}

// SentTest is one channel a test message was handed to. A chat copy that
// fails is logged ("chat notification not sent") and does not fail the
// call, as for every alert.
type SentTest struct {
	Channel   string `json:"channel"`             // "sns", "chat" or "bus"
	Target    string `json:"target"`              // the topic ARN or the bus name
	MessageID string `json:"messageId,omitempty"` // SNS's message id (the alert topic)
	// Outcome is "delivered" (the channel took the message) or "refused"
	// (it did not; Error says why, and a warning of the answer too).
	Outcome string `json:"outcome"`
	Error   string `json:"error,omitempty"`
}

// TestAlert is the handler of {"action": "test-alert"}: one message, marked
// as a test ("test": true in its JSON and the message attribute test=true),
// through every configured channel: the alert topic (so each of its
// subscriptions: e-mail, SMS, queues), the chat topic and the findings bus
// when configured. It writes no alert record, no
// finding and no finding metric; its metrics line has Failures, Rejected,
// RunSeconds and ConfirmedSubscribers. A failed publish fails the call
// (ConfigurationError naming ALERT_TOPIC_ARN, or DependencyUnavailable).
func (d Deps) TestAlert() func(context.Context) (TestAlertResult, error) {
	// The audit's own chain, without the digest (it lets a test through
	// anyway): the alert topic, then a chat copy and the findings bus
	// where they are configured (a test goes to the bus once, never to
	// its outbox).
	chain := d.alertChain(d.Config.AlertTopicARN, config.Audit, false)
	pub := chain.Publisher
	f := d.Config.Findings
	subs := d.Subscriptions()
	mw := d.metricsWriter()
	return func(ctx context.Context) (res TestAlertResult, err error) {
		start := time.Now()
		subscribers := -1
		defer func() {
			ms := append(failureMetrics(err), emf.Metric{Name: MetricRunSeconds, Unit: emf.Seconds, Value: time.Since(start).Seconds()})
			ms = append(append(ms, subscriberMetrics(subscribers)...), chain.busMetrics()...)
			mw.write(ctx, ms, map[string]any{"action": ActionTestAlert, "test": true, "errorType": errorTypeOrEmpty(err)})
		}()
		defer func() { recovered(ctx, d.Log, recover(), &err) }()
		a, err := audit.TestAlert(d.Config.DocSpace.Host, time.Now(), requestID(ctx))
		if err != nil {
			return TestAlertResult{}, err
		}
		var chat chatnotify.Outcome
		var bus findingsbus.Delivery
		id, err := pub.Publish(findingsbus.WithDelivery(chatnotify.WithOutcome(ctx, &chat), &bus), a)
		if err != nil {
			return TestAlertResult{}, err
		}
		res = TestAlertResult{Action: ActionTestAlert, Test: true, Warnings: []string{},
			Sent: []SentTest{{Channel: "sns", Target: d.Config.AlertTopicARN, MessageID: id, Outcome: "delivered"}}}
		if f.ChatTopicARN != "" {
			s := SentTest{Channel: "chat", Target: f.ChatTopicARN, Outcome: "delivered"}
			if chat.Err != nil || !chat.Tried {
				s.Outcome, s.Error = "refused", "not sent"
				if chat.Err != nil {
					s.Error = redact.Clean(chat.Err.Error())
				}
				res.Warnings = append(res.Warnings, "the chat topic refused the test message: "+s.Error)
			}
			res.Sent = append(res.Sent, s)
		}
		if f.BusName != "" {
			s := SentTest{Channel: "bus", Target: f.BusName, Outcome: "delivered"}
			if bus.Refused > 0 || bus.Sent == 0 {
				s.Outcome, s.Error = "refused", "not sent"
				if bus.Err != nil {
					s.Error = redact.Clean(bus.Err.Error())
				}
				res.Warnings = append(res.Warnings, "the findings bus refused the test event (it is not kept for a retry): "+s.Error)
			}
			res.Sent = append(res.Sent, s)
		}
		if subs != nil {
			c, p, lerr := subs.Subscribers(ctx)
			if lerr != nil {
				res.Warnings = append(res.Warnings, "could not list the alert topic's subscriptions (the message was sent): "+redact.Clean(lerr.Error()))
			} else {
				subscribers = c
				res.ConfirmedSubscribers, res.PendingSubscribers = &c, &p
				res.Warnings = append(res.Warnings, status.SubscriberWarnings(c, p)...)
			}
		}
		d.Log.InfoContext(ctx, "test alert sent", "messageId", id, "topic", d.Config.AlertTopicARN, "confirmedSubscribers", subscribers)
		return res, nil
	}
}

// Subscriptions counts the alert topic's subscriptions (nil without a topic).
func (d Deps) Subscriptions() *snsalert.Subscriptions {
	if d.Config.AlertTopicARN == "" {
		return nil
	}
	return snsalert.NewSubscriptions(d.snsClient(), d.Config.AlertTopicARN)
}

// countSubscribers counts the alert topic's confirmed subscriptions for a
// scheduled run: -1 and a warning when they cannot be listed (never a
// failed run); a count of 0 is logged (the ConfirmedSubscribers alarm pages).
func (d Deps) countSubscribers(ctx context.Context, subs *snsalert.Subscriptions) (int, string) {
	if subs == nil {
		return -1, ""
	}
	// Within the invocation's deadline (the run may have used most of it),
	// keeping a moment for the key check and the answer.
	budget := 2 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		budget = min(budget, (time.Until(dl)-time.Second)/2)
	}
	if budget <= 0 {
		return -1, "the alert topic's subscriptions were not counted: the run used the time up to its deadline"
	}
	cctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	c, _, err := subs.Subscribers(cctx)
	if err != nil {
		w := "could not list the alert topic's subscriptions (the function needs sns:ListSubscriptionsByTopic on it): " + redact.Clean(err.Error())
		d.Log.WarnContext(ctx, "alert subscriptions unknown", "error", err)
		return -1, w
	}
	if c == 0 {
		d.Log.WarnContext(ctx, status.NoSubscriber)
	}
	return c, ""
}

// Enforcement wires the audit's responder from the configuration.
func (d Deps) Enforcement() *enforce.Service {
	e := d.Config.Audit.Enforcement
	return &enforce.Service{
		Portal: docspace.EnforcePortal{Client: d.Portal},
		Store:  d.Store,
		Settings: enforce.Settings{
			Mode:         e.Mode,
			UnknownUsers: e.UnknownUsers,
			MaxPerRun:    e.MaxPerRun,
			DisableAfter: e.DisableAfter,
			Behaviour:    d.Config.Audit.Behaviour.Enforce,
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
		Publisher: d.alertChain(d.Config.AlertTopicARN, config.Audit, false).Publisher, // bus and chat; no digest for key alerts
		Portal:    d.Config.DocSpace.Host,
		Log:       d.Log,
	}
}

// StatusService wires the status operation.
func (d Deps) StatusService() *status.Service {
	st := &status.Service{Store: d.Store, Portal: d.Portal, Keys: docspace.KeyWatchSource{Client: d.Portal, Keys: d.APIKeys}, Schedule: d.Config.Audit.Schedule}
	if subs := d.Subscriptions(); subs != nil {
		st.Delivery = subs
	}
	return st
}

// keyRefused reports whether err is the portal refusing the API key (401).
func keyRefused(err error) bool {
	var de *docspace.Error
	return errors.As(err, &de) && de.Status == http.StatusUnauthorized
}

// checkKey runs the key watch after an audit. An inactive, expired or
// refused key fails the run with a ConfigurationError naming the key; any
// other trouble of the watch becomes a warning of the run (the alert is
// tried again by the next run, as it was not recorded) and undelivered 1
// (AlertsUndelivered, alarmed: a key check or expiry alert that fails run
// after run must page someone before the key expires, not only warn). A
// portal that does not answer keys/@self now is only a warning (the watch's
// Report) until no check has succeeded for keywatch.StaleAfter: then it
// is an error of the watch, and counted.
func checkKey(ctx context.Context, w *keywatch.Watch) (warnings []string, undelivered int, err error) {
	rep, err := w.Check(ctx)
	if err != nil {
		if ipguard.ErrorCode(err) == ipguard.EConfig {
			return nil, 0, err
		}
		w.Log.Error("keywatch failed", "error", err.Error())
		return []string{"API key check failed: " + err.Error()}, 1, nil
	}
	if rep.Warning != "" {
		warnings = append(warnings, rep.Warning)
	}
	if len(rep.AlertsSent) > 0 && rep.DaysLeft != nil {
		warnings = append(warnings, fmt.Sprintf("the DocSpace API key %q (ending in %s) expires in %d days, at %s: alert %s sent",
			rep.Name, rep.Postfix, *rep.DaysLeft, rep.ExpiresAt, keywatch.Kind))
	}
	return warnings, 0, nil
}

// saveLastRun records the run's outcome for the status operation; a failure
// to record is logged, not returned.
func (d Deps) saveLastRun(ctx context.Context, res audit.Result, err error, took time.Duration, more ...func(*status.LastRun)) {
	if d.Store == nil {
		return
	}
	rec := lastRunRecord(res, err, took, time.Now(), more...)
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Second)
	defer cancel()
	if serr := d.Store.SaveLastRun(cctx, rec); serr != nil {
		d.Log.WarnContext(ctx, "could not save the last run's outcome for the status operation", "error", serr.Error())
	}
}

// lastRunRecord is what the status operation shows of a run: its outcome,
// whether it finished its window (Complete: false for a run stopped at its
// margin, a skipped one and a failed one) and how many runs in a row have
// not moved the cursor, so that a stalled audit is visible there too.
func lastRunRecord(res audit.Result, err error, took time.Duration, now time.Time, more ...func(*status.LastRun)) status.LastRun {
	rec := status.LastRun{Outcome: "succeeded", At: now.UTC().Format(time.RFC3339), From: res.From, To: res.To,
		Backfill: res.Backfill, Complete: res.Complete && err == nil, RunsWithoutProgress: res.RunsWithoutProgress,
		EventsScanned: res.EventsScanned, AlertsPublished: res.AlertsPublished, DurationMs: took.Milliseconds()}
	for _, m := range more {
		m(&rec)
	}
	switch {
	case err != nil:
		rec.Outcome, rec.ErrorType, rec.Error = "failed", ErrorType(err), humantext.Line(redact.Clean(err.Error()), 1000)
	case res.Skipped:
		rec.Outcome = "skipped"
	}
	return rec
}

// UnknownLag is the LagSeconds of a scheduled run whose lag cannot be known
// (no checkpoint yet, as before the first run ever succeeded, or the table
// could not be read): a year, above any HEARTBEAT_MAX_LAG_SECONDS the
// configuration accepts (at most 100 days), so the lag heartbeat reads the
// run as behind, as it read missing data before.
const UnknownLag = 365 * 24 * time.Hour

// runLag is the lag an invocation reports: lag, except that a scheduled run
// always reports one, UnknownLag when lag cannot know it. Every scheduled run
// counts as a run for the heartbeats (AuditRunsMissingAlarm counts the
// samples of LagSeconds), also one that failed before it could read the
// checkpoint: without it a cron() schedule invoking a failing audit would
// read as stopped.
func (d Deps) runLag(ctx context.Context, res audit.Result, err error, scheduled bool) time.Duration {
	l := d.lag(ctx, res, err)
	if l < 0 && scheduled {
		return UnknownLag
	}
	return l
}

// lag is how far behind now the audit has safely read: the result's
// safeUntil (every event up to it is done), otherwise (and for a backfill,
// whose safeUntil is the end of its own past window) the stored checkpoint;
// -1 when it cannot be known (no checkpoint yet, or the store failed):
// runLag reports UnknownLag for a scheduled run, nothing for the rest.
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

// AuditMemoryLimit is the audit's soft memory limit (runtime/debug
// SetMemoryLimit) unless GOMEMLIMIT sets one: the garbage collector works
// harder as the Go heap nears it instead of letting it grow to twice the
// live data, which under a flood of failed logins is what raised the peak
// (issue #16 §4). It is soft: a run that needs more gets more (the
// function's MemorySize is 256 MB), at some cost in CPU.
const AuditMemoryLimit = 40 << 20

// setAuditMemoryLimit sets AuditMemoryLimit unless getenv("GOMEMLIMIT")
// names a limit of its own (the Go runtime has applied it already).
func setAuditMemoryLimit(getenv func(string) string) {
	if strings.TrimSpace(getenv("GOMEMLIMIT")) == "" {
		debug.SetMemoryLimit(AuditMemoryLimit)
	}
}
