// Package humantext is the one place where text bound for a person (alert
// subjects and bodies, warnings, error values, the status report) is made
// safe to read. Its input is attacker-chosen as often as not: a login name,
// a city or a browser string from the portal, an e-mail from an onboarding
// request, a server's error page.
//
// Four functions, one rule each:
//
//   - Line: one line of text. Every character that could hide, reorder or
//     break the text is shown escaped instead (\u202E; \xFF for a byte that is
//     not UTF-8), so a forged login name stays on one line, reads left to right
//     and shows what it is. Cut to a byte bound with "…". Words is the same
//     with white space folded to single spaces first.
//   - ASCII: printable ASCII for SMS; anything else becomes '?'. Cut with "...".
//   - Clip: valid UTF-8 cut to a byte bound with "…", nothing escaped: for
//     values a machine reads (the JSON body of an alert keeps the raw text).
//
// Every result is valid UTF-8, at most limit bytes long, and cut only between
// two characters (of the input, so never inside an escape). A limit below the
// ellipsis's length leaves no room to show a cut: the result is then the
// longest whole prefix that fits.
package humantext

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Ellipsis ends a cut Line or Clip; ASCIIEllipsis ends a cut ASCII.
const (
	Ellipsis      = "…"
	ASCIIEllipsis = "..."
)

// Line returns s as one line safe to show a person, at most limit bytes.
//
// Shown escaped (\uXXXX, \UXXXXXXXX; \xNN for a byte that is not UTF-8):
// control characters (C0, DEL, C1, so also tab, CR, LF and NEL), line and
// paragraph separators (U+2028, U+2029), format characters (bidi marks,
// embeddings, overrides and isolates, zero-width spaces and joiners, word
// joiner, soft hyphen, BOM, tag characters), variation selectors, invisible
// fillers and blanks, every space but the ASCII one (NBSP and its kin look
// like a space but are not one), private-use, noncharacter and unassigned
// code points, and U+FFFD itself. Everything else is kept as it is.
func Line(s string, limit int) string {
	out, _ := line(s, limit)
	return out
}

// line is Line, and whether it cut s.
func line(s string, limit int) (string, bool) {
	return bound(s, limit, Ellipsis, func(r rune, raw string) string {
		switch {
		case r == utf8.RuneError && len(raw) == 1:
			return fmt.Sprintf(`\x%02X`, raw[0])
		case Unsafe(r) && r <= 0xFFFF:
			return fmt.Sprintf(`\u%04X`, r)
		case Unsafe(r):
			return fmt.Sprintf(`\U%08X`, r)
		}
		return raw
	})
}

// Words is Line of the words of s joined by single spaces: white space of
// any kind (line breaks, tabs, NBSP, U+2028, ...) and runs of it become one
// space and the ends are trimmed, so a multi-line server message or notice
// reads as one line; a cut falls between two words where one ends in the
// last half of the text. Everything else is as in Line.
func Words(s string, limit int) string {
	out, cut := line(strings.Join(strings.Fields(s), " "), limit)
	if !cut || len(out) <= len(Ellipsis) {
		return out
	}
	kept := strings.TrimSuffix(out, Ellipsis)
	if i := strings.LastIndexByte(kept, ' '); i > len(kept)/2 {
		return kept[:i] + Ellipsis
	}
	return out
}

// ASCII returns s as printable ASCII (space to '~') of at most limit bytes:
// every other character, and every byte that is not UTF-8, becomes one '?'.
// A cut ends in "...". For SMS, which carries ASCII best.
func ASCII(s string, limit int) string {
	out, _ := bound(s, limit, ASCIIEllipsis, func(r rune, raw string) string {
		if r >= 0x20 && r <= 0x7e {
			return raw
		}
		return "?"
	})
	return out
}

// Clip returns s as valid UTF-8 (each byte that is not becomes U+FFFD) of at
// most limit bytes, cut between two characters and ending in "…" when cut.
// Nothing is escaped: use it only where a machine reads the text (a JSON
// field), never where a person reads it as is; that is Line.
func Clip(s string, limit int) string {
	if len(s) <= limit && utf8.ValidString(s) {
		return s
	}
	out, _ := bound(s, limit, Ellipsis, func(r rune, raw string) string {
		if r == utf8.RuneError && len(raw) == 1 {
			return string(utf8.RuneError)
		}
		return raw
	})
	return out
}

// bound writes unit(r, raw) for each character r of s (raw is its bytes; a
// byte that is not UTF-8 comes as utf8.RuneError with one byte) while the
// text stays within limit bytes. When a unit does not fit, the text is cut
// after the last unit that leaves room for mark, and mark is added; when
// not even mark fits the limit, the text is the whole units that fit. It
// reports whether it cut.
func bound(s string, limit int, mark string, unit func(r rune, raw string) string) (string, bool) {
	var b strings.Builder
	b.Grow(max(0, min(len(s), limit)))
	room := limit - len(mark)
	cutAt := -1 // b.Len() at the last unit that left room for mark
	if room >= 0 {
		cutAt = 0
	}
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		u := unit(r, s[i:i+n])
		i += n
		if b.Len()+len(u) > limit {
			if cutAt < 0 {
				return b.String(), true
			}
			return b.String()[:cutAt] + mark, true
		}
		b.WriteString(u)
		if b.Len() <= room {
			cutAt = b.Len()
		}
	}
	return b.String(), false
}

// Unsafe reports whether r is shown escaped by Line (see there).
func Unsafe(r rune) bool {
	switch {
	case r == ' ':
		return false
	case r < 0x20, r >= 0x7f && r < 0xa0: // C0, DEL, C1 (incl. \t, \n, \r, NEL)
		return true
	case r == utf8.RuneError, r > unicode.MaxRune, r >= 0xD800 && r <= 0xDFFF:
		return true
	case unicode.In(r, unicode.Cc, unicode.Cf, unicode.Zl, unicode.Zp, unicode.Co, unicode.Cs):
		// format (bidi marks, embeddings, overrides and isolates, zero-width
		// spaces and joiners, soft hyphen, BOM, tags), line and paragraph
		// separators, private use
		return true
	case unicode.Is(unicode.Variation_Selector, r), unicode.Is(unicode.Noncharacter_Code_Point, r):
		return true
	case invisible(r):
		return true
	case unicode.IsSpace(r), unicode.Is(unicode.Zs, r):
		return true // odd spaces look like a space but are not one
	case !unicode.In(r, unicode.L, unicode.M, unicode.N, unicode.P, unicode.S):
		return true // unassigned: what a later Unicode makes of it is unknown
	}
	return false
}

// invisible reports the characters that draw nothing although Unicode does
// not class them as format characters: the Hangul fillers, the combining
// grapheme joiner, the Khmer inherent vowels, the Mongolian vowel separator
// and free variation selectors, the braille blank and the Hangul/halfwidth
// fillers.
func invisible(r rune) bool {
	switch r {
	case 0x034F, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x180E, 0x2800, 0x3164, 0xFFA0:
		return true
	}
	return r >= 0x180B && r <= 0x180F
}
