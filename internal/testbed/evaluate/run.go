package evaluate

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"ipguard/internal/audit"
	"ipguard/internal/config"
	"ipguard/internal/docspace"
	"ipguard/internal/testbed/devportal"
	"ipguard/internal/testbed/localaws"
	"ipguard/internal/testbed/localdeploy"
	"ipguard/internal/wiring"
)

// RunOptions configure Run.
type RunOptions struct {
	// Moto to deploy on (reset first); nil starts one and stops it after.
	Moto *localaws.Moto
	// Setenv sets one variable of this process's environment, where the
	// functions' wiring reads its configuration (t.Setenv in tests).
	Setenv func(k, v string)
	// Env are settings over the defaults ("NAME=value"); none: the
	// defaults, which is what the goal is about.
	Env []string
	// Every is the schedule's period (default 5 minutes).
	Every time.Duration
	// EveryRun runs the quiet periods too (see Run).
	EveryRun bool
	// Progress, optional, is told what is done (a line each step and
	// simulated day).
	Progress func(line string)
	// Log, optional, receives the functions' log lines (default: discarded).
	Log io.Writer
}

// Message is one SNS message people received (not the digest, not a test).
type Message struct {
	Severity string
	Findings []audit.Finding
}

// Outcome is what a run of the evaluation saw.
type Outcome struct {
	Scheduled     int // the schedule's runs over the audited days
	Runs          int // of them, those run (the others' periods hold no login)
	Messages      []Message
	Digests       int // digest messages (reports, not alerts)
	OnboardErrors []string
	// Table is the table's items at the end, per kind (key prefix): what a
	// reconcile's consistent scan of users reads (it reads every item).
	Table []TablePart
	Took  time.Duration
}

// TablePart is one kind of item in the table (localdeploy.TablePart).
type TablePart = localdeploy.TablePart

// Run deploys the product locally (moto, the dev portal), onboards the
// population's onboarded people through the onboarding function, puts the
// learned days' logins on the portal and runs the audit function's learn
// over them, then puts the rest on the portal and runs the audit function
// the way the schedule would: one scheduled event every Every of simulated
// time across the audited days (each event's time ends its run's window,
// as EventBridge's does). The messages the alert topic received from the
// audit runs are returned.
//
// The population's days must lie in the past (the portal refuses nothing,
// but the audit never reads beyond now). The client's pacing
// (PORTAL_REQUESTS_PER_MINUTE) is left out: simulated time has no minutes
// to pace over.
func Run(ctx context.Context, pop *Population, o RunOptions) (out Outcome, err error) {
	begin := time.Now()
	defer func() { out.Took = time.Since(begin) }()
	if o.Every <= 0 {
		o.Every = 5 * time.Minute
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	if pop.End.After(time.Now()) {
		return out, fmt.Errorf("evaluate: the population ends at %s, in the future", pop.End.Format(time.RFC3339))
	}
	stack, err := localdeploy.Start(ctx, localdeploy.Options{Moto: o.Moto})
	if err != nil {
		return out, err
	}
	defer stack.Close()
	// The first run reads one period back: the learned days are learned,
	// not audited.
	env := stack.FunctionEnv(append([]string{"AUDIT_LOOKBACK=" + o.Every.String(), "LOG_LEVEL=warn"}, o.Env...)...)
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		o.Setenv(k, v)
	}

	// The portal's people (guests too: they have accounts, no allowlist).
	var users []devportal.User
	for _, p := range pop.People {
		users = append(users, devportal.User{ID: p.ID, DisplayName: p.Name, Email: p.Email, Status: 1})
	}
	if err := stack.Portal.PutUsers(users...); err != nil {
		return out, fmt.Errorf("evaluate: put users: %w", err)
	}

	onboardDeps, err := load(ctx, config.Onboard, o.Log)
	if err != nil {
		return out, err
	}
	onboard := onboardDeps.OnboardHandler()
	// Eight at a time, as a pipeline's burst arrives: the onboarding
	// function's queued callers find their change applied by the one
	// holding the portal lease.
	var (
		mu        sync.Mutex
		wg        sync.WaitGroup
		onboarded int
		next      = make(chan Person)
	)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range next {
				payload, err := OnboardingEvent(p, pop.Options.Place)
				if err == nil {
					_, err = onboard(ctx, payload)
				}
				mu.Lock()
				onboarded++
				if err != nil {
					out.OnboardErrors = append(out.OnboardErrors, fmt.Sprintf("%s: %v", p.Email, err))
				}
				if onboarded%50 == 0 {
					o.say("onboarding: %d people", onboarded)
				}
				mu.Unlock()
			}
		}()
	}
	for _, p := range pop.People {
		if p.Onboarded {
			next <- p
		}
	}
	close(next)
	wg.Wait()
	o.say("onboarded %d people", onboarded)
	if len(out.OnboardErrors) > 0 {
		return out, fmt.Errorf("evaluate: %d onboardings failed, the first: %s", len(out.OnboardErrors), out.OnboardErrors[0])
	}

	auditDeps, err := load(ctx, config.Audit, o.Log)
	if err != nil {
		return out, err
	}
	fn := auditDeps.AuditFunction()
	// Learn from the first third of the days.
	stack.Portal.AddLoginEvents(portalEvents(pop, time.Time{}, pop.LearnUntil)...)
	days := int(time.Since(pop.Start).Hours()/24) + 1
	learn, _ := json.Marshal(map[string]any{"action": "learn", "days": days})
	if _, err := fn(ctx, learn); err != nil {
		return out, fmt.Errorf("evaluate: learn: %w", err)
	}
	o.say("learned from %s to %s", pop.Start.Format("2006-01-02"), pop.LearnUntil.Format("2006-01-02"))
	stack.Portal.AddLoginEvents(portalEvents(pop, pop.LearnUntil, pop.End)...)
	seen := len(stack.Published())

	// The schedule's runs. A run whose period holds no login is left out
	// (unless EveryRun): it would read nothing new and move only the
	// checkpoint, so the next run's window starts earlier but holds the
	// same new logins the scheduled one would; only what its overlap
	// re-reads (AUDIT_OVERLAP before the checkpoint: logins already judged)
	// may differ.
	busy := map[int64]bool{}
	for _, e := range pop.Events {
		if !e.Date.Before(pop.LearnUntil) {
			busy[periodEnd(e.Date, pop.LearnUntil, o.Every).Unix()] = true
		}
	}
	day := pop.LearnUntil
	for at := pop.LearnUntil.Add(o.Every); !at.After(pop.End); at = at.Add(o.Every) {
		out.Scheduled++
		if !busy[at.Unix()] && !o.EveryRun {
			continue
		}
		ev, _ := json.Marshal(map[string]any{"version": "0", "id": fmt.Sprintf("evaluate-%d", at.Unix()), "detail-type": "Scheduled Event",
			"source": "aws.events", "account": "123456789012", "time": at.Format(time.RFC3339), "region": localdeploy.Region,
			"resources": []string{"arn:aws:events:us-east-1:123456789012:rule/evaluate"}, "detail": map[string]any{}})
		res, err := fn(ctx, ev)
		if err != nil {
			return out, fmt.Errorf("evaluate: the run ending %s: %w", at.Format(time.RFC3339), err)
		}
		if r, ok := res.(audit.Result); ok && !r.Complete {
			return out, fmt.Errorf("evaluate: the run ending %s stopped short (resume below %s)", at.Format(time.RFC3339), r.ResumeBelow)
		}
		out.Runs++
		if !at.Before(day.Add(24 * time.Hour)) {
			day = day.Add(24 * time.Hour)
			o.say("audited up to %s (%d runs)", day.Format("2006-01-02"), out.Runs)
		}
	}
	if out.Table, err = stack.TableParts(ctx); err != nil {
		return out, err
	}
	for _, m := range stack.Published()[seen:] {
		msg, digest, err := decodeMessage(m.Default)
		if err != nil {
			return out, err
		}
		if digest {
			out.Digests++
			continue
		}
		if msg != nil {
			out.Messages = append(out.Messages, *msg)
		}
	}
	return out, nil
}

// load wires a function as wiring.Load does, with its logs to w, its
// metrics lines dropped, and the portal client without pacing.
func load(ctx context.Context, fn config.Function, w io.Writer) (wiring.Deps, error) {
	d, err := wiring.Load(ctx, fn)
	if err != nil {
		return d, err
	}
	d.Log = wiring.NewLogger(w, slog.LevelWarn)
	d.MetricsOut = io.Discard
	d.Portal, err = docspace.New(docspace.Options{BaseURL: d.Config.DocSpace.Host, AllowHTTP: d.Config.DocSpace.AllowHTTP,
		Keys: d.APIKeys, Timeout: d.Config.DocSpace.Timeout, Logger: d.Log})
	return d, err
}

// OnboardingEvent is the onboarding function's event for p: its id, e-mail
// and entries (an entry with an expiry or a note as an object; with
// withPlace, its "place" too). The simulated days lie in the past while
// the onboarding happens now, which refuses an expiry in the past: a trip's
// entry then expires a week from now instead (it still counts for every
// login of the trip; nobody else uses the hotel's network).
func OnboardingEvent(p Person, withPlace bool) ([]byte, error) {
	var entries []any
	for _, e := range p.Entries {
		m := map[string]any{"ip": e.IP}
		if !e.ExpiresAt.IsZero() {
			exp := e.ExpiresAt.UTC()
			if soon := time.Now().UTC().Add(time.Hour); exp.Before(soon) {
				exp = soon.Add(7 * 24 * time.Hour).Truncate(time.Hour)
			}
			m["expiresAt"] = exp.Format(time.RFC3339)
		}
		if e.Note != "" {
			m["note"] = e.Note
		}
		if withPlace && e.Place != "" {
			m["place"] = e.Place
		}
		entries = append(entries, m)
	}
	return json.Marshal(map[string]any{"id": p.ID, "email": p.Email, "allowedIps": entries})
}

// portalEvents are the population's events dated in [from, to) as the dev
// portal stores them (ids kept).
func portalEvents(pop *Population, from, to time.Time) []devportal.LoginEvent {
	var out []devportal.LoginEvent
	for _, e := range pop.Events {
		if e.Date.Before(from) || !e.Date.Before(to) {
			continue
		}
		out = append(out, devportal.LoginEvent{ID: e.ID, Date: e.Date, UserID: e.UserID, Login: e.Login, ActionID: e.ActionID, IP: e.IP,
			Country: e.City.Country, City: e.City.Name, Browser: e.Device.Browser, Platform: e.Device.Platform, Page: "/"})
	}
	return out
}

// decodeMessage reads one SNS message's default (JSON) body: a digest
// (a report, not an alert), a test message (nil), or an alert.
func decodeMessage(body string) (*Message, bool, error) {
	var head struct {
		Kind string `json:"kind"`
		Test bool   `json:"test"`
	}
	if err := json.Unmarshal([]byte(body), &head); err != nil {
		return nil, false, fmt.Errorf("evaluate: a message is not JSON: %w", err)
	}
	if head.Kind == "digest" {
		return nil, true, nil
	}
	if head.Test {
		return nil, false, nil
	}
	var p audit.Payload
	if err := json.Unmarshal([]byte(body), &p); err != nil {
		return nil, false, fmt.Errorf("evaluate: a message is not an alert: %w", err)
	}
	return &Message{Severity: p.Severity, Findings: p.Events}, false, nil
}

func (o RunOptions) say(format string, args ...any) {
	if o.Progress != nil {
		o.Progress(fmt.Sprintf(format, args...))
	}
}

// periodEnd is the end of the schedule's period that holds t: the first
// run time (from + k·every) at or after t (a run's window ends at its time,
// inclusive).
func periodEnd(t, from time.Time, every time.Duration) time.Time {
	k := (t.Sub(from) + every - 1) / every
	return from.Add(k * every)
}
