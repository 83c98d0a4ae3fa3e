package wiring

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"ipguard/internal/audit"
	"ipguard/internal/emf"
	"ipguard/internal/ipguard"
	"ipguard/internal/onboard"
)

// line writes metrics as one line and returns it decoded and the names its
// EMF directive declares as CloudWatch metrics.
func line(t *testing.T, metrics []emf.Metric) (fields map[string]any, metricNames []string) {
	t.Helper()
	var buf bytes.Buffer
	metricsWriter{out: &buf, namespace: "DocSpaceIPGuard", now: time.Now}.write(context.Background(), metrics, nil)
	if err := json.Unmarshal(buf.Bytes(), &fields); err != nil {
		t.Fatalf("line %s: %v", buf.String(), err)
	}
	if _, ok := fields["_aws"]; !ok {
		return fields, nil
	}
	if err := emf.Validate(bytes.TrimSpace(buf.Bytes())); err != nil {
		t.Fatalf("not valid EMF: %v\n%s", err, buf.String())
	}
	var doc struct {
		AWS struct {
			CloudWatchMetrics []struct {
				Dimensions [][]string
				Metrics    []struct{ Name string }
			}
		} `json:"_aws"`
	}
	_ = json.Unmarshal(buf.Bytes(), &doc)
	for _, d := range doc.AWS.CloudWatchMetrics {
		if !slices.Equal(d.Dimensions[0], []string{"FunctionName"}) || len(d.Dimensions) != 1 {
			t.Errorf("dimensions %v, want only [FunctionName]", d.Dimensions)
		}
		for _, m := range d.Metrics {
			metricNames = append(metricNames, m.Name)
		}
	}
	sort.Strings(metricNames)
	return fields, metricNames
}

// emitted are lines of every kind each function writes, from the real
// builders: what CloudWatch receives as metrics is what these declare.
func emittedLines() map[string][][]emf.Metric {
	invalid := ipguard.Invalid("from", "x", "must be an RFC3339 time")
	down := &ipguard.Error{Code: ipguard.EUnavailable, Err: errors.New("503")}
	lost := audit.Result{EventsScanned: 3, LoginsNotEvaluated: 1, Warnings: []string{"plan fallback: the portal answers ... so logins of this window may be missing"},
		Counts: map[string]int{audit.KindIPNotAllowed: 1}, Severities: map[string]int{audit.SeverityHigh: 1}}
	return map[string][][]emf.Metric{
		Audit: {
			auditMetrics(audit.Result{EventsScanned: 10}, nil, time.Second, 1, time.Minute),
			auditMetrics(lost, nil, time.Second, 1, time.Minute),
			auditMetrics(audit.Result{}, down, time.Second, 0, time.Hour),
			auditMetrics(audit.Result{}, invalid, time.Second, 0, -1),
			failureMetrics(down), // StartFailing
			{count(MetricBusUndelivered, 0)},
			{count(MetricBusUndelivered, 3)},
			{count(MetricChatUndelivered, 0)},
			{count(MetricChatUndelivered, 2)},
			{count(MetricAlertsUndelivered, 0)},
			{count(MetricAlertsUndelivered, 1)},
			subscriberMetrics(0),
			subscriberMetrics(3),
		},
		Onboard: {
			onboardMetrics(onboard.Result{PortalUpdated: true}, nil, time.Millisecond, 0),
			onboardMetrics(onboard.Result{}, invalid, time.Millisecond, 0),
			onboardMetrics(onboard.Result{}, down, time.Millisecond, 0),
			onboardMetrics(onboard.Result{Action: onboard.ActionSync}, nil, time.Millisecond, 0),
			onboardMetrics(onboard.Result{Action: onboard.ActionSync}, down, time.Millisecond, 0),
			onboardMetrics(onboard.Result{Action: onboard.ActionSync}, nil, time.Millisecond, 2),
			{count(MetricBusUndelivered, 0)},
			{count(MetricBusUndelivered, 1)},
			{count(MetricChatUndelivered, 0)},
			{count(MetricChatUndelivered, 1)},
		},
	}
}

// Only what an alarm reads is a CloudWatch metric; every other count stays
// a field of the line, and a NonZero name is declared only when above 0.
func TestOnlyDeclaredNamesBecomeMetrics(t *testing.T) {
	for fn, lines := range emittedLines() {
		for _, ms := range lines {
			fields, names := line(t, ms)
			for _, m := range ms {
				if _, ok := fields[m.Name]; !ok {
					t.Errorf("%s: %s is neither a metric nor a field of the line", fn, m.Name)
				}
				d, isDeclared := Declared[m.Name]
				want := isDeclared && slices.Contains(d.Functions, fn) && (!d.NonZero || m.Value > 0) && (!d.BelowOne || m.Value < 1)
				if got := slices.Contains(names, m.Name); got != want {
					t.Errorf("%s: %s = %v declared as a metric: %v, want %v", fn, m.Name, m.Value, got, want)
				}
			}
		}
	}
}

// Invalid input is the caller's to fix: Rejected, never Failures (the
// errors alarms subtract Rejected from AWS/Lambda Errors).
func TestInvalidInputIsRejectedNotAFailure(t *testing.T) {
	fields, names := line(t, failureMetrics(ipguard.Invalid("detail", "{", "must be JSON")))
	if fields[MetricFailures] != 0.0 || fields[MetricRejected] != 1.0 || !slices.Contains(names, MetricRejected) {
		t.Errorf("line %v (metrics %v), want Failures 0 and the metric Rejected 1", fields, names)
	}
}

// AWS/Lambda stamps Errors with the invocation's time; the line carries the
// same time, so that Errors minus Rejected falls into one alarm period.
func TestMetricsLineIsStampedWithTheInvocationStart(t *testing.T) {
	_, end := beginInvocation(context.Background())
	defer end()
	start := *invocationStart.Load()
	var buf bytes.Buffer
	later := func() time.Time { return start.Add(10 * time.Minute) }
	metricsWriter{out: &buf, namespace: "N", now: later}.write(context.Background(), failureMetrics(ipguard.Invalid("a", "b", "c")), nil)
	var doc struct {
		AWS struct{ Timestamp int64 } `json:"_aws"`
	}
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil || doc.AWS.Timestamp != start.UnixMilli() {
		t.Fatalf("Timestamp %d, want the invocation start %d (%v)", doc.AWS.Timestamp, start.UnixMilli(), err)
	}
}

// pricedRow is a row of the README's metric table: | `Name` | Function | ...
var pricedRow = regexp.MustCompile("^\\| `([A-Za-z.]+)` \\| (AuditFunction|OnboardFunction) \\|")

// The README prices exactly the metrics the code declares (name and
// function; the only dimension is FunctionName), and the code declares
// exactly Declared.
func TestReadmePricesEveryDeclaredMetric(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	a, b := strings.Index(text, "<!-- metrics -->"), strings.Index(text, "<!-- /metrics -->")
	if a < 0 || b < a {
		t.Fatal("README.md has no <!-- metrics --> ... <!-- /metrics --> table")
	}
	priced := map[string]bool{}
	for _, l := range strings.Split(text[a:b], "\n") {
		if m := pricedRow.FindStringSubmatch(l); m != nil {
			priced[m[1]+" "+m[2]] = true
		}
	}
	want := map[string]bool{}
	for name, d := range Declared {
		for _, fn := range d.Functions {
			want[name+" "+fn] = true
		}
	}
	// What the builders declare must be in Declared (ConfirmedSubscribers
	// comes from the scheduled run's subscription check, not from these).
	for fn, lines := range emittedLines() {
		for _, ms := range lines {
			_, names := line(t, ms)
			for _, n := range names {
				if !want[n+" "+fn] {
					t.Errorf("%s declares %s, which Declared does not list", fn, n)
				}
			}
		}
	}
	for k := range want {
		if !priced[k] {
			t.Errorf("README.md metric table lacks %s", k)
		}
	}
	for k := range priced {
		if !want[k] {
			t.Errorf("README.md prices %s, which the code does not declare", k)
		}
	}
}

// CoverageLost carries the audit's own count of logins it could not
// evaluate (#16): 0 exactly when the run lost no coverage.
func TestCoverageLostIsTheAuditsCount(t *testing.T) {
	for _, n := range []int{0, 1, 147} {
		m := map[string]float64{}
		for _, x := range auditMetrics(audit.Result{LoginsNotEvaluated: n}, nil, time.Second, 1, time.Minute) {
			m[x.Name] = x.Value
		}
		if m[MetricCoverageLost] != float64(n) {
			t.Errorf("LoginsNotEvaluated %d: CoverageLost = %v", n, m[MetricCoverageLost])
		}
	}
}
