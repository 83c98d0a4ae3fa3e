// Package allowlist parses, validates and canonicalises the IP allowlist
// entries of a user, and answers whether an address is allowed.
//
// An entry is one of:
//
//	203.0.113.10                 a single IPv4 or IPv6 address
//	10.20.0.0/24                 a CIDR block (host bits must be zero)
//	198.51.100.0-198.51.100.255  an inclusive range, both ends of one family, first ≤ last
//
// Canonical text is netip's: dotted IPv4, RFC 5952 IPv6 (lowercase,
// compressed). IPv4-mapped IPv6 (::ffff:a.b.c.d) is unmapped to IPv4. A /32
// (IPv4) or /128 (IPv6) block and a range whose ends are equal are single
// addresses. Zoned addresses (fe80::1%eth0) are never valid.
//
// An IPv6 block or range that reaches into the IPv4-mapped space
// ::ffff:0:0/96 without lying inside it (::/80, ::/32, ::1-::1:0:0:0) is
// rejected: a login from an IPv4 address is compared as IPv4, so the mapped
// part of such an entry would name addresses that never match. Write the
// IPv4 part as IPv4 entries.
package allowlist

import (
	"fmt"
	"math/big"
	"net/netip"
	"strconv"
	"strings"

	"go4.org/netipx"
)

// Kind says how an entry was written.
type Kind int

const (
	Single Kind = iota // one address
	CIDR               // a prefix block
	Range              // an inclusive a-b range
)

// Entry is one validated allowlist entry. The zero Entry is invalid.
type Entry struct {
	kind   Kind
	rng    netipx.IPRange
	prefix netip.Prefix // for CIDR only
}

// Limits bound what an entry and a list may be. The zero value means
// DefaultLimits.
type Limits struct {
	// MinPrefixV4 is the shortest IPv4 prefix accepted (default 8): a block
	// or range larger than a /MinPrefixV4 is rejected as over-broad.
	MinPrefixV4 int
	// MinPrefixV6 is the same for IPv6 (default 32).
	MinPrefixV6 int
	// MaxEntries is the most entries one request may carry (default 100).
	MaxEntries int
}

// DefaultLimits are the limits used when none are configured.
var DefaultLimits = Limits{MinPrefixV4: 8, MinPrefixV6: 32, MaxEntries: 100}

func (l Limits) orDefault() Limits {
	if l.MinPrefixV4 <= 0 {
		l.MinPrefixV4 = DefaultLimits.MinPrefixV4
	}
	if l.MinPrefixV6 <= 0 {
		l.MinPrefixV6 = DefaultLimits.MinPrefixV6
	}
	if l.MaxEntries <= 0 {
		l.MaxEntries = DefaultLimits.MaxEntries
	}
	return l
}

// Kind reports how the entry was written (after canonicalisation).
func (e Entry) Kind() Kind { return e.kind }

// IPRange returns the inclusive range of addresses the entry covers.
func (e Entry) IPRange() netipx.IPRange { return e.rng }

// String returns the canonical text of the entry.
func (e Entry) String() string {
	switch e.kind {
	case Single:
		return e.rng.From().String()
	case CIDR:
		return e.prefix.String()
	default:
		return e.rng.From().String() + "-" + e.rng.To().String()
	}
}

// NumAddresses returns how many addresses the entry covers.
func (e Entry) NumAddresses() *big.Int { return rangeSize(e.rng) }

// Expand returns every address of the entry in ascending order when it covers
// at most max addresses; otherwise it returns nil and false.
func (e Entry) Expand(max int) ([]netip.Addr, bool) {
	if max < 1 || e.NumAddresses().Cmp(big.NewInt(int64(max))) > 0 {
		return nil, false
	}
	out := make([]netip.Addr, 0, int(e.NumAddresses().Int64()))
	for a := e.rng.From(); ; a = a.Next() {
		out = append(out, a)
		if a == e.rng.To() {
			break
		}
	}
	return out, true
}

// ParseEntry parses and validates one entry (surrounding white space is
// ignored). Its error says what is wrong with the text, in words for a person;
// callers add the field name.
func ParseEntry(s string, lim Limits) (Entry, error) {
	lim = lim.orDefault()
	s = strings.TrimSpace(s)
	var e Entry
	var err error
	switch {
	case s == "":
		return Entry{}, fmt.Errorf("is empty")
	case strings.Contains(s, "%"):
		return Entry{}, fmt.Errorf("is a zoned address; zones are not allowed")
	case strings.Contains(s, "/"):
		e, err = parseCIDR(s)
	case strings.Contains(s, "-"):
		e, err = parseRange(s)
	default:
		var a netip.Addr
		a, err = parseAddr(s)
		e = single(a)
	}
	if err != nil {
		return Entry{}, err
	}
	if err := checkBreadth(e, lim); err != nil {
		return Entry{}, err
	}
	if err := checkMapped(e); err != nil {
		return Entry{}, err
	}
	return e, nil
}

// mapped is the IPv4-mapped IPv6 space; addresses in it are unmapped to IPv4
// wherever the allowlist meets them.
var mapped = netipx.RangeOfPrefix(netip.MustParsePrefix("::ffff:0:0/96"))

// checkMapped rejects an IPv6 entry that overlaps the IPv4-mapped space:
// its mapped part would never match (see the package comment).
func checkMapped(e Entry) error {
	if !e.rng.From().Is6() || !e.rng.Overlaps(mapped) {
		return nil
	}
	return fmt.Errorf("reaches into the IPv4-mapped space ::ffff:0:0/96, whose addresses are compared as IPv4 and would never match; list the IPv6 part without it and the IPv4 part as IPv4")
}

func single(a netip.Addr) Entry {
	return Entry{kind: Single, rng: netipx.IPRangeFrom(a, a)}
}

// parseAddr parses one address, rejecting zones and unmapping IPv4-mapped IPv6.
func parseAddr(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("is not an IPv4 or IPv6 address, CIDR block or a-b range")
	}
	if a.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("is a zoned address; zones are not allowed")
	}
	return a.Unmap(), nil
}

func parseCIDR(s string) (Entry, error) {
	addrText, bitsText, _ := strings.Cut(s, "/")
	a, err := netip.ParseAddr(addrText)
	if err != nil {
		return Entry{}, fmt.Errorf("is not a valid CIDR block: %q is not an address", addrText)
	}
	if a.Zone() != "" {
		return Entry{}, fmt.Errorf("is a zoned address; zones are not allowed")
	}
	bits, err := strconv.Atoi(bitsText)
	if err != nil || bitsText == "" || bitsText[0] == '+' || bitsText[0] == '-' {
		return Entry{}, fmt.Errorf("is not a valid CIDR block: prefix length %q is not a number", bitsText)
	}
	if bits > a.BitLen() {
		return Entry{}, fmt.Errorf("has prefix length /%d, out of range for %s (0-%d)", bits, family(a), a.BitLen())
	}
	if a.Is4In6() {
		if bits < 96 {
			return Entry{}, fmt.Errorf("is an IPv4-mapped block shorter than /96, which would mix address families")
		}
		a, bits = a.Unmap(), bits-96
	}
	p := netip.PrefixFrom(a, bits)
	if p.Masked() != p {
		return Entry{}, fmt.Errorf("has host bits set; did you mean %s?", p.Masked())
	}
	if bits == a.BitLen() {
		return single(a), nil
	}
	return Entry{kind: CIDR, rng: netipx.RangeOfPrefix(p), prefix: p}, nil
}

func parseRange(s string) (Entry, error) {
	fromText, toText, _ := strings.Cut(s, "-")
	if strings.Contains(toText, "-") {
		return Entry{}, fmt.Errorf("is not a valid range: use first-last with one '-'")
	}
	from, err := parseAddr(strings.TrimSpace(fromText))
	if err != nil {
		return Entry{}, fmt.Errorf("is not a valid range: %q %v", strings.TrimSpace(fromText), err)
	}
	to, err := parseAddr(strings.TrimSpace(toText))
	if err != nil {
		return Entry{}, fmt.Errorf("is not a valid range: %q %v", strings.TrimSpace(toText), err)
	}
	if from.Is4() != to.Is4() {
		return Entry{}, fmt.Errorf("mixes IPv4 and IPv6 in one range")
	}
	if to.Less(from) {
		return Entry{}, fmt.Errorf("is reversed: %s is after %s", from, to)
	}
	if from == to {
		return single(from), nil
	}
	return Entry{kind: Range, rng: netipx.IPRangeFrom(from, to)}, nil
}

// checkBreadth rejects entries wider than the limits allow; the whole address
// space (/0) is rejected whatever the limits.
func checkBreadth(e Entry, lim Limits) error {
	a := e.rng.From()
	minPrefix := lim.MinPrefixV6
	if a.Is4() {
		minPrefix = lim.MinPrefixV4
	}
	if minPrefix < 1 {
		minPrefix = 1
	}
	max := new(big.Int).Lsh(big.NewInt(1), uint(a.BitLen()-minPrefix))
	if e.NumAddresses().Cmp(max) > 0 {
		if e.kind == CIDR {
			return fmt.Errorf("is over-broad: %s blocks must be /%d or longer", family(a), minPrefix)
		}
		return fmt.Errorf("is over-broad: covers %s addresses, more than a /%d (%s)", e.NumAddresses(), minPrefix, max)
	}
	return nil
}

func rangeSize(r netipx.IPRange) *big.Int {
	from := new(big.Int).SetBytes(r.From().AsSlice())
	to := new(big.Int).SetBytes(r.To().AsSlice())
	n := to.Sub(to, from)
	return n.Add(n, big.NewInt(1))
}

func family(a netip.Addr) string {
	if a.Is4() {
		return "IPv4"
	}
	return "IPv6"
}
