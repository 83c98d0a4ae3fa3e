package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"ipguard/internal/audit"
	"ipguard/internal/behaviour"
	"ipguard/internal/testbed/devportal"
)

// stepBehaviour: Alice's normal is learned from her history (a dry run
// first), then a login from São Paulo two minutes after one from Berlin is
// alerted as impossible travel, explained.
func (d *demo) stepBehaviour(ctx context.Context, n int) error {
	step(d.out, n, "Behaviour: Alice's normal, learned from her history; then an impossible journey")
	now := time.Now()
	var history []devportal.LoginEvent
	for day := 20; day >= 1; day-- {
		history = append(history, devportal.LoginEvent{Date: now.Add(-time.Duration(day) * 24 * time.Hour), UserID: aliceID, User: "Alice Smith",
			Login: aliceEmail, ActionID: loginSuccess, IP: "203.0.113.10", Country: "Germany", City: "Berlin", Browser: "Firefox 133", Platform: "Windows 10"})
	}
	// Five days ago she was in Madrid for a day, from the hotel's network.
	history = append(history, devportal.LoginEvent{Date: now.Add(-5*24*time.Hour + 3*time.Hour), UserID: aliceID, User: "Alice Smith",
		Login: aliceEmail, ActionID: loginSuccess, IP: "198.51.100.140", Country: "Spain", City: "Madrid", Browser: "Firefox 133", Platform: "Windows 10"})
	d.stack.Portal.AddLoginEvents(history...)
	fmt.Fprintln(d.out, "The portal's history: Alice logged in every day for 20 days from her office (203.0.113.10, Berlin, Firefox on Windows),\nand once from a hotel in Madrid five days ago.")

	dry := map[string]any{"action": "learn", "days": 30, "dryRun": true}
	fmt.Fprintf(d.out, "\nInvoke AuditFunction with %s: what would the last 30 days have produced?\n", jsonText(dry))
	var dr behaviour.LearnResult
	if err := invoke(ctx, d.audit, dry, &dr); err != nil {
		return fmt.Errorf("learn dry run: %w", err)
	}
	var rows [][]string
	for _, k := range behaviour.AllRules {
		if s := dr.WouldAlert[k]; s != nil {
			rows = append(rows, []string{k, strconv.Itoa(s.Findings), strconv.Itoa(s.Messaged), strings.Join(s.Users, ", ")})
		}
	}
	fmt.Fprintf(d.out, "%d login events read, %d logins of %d users; would have found:\n", dr.EventsRead, dr.Logins, dr.Users)
	table(d.out, []string{"rule", "findings", "sent as messages", "users"}, rows)
	if !dr.DryRun || dr.BaselinesWritten != 0 || dr.Logins < 21 || dr.WouldAlert[behaviour.RuleNewCountry].Findings < 1 {
		return fmt.Errorf("the dry run did not read Alice's history or wrote baselines: %s", jsonText(dr))
	}
	fmt.Fprintln(d.out, "✓ A dry run changes nothing: it shows the alert volume before a rule is switched on.")

	learn := map[string]any{"action": "learn", "days": 30}
	fmt.Fprintf(d.out, "\nInvoke AuditFunction with %s\n", jsonText(learn))
	var lr behaviour.LearnResult
	if err := invoke(ctx, d.audit, learn, &lr); err != nil {
		return fmt.Errorf("learn: %w", err)
	}
	fmt.Fprintf(d.out, "%d baselines written (one DynamoDB item per user, baseline#<userId>).\n", lr.BaselinesWritten)
	if lr.BaselinesWritten == 0 {
		return fmt.Errorf("learn wrote no baseline: %s", jsonText(lr))
	}

	d.stack.Portal.AddLoginEvents(
		devportal.LoginEvent{Date: now.Add(-150 * time.Second), UserID: aliceID, User: "Alice Smith", Login: aliceEmail, ActionID: loginSuccess,
			IP: "203.0.113.10", Country: "Germany", City: "Berlin", Browser: "Firefox 133", Platform: "Windows 10"},
		devportal.LoginEvent{Date: now.Add(-20 * time.Second), UserID: aliceID, User: "Alice Smith", Login: aliceEmail, ActionID: loginSuccess,
			IP: "192.0.2.99", Country: "Brazil", City: "São Paulo", Browser: "Chrome 131", Platform: "Android 14"},
	)
	fmt.Fprintln(d.out, "\nAlice logs in from her Berlin office, and a little over two minutes later someone logs in as her from São Paulo.")
	res, p, err := d.auditAlertingOnce(ctx, d.audit)
	if err != nil {
		return err
	}
	if _, err := d.stack.Mail(ctx, 300*time.Millisecond); err != nil {
		return err
	}
	switch {
	case res.BehaviourReasons[audit.KindImpossibleTravel] != 1 || res.BehaviourReasons[audit.KindNewCountry] != 1:
		return fmt.Errorf("want one finding with impossible_travel and new_country among its reasons: %s", jsonText(res))
	case !strings.Contains(p.Email, "impossible_travel (high)") || !strings.Contains(p.Email, "Why:"):
		return fmt.Errorf("the e-mail does not give the reasons and the explanation")
	}
	fmt.Fprintln(d.out, "✓ One login, one finding: outside the allowlist, impossible travel and a new country, explained in plain words.")
	fmt.Fprintln(d.out, "✓ The Berlin login came through Alice's own office entry: it raised nothing itself, but the next login was judged against it.")
	return nil
}
