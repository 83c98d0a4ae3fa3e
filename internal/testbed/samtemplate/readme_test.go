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
	for _, a := range resourcesOfType(t, "AWS::CloudWatch::Alarm") {
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
