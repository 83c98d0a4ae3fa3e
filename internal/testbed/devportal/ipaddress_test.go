package devportal

import "testing"

func TestDotnetTryParseIP(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{"203.0.113.10", true},
		{"0.0.0.0", true},
		{"255.255.255.255", true},
		{"10.1", true},         // legacy: 10.0.0.1
		{"10.1.2", true},       // legacy: 10.1.0.2
		{"167772161", true},    // legacy: one 32-bit number
		{"0x0A.0.0.1", true},   // hex part
		{"012.0.0.1", true},    // octal part
		{"10.0.65535", true},   // last of three parts fills 16 bits
		{"2001:db8::25", true}, // IPv6
		{"2001:DB8::25", true}, // upper case
		{"::", true},           // unspecified
		{"::ffff:203.0.113.10", true},
		{"[::1]", true},
		{"[::1]:80", true},
		{"fe80::1%2", true},
		{"fe80::1%eth0", true},
		{"", false},
		{"256.0.0.1", false},
		{"10.0.65536", false},
		{"1.2.3.4.5", false},
		{"1..2", false},
		{"1.2.3.", false},
		{"08.0.0.1", false}, // 8 is not octal
		{"0x", false},
		{"10.0.0.0/24", false},
		{"2001:db8::/32", false},
		{"10.0.0.1-10.0.0.50", false},
		{" 10.0.0.1", false},
		{"10.0.0.1 ", false},
		{"portal.example.com", false},
		{"2001:db8::25::1", false},
		{"[::1", false},
		{"[::1]x", false},
		{"[::1]:", false},
		{"fe80::1%", false},
		{"1.2.3.4:80", false}, // has ':' so it is an IPv6 attempt
	} {
		if got := dotnetTryParseIP(tc.in); got != tc.want {
			t.Errorf("dotnetTryParseIP(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}
