package devportal

import (
	"errors"
	"regexp"
	"strconv"
	"time"
)

// ApiDateTime as the portal reads it from a query string and writes it
// (docspace-api.md §3.4).
//
// Accepted input (DateTime.TryParseExact patterns, time separator ':' or '-'
// used consistently, fraction of exactly 3 or 7 digits or none):
//
//	yyyy-MM-ddTHH:mm:ss[.fff|.fffffff]K     yyyy-MM-ddTHH-mm-ss[.fff|.fffffff]K     yyyy-MM-dd
//
// K must be "Z" or "±hh:mm" here: a value without a zone (including the
// date-only form) needs the tenant time zone, which query binding cannot
// reach, so the real server answers 400 (inferred from code).
var apiDateTimeRE = regexp.MustCompile(
	`^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2})([:-])(\d{2})([:-])(\d{2})(?:\.(\d{3}|\d{7}))?(Z|[+-]\d{2}:\d{2})?)?$`)

var errNoZone = errors.New("no time zone designator")

// parseAPIDateTime returns the instant an ApiDateTime query value denotes.
func parseAPIDateTime(s string) (time.Time, error) {
	m := apiDateTimeRE.FindStringSubmatch(s)
	if m == nil {
		return time.Time{}, errors.New("no ApiDateTime pattern matches")
	}
	if m[4] != "" && m[5] != m[7] {
		return time.Time{}, errors.New("mixed time separators")
	}
	if m[10] == "" {
		return time.Time{}, errNoZone
	}
	num := func(i int) int { n, _ := strconv.Atoi(m[i]); return n }
	year, month, day := num(1), num(2), num(3)
	var hour, minute, sec, nsec int
	if m[4] != "" {
		hour, minute, sec = num(4), num(6), num(8)
		if m[9] != "" {
			frac := m[9]
			for len(frac) < 9 {
				frac += "0"
			}
			nsec, _ = strconv.Atoi(frac)
		}
	}
	if month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, errors.New("field out of range")
	}
	loc := time.UTC
	if z := m[10]; z != "Z" {
		h, _ := strconv.Atoi(z[1:3])
		mm, _ := strconv.Atoi(z[4:6])
		if h > 14 || mm > 59 {
			return time.Time{}, errors.New("offset out of range")
		}
		off := h*3600 + mm*60
		if z[0] == '-' {
			off = -off
		}
		loc = time.FixedZone("", off)
	}
	t := time.Date(year, time.Month(month), day, hour, minute, sec, nsec, loc)
	if t.Day() != day { // e.g. 2026-02-30
		return time.Time{}, errors.New("day out of range")
	}
	return t.UTC(), nil
}

// formatAPIDateTime writes t in the portal time zone as
// yyyy-MM-ddTHH:mm:ss.fffffff followed by "Z" (offset 0) or "±hh:mm".
func formatAPIDateTime(t time.Time, offset time.Duration) string {
	loc := time.UTC
	if offset != 0 {
		loc = time.FixedZone("", int(offset/time.Second))
	}
	return t.In(loc).Format("2006-01-02T15:04:05.0000000Z07:00")
}
