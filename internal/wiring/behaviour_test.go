package wiring

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"ipguard/internal/audit"
	"ipguard/internal/behaviour"
	"ipguard/internal/emf"
	"ipguard/internal/status"
)

// Behaviour findings per kind are EMF properties of the run's line, not
// metrics (WHERE-ISSUES-MEET §6); the status record counts them too.
func TestBehaviourCountsAreProperties(t *testing.T) {
	res := audit.Result{Counts: map[string]int{audit.KindIPNotAllowed: 1, audit.KindImpossibleTravel: 2, audit.KindNewDevice: 3},
		Severities: map[string]int{audit.SeverityHigh: 3, audit.SeverityLow: 3}, NotMessaged: 3,
		BehaviourReasons: map[string]int{audit.KindImpossibleTravel: 2, audit.KindNewDevice: 3}}
	ms := auditMetrics(res, nil, time.Second, 1, 0)
	var buf bytes.Buffer
	mw := metricsWriter{out: &buf, namespace: "DocSpaceIPGuard", now: time.Now}
	hook := &behaviour.Detector{}
	mw.write(context.Background(), ms, behaviourProps(res, hook, map[string]any{}))
	if err := emf.Validate(bytes.TrimSpace(buf.Bytes())); err != nil {
		t.Fatal(err)
	}
	var line map[string]any
	_ = json.Unmarshal(buf.Bytes(), &line)
	for _, m := range ms {
		if k, ok := strings.CutPrefix(m.Name, PrefixFindingsKind); (ok && audit.IsBehaviourKind(k)) || m.Name == PrefixFindingsSeverity+audit.SeverityLow {
			t.Errorf("%s is a metric; it should be a property", m.Name)
		}
	}
	bf, _ := line["behaviourFindings"].(map[string]any)
	if bf[audit.KindImpossibleTravel] != 2.0 || bf[audit.KindNewDevice] != 3.0 || bf[audit.KindNewCountry] != 0.0 || line["notMessaged"] != 3.0 || line[MetricFindings] != 6.0 {
		t.Errorf("line %v", line)
	}
	var rec status.LastRun
	behaviourLastRun(res, hook)(&rec)
	if rec.Behaviour.ImpossibleTravel != 2 || rec.Behaviour.NewDevice != 3 || rec.NoGeoIP {
		t.Errorf("status record %+v", rec)
	}
}
