package behaviourtest

import (
	"testing"
	"time"
)

// Cost is what one run of a behaviour benchmark took: wall time and CPU
// time (user and system; steadier than the wall time on a shared machine).
type Cost struct{ Took, CPU time.Duration }

// ReportCost reports the two runs of a behaviour benchmark, rules off and
// on (#17 §4): each run's wall and CPU seconds and the on/off ratios of
// both, and the behaviour findings of the run with the rules on (the sum of
// its audit.Result.BehaviourReasons).
func ReportCost(b *testing.B, off, on Cost, reasons map[string]int) {
	b.ReportMetric(off.Took.Seconds(), "off-s")
	b.ReportMetric(on.Took.Seconds(), "on-s")
	b.ReportMetric(on.Took.Seconds()/off.Took.Seconds(), "on/off")
	b.ReportMetric(off.CPU.Seconds(), "off-cpu-s")
	b.ReportMetric(on.CPU.Seconds(), "on-cpu-s")
	b.ReportMetric(on.CPU.Seconds()/off.CPU.Seconds(), "cpu-on/off")
	n := 0
	for _, v := range reasons {
		n += v
	}
	b.ReportMetric(float64(n), "behaviour-findings")
}
