package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"ipguard/internal/audit"
	"ipguard/internal/testbed/localdeploy"
)

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
	rows := [][]string{{"SNS topic", fmt.Sprintf("%d messages (ids %s)", res.AlertsPublished, strings.Join(res.MessageIDs, ", "))}}
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
