package audit

import (
	"context"
	"fmt"
	"testing"
	"time"

	"ipguard/internal/ipguard"
)

// A burst that goes on within SPRAY_WINDOW of its alert is told once
// (README "What the audit reports"), also when ALERT_RETENTION is shorter
// than SPRAY_WINDOW (both are the operator's to set: 1 hour and 24 hours
// are each allowed). The record of an alerted burst guards the window that
// counts it, so it must live at least as long as that window; before, it
// lived ALERT_RETENTION only and the same burst, still counted by the
// sliding window, was told again at the first failed login after the
// record expired (attack review of the audit path).
func TestABurstRecordOutlivesTheWindowThatCountsIt(t *testing.T) {
	var evs []ipguard.LoginEvent
	add := func(id int64, d time.Duration) {
		e := at(id, guest, 1013, "198.18.7.1", d)
		e.Login = fmt.Sprintf("someone%d@example.com", id%3)
		evs = append(evs, e)
	}
	for i := 0; i < 6; i++ { // the burst, threshold 5
		add(100+int64(i), 11*time.Minute+time.Duration(i)*10*time.Second)
	}
	add(200, 80*time.Minute)  // goes on, 70 minutes later
	add(201, 140*time.Minute) // and again
	s, _, _, _ := newAudit(evs...)
	s.Settings.BurstWindow = 3 * time.Hour
	s.Settings.AlertRetention = time.Hour
	var now time.Time
	s.Now = func() time.Time { return now }
	told := 0
	for d := 15 * time.Minute; d <= 3*time.Hour; d += 5 * time.Minute {
		now = t0.Add(d + 30*time.Second)
		res, err := s.Run(context.Background(), trig(d))
		if err != nil || !res.Complete {
			t.Fatalf("run to %s: %+v, %v", d, res, err)
		}
		told += res.Counts[KindFailedLoginBurst]
	}
	if told != 1 {
		t.Errorf("the burst was told %d times; want once: it went on within SPRAY_WINDOW (3h) of its alert", told)
	}
}
