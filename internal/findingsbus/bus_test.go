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
	"ipguard/internal/findingsbus"
	"ipguard/internal/ipguard"
)

var now = time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)

// auditAlert renders findings as the audit does (its JSON body).
func auditAlert(t *testing.T, fs ...audit.Finding) ipguard.Alert {
	t.Helper()
	bs, err := audit.RenderAlerts(audit.Meta{Portal: "portal.example.com", Window: audit.Window{From: now.Add(-5 * time.Minute), To: now}}, fs, audit.MaxMessageBytes)
	if err != nil || len(bs) != 1 {
		t.Fatalf("render: %v (%d batches)", err, len(bs))
	}
	return bs[0].Alert
}

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
	a := auditAlert(t, login(41, audit.KindIPNotAllowed, audit.SeverityHigh), login(42, audit.KindIPNotAllowed, audit.SeverityHigh))
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
		{"the test alert", ipguard.Alert{Subject: "test", Default: `{"kind":"test","severity":"low","test":true}`}, "test", true},
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
		})
	}
}

// A finding too large for one entry loses its raw events, never itself.
func TestEventsDropRawEventsOfAFindingTooLarge(t *testing.T) {
	f := login(41, audit.KindIPNotAllowed, audit.SeverityHigh)
	f.Raw = json.RawMessage(`{"pad":"` + strings.Repeat("x", 150*1024) + `"}`)
	es, err := findingsbus.Events("p", auditAlert(t, f), now)
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
			out.Entries = append(out.Entries, types.PutEventsResultEntry{ErrorCode: aws.String("InternalFailure"), ErrorMessage: aws.String("try again")})
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
	a := auditAlert(t, login(41, audit.KindIPNotAllowed, audit.SeverityHigh), login(42, audit.KindIPNotAllowed, audit.SeverityHigh))

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
	t.Run("an entry refused for more than a week is given up, with an error", func(t *testing.T) {
		es, _ := findingsbus.Events("p", a, now)
		es[0].Kept = time.Now().Add(-findingsbus.MaxOutboxAge - time.Hour)
		es[1].Kept = time.Now().Add(-time.Hour)
		ob := &memOutbox{entries: es, rev: 1}
		bus := &findingsbus.Bus{API: &fakeBus{err: errors.New("MalformedDetail")}, Name: "default", Outbox: ob}
		sent, waiting, err := bus.Retry(ctx)
		if sent != 0 || waiting != 1 || err == nil || !strings.Contains(err.Error(), "1 event(s) refused for more than") || len(ob.entries) != 1 || ob.entries[0].ID != es[1].ID {
			t.Errorf("Retry = %d, %d, %v; outbox %d", sent, waiting, err, len(ob.entries))
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
	es, err := findingsbus.Events("p", auditAlert(t, fs...), now)
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
	es, _ := findingsbus.Events("p", auditAlert(t, login(41, audit.KindIPNotAllowed, audit.SeverityHigh)), now)
	drift, _ := findingsbus.Events("p", ipguard.Alert{Default: `{"kind":"allowlist_drift","severity":"high"}`}, now)
	ob := &racingOutbox{memOutbox: memOutbox{entries: es, rev: 1}, extra: drift[0]}
	eb := &fakeBus{}
	sent, waiting, err := (&findingsbus.Bus{API: eb, Name: "default", Outbox: ob}).Retry(ctx)
	if err != nil || sent != 1 || waiting != 1 || len(ob.entries) != 1 || ob.entries[0].ID != drift[0].ID {
		t.Fatalf("Retry = %d sent, %d waiting, %v; outbox holds %d", sent, waiting, err, len(ob.entries))
	}
}
