package findingsbus_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge/types"

	"ipguard/internal/audit"
	"ipguard/internal/audit/audittest"
	"ipguard/internal/audit/audittest/auditalert"
	"ipguard/internal/digest"
	"ipguard/internal/findingsbus"
	"ipguard/internal/ipguard"
	"ipguard/internal/redact"
)

var now = time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)

func login(id int64, kind, sev string) audit.Finding {
	return audit.Finding{EventID: id, Kind: kind, Severity: sev, Reason: "login from an address not on the allowlist", UserID: "u-1",
		Email: "ann@example.com", User: "Ann", Login: "ann@example.com", IP: "203.0.113.7", Country: "Germany", City: "Berlin",
		Date: now.Add(-time.Minute).Format(time.RFC3339), Action: "Login success", ActionID: 1000, Raw: json.RawMessage(`{"id":1}`)}
}

func detail(t *testing.T, e findingsbus.Entry) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(e.Detail, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestEventsOnePerFindingWithTheAlertsJSONAndOCSF(t *testing.T) {
	a := auditalert.Render(t, now, login(41, audit.KindIPNotAllowed, audit.SeverityHigh), login(42, audit.KindIPNotAllowed, audit.SeverityHigh))
	es, err := findingsbus.Events("fallback", a, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 2 {
		t.Fatalf("%d entries, want one per finding (2)", len(es))
	}
	d := detail(t, es[0])
	for k, want := range map[string]any{"kind": "ip_not_allowed", "severity": "high", "eventId": 41.0, "ip": "203.0.113.7", "userId": "u-1",
		"portal": "portal.example.com", "findingId": es[0].ID} {
		if d[k] != want {
			t.Errorf("detail.%s = %v, want %v", k, d[k], want)
		}
	}
	o, _ := d["ocsf"].(map[string]any)
	if o["class_uid"] != 2004.0 || o["finding_info"].(map[string]any)["uid"] != es[0].ID {
		t.Errorf("detail.ocsf = %v", o)
	}
	if es[0].ID == es[1].ID {
		t.Error("two findings share an id")
	}
	if !es[0].Time.Equal(now.Add(-time.Minute)) {
		t.Errorf("time = %v, want the login's", es[0].Time)
	}
	again, _ := findingsbus.Events("fallback", a, now.Add(time.Hour))
	if again[0].ID != es[0].ID {
		t.Error("the same finding got another id on a later run")
	}
}

func TestEventsOfOtherAlerts(t *testing.T) {
	tests := []struct {
		name     string
		alert    ipguard.Alert
		wantKind string
		wantTest bool
	}{
		{"drift", ipguard.Alert{Subject: "drift", Default: `{"kind":"allowlist_drift","severity":"high","portal":"p","drift":{"since":"x"}}`}, "allowlist_drift", false},
		{"key expiring", ipguard.Alert{Subject: "key", Default: `{"kind":"api_key_expiring","severity":"medium","portal":"p","daysLeft":7}`}, "api_key_expiring", false},
		{"the test alert", ipguard.Alert{Subject: "test", Default: `{"kind":"test","severity":"critical","test":true}`}, "test", true},
		{"plain text", ipguard.Alert{Default: "hello"}, "message", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			es, err := findingsbus.Events("p", tt.alert, now)
			if err != nil || len(es) != 1 {
				t.Fatalf("Events = %v, %v", es, err)
			}
			d := detail(t, es[0])
			if d["kind"] != tt.wantKind || es[0].Test != tt.wantTest || (d["test"] == true) != tt.wantTest {
				t.Errorf("detail = %v, test = %v", d, es[0].Test)
			}
			if d["findingId"] == "" || d["ocsf"] == nil {
				t.Errorf("detail lacks findingId or ocsf: %v", d)
			}
			// The OCSF record says it too: unmapped.test, and Informational
			// (the test alert is critical only to reach every subscription).
			o, _ := d["ocsf"].(map[string]any)
			un, _ := o["unmapped"].(map[string]any)
			if tt.wantTest && (un["test"] != true || o["severity_id"] != 1.0 || o["severity"] != "Informational") {
				t.Errorf("the test alert's ocsf: unmapped %v, severity %v %v; want test true, Informational", un, o["severity_id"], o["severity"])
			}
			if !tt.wantTest && un["test"] != nil {
				t.Errorf("a real alert's ocsf is marked test: %v", un)
			}
		})
	}
}

// A finding too large for one entry loses its raw events, never itself.
func TestEventsDropRawEventsOfAFindingTooLarge(t *testing.T) {
	f := login(41, audit.KindIPNotAllowed, audit.SeverityHigh)
	f.Raw = json.RawMessage(`{"pad":"` + strings.Repeat("x", 150*1024) + `"}`)
	es, err := findingsbus.Events("p", auditalert.Render(t, now, f), now)
	if err != nil {
		t.Fatal(err)
	}
	if n := es[0].Size(); n > findingsbus.MaxEntryBytes {
		t.Fatalf("entry of %d bytes", n)
	}
	if d := detail(t, es[0]); d["raw"] != nil || d["eventId"] != 41.0 {
		t.Errorf("detail kept raw or lost the finding: %.200s", es[0].Detail)
	}
}

// fakeBus answers PutEvents, refusing the entries whose detail contains
// refuse, or failing the whole call with err.
type fakeBus struct {
	mu     sync.Mutex
	refuse string
	code   string // the ErrorCode of refused entries; InternalFailure when empty
	err    error
	got    []types.PutEventsRequestEntry
}

func (f *fakeBus) PutEvents(_ context.Context, in *eventbridge.PutEventsInput, _ ...func(*eventbridge.Options)) (*eventbridge.PutEventsOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	out := &eventbridge.PutEventsOutput{}
	for _, e := range in.Entries {
		if f.refuse != "" && strings.Contains(aws.ToString(e.Detail), f.refuse) {
			out.FailedEntryCount++
			code := f.code
			if code == "" {
				code = "InternalFailure"
			}
			out.Entries = append(out.Entries, types.PutEventsResultEntry{ErrorCode: aws.String(code), ErrorMessage: aws.String("try again")})
			continue
		}
		f.got = append(f.got, e)
		out.Entries = append(out.Entries, types.PutEventsResultEntry{EventId: aws.String("e")})
	}
	return out, nil
}

// memOutbox is an Outbox in memory with the revision check of the real one.
type memOutbox struct {
	entries []findingsbus.Entry
	rev     int64
	err     error
}

func (m *memOutbox) Pending(context.Context) ([]findingsbus.Entry, int64, error) {
	return append([]findingsbus.Entry(nil), m.entries...), m.rev, m.err
}

func (m *memOutbox) Save(_ context.Context, es []findingsbus.Entry, rev int64) error {
	if m.err != nil {
		return m.err
	}
	if rev != m.rev {
		return ipguard.Errorf(ipguard.EConflict, "changed")
	}
	m.entries, m.rev = es, m.rev+1
	return nil
}

type fakeSNS struct {
	n   int
	err error
}

func (f *fakeSNS) Publish(context.Context, ipguard.Alert) (string, error) {
	if f.err != nil {
		return "", f.err
	}
	f.n++
	return "m-1", nil
}

func TestPublishSendsTheAlertThenItsFindings(t *testing.T) {
	ctx := context.Background()
	a := auditalert.Render(t, now, login(41, audit.KindIPNotAllowed, audit.SeverityHigh), login(42, audit.KindIPNotAllowed, audit.SeverityHigh))

	t.Run("refused entries wait in the outbox and the next run sends them", func(t *testing.T) {
		eb, ob, sns := &fakeBus{refuse: `"eventId":42`}, &memOutbox{}, &fakeSNS{}
		bus := &findingsbus.Bus{API: eb, Name: "default", Outbox: ob}
		id, err := (&findingsbus.Publisher{Next: sns, Bus: bus}).Publish(ctx, a)
		if err != nil || id != "m-1" {
			t.Fatalf("Publish = %q, %v; a refused entry must not fail the alert", id, err)
		}
		if len(eb.got) != 1 || len(ob.entries) != 1 || !strings.Contains(string(ob.entries[0].Detail), `"eventId":42`) {
			t.Fatalf("bus got %d, outbox holds %d; want 1 and the refused one", len(eb.got), len(ob.entries))
		}
		eb.refuse = ""
		sent, waiting, err := bus.Retry(ctx)
		if err != nil || sent != 1 || waiting != 0 || len(ob.entries) != 0 || len(eb.got) != 2 {
			t.Fatalf("Retry = %d sent, %d waiting, %v; outbox %d, bus %d", sent, waiting, err, len(ob.entries), len(eb.got))
		}
		if sent, _, _ := bus.Retry(ctx); sent != 0 {
			t.Error("a second retry sent again")
		}
	})
	t.Run("a failed PutEvents call keeps every entry of the batch", func(t *testing.T) {
		eb, ob := &fakeBus{err: errors.New("connection reset")}, &memOutbox{}
		bus := &findingsbus.Bus{API: eb, Name: "default", Outbox: ob}
		if _, err := (&findingsbus.Publisher{Next: &fakeSNS{}, Bus: bus}).Publish(ctx, a); err != nil {
			t.Fatal(err)
		}
		if len(ob.entries) != 2 {
			t.Fatalf("outbox holds %d, want 2", len(ob.entries))
		}
		_, waiting, err := bus.Retry(ctx)
		if waiting != 2 || ipguard.ErrorCode(err) != ipguard.EUnavailable {
			t.Errorf("Retry while the bus is down = %d waiting, %v", waiting, err)
		}
	})
	t.Run("only entries refused for good are given up, however long the others wait", func(t *testing.T) {
		tests := []struct {
			name     string
			bus      *fakeBus
			wantGone int
		}{
			{"malformed detail", &fakeBus{refuse: `"eventId":41`, code: "MalformedDetail"}, 1},
			{"bus not found", &fakeBus{err: errors.New("ResourceNotFoundException: Event bus sec-bus does not exist")}, 0},
			{"denied", &fakeBus{err: errors.New("AccessDeniedException: not authorized")}, 0},
			{"throttled", &fakeBus{refuse: "eventId", code: "ThrottlingException"}, 0},
			{"an entry refused as malformed by a failing call", &fakeBus{err: errors.New("MalformedDetail")}, 0},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				es, _ := findingsbus.Events("p", a, now)
				for i := range es {
					es[i].Kept = time.Now().Add(-30 * 24 * time.Hour)
				}
				ob := &memOutbox{entries: es, rev: 1}
				bus := &findingsbus.Bus{API: tt.bus, Name: "default", Outbox: ob}
				sent, waiting, err := bus.Retry(ctx)
				gone := len(es) - len(ob.entries) - len(tt.bus.got)
				if gone != tt.wantGone || waiting != len(es)-tt.wantGone-sent || err == nil {
					t.Errorf("Retry = %d sent, %d waiting, %v; %d given up, want %d", sent, waiting, err, gone, tt.wantGone)
				}
				if tt.wantGone > 0 && !strings.Contains(err.Error(), "refuses for good were given up") {
					t.Errorf("err = %v, want it to say what was given up", err)
				}
				if n := bus.TakeUndelivered(); n != len(es)-sent {
					t.Errorf("TakeUndelivered = %d, want the %d waiting or given up", n, len(es)-sent)
				}
			})
		}
	})
	t.Run("refused entries count as undelivered until they are sent", func(t *testing.T) {
		eb, ob := &fakeBus{err: errors.New("AccessDeniedException")}, &memOutbox{}
		bus := &findingsbus.Bus{API: eb, Name: "default", Outbox: ob}
		if _, err := (&findingsbus.Publisher{Next: &fakeSNS{}, Bus: bus}).Publish(ctx, a); err != nil {
			t.Fatal(err)
		}
		if n := bus.TakeUndelivered(); n != 2 {
			t.Errorf("after a refused publish: %d undelivered, want 2", n)
		}
		if _, _, err := bus.Retry(ctx); err == nil {
			t.Error("Retry against a bus that refuses: no error")
		}
		if n := bus.TakeUndelivered(); n != 2 {
			t.Errorf("after a refused retry: %d undelivered, want 2", n)
		}
		eb.err = nil
		if _, _, err := bus.Retry(ctx); err != nil {
			t.Fatal(err)
		}
		if n := bus.TakeUndelivered(); n != 0 {
			t.Errorf("after the outbox was sent: %d undelivered, want 0", n)
		}
	})
	t.Run("a failed SNS publish sends nothing to the bus", func(t *testing.T) {
		eb := &fakeBus{}
		bus := &findingsbus.Bus{API: eb, Name: "default", Outbox: &memOutbox{}}
		if _, err := (&findingsbus.Publisher{Next: &fakeSNS{err: errors.New("down")}, Bus: bus}).Publish(ctx, a); err == nil {
			t.Fatal("no error")
		}
		if len(eb.got) != 0 {
			t.Error("the bus got events of an alert that was not sent")
		}
	})
	t.Run("entries neither the bus nor the outbox take fail the publish", func(t *testing.T) {
		bus := &findingsbus.Bus{API: &fakeBus{refuse: "eventId"}, Name: "default", Outbox: &memOutbox{err: ipguard.Errorf(ipguard.EUnavailable, "dynamodb down")}}
		_, err := (&findingsbus.Publisher{Next: &fakeSNS{}, Bus: bus}).Publish(ctx, a)
		if ipguard.ErrorCode(err) != ipguard.EUnavailable || !strings.Contains(err.Error(), "published") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("the test alert is never kept in the outbox", func(t *testing.T) {
		ob := &memOutbox{}
		bus := &findingsbus.Bus{API: &fakeBus{err: errors.New("down")}, Name: "default", Outbox: ob}
		if _, err := (&findingsbus.Publisher{Next: &fakeSNS{}, Bus: bus}).Publish(ctx, ipguard.Alert{Default: `{"kind":"test","test":true}`}); err != nil {
			t.Fatal(err)
		}
		if len(ob.entries) != 0 || ob.rev != 0 {
			t.Error("the test alert wrote an outbox entry")
		}
	})
}

func TestPutSendsBatchesOfTenWithSourceAndDetailType(t *testing.T) {
	var fs []audit.Finding
	for i := int64(1); i <= 23; i++ {
		fs = append(fs, login(i, audit.KindIPNotAllowed, audit.SeverityHigh))
	}
	es, err := findingsbus.Events("p", auditalert.Render(t, now, fs...), now)
	if err != nil {
		t.Fatal(err)
	}
	calls := 0
	api := apiFunc(func(in *eventbridge.PutEventsInput) (*eventbridge.PutEventsOutput, error) {
		calls++
		if len(in.Entries) > findingsbus.MaxBatch {
			t.Errorf("a call with %d entries", len(in.Entries))
		}
		for _, e := range in.Entries {
			if aws.ToString(e.Source) != "docspace-ip-guard" || aws.ToString(e.DetailType) != "DocSpace IP Guard Finding" || aws.ToString(e.EventBusName) != "sec-bus" {
				t.Errorf("entry %+v", e)
			}
		}
		return &eventbridge.PutEventsOutput{Entries: make([]types.PutEventsResultEntry, len(in.Entries))}, nil
	})
	failed, err := (&findingsbus.Bus{API: api, Name: "sec-bus"}).Put(context.Background(), es)
	if err != nil || len(failed) != 0 || calls != 3 {
		t.Errorf("Put = %d failed, %v, %d calls; want 0, nil, 3", len(failed), err, calls)
	}
}

type apiFunc func(*eventbridge.PutEventsInput) (*eventbridge.PutEventsOutput, error)

func (f apiFunc) PutEvents(_ context.Context, in *eventbridge.PutEventsInput, _ ...func(*eventbridge.Options)) (*eventbridge.PutEventsOutput, error) {
	return f(in)
}

// racingOutbox is memOutbox where another function keeps an entry just
// before the first Save.
type racingOutbox struct {
	memOutbox
	extra findingsbus.Entry
	raced bool
}

func (r *racingOutbox) Save(ctx context.Context, es []findingsbus.Entry, rev int64) error {
	if !r.raced {
		r.raced = true
		r.entries = append(r.entries, r.extra)
		r.rev++
	}
	return r.memOutbox.Save(ctx, es, rev)
}

// Entries another function keeps while a retry runs are kept; the ones the
// retry sent are not sent again.
func TestRetryKeepsWhatAnotherFunctionKeptMeanwhile(t *testing.T) {
	ctx := context.Background()
	es, _ := findingsbus.Events("p", auditalert.Render(t, now, login(41, audit.KindIPNotAllowed, audit.SeverityHigh)), now)
	drift, _ := findingsbus.Events("p", ipguard.Alert{Default: `{"kind":"allowlist_drift","severity":"high"}`}, now)
	ob := &racingOutbox{memOutbox: memOutbox{entries: es, rev: 1}, extra: drift[0]}
	eb := &fakeBus{}
	sent, waiting, err := (&findingsbus.Bus{API: eb, Name: "default", Outbox: ob}).Retry(ctx)
	if err != nil || sent != 1 || waiting != 1 || len(ob.entries) != 1 || ob.entries[0].ID != drift[0].ID {
		t.Fatalf("Retry = %d sent, %d waiting, %v; outbox holds %d", sent, waiting, err, len(ob.entries))
	}
}

// Entries are cleaned of secrets when they are built, so that neither the
// bus, the outbox nor the size check sees a secret; their size counts the
// 14 bytes EventBridge adds for Time.
func TestEntriesAreCleanedAndSizedWhenBuilt(t *testing.T) {
	const secret = "sk-fix18-0123456789abcdef"
	redact.Remember(secret)
	f := login(41, audit.KindIPNotAllowed, audit.SeverityHigh)
	f.Email = "ann+" + secret + "@example.com"
	es, err := findingsbus.Events("p", auditalert.Render(t, now, f), now)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(es[0].Detail), secret) || strings.Contains(string(es[0].Detail), secret[4:]) {
		t.Errorf("the entry's detail holds the secret: %.300s", es[0].Detail)
	}
	if want := len(es[0].Detail) + len(findingsbus.Source) + len(findingsbus.DetailType) + 14; es[0].Size() != want {
		t.Errorf("Size = %d, want %d (detail, source, detail-type and 14 bytes for Time)", es[0].Size(), want)
	}
	ob := &memOutbox{}
	bus := &findingsbus.Bus{API: &fakeBus{err: errors.New("down")}, Name: "default", Outbox: ob}
	if _, err := (&findingsbus.Publisher{Next: &fakeSNS{}, Bus: bus}).Publish(context.Background(), auditalert.Render(t, now, f)); err != nil {
		t.Fatal(err)
	}
	kept, _ := json.Marshal(ob.entries)
	if len(ob.entries) != 1 || strings.Contains(string(kept), secret[4:]) {
		t.Errorf("the outbox keeps %d entries, the secret in them: %v", len(ob.entries), strings.Contains(string(kept), secret[4:]))
	}
}

// The outbox bound counts the item as the store writes it: encoding/json
// escapes < > & as six bytes each.
func TestOutboxBoundCountsEscapedBytes(t *testing.T) {
	var es []findingsbus.Entry
	for i := range 3 {
		d := `{"text":"` + strings.Repeat("<", 100*1024) + `"}` // as Events encodes it: unescaped
		es = append(es, findingsbus.Entry{ID: string(rune('a' + i)), Time: now, Detail: json.RawMessage(d)})
	}
	ob := &memOutbox{}
	err := (&findingsbus.Bus{Name: "default", Outbox: ob}).Keep(context.Background(), es)
	if err == nil || len(ob.entries) != 0 {
		t.Errorf("Keep of ~1.8 MB as stored = %v, outbox %d entries; want refused, nothing kept", err, len(ob.entries))
	}
}

// Every finding the audit alerts reaches the bus, also one whose portal
// values are absurdly long: a detail too large for one entry even without
// its raw events has its long text cut (the finding, its kind, severity and
// findingId stay). Before, a display name of 60 KB (which the SNS message
// carries whole) made a finding of 300 KB on the bus (the OCSF record
// repeats the name), Events failed, and Publish failed after SNS had
// accepted the message: the audit sent that message again at every run and
// never got past the piece (attack review of the audit path).
func TestAFindingWithHugePortalValuesReachesTheBus(t *testing.T) {
	big := strings.Repeat("A", 60_000)
	tests := []struct {
		name string
		set  func(*audit.Finding)
	}{
		{"a display name", func(f *audit.Finding) { f.User = big + big }},
		{"a login name", func(f *audit.Finding) { f.Login = big + big }},
		{"a city", func(f *audit.Finding) { f.City = big + big }},
		{"a country", func(f *audit.Finding) { f.Country = big + big }},
		{"a new country in the reasons", func(f *audit.Finding) {
			f.Country = big
			f.Reasons = []audit.Reason{{Kind: audit.KindNewCountry, Severity: audit.SeverityMedium, Text: "first login from " + big}}
			f.Explanation = "first login from " + big
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := login(41, audit.KindIPNotAllowed, audit.SeverityHigh)
			f.Raw = nil
			tt.set(&f)
			a := auditalert.Render(t, now, f)

			es, err := findingsbus.Events(auditalert.Portal, a, now)
			if err != nil || len(es) != 1 {
				t.Fatalf("Events: %d entries, %v; want the finding's entry", len(es), err)
			}
			if n := es[0].Size(); n > findingsbus.MaxEntryBytes {
				t.Errorf("entry of %d bytes; at most %d", n, findingsbus.MaxEntryBytes)
			}
			d := detail(t, es[0])
			if d["kind"] != audit.KindIPNotAllowed || d["findingId"] != es[0].ID || d["eventId"] != json.Number("41") && d["eventId"] != float64(41) {
				t.Errorf("detail lost the finding: kind %v, findingId %v, eventId %v", d["kind"], d["findingId"], d["eventId"])
			}

			sns, eb := &fakeSNS{}, &fakeBus{}
			p := &findingsbus.Publisher{Next: sns, Bus: &findingsbus.Bus{API: eb, Name: "b", Outbox: &memOutbox{}}, Portal: auditalert.Portal}
			if _, err := p.Publish(context.Background(), a); err != nil || sns.n != 1 || len(eb.got) != 1 {
				t.Errorf("Publish = %v, %d messages, %d bus events; want the alert sent once and its finding on the bus", err, sns.n, len(eb.got))
			}
		})
	}
}

// Two lost-coverage findings of different causes over the same span (a
// second the walk could not read whole, with a row in it it could not
// decode) are two findings: they had the same findingId, so a consumer
// deduplicating by it dropped one, and so did the outbox when the bus
// refused both. The id now includes the cause; the same finding keeps its id.
func TestLostCoverageOfTwoCausesOverOneSpanAreTwoFindings(t *testing.T) {
	at := now.Add(-time.Hour).Format(time.RFC3339)
	coverage := func(cause string) audit.Finding {
		return audit.Finding{Kind: audit.KindCoverageLost, Severity: audit.SeverityHigh, Cause: cause, Reason: "not evaluated: " + cause,
			Count: 1, FirstAt: at, Date: at}
	}
	a := auditalert.Render(t, now, coverage(audit.CauseSecondUnread), coverage(audit.CauseUnreadableRows))
	es, err := findingsbus.Events("p", a, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 2 || es[0].ID == es[1].ID {
		t.Fatalf("entries %d, ids %v: want two distinct findingIds", len(es), ids(es))
	}
	again, err := findingsbus.Events("p", a, now.Add(time.Hour))
	if err != nil || again[0].ID != es[0].ID || again[1].ID != es[1].ID {
		t.Errorf("the same findings sent again have ids %v, want %v (%v)", ids(again), ids(es), err)
	}
	box := &memOutbox{}
	pub := &findingsbus.Publisher{Next: &fakeSNS{}, Bus: &findingsbus.Bus{API: &fakeBus{refuse: "coverage_lost"}, Name: "b", Outbox: box}, Now: func() time.Time { return now }}
	if _, err := pub.Publish(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	if len(box.entries) != 2 {
		t.Errorf("the outbox keeps %d of the 2 refused findings", len(box.entries))
	}
}

func ids(es []findingsbus.Entry) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.ID)
	}
	return out
}

// EventBridge wants each entry, and a call's entries together, "less than
// 256KB" (Calculating PutEvents event entry size). An entry or a call of
// exactly 256 KiB was sent, and refused: a whole call refused that way
// waited in the outbox for ever, run after run.
func TestEntriesAndCallsStayBelowEventBridgesLimit(t *testing.T) {
	// A detail of exactly the limit: the padding is chosen so.
	alert := func(pad int) ipguard.Alert {
		return ipguard.Alert{Subject: "drift", Default: `{"kind":"allowlist_drift","severity":"high","pad":"` + strings.Repeat("x", pad) + `"}`}
	}
	es, err := findingsbus.Events("p", alert(200*1024), now)
	if err != nil {
		t.Fatal(err)
	}
	pad := 200*1024 + findingsbus.MaxEntryBytes - es[0].Size()
	if es, err = findingsbus.Events("p", alert(pad), now); err != nil {
		t.Fatal(err)
	}
	if n := es[0].Size(); n >= findingsbus.MaxEntryBytes {
		t.Errorf("an entry of %d bytes, want less than %d", n, findingsbus.MaxEntryBytes)
	}
	// Two entries of exactly the limit together go in two calls.
	entry := func(id string, size int) findingsbus.Entry {
		e := findingsbus.Entry{ID: id, Time: now, Detail: json.RawMessage(`"` + strings.Repeat("y", size) + `"`)}
		e.Detail = json.RawMessage(`"` + strings.Repeat("y", size-(e.Size()-size)) + `"`)
		return e
	}
	pair := []findingsbus.Entry{entry("a", findingsbus.MaxEntryBytes/2), entry("b", findingsbus.MaxEntryBytes/2)}
	if pair[0].Size()+pair[1].Size() != findingsbus.MaxEntryBytes {
		t.Fatalf("sizes %d + %d", pair[0].Size(), pair[1].Size())
	}
	api := apiFunc(func(in *eventbridge.PutEventsInput) (*eventbridge.PutEventsOutput, error) {
		total := 0
		for _, e := range in.Entries {
			total += 14 + len(aws.ToString(e.Source)) + len(aws.ToString(e.DetailType)) + len(aws.ToString(e.Detail))
		}
		if total >= findingsbus.MaxEntryBytes {
			t.Errorf("a call of %d bytes, want less than %d", total, findingsbus.MaxEntryBytes)
		}
		return &eventbridge.PutEventsOutput{Entries: make([]types.PutEventsResultEntry, len(in.Entries))}, nil
	})
	if failed, err := (&findingsbus.Bus{API: api, Name: "b"}).Put(context.Background(), pair); err != nil || len(failed) != 0 {
		t.Errorf("Put = %d failed, %v", len(failed), err)
	}
}

// While the bus refuses and its outbox is full, a Publish that failed made
// the audit send the alert again at every run: the same message again on
// the topic, the same findings counted again by the digest, and the audit
// held at that alert. Entries the full outbox cannot take are given up for
// the bus (counted as undelivered: the BusUndelivered alarm) and the alert
// stands; entries that already wait there are not new and need no room.
// Three runs, as the audit publishes: an alert whose publish failed is
// sent again by the next run, one that succeeded is not.
func TestAFullOutboxNeitherRepeatsTheAlertNorRecountsTheDigest(t *testing.T) {
	ctx := context.Background()
	big := findingsbus.Entry{ID: "waiting-long", Time: now, Detail: json.RawMessage(`"` + strings.Repeat("x", findingsbus.MaxOutboxBytes) + `"`)}
	tests := []struct {
		name       string
		sev        string
		alsoWaits  bool // the alert's own entries already wait in the outbox
		wantSent   int  // messages on the topic
		wantDigest int  // findings counted by the digest
	}{
		{"an alert told at once", audit.SeverityHigh, false, 1, 0},
		{"findings the digest gathers", audit.SeverityLow, false, 0, 2},
		{"findings that already wait in the full outbox", audit.SeverityHigh, true, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store, topic := &audittest.Revised{}, &audittest.Topic{}
			a := auditalert.Render(t, now, login(41, audit.KindIPNotAllowed, tt.sev), login(42, audit.KindIPNotAllowed, tt.sev))
			waiting := []findingsbus.Entry{big}
			if tt.alsoWaits {
				own, err := findingsbus.Events(auditalert.Portal, a, now)
				if err != nil {
					t.Fatal(err)
				}
				waiting = append(waiting, own...)
			}
			ob := findingsbus.StoreOutbox{Store: store}
			if err := ob.Save(ctx, waiting, 0); err != nil {
				t.Fatal(err)
			}
			bus := &findingsbus.Bus{API: &fakeBus{err: errors.New("AccessDeniedException: not authorized")}, Name: "default", Outbox: ob}
			dg := &digest.Publisher{Next: topic, Store: store, Severities: map[string]bool{audit.SeverityLow: true}, Hour: 8, Now: func() time.Time { return now }}
			pub := &findingsbus.Publisher{Next: dg, Bus: bus, Portal: auditalert.Portal, Now: func() time.Time { return now }}
			var err error
			for run := 0; run < 3; run++ {
				if _, err = pub.Publish(ctx, a); err == nil {
					break
				}
			}
			if err != nil {
				t.Errorf("Publish = %v; the alert was published, a full outbox must not make the audit send it again", err)
			}
			if len(topic.Sent) != tt.wantSent {
				t.Errorf("%d messages on the topic; want %d", len(topic.Sent), tt.wantSent)
			}
			var d digest.Digest
			if _, _, err := store.LoadRevised(ctx, digest.Prefix+digest.Day(now, 8), &d); err != nil {
				t.Fatal(err)
			}
			if d.Total != tt.wantDigest {
				t.Errorf("the digest counts %d findings; want %d", d.Total, tt.wantDigest)
			}
			if n := bus.TakeUndelivered(); n < 2 {
				t.Errorf("TakeUndelivered = %d; want the 2 findings the bus did not take counted", n)
			}
			if es, _, _ := ob.Pending(ctx); len(es) != len(waiting) {
				t.Errorf("the outbox holds %d entries; want the %d that waited", len(es), len(waiting))
			}
		})
	}
}

// An outbox that cannot be read is not an empty one: Retry says so
// (ErrOutboxUnreadable) and counts it as undelivered, so that the
// BusUndelivered alarm (Sum ≥ 1; missing data is not breaching) stays in
// ALARM while entries may wait unseen. (Before: it reported 0 waiting and
// counted nothing, and the alarm cleared.)
func TestAnUnreadableOutboxIsNotAnEmptyOne(t *testing.T) {
	ctx := context.Background()
	eb := &fakeBus{}
	bus := &findingsbus.Bus{API: eb, Name: "default", Outbox: &memOutbox{err: ipguard.Errorf(ipguard.EUnavailable, "dynamodb: throttled")}}
	for run := 0; run < 2; run++ {
		sent, _, err := bus.Retry(ctx)
		if !errors.Is(err, findingsbus.ErrOutboxUnreadable) || ipguard.ErrorCode(err) != ipguard.EUnavailable || sent != 0 {
			t.Errorf("Retry = %d sent, %v; want ErrOutboxUnreadable, classified", sent, err)
		}
		if n := bus.TakeUndelivered(); n < 1 {
			t.Errorf("run %d: TakeUndelivered = %d; want at least 1 while the outbox cannot be read", run, n)
		}
	}
	if len(eb.got) != 0 {
		t.Error("sent something from an outbox it could not read")
	}
	bus.Outbox = &memOutbox{}
	if _, _, err := bus.Retry(ctx); err != nil || bus.TakeUndelivered() != 0 {
		t.Errorf("an empty outbox that can be read: %v, %d undelivered; want nothing", err, bus.TakeUndelivered())
	}
}

// One failed read of an outbox this Bus last saw empty (one DynamoDB blip)
// is a warning of the run, not a page: it counts in BusUndelivered only
// when it stays unreadable (the next Retry fails too), when entries were
// kept since this Bus last saw it empty, or when this Bus never read it (a
// fresh process: what waits is unknown). (Before: every failed read counted
// 1, and FindingsBusUndeliveredAlarm, one period, paged for a single blip.)
func TestAnUnreadableOutboxLastSeenEmptyCountsOnlyWhenItStaysUnreadable(t *testing.T) {
	ctx := context.Background()
	throttled := ipguard.Errorf(ipguard.EUnavailable, "dynamodb: throttled")
	es, _ := findingsbus.Events("p", auditalert.Render(t, now, login(41, audit.KindIPNotAllowed, audit.SeverityHigh)), now)
	tests := []struct {
		name  string
		setup func(*findingsbus.Bus, *memOutbox) // before the outbox fails
		want  []int                              // TakeUndelivered after each failed Retry
	}{
		{"seen empty", func(b *findingsbus.Bus, _ *memOutbox) { _, _, _ = b.Retry(ctx) }, []int{0, 1, 1}},
		{"never read", func(*findingsbus.Bus, *memOutbox) {}, []int{1, 1}},
		{"kept since seen empty", func(b *findingsbus.Bus, _ *memOutbox) {
			_, _, _ = b.Retry(ctx)
			_ = b.Keep(ctx, es)
		}, []int{1, 1}},
		{"entries waiting", func(b *findingsbus.Bus, ob *memOutbox) {
			ob.entries = es
			b.API = &fakeBus{err: throttled}
			_, _, _ = b.Retry(ctx)
			b.TakeUndelivered()
		}, []int{1, 1}},
	}
	for _, tt := range tests {
		ob := &memOutbox{}
		bus := &findingsbus.Bus{API: &fakeBus{}, Name: "default", Outbox: ob}
		tt.setup(bus, ob)
		bus.TakeUndelivered()
		ob.err = throttled
		for run, want := range tt.want {
			if _, _, err := bus.Retry(ctx); !errors.Is(err, findingsbus.ErrOutboxUnreadable) {
				t.Errorf("%s, failed read %d: %v; want ErrOutboxUnreadable", tt.name, run+1, err)
			}
			if n := bus.TakeUndelivered(); n != want {
				t.Errorf("%s, failed read %d: TakeUndelivered = %d, want %d", tt.name, run+1, n, want)
			}
		}
	}
}
