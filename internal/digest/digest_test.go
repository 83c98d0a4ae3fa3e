package digest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"ipguard/internal/audit"
	"ipguard/internal/audit/audittest"
	"ipguard/internal/digest"
	"ipguard/internal/dynamo"
	"ipguard/internal/ipguard"
	"ipguard/internal/redact"
	"ipguard/internal/testbed/localaws"
)

func TestDayIsTheFirstDigestHourAfterTheFinding(t *testing.T) {
	tests := []struct {
		at   string
		hour int
		want string
	}{
		{"2026-12-04T07:59:59Z", 8, "2026-12-04"},
		{"2026-12-04T08:00:00Z", 8, "2026-12-05"},
		{"2026-12-31T23:00:00Z", 8, "2027-01-01"},
		{"2026-12-04T00:00:00Z", 0, "2026-12-05"},
		{"2026-12-04T10:00:00+05:00", 8, "2026-12-04"}, // 05:00 UTC
	}
	for _, tt := range tests {
		at, _ := time.Parse(time.RFC3339, tt.at)
		if got := digest.Day(at, tt.hour); got != tt.want {
			t.Errorf("Day(%s, %d) = %s, want %s", tt.at, tt.hour, got, tt.want)
		}
	}
}

// newDigest is a publisher that gathers low findings into the digest sent
// after 08:00 UTC, on the clock *now, with its store and what it sends.
func newDigest(now *time.Time) (*digest.Publisher, *audittest.Revised, *audittest.Topic) {
	st, out := &audittest.Revised{}, &audittest.Topic{}
	p := &digest.Publisher{Next: out, Store: st, Severities: map[string]bool{"low": true}, Hour: 8, Portal: "portal.example.com", Now: func() time.Time { return *now }}
	return p, st, out
}

// digestMail publishes fs as a batch marked Digest, moves *now to at and
// returns the one digest then sent.
func digestMail(t *testing.T, p *digest.Publisher, out *audittest.Topic, now *time.Time, at time.Time, fs []audit.Finding) string {
	t.Helper()
	ctx := context.Background()
	a := ipguard.Alert{Severity: "low", Digest: true}
	a.Default, _ = jsonPayload(fs)
	if _, err := p.Publish(ctx, a); err != nil {
		t.Fatal(err)
	}
	*now = at
	if _, err := p.SendDue(ctx); err != nil || len(out.Sent) != 1 {
		t.Fatalf("sent %d, %v", len(out.Sent), err)
	}
	return out.Sent[0].Email
}

func lowAlert(t *testing.T, fs ...audit.Finding) ipguard.Alert {
	t.Helper()
	a := ipguard.Alert{Severity: "low", Subject: "low"}
	b, _ := jsonPayload(fs)
	a.Default = b
	return a
}

func TestDigestGathersLowFindingsAndSendsOnceAfterTheHour(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
	p, _, out := newDigest(&now)

	f := func(id int64, email, ip string) audit.Finding {
		return audit.Finding{EventID: id, Kind: "new_country", Severity: "low", Email: email, IP: ip}
	}
	id, err := p.Publish(ctx, lowAlert(t, f(1, "ann@example.com", "203.0.113.1"), f(2, "ann@example.com", "203.0.113.2")))
	if err != nil || id != "digest:2026-12-05" || len(out.Sent) != 0 {
		t.Fatalf("Publish = %q, %v; %d sent; want the findings gathered for 2026-12-05", id, err, len(out.Sent))
	}
	now = now.Add(12 * time.Hour)
	if _, err := p.Publish(ctx, lowAlert(t, f(3, "bob\u202e@example.com", "203.0.113.1"))); err != nil {
		t.Fatal(err)
	}
	for _, a := range []ipguard.Alert{
		{Severity: "high", Default: `{"events":[{"kind":"ip_not_allowed"}]}`},
		{Severity: "low", Default: `{"events":[{"kind":"x"}],"test":true}`},
		{Severity: "low", Default: `{"kind":"api_key_expiring"}`},
		// Run-wide news waits for no digest.
		{Severity: "low", Digest: true, Default: `{"notices":["enforcement suspended for this run"],"events":[{"kind":"ip_not_allowed"}]}`},
	} {
		if _, err := p.Publish(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	if len(out.Sent) != 4 {
		t.Fatalf("%d alerts passed through, want 4 (high, the test alert, a non-audit alert, one carrying a notice)", len(out.Sent))
	}
	out.Sent = nil

	now = time.Date(2026, 12, 5, 7, 55, 0, 0, time.UTC) // before the hour
	if sent, err := p.SendDue(ctx); err != nil || len(sent) != 0 {
		t.Fatalf("before the hour: sent %v, %v", sent, err)
	}
	now = time.Date(2026, 12, 5, 8, 5, 0, 0, time.UTC) // the first run after it
	out.Err = errors.New("sns down")
	if _, err := p.SendDue(ctx); err == nil {
		t.Fatal("a failed send was not reported")
	}
	out.Err = nil
	now = now.Add(5 * time.Minute)
	sent, err := p.SendDue(ctx)
	if err != nil || len(sent) != 1 || len(out.Sent) != 1 {
		t.Fatalf("after the hour: sent %v, %v, %d messages", sent, err, len(out.Sent))
	}
	now = now.Add(5 * time.Minute)
	if sent, _ := p.SendDue(ctx); len(sent) != 0 || len(out.Sent) != 1 {
		t.Fatalf("the next run sent the digest again")
	}
	m := out.Sent[0]
	for _, want := range []string{"3 finding(s)", "new_country: 3", "ann@example.com: 2", "203.0.113.1: 2", `bob\u202E@example.com: 1`} {
		if !strings.Contains(m.Email, want) {
			t.Errorf("digest e-mail lacks %q:\n%s", want, m.Email)
		}
	}
	if strings.Contains(m.Email, "\u202e") || !strings.Contains(m.Subject, "2026-12-05") {
		t.Errorf("subject %q / e-mail not cleaned", m.Subject)
	}
}

// A digest whose runs failed or stopped short for more than a day is still
// sent by the first run that completes, as long as its item is kept.
func TestDigestOfADayLongAgoIsStillSent(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	p, st, out := newDigest(&now)
	for _, later := range []time.Duration{3 * 24 * time.Hour, 7*24*time.Hour + 7*time.Hour} {
		t.Run(later.String(), func(t *testing.T) {
			st.Items, st.Revs = nil, nil
			now = time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
			if _, err := p.Publish(ctx, lowAlert(t, audit.Finding{EventID: 1, Kind: "new_country", Severity: "low", Email: "ann@example.com", IP: "203.0.113.1"})); err != nil {
				t.Fatal(err)
			}
			out.Sent = nil
			now = now.Add(later)
			sent, err := p.SendDue(ctx)
			if err != nil || len(sent) != 1 || sent[0] != "2026-12-02" || len(out.Sent) != 1 {
				t.Errorf("%s later: sent %v, %v; want the digest of 2026-12-02", later, sent, err)
			}
		})
	}
}

// The digest item keeps no secret a finding's text may carry.
func TestDigestItemIsCleanedOfSecrets(t *testing.T) {
	const secret = "sk-fix18-digest-0123456789"
	redact.Remember(secret)
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	st := &audittest.Revised{}
	p := &digest.Publisher{Next: &audittest.Topic{}, Store: st, Severities: map[string]bool{"low": true}, Hour: 8, Now: func() time.Time { return now }}
	if _, err := p.Publish(context.Background(), lowAlert(t, audit.Finding{EventID: 1, Kind: "new_country", Severity: "low", Email: "x" + secret, IP: secret})); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(st.Items)
	if strings.Contains(string(b), secret[3:]) {
		t.Errorf("the digest item holds the secret: %s", b)
	}
}

// The digest over the DynamoDB store: gathered across two publishes, sent
// once, and the item says so.
func TestDigestInDynamoDB(t *testing.T) {
	ctx := context.Background()
	db := localaws.MotoTableT(t, "t")
	now := time.Date(2026, 12, 4, 20, 0, 0, 0, time.UTC)
	out := &audittest.Topic{}
	store := dynamo.New(db, "t")
	p := &digest.Publisher{Next: out, Store: store, Severities: map[string]bool{"low": true}, Hour: 8, Portal: "p", Now: func() time.Time { return now }}
	for i := int64(1); i <= 2; i++ {
		if _, err := p.Publish(ctx, lowAlert(t, audit.Finding{EventID: i, Kind: "new_device", Severity: "low", Email: "ann@example.com", IP: "203.0.113.9"})); err != nil {
			t.Fatal(err)
		}
	}
	now = now.Add(12 * time.Hour) // 08:00 the next day
	for i := 0; i < 2; i++ {
		if _, err := p.SendDue(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if len(out.Sent) != 1 || !strings.Contains(out.Sent[0].Email, "new_device: 2") {
		t.Fatalf("sent %d digests: %+v", len(out.Sent), out.Sent)
	}
	var d digest.Digest
	if _, ok, err := store.LoadRevised(ctx, digest.Prefix+"2026-12-05", &d); err != nil || !ok || d.Sent == "" || d.Total != 2 {
		t.Errorf("item = %+v, %v, %v", d, ok, err)
	}
}

func jsonPayload(fs []audit.Finding) (string, error) {
	b, err := json.Marshal(audit.Payload{Portal: "portal.example.com", Severity: "low", Events: fs})
	return string(b), err
}

// refusing refuses the digest of one day (an alert the topic never takes,
// e.g. one it finds too large) and sends the others.
type refusing struct {
	audittest.Topic
	day string
}

func (r *refusing) Publish(ctx context.Context, a ipguard.Alert) (string, error) {
	if strings.Contains(a.Subject, r.day) {
		return "", ipguard.Errorf(ipguard.EInternal, "sns: alert message is 300000 bytes with its attributes, at most 262144 allowed")
	}
	return r.Topic.Publish(ctx, a)
}

// One day's digest that cannot be sent does not hold back the days after
// it: each due day is sent on its own, and the failure is still returned
// (a warning of the run). Before, SendDue stopped at the first day that
// failed, so one digest the topic refused kept every later digest unsent
// for the eight days the item lives (attack review of the audit path).
func TestADigestThatCannotBeSentHoldsBackNoOtherDay(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	p, _, _ := newDigest(&now)
	out := &refusing{day: "2026-12-02"}
	p.Next = out
	for _, at := range []time.Time{now, now.Add(24 * time.Hour)} { // into the digests of 12-02 and 12-03
		now = at
		if _, err := p.Publish(ctx, lowAlert(t, audit.Finding{EventID: at.Unix(), Kind: "new_device", Severity: "low", Email: "ann@example.com", IP: "203.0.113.1"})); err != nil {
			t.Fatal(err)
		}
	}
	now = time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	sent, err := p.SendDue(ctx)
	if err == nil || !strings.Contains(err.Error(), "2026-12-02") {
		t.Errorf("SendDue error %v; want the refused day named", err)
	}
	if len(sent) != 1 || sent[0] != "2026-12-03" || len(out.Sent) != 1 {
		t.Errorf("sent %v (%d messages); want the digest of 2026-12-03 sent although 2026-12-02's was refused", sent, len(out.Sent))
	}
}

// A day's digest is one DynamoDB item (at most 400 KB) whatever the portal's
// names: every text it keeps is cut to a bound when it is added. Before,
// the users it counts, the familiar misses, the trips and the episodes
// kept the portal's login names and countries whole: 300 people whose
// login names were 2 KB each made an item DynamoDB refuses, so adding to
// the digest failed, and with it every audit run until the digest hour
// (the failure is a failed publish) (attack review of the audit path).
func TestADigestItemStaysWithinOneItemWhateverThePortalNames(t *testing.T) {
	long := strings.Repeat("é", 1500) // 3 KB
	var d digest.Digest
	for i := range 2000 {
		id := fmt.Sprintf("aaaaaaaa-0000-4000-8000-%012d", i)
		kinds := []audit.Finding{
			{EventID: int64(i) + 1, Kind: audit.KindUnknownUser, Severity: audit.SeverityMedium, DigestOnly: true, UserID: id, Login: long + fmt.Sprint(i), User: long, IP: fmt.Sprintf("198.51.%d.%d", i/250, i%250), Date: "2026-12-04T09:00:00Z"},
			{EventID: int64(i) + 100000, Kind: audit.KindIPNotAllowed, Severity: audit.SeverityLow, Digest: true, UserID: id, Login: long + fmt.Sprint(i), IP: "203.0.113.9", Country: long, Date: "2026-12-04T09:00:00Z",
				Episode:  &audit.Episode{Key: id + "|" + long, Country: long, First: "2026-12-04T09:00:00Z", Count: 2, Repeat: true, Hours: 24},
				Familiar: &audit.Familiar{Network: "203.0.113.0/24", Place: long, Device: long, Logins: 3},
				Trip:     &audit.ProbableTrip{Place: long, Device: long, Since: long}},
		}
		for _, f := range kinds {
			d.Add(f)
		}
	}
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > 350_000 {
		t.Errorf("the digest item is %d bytes; want it well within DynamoDB's 400 KB", len(b))
	}
}

// The digest's SMS called every finding in it low-severity, also when the
// digest held medium findings (DIGEST_SEVERITIES=low,medium) or the held-back
// repeats of a high episode. It now counts findings without a severity.
func TestTheDigestSMSNamesNoSeverityItDoesNotKnow(t *testing.T) {
	d := digest.Digest{Day: "2026-12-05", Total: 3, Kinds: map[string]int{audit.KindIPNotAllowed: 3},
		Episodes: map[string]digest.EpisodeLine{"u1|198.51.100.0/24": {User: "ann", Where: "198.51.100.0/24", Count: 3, Repeats: 2}}}
	sms := digest.Render("portal.example.com", 8, d).SMS
	if strings.Contains(sms, "low") || !strings.Contains(sms, "3 findings") {
		t.Errorf("SMS = %q, want 3 findings and no severity", sms)
	}
	d.Total = 1
	if sms := digest.Render("portal.example.com", 8, d).SMS; !strings.Contains(sms, ": 1 finding.") {
		t.Errorf("SMS = %q, want 1 finding (singular)", sms)
	}
}

// A finding the digest took is counted once, however often its alert is
// published: an alert that failed further down the chain after the digest
// took it (the findings bus's outbox could not be written) is sent again
// by the next run, and the digest counted its findings again. Findings it
// has not seen are still counted, bursts (no event id) by their span.
func TestAFindingPublishedAgainIsCountedOnce(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
	p, st, _ := newDigest(&now)
	login := func(id int64) audit.Finding {
		return audit.Finding{EventID: id, Kind: "new_country", Severity: "low", Email: "ann@example.com", IP: "203.0.113.1"}
	}
	burst := func(first string) audit.Finding {
		return audit.Finding{Kind: audit.KindFailedLoginBurst, Severity: "low", Logins: []string{"ann"}, IP: "198.51.100.7", FirstAt: first, Date: "2026-12-04T08:59:00Z"}
	}
	steps := []struct {
		fs        []audit.Finding
		wantTotal int
	}{
		{[]audit.Finding{login(1), login(2), burst("2026-12-04T08:50:00Z")}, 3},
		{[]audit.Finding{login(1), login(2), burst("2026-12-04T08:50:00Z")}, 3}, // the same alert again
		{[]audit.Finding{login(2), login(3)}, 4},
		{[]audit.Finding{burst("2026-12-04T08:55:00Z")}, 5}, // another span: another burst
	}
	for i, s := range steps {
		if id, err := p.Publish(ctx, lowAlert(t, s.fs...)); err != nil || id != "digest:2026-12-05" {
			t.Fatalf("step %d: Publish = %q, %v", i, id, err)
		}
		var d digest.Digest
		if _, _, err := st.LoadRevised(ctx, digest.Prefix+"2026-12-05", &d); err != nil {
			t.Fatal(err)
		}
		if d.Total != s.wantTotal || d.Kinds["new_country"]+d.Kinds[audit.KindFailedLoginBurst] != s.wantTotal {
			t.Errorf("step %d: the digest counts %d findings (%v); want %d", i, d.Total, d.Kinds, s.wantTotal)
		}
	}
}
