package findingsbus_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"ipguard/internal/audit"
	"ipguard/internal/audit/audittest/auditalert"
	"ipguard/internal/findingsbus"
)

// Every finding the audit alerts reaches the bus, also one whose portal
// values are absurdly long: a detail too large for one entry even without
// its raw events has its long text cut (the finding, its kind, severity and
// findingId stay). Before, a display name of 60 KB (which the SNS message
// carries whole) made a finding of 300 KB on the bus (the OCSF record
// repeats the name), Events failed, and Publish failed after SNS had
// accepted the message: the audit sent that message again at every run and
// never got past the piece (attack review of the audit path).
func TestAFindingWithHugePortalValuesReachesTheBus(t *testing.T) {
	big := strings.Repeat("A", 60_000)
	tests := []struct {
		name string
		set  func(*audit.Finding)
	}{
		{"a display name", func(f *audit.Finding) { f.User = big + big }},
		{"a login name", func(f *audit.Finding) { f.Login = big + big }},
		{"a city", func(f *audit.Finding) { f.City = big + big }},
		{"a country", func(f *audit.Finding) { f.Country = big + big }},
		{"a new country in the reasons", func(f *audit.Finding) {
			f.Country = big
			f.Reasons = []audit.Reason{{Kind: audit.KindNewCountry, Severity: audit.SeverityMedium, Text: "first login from " + big}}
			f.Explanation = "first login from " + big
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := login(41, audit.KindIPNotAllowed, audit.SeverityHigh)
			f.Raw = nil
			tt.set(&f)
			a := auditalert.Render(t, now, f)

			es, err := findingsbus.Events(auditalert.Portal, a, now)
			if err != nil || len(es) != 1 {
				t.Fatalf("Events: %d entries, %v; want the finding's entry", len(es), err)
			}
			if n := es[0].Size(); n > findingsbus.MaxEntryBytes {
				t.Errorf("entry of %d bytes; at most %d", n, findingsbus.MaxEntryBytes)
			}
			d := detail(t, es[0])
			if d["kind"] != audit.KindIPNotAllowed || d["findingId"] != es[0].ID || d["eventId"] != json.Number("41") && d["eventId"] != float64(41) {
				t.Errorf("detail lost the finding: kind %v, findingId %v, eventId %v", d["kind"], d["findingId"], d["eventId"])
			}

			sns, eb := &fakeSNS{}, &fakeBus{}
			p := &findingsbus.Publisher{Next: sns, Bus: &findingsbus.Bus{API: eb, Name: "b", Outbox: &memOutbox{}}, Portal: auditalert.Portal}
			if _, err := p.Publish(context.Background(), a); err != nil || sns.n != 1 || len(eb.got) != 1 {
				t.Errorf("Publish = %v, %d messages, %d bus events; want the alert sent once and its finding on the bus", err, sns.n, len(eb.got))
			}
		})
	}
}
