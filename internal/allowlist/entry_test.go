package allowlist

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"ipguard/internal/ipguard"
)

func TestParseEntryCanonicalises(t *testing.T) {
	tests := []struct {
		in   string
		want string
		kind Kind
	}{
		{"203.0.113.10", "203.0.113.10", Single},
		{"  203.0.113.10\t", "203.0.113.10", Single},
		{"2001:DB8:0:0::1", "2001:db8::1", Single},
		{"::ffff:203.0.113.10", "203.0.113.10", Single},
		{"10.20.0.0/24", "10.20.0.0/24", CIDR},
		{"10.20.0.7/32", "10.20.0.7", Single},
		{"2001:db8::/48", "2001:db8::/48", CIDR},
		{"2001:db8::5/128", "2001:db8::5", Single},
		{"::ffff:10.0.0.0/120", "10.0.0.0/24", CIDR},
		{"198.51.100.0-198.51.100.255", "198.51.100.0-198.51.100.255", Range},
		{"198.51.100.0 - 198.51.100.9", "198.51.100.0-198.51.100.9", Range},
		{"198.51.100.4-198.51.100.4", "198.51.100.4", Single},
		{"::ffff:198.51.100.1-198.51.100.2", "198.51.100.1-198.51.100.2", Range},
		{"2001:db8::1-2001:db8::ff", "2001:db8::1-2001:db8::ff", Range},
		{"10.0.0.0/8", "10.0.0.0/8", CIDR},
		{"2001:db8::/32", "2001:db8::/32", CIDR},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			e, err := ParseEntry(tt.in, Limits{})
			if err != nil {
				t.Fatalf("ParseEntry(%q): %v", tt.in, err)
			}
			if got := e.String(); got != tt.want {
				t.Errorf("canonical = %q, want %q", got, tt.want)
			}
			if e.Kind() != tt.kind {
				t.Errorf("kind = %v, want %v", e.Kind(), tt.kind)
			}
		})
	}
}

func TestParseEntryRejects(t *testing.T) {
	tests := []struct {
		in      string
		wantErr string
	}{
		{"", "empty"},
		{"   ", "empty"},
		{"not-an-ip", "not a valid range"},
		{"hello", "is not an IPv4 or IPv6"},
		{"300.1.1.1", "is not an IPv4 or IPv6"},
		{"10.1", "is not an IPv4 or IPv6"},
		{"fe80::1%eth0", "zoned"},
		{"fe80::1%eth0/64", "zoned"},
		{"10.0.0.0/33", "out of range"},
		{"2001:db8::/129", "out of range"},
		{"10.0.0.0/-1", "not a number"},
		{"10.0.0.0/", "not a number"},
		{"10.0.0.0/x", "not a number"},
		{"10.0.0.1/24", "host bits set; did you mean 10.0.0.0/24"},
		{"0.0.0.0/0", "over-broad"},
		{"::/0", "over-broad"},
		{"10.0.0.0/7", "over-broad"},
		{"2001:db8::/31", "over-broad"},
		{"0.0.0.0-255.255.255.255", "over-broad"},
		{"10.0.0.0-11.0.0.0", "over-broad"},
		{"10.0.0.9-10.0.0.1", "reversed"},
		{"10.0.0.1-2001:db8::1", "mixes IPv4 and IPv6"},
		{"10.0.0.1-10.0.0.2-10.0.0.3", "one '-'"},
		{"10.0.0.1-", "not a valid range"},
		{"::ffff:10.0.0.0/90", "mix address families"},
		// found by FuzzParseEntry (issue #22): IPv6 blocks and ranges reaching
		// into ::ffff:0:0/96, whose addresses never match (logins are unmapped)
		{"::/80", "IPv4-mapped space"},
		{"::/32", "IPv4-mapped space"},
		{"::ff00:0:0/88", "IPv4-mapped space"},
		{"::1-::1:0:0:0", "IPv4-mapped space"},
		{"::fffe:ffff:ffff-::1:0:0:0", "IPv4-mapped space"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			_, err := ParseEntry(tt.in, Limits{})
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("ParseEntry(%q) error = %v, want it to mention %q", tt.in, err, tt.wantErr)
			}
		})
	}
}

func TestParseEntryLimitsAreConfigurable(t *testing.T) {
	if _, err := ParseEntry("10.0.0.0/12", Limits{MinPrefixV4: 16}); err == nil {
		t.Error("a /12 passed a /16 minimum")
	}
	if _, err := ParseEntry("0.0.0.0/4", Limits{MinPrefixV4: 1}); err != nil {
		t.Errorf("a /4 failed a /1 minimum: %v", err)
	}
	if _, err := ParseEntry("0.0.0.0/0", Limits{MinPrefixV4: 1}); err == nil {
		t.Error("0.0.0.0/0 accepted")
	}
}

func TestParseListNamesFieldAndValue(t *testing.T) {
	_, err := ParseList("allowedIps", []string{"203.0.113.1", "10.0.0.1/24"}, Limits{})
	var e *ipguard.Error
	if !errors.As(err, &e) || e.Code != ipguard.EInvalid {
		t.Fatalf("err = %v, want an EInvalid ipguard.Error", err)
	}
	if e.Field != "allowedIps[1]" || e.Value != "10.0.0.1/24" {
		t.Errorf("field/value = %q/%q", e.Field, e.Value)
	}
	if !strings.Contains(err.Error(), `allowedIps[1] "10.0.0.1/24"`) {
		t.Errorf("message %q does not name field and value", err)
	}
}

func TestParseListMergesDuplicatesAndBoundsSize(t *testing.T) {
	got, err := ParseList("allowedIps", []string{"203.0.113.1", " 203.0.113.1 ", "::ffff:203.0.113.1", "10.0.0.0/24"}, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if s := strings.Join(Strings(got), ","); s != "203.0.113.1,10.0.0.0/24" {
		t.Errorf("merged = %s", s)
	}
	if _, err := ParseList("allowedIps", nil, Limits{}); err == nil {
		t.Error("empty list accepted")
	}
	many := make([]string, 101)
	for i := range many {
		many[i] = "203.0.113.1"
	}
	if _, err := ParseList("allowedIps", many, Limits{}); err == nil || !strings.Contains(err.Error(), "at most 100") {
		t.Errorf("101 entries: err = %v", err)
	}
	if _, err := ParseList("allowedIps", many[:100], Limits{}); err != nil {
		t.Errorf("100 entries: %v", err)
	}
}

func TestExpand(t *testing.T) {
	tests := []struct {
		in    string
		max   int
		n     int
		first string
		last  string
	}{
		{"203.0.113.7", 256, 1, "203.0.113.7", "203.0.113.7"},
		{"10.0.0.0/24", 256, 256, "10.0.0.0", "10.0.0.255"},
		{"10.0.0.0/23", 256, 0, "", ""},
		{"198.51.100.250-198.51.101.4", 256, 11, "198.51.100.250", "198.51.101.4"},
		{"2001:db8::/120", 256, 256, "2001:db8::", "2001:db8::ff"},
		{"2001:db8::/64", 256, 0, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			e, err := ParseEntry(tt.in, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			got, ok := e.Expand(tt.max)
			if tt.n == 0 {
				if ok {
					t.Fatalf("expanded %d addresses past max %d", len(got), tt.max)
				}
				return
			}
			if !ok || len(got) != tt.n || got[0].String() != tt.first || got[len(got)-1].String() != tt.last {
				t.Fatalf("Expand = %d addrs (ok=%v), want %d from %s to %s", len(got), ok, tt.n, tt.first, tt.last)
			}
		})
	}
}

func TestSetContains(t *testing.T) {
	entries, err := ParseList("allowedIps", []string{"203.0.113.10", "198.51.100.0-198.51.100.255", "10.20.0.0/24", "2001:db8::1", "2001:db8:1::/48"}, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	set := NewSet(entries)
	tests := []struct {
		ip   string
		want bool
	}{
		{"203.0.113.10", true},
		{"203.0.113.11", false},
		{"198.51.100.0", true},
		{"198.51.100.255", true},
		{"198.51.101.0", false},
		{"10.20.0.77", true},
		{"10.20.1.0", false},
		{"::ffff:10.20.0.5", true},
		{"2001:db8::1", true},
		{"2001:db8::2", false},
		{"2001:db8:1:ffff::9", true},
		{"fe80::1%eth0", false},
	}
	for _, tt := range tests {
		a, ok := ParseLoginIP(tt.ip)
		if !ok {
			t.Fatalf("ParseLoginIP(%q) failed", tt.ip)
		}
		if got := set.Contains(a); got != tt.want {
			t.Errorf("Contains(%s) = %v, want %v", tt.ip, got, tt.want)
		}
	}
	if (Set{}).Contains(netip.MustParseAddr("1.2.3.4")) {
		t.Error("zero Set contains an address")
	}
}

func TestParseLoginIPRejectsTruncatedIPv6(t *testing.T) {
	for _, s := range []string{"2001", "", "fe80", "unknown"} {
		if _, ok := ParseLoginIP(s); ok {
			t.Errorf("ParseLoginIP(%q) ok", s)
		}
	}
}
