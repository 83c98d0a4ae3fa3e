package audit

import (
	"strings"
	"testing"
	"time"
)

// No finding is ever too large for one message (README "Alert format"):
// absurdly long values from the portal (a country, a browser, a place) are
// cut wherever the finding carries them, also in its reasons, explanation
// and episode, trip or familiar place, never the run failed for it. Before,
// only the plain fields were cut: a login from a new country whose name
// was 300 KB made "does not fit in one SNS message" an error of every run,
// which so never got past that piece (attack review of the audit path).
func TestAFindingWithHugePortalValuesFitsOneMessage(t *testing.T) {
	big := strings.Repeat("Ä", 150_000) // 300 KB
	base := func() Finding {
		return Finding{EventID: 7, Kind: KindNewCountry, Severity: SeverityMedium, UserID: "u1", IP: "198.51.100.7",
			Date: "2026-11-25T09:00:00Z", Reason: "successful login unlike the user's normal: new_country"}
	}
	tests := []struct {
		name string
		f    func() Finding
	}{
		{"a new country's name in the reason and the explanation", func() Finding {
			f := base()
			f.Country = big
			f.Reasons = []Reason{{Kind: KindNewCountry, Severity: SeverityMedium, Text: "first login from " + big}}
			f.Explanation = "first login from " + big + ". Normally from Germany."
			return f
		}},
		{"a new device's name", func() Finding {
			f := base()
			f.Kind, f.Browser = KindNewDevice, big
			f.Reasons = []Reason{{Kind: KindNewDevice, Severity: SeverityLow, Text: "first login with " + big}}
			f.Explanation = "first login with " + big
			return f
		}},
		{"an episode's country, a familiar place and a trip", func() Finding {
			f := base()
			f.Kind, f.Severity = KindIPNotAllowed, SeverityHigh
			f.Episode = &Episode{Key: "u1|" + big[:1000], Country: big, First: f.Date, Count: 1, Hours: 24}
			f.Familiar = &Familiar{Network: "198.51.100.0/24", Place: big, Device: big}
			f.Trip = &ProbableTrip{Place: big, Device: big, Since: big}
			return f
		}},
		{"a spray's addresses", func() Finding {
			f := base()
			f.Kind, f.Severity, f.EventID = KindPasswordSpray, SeverityHigh, 0
			f.IPs = []string{big, big}
			return f
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bs, err := RenderAlerts(Meta{Portal: "https://portal.example", Window: Window{From: time.Unix(0, 0), To: time.Unix(300, 0)}}, []Finding{tt.f()}, MaxMessageBytes)
			if err != nil {
				t.Fatalf("RenderAlerts: %v; want the finding cut to fit", err)
			}
			for _, b := range bs {
				if n := size(b.Alert); n > MaxMessageBytes {
					t.Errorf("message of %d bytes; at most %d", n, MaxMessageBytes)
				}
			}
		})
	}
}
