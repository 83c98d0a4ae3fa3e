package dynamo_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"ipguard/internal/audit"
	"ipguard/internal/behaviour"
	"ipguard/internal/dynamo"
	"ipguard/internal/ipguard"
	"ipguard/internal/lease"
	"ipguard/internal/onboard"
	"ipguard/internal/testbed/localaws"
)

// The store is what the domain packages ask for.
var (
	_ onboard.Store            = (*dynamo.Store)(nil)
	_ onboard.CheckCursorStore = (*dynamo.Store)(nil)
	_ audit.Store              = (*dynamo.Store)(nil)
	_ behaviour.Store          = (*dynamo.Store)(nil)
	_ behaviour.EpisodeStore   = (*dynamo.Store)(nil)
	_ lease.Backend            = (*dynamo.Store)(nil)
	_ dynamo.API               = (*dynamodb.Client)(nil)
)

// TestStore runs every behaviour against one moto server, each subtest on a
// table of its own shaped as DEVELOPERS.md describes.
func TestStore(t *testing.T) {
	db := motoDB(t)
	n := 0
	newStore := func(t *testing.T) (*dynamo.Store, string) {
		t.Helper()
		n++
		table := fmt.Sprintf("allowlist-%d", n)
		return tableStore(t, db, table), table
	}

	t.Run("PutUser then GetUser returns the same user", func(t *testing.T) {
		ctx := context.Background()
		s, _ := newStore(t)
		created := time.Date(2026, 11, 1, 9, 30, 0, 0, time.UTC)
		want := ipguard.User{
			ID: "u1", Email: "a@example.com",
			Entries:   []string{"203.0.113.7", "198.51.100.0/30"},
			CreatedAt: created, UpdatedAt: created.Add(time.Hour),
		}
		putUsers(t, s, want)
		got, ok, err := s.GetUser(ctx, "u1")
		if err != nil || !ok {
			t.Fatalf("GetUser = %v, %v, %v; want the user", got, ok, err)
		}
		assertUser(t, got, want)

		if _, ok, err := s.GetUser(ctx, "nobody"); ok || err != nil {
			t.Errorf("GetUser(nobody) ok = %v, err = %v; want false, nil", ok, err)
		}
	})

	t.Run("the users-left rotation keeps its place in its own item", func(t *testing.T) {
		ctx := context.Background()
		s, _ := newStore(t)
		if c, err := s.UserCheckCursor(ctx); err != nil || c != (onboard.CheckCursor{}) {
			t.Fatalf("cursor before any sync = %+v, %v; want the zero value", c, err)
		}
		at := time.Date(2026, 12, 4, 9, 15, 0, 0, time.FixedZone("UTC+3", 3*3600))
		if err := s.SaveUserCheckCursor(ctx, onboard.CheckCursor{After: "user-0042", At: at}); err != nil {
			t.Fatal(err)
		}
		c, err := s.UserCheckCursor(ctx)
		if err != nil || c.After != "user-0042" || !c.At.Equal(at) || c.At.Location() != time.UTC {
			t.Errorf("cursor = %+v, %v; want user-0042 at %s in UTC", c, err, at)
		}
		if n, err := s.CountUsers(ctx); err != nil || n != 0 {
			t.Errorf("CountUsers = %d, %v; the cursor must not count as a user", n, err)
		}
	})

	t.Run("times are kept in UTC to the second", func(t *testing.T) {
		ctx := context.Background()
		s, _ := newStore(t)
		zone := time.FixedZone("UTC+3", 3*3600)
		in := ipguard.User{ID: "u1", CreatedAt: time.Date(2026, 11, 1, 12, 0, 0, 999, zone)}
		putUsers(t, s, in)
		got, _, err := s.GetUser(ctx, "u1")
		if err != nil {
			t.Fatal(err)
		}
		if want := time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC); !got.CreatedAt.Equal(want) || got.CreatedAt.Location() != time.UTC {
			t.Errorf("CreatedAt = %v, want %v", got.CreatedAt, want)
		}
		if got.Entries == nil || len(got.Entries) != 0 {
			t.Errorf("Entries = %#v, want an empty non-nil list", got.Entries)
		}
	})

	t.Run("PutUser replaces the whole item", func(t *testing.T) {
		ctx := context.Background()
		s, _ := newStore(t)
		first := ipguard.User{ID: "u1", Email: "old@example.com", Entries: []string{"203.0.113.1", "203.0.113.2"}}
		second := ipguard.User{ID: "u1", Email: "new@example.com", Entries: []string{"203.0.113.9"}}
		putUsers(t, s, first, second)
		got, _, err := s.GetUser(ctx, "u1")
		if err != nil {
			t.Fatal(err)
		}
		assertUser(t, got, second)
	})

	t.Run("Users reads more than 100 ids in chunks, retries unprocessed keys, leaves out missing ones", func(t *testing.T) {
		ctx := context.Background()
		s, table := newStore(t)
		var ids []string
		for i := range 230 {
			id := fmt.Sprintf("u%03d", i)
			ids = append(ids, id)
			if i%2 == 0 {
				putUsers(t, s, ipguard.User{ID: id, Email: id + "@example.com", Entries: []string{}})
			}
		}
		ids = append(ids, "u000", "u002") // duplicates are read once
		rec := &recorder{API: db, holdBack: 7}
		got, err := dynamo.New(rec, table).Users(ctx, ids)
		if err != nil {
			t.Fatal(err)
		}
		if want := []int{100, 7, 100, 30}; !slices.Equal(rec.batchSizes, want) {
			t.Errorf("BatchGetItem key counts = %v, want %v (chunks of 100, the held-back keys retried before the next chunk)", rec.batchSizes, want)
		}
		if len(got) != 115 {
			t.Errorf("Users returned %d users, want 115", len(got))
		}
		for i := range 230 {
			id := fmt.Sprintf("u%03d", i)
			u, ok := got[id]
			if ok != (i%2 == 0) {
				t.Fatalf("Users: %s present = %v, want %v", id, ok, i%2 == 0)
			}
			if ok && (u.ID != id || u.Email != id+"@example.com") {
				t.Errorf("Users[%s] = %+v", id, u)
			}
		}

		empty, err := s.Users(ctx, nil)
		if err != nil || len(empty) != 0 {
			t.Errorf("Users(nil) = %v, %v; want an empty map", empty, err)
		}
	})

	t.Run("AllUsers returns every user and no other item", func(t *testing.T) {
		ctx := context.Background()
		s, table := newStore(t)
		var want []string
		for i := range 30 {
			id := fmt.Sprintf("u%02d", i)
			want = append(want, id)
			// Big items so that the scan takes more than one page.
			u := ipguard.User{ID: id, Email: strings.Repeat("x", 60_000)}
			putUsers(t, s, u)
		}
		now := time.Now()
		if ok, err := s.TryAcquireLease(ctx, "audit", "me", now.Add(time.Minute), now); !ok || err != nil {
			t.Fatalf("TryAcquireLease = %v, %v", ok, err)
		}
		if err := s.SetCheckpoint(ctx, now); err != nil {
			t.Fatal(err)
		}
		if err := s.RecordAlerted(ctx, []int64{1, 2}, now, time.Hour); err != nil {
			t.Fatal(err)
		}
		rec := &recorder{API: db}
		users, err := dynamo.New(rec, table).AllUsers(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if rec.scans < 2 {
			t.Errorf("AllUsers made %d Scan calls; the test needs more than one page", rec.scans)
		}
		var got []string
		for _, u := range users {
			got = append(got, u.ID)
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("AllUsers ids = %q, want %q", got, want)
		}
	})

	t.Run("lease item shape", func(t *testing.T) {
		ctx := context.Background()
		s, _ := newStore(t)
		t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
		if ok, err := s.TryAcquireLease(ctx, "audit", "c", t0.Add(4*time.Minute), t0.Add(2*time.Minute)); !ok || err != nil {
			t.Fatalf("TryAcquireLease = %v, %v", ok, err)
		}
		item := getItem(t, db, s, "lease#audit")
		assertItem(t, "lease item", item, map[string]string{
			"owner":      "c",
			"leaseUntil": fmt.Sprint(t0.Add(4 * time.Minute).UnixMilli()),
			"expiresAt":  fmt.Sprint(t0.Add(4*time.Minute + time.Hour).Unix()),
		})
	})

	t.Run("checkpoint round trip", func(t *testing.T) {
		ctx := context.Background()
		s, table := newStore(t)
		if _, ok, err := s.Checkpoint(ctx); ok || err != nil {
			t.Fatalf("Checkpoint on an empty table: ok = %v, err = %v; want false, nil", ok, err)
		}
		for _, in := range []time.Time{
			time.Date(2026, 11, 25, 10, 0, 0, 123456789, time.UTC),
			time.Date(2026, 11, 25, 14, 0, 0, 1, time.FixedZone("UTC+3", 3*3600)),
		} {
			if err := s.SetCheckpoint(ctx, in); err != nil {
				t.Fatal(err)
			}
			got, ok, err := s.Checkpoint(ctx)
			if err != nil || !ok {
				t.Fatalf("Checkpoint = %v, %v, %v", got, ok, err)
			}
			if !got.Equal(in) || got.Location() != time.UTC {
				t.Errorf("Checkpoint = %v, want %v in UTC", got, in)
			}
		}
		item := getItem(t, db, s, "checkpoint#audit")
		if got, want := attrText(item["until"]), "2026-11-25T11:00:00.000000001Z"; got != want {
			t.Errorf("table %s: until = %q, want %q", table, got, want)
		}
		if _, ok := item["updatedAt"]; !ok {
			t.Errorf("checkpoint item has no updatedAt")
		}
	})

	t.Run("progress round trip, with and without a cursor; SetCheckpoint clears the cursor", func(t *testing.T) {
		ctx := context.Background()
		s, _ := newStore(t)
		if p, err := s.Progress(ctx); err != nil || !p.Until.IsZero() || p.Cursor != nil {
			t.Fatalf("Progress on an empty table = %+v, %v", p, err)
		}
		until := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
		want := ipguard.AuditProgress{Until: until, Cursor: &ipguard.AuditCursor{From: until.Add(-5 * time.Minute), To: until.Add(time.Hour), Below: until.Add(30*time.Minute - time.Nanosecond)}}
		if err := s.SetProgress(ctx, want); err != nil {
			t.Fatal(err)
		}
		got, err := s.Progress(ctx)
		if err != nil || !got.Until.Equal(want.Until) || got.Cursor == nil || *got.Cursor != *want.Cursor {
			t.Fatalf("Progress = %+v (%+v), %v; want %+v", got, got.Cursor, err, want.Cursor)
		}
		if cp, ok, err := s.Checkpoint(ctx); err != nil || !ok || !cp.Equal(until) {
			t.Errorf("Checkpoint = %v, %v, %v; want the progress's until", cp, ok, err)
		}
		if err := s.SetCheckpoint(ctx, until.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if got, err := s.Progress(ctx); err != nil || got.Cursor != nil || !got.Until.Equal(until.Add(time.Hour)) {
			t.Errorf("after SetCheckpoint: %+v, %v", got, err)
		}
	})

	t.Run("a cursor waiting at an unread second keeps its tries (and the runs' attempts and piece), and the retention history is kept", func(t *testing.T) {
		ctx := context.Background()
		s, _ := newStore(t)
		until := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
		mem := []ipguard.RetentionSince{{Since: until.Add(-72 * time.Hour), Keep: 24 * time.Hour}, {Since: until, Keep: 720 * time.Hour}}
		want := ipguard.AuditProgress{Until: until, Memory: mem, Cursor: &ipguard.AuditCursor{From: until, To: until.Add(time.Hour), Below: until.Add(8 * time.Minute), SecondTries: 3, Attempts: 4, Piece: 31},
			CoverageDue: `[{"cause":"unreadable_rows"}]`}
		if err := s.SetProgress(ctx, want); err != nil {
			t.Fatal(err)
		}
		got, err := s.Progress(ctx)
		if err != nil || got.Cursor == nil || *got.Cursor != *want.Cursor {
			t.Fatalf("Progress = %+v, %v", got.Cursor, err)
		}
		if !slices.Equal(got.Memory, mem) {
			t.Errorf("memory = %+v, want %+v", got.Memory, mem)
		}
		if got.CoverageDue != want.CoverageDue {
			t.Errorf("coverage due = %q, want %q (the lost coverage not yet sent)", got.CoverageDue, want.CoverageDue)
		}
	})

	t.Run("failed logins are remembered per address in bounded time-bucket items", func(t *testing.T) {
		ctx := context.Background()
		s, _ := newStore(t)
		at := time.Date(2026, 11, 25, 9, 3, 0, 0, time.UTC)
		fs := []ipguard.AddressFailures{{IP: "198.18.0.9", Count: 9, First: at, Last: at.Add(time.Minute)}}
		var ips []string
		for i := 0; i < 17_000; i++ { // more than the items of one bucket hold
			ip := fmt.Sprintf("10.%d.%d.%d", i/65536, (i/256)%256, i%256)
			ips = append(ips, ip)
			fs = append(fs, ipguard.AddressFailures{IP: ip, Count: 1, First: at, Last: at})
		}
		if _, err := s.RecordFailures(ctx, fs, time.Hour); err != nil {
			t.Fatal(err)
		}
		// merged: the larger count, the wider span
		if _, err := s.RecordFailures(ctx, []ipguard.AddressFailures{{IP: "198.18.0.9", Count: 4, First: at.Add(-time.Minute), Last: at}}, time.Hour); err != nil {
			t.Fatal(err)
		}
		got, err := s.Failures(ctx, []string{"198.18.0.9", "198.18.0.10"}, at.Add(-time.Hour), at.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if fs := got["198.18.0.9"]; len(fs) != 1 || fs[0].Count != 9 || !fs[0].First.Equal(at.Add(-time.Minute)) || !fs[0].Last.Equal(at.Add(time.Minute)) || len(got) != 1 {
			t.Fatalf("Failures = %+v", got)
		}
		all, err := s.Failures(ctx, ips, at.Add(-time.Hour), at.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if len(all) == 0 || len(all) > 16_000 {
			t.Errorf("%d of 17,000 addresses kept; want a bounded number (4 items of at most 4,000)", len(all))
		}
		// outside [from, to]: nothing
		if got, _ := s.Failures(ctx, []string{"198.18.0.9"}, at.Add(2*time.Hour), at.Add(3*time.Hour)); len(got) != 0 {
			t.Errorf("Failures outside the span = %+v", got)
		}
	})

	t.Run("allowlist history: entries start and stop counting, an offboarding closes all, old spans go", func(t *testing.T) {
		ctx := context.Background()
		s, _ := newStore(t)
		t1 := time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)
		keep := 30 * 24 * time.Hour
		steps := []struct {
			added, removed []string
			off            bool
			at             time.Time
		}{
			{[]string{"203.0.113.10", "198.51.100.0/28"}, nil, false, t1},
			{nil, []string{"198.51.100.0/28", "192.0.2.1"}, false, t1.Add(time.Hour)}, // 192.0.2.1 counted since before the history
			{[]string{"203.0.113.30"}, nil, false, t1.Add(2 * time.Hour)},
			{nil, nil, true, t1.Add(3 * time.Hour)},
		}
		for _, st := range steps {
			if err := s.RecordHistory(ctx, "u1", "a@example.com", st.added, st.removed, st.off, st.at, keep); err != nil {
				t.Fatal(err)
			}
		}
		got, err := s.AllowlistHistory(ctx, []string{"u1", "u2"})
		if err != nil {
			t.Fatal(err)
		}
		h, ok := got["u1"]
		if !ok || len(got) != 1 || h.Email != "a@example.com" || !h.OffboardedAt.Equal(t1.Add(3*time.Hour)) {
			t.Fatalf("history = %+v", got)
		}
		want := []ipguard.EntrySpan{
			{Entry: "203.0.113.10", From: t1, Until: t1.Add(3 * time.Hour)},
			{Entry: "198.51.100.0/28", From: t1, Until: t1.Add(time.Hour)},
			{Entry: "192.0.2.1", Until: t1.Add(time.Hour)},
			{Entry: "203.0.113.30", From: t1.Add(2 * time.Hour), Until: t1.Add(3 * time.Hour)},
		}
		if !slices.Equal(h.Spans, want) {
			t.Errorf("spans\n got %+v\nwant %+v", h.Spans, want)
		}
		// Spans that ended more than keep ago are forgotten.
		if err := s.RecordHistory(ctx, "u1", "", []string{"203.0.113.99"}, nil, false, t1.Add(keep+2*time.Hour), keep); err != nil {
			t.Fatal(err)
		}
		got, _ = s.AllowlistHistory(ctx, []string{"u1"})
		if n := len(got["u1"].Spans); n != 3 { // the 198.51.100.0/28 and 192.0.2.1 spans ended too long ago
			t.Errorf("after keep: %+v", got["u1"].Spans)
		}
	})

	t.Run("alerted spans past the bound merge, so no alerted burst is forgotten", func(t *testing.T) {
		ctx := context.Background()
		s, _ := newStore(t)
		defer dynamo.SetMaxSpans(5)()
		now := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
		var all []ipguard.TimeSpan
		for i := 0; i < 12; i++ {
			sp := ipguard.TimeSpan{From: now.Add(time.Duration(i) * time.Hour), To: now.Add(time.Duration(i)*time.Hour + time.Minute)}
			all = append(all, sp)
			if err := s.RecordAlertedSpan(ctx, "198.18.0.1", sp, now, 48*time.Hour); err != nil {
				t.Fatal(err)
			}
		}
		got, err := s.AlertedSpans(ctx, []string{"198.18.0.1"}, now)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(got["198.18.0.1"]); n > 5 {
			t.Fatalf("%d spans kept, want at most 5", n)
		}
		for _, want := range all { // every alerted burst is still covered (a backfill does not alert it again)
			covered := false
			for _, sp := range got["198.18.0.1"] {
				covered = covered || (!want.From.Before(sp.From) && !want.To.After(sp.To))
			}
			if !covered {
				t.Errorf("burst %v forgotten; kept %v", want, got["198.18.0.1"])
			}
		}
	})

	t.Run("alerted spans: one item per address, merged, expired ones dropped", func(t *testing.T) {
		ctx := context.Background()
		s, _ := newStore(t)
		now := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
		a := ipguard.TimeSpan{From: now.Add(-time.Hour), To: now.Add(-50 * time.Minute)}
		b := ipguard.TimeSpan{From: now.Add(-40 * time.Minute), To: now.Add(-30*time.Minute + 500*time.Millisecond)}
		if err := s.RecordAlertedSpan(ctx, "198.18.0.1", a, now.Add(-2*time.Hour), time.Hour); err != nil { // expired at now
			t.Fatal(err)
		}
		if err := s.RecordAlertedSpan(ctx, "198.18.0.1", b, now, time.Hour); err != nil {
			t.Fatal(err)
		}
		got, err := s.AlertedSpans(ctx, []string{"198.18.0.1", "198.18.0.2", "198.18.0.1"}, now)
		if err != nil {
			t.Fatal(err)
		}
		if len(got["198.18.0.1"]) != 1 || len(got["198.18.0.2"]) != 0 {
			t.Fatalf("spans = %+v", got)
		}
		sp := got["198.18.0.1"][0]
		if !sp.From.Equal(b.From) || sp.To.Before(b.To) {
			t.Errorf("span %+v does not cover %+v", sp, b)
		}
	})

	t.Run("unreadable users and alerted records are reported, not fatal", func(t *testing.T) {
		ctx := context.Background()
		s, table := newStore(t)
		for _, item := range []map[string]types.AttributeValue{
			{"pk": &types.AttributeValueMemberS{Value: "user#bad"}, "id": &types.AttributeValueMemberS{Value: "bad"}, "allowedIps": &types.AttributeValueMemberS{Value: "not a list"}},
			{"pk": &types.AttributeValueMemberS{Value: "alerted#7"}, "expiresAt": &types.AttributeValueMemberS{Value: "soon"}},
		} {
			if _, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: item}); err != nil {
				t.Fatal(err)
			}
		}
		users, err := s.Users(ctx, []string{"bad"})
		if err != nil || users["bad"].Unreadable == "" {
			t.Errorf("Users = %+v, %v; want the user marked unreadable", users, err)
		}
		all, err := s.AllUsers(ctx)
		if err != nil || len(all) != 1 || all[0].Unreadable == "" {
			t.Errorf("AllUsers = %+v, %v", all, err)
		}
		alerted, err := s.Alerted(ctx, []int64{7}, time.Now())
		if err != nil || alerted[7] {
			t.Errorf("Alerted = %v, %v; want not alerted, no error", alerted, err)
		}
	})

	t.Run("Alerted counts only unexpired records", func(t *testing.T) {
		ctx := context.Background()
		s, _ := newStore(t)
		now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
		if err := s.RecordAlerted(ctx, []int64{1, 2}, now.Add(-2*time.Hour), 24*time.Hour); err != nil {
			t.Fatal(err)
		}
		// Expired an hour ago; moto never deletes it, and AWS deletes late.
		if err := s.RecordAlerted(ctx, []int64{3}, now.Add(-2*time.Hour), time.Hour); err != nil {
			t.Fatal(err)
		}
		// Expires exactly now: no longer counts.
		if err := s.RecordAlerted(ctx, []int64{4}, now.Add(-time.Hour), time.Hour); err != nil {
			t.Fatal(err)
		}
		got, err := s.Alerted(ctx, []int64{1, 2, 3, 4, 5, 1}, now)
		if err != nil {
			t.Fatal(err)
		}
		want := map[int64]bool{1: true, 2: true}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("Alerted = %v, want %v", got, want)
		}
		if got, err := s.Alerted(ctx, nil, now); err != nil || len(got) != 0 {
			t.Errorf("Alerted(nil) = %v, %v; want empty", got, err)
		}
	})

	t.Run("RecordAlerted of 60 ids writes them in batches of 25 and retries unprocessed items", func(t *testing.T) {
		ctx := context.Background()
		s, table := newStore(t)
		at := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
		var ids []int64
		for i := range 60 {
			ids = append(ids, 1_000_000_000_000+int64(i))
		}
		rec := &recorder{API: db, holdBack: 4}
		if err := dynamo.New(rec, table).RecordAlerted(ctx, append(ids, ids[0]), at, 48*time.Hour); err != nil {
			t.Fatal(err)
		}
		if want := []int{25, 4, 25, 10}; !slices.Equal(rec.batchSizes, want) {
			t.Errorf("BatchWriteItem item counts = %v, want %v", rec.batchSizes, want)
		}
		got, err := s.Alerted(ctx, ids, at.Add(47*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 60 {
			t.Errorf("Alerted found %d of 60 ids", len(got))
		}
		item := getItem(t, db, s, fmt.Sprint("alerted#", ids[59]))
		assertItem(t, "alerted item", item, map[string]string{
			"eventId":   fmt.Sprint(ids[59]),
			"alertedAt": "2026-11-25T10:00:00Z",
			"expiresAt": fmt.Sprint(at.Add(48 * time.Hour).Unix()),
		})
	})

	t.Run("a missing table is a configuration error naming ALLOWLIST_TABLE", func(t *testing.T) {
		ctx := context.Background()
		s := dynamo.New(db, "no-such-table")
		now := time.Now()
		calls := map[string]func() error{
			"GetUser":         func() error { _, _, err := s.GetUser(ctx, "u1"); return err },
			"PutUser":         func() error { return s.PutUser(ctx, ipguard.User{ID: "u1"}) },
			"Users":           func() error { _, err := s.Users(ctx, []string{"u1"}); return err },
			"AllUsers":        func() error { _, err := s.AllUsers(ctx); return err },
			"TryAcquireLease": func() error { _, err := s.TryAcquireLease(ctx, "a", "o", now, now); return err },
			"ReleaseLease":    func() error { return s.ReleaseLease(ctx, "a", "o") },
			"Checkpoint":      func() error { _, _, err := s.Checkpoint(ctx); return err },
			"SetCheckpoint":   func() error { return s.SetCheckpoint(ctx, now) },
			"Alerted":         func() error { _, err := s.Alerted(ctx, []int64{1}, now); return err },
			"RecordAlerted":   func() error { return s.RecordAlerted(ctx, []int64{1}, now, time.Hour) },
		}
		for name, call := range calls {
			err := call()
			if code := ipguard.ErrorCode(err); code != ipguard.EConfig {
				t.Errorf("%s: code %q (%v), want %q", name, code, err, ipguard.EConfig)
				continue
			}
			if msg := err.Error(); !strings.Contains(msg, "ALLOWLIST_TABLE") || !strings.Contains(msg, "no-such-table") {
				t.Errorf("%s: message %q does not name ALLOWLIST_TABLE and the table", name, msg)
			}
		}
	})
}

// putUsers stores each user in order with PutUser.
func putUsers(t *testing.T, s *dynamo.Store, us ...ipguard.User) {
	t.Helper()
	for _, u := range us {
		if err := s.PutUser(context.Background(), u); err != nil {
			t.Fatal(err)
		}
	}
}

// getItem reads the raw item pk of the store's table.
func getItem(t *testing.T, db *dynamodb.Client, s *dynamo.Store, pk string) map[string]types.AttributeValue {
	t.Helper()
	out, err := db.GetItem(context.Background(), &dynamodb.GetItemInput{
		TableName: aws.String(dynamo.Table(s)),
		Key:       map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: pk}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if out.Item == nil {
		t.Fatalf("no item %s", pk)
	}
	return out.Item
}

// assertItem holds the attributes of item (as attrText) to want.
func assertItem(t *testing.T, what string, item map[string]types.AttributeValue, want map[string]string) {
	t.Helper()
	for name, w := range want {
		if got := attrText(item[name]); got != w {
			t.Errorf("%s %s = %q, want %q", what, name, got, w)
		}
	}
}

// attrText is the text of a string or number attribute.
func attrText(v types.AttributeValue) string {
	switch v := v.(type) {
	case *types.AttributeValueMemberS:
		return v.Value
	case *types.AttributeValueMemberN:
		return v.Value
	default:
		return fmt.Sprintf("%T", v)
	}
}

func assertUser(t *testing.T, got, want ipguard.User) {
	t.Helper()
	if got.ID != want.ID || got.Email != want.Email || !slices.Equal(got.Entries, want.Entries) ||
		!got.CreatedAt.Equal(want.CreatedAt) || !got.UpdatedAt.Equal(want.UpdatedAt) {
		t.Errorf("user = %+v, want %+v", got, want)
	}
}

// recorder passes calls to the real client, counting Scan calls and batch
// sizes. On the first batch call it holds back the last holdBack keys or items
// and returns them as unprocessed, as DynamoDB does under throttling (moto
// never does).
// recordedStore is a store over a new moto table whose calls rec records,
// and the table's own client, for writes behind the store's back.
func recordedStore(t *testing.T, table string) (*dynamo.Store, *recorder, *dynamodb.Client) {
	t.Helper()
	db := localaws.MotoTableT(t, table)
	rec := &recorder{API: db}
	return dynamo.New(rec, table), rec, db
}

type recorder struct {
	dynamo.API
	holdBack   int
	scans      int
	batchSizes []int
}

func (r *recorder) Scan(ctx context.Context, in *dynamodb.ScanInput, opts ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error) {
	r.scans++
	return r.API.Scan(ctx, in, opts...)
}

func (r *recorder) BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
	var table string
	var ka types.KeysAndAttributes
	for table, ka = range in.RequestItems {
	}
	r.batchSizes = append(r.batchSizes, len(ka.Keys))
	held := r.holdBack
	r.holdBack = 0
	if held == 0 || held > len(ka.Keys) {
		return r.API.BatchGetItem(ctx, in, opts...)
	}
	send, keep := ka.Keys[:len(ka.Keys)-held], ka.Keys[len(ka.Keys)-held:]
	sent := ka
	sent.Keys = send
	out, err := r.API.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: map[string]types.KeysAndAttributes{table: sent}}, opts...)
	if err != nil {
		return nil, err
	}
	left := ka
	left.Keys = keep
	out.UnprocessedKeys = map[string]types.KeysAndAttributes{table: left}
	return out, nil
}

func (r *recorder) BatchWriteItem(ctx context.Context, in *dynamodb.BatchWriteItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error) {
	var table string
	var reqs []types.WriteRequest
	for table, reqs = range in.RequestItems {
	}
	r.batchSizes = append(r.batchSizes, len(reqs))
	held := r.holdBack
	r.holdBack = 0
	if held == 0 || held > len(reqs) {
		return r.API.BatchWriteItem(ctx, in, opts...)
	}
	out, err := r.API.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: map[string][]types.WriteRequest{table: reqs[:len(reqs)-held]}}, opts...)
	if err != nil {
		return nil, err
	}
	out.UnprocessedItems = map[string][]types.WriteRequest{table: reqs[len(reqs)-held:]}
	return out, nil
}

// neverProcesses leaves every key unprocessed, as a table throttled for good.
type neverProcesses struct {
	dynamo.API
	calls int
}

func (n *neverProcesses) BatchGetItem(_ context.Context, in *dynamodb.BatchGetItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
	n.calls++
	return &dynamodb.BatchGetItemOutput{UnprocessedKeys: in.RequestItems}, nil
}

// The doc comment promises a bounded number of tries, not "until ctx ends".
func TestUnprocessedKeysAreRetriedABoundedNumberOfTimes(t *testing.T) {
	api := &neverProcesses{}
	_, err := dynamo.New(api, "t").Alerted(context.Background(), []int64{1, 2}, time.Now())
	if ipguard.ErrorCode(err) != ipguard.EUnavailable || api.calls != 10 {
		t.Fatalf("err = %v after %d calls; want DependencyUnavailable after 10", err, api.calls)
	}
}

// #21 §3 / WHERE §10: a failures# item stays within DynamoDB's 400 KB
// whatever a flood writes into one bucket: every address at its bounds
// (the busiest with ipguard.MaxRecordAccounts accounts with all their
// seconds, all with a counted failed login in every second of the bucket,
// several in each). Every item holds its 4,000 addresses; the busiest
// keep their details, the others at least their count and span.
func TestAFailuresItemStaysUnderDynamoDBsItemLimitUnderAFlood(t *testing.T) {
	s := tableStore(t, motoDB(t), "failsize")
	b := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	secs := func(n int) []int64 {
		var out []int64
		for i := 0; i < n; i++ {
			out = append(out, b.Unix()+int64(i))
		}
		return out
	}
	var counted []ipguard.SecondCount
	for i := 0; i < 600; i++ {
		counted = append(counted, ipguard.SecondCount{At: b.Unix() + int64(i), N: 1 + i%3})
	}
	var fs []ipguard.AddressFailures
	var ips []string
	for a := 0; a < 20000; a++ {
		f := ipguard.AddressFailures{IP: fmt.Sprintf("10.%d.%d.%d", a/65536, (a/256)%256, a%256), Count: 100000 - a,
			First: b, Last: b.Add(5 * time.Minute), Counted: counted}
		for k := 0; k < ipguard.MaxRecordAccounts && (a < 100 || k == 0); k++ {
			f.Accounts = append(f.Accounts, ipguard.AccountFailures{Account: fmt.Sprintf("%016x", a*100+k),
				Failed: secs(2 * ipguard.KeepFailed), Succeeded: secs(2 * ipguard.KeepSucceeded)})
		}
		fs = append(fs, f)
		ips = append(ips, f.IP)
	}
	if _, err := s.RecordFailures(context.Background(), fs, time.Hour); err != nil {
		t.Fatalf("RecordFailures: %v", err)
	}
	got, err := s.Failures(context.Background(), ips, b, b.Add(10*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	top := got[fs[0].IP]
	if len(got) != 4*4000 || len(top) != 1 || len(top[0].Accounts) != ipguard.MaxRecordAccounts || len(top[0].Counted) != 600 || ipguard.CountedTotal(top[0].Counted) != ipguard.CountedTotal(counted) {
		t.Errorf("%d addresses kept; the busiest %+v; want every item at 4,000 addresses, the busiest with its details", len(got), top)
	}
}

// #21 §3: an item written before the counted failed logins were kept per
// second (a second listed once per login) reads as the same logins, and a
// concurrent first use of the account-hash key gives every caller one key.
func TestFailuresOfTheEarlierFormatReadAsTheSameLogins(t *testing.T) {
	db := motoDB(t)
	s := tableStore(t, db, "failold")
	b := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	n := func(v int64) types.AttributeValue {
		return &types.AttributeValueMemberN{Value: strconv.FormatInt(v, 10)}
	}
	old := &types.AttributeValueMemberL{Value: []types.AttributeValue{n(4), n(b.Unix()), n(b.Unix() + 5),
		&types.AttributeValueMemberM{Value: map[string]types.AttributeValue{}}, n(0),
		&types.AttributeValueMemberL{Value: []types.AttributeValue{n(b.Unix()), n(b.Unix()), n(b.Unix()), n(b.Unix() + 5)}}}}
	for shard := 0; shard < 4; shard++ {
		_, err := db.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: aws.String(dynamo.Table(s)), Item: map[string]types.AttributeValue{
			"pk": &types.AttributeValueMemberS{Value: fmt.Sprintf("failures#%d#%d", b.Unix(), shard)},
			"a":  &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"198.51.100.30": old}}}})
		if err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Failures(context.Background(), []string{"198.51.100.30"}, b, b.Add(10*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	want := []ipguard.SecondCount{{At: b.Unix(), N: 3}, {At: b.Unix() + 5, N: 1}}
	if r := got["198.51.100.30"]; len(r) != 1 || fmt.Sprint(r[0].Counted) != fmt.Sprint(want) {
		t.Errorf("Failures = %+v; want the counted logins %v", r, want)
	}

	keys := make(chan []byte, 4)
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k, err := dynamo.New(db, dynamo.Table(s)).AccountHashKey(context.Background())
			if err != nil {
				t.Error(err)
			}
			keys <- k
		}()
	}
	wg.Wait()
	close(keys)
	var first []byte
	for k := range keys {
		if first == nil {
			first = k
		}
		if len(k) != 32 || !bytes.Equal(k, first) {
			t.Errorf("concurrent first uses gave keys of %d bytes, %x and %x; want one 32-byte key", len(k), first, k)
		}
	}
}

// dropper is a proxy in front of moto that forwards every request and, for
// the next request whose target operation and body match, throws the answer
// away (closes the connection) after DynamoDB applied it: the lost answer
// that makes the SDK resend.
type dropper struct {
	target  string
	mu      sync.Mutex
	op      string // e.g. "PutItem"
	marker  string // substring of the body
	seen    int    // matching requests seen since armed
	dropped int
}

func (d *dropper) arm(op, marker string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.op, d.marker, d.seen, d.dropped = op, marker, 0, 0
}

func (d *dropper) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	req, _ := http.NewRequestWithContext(r.Context(), r.Method, d.target+r.URL.RequestURI(), bytes.NewReader(body))
	req.Header = r.Header.Clone()
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)

	d.mu.Lock()
	drop := false
	if d.op != "" && strings.HasSuffix(r.Header.Get("X-Amz-Target"), "."+d.op) && strings.Contains(string(body), d.marker) {
		d.seen++
		if d.dropped == 0 {
			d.dropped++
			drop = true
		}
	}
	d.mu.Unlock()
	if drop {
		if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
			conn.Close()
		}
		return
	}
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	w.Write(answer)
}

// TestLeaseResendRecognisesItsOwnToken: DynamoDB applies the conditional
// write, the answer is lost, the SDK resends, and the resend must still see
// the lease as ours (take) or as already gone (release). (A lease is never
// renewed: it lasts until the holder's Lambda deadline plus a grace.)
func TestLeaseResendRecognisesItsOwnToken(t *testing.T) {
	m := localaws.MotoT(t)
	_ = m
	cfg, err := localaws.Config(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	plain := dynamodb.NewFromConfig(cfg)
	localaws.TableT(t, plain, "lease-drop")
	d := &dropper{target: strings.TrimRight(aws.ToString(cfg.BaseEndpoint), "/")}
	if d.target == "" {
		for _, kv := range m.Env() {
			if v, ok := strings.CutPrefix(kv, "AWS_ENDPOINT_URL="); ok {
				d.target = strings.TrimRight(v, "/")
			}
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: d, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	db := dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) { o.BaseEndpoint = aws.String("http://" + ln.Addr().String()) })
	s := dynamo.New(db, "lease-drop")
	ctx := context.Background()

	d.arm("PutItem", "lease#portal-allowlist")
	h, err := lease.Acquire(ctx, s, "portal-allowlist", lease.Options{Wait: 2 * time.Second})
	if err != nil {
		t.Fatalf("acquire after a lost answer: %v (the holder waited on its own record)", err)
	}
	if d.seen < 2 {
		t.Fatalf("the proxy saw %d take requests; the lost answer was not resent", d.seen)
	}

	d.arm("DeleteItem", "lease#portal-allowlist")
	if err := h.Release(ctx); err != nil {
		t.Fatalf("release after a lost answer: %v", err)
	}
	if d.seen < 2 {
		t.Fatalf("release not resent (%d)", d.seen)
	}
	// Released for real: another owner takes it at once.
	if ok, err := s.TryAcquireLease(ctx, "portal-allowlist", "next", time.Now().Add(time.Minute), time.Now()); err != nil || !ok {
		t.Fatalf("lease not free after release: %v, %v", ok, err)
	}
}

// Under a flood of failed logins from more addresses than a bucket's items
// keep, the fewest failures give way, and with them a guesser's three
// attempts (its record is gone for the next run's correlation). The store
// says how many addresses gave way, so the audit tells the loss
// (coverage_lost, failures_forgotten); it says 0 when every address is
// kept (attack review of the audit path).
func TestRecordFailuresSaysHowManyAddressesGaveWay(t *testing.T) {
	ctx := context.Background()
	s := tableStore(t, motoDB(t), "failflood")
	b := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	const guesser = "203.0.113.77"
	fs := []ipguard.AddressFailures{{IP: guesser, Count: 3, First: b.Add(time.Minute), Last: b.Add(time.Minute + 2*time.Second)}}
	n, err := s.RecordFailures(ctx, fs, time.Hour)
	if err != nil || n != 0 {
		t.Fatalf("one address: forgotten %d, %v; want 0", n, err)
	}
	var flood []ipguard.AddressFailures
	a := netip.MustParseAddr("172.16.0.1")
	for range 18_000 {
		flood = append(flood, ipguard.AddressFailures{IP: a.String(), Count: 4, First: b.Add(2 * time.Minute), Last: b.Add(3 * time.Minute)})
		a = a.Next()
	}
	n, err = s.RecordFailures(ctx, flood, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if want := 18_001 - 4*4000; n < want {
		t.Errorf("forgotten %d; want at least %d (4 items of 4,000 addresses keep at most 16,000)", n, want)
	}
	got, err := s.Failures(ctx, []string{guesser}, b, b.Add(10*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if len(got[guesser]) != 0 {
		t.Logf("the guesser's record survived this flood (its shard held fewer than 4,000 flood addresses): %+v", got[guesser])
	}
}

// DesiredUsers reads of every user what AllUsers reads of its id, entries
// and their details (also an unreadable item, marked as such), and nothing
// else.
func TestDesiredUsersReadTheEntriesAsAllUsersDoes(t *testing.T) {
	ctx := context.Background()
	db := motoDB(t)
	s := tableStore(t, db, "desired")
	now := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	for _, u := range []ipguard.User{
		{ID: "plain", Email: "p@example.com", Entries: []string{"203.0.113.1", "198.51.100.0/30"}, CreatedAt: now, UpdatedAt: now},
		{ID: "trip", Email: "t@example.com", Entries: []string{"203.0.113.2", "198.51.100.9"}, CreatedAt: now, UpdatedAt: now,
			Details: map[string]ipguard.EntryDetail{"198.51.100.9": {ExpiresAt: now.Add(time.Hour), Note: "conference", Place: "DE"}},
			Touched: map[string]time.Time{"203.0.113.2": now}},
		{ID: "none", Email: "n@example.com", Entries: []string{}, CreatedAt: now, UpdatedAt: now},
	} {
		if ok, err := s.PutUserIf(ctx, u, 0); !ok || err != nil {
			t.Fatal(ok, err)
		}
	}
	if _, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String("desired"), Item: map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: "user#bad"}, "id": &types.AttributeValueMemberS{Value: "bad"}, "allowedIps": &types.AttributeValueMemberS{Value: "not a list"}}}); err != nil {
		t.Fatal(err)
	}
	all, aerr := s.AllUsers(ctx)
	got, err := s.DesiredUsers(ctx)
	if aerr != nil || err != nil {
		t.Fatal(aerr, err)
	}
	want := map[string]ipguard.User{}
	for _, u := range all {
		want[u.ID] = ipguard.User{ID: u.ID, Entries: u.Entries, Details: u.Details, Unreadable: u.Unreadable}
	}
	if len(got) != len(want) {
		t.Fatalf("DesiredUsers = %d users, AllUsers %d", len(got), len(all))
	}
	for _, u := range got {
		w := want[u.ID]
		if (u.Unreadable == "") != (w.Unreadable == "") || !slices.Equal(u.Entries, w.Entries) || fmt.Sprint(u.Details) != fmt.Sprint(w.Details) {
			t.Errorf("DesiredUsers %s = %+v; AllUsers %+v", u.ID, u, w)
		}
		if u.Email != "" || !u.CreatedAt.IsZero() || u.Touched != nil || u.Rev != 0 {
			t.Errorf("DesiredUsers %s read more than the entries: %+v", u.ID, u)
		}
	}
}

// DesiredUsers reads every page of a table past 1 MB (its projection does
// not shrink what DynamoDB reads per page), and reads an item broken only
// beside the entries (here its request times) as its entries, where
// AllUsers marks it unreadable and GetUser fails (EInternal): the onboard
// side (brokenBeside in its tests) is written for exactly this.
func TestDesiredUsersPagesAndReadsAnItemBrokenBesideItsEntries(t *testing.T) {
	ctx := context.Background()
	db := motoDB(t)
	s := tableStore(t, db, "paged")
	var want []string
	for i := range 24 { // 24 items of about 60 KB in their entries
		u := ipguard.User{ID: fmt.Sprintf("u%02d", i), Email: "a@example.com", Entries: make([]string, 200)}
		for j := range u.Entries {
			u.Entries[j] = fmt.Sprintf("%0300d", j) // the store keeps any string
		}
		want = append(want, u.ID)
		putUsers(t, s, u)
	}
	item := map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "user#broken"},
		"allowedIps": &types.AttributeValueMemberL{Value: []types.AttributeValue{&types.AttributeValueMemberS{Value: "203.0.113.9"}}},
		"touched":    &types.AttributeValueMemberN{Value: "1"}}
	if _, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String("paged"), Item: item}); err != nil {
		t.Fatal(err)
	}
	want = append(want, "broken")
	rec := &recorder{API: db}
	got, err := dynamo.New(rec, "paged").DesiredUsers(ctx)
	all, aerr := s.AllUsers(ctx)
	_, _, gerr := s.GetUser(ctx, "broken")
	if err != nil || aerr != nil || ipguard.ErrorCode(gerr) != ipguard.EInternal {
		t.Fatalf("DesiredUsers: %v; AllUsers: %v; GetUser of the broken item: %v (want EInternal)", err, aerr, gerr)
	}
	if rec.scans < 2 {
		t.Errorf("DesiredUsers made %d Scan calls; the test needs more than one page", rec.scans)
	}
	var ids []string
	for _, u := range got {
		ids = append(ids, u.ID)
		if u.ID == "broken" && (u.Unreadable != "" || !slices.Equal(u.Entries, []string{"203.0.113.9"})) {
			t.Errorf("DesiredUsers read the item broken beside its entries as %+v; want its entries", u)
		}
		if u.ID != "broken" && len(u.Entries) != 200 {
			t.Errorf("DesiredUsers %s: %d entries, want 200", u.ID, len(u.Entries))
		}
	}
	slices.Sort(ids)
	slices.Sort(want)
	if !slices.Equal(ids, want) {
		t.Errorf("DesiredUsers ids = %q, want %q", ids, want)
	}
	for _, u := range all {
		if u.ID == "broken" && u.Unreadable == "" {
			t.Errorf("AllUsers read the broken item as %+v; want it marked unreadable", u)
		}
	}
}

// expressionRecorder is a dynamo.API that keeps the update expressions of
// the UpdateItem calls made through it.
type expressionRecorder struct {
	dynamo.API
	mu      sync.Mutex
	updates []string
}

func (r *expressionRecorder) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, o ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	r.mu.Lock()
	r.updates = append(r.updates, aws.ToString(in.UpdateExpression))
	r.mu.Unlock()
	return r.API.UpdateItem(ctx, in, o...)
}

// actions counts the actions of an update expression ("SET a = :a, b = :b
// REMOVE c" has three).
func actions(expr string) int {
	n := 0
	for _, clause := range []string{"SET ", "REMOVE ", "ADD ", "DELETE "} {
		i := strings.Index(expr, clause)
		if i < 0 {
			continue
		}
		rest := expr[i+len(clause):]
		for _, next := range []string{" SET ", " REMOVE ", " ADD ", " DELETE "} {
			if j := strings.Index(rest, next); j >= 0 {
				rest = rest[:j]
			}
		}
		n += strings.Count(rest, ",") + 1
	}
	return n
}

// fullState is a state with every field set.
func fullState() ipguard.PortalState {
	at := time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC)
	return ipguard.PortalState{
		Applied: 3, AddsApplied: 2, Owned: []string{"192.0.2.1", "a\nb%"},
		LastSeen:    []ipguard.Restriction{{IP: "192.0.2.1"}, {IP: "198.51.100.0/24", ForAdmin: true}},
		LastEnabled: true, Reconciled: true, Pending: "the portal <did not> answer & \"more\"", PendingCode: ipguard.EUnavailable, PendingVersion: 3,
		LastReconcile: at, DriftEpisode: "d1", LockoutNotice: "l1", TrailNotice: "t1", RecordNotice: "r1", HandOff: true,
		Sent: []ipguard.Restriction{{IP: "192.0.2.1"}, {IP: "203.0.113.5"}}, SentAdded: []string{"203.0.113.5"}, SentEnable: true,
		SentOutcome: ipguard.SentUnknown, SentAt: at.Add(time.Second), LateSent: []string{"h1 192.0.2.9"}, AlertsDue: true,
		OwnSaves: []time.Time{at, at.Add(time.Minute)}, KeyUser: "u-key", LastPass: 420 * time.Millisecond,
		UnansweredSaves: []ipguard.SaveWindow{{From: at, Until: at.Add(2 * time.Second)}}, RecheckDue: at.Add(time.Hour),
	}
}

// sameStoredState compares what a write of want stores with got (the
// counters that only bumps move aside).
func sameStoredState(got, want ipguard.PortalState) bool {
	got.Version, got.Adds, got.DueMarks, want.Version, want.Adds, want.DueMarks = 0, 0, 0, 0, 0, 0
	got.Pass, got.Base, want.Pass, want.Base = "", "", "", ""
	return fmt.Sprintf("%+v", got) == fmt.Sprintf("%+v", want)
}

// The state item's own fields are two documents (#15 §6): a state write is
// a handful of actions, whatever the state holds, where it was one a field
// (31), and a store's cost of a write grows with its actions. Every field
// reads back as written, the poll's read included.
func TestPortalStateWriteIsPacked(t *testing.T) {
	db := motoDB(t)
	tableStore(t, db, "statepacked")
	rec := &expressionRecorder{API: db}
	s := dynamo.New(rec, "statepacked")
	ctx := context.Background()
	want := fullState()
	if _, err := s.PortalState(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.PutPortalState(ctx, want); err != nil {
		t.Fatal(err)
	}
	if len(rec.updates) != 1 || actions(rec.updates[0]) > 5 {
		t.Errorf("state write: %q (%d actions); want one UpdateItem of at most 5 actions", rec.updates, actions(rec.updates[0]))
	}
	got, err := s.PortalState(ctx)
	if err != nil || !sameStoredState(got, want) {
		t.Fatalf("read back:\n%+v, %v\nwant\n%+v", got, err, want)
	}
	raw, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String("statepacked"),
		Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "state#portal-allowlist"}}})
	if err != nil {
		t.Fatal(err)
	}
	for name := range raw.Item {
		if !slices.Contains([]string{"pk", "applied", "addsApplied", "progress", "rest", "writeId"}, name) {
			t.Errorf("state item attribute %q: want only the counters, the documents and the write's id", name)
		}
	}
	peek, free, err := s.PortalStateAndLease(ctx, "portal-allowlist", time.Now())
	if err != nil || !free || peek.Applied != 3 || peek.Pending != want.Pending || peek.PendingVersion != 3 || !peek.Reconciled ||
		!peek.LastEnabled || len(peek.LastSeen) != 2 || !peek.LastSeen[1].ForAdmin || peek.LastPass != want.LastPass {
		t.Errorf("poll = %+v, %v, %v; want the progress as written", peek, free, err)
	}
}

// A state written by a version before the packing (one attribute a field,
// pending in every write) is read from its attributes, by a full read and
// by the poll; the next write moves it into the documents and removes the
// attributes, whether the writing process read them first or not (a fresh
// container: its write's condition finds them). A version before that
// writes after the documents (a rollback) is read from its attributes
// again.
func TestPortalStateBeforeThePackingIsMovedByTheNextWrite(t *testing.T) {
	db := motoDB(t)
	ctx := context.Background()
	legacy := map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: "state#portal-allowlist"}, "version": &types.AttributeValueMemberN{Value: "4"},
		"applied": &types.AttributeValueMemberN{Value: "4"}, "seen": &types.AttributeValueMemberS{Value: "-192.0.2.1\na198.51.100.7\n"},
		"owns": &types.AttributeValueMemberS{Value: "192.0.2.1\n"}, "pending": &types.AttributeValueMemberS{Value: ""},
		"reconciled": &types.AttributeValueMemberBOOL{Value: true}, "lastEnabled": &types.AttributeValueMemberBOOL{Value: true},
		"driftEpisode": &types.AttributeValueMemberS{Value: "ep1"}, "passMs": &types.AttributeValueMemberN{Value: "300"},
		"writeId": &types.AttributeValueMemberS{Value: "w-old"},
	}
	attrsLeft := func(t *testing.T, table string) []string {
		t.Helper()
		raw, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table),
			Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "state#portal-allowlist"}}})
		if err != nil {
			t.Fatal(err)
		}
		var left []string
		for name := range raw.Item {
			if !slices.Contains([]string{"pk", "version", "applied", "addsApplied", "progress", "rest", "writeId"}, name) {
				left = append(left, name)
			}
		}
		return left
	}
	for _, readFirst := range []bool{true, false} {
		name := map[bool]string{true: "read first", false: "a fresh process"}[readFirst]
		t.Run(name, func(t *testing.T) {
			table := map[bool]string{true: "statebefore-read", false: "statebefore-fresh"}[readFirst]
			tableStore(t, db, table)
			if _, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: legacy}); err != nil {
				t.Fatal(err)
			}
			reader := dynamo.New(db, table)
			st, err := reader.PortalState(ctx)
			if err != nil || st.Applied != 4 || len(st.LastSeen) != 2 || !slices.Equal(st.Owned, []string{"192.0.2.1"}) || st.DriftEpisode != "ep1" || !st.Reconciled {
				t.Fatalf("legacy state = %+v, %v", st, err)
			}
			if peek, _, err := reader.PortalStateAndLease(ctx, "portal-allowlist", time.Now()); err != nil || len(peek.LastSeen) != 2 || !peek.Reconciled || peek.LastPass != 300*time.Millisecond {
				t.Fatalf("poll of the legacy state = %+v, %v; want its attributes", peek, err)
			}
			writer := reader
			if !readFirst {
				writer = dynamo.New(db, table)
			}
			next := st
			next.Owned, next.DriftEpisode = []string{"192.0.2.1", "192.0.2.2"}, ""
			if err := writer.PutPortalState(ctx, next); err != nil {
				t.Fatal(err)
			}
			if left := attrsLeft(t, table); len(left) > 0 {
				t.Errorf("after the next write, attributes of the version before are left: %q", left)
			}
			if got, err := reader.PortalState(ctx); err != nil || !sameStoredState(got, next) || got.Version != 4 {
				t.Errorf("after the next write: %+v, %v; want %+v", got, err, next)
			}
			// A rollback: the version before writes again, one attribute a field.
			if _, err := db.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(table),
				Key:              map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "state#portal-allowlist"}},
				UpdateExpression: aws.String("SET applied = :a, seen = :seen, owns = :owns, pending = :p, reconciled = :r, writeId = :w"),
				ExpressionAttributeValues: map[string]types.AttributeValue{":a": &types.AttributeValueMemberN{Value: "5"},
					":seen": &types.AttributeValueMemberS{Value: "-192.0.2.3\n"}, ":owns": &types.AttributeValueMemberS{Value: "192.0.2.3\n"},
					":p": &types.AttributeValueMemberS{Value: "older"}, ":r": &types.AttributeValueMemberBOOL{Value: true},
					":w": &types.AttributeValueMemberS{Value: "w-older"}},
			}); err != nil {
				t.Fatal(err)
			}
			got, err := reader.PortalState(ctx)
			if err != nil || got.Applied != 5 || !slices.Equal(got.Owned, []string{"192.0.2.3"}) || got.Pending != "older" {
				t.Errorf("after the version before wrote again: %+v, %v; want its attributes (applied 5, owns 192.0.2.3, pending older)", got, err)
			}
			if peek, _, err := dynamo.New(db, table).PortalStateAndLease(ctx, "portal-allowlist", time.Now()); err != nil || peek.Pending != "older" || len(peek.LastSeen) != 1 {
				t.Errorf("poll after the version before wrote again: %+v, %v; want its attributes", peek, err)
			}
		})
	}
}
