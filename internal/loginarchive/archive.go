// Package loginarchive keeps every login event the audit reads in S3
// (ARCHIVE_BUCKET), longer than the portal keeps them (180 days at most):
// OCSF Authentication records (package ocsf), gzip-compressed JSON lines,
// under Hive-style partitions for Athena:
//
//	<prefix>portal=<host>/year=2026/month=12/day=04/logins-20261204T093015.000000000Z.json.gz
//
// One object per piece of audit work and UTC day; the name is the piece's
// upper end (the audit cursor it started from), or, on a day below the
// piece's last, the end of that day: the upper end of what the object can
// hold, with the start of the audit window the piece belongs to. A retried
// run starts from the same saved cursor, so it writes the same keys and
// replaces its own objects instead of adding second copies, also when its
// piece is smaller (a retry reads a quarter of the events) and no longer
// reaches back across midnight: the day below is then written by the next
// piece, which does cross it, under that day's end and the same window,
// again replacing the first attempt's object. Another window (one that
// starts over below what earlier ones archived) never takes an earlier
// window's name, so it never replaces logins it does not hold.
// docs/login-archive.md has the Athena table and queries.
package loginarchive

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"ipguard/internal/awserr"
	"ipguard/internal/ipguard"
	"ipguard/internal/ocsf"
	"ipguard/internal/redact"
)

// API is the subset of *s3.Client the archive uses.
type API interface {
	PutObject(context.Context, *s3.PutObjectInput, ...func(*s3.Options)) (*s3.PutObjectOutput, error)
}

// Archive writes to one bucket. It is safe for concurrent use.
type Archive struct {
	API    API
	Bucket string // ARCHIVE_BUCKET
	Prefix string // ARCHIVE_PREFIX, e.g. "logins/" ("" for none)
	Portal string // the portal's host: the portal= partition
}

// Archive stores evs, the events of span (From exclusive, To inclusive) of
// the audit window that starts at window, as one object per UTC day their
// dates fall on, keyed by Key(day, span.To), or DayKey(day, window) for a
// day that ends before span.To. Writing the same span again, or one of the
// same window crossing the same midnight, replaces those objects. Records
// are sorted by time and event id, so the same events give the same bytes.
// A failure is classified (a missing bucket or a denied write is EConfig
// naming ARCHIVE_BUCKET); some days' objects may then be written.
func (a *Archive) Archive(ctx context.Context, window time.Time, span ipguard.TimeSpan, evs []ipguard.LoginEvent) error {
	byDay := map[string][]ipguard.LoginEvent{}
	for _, e := range evs {
		d := e.Date.UTC().Format("2006-01-02")
		byDay[d] = append(byDay[d], e)
	}
	days := make([]string, 0, len(byDay))
	for d := range byDay {
		days = append(days, d)
	}
	sort.Strings(days)
	for _, d := range days {
		day, _ := time.Parse("2006-01-02", d)
		body, err := Encode(a.Portal, byDay[d])
		if err != nil {
			return err
		}
		key := a.Key(day, span.To)
		if end := day.AddDate(0, 0, 1); end.Before(span.To) {
			key = a.DayKey(day, window) // what a day's object holds ends with the day
		}
		_, err = a.API.PutObject(ctx, &s3.PutObjectInput{
			Bucket:          aws.String(a.Bucket),
			Key:             aws.String(key),
			Body:            bytes.NewReader(body),
			ContentType:     aws.String("application/x-ndjson"),
			ContentEncoding: aws.String("gzip"),
		})
		if err != nil {
			return awserr.Classify(err, "put object "+key, awserr.Resource{Service: "s3", Field: "ARCHIVE_BUCKET", Value: a.Bucket})
		}
	}
	return nil
}

// Key is the object key of the events of day (UTC) in the piece whose
// upper end is upper.
func (a *Archive) Key(day, upper time.Time) string {
	day = day.UTC()
	return fmt.Sprintf("%sportal=%s/year=%04d/month=%02d/day=%02d/logins-%s.json.gz",
		a.Prefix, partitionValue(a.Portal), day.Year(), int(day.Month()), day.Day(), upper.UTC().Format("20060102T150405.000000000Z"))
}

// DayKey is the object key of the events of day (UTC) in a piece of the
// audit window starting at window that reaches past the day's end: named
// by the day's end and the window's start.
func (a *Archive) DayKey(day, window time.Time) string {
	day = day.UTC()
	end := time.Date(day.Year(), day.Month(), day.Day()+1, 0, 0, 0, 0, time.UTC)
	return strings.TrimSuffix(a.Key(day, end), ".json.gz") + "-window-" + window.UTC().Format("20060102T150405.000000000Z") + ".json.gz"
}

// partitionValue keeps a portal host usable as one path segment.
func partitionValue(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == '/' || r == '=' || r == '\\' || r < 0x20 || r == 0x7f {
			return '_'
		}
		return r
	}, s)
	if s == "" {
		return "unknown"
	}
	return s
}

// Encode is the gzip-compressed JSON lines of evs as OCSF Authentication
// records, sorted by time and event id (pure; the same events give the
// same bytes). Any part of the API key is removed (package redact).
func Encode(portal string, evs []ipguard.LoginEvent) ([]byte, error) {
	evs = append([]ipguard.LoginEvent(nil), evs...)
	sort.Slice(evs, func(i, j int) bool {
		if !evs[i].Date.Equal(evs[j].Date) {
			return evs[i].Date.Before(evs[j].Date)
		}
		return evs[i].ID < evs[j].ID
	})
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf) // no name, no modification time: same bytes for the same events
	var line bytes.Buffer
	enc := json.NewEncoder(&line)
	enc.SetEscapeHTML(false)
	for _, e := range evs {
		line.Reset()
		if err := enc.Encode(ocsf.Login(portal, e)); err != nil {
			return nil, ipguard.Errorf(ipguard.EInternal, "login archive: encode event %d: %w", e.ID, err)
		}
		if _, err := zw.Write([]byte(redact.Clean(line.String()))); err != nil {
			return nil, ipguard.Errorf(ipguard.EInternal, "login archive: compress: %w", err)
		}
	}
	if err := zw.Close(); err != nil {
		return nil, ipguard.Errorf(ipguard.EInternal, "login archive: compress: %w", err)
	}
	return buf.Bytes(), nil
}
