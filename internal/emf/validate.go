package emf

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Validate checks that line is one valid EMF object: a root "_aws" member
// with a Timestamp (epoch milliseconds) and CloudWatchMetrics directives,
// each with a Namespace, Dimensions (sets of at most 30 names, each naming a
// root member whose value is a string) and Metrics (at most 100, each with a
// Name naming a root member whose value is a number or a list of at most 100
// numbers, and a valid Unit if any).
func Validate(line []byte) error {
	var root map[string]json.RawMessage
	if err := json.Unmarshal(line, &root); err != nil {
		return fmt.Errorf("not a JSON object: %v", err)
	}
	var aws struct {
		Timestamp         *json.Number      `json:"Timestamp"`
		CloudWatchMetrics []json.RawMessage `json:"CloudWatchMetrics"`
	}
	raw, ok := root["_aws"]
	if !ok {
		return fmt.Errorf("no _aws member")
	}
	if err := json.Unmarshal(raw, &aws); err != nil {
		return fmt.Errorf("_aws: %v", err)
	}
	if aws.Timestamp == nil {
		return fmt.Errorf("_aws.Timestamp is missing")
	}
	if ts, err := aws.Timestamp.Int64(); err != nil || ts <= 0 {
		return fmt.Errorf("_aws.Timestamp %s is not epoch milliseconds", aws.Timestamp)
	}
	if len(aws.CloudWatchMetrics) == 0 {
		return fmt.Errorf("_aws.CloudWatchMetrics is missing or empty")
	}
	for i, rd := range aws.CloudWatchMetrics {
		var d struct {
			Namespace  *string           `json:"Namespace"`
			Dimensions *[][]string       `json:"Dimensions"`
			Metrics    []json.RawMessage `json:"Metrics"`
		}
		if err := json.Unmarshal(rd, &d); err != nil {
			return fmt.Errorf("directive %d: %v", i, err)
		}
		// CloudWatch's limits (PutMetricData's Namespace, MetricName and Dimension).
		if d.Namespace == nil || *d.Namespace == "" || len(*d.Namespace) > 255 {
			return fmt.Errorf("directive %d: Namespace missing or not 1-255 characters", i)
		}
		if d.Dimensions == nil {
			return fmt.Errorf("directive %d: Dimensions is missing", i)
		}
		for _, set := range *d.Dimensions {
			if len(set) > MaxDimensions {
				return fmt.Errorf("directive %d: a dimension set has %d names, at most %d", i, len(set), MaxDimensions)
			}
			for _, name := range set {
				var s string
				if v, ok := root[name]; !ok || json.Unmarshal(v, &s) != nil {
					return fmt.Errorf("directive %d: dimension %q has no string member at the root", i, name)
				}
				if strings.TrimSpace(s) == "" || len(s) > 1024 {
					return fmt.Errorf("directive %d: dimension %q has the value %q; CloudWatch needs 1-1024 characters, not all blank", i, name, s)
				}
			}
		}
		if len(d.Metrics) == 0 || len(d.Metrics) > MaxMetrics {
			return fmt.Errorf("directive %d: %d metrics, want 1 to %d", i, len(d.Metrics), MaxMetrics)
		}
		for _, rm := range d.Metrics {
			var m struct {
				Name              *string `json:"Name"`
				Unit              *string `json:"Unit"`
				StorageResolution *int    `json:"StorageResolution"`
			}
			if err := json.Unmarshal(rm, &m); err != nil || m.Name == nil || *m.Name == "" || len(*m.Name) > 255 {
				return fmt.Errorf("directive %d: metric %s has no valid Name", i, rm)
			}
			if m.Unit != nil && !units[*m.Unit] {
				return fmt.Errorf("metric %s: unit %q is not a CloudWatch unit", *m.Name, *m.Unit)
			}
			if m.StorageResolution != nil && *m.StorageResolution != 1 && *m.StorageResolution != 60 {
				return fmt.Errorf("metric %s: StorageResolution %d is not 1 or 60", *m.Name, *m.StorageResolution)
			}
			v, ok := root[*m.Name]
			if !ok {
				return fmt.Errorf("metric %s has no value at the root", *m.Name)
			}
			var n float64
			var list []float64
			if json.Unmarshal(v, &n) != nil && (json.Unmarshal(v, &list) != nil || len(list) == 0 || len(list) > 100) {
				return fmt.Errorf("metric %s: value %s is not a number or a list of 1-100 numbers", *m.Name, v)
			}
		}
	}
	return nil
}
