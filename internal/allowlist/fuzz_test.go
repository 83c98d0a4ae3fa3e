package allowlist

import (
	"errors"
	"fmt"
	"hash/fnv"
	"math/big"
	"net/netip"
	"strings"
	"testing"

	"ipguard/internal/ipguard"
)

// An accepted entry means exactly the addresses it says: its canonical text
// parses to the same range, the set built from it holds both ends and a
// middle address (in every spelling the portal may send) and neither
// neighbour, and an IPv6 entry never reaches into the IPv4-mapped space,
// whose addresses logins are compared as IPv4. A rejected entry says why.
func FuzzParseEntry(f *testing.F) {
	for _, s := range []string{"203.0.113.10", "10.20.0.0/24", "2001:db8::/48", "198.51.100.0-198.51.100.255",
		"::ffff:10.0.0.0/120", "::ffff:198.51.100.1-198.51.100.2", "2001:db8::1-2001:db8::ff", "fe80::1%eth0",
		"0.0.0.0/0", " 10.0.0.0/8 ", "::1", "255.255.255.255", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ff00/120"} {
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, s string, loose bool) {
		lim := Limits{}
		if loose {
			lim = Limits{MinPrefixV4: 1, MinPrefixV6: 1}
		}
		e, err := ParseEntry(s, lim)
		if err != nil {
			if err.Error() == "" {
				t.Fatalf("ParseEntry(%q): an empty error", s)
			}
			return
		}
		r := e.IPRange()
		if !r.IsValid() || r.From().Zone() != "" || r.From().Is4In6() || r.To().Is4In6() {
			t.Fatalf("ParseEntry(%q) = %v: invalid, zoned or mapped range %v", s, e, r)
		}
		canon := e.String()
		again, err := ParseEntry(canon, lim)
		if err != nil || again.IPRange() != r || again.String() != canon || again.Kind() != e.Kind() {
			t.Fatalf("ParseEntry(%q) = %q, which parses to %v (%q, %v)", s, canon, again.IPRange(), again.String(), err)
		}
		if r.From().Is6() && r.Overlaps(mapped) {
			t.Fatalf("ParseEntry(%q) = %q reaches into ::ffff:0:0/96", s, canon)
		}
		set := NewSet([]Entry{e})
		for _, a := range []netip.Addr{r.From(), r.To(), middle(r.From(), r.To(), s)} {
			for _, spelled := range spellings(a) {
				login, ok := ParseLoginIP(spelled)
				if !ok || !set.Contains(login) {
					t.Fatalf("entry %q: a login from %q (%v) does not match", canon, spelled, login)
				}
			}
		}
		if p := r.From().Prev(); p.IsValid() && set.Contains(p) {
			t.Fatalf("entry %q holds its lower neighbour %v", canon, p)
		}
		if n := r.To().Next(); n.IsValid() && set.Contains(n) {
			t.Fatalf("entry %q holds its upper neighbour %v", canon, n)
		}
	})
}

// A list merges duplicates by canonical form, keeping the first position,
// or is rejected with an InvalidInput naming the first bad entry "field[i]"
// and its value.
func FuzzParseList(f *testing.F) {
	f.Add("203.0.113.10\n203.0.113.10/32\n::ffff:203.0.113.10")
	f.Add("10.0.0.0/24\n10.0.0.0-10.0.0.255\n2001:db8::1")
	f.Add("10.0.0.1\n2001:db8::/32")
	f.Add("")
	f.Fuzz(func(t *testing.T, text string) {
		raw := strings.Split(text, "\n")
		got, err := ParseList("allowedIps", raw, Limits{MaxEntries: 20})
		var bad int = -1
		var want []string
		seen := map[string]bool{}
		for i, s := range raw {
			e, err := ParseEntry(s, Limits{})
			if err != nil {
				bad = i
				break
			}
			if !seen[e.String()] {
				seen[e.String()] = true
				want = append(want, e.String())
			}
		}
		switch {
		case len(raw) > 20:
			if ipguard.ErrorCode(err) != ipguard.EInvalid {
				t.Fatalf("%d entries accepted (or %v)", len(raw), err)
			}
		case bad >= 0:
			var ie *ipguard.Error
			if !errors.As(err, &ie) || ie.Code != ipguard.EInvalid || ie.Field != fmt.Sprintf("allowedIps[%d]", bad) {
				t.Fatalf("entry %d (%q) is bad: got %v, want InvalidInput naming allowedIps[%d]", bad, raw[bad], err, bad)
			}
		case err != nil:
			t.Fatalf("ParseList(%q): %v", raw, err)
		default:
			if g := strings.Join(Strings(got), " "); g != strings.Join(want, " ") {
				t.Fatalf("ParseList(%q) = %s, want %s", raw, g, strings.Join(want, " "))
			}
		}
	})
}

// spellings are the ways the portal may write a login from a.
func spellings(a netip.Addr) []string {
	s := a.String()
	if a.Is4() {
		m := "::ffff:" + s
		return []string{s, " " + s, m, "[" + m + "]", netip.AddrFrom16(a.As16()).String()}
	}
	return []string{s, "[" + s + "]", s + "%eth0", "[" + s + "%3]", netip.AddrFrom16(a.As16()).StringExpanded()}
}

// middle is an address between from and to (inclusive) picked by seed.
func middle(from, to netip.Addr, seed string) netip.Addr {
	lo := new(big.Int).SetBytes(from.AsSlice())
	n := new(big.Int).Sub(new(big.Int).SetBytes(to.AsSlice()), lo)
	h := fnv.New64a()
	h.Write([]byte(seed))
	off := new(big.Int).Mod(new(big.Int).SetUint64(h.Sum64()), n.Add(n, big.NewInt(1)))
	b := lo.Add(lo, off).FillBytes(make([]byte, from.BitLen()/8))
	a, _ := netip.AddrFromSlice(b)
	return a
}
