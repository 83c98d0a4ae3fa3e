// Package humantext is the one place where text bound for a person (alert
// subjects and bodies, warnings, error values, the status report) is made
// safe to read. Its input is attacker-chosen as often as not: a login name,
// a city or a browser string from the portal, an e-mail from an onboarding
// request, a server's error page.
//
// Four functions, one rule each:
//
//   - Line: one line of text. Every character that could hide, reorder or
//     break the text is shown escaped instead (\u202E, \x00 for a byte that is
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
	"math"
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
	var b strings.Builder
	b.Grow(max(0, min(len(s), limit)))
	room := limit - len(Ellipsis)
	cutAt := start(room) // b.Len() at the last unit that still left room for the ellipsis
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		var unit string
		switch {
		case r == utf8.RuneError && n == 1:
			unit = fmt.Sprintf(`\x%02X`, s[i])
		case Unsafe(r) && r <= 0xFFFF:
			unit = fmt.Sprintf(`\u%04X`, r)
		case Unsafe(r):
			unit = fmt.Sprintf(`\U%08X`, r)
		default:
			unit = s[i : i+n]
		}
		i += n
		if b.Len()+len(unit) > limit {
			return cut(b.String(), cutAt, Ellipsis)
		}
		b.WriteString(unit)
		if b.Len() <= room {
			cutAt = b.Len()
		}
	}
	return b.String()
}

// Words is Line of the words of s joined by single spaces: white space of
// any kind (line breaks, tabs, NBSP, U+2028, ...) and runs of it become one
// space and the ends are trimmed, so a multi-line server message or notice
// reads as one line; a cut falls between two words where one ends in the
// last half of the text. Everything else is as in Line.
func Words(s string, limit int) string {
	s = strings.Join(strings.Fields(s), " ")
	out := Line(s, limit)
	if len(out) <= len(Ellipsis) || out == Line(s, math.MaxInt) {
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
	b := make([]byte, 0, max(0, min(len(s), limit)))
	room := limit - len(ASCIIEllipsis)
	cutAt := start(room)
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		i += n
		c := byte('?')
		if r >= 0x20 && r <= 0x7e {
			c = byte(r)
		}
		if len(b)+1 > limit {
			return cut(string(b), cutAt, ASCIIEllipsis)
		}
		b = append(b, c)
		if len(b) <= room {
			cutAt = len(b)
		}
	}
	return string(b)
}

// Clip returns s as valid UTF-8 (each byte that is not becomes U+FFFD) of at
// most limit bytes, cut between two characters and ending in "…" when cut.
// Nothing is escaped: use it only where a machine reads the text (a JSON
// field), never where a person reads it as is; that is Line.
func Clip(s string, limit int) string {
	if len(s) <= limit && utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	room := limit - len(Ellipsis)
	cutAt := start(room)
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		unit := s[i : i+n]
		if r == utf8.RuneError && n == 1 {
			unit = string(utf8.RuneError)
		}
		i += n
		if b.Len()+len(unit) > limit {
			return cut(b.String(), cutAt, Ellipsis)
		}
		b.WriteString(unit)
		if b.Len() <= room {
			cutAt = b.Len()
		}
	}
	return b.String()
}

// start is where a cut falls before any unit is written: at 0 when the mark
// fits the bound, nowhere (-1) when it does not.
func start(room int) int {
	if room < 0 {
		return -1
	}
	return 0
}

// cut ends text at cutAt with mark, or, when not even the mark fits the
// bound (cutAt < 0), returns the text as built: whole units within the bound.
func cut(text string, cutAt int, mark string) string {
	if cutAt < 0 {
		return text
	}
	return text[:cutAt] + mark
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
