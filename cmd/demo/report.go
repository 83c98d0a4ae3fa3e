package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"
)

// title prints the demo's heading.
func title(w io.Writer, s string) {
	fmt.Fprintf(w, "%s\n%s\n\n", s, strings.Repeat("=", utf8.RuneCountInString(s)))
}

// step prints a numbered step heading.
func step(w io.Writer, n int, s string) {
	h := fmt.Sprintf("%d. %s", n, s)
	fmt.Fprintf(w, "\n%s\n%s\n", h, strings.Repeat("-", utf8.RuneCountInString(h)))
}

// table prints rows under header as aligned columns, indented by two spaces;
// a nil header prints the rows alone.
func table(w io.Writer, header []string, rows [][]string) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	line := func(cells []string) {
		fmt.Fprintln(tw, "  "+strings.Join(cells, "\t"))
	}
	if header != nil {
		line(header)
		rule := make([]string, len(header))
		for i, h := range header {
			rule[i] = strings.Repeat("-", max(utf8.RuneCountInString(h), 1))
		}
		line(rule)
	}
	for _, r := range rows {
		line(r)
	}
	tw.Flush()
}

// box prints text indented behind a bar, as a received message.
func box(w io.Writer, text string) {
	for _, l := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		fmt.Fprintln(w, strings.TrimRight("  │ "+l, " "))
	}
}

// offset renders a UTC offset as +03:00.
func offset(d time.Duration) string {
	sign := "+"
	if d < 0 {
		sign, d = "-", -d
	}
	return fmt.Sprintf("%s%02d:%02d", sign, int(d.Hours()), int(d.Minutes())%60)
}
