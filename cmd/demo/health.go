package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"ipguard/internal/emf"
	"ipguard/internal/keywatch"
	"ipguard/internal/status"
)

// stepKeyExpiring makes the portal's API key expire in six days and shows
// the alert the operator receives, once.
func (d *demo) stepKeyExpiring(ctx context.Context, n int) error {
	step(d.out, n, "The DocSpace API key expires in six days")
	k, ok := d.stack.Portal.Key(d.stack.APIKey)
	if !ok {
		return fmt.Errorf("the dev portal does not know the demo's key")
	}
	expires := time.Now().Add(6*24*time.Hour + time.Hour).UTC().Truncate(time.Second)
	k.Name, k.ExpiresAt = "ipguard demo", &expires
	if err := d.stack.Portal.PutKey(k); err != nil {
		return err
	}
	fmt.Fprintf(d.out, "The portal's key %q (ending in %s) now expires at %s.\n", k.Name, k.KeyPostfix, expires.Format(time.RFC3339))
	var keyAlerts []string
	for run := 1; run <= 2; run++ {
		before := len(d.stack.Published())
		nextSecond()
		if _, err := d.runAudit(ctx, d.audit); err != nil {
			return err
		}
		for _, p := range d.stack.Published()[before:] {
			var body struct{ Kind string }
			if json.Unmarshal([]byte(p.Default), &body) == nil && body.Kind == keywatch.Kind {
				keyAlerts = append(keyAlerts, p.Subject)
				fmt.Fprintln(d.out, "\nWhat the operator receives by e-mail:")
				box(d.out, "Subject: "+p.Subject+"\n\n"+p.Email)
				fmt.Fprintf(d.out, "\nand by SMS (%d characters):\n", len(p.SMS))
				box(d.out, p.SMS)
			}
		}
	}
	if _, err := d.stack.Mail(ctx, 300*time.Millisecond); err != nil {
		return err
	}
	if len(keyAlerts) != 1 {
		return fmt.Errorf("two runs past the 7-day threshold sent %d key alerts, want 1", len(keyAlerts))
	}
	fmt.Fprintln(d.out, "✓ Two runs past the 7-day threshold sent one api_key_expiring alert; the next comes 1 day before, as high.")
	return nil
}

// stepTestAlert proves delivery: {"action": "test-alert"} sends one message,
// marked as a test, to every subscriber of the alert topic.
func (d *demo) stepTestAlert(ctx context.Context, n int) error {
	step(d.out, n, `After a deploy: prove that alerts reach people with {"action": "test-alert"}`)
	fmt.Fprintln(d.out, `aws lambda invoke --function-name "$AUDIT_FUNCTION" --payload '{"action": "test-alert"}' test.json`)
	var res map[string]any
	if err := invoke(ctx, d.audit, map[string]any{"action": "test-alert"}, &res); err != nil {
		return err
	}
	pretty, _ := json.MarshalIndent(res, "", "  ")
	box(d.out, string(pretty))
	mail, err := d.stack.Mail(ctx, 300*time.Millisecond)
	if err != nil {
		return err
	}
	if len(mail) != 1 || mail[0].Attributes["test"] != "true" {
		return fmt.Errorf("the mailbox received %d messages, want one marked test=true: %+v", len(mail), mail)
	}
	fmt.Fprintln(d.out, "\nWhat every subscriber receives (its JSON body; e-mail and SMS get their own text):")
	box(d.out, "Subject: "+mail[0].Subject+"\n\n"+mail[0].Message)
	fmt.Fprintln(d.out, "✓ One message, marked as a test (\"test\": true, attribute test=true); no alert record, no finding.")
	return nil
}

// stepStatus asks the audit function for its status and shows the last
// metrics line it wrote.
func (d *demo) stepStatus(ctx context.Context, n int) error {
	step(d.out, n, `What an operator asks: {"action": "status"}, and what CloudWatch gets`)
	fmt.Fprintln(d.out, `aws lambda invoke --function-name "$AUDIT_FUNCTION" --payload '{"action": "status"}' status.json`)
	var st status.Report
	if err := invoke(ctx, d.audit, map[string]any{"action": "status"}, &st); err != nil {
		return err
	}
	pretty, _ := json.MarshalIndent(st, "", "  ")
	box(d.out, string(pretty))
	if st.LastRun == nil || st.LastRun.Outcome != "succeeded" || st.APIKey == nil || st.APIKey.Name != "ipguard demo" || st.UsersStored == nil {
		return fmt.Errorf("the status lacks the last run, the key or the users: %s", pretty)
	}
	line, err := d.lastMetricsLine("[audit] ")
	if err != nil {
		return err
	}
	fmt.Fprintln(d.out, "\nThe metrics line (CloudWatch Embedded Metric Format) of the audit's last run, from its log:")
	fmt.Fprintln(d.out, line)
	return nil
}

// lastMetricsLine is the last EMF line of a run (not of a status or a test
// alert, which write one too) the function with this log prefix wrote, checked against
// the specification.
func (d *demo) lastMetricsLine(prefix string) (string, error) {
	var last string
	for try := 0; try < 20 && last == ""; try++ {
		time.Sleep(50 * time.Millisecond) // the emulator copies the function's output asynchronously
		b, err := os.ReadFile(d.logPath)
		if err != nil {
			return "", err
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			if l, ok := strings.CutPrefix(sc.Text(), prefix); ok && strings.Contains(l, `"FunctionName"`) && !strings.Contains(l, `"action":"status"`) && !strings.Contains(l, `"action":"test-alert"`) {
				last = l
			}
		}
	}
	if last == "" {
		return "", fmt.Errorf("no metrics line in %s", d.logPath)
	}
	if !strings.Contains(last, `"_aws"`) {
		return last, nil // a line whose counts are all fields declares no metric
	}
	if err := emf.Validate([]byte(last)); err != nil {
		return "", fmt.Errorf("the metrics line is not valid EMF: %v", err)
	}
	return last, nil
}
