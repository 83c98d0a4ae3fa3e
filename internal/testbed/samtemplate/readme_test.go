package samtemplate

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func readme(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(filepath.Dir(templatePath(t)), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// An operator paged at 3 a.m. finds every alarm of the template in the
// runbook (#14 §6), and the runbook names no alarm the template lacks.
func TestReadmeHasARunbookForEveryAlarm(t *testing.T) {
	text := readme(t)
	a := strings.Index(text, "## Alarms: what each means and what to do")
	b := strings.Index(text, "## Emergency stops")
	if a < 0 || b < a {
		t.Fatal(`README.md has no "Alarms: what each means and what to do" section before "Emergency stops"`)
	}
	runbook := text[a:b]
	alarms := resourcesOfType(t, "AWS::CloudWatch::Alarm")
	for id := range alarms {
		if !regexp.MustCompile(`(?m)^### .*\b` + id + `\b`).MatchString(runbook) {
			t.Errorf("the runbook has no heading for %s", id)
		}
	}
	for _, m := range regexp.MustCompile(`\b[A-Z][A-Za-z]+Alarm\b`).FindAllString(runbook, -1) {
		if _, ok := alarms[m]; !ok {
			t.Errorf("the runbook names %s, which the template does not have", m)
		}
	}
}

// The README's alarm line is computed from the template: $0.10 per metric
// each alarm reads (a metric-math alarm pays for each of its metrics).
func TestReadmePricesTheAlarmsOfTheTemplate(t *testing.T) {
	n := 0
	for id, a := range resourcesOfType(t, "AWS::CloudWatch::Alarm") {
		switch resource(t, id)["Condition"] {
		case "AuditOnCron", "HasChat":
			continue // not at the defaults (a rate() schedule, chat off); the README prices it on its own
		}
		n += len(metricsOf(a))
	}
	row := regexp.MustCompile(`(?m)^\| CloudWatch alarms \|.*\| \$([0-9.]+) \|$`).FindStringSubmatch(readme(t))
	if row == nil {
		t.Fatal(`README.md "Cost" has no "| CloudWatch alarms | ... | $x |" row`)
	}
	if want := fmt.Sprintf("%.2f", float64(n)*0.10); row[1] != want {
		t.Errorf("README prices the alarms at $%s, the template's %d alarm metrics cost $%s", row[1], n, want)
	}
}

// slug is GitHub's anchor for a heading: lower case, punctuation other than
// "-" and "_" dropped, spaces as "-".
func slug(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(heading) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			b.WriteRune(r)
		}
	}
	return b.String()
}

// The README opens with its contents (#14 §7), and every entry leads to a
// heading; every top-level section is listed.
func TestReadmeContentsLeadToItsSections(t *testing.T) {
	text := readme(t)
	a := strings.Index(text, "## Contents")
	if a < 0 || a > 1000 {
		t.Fatal("README.md does not open with a ## Contents section")
	}
	b := a + strings.Index(text[a+3:], "\n## ") + 3
	anchors := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^#{2,3} (.+)$`).FindAllStringSubmatch(text, -1) {
		anchors[slug(m[1])] = true
	}
	listed := map[string]bool{}
	for _, m := range regexp.MustCompile(`\]\(#([^)]+)\)`).FindAllStringSubmatch(text[a:b], -1) {
		listed[m[1]] = true
		if !anchors[m[1]] {
			t.Errorf("contents link #%s leads to no heading", m[1])
		}
	}
	for _, m := range regexp.MustCompile(`(?m)^## (.+)$`).FindAllStringSubmatch(text, -1) {
		if s := slug(m[1]); s != "contents" && !listed[s] {
			t.Errorf("section %q is not in the contents", m[1])
		}
	}
}

// The cost table's total at the defaults is the sum of its rows (#14 §5: the
// figure a reader trusts is computed, not kept by hand), and stays within the
// $3 a month the issue sets for a 500-user portal.
func TestReadmeCostTotalAddsUp(t *testing.T) {
	text := readme(t)
	start := strings.Index(text, "| item | how it is computed | per month |")
	end := strings.Index(text, "| **Total at the defaults** |")
	if start < 0 || end < start {
		t.Fatal(`README.md "Cost" has no item table ending in a "Total at the defaults" row`)
	}
	cell := regexp.MustCompile(`\| \$([0-9]+\.[0-9]{2}) \|$`)
	sum := 0
	for _, line := range strings.Split(text[start:end], "\n") {
		if m := cell.FindStringSubmatch(strings.TrimSpace(line)); m != nil {
			var d, c int
			fmt.Sscanf(m[1], "%d.%d", &d, &c)
			sum += d*100 + c
		}
	}
	total := regexp.MustCompile(`\| \*\*Total at the defaults\*\* \| \| \*\*\$([0-9]+)\.([0-9]{2})\*\* \|`).FindStringSubmatch(text[end:])
	if total == nil {
		t.Fatal("no total figure")
	}
	var d, c int
	fmt.Sscanf(total[1]+" "+total[2], "%d %d", &d, &c)
	if d*100+c != sum {
		t.Errorf("README's total is $%d.%02d, its rows add up to $%d.%02d", d, c, sum/100, sum%100)
	}
	if sum > 300 {
		t.Errorf("the defaults cost $%d.%02d a month, more than $3", sum/100, sum%100)
	}
}

// Teardown tells what stays (#14 §6): every resource the stack keeps when it
// is deleted (DeletionPolicy Retain or RetainExceptOnCreate) is named in the
// README's Teardown section by its logical id, with how to remove it. The
// login archive's bucket holds every login (personal data) and outlives the
// stack: an operator must not learn that from the bill.
func TestReadmeTeardownNamesEveryRetainedResource(t *testing.T) {
	text := readme(t)
	a := strings.Index(text, "\n## Teardown")
	if a < 0 {
		t.Fatal(`README.md has no "## Teardown" section`)
	}
	section := text[a+1:]
	if b := strings.Index(section, "\n## "); b > 0 {
		section = section[:b]
	}
	retained := 0
	for id, r := range cfn(t)["Resources"].(map[string]any) {
		switch mapOf(r)["DeletionPolicy"] {
		case "Retain", "RetainExceptOnCreate":
			retained++
			if !regexp.MustCompile(`\b` + id + `\b`).MatchString(section) {
				t.Errorf("Teardown does not name %s, which the stack keeps when it is deleted", id)
			}
		}
	}
	if retained == 0 {
		t.Fatal("no retained resource found; the table is one")
	}
}

// Attack review (atkfix3): Teardown's sentence on a first deploy that fails
// and rolls back names what that rollback keeps: every resource whose
// DeletionPolicy is Retain (RetainExceptOnCreate ones are deleted with
// their failed creation). It said "only its table stays", but with
// ArchiveLogins=true the archive's bucket is kept too.
func TestReadmeNamesWhatAFailedFirstDeployKeeps(t *testing.T) {
	text := readme(t)
	a := strings.Index(text, "A *first* deploy that fails")
	if a < 0 {
		t.Fatal(`README.md Teardown has no sentence "A *first* deploy that fails ..."`)
	}
	para := text[a:]
	if b := strings.Index(para, "\n\n"); b > 0 {
		para = para[:b]
	}
	kept := 0
	for id, r := range cfn(t)["Resources"].(map[string]any) {
		if mapOf(r)["DeletionPolicy"] != "Retain" {
			continue
		}
		kept++
		if !regexp.MustCompile(`\b` + id + `\b`).MatchString(para) {
			t.Errorf("a failed first deploy keeps %s (DeletionPolicy Retain), but Teardown's sentence on it does not name it: %q", id, para)
		}
	}
	if kept == 0 {
		t.Fatal("no resource with DeletionPolicy Retain found; the table is one")
	}
}
