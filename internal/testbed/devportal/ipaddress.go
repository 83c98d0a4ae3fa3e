package devportal

import (
	"net/netip"
	"strings"
)

// dotnetTryParseIP approximates .NET IPAddress.TryParse, the only check the
// portal applies to a stored "ip" (docspace-api.md §2.4):
//
//	contains ':'  → IPv6: optional "[addr]" with optional ":port", optional
//	                "%zone"; no '/' (CIDR) — checked with netip.ParseAddr
//	otherwise     → IPv4 in the legacy inet_aton form: 1–4 dot-separated
//	                parts, each decimal, 0x-hex or 0-octal, the last part
//	                filling the remaining bytes ("10.1", "0x7f.1", "167772161")
//
// Ranges ("a-b"), CIDR blocks and the empty string are rejected.
func dotnetTryParseIP(s string) bool {
	if s == "" {
		return false
	}
	if strings.Contains(s, ":") {
		return parseIPv6Lenient(s)
	}
	return parseIPv4NonCanonical(s)
}

func parseIPv6Lenient(s string) bool {
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return false
		}
		if port := s[end+1:]; port != "" {
			if port[0] != ':' || !allDigits(port[1:]) {
				return false
			}
		}
		s = s[1:end]
	}
	if i := strings.IndexByte(s, '%'); i >= 0 {
		if i == len(s)-1 {
			return false
		}
		s = s[:i]
	}
	if strings.ContainsAny(s, "/-[]") {
		return false
	}
	a, err := netip.ParseAddr(s)
	return err == nil && a.Is6()
}

func parseIPv4NonCanonical(s string) bool {
	parts := strings.Split(s, ".")
	if len(parts) > 4 {
		return false
	}
	for i, part := range parts {
		v, ok := parseIPv4Part(part)
		if !ok {
			return false
		}
		// Every part but the last is one byte; the last fills what is left.
		limit := uint64(0xFF)
		if i == len(parts)-1 {
			limit = 1<<(8*(5-len(parts))) - 1
		}
		if v > limit {
			return false
		}
	}
	return true
}

// parseIPv4Part parses one inet_aton part: "0x1F" hex, "017" octal, "17" decimal.
func parseIPv4Part(s string) (uint64, bool) {
	base := uint64(10)
	switch {
	case len(s) > 1 && (s[:2] == "0x" || s[:2] == "0X"):
		base, s = 16, s[2:]
	case len(s) > 1 && s[0] == '0':
		base, s = 8, s[1:]
	}
	if s == "" {
		return 0, false
	}
	var v uint64
	for _, c := range []byte(s) {
		var d uint64
		switch {
		case c >= '0' && c <= '9':
			d = uint64(c - '0')
		case base == 16 && c >= 'a' && c <= 'f':
			d = uint64(c-'a') + 10
		case base == 16 && c >= 'A' && c <= 'F':
			d = uint64(c-'A') + 10
		default:
			return 0, false
		}
		if d >= base {
			return 0, false
		}
		v = v*base + d
		if v > 0xFFFFFFFF {
			return 0, false
		}
	}
	return v, true
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
