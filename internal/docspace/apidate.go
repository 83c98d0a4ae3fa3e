package docspace

import (
	"fmt"
	"time"
)

// The portal writes dates (ApiDateTime) as
//
//	2026-05-04T12:15:09.0000000+03:00    its time zone, seven fractional digits
//	2026-05-04T09:15:09.0000000Z         Z when the offset is 0
//
// and a few older fields (an API key's dates) without an offset.

// parseDate reads a portal date that must carry its offset (Z or ±hh:mm)
// and returns the instant in UTC; a fraction of 0 to 9 digits is read.
// Text without an offset, or anything else, is an error that quotes it
// (cut to 40 bytes).
func parseDate(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("date %.40q is not an RFC 3339 instant", s)
	}
	return t.UTC(), nil
}

// parseDateOrUTC is parseDate, except that a date without an offset is read
// as UTC (where being off by the portal's offset, hours, does not matter).
func parseDateOrUTC(s string) (time.Time, error) {
	if t, err := parseDate(s); err == nil {
		return t, nil
	}
	t, err := time.ParseInLocation("2006-01-02T15:04:05.999999999", s, time.UTC)
	if err != nil {
		return time.Time{}, fmt.Errorf("date %.40q is not an RFC 3339 instant", s)
	}
	return t, nil
}
