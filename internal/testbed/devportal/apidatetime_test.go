package devportal

import (
	"errors"
	"testing"
	"time"
)

func TestParseAPIDateTime(t *testing.T) {
	want := at("2026-05-04T09:15:09Z")
	for _, tc := range []struct {
		in   string
		want time.Time // zero = rejected
	}{
		{"2026-05-04T09:15:09Z", want},
		{"2026-05-04T09:15:09.000Z", want},
		{"2026-05-04T09:15:09.0000000Z", want},
		{"2026-05-04T09:15:09.123Z", want.Add(123 * time.Millisecond)},
		{"2026-05-04T09:15:09.1234567Z", want.Add(123456700 * time.Nanosecond)},
		{"2026-05-04T12:15:09+03:00", want},
		{"2026-05-04T04:15:09-05:00", want},
		{"2026-05-04T09-15-09Z", want},
		{"2026-05-04T09-15-09.000Z", want},
		{"2026-05-04T09:15:09", time.Time{}},     // no zone
		{"2026-05-04T09:15:09.000", time.Time{}}, // no zone
		{"2026-05-04", time.Time{}},              // no zone
		{"2026-05-04Z", time.Time{}},
		{"2026-05-04T09:15:09.1Z", time.Time{}},
		{"2026-05-04T09:15:09.12Z", time.Time{}},
		{"2026-05-04T09:15:09.123456Z", time.Time{}},
		{"2026-05-04T09:15:09.123456789Z", time.Time{}},
		{"2026-05-04T09:15-09Z", time.Time{}}, // mixed separators
		{"2026-05-04T09:15:09 03:00", time.Time{}},
		{"2026-05-04T09:15:09+0300", time.Time{}},
		{"2026-05-04T09:15:09+15:00", time.Time{}},
		{"2026-02-30T09:15:09Z", time.Time{}},
		{"2026-13-04T09:15:09Z", time.Time{}},
		{"2026-05-04T24:00:00Z", time.Time{}},
		{"2026-05-04 09:15:09Z", time.Time{}},
		{"", time.Time{}},
	} {
		got, err := parseAPIDateTime(tc.in)
		if tc.want.IsZero() {
			if err == nil {
				t.Errorf("parseAPIDateTime(%q) = %v, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || !got.Equal(tc.want) || got.Location() != time.UTC {
			t.Errorf("parseAPIDateTime(%q) = %v, %v; want %v UTC", tc.in, got, err, tc.want)
		}
	}
	if _, err := parseAPIDateTime("2026-05-04T09:15:09"); !errors.Is(err, errNoZone) {
		t.Errorf("missing zone error = %v, want errNoZone", err)
	}
}

func TestFormatAPIDateTime(t *testing.T) {
	in := at("2026-05-04T09:15:09Z").Add(5 * time.Millisecond)
	for _, tc := range []struct {
		offset time.Duration
		want   string
	}{
		{0, "2026-05-04T09:15:09.0050000Z"},
		{3 * time.Hour, "2026-05-04T12:15:09.0050000+03:00"},
		{-(9*time.Hour + 30*time.Minute), "2026-05-03T23:45:09.0050000-09:30"},
	} {
		if got := formatAPIDateTime(in, tc.offset); got != tc.want {
			t.Errorf("formatAPIDateTime(%v) = %q, want %q", tc.offset, got, tc.want)
		}
	}
}
