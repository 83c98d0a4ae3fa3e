package humantext

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// The one table of what reaches a person: every rule of Line, ASCII and Clip.
func TestText(t *testing.T) {
	long := strings.Repeat("a", 50)
	for _, tt := range []struct {
		name string
		fn   func(string, int) string
		in   string
		max  int
		want string
	}{
		// Line: kept as is
		{"line keeps letters of any script", Line, "plain ümlaut 名前 שלום", 100, "plain ümlaut 名前 שלום"},
		{"line keeps the ASCII space and punctuation", Line, `a b-c "d" \e`, 100, `a b-c "d" \e`},
		// Line: control characters, C0, DEL and C1
		{"line escapes line breaks and tabs", Line, "a\nb\tc\rd", 100, `a\u000Ab\u0009c\u000Dd`},
		{"line escapes NUL, ESC and DEL", Line, "\x00\x1b[31m\x7f", 100, `\u0000\u001B[31m\u007F`},
		{"line escapes C1 incl. NEL and CSI", Line, "a\u0085b\u009bc", 100, `a\u0085b\u009Bc`},
		// Line: line and paragraph separators
		{"line escapes U+2028 and U+2029", Line, "a\u2028b\u2029c", 100, `a\u2028b\u2029c`},
		// Line: bidi
		{"line escapes bidi overrides and isolates", Line, "x\u202Ey\u2066z\u2069", 100, `x\u202Ey\u2066z\u2069`},
		{"line escapes bidi marks and embeddings", Line, "\u200E\u200F\u061C\u202A\u202B\u202C\u202D\u2067\u2068", 100,
			`\u200E\u200F\u061C\u202A\u202B\u202C\u202D\u2067\u2068`},
		// Line: invisible
		{"line escapes zero-width characters and BOM", Line, "zero\u200Bwidth\u200C\u200D\u2060\uFEFF", 100, `zero\u200Bwidth\u200C\u200D\u2060\uFEFF`},
		{"line escapes soft hyphen and tags", Line, "a\u00ADb\U000E0041", 100, `a\u00ADb\U000E0041`},
		{"line escapes variation selectors and fillers", Line, "a\uFE0Fb\u3164c\u115F\u034F\u2800", 100, `a\uFE0Fb\u3164c\u115F\u034F\u2800`},
		{"line escapes odd spaces", Line, "nbsp\u00A0ideo\u3000en\u2002", 100, `nbsp\u00A0ideo\u3000en\u2002`},
		{"line escapes private use and noncharacters", Line, "\uE000\uFFFE\U0010FFFF", 100, `\uE000\uFFFE\U0010FFFF`},
		// Line: UTF-8
		{"line shows bytes that are not UTF-8", Line, "a\xffb\xc3", 100, `a\xFFb\xC3`},
		{"line escapes U+FFFD itself", Line, "a\uFFFDb", 100, `a\uFFFDb`},
		// Line: the bound
		{"line fits as is", Line, "abc", 3, "abc"},
		{"line cut ends in an ellipsis within the bound", Line, long, 10, "aaaaaaa…"},
		{"line cut between characters", Line, "ééééé", 8, "éé…"},
		{"line never cuts inside an escape", Line, "ab\u202Ecd", 8, "ab…"},
		{"line bound too small for the ellipsis", Line, "abcdef", 2, "ab"},
		{"line zero bound", Line, "abc", 0, ""},
		{"line first unit too long", Line, "\u202Eabc", 4, "…"},
		// Words
		{"words fold white space of any kind", Words, "  a\n\tb\u00A0\u2028c  ", 100, "a b c"},
		{"words escape the rest as line does", Words, "a\u202Eb\x00", 100, `a\u202Eb\u0000`},
		{"words cut between words", Words, "word word word", 12, "word word…"},
		{"words cut inside a long word", Words, "a verylongword", 10, "a veryl…"},
		// ASCII
		{"ascii keeps printable ASCII", ASCII, "Key ...ab12 expires", 100, "Key ...ab12 expires"},
		{"ascii replaces the rest with ?", ASCII, "é\n\u202E\xff~", 100, "????~"},
		{"ascii cut ends in ...", ASCII, long, 10, "aaaaaaa..."},
		{"ascii tiny bound", ASCII, "abcd", 2, "ab"},
		// Clip
		{"clip keeps text that fits", Clip, "a\u202Eb", 100, "a\u202Eb"},
		{"clip cut ends in an ellipsis", Clip, long, 10, "aaaaaaa…"},
		{"clip cut between characters", Clip, "ééééé", 8, "éé…"},
		{"clip repairs UTF-8", Clip, "a\xffb", 100, "a\uFFFDb"},
	} {
		got := tt.fn(tt.in, tt.max)
		if got != tt.want {
			t.Errorf("%s: (%q, %d) = %q, want %q", tt.name, tt.in, tt.max, got, tt.want)
		}
		if !utf8.ValidString(got) || len(got) > max(tt.max, 0) {
			t.Errorf("%s: %q is not valid UTF-8 within %d bytes", tt.name, got, tt.max)
		}
	}
}
