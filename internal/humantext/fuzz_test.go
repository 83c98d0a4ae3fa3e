package humantext

import (
	"math"
	"strings"
	"testing"
	"unicode/utf8"
)

// For any text and bound: every result is valid UTF-8 within the bound; Line
// and Words carry no control, bidi, invisible or separator character, ASCII
// only printable ASCII, and Clip the text's own characters (a prefix of it,
// cut with the ellipsis). Line changes nothing a person may see as is, and
// applied twice gives the same as once.
func FuzzText(f *testing.F) {
	for _, s := range []string{"plain ümlaut", "a\nb\tc", "x\u202Ey\u2066z", "zero\u200Bwidth\uFEFF", "a\xffb", "\u2028", "ééééé", ""} {
		f.Add(s, 10)
	}
	f.Fuzz(func(t *testing.T, s string, limit int) {
		limit %= 4 * (len(s) + 8)
		for name, fn := range map[string]func(string, int) string{"Line": Line, "Words": Words, "ASCII": ASCII, "Clip": Clip} {
			out := fn(s, limit)
			if !utf8.ValidString(out) || len(out) > max(limit, 0) {
				t.Fatalf("%s(%q, %d) = %q: not valid UTF-8 within the bound", name, s, limit, out)
			}
			switch name {
			case "Line", "Words":
				if i := strings.IndexFunc(out, Unsafe); i >= 0 {
					t.Fatalf("%s(%q, %d) = %q carries %U", name, s, limit, out, []rune(out[i:])[0])
				}
			case "ASCII":
				for i := 0; i < len(out); i++ {
					if out[i] < 0x20 || out[i] > 0x7e {
						t.Fatalf("ASCII(%q, %d) = %q carries byte %#x", s, limit, out, out[i])
					}
				}
			case "Clip":
				valid := perByte(s)
				if !strings.HasPrefix(valid, strings.TrimSuffix(out, Ellipsis)) && out != valid {
					t.Fatalf("Clip(%q, %d) = %q is not a prefix of the text", s, limit, out)
				}
			}
		}
		whole := Line(s, math.MaxInt)
		if Line(whole, math.MaxInt) != whole {
			t.Fatalf("Line(%q) = %q changes again", s, whole)
		}
		if utf8.ValidString(s) && strings.IndexFunc(s, Unsafe) < 0 && whole != s {
			t.Fatalf("Line(%q) = %q changed safe text", s, whole)
		}
	})
}

// perByte is s with each byte that is not UTF-8 replaced by U+FFFD.
func perByte(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			b.WriteRune(utf8.RuneError)
		} else {
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}
