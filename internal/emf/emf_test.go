package emf

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestLineIsValidEMF(t *testing.T) {
	at := time.Date(2026, 11, 25, 9, 15, 0, 0, time.UTC)
	l := Line{
		Namespace:  "DocSpaceIPGuard",
		Dimensions: []Dimension{{"FunctionName", "ipguard-audit"}},
		Metrics:    []Metric{{"EventsScanned", Count, 42}, {"RunSeconds", Seconds, 1.25}},
		Properties: map[string]any{"requestId": "req-1"},
		Time:       at,
	}
	var buf bytes.Buffer
	if err := l.Write(&buf); err != nil {
		t.Fatal(err)
	}
	if strings.Count(buf.String(), "\n") != 1 {
		t.Fatalf("not one line: %q", buf.String())
	}
	if err := Validate(bytes.TrimSpace(buf.Bytes())); err != nil {
		t.Fatalf("Validate: %v\n%s", err, buf.String())
	}
	var got map[string]any
	_ = json.Unmarshal(buf.Bytes(), &got)
	aws := got["_aws"].(map[string]any)
	if aws["Timestamp"] != float64(at.UnixMilli()) || got["EventsScanned"] != 42.0 || got["FunctionName"] != "ipguard-audit" || got["requestId"] != "req-1" {
		t.Errorf("line = %s", buf.String())
	}
	want := `[{"Dimensions":[["FunctionName"]],"Metrics":[{"Name":"EventsScanned","Unit":"Count"},{"Name":"RunSeconds","Unit":"Seconds"}],"Namespace":"DocSpaceIPGuard"}]`
	if b, _ := json.Marshal(aws["CloudWatchMetrics"]); string(b) != want {
		t.Errorf("CloudWatchMetrics = %s\nwant %s", b, want)
	}
}

func TestManyMetricsSplitIntoDirectives(t *testing.T) {
	l := Line{Namespace: "N", Time: time.Now()}
	for i := 0; i < 150; i++ {
		l.Metrics = append(l.Metrics, Metric{fmt.Sprintf("M%d", i), Count, 1})
	}
	b, err := l.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := Validate(b); err != nil {
		t.Fatal(err)
	}
}

func TestValidateRejects(t *testing.T) {
	tests := map[string]string{
		"not JSON":              `nope`,
		"no _aws":               `{"A":1}`,
		"no timestamp":          `{"_aws":{"CloudWatchMetrics":[{"Namespace":"N","Dimensions":[[]],"Metrics":[{"Name":"A"}]}]},"A":1}`,
		"no directives":         `{"_aws":{"Timestamp":1,"CloudWatchMetrics":[]}}`,
		"no namespace":          `{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Dimensions":[[]],"Metrics":[{"Name":"A"}]}]},"A":1}`,
		"no dimensions":         `{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"N","Metrics":[{"Name":"A"}]}]},"A":1}`,
		"dimension value":       `{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"N","Dimensions":[["F"]],"Metrics":[{"Name":"A"}]}]},"A":1}`,
		"missing value":         `{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"N","Dimensions":[[]],"Metrics":[{"Name":"A"}]}]}}`,
		"string value":          `{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"N","Dimensions":[[]],"Metrics":[{"Name":"A"}]}]},"A":"1"}`,
		"bad unit":              `{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"N","Dimensions":[[]],"Metrics":[{"Name":"A","Unit":"Apples"}]}]},"A":1}`,
		"empty dimension value": `{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"N","Dimensions":[["F"]],"Metrics":[{"Name":"A"}]}]},"A":1,"F":" "}`,
		"namespace over 255":    `{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"` + strings.Repeat("N", 256) + `","Dimensions":[[]],"Metrics":[{"Name":"A"}]}]},"A":1}`,
		"metric name over 255":  `{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"N","Dimensions":[[]],"Metrics":[{"Name":"` + strings.Repeat("A", 256) + `"}]}]},"` + strings.Repeat("A", 256) + `":1}`,
	}
	for name, line := range tests {
		if err := Validate([]byte(line)); err == nil {
			t.Errorf("%s: Validate accepted %s", name, line)
		}
	}
}

// A line whose counts are all properties is a plain JSON log line: no
// "_aws" member, so CloudWatch creates no metric (and bills none) for it.
func TestLineWithoutMetricsIsAPlainLogLine(t *testing.T) {
	b, err := Line{Namespace: "N", Dimensions: []Dimension{{"FunctionName", "f"}}, Properties: map[string]any{"Failures": 0}}.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if _, ok := m["_aws"]; ok || m["Failures"] != 0.0 || m["FunctionName"] != "f" {
		t.Fatalf("line = %s, want the properties and dimensions without _aws", b)
	}
}
