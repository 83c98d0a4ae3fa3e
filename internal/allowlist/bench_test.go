package allowlist

import (
	"fmt"
	"net/netip"
	"testing"
)

// BenchmarkSetContains measures one allowlist lookup for a user with 100
// mixed entries, the most a request may carry.
func BenchmarkSetContains(b *testing.B) {
	raw := make([]string, 0, 100)
	for i := 0; i < 100; i++ {
		switch i % 3 {
		case 0:
			raw = append(raw, fmt.Sprintf("10.%d.0.0/24", i))
		case 1:
			raw = append(raw, fmt.Sprintf("172.16.%d.10-172.16.%d.200", i, i))
		default:
			raw = append(raw, fmt.Sprintf("2001:db8:%x::1", i))
		}
	}
	entries, err := ParseList("allowedIps", raw, Limits{})
	if err != nil {
		b.Fatal(err)
	}
	set := NewSet(entries)
	addr := netip.MustParseAddr("172.16.50.99")
	b.ReportAllocs()
	for b.Loop() {
		set.Contains(addr)
	}
}

// BenchmarkParseList measures validating a full 100-entry request.
func BenchmarkParseList(b *testing.B) {
	raw := make([]string, 100)
	for i := range raw {
		raw[i] = fmt.Sprintf("198.51.%d.0-198.51.%d.255", i, i)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseList("allowedIps", raw, Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}
