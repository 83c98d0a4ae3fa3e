// Package emf writes metrics as CloudWatch Embedded Metric Format (EMF) log
// lines: one JSON object per line that CloudWatch Logs turns into metrics, so
// a Lambda function reports metrics without calling PutMetricData.
//
//	{"_aws": {"Timestamp": 1764062100000, "CloudWatchMetrics": [{"Namespace": "DocSpaceIPGuard",
//	   "Dimensions": [["FunctionName"]], "Metrics": [{"Name": "EventsScanned", "Unit": "Count"}]}]},
//	 "FunctionName": "ipguard-audit", "EventsScanned": 42, "requestId": "..."}
//
// Validate checks a line against the specification
// (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html).
package emf

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"time"
)

// Unit is a CloudWatch metric unit.
type Unit string

// The units this project uses.
const (
	Count        Unit = "Count"
	Seconds      Unit = "Seconds"
	Milliseconds Unit = "Milliseconds"
)

// units are all the units CloudWatch accepts.
var units = map[string]bool{
	"Seconds": true, "Microseconds": true, "Milliseconds": true, "Bytes": true, "Kilobytes": true,
	"Megabytes": true, "Gigabytes": true, "Terabytes": true, "Bits": true, "Kilobits": true,
	"Megabits": true, "Gigabits": true, "Terabits": true, "Percent": true, "Count": true,
	"Bytes/Second": true, "Kilobytes/Second": true, "Megabytes/Second": true, "Gigabytes/Second": true,
	"Terabytes/Second": true, "Bits/Second": true, "Kilobits/Second": true, "Megabits/Second": true,
	"Gigabits/Second": true, "Terabits/Second": true, "Count/Second": true, "None": true,
}

// Metric is one value of one metric.
type Metric struct {
	Name  string
	Unit  Unit
	Value float64
}

// Dimension is one dimension of every metric of a Line.
type Dimension struct{ Name, Value string }

// Limits of the specification.
const (
	MaxMetrics    = 100 // per directive
	MaxDimensions = 30  // per dimension set
)

// Line is one EMF log line.
type Line struct {
	Namespace  string
	Dimensions []Dimension
	Metrics    []Metric
	// Properties are extra members of the line (not metrics), e.g. the
	// request id; they must not reuse a metric's or a dimension's name.
	Properties map[string]any
	Time       time.Time
}

// Marshal returns the line as JSON (without the newline). Metrics beyond
// MaxMetrics go into further directives of the same line; a metric name
// given twice keeps its last value; NaN and infinite values are dropped.
// A line without metrics has no "_aws" member: a plain JSON log line of its
// properties and dimensions, which CloudWatch turns into no metric (EMF
// wants at least one per directive).
func (l Line) Marshal() ([]byte, error) {
	if l.Namespace == "" {
		return nil, fmt.Errorf("emf: namespace is empty")
	}
	if len(l.Dimensions) > MaxDimensions {
		return nil, fmt.Errorf("emf: %d dimensions, at most %d", len(l.Dimensions), MaxDimensions)
	}
	root := map[string]any{}
	for k, v := range l.Properties {
		root[k] = v
	}
	dimNames := []string{}
	for _, d := range l.Dimensions {
		root[d.Name] = d.Value
		dimNames = append(dimNames, d.Name)
	}
	type def struct {
		Name string `json:"Name"`
		Unit Unit   `json:"Unit,omitempty"`
	}
	var defs []def
	seen := map[string]int{}
	for _, m := range l.Metrics {
		if math.IsNaN(m.Value) || math.IsInf(m.Value, 0) || m.Name == "" {
			continue
		}
		if i, ok := seen[m.Name]; ok {
			defs[i].Unit = m.Unit
		} else {
			seen[m.Name] = len(defs)
			defs = append(defs, def{m.Name, m.Unit})
		}
		root[m.Name] = m.Value
	}
	type directive struct {
		Namespace  string     `json:"Namespace"`
		Dimensions [][]string `json:"Dimensions"`
		Metrics    []def      `json:"Metrics"`
	}
	if len(defs) == 0 {
		return json.Marshal(root)
	}
	var directives []directive
	for start := 0; start < len(defs) || start == 0; start += MaxMetrics {
		end := min(start+MaxMetrics, len(defs))
		directives = append(directives, directive{l.Namespace, [][]string{dimNames}, append([]def{}, defs[start:end]...)})
	}
	t := l.Time
	if t.IsZero() {
		t = time.Now()
	}
	root["_aws"] = map[string]any{"Timestamp": t.UnixMilli(), "CloudWatchMetrics": directives}
	return json.Marshal(root)
}

// Write writes the line and a newline to w in one call, so that it stays one
// log line.
func (l Line) Write(w io.Writer) error {
	b, err := l.Marshal()
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}
