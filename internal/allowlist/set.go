package allowlist

import (
	"net/netip"
	"strings"

	"go4.org/netipx"
)

// Addr is an IP address as the allowlist compares it: unmapped, without zone.
type Addr = netip.Addr

func parseLoose(s string) (netip.Addr, error) {
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		s = s[1 : len(s)-1]
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, err
	}
	return a.WithZone("").Unmap(), nil
}

// Set answers whether an address is covered by any of a user's entries, with
// CIDR and range semantics. The zero Set contains nothing. A Set is immutable
// and safe for concurrent use.
type Set struct {
	s *netipx.IPSet
}

// NewSet builds the set of all addresses covered by entries.
func NewSet(entries []Entry) Set {
	var b netipx.IPSetBuilder
	for _, e := range entries {
		b.AddRange(e.rng)
	}
	s, _ := b.IPSet() // entries are valid by construction, so no error
	return Set{s: s}
}

// Contains reports whether a (unmapped, zone dropped) is in the set.
func (s Set) Contains(a netip.Addr) bool {
	if s.s == nil || !a.IsValid() {
		return false
	}
	return s.s.Contains(a.WithZone("").Unmap())
}

// Merged returns entries covering exactly the given prefixes, adjacent and
// overlapping ones merged: a CIDR block where a merged span is one prefix,
// else a first-last range (both are entries ParseEntry accepts). Invalid
// prefixes are skipped; the order is by address, IPv4 first.
func Merged(prefixes []netip.Prefix) []string {
	var b netipx.IPSetBuilder
	for _, p := range prefixes {
		if p.IsValid() {
			b.AddPrefix(p.Masked())
		}
	}
	s, err := b.IPSet()
	if err != nil {
		return nil
	}
	var out []string
	for _, r := range s.Ranges() {
		if p, ok := r.Prefix(); ok {
			out = append(out, p.String())
		} else {
			out = append(out, r.From().String()+"-"+r.To().String())
		}
	}
	return out
}
