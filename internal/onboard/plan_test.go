package onboard

import (
	"strings"
	"testing"

	"ipguard/internal/allowlist"
	"ipguard/internal/ipguard"
)

func entries(t *testing.T, raw ...string) []allowlist.Entry {
	t.Helper()
	es, err := allowlist.ParseList("allowedIps", raw, allowlist.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	return es
}

func ips(rs []ipguard.Restriction) string {
	var s []string
	for _, r := range rs {
		if r.ForAdmin {
			s = append(s, r.IP+"!")
		} else {
			s = append(s, r.IP)
		}
	}
	return strings.Join(s, ",")
}

func TestPlanPortal(t *testing.T) {
	manual := []ipguard.Restriction{{IP: "192.0.2.1", ForAdmin: true}, {IP: "2001:DB8::9"}}
	tests := []struct {
		name        string
		current     []ipguard.Restriction
		enabled     bool
		entries     []string
		rules       Rules
		wantList    string
		wantAdded   string
		wantEnable  bool
		wantPut     bool
		wantSkipped int
	}{
		{"adds singles after manual entries, keeps flags", manual, false, []string{"203.0.113.10"}, Rules{MaxRangeAddresses: 256, Enforce: true},
			"192.0.2.1!,2001:DB8::9,203.0.113.10", "203.0.113.10", true, true, 0},
		{"expands a small range", nil, true, []string{"198.51.100.1-198.51.100.3"}, Rules{MaxRangeAddresses: 256, Enforce: true},
			"198.51.100.1,198.51.100.2,198.51.100.3", "198.51.100.1,198.51.100.2,198.51.100.3", true, true, 0},
		{"does not push a large block", []ipguard.Restriction{{IP: "192.0.2.1"}}, true, []string{"10.0.0.0/16"}, Rules{MaxRangeAddresses: 256, Enforce: true},
			"192.0.2.1", "", true, false, 1},
		{"no duplicate of an existing address", []ipguard.Restriction{{IP: "203.0.113.10", ForAdmin: true}}, true, []string{"203.0.113.10"}, Rules{MaxRangeAddresses: 256, Enforce: true},
			"203.0.113.10!", "", true, false, 0},
		{"non-canonical existing text is kept and canonical added", []ipguard.Restriction{{IP: "2001:DB8::9"}}, true, []string{"2001:db8::9"}, Rules{MaxRangeAddresses: 256, Enforce: true},
			"2001:DB8::9,2001:db8::9", "2001:db8::9", true, true, 0},
		{"breakglass always present", nil, false, []string{"203.0.113.10"}, Rules{MaxRangeAddresses: 256, Enforce: true, Breakglass: []string{"192.0.2.50"}},
			"203.0.113.10,192.0.2.50", "203.0.113.10,192.0.2.50", true, true, 0},
		{"not enforcing keeps the current setting", nil, false, []string{"203.0.113.10"}, Rules{MaxRangeAddresses: 256},
			"203.0.113.10", "203.0.113.10", false, true, 0},
		{"enforcing turns restrictions on even without additions", []ipguard.Restriction{{IP: "203.0.113.10"}}, false, []string{"203.0.113.10"}, Rules{MaxRangeAddresses: 256, Enforce: true},
			"203.0.113.10", "", true, true, 0},
		{"empty list is never sent with enable", nil, false, []string{"10.0.0.0/16"}, Rules{MaxRangeAddresses: 256, Enforce: true},
			"", "", false, false, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := PlanPortal(tt.current, tt.enabled, entries(t, tt.entries...), tt.rules)
			if got := ips(p.List); got != tt.wantList {
				t.Errorf("list = %s, want %s", got, tt.wantList)
			}
			if got := strings.Join(p.Added, ","); got != tt.wantAdded {
				t.Errorf("added = %s, want %s", got, tt.wantAdded)
			}
			if p.Enable != tt.wantEnable || p.Put != tt.wantPut {
				t.Errorf("enable/put = %v/%v, want %v/%v", p.Enable, p.Put, tt.wantEnable, tt.wantPut)
			}
			if len(p.NotPushed) != tt.wantSkipped {
				t.Errorf("notPushed = %+v", p.NotPushed)
			}
			for _, np := range p.NotPushed {
				if !strings.Contains(np.Reason, "PORTAL_MAX_RANGE_ADDRESSES") {
					t.Errorf("reason %q does not say why", np.Reason)
				}
			}
			if p.Put && p.Enable && len(p.List) == 0 {
				t.Error("plans an empty list with enable=true")
			}
		})
	}
}
