package audit

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Clean makes untrusted text (anything the portal returned, or an e-mail
// from onboarding) safe to put in front of a person: control characters,
// line and paragraph breaks, bidi overrides and isolates and invisible
// format characters (zero-width spaces and joiners, soft hyphen, BOM,
// variation selectors, tag characters) are shown escaped as \uXXXX, so a
// forged login name stays on one line and reads left to right; the result
// has at most max runes (cut with "…"). The JSON alert keeps the raw text.
func Clean(s string, max int) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case !unsafeRune(r):
			b.WriteRune(r)
		case r <= 0xFFFF:
			fmt.Fprintf(&b, `\u%04X`, r)
		default:
			fmt.Fprintf(&b, `\U%08X`, r)
		}
	}
	out := b.String()
	if max > 0 && utf8.RuneCountInString(out) > max {
		out = string([]rune(out)[:max-1]) + "…"
	}
	return out
}

// unsafeRune reports whether r must not reach a person as is.
func unsafeRune(r rune) bool {
	switch {
	case r == ' ':
		return false
	case unicode.IsControl(r): // C0, DEL, C1 (incl. \n, \r, \t, NEL)
		return true
	case unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp, unicode.Co, unicode.Cs):
		// format (bidi marks and overrides, zero-width, soft hyphen, BOM,
		// tags), line/paragraph separators, private use
		return true
	case unicode.Is(unicode.Variation_Selector, r), r == 0x115F, r == 0x1160, r == 0x3164, r == 0xFFA0:
		return true // invisible fillers
	case unicode.IsSpace(r):
		return true // odd spaces (NBSP, ideographic, ...) look like a space but are not one
	case r == utf8.RuneError:
		return true
	}
	return false
}
