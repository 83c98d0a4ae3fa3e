package wiring

import (
	"bytes"
	"context"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"ipguard/internal/audit"
	"ipguard/internal/config"
	"ipguard/internal/digest"
	"ipguard/internal/docspace"
	"ipguard/internal/dynamo"
	"ipguard/internal/emf"
	"ipguard/internal/findingsbus"
	"ipguard/internal/ipguard"
	"ipguard/internal/keywatch"
	"ipguard/internal/ocsf"
)

func TestPortalHostIsTheArchivePartition(t *testing.T) {
	for in, want := range map[string]string{
		"https://portal.example.com":         "portal.example.com",
		"https://portal.example.com/":        "portal.example.com",
		"http://127.0.0.1:8080":              "127.0.0.1:8080",
		"portal.example.com":                 "portal.example.com",
		"https://portal.example.com/api/2.0": "portal.example.com",
	} {
		if got := ocsf.Host(in); got != want {
			t.Errorf("ocsf.Host(%q) = %q, want %q", in, got, want)
		}
	}
}

// The items the findings chain writes carry the table's own key prefixes
// (dynamo's constants, which the IAM key conditions are built from).
func TestFindingsItemsUseTheTablesPrefixes(t *testing.T) {
	if !strings.HasPrefix(findingsbus.OutboxPK, dynamo.OutboxPrefix) || digest.Prefix != dynamo.DigestPrefix {
		t.Errorf("outbox %q (prefix %q), digest %q (prefix %q)", findingsbus.OutboxPK, dynamo.OutboxPrefix, digest.Prefix, dynamo.DigestPrefix)
	}
}

// Each function keeps what the bus refused it in an item its own role may
// write (the template's dynamodb:LeadingKeys come from dynamo's lists).
func TestEachFunctionsOutboxIsWritableByItsRole(t *testing.T) {
	allowed := func(key string, patterns []string) bool {
		for _, p := range patterns {
			if p == key || strings.HasSuffix(p, "*") && strings.HasPrefix(key, strings.TrimSuffix(p, "*")) {
				return true
			}
		}
		return false
	}
	if k := outboxPK(config.Audit); !allowed(k, dynamo.AuditWrites) || allowed(k, dynamo.OnboardWrites) {
		t.Errorf("the audit's outbox %q: want writable by the audit only", k)
	}
	if k := outboxPK(config.Onboard); !allowed(k, dynamo.OnboardWrites) || allowed(k, dynamo.AuditWrites) {
		t.Errorf("onboarding's outbox %q: want writable by onboarding only", k)
	}
}

// countingStore counts the digest's reads (and finds nothing).
type countingStore struct{ loads int }

func (c *countingStore) LoadRevised(context.Context, string, any) (int64, bool, error) {
	c.loads++
	return 0, false, nil
}
func (c *countingStore) SaveRevised(context.Context, string, any, int64, time.Time) error { return nil }

// The digest is looked at only after a scheduled run that finished its
// work with time to spare: an incomplete run, a backfill, a skipped run or
// a run near its deadline leaves it to the next run.
func TestDigestIsSentOnlyAfterACompleteScheduledRun(t *testing.T) {
	tests := []struct {
		name     string
		res      audit.Result
		deadline time.Duration // 0: none
		want     bool
	}{
		{"complete scheduled run", audit.Result{Complete: true}, 0, true},
		{"complete, plenty of time", audit.Result{Complete: true}, time.Minute, true},
		{"incomplete run", audit.Result{Complete: false}, 0, false},
		{"backfill", audit.Result{Complete: true, Backfill: true}, 0, false},
		{"skipped", audit.Result{Skipped: true}, 0, false},
		{"near the deadline", audit.Result{Complete: true}, 2 * time.Second, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := &countingStore{}
			c := alertChain{Digest: &digest.Publisher{Store: st, Hour: 8}}
			ctx := context.Background()
			if tt.deadline > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.deadline)
				defer cancel()
			}
			c.afterAudit(ctx, tt.res, map[string]any{})
			if (st.loads > 0) != tt.want {
				t.Errorf("digest read %d items, want reads: %v", st.loads, tt.want)
			}
		})
	}
}

// The digest step is in the audit's chain wherever something goes to the
// digest: DIGEST_SEVERITIES, or people without an allowlist under the
// unknown-user policy in force (also with DIGEST_SEVERITIES=none); the
// user-type lookup only under that policy (#21 §1, §6).
func TestDigestIsWiredForPeopleWithoutAllowlist(t *testing.T) {
	tests := []struct {
		policy, mode string
		severities   []string
		digest       bool
		people       bool
	}{
		{config.UnknownDigest, config.AlertGrouped, []string{"low"}, true, true},
		{config.UnknownDigest, config.AlertGrouped, nil, true, true},
		{config.UnknownDigest, config.AlertEvery, nil, false, false},
		{config.UnknownDigest, config.AlertEvery, []string{"low"}, true, false},
		{config.UnknownAlert, config.AlertGrouped, nil, false, false},
		{config.UnknownIgnore, config.AlertGrouped, []string{"low"}, true, false},
	}
	for _, tt := range tests {
		d := Deps{Portal: &docspace.Client{}, Log: slog.New(slog.DiscardHandler)}
		d.Config.Audit.UnknownUserPolicy, d.Config.Audit.Behaviour.AlertMode = tt.policy, tt.mode
		d.Config.Findings.DigestSeverities = tt.severities
		c := d.alertChain("arn:aws:sns:us-east-1:123456789012:alerts", config.Audit, true)
		if (c.Digest != nil) != tt.digest || (d.auditPeople() != nil) != tt.people {
			t.Errorf("%+v: digest %v, people lookup %v", tt, c.Digest != nil, d.auditPeople() != nil)
		}
	}
	d := Deps{}
	d.Config.Audit.UnknownUserPolicy = config.UnknownDigest
	if c := d.alertChain("arn:aws:sns:us-east-1:123456789012:alerts", config.Onboard, false); c.Digest != nil {
		t.Error("onboarding's chain has a digest")
	}
}

// failingDigestStore cannot read the digest (the table refuses).
type failingDigestStore struct{}

func (failingDigestStore) LoadRevised(context.Context, string, any) (int64, bool, error) {
	return 0, false, &ipguard.Error{Code: ipguard.EUnavailable, Message: "dynamodb: throttled"}
}
func (failingDigestStore) SaveRevised(context.Context, string, any, int64, time.Time) error {
	return nil
}

// failingKeySource cannot read the key (the portal does not answer).
type failingKeySource struct{}

func (failingKeySource) CurrentKey(context.Context) (keywatch.Key, error) {
	return keywatch.Key{}, &ipguard.Error{Code: ipguard.EUnavailable, Message: "portal: 503"}
}

// The daily digest (the low-severity findings and people without an
// allowlist go nowhere else) and the API key's expiry alert are sent after
// the audit; when they fail, the run still succeeds and says so in a
// warning. A warning is a field of the line nobody is paged for: a digest or
// a key check that fails run after run was silent until the key expired.
// Each failure is counted as AlertsUndelivered on the audit's line, a
// CloudWatch metric there, which AuditAlertsUndeliveredAlarm reads.
func TestTheDigestsAndTheKeyChecksFailuresAreAnAlarmedMetric(t *testing.T) {
	if d := Declared[MetricAlertsUndelivered]; !slices.Contains(d.Functions, Audit) || !d.NonZero {
		t.Fatalf("AlertsUndelivered is declared for %v; want the audit's line too (above 0)", d.Functions)
	}
	c := alertChain{Digest: &digest.Publisher{Store: failingDigestStore{}, Hour: 8}}
	warnings, n := c.afterAudit(context.Background(), audit.Result{Complete: true}, map[string]any{})
	if n != 1 || len(warnings) != 1 {
		t.Errorf("a digest that could not be read: %d undelivered, warnings %q; want 1 and a warning", n, warnings)
	}
	w := &keywatch.Watch{Source: failingKeySource{}, Store: &keyStore{}, Log: slog.New(slog.DiscardHandler)} // never checked: its expiry is unknown
	warnings, n, err := checkKey(context.Background(), w)
	if err != nil || n != 1 || len(warnings) != 1 {
		t.Errorf("a key check that failed: %d undelivered, warnings %q, %v; want 1, a warning, no error", n, warnings, err)
	}
	_, names := line(t, []emf.Metric{count(MetricAlertsUndelivered, 1)})
	if !slices.Contains(names, MetricAlertsUndelivered) {
		t.Errorf("AlertsUndelivered 1 is not a CloudWatch metric of the line (%v)", names)
	}
}

// AlertsUndelivered on the audit's line is the digest or key check that
// failed after a run that succeeded (AuditAlertsUndeliveredAlarm's runbook:
// "the runs themselves succeeded"). After a failed run the key check still
// runs, but its trouble is not counted: a portal outage fails the run
// (AuditErrorsAlarm) and the key check alike, and pages once. Before, the
// key check of every failed run counted 1, so an outage fired both alarms
// and sent the operator to a runbook whose premise did not hold.
func TestAFailedRunsKeyCheckIsNotCountedUndelivered(t *testing.T) {
	w := &keywatch.Watch{Source: failingKeySource{}, Store: &keyStore{}, Log: slog.New(slog.DiscardHandler)} // never checked: its expiry is unknown
	runErr := &ipguard.Error{Code: ipguard.EUnavailable, Message: "portal: 503"}
	_, n, err := keyCheckAfter(context.Background(), w, runErr)
	if n != 0 || err != runErr {
		t.Errorf("after a failed run: %d undelivered, error %v; want 0 and the run's error", n, err)
	}
	warnings, n, err := keyCheckAfter(context.Background(), w, nil)
	if n != 1 || err != nil || len(warnings) != 1 {
		t.Errorf("after a run that succeeded: %d undelivered, warnings %q, error %v; want 1, a warning, no error", n, warnings, err)
	}
}

// An outbox the store cannot read is not an empty one: the run's line
// carries no outboxWaiting (the count is unknown, not 0) but
// outboxUnreadable and a warning, and BusUndelivered is above 0, a
// CloudWatch metric of the line, so FindingsBusUndeliveredAlarm (Sum ≥ 1;
// missing data not breaching) stays in ALARM instead of clearing while
// entries may wait. (Before: 0 waiting, BusUndelivered 0, not written.)
func TestAnUnreadableOutboxKeepsTheBusAlarmBreaching(t *testing.T) {
	c := alertChain{Bus: &findingsbus.Bus{Name: "default", Outbox: findingsbus.StoreOutbox{Store: failingDigestStore{}}}}
	props := map[string]any{}
	warnings := c.beforeAudit(context.Background(), props)
	if _, ok := props["outboxWaiting"]; ok || props["outboxUnreadable"] != true || len(warnings) != 1 || !strings.Contains(warnings[0], "could not be read") {
		t.Errorf("props %v, warnings %q; want outboxUnreadable, no outboxWaiting, a warning that says so", props, warnings)
	}
	ms := c.busMetrics()
	if _, names := line(t, ms); !slices.Contains(names, MetricBusUndelivered) {
		t.Errorf("BusUndelivered is not a CloudWatch metric of the line (%v): the alarm would read missing data and clear", ms)
	}
}

// keyStore is a keywatch.Store in memory: seen is when the last key check
// succeeded (zero: never).
type keyStore struct{ seen time.Time }

func (*keyStore) KeyAlertSent(context.Context, keywatch.Key, int) (bool, error) { return false, nil }
func (*keyStore) RecordKeyAlert(context.Context, keywatch.Key, int, time.Time) error {
	return nil
}
func (s *keyStore) SaveKey(_ context.Context, _ keywatch.Key, seen time.Time) error {
	s.seen = seen
	return nil
}
func (s *keyStore) LastKey(context.Context) (keywatch.Key, time.Time, bool, error) {
	return keywatch.Key{ID: "k1", Name: "audit", Postfix: "ab12", IsActive: true}, s.seen, !s.seen.IsZero(), nil
}

// A portal that does not answer keys/@self now (429, 5xx, no answer in
// time) after a run that succeeded is a warning of the run, not an
// undelivered alert: every alert went out, and the next run checks again.
// AlertsUndelivered (AuditAlertsUndeliveredAlarm) counts it only once no key
// check has succeeded for keywatch.StaleAfter. (Before: every such run
// counted 1, and a portal answering 429 now and then paged the operators
// with "alerts undelivered".)
func TestAPassingKeyCheckFailureIsUndeliveredOnlyOnceTheCheckIsStale(t *testing.T) {
	for _, tt := range []struct {
		name        string
		seen        time.Duration // since the last key check that succeeded
		undelivered int
	}{
		{"checked an hour ago", time.Hour, 0},
		{"not checked for two days", 48 * time.Hour, 1},
	} {
		w := &keywatch.Watch{Source: failingKeySource{}, Store: &keyStore{seen: time.Now().Add(-tt.seen)}, Log: slog.New(slog.DiscardHandler)}
		warnings, n, err := keyCheckAfter(context.Background(), w, nil)
		if n != tt.undelivered || err != nil || len(warnings) != 1 {
			t.Errorf("%s: %d undelivered, warnings %q, error %v; want %d, a warning, no error", tt.name, n, warnings, err, tt.undelivered)
		}
	}
}

// blipStore holds an empty outbox; while fail is set it cannot be read.
type blipStore struct{ fail bool }

func (s *blipStore) LoadRevised(ctx context.Context, pk string, v any) (int64, bool, error) {
	if s.fail {
		return failingDigestStore{}.LoadRevised(ctx, pk, v)
	}
	return 0, false, nil
}
func (*blipStore) SaveRevised(context.Context, string, any, int64, time.Time) error { return nil }

// The audit's chain keeps its Bus from run to run: one failed read of an
// outbox the previous run found empty is a warning of the run with no
// BusUndelivered on its line (FindingsBusUndeliveredAlarm does not page for
// one DynamoDB blip); a second in a row is counted, and the alarm fires.
func TestOneUnreadableOutboxAfterAnEmptyOneDoesNotPage(t *testing.T) {
	st := &blipStore{}
	c := alertChain{Bus: &findingsbus.Bus{Name: "default", Outbox: findingsbus.StoreOutbox{Store: st}}}
	for run, tt := range []struct {
		fail    bool
		counted bool
	}{{false, false}, {true, false}, {true, true}, {false, false}} {
		st.fail = tt.fail
		props := map[string]any{}
		warnings := c.beforeAudit(context.Background(), props)
		_, names := line(t, c.busMetrics())
		if slices.Contains(names, MetricBusUndelivered) != tt.counted || (props["outboxUnreadable"] == true) != tt.fail || (len(warnings) == 1) != tt.fail {
			t.Errorf("run %d (outbox unreadable: %v): metrics %v, props %v, warnings %q; want BusUndelivered counted: %v, and a warning if unreadable",
				run+1, tt.fail, names, props, warnings, tt.counted)
		}
	}
}

// The onboarding service publishes through the chain whose counts its
// handler writes (busMetrics), as the audit does: before, the service had a
// chain of its own, so the findings the bus refused during an invocation
// were counted only at the next one's retry, and the chat copies that
// failed were never counted (OnboardChatUndeliveredAlarm could not fire).
func TestTheOnboardingPublishesThroughTheChainItCounts(t *testing.T) {
	var logs, metrics bytes.Buffer
	d := crashingDeps(t, config.Onboard, &logs, &metrics)
	d.Config.Findings.BusName = "default"
	d.Config.Findings.ChatTopicARN = "arn:aws:sns:us-east-1:123456789012:chat"
	svc, c := d.onboardWiring()
	pub, ok := svc.Alerts.(*findingsbus.Publisher)
	if !ok || pub.Bus != c.Bus || c.Bus == nil || pub.Next != publisherPort(c.Chat) || c.Chat == nil {
		t.Errorf("the service publishes through %#v; want the counted chain's bus (%p) and chat copy (%p)", svc.Alerts, c.Bus, c.Chat)
	}
}
