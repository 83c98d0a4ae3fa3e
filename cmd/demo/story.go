package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"ipguard/internal/audit"
	"ipguard/internal/ipguard"
	"ipguard/internal/onboard"
	"ipguard/internal/testbed/devportal"
	"ipguard/internal/testbed/localaws"
	"ipguard/internal/testbed/localdeploy"
)

// The cast.
const (
	aliceID    = "3f6c1d2e-8a4b-4c7d-9e1f-2a3b4c5d6e7f"
	aliceEmail = "alice.smith@example.com"
	bobID      = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d" // never onboarded
	guestID    = "712d9ec3-5d2b-4b13-824f-71f00191dcca" // the portal records failed logins under its guest account
)

// Login action ids of the portal (docspace-api.md §3.5).
const (
	loginSuccess = 1000 // LoginSuccess
	loginFail    = 1002 // LoginFailInvalidCombination
)

// manual are the entries an admin added on the portal by hand before IP
// Guard existed; onboarding must keep them exactly.
var manual = []ipguard.Restriction{
	{IP: "192.0.2.10", ForAdmin: true}, // the admins' office
	{IP: "198.51.100.200"},             // the shared VPN exit
}

var aliceIPs = []string{"203.0.113.10", "198.51.100.20-198.51.100.23", "10.20.30.0/29"}

// wantAdded is what onboarding Alice must add to the portal: each entry
// expanded into single addresses, because the portal compares strings.
var wantAdded = []string{
	"203.0.113.10",
	"198.51.100.20", "198.51.100.21", "198.51.100.22", "198.51.100.23",
	"10.20.30.0", "10.20.30.1", "10.20.30.2", "10.20.30.3", "10.20.30.4", "10.20.30.5", "10.20.30.6", "10.20.30.7",
}

// tell runs the steps; each returns an error when the product does not
// behave as the step says.
func (d *demo) tell(ctx context.Context) error {
	if err := d.stepOnboard(ctx); err != nil {
		return fmt.Errorf("step 1: %w", err)
	}
	if err := d.stepLogins(ctx); err != nil {
		return fmt.Errorf("step 2: %w", err)
	}
	published, err := d.stepAudit(ctx)
	if err != nil {
		return fmt.Errorf("step 3: %w", err)
	}
	if err := d.stepAuditAgain(ctx, published); err != nil {
		return fmt.Errorf("step 4: %w", err)
	}
	if err := d.stepEnforce(ctx); err != nil {
		return fmt.Errorf("step 5: %w", err)
	}
	// The status and a metrics line stay last: they are what the demo ends with.
	for i, s := range []func(context.Context, int) error{d.stepBehaviour, d.stepTravelMode, d.stepDrift, d.stepOffboard, d.stepKeyExpiring, d.stepTestAlert, d.stepStatus} {
		if err := s(ctx, 6+i); err != nil {
			return fmt.Errorf("step %d: %w", 6+i, err)
		}
	}
	return nil
}

func (d *demo) stepOnboard(ctx context.Context) error {
	step(d.out, 1, "Onboard Alice with a single address, a range and a CIDR block")
	d.stack.Portal.SetRestrictions(manual, true)
	fmt.Fprintln(d.out, "The portal's allowlist before, with two entries an admin added by hand:")
	printAllowlist(d.out, d.stack.Portal)

	req := map[string]any{"id": aliceID, "email": aliceEmail, "allowedIps": aliceIPs}
	b, _ := json.Marshal(req)
	fmt.Fprintf(d.out, "\nInvoke OnboardFunction with %s\n", b)
	var res onboard.Result
	if err := invoke(ctx, d.onboard, req, &res); err != nil {
		return fmt.Errorf("onboard: %w", err)
	}
	fmt.Fprintln(d.out, "Result:")
	table(d.out, nil, [][]string{
		{"entries stored in DynamoDB", strings.Join(res.Entries, ", ")},
		{"addresses added to the portal", fmt.Sprintf("%d (each range and block expanded: the portal compares exact strings)", len(res.PortalAdded))},
		{"restrictions enabled", strconv.FormatBool(res.RestrictionsEnabled)},
	})
	fmt.Fprintln(d.out, "\nThe portal's allowlist after:")
	list := printAllowlist(d.out, d.stack.Portal)

	if !res.Stored || !slices.Equal(res.PortalAdded, wantAdded) {
		return fmt.Errorf("onboarding stored=%v and added %q to the portal, want stored and %q", res.Stored, res.PortalAdded, wantAdded)
	}
	if len(list) < len(manual) || !slices.Equal(list[:len(manual)], manual) {
		return fmt.Errorf("the manual entries %v did not survive: the portal now has %v", manual, list)
	}
	u, ok, err := d.stack.Store.GetUser(ctx, aliceID)
	if err != nil || !ok || !slices.Equal(u.Entries, res.Entries) {
		return fmt.Errorf("DynamoDB holds %+v (found %v, %v), want Alice with %q", u, ok, err, res.Entries)
	}
	fmt.Fprintln(d.out, "\n✓ Alice's addresses were added; the manual entries (one admins-only) are still there, unchanged.")
	return nil
}

// printAllowlist prints the portal's allowlist and returns it.
func printAllowlist(w io.Writer, p *devportal.Portal) []ipguard.Restriction {
	list, enable := p.Restrictions()
	var rows [][]string
	for i, r := range list {
		origin := "onboarded (Alice)"
		if slices.Contains(manual, r) || handAdded[r] {
			origin = "added by hand"
		}
		admins := ""
		if r.ForAdmin {
			admins = "admins only"
		}
		rows = append(rows, []string{strconv.Itoa(i + 1), r.IP, admins, origin})
	}
	table(w, []string{"#", "IP", "applies to", "origin"}, rows)
	fmt.Fprintf(w, "  (restrictions enabled: %v)\n", enable)
	return list
}

// login is one scripted login and what the audit should make of it.
type login struct {
	ago      time.Duration
	userID   string
	user     string
	login    string
	action   int
	ip       string
	expected string
}

func (d *demo) stepLogins(ctx context.Context) error {
	step(d.out, 2, "Logins happen on the portal")
	now := time.Now()
	script := []login{
		{270 * time.Second, aliceID, "Alice Smith", aliceEmail, loginSuccess, "203.0.113.10", "allowed (her single address)"},
		{240 * time.Second, aliceID, "Alice Smith", aliceEmail, loginSuccess, "198.51.100.22", "allowed (inside her range)"},
		{210 * time.Second, aliceID, "Alice Smith", aliceEmail, loginSuccess, "10.20.30.5", "allowed (inside her block)"},
		{180 * time.Second, aliceID, "Alice Smith", aliceEmail, loginSuccess, "192.0.2.77", "ALERT: not in her allowlist"},
		{150 * time.Second, bobID, "Bob Jones", "bob.jones@example.com", loginSuccess, "203.0.113.50", "ALERT: Bob was never onboarded"},
	}
	for i := range 6 {
		expected := "part of a burst"
		if i == 0 {
			expected = "ALERT: 6 failed logins, one address"
		}
		script = append(script, login{2*time.Minute - time.Duration(i)*10*time.Second, guestID, "Guest", "admin@example.com", loginFail, "203.0.113.200", expected})
	}
	var evs []devportal.LoginEvent
	for _, l := range script {
		evs = append(evs, devportal.LoginEvent{Date: now.Add(-l.ago), UserID: l.userID, User: l.user, Login: l.login,
			ActionID: l.action, IP: l.ip, Browser: "Firefox 133", Platform: "Windows 10", Country: "Example", City: "Example City"})
	}
	ids := d.stack.Portal.AddLoginEvents(evs...)

	zone := time.FixedZone(offset(portalTZ), int(portalTZ/time.Second))
	var rows [][]string
	for i, l := range script {
		who := l.user
		if who == "" {
			who = "(no such user) " + l.login
		}
		action := "login"
		if l.action == loginFail {
			action = "failed login"
		}
		at := evs[i].Date.Truncate(time.Second)
		rows = append(rows, []string{strconv.FormatInt(ids[i], 10), at.In(zone).Format("15:04:05 -07:00"), at.UTC().Format("15:04:05Z"), who, action, l.ip, l.expected})
	}
	table(d.out, []string{"id", "portal time", "UTC", "who", "action", "IP", "what the audit should say"}, rows)

	raw, err := d.rawEventDate(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(d.out, "\nThe portal's API writes dates in its own zone (%s), e.g. the newest event's date is %q;\nthe audit turns every date into an instant before comparing.\n", offset(portalTZ), raw)
	return nil
}

// rawEventDate returns the date of the newest login event exactly as the
// portal's API writes it.
func (d *demo) rawEventDate(ctx context.Context) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.stack.PortalURL+"/api/2.0/security/audit/login/last", nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+d.stack.APIKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("read the portal's login events: %w", err)
	}
	defer resp.Body.Close()
	var env struct {
		Response []struct {
			Date string `json:"date"`
		} `json:"response"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil || resp.StatusCode != http.StatusOK || len(env.Response) == 0 {
		return "", fmt.Errorf("read the portal's login events: HTTP %d, %d events, %v", resp.StatusCode, len(env.Response), err)
	}
	return env.Response[0].Date, nil
}

func (d *demo) stepAudit(ctx context.Context) (int, error) {
	step(d.out, 3, "The scheduled audit runs (ENFORCEMENT_MODE=report, the default)")
	res, err := d.runAudit(ctx, d.audit)
	if err != nil {
		return 0, err
	}
	// One message per severity: the high one (the violation) and the medium
	// one (the burst). The unknown user's login is a finding, counted and
	// recorded, told in the daily digest (UNKNOWN_USER_POLICY=digest, the
	// default), not in a message of its own.
	pubs := d.stack.Published()
	if len(pubs) != 2 {
		return 0, fmt.Errorf("the audit published %d SNS messages, want 2 (one per severity found)", len(pubs))
	}
	emails := ""
	for i, p := range pubs {
		fmt.Fprintf(d.out, "\nMessage %d of %d — what an e-mail subscriber of the topic receives:\n", i+1, len(pubs))
		box(d.out, "Subject: "+p.Subject+"\n\n"+p.Email)
		fmt.Fprintf(d.out, "\nWhat an SMS subscriber receives (%d characters):\n", len(p.SMS))
		box(d.out, p.SMS)
		emails += p.Email
	}

	mail, err := d.stack.Mail(ctx, 300*time.Millisecond)
	if err != nil {
		return 0, err
	}
	if len(mail) != len(pubs) {
		return 0, fmt.Errorf("the SQS mailbox received %d messages, want the %d JSON alerts", len(mail), len(pubs))
	}
	var events []audit.Finding
	bytes := 0
	for _, m := range mail {
		var payload audit.Payload
		if err := json.Unmarshal([]byte(m.Message), &payload); err != nil {
			return 0, fmt.Errorf("the mailbox message is not the JSON alert: %w", err)
		}
		events = append(events, payload.Events...)
		bytes += len(m.Message)
	}
	var eventIDs int
	for _, f := range events {
		eventIDs += max(len(f.EventIDs), 1)
	}
	fmt.Fprintf(d.out, "\nThe SQS mailbox (any other subscriber) received the JSON bodies: %d findings covering %d login events, %d bytes.\n",
		len(events), eventIDs, bytes)

	checks := []struct {
		ok   bool
		what string
	}{
		{res.Counts[audit.KindIPNotAllowed] >= 1, "at least 1 login from a non-allowlisted IP"},
		{res.Counts[audit.KindUnknownUser] == 1, "exactly 1 login by an unknown user"},
		{res.Counts[audit.KindFailedLoginBurst] == 1, "exactly 1 failed-login burst"},
		{res.AlertsPublished == len(pubs) && res.AlertsToDigest == digested(res.MessageIDs), "every SNS message counted in the result, and the batch the digest took (\"digest:<day>\") apart"},
		{res.Responses[audit.OutcomeWouldEnd] == res.Counts[audit.KindIPNotAllowed] && res.SessionEnded == 0, "every violation reported as would_end, no session ended"},
		{strings.Contains(emails, "would have ended (report mode)"), "the e-mail to say what would have been done"},
		{len(d.stack.Portal.Logouts()) == 0, "no logout call in report mode"},
		{len(events) == res.Counts[audit.KindIPNotAllowed]+res.Counts[audit.KindUnverifiableIP]+res.Counts[audit.KindFailedLoginBurst], "every finding but the unknown user's in the JSON alerts"},
		{!strings.Contains(emails, "no allowlist"), "the unknown user's login left to the daily digest (UNKNOWN_USER_POLICY=digest)"},
	}
	for _, c := range checks {
		if !c.ok {
			return 0, fmt.Errorf("want %s; the audit returned %s", c.what, jsonText(res))
		}
	}
	fmt.Fprintln(d.out, "\n✓ The violation (high) and the burst (medium) were alerted; the allowed logins stayed quiet.")
	fmt.Fprintln(d.out, "✓ The unknown user's login was found and counted; the daily digest lists such people (UNKNOWN_USER_POLICY=digest).")
	fmt.Fprintln(d.out, "✓ Report mode: the e-mail says the violating session would have been ended; the portal was not asked to end anything.")
	if err := d.whereFindingsWent(ctx, res); err != nil {
		return 0, err
	}
	return len(pubs), nil
}

func (d *demo) stepAuditAgain(ctx context.Context, before int) error {
	step(d.out, 4, "The audit runs again: nothing is sent twice")
	nextSecond() // the next scheduled run comes later; a second is enough to move the window
	res, err := d.runAudit(ctx, d.audit)
	if err != nil {
		return err
	}
	published := len(d.stack.Published()) - before
	mail, err := d.stack.Mail(ctx, 300*time.Millisecond)
	if err != nil {
		return err
	}
	fmt.Fprintf(d.out, "\nSNS messages published by this run: %d; new messages in the mailbox: %d.\n", published, len(mail))
	if published != 0 || len(mail) != 0 || res.AlertsPublished != 0 {
		return fmt.Errorf("the second run published %d messages (mailbox got %d), want none", published, len(mail))
	}
	if res.AlreadyAlerted == 0 {
		return fmt.Errorf("the second run saw no already-alerted findings: %s", jsonText(res))
	}
	fmt.Fprintf(d.out, "✓ The window overlapped the first run's, but its %d findings were already alerted.\n", res.AlreadyAlerted)
	return d.archiveHoldsEachLoginOnce(ctx)
}

// nextSecond waits for the next whole second, so that the next audit's
// window (whole seconds) has moved on.
func nextSecond() { time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second))) }

// auditAlertingOnce runs the audit fn on the next second and returns its
// result and the one SNS message it published (any other number is an
// error), after printing what an e-mail subscriber receives.
func (d *demo) auditAlertingOnce(ctx context.Context, fn *localaws.Emulator) (audit.Result, localdeploy.Published, error) {
	before := len(d.stack.Published())
	nextSecond()
	res, err := d.runAudit(ctx, fn)
	if err != nil {
		return res, localdeploy.Published{}, err
	}
	pubs := d.stack.Published()[before:]
	if len(pubs) != 1 {
		return res, localdeploy.Published{}, fmt.Errorf("the run published %d SNS messages, want 1", len(pubs))
	}
	p := pubs[0]
	fmt.Fprintln(d.out, "\nWhat an e-mail subscriber receives:")
	box(d.out, "Subject: "+p.Subject+"\n\n"+p.Email)
	return res, p, nil
}

// runAudit invokes AuditFunction with a scheduled event for now and prints
// the result.
func (d *demo) runAudit(ctx context.Context, fn *localaws.Emulator) (audit.Result, error) {
	now := time.Now().UTC()
	event := map[string]any{
		"version": "0", "id": fmt.Sprintf("demo-%d", now.UnixNano()), "detail-type": "Scheduled Event", "source": "aws.events",
		"account": "123456789012", "time": now.Format(time.RFC3339), "region": "us-east-1",
		"resources": []string{"arn:aws:events:us-east-1:123456789012:rule/docspace-ip-guard-AuditSchedule"}, "detail": map[string]any{},
	}
	fmt.Fprintf(d.out, "Invoke AuditFunction with an EventBridge Scheduled Event, time %s\n", now.Format(time.RFC3339))
	var res audit.Result
	if err := invoke(ctx, fn, event, &res); err != nil {
		return res, fmt.Errorf("audit: %w", err)
	}
	rows := [][]string{
		{"window", res.From + " – " + res.To},
		{"login events read / in the window", fmt.Sprintf("%d / %d", res.EventsFetched, res.EventsScanned)},
	}
	for _, k := range audit.Kinds {
		rows = append(rows, []string{"new findings: " + k, strconv.Itoa(res.Counts[k])})
	}
	rows = append(rows,
		[]string{"findings already alerted before", strconv.Itoa(res.AlreadyAlerted)},
		[]string{"SNS messages published", strconv.Itoa(res.AlertsPublished)},
		[]string{"batches left to the daily digest", strconv.Itoa(res.AlertsToDigest)},
		[]string{"responses (enforcement)", responsesText(res.Responses)},
		[]string{"sessions ended", strconv.Itoa(res.SessionEnded)},
		[]string{"checkpoint advanced", strconv.FormatBool(res.CheckpointAdvanced)},
	)
	for _, w := range res.Warnings {
		rows = append(rows, []string{"warning", w})
	}
	fmt.Fprintln(d.out, "Result:")
	table(d.out, nil, rows)
	return res, nil
}

func jsonText(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func (d *demo) stepEnforce(ctx context.Context) error {
	step(d.out, 5, "Alice logs in from outside her allowlist again; now ENFORCEMENT_MODE=end-session")
	// Another network than step 2's 192.0.2.77: a second miss from the same
	// network within EPISODE_HOURS would be one episode with it (ended all
	// the same, but told in the digest, not in a message of its own).
	ids := d.stack.Portal.AddLoginEvents(devportal.LoginEvent{Date: time.Now().Add(-30 * time.Second), UserID: aliceID, User: "Alice Smith",
		Login: aliceEmail, ActionID: loginSuccess, IP: "198.18.7.78", Browser: "Firefox 133", Platform: "Windows 10"})
	if sess, ok := d.stack.Portal.Session(ids[0]); !ok || !sess.Active {
		return fmt.Errorf("the new login's session is not active on the portal: %+v", sess)
	}
	fmt.Fprintf(d.out, "Login event %d (Alice, 198.18.7.78, another network than her first miss): its session is active on the portal.\n", ids[0])
	fmt.Fprintln(d.out, "The same AuditFunction, deployed with EnforcementMode=end-session:")
	res, p, err := d.auditAlertingOnce(ctx, d.enforcing)
	if err != nil {
		return err
	}
	fmt.Fprintf(d.out, "\nWhat an SMS subscriber receives (%d characters):\n", len(p.SMS))
	box(d.out, p.SMS)
	if _, err := d.stack.Mail(ctx, 300*time.Millisecond); err != nil {
		return err
	}

	sess, _ := d.stack.Portal.Session(ids[0])
	logouts := d.stack.Portal.Logouts()
	fmt.Fprintf(d.out, "\nThe portal now says session %d is active: %v (ended by %q); logout calls: %d.\n", ids[0], sess.Active, sess.EndedBy, len(logouts))
	switch {
	case res.SessionEnded != 1:
		return fmt.Errorf("the run ended %d sessions, want 1: %s", res.SessionEnded, jsonText(res))
	case sess.Active || len(logouts) != 1:
		return fmt.Errorf("the portal's session %d is still active or was ended more than once: %+v, %d logout calls", ids[0], sess, len(logouts))
	case !strings.Contains(p.Email, "Response: session ended ") || !strings.Contains(p.SMS, "session ended"):
		return errors.New("the alert does not say the session was ended")
	}
	fmt.Fprintln(d.out, "✓ The offending session was ended once, before the alert went out, and the e-mail and SMS say so.")
	return nil
}

func responsesText(n map[string]int) string {
	var parts []string
	for _, o := range audit.Outcomes {
		if n[o] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n[o], o))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// digested counts the batches the daily digest took (message id "digest:<day>").
func digested(ids []string) int {
	n := 0
	for _, id := range ids {
		if strings.HasPrefix(id, "digest:") {
			n++
		}
	}
	return n
}

// whereFindingsWent shows where the first audit's findings went besides the
// topic (README, "Where findings go"): one event per finding on the
// findings bus, delivered by the "everything" rule to a SIEM stand-in
// queue, and every login the run newly passed in the login archive.
func (d *demo) whereFindingsWent(ctx context.Context, res audit.Result) error {
	events, err := d.stack.BusEvents(ctx, 2*time.Second)
	if err != nil {
		return err
	}
	findings := 0
	for _, n := range res.Counts {
		findings += n
	}
	fmt.Fprintf(d.out, "\nWhere the findings went (topic, bus, archive):\n")
	rows := [][]string{{"SNS topic", fmt.Sprintf("%d messages, %d batch(es) to the daily digest (ids %s)", res.AlertsPublished, res.AlertsToDigest, strings.Join(res.MessageIDs, ", "))}}
	ids := map[string]bool{}
	for _, e := range events {
		id, _ := e.Detail["findingId"].(string)
		o, _ := e.Detail["ocsf"].(map[string]any)
		if e.Source != "docspace-ip-guard" || e.DetailType != "DocSpace IP Guard Finding" || id == "" || o["class_uid"] != 2004.0 {
			return fmt.Errorf("a bus event lacks the documented shape: %s", jsonText(e))
		}
		ids[id] = true
		rows = append(rows, []string{"", fmt.Sprintf("bus event: %s %s findingId %s", e.Detail["severity"], e.Detail["kind"], id)})
	}
	rows = append(rows[:1], append([][]string{{"findings bus", fmt.Sprintf("%s: %d events, rule %q -> queue %s", localdeploy.BusName, len(events), "everything but the test alert", localdeploy.SIEMQueueName)}}, rows[1:]...)...)
	objs, err := d.stack.Archive(ctx)
	if err != nil {
		return err
	}
	records := 0
	for _, o := range objs {
		records += len(o.Records)
		rows = append(rows, []string{"login archive", fmt.Sprintf("s3://%s/%s (%d OCSF Authentication records)", localdeploy.ArchiveBucket, o.Key, len(o.Records))})
	}
	table(d.out, nil, rows)
	if len(events) != findings || len(ids) != findings {
		return fmt.Errorf("the bus delivered %d events (%d distinct findingIds), want one per finding (%d)", len(events), len(ids), findings)
	}
	if len(objs) == 0 || records == 0 || records > res.EventsScanned {
		return fmt.Errorf("the archive holds %d objects with %d records; want the %d logins the run read, once", len(objs), records, res.EventsScanned)
	}
	fmt.Fprintf(d.out, "✓ Every finding is on the bus once with its stable findingId and OCSF detail; %d logins are in the archive.\n", records)
	return nil
}

// archiveHoldsEachLoginOnce checks, after a later run, that no login is in
// the archive twice (the overlap a run re-reads is not written again).
func (d *demo) archiveHoldsEachLoginOnce(ctx context.Context) error {
	objs, err := d.stack.Archive(ctx)
	if err != nil {
		return err
	}
	seen := map[string]int{}
	for _, o := range objs {
		for _, r := range o.Records {
			md, _ := r["metadata"].(map[string]any)
			uid, _ := md["uid"].(string)
			seen[uid]++
		}
	}
	for uid, n := range seen {
		if n != 1 {
			return fmt.Errorf("login %s is in the archive %d times", uid, n)
		}
	}
	fmt.Fprintf(d.out, "✓ The login archive holds %s logins, each once (the overlap was not written again).\n", strconv.Itoa(len(seen)))
	return nil
}
