package loginarchive_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"sort"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"ipguard/internal/ipguard"
	"ipguard/internal/loginarchive"
	"ipguard/internal/testbed/localaws"
)

var (
	_ loginarchive.API = (*s3.Client)(nil)
	// the audit's hook
	_ interface {
		Archive(context.Context, time.Time, ipguard.TimeSpan, []ipguard.LoginEvent) error
	} = (*loginarchive.Archive)(nil)
)

func TestKeyIsHivePartitionedAndNamedByTheSpansUpperEnd(t *testing.T) {
	a := &loginarchive.Archive{Prefix: "logins/", Portal: "portal.example.com"}
	upper := time.Date(2026, 12, 4, 9, 30, 15, 123456789, time.FixedZone("x", 3600))
	got := a.Key(time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC), upper)
	want := "logins/portal=portal.example.com/year=2026/month=12/day=04/logins-20261204T083015.123456789Z.json.gz"
	if got != want {
		t.Errorf("Key = %q\nwant %q", got, want)
	}
	odd := &loginarchive.Archive{Portal: "a/b=c"}
	if k := odd.Key(upper, upper); k != "portal=a_b_c/year=2026/month=12/day=04/logins-20261204T083015.123456789Z.json.gz" {
		t.Errorf("a host with / or = gives %q", k)
	}
}

func TestEncodeIsTheSameBytesForTheSameEvents(t *testing.T) {
	e1 := ipguard.LoginEvent{ID: 2, Date: time.Unix(100, 0).UTC(), ActionID: 1000, IP: "203.0.113.1"}
	e2 := ipguard.LoginEvent{ID: 1, Date: time.Unix(100, 0).UTC(), ActionID: 1005, IP: "2001"}
	a, err := loginarchive.Encode("p", []ipguard.LoginEvent{e1, e2})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := loginarchive.Encode("p", []ipguard.LoginEvent{e2, e1})
	if !bytes.Equal(a, b) {
		t.Error("the same events in another order gave other bytes")
	}
	recs := lines(t, a)
	if len(recs) != 2 || recs[0]["metadata"].(map[string]any)["uid"] != "p:1" {
		t.Errorf("records = %v", recs)
	}
	if ep, ok := recs[0]["src_endpoint"].(map[string]any); ok && ep["ip"] != nil {
		t.Errorf("the cut IPv6 address went into src_endpoint.ip: %v", ep)
	}
}

func lines(t *testing.T, gz []byte) []map[string]any {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

// Under moto: the objects land under the documented keys, one per UTC day
// of the piece, and writing the same span again (a retried run) leaves one
// copy.
func TestArchiveWritesDocumentedKeysAndARetryOverwrites(t *testing.T) {
	ctx := context.Background()
	cfg := localaws.MotoConfigT(t)
	c := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle, o.DisableLogOutputChecksumValidationSkipped = true, true })
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("archive")}); err != nil {
		t.Fatal(err)
	}
	a := &loginarchive.Archive{API: c, Bucket: "archive", Portal: "portal.example.com"}
	midnight := time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)
	span := ipguard.TimeSpan{From: midnight.Add(-time.Minute), To: midnight.Add(time.Minute)}
	evs := []ipguard.LoginEvent{
		{ID: 1, Date: midnight.Add(-30 * time.Second), ActionID: 1000, Login: "ann@example.com", IP: "203.0.113.1"},
		{ID: 2, Date: midnight.Add(30 * time.Second), ActionID: 1005, Login: "bob", IP: "198.51.100.2"},
		{ID: 3, Date: midnight.Add(40 * time.Second), ActionID: 1000, Login: "bob", IP: "198.51.100.2"},
	}
	for i := 0; i < 2; i++ { // the second time is the retried run
		if err := a.Archive(ctx, span.From, span, evs); err != nil {
			t.Fatal(err)
		}
	}
	out, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("archive")})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, o := range out.Contents {
		keys = append(keys, aws.ToString(o.Key))
	}
	sort.Strings(keys)
	want := []string{
		"portal=portal.example.com/year=2026/month=12/day=04/logins-20261205T000000.000000000Z-window-20261204T235900.000000000Z.json.gz", // the day's end, the window's start
		"portal=portal.example.com/year=2026/month=12/day=05/logins-20261205T000100.000000000Z.json.gz",
	}
	if len(keys) != len(want) || keys[0] != want[0] || keys[1] != want[1] {
		t.Fatalf("keys = %v\nwant %v", keys, want)
	}
	obj, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("archive"), Key: aws.String(want[1])})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(obj.Body)
	recs := lines(t, body)
	if len(recs) != 2 || recs[0]["class_uid"] != 3002.0 || recs[0]["status_id"] != 2.0 || recs[1]["status_id"] != 1.0 {
		t.Errorf("day=05 holds %v", recs)
	}

	t.Run("a missing bucket is a configuration error naming ARCHIVE_BUCKET", func(t *testing.T) {
		err := (&loginarchive.Archive{API: c, Bucket: "no-such-bucket", Portal: "p"}).Archive(ctx, span.From, span, evs)
		if ipguard.ErrorCode(err) != ipguard.EConfig || !bytes.Contains([]byte(err.Error()), []byte("ARCHIVE_BUCKET")) {
			t.Errorf("err = %v", err)
		}
	})
}

// memS3 keeps the objects PutObject writes, by key.
type memS3 map[string][]byte

func (m memS3) PutObject(_ context.Context, in *s3.PutObjectInput, _ ...func(*s3.Options)) (*s3.PutObjectOutput, error) {
	b, err := io.ReadAll(in.Body)
	m[aws.ToString(in.Key)] = b
	return &s3.PutObjectOutput{}, err
}

// A run that archived a piece reaching back across midnight and then failed
// before its cursor save is retried from the same cursor with a quarter of
// the events (audit's countAttempt): its piece no longer reaches the day
// before, so it did not replace that day's object, and the next piece wrote
// the same logins again under its own name: two copies. Each day's object
// is now named by what it can hold (the piece's upper end or the day's
// end), so the next piece replaces the first attempt's object.
func TestARetryWithASmallerPieceLeavesNoSecondCopyAcrossMidnight(t *testing.T) {
	at, evs, in := acrossMidnight()
	store := memS3{}
	a := &loginarchive.Archive{API: store, Bucket: "b", Portal: "p"}
	top := at(5 * time.Minute)
	for _, span := range []ipguard.TimeSpan{
		{From: at(-5 * time.Minute), To: top},                               // the first attempt: 23:55 to 00:05, then its run fails
		{From: at(time.Minute + 30*time.Second), To: top},                   // the retry's smaller piece: after midnight only
		{From: at(-10 * time.Minute), To: at(time.Minute + 30*time.Second)}, // its next piece, back across midnight
	} {
		if err := a.Archive(context.Background(), at(-10*time.Minute), span, in(span.From, span.To)); err != nil {
			t.Fatal(err)
		}
	}
	copies := map[string]int{}
	for key, body := range store {
		for _, r := range lines(t, body) {
			uid := r["metadata"].(map[string]any)["uid"].(string)
			copies[uid]++
			if copies[uid] > 1 {
				t.Errorf("%s is in a second object (%s)", uid, key)
			}
		}
	}
	if len(copies) != len(evs) {
		t.Errorf("%d of %d logins archived: %v", len(copies), len(evs), copies)
	}
}

// Attack review 2 (login archive): a day below a piece's last is named by
// the day's end, so that a retry's pieces replace the first attempt's
// object. A window that starts over below what earlier windows archived
// (the saved progress could not be read: the audit starts again from
// AUDIT_LOOKBACK) has another piece crossing the same midnight: it wrote
// the same name and replaced an earlier window's object with the part of
// the day above its own start, and the logins below that start were gone
// from the archive. The day's end is now qualified by the window's start,
// which a retry shares (the same saved cursor) and another window does not.
func TestAWindowStartingOverKeepsAnEarlierWindowsObjectAcrossMidnight(t *testing.T) {
	at, evs, in := acrossMidnight()
	store := memS3{}
	a := &loginarchive.Archive{API: store, Bucket: "b", Portal: "p"}
	for _, w := range []struct {
		window time.Time // the audit window's start
		span   ipguard.TimeSpan
	}{
		{at(-10 * time.Minute), ipguard.TimeSpan{From: at(-5 * time.Minute), To: at(5 * time.Minute)}},                              // an earlier window: 23:55 to 00:05
		{at(-2*time.Minute - 30*time.Second), ipguard.TimeSpan{From: at(-2*time.Minute - 30*time.Second), To: at(4 * time.Minute)}}, // a window starting over at 23:57:30
	} {
		if err := a.Archive(context.Background(), w.window, w.span, in(w.span.From, w.span.To)); err != nil {
			t.Fatal(err)
		}
	}
	held := map[string]bool{}
	for _, body := range store {
		for _, r := range lines(t, body) {
			held[r["metadata"].(map[string]any)["uid"].(string)] = true
		}
	}
	if len(held) != len(evs) {
		t.Errorf("%d of %d logins in the archive: %v (an earlier window's object was replaced)", len(held), len(evs), held)
	}
	// A retry of the second window (same start) still replaces its object.
	n := len(store)
	if err := a.Archive(context.Background(), at(-2*time.Minute-30*time.Second), ipguard.TimeSpan{From: at(-2*time.Minute - 30*time.Second), To: at(4 * time.Minute)}, in(at(-2*time.Minute-30*time.Second), at(4*time.Minute))); err != nil {
		t.Fatal(err)
	}
	if len(store) != n {
		t.Errorf("a retry wrote %d objects more", len(store)-n)
	}
}

// acrossMidnight is eight logins a minute apart, 23:56 to 00:03 (at: a
// time from that midnight), and in, those of a span.
func acrossMidnight() (at func(time.Duration) time.Time, evs []ipguard.LoginEvent, in func(from, to time.Time) []ipguard.LoginEvent) {
	midnight := time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)
	at = func(d time.Duration) time.Time { return midnight.Add(d) }
	for i := int64(1); i <= 8; i++ {
		evs = append(evs, ipguard.LoginEvent{ID: i, Date: at(time.Duration(i-5) * time.Minute), ActionID: 1000, Login: "ann", IP: "203.0.113.1"})
	}
	in = func(from, to time.Time) []ipguard.LoginEvent {
		var out []ipguard.LoginEvent
		for _, e := range evs {
			if e.Date.After(from) && !e.Date.After(to) {
				out = append(out, e)
			}
		}
		return out
	}
	return at, evs, in
}
