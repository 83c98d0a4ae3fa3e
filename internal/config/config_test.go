package config

import (
	"strings"
	"testing"
	"time"

	"ipguard/internal/enforce"
	"ipguard/internal/ipguard"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func base() map[string]string {
	return map[string]string{
		"DOCSPACE_API_HOST":          "https://portal.example.com",
		"DOCSPACE_API_KEY_SECRET_ID": "docspace-api-key",
		"ALLOWLIST_TABLE":            "allowlist",
		"ALERT_TOPIC_ARN":            "arn:aws:sns:us-east-1:123456789012:alerts",
	}
}

func TestLoadDefaults(t *testing.T) {
	c, err := Load(env(base()), Onboard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Onboard.MaxRangeAddresses != 256 || !c.Onboard.Enforce || c.Onboard.Limits.MinPrefixV4 != 8 || c.Onboard.Limits.MinPrefixV6 != 32 || len(c.Onboard.Breakglass) != 0 {
		t.Errorf("onboard defaults: %+v", c.Onboard)
	}
	if c.Onboard.OffboardMaxPct != 10 || c.Onboard.OffboardRemoved {
		t.Errorf("users-left defaults: offboard %v, at most %d%%; want off, 10%% (#15 §4)", c.Onboard.OffboardRemoved, c.Onboard.OffboardMaxPct)
	}
	a, err := Load(env(base()), Audit)
	if err != nil {
		t.Fatal(err)
	}
	if a.Audit.Overlap != 5*time.Minute || a.Audit.Lookback != 15*time.Minute || a.Audit.FailedLoginThreshold != 5 || a.Audit.UnknownUserPolicy != UnknownDigest {
		t.Errorf("audit defaults: %+v", a.Audit)
	}
	if e := a.Audit.Enforcement; e != (Enforcement{Mode: "report", MaxPerRun: 10}) {
		t.Errorf("enforcement defaults: %+v; want report mode, breaker 10, no escalation", e)
	}
}

func TestLoadEnforcement(t *testing.T) {
	m := base()
	m["ENFORCEMENT_MODE"] = " End-Session "
	m["ENFORCE_UNKNOWN_USERS"] = "true"
	m["ENFORCEMENT_MAX_PER_RUN"] = "3"
	m["ENFORCEMENT_DISABLE_AFTER"] = "2"
	c, err := Load(env(m), Audit)
	if err != nil {
		t.Fatal(err)
	}
	if e := c.Audit.Enforcement; e != (Enforcement{Mode: "end-session", UnknownUsers: true, MaxPerRun: 3, DisableAfter: 2}) {
		t.Errorf("enforcement %+v", e)
	}
}

func TestLoadReportsEachProblemByName(t *testing.T) {
	tests := []struct {
		name string
		set  map[string]string
		fn   Function
		want []string
	}{
		{"missing required", map[string]string{"DOCSPACE_API_HOST": "", "ALLOWLIST_TABLE": ""}, Onboard,
			[]string{"DOCSPACE_API_HOST is required", "ALLOWLIST_TABLE is required"}},
		{"http without switch", map[string]string{"DOCSPACE_API_HOST": "http://127.0.0.1:8080"}, Onboard,
			[]string{`DOCSPACE_API_HOST must use https`, `"http://127.0.0.1:8080"`}},
		{"bad numbers", map[string]string{"PORTAL_MAX_RANGE_ADDRESSES": "0", "ALLOWLIST_MIN_PREFIX_V4": "40"}, Onboard,
			[]string{"PORTAL_MAX_RANGE_ADDRESSES", "ALLOWLIST_MIN_PREFIX_V4"}},
		{"breakglass CIDR", map[string]string{"PORTAL_BREAKGLASS_IPS": "203.0.113.1, 10.0.0.0/8"}, Onboard,
			[]string{`PORTAL_BREAKGLASS_IPS`, `"10.0.0.0/8"`}},
		{"bad bool", map[string]string{"PORTAL_ENFORCE": "yes please"}, Onboard, []string{"PORTAL_ENFORCE must be true or false"}},
		{"audit topic", map[string]string{"ALERT_TOPIC_ARN": ""}, Audit, []string{"ALERT_TOPIC_ARN is required"}},
		{"audit policy", map[string]string{"UNKNOWN_USER_POLICY": "maybe"}, Audit, []string{`UNKNOWN_USER_POLICY must be digest, alert or ignore (got "maybe")`}},
		{"audit durations", map[string]string{"AUDIT_OVERLAP": "5 minutes"}, Audit, []string{"AUDIT_OVERLAP must be a duration"}},
		{"overlap below its floor", map[string]string{"AUDIT_OVERLAP": "30s"}, Audit, []string{"AUDIT_OVERLAP must be a duration such as 30s, 5m or 1h, at least 1m0s"}},
		{"concurrency and rate out of range", map[string]string{"AUDIT_CONCURRENCY": "0", "PORTAL_REQUESTS_PER_MINUTE": "2000"}, Audit,
			[]string{"AUDIT_CONCURRENCY must be a whole number from 1 to 16", "PORTAL_REQUESTS_PER_MINUTE must be a whole number from 1 to 1500"}},
		{"metrics namespace", map[string]string{"METRICS_NAMESPACE": "AWS/Lambda"}, Audit, []string{"METRICS_NAMESPACE must be a CloudWatch namespace", `"AWS/Lambda"`}},
		{"metrics namespace characters", map[string]string{"METRICS_NAMESPACE": "ip guard!"}, Onboard, []string{"METRICS_NAMESPACE must be a CloudWatch namespace"}},
		{"heartbeat shorter than the schedule", map[string]string{"AUDIT_SCHEDULE": "rate(1 hour)", "HEARTBEAT_MAX_LAG_SECONDS": "3600"}, Audit,
			[]string{"HEARTBEAT_MAX_LAG_SECONDS must be at least twice the interval of AUDIT_SCHEDULE rate(1 hour)", "HeartbeatMaxLagSeconds"}},
		{"alarm period shorter than the schedule", map[string]string{"AUDIT_SCHEDULE": "rate(1 hour)", "HEARTBEAT_MAX_LAG_SECONDS": "14400", "ALARM_PERIOD_SECONDS": "900"}, Audit,
			[]string{"ALARM_PERIOD_SECONDS must be at least the interval of AUDIT_SCHEDULE rate(1 hour) (1h0m0s)", `(got "900")`, "AlarmPeriodSeconds"}},
		{"alarm period shorter than a 12-hour schedule", map[string]string{"AUDIT_SCHEDULE": "rate(12 hours)", "HEARTBEAT_MAX_LAG_SECONDS": "86400", "ALARM_PERIOD_SECONDS": "3600"}, Audit,
			[]string{"ALARM_PERIOD_SECONDS must be at least the interval of AUDIT_SCHEDULE rate(12 hours)"}},
		{"schedule", map[string]string{"AUDIT_SCHEDULE": "rate(15 minute)"}, Audit, []string{"AUDIT_SCHEDULE must be an EventBridge schedule expression", `"rate(15 minute)"`}},
		{"enforcement mode", map[string]string{"ENFORCEMENT_MODE": "kill"}, Audit, []string{`ENFORCEMENT_MODE must be report, end-session or end-all-sessions (got "kill")`}},
		{"enforcement numbers", map[string]string{"ENFORCEMENT_MAX_PER_RUN": "0", "ENFORCEMENT_DISABLE_AFTER": "-1", "ENFORCE_UNKNOWN_USERS": "maybe"}, Audit,
			[]string{"ENFORCEMENT_MAX_PER_RUN must be a whole number from 1", "ENFORCEMENT_DISABLE_AFTER must be a whole number from 0", "ENFORCE_UNKNOWN_USERS must be true or false"}},
		{"unknown users enforced but ignored", map[string]string{"ENFORCE_UNKNOWN_USERS": "true", "UNKNOWN_USER_POLICY": "ignore"}, Audit, []string{"ENFORCE_UNKNOWN_USERS", "UNKNOWN_USER_POLICY=digest or alert"}},
		{"retention shorter than overlap", map[string]string{"AUDIT_OVERLAP": "2h", "ALERT_RETENTION": "1h"}, Audit, []string{"ALERT_RETENTION must be longer than AUDIT_OVERLAP"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := base()
			for k, v := range tt.set {
				m[k] = v
			}
			_, err := Load(env(m), tt.fn)
			if ipguard.ErrorCode(err) != ipguard.EConfig {
				t.Fatalf("err = %v, want EConfig", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestLoadHTTPWithSwitchAndBreakglassCanonical(t *testing.T) {
	m := base()
	m["DOCSPACE_API_HOST"] = "http://127.0.0.1:8080"
	m["DOCSPACE_ALLOW_HTTP"] = "true"
	m["PORTAL_BREAKGLASS_IPS"] = " 2001:DB8::1 ,::ffff:203.0.113.9,"
	c, err := Load(env(m), Onboard)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(c.Onboard.Breakglass, ","); got != "2001:db8::1,203.0.113.9" {
		t.Errorf("breakglass = %s", got)
	}
}

func TestScheduleAndNamespace(t *testing.T) {
	m := base()
	m["AUDIT_SCHEDULE"] = "rate(15 minutes)"
	c, err := Load(env(m), Audit)
	if err != nil {
		t.Fatal(err)
	}
	if c.Audit.Schedule != "rate(15 minutes)" || c.MetricsNamespace != DefaultMetricsNamespace {
		t.Errorf("schedule %q, namespace %q", c.Audit.Schedule, c.MetricsNamespace)
	}
	for expr, want := range map[string]time.Duration{"rate(15 minutes)": 15 * time.Minute, "rate(1 hour)": time.Hour, "rate(2 days)": 48 * time.Hour} {
		if got, ok := ScheduleInterval(expr); !ok || got != want {
			t.Errorf("ScheduleInterval(%q) = %v, %v", expr, got, ok)
		}
	}
	if _, ok := ScheduleInterval("cron(0/15 * * * ? *)"); ok {
		t.Error("cron has an interval")
	}
}

// A schedule longer than any AlarmPeriodSeconds allows is never refused for
// it: an audit that refuses to run is worse than a noisy alarm.
func TestLoadAcceptsADailyScheduleWithTheLongestAlarmPeriod(t *testing.T) {
	e := base()
	e["AUDIT_SCHEDULE"], e["HEARTBEAT_MAX_LAG_SECONDS"], e["ALARM_PERIOD_SECONDS"] = "rate(1 day)", "259200", "43200"
	c, err := Load(env(e), Audit)
	if err != nil || c.Audit.AlarmPeriod != 12*time.Hour {
		t.Fatalf("Load = %v, %v", c.Audit.AlarmPeriod, err)
	}
}

func TestValidSchedule(t *testing.T) {
	tests := []struct {
		expr string
		want bool
	}{
		{"rate(15 minutes)", true},
		{"rate(1 minute)", true},
		{"rate(1 hour)", true},
		{"rate(2 days)", true},
		{"cron(0/15 * * * ? *)", true},
		{"cron(0 8 ? * MON-FRI *)", true},
		{"rate(1 minutes)", false},
		{"rate(15 minute)", false},
		{"rate(0 minutes)", false},
		{"rate(15 mins)", false},
		{"rate(15minutes)", false},
		{"every 15 minutes", false},
		{"cron(0/15 * * * *)", false},
		{"cron(0/15 * * * * *)", false},
		{"cron(0/15 * ? * ? *)", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := ValidSchedule(tt.expr); got != tt.want {
			t.Errorf("ValidSchedule(%q) = %v, want %v", tt.expr, got, tt.want)
		}
	}
}

// SYNC_SCHEDULE (optional) sizes the users-left rotation: a rate() gives its
// interval, a cron() none, a wrong expression is refused by name.
func TestSyncSchedule(t *testing.T) {
	for _, tt := range []struct {
		value string
		every time.Duration
		bad   bool
	}{{"", 0, false}, {"rate(15 minutes)", 15 * time.Minute, false}, {"cron(0 3 * * ? *)", 0, false}, {"rate(15 minute)", 0, true}} {
		m := base()
		m["SYNC_SCHEDULE"] = tt.value
		c, err := Load(env(m), Onboard)
		if tt.bad {
			if err == nil || !strings.Contains(err.Error(), "SYNC_SCHEDULE") {
				t.Errorf("%q: err = %v, want SYNC_SCHEDULE named", tt.value, err)
			}
			continue
		}
		if err != nil || c.Onboard.SyncEvery != tt.every {
			t.Errorf("%q: every %v, %v; want %v", tt.value, c.Onboard.SyncEvery, err, tt.every)
		}
	}
}

// Each value shared by both functions has one home in Config and is read
// for both: the alert topic and the portal request ceiling (#19 §6).
func TestSharedValuesHaveOneHomeForBothFunctions(t *testing.T) {
	for _, fn := range []Function{Onboard, Audit} {
		m := base()
		c, err := Load(env(m), fn)
		if err != nil {
			t.Fatal(err)
		}
		if c.AlertTopicARN != m["ALERT_TOPIC_ARN"] || c.DocSpace.RequestsPerMinute != 1200 {
			t.Errorf("function %d: topic %q, requests per minute %d; want %q, 1200", fn, c.AlertTopicARN, c.DocSpace.RequestsPerMinute, m["ALERT_TOPIC_ARN"])
		}
		m["PORTAL_REQUESTS_PER_MINUTE"] = "1501"
		if _, err := Load(env(m), fn); err == nil || !strings.Contains(err.Error(), "PORTAL_REQUESTS_PER_MINUTE") {
			t.Errorf("function %d: PORTAL_REQUESTS_PER_MINUTE=1501: %v; want an error naming it", fn, err)
		}
	}
}

// The configuration accepts exactly the modes the enforcement knows.
func TestEveryEnforcementModeLoads(t *testing.T) {
	for _, mode := range enforce.Modes {
		m := base()
		m["ENFORCEMENT_MODE"] = string(mode)
		c, err := Load(env(m), Audit)
		if err != nil || c.Audit.Enforcement.Mode != mode {
			t.Errorf("ENFORCEMENT_MODE=%s: %v, %v", mode, c.Audit.Enforcement.Mode, err)
		}
	}
}

// A function whose configuration failed counts its failures in the
// namespace its alarms watch: METRICS_NAMESPACE when CloudWatch would take
// it, else the default.
func TestMetricsNamespace(t *testing.T) {
	tests := []struct{ value, want string }{
		{"", DefaultMetricsNamespace},
		{"  ", DefaultMetricsNamespace},
		{"Team/IPGuard", "Team/IPGuard"},
		{" Team/IPGuard ", "Team/IPGuard"},
		{"AWS/Lambda", DefaultMetricsNamespace},
		{"has space", DefaultMetricsNamespace},
	}
	for _, tt := range tests {
		if got := MetricsNamespace(env(map[string]string{"METRICS_NAMESPACE": tt.value})); got != tt.want {
			t.Errorf("MetricsNamespace(%q) = %q, want %q", tt.value, got, tt.want)
		}
	}
}

// UNKNOWN_USER_POLICY: digest by default; ALERT_MODE=every turns digest
// (and only digest) into alert; ENFORCE_UNKNOWN_USERS works with digest as
// with alert (#21 §1, §6).
func TestUnknownUserPolicy(t *testing.T) {
	tests := []struct {
		policy, mode, enforce string
		want, inForce         string
		wantErr               string
	}{
		{"", "", "", UnknownDigest, UnknownDigest, ""},
		{" Digest ", "grouped", "", UnknownDigest, UnknownDigest, ""},
		{"", "every", "", UnknownDigest, UnknownAlert, ""},
		{"alert", "", "", UnknownAlert, UnknownAlert, ""},
		{"alert", "every", "", UnknownAlert, UnknownAlert, ""},
		{"ignore", "", "", UnknownIgnore, UnknownIgnore, ""},
		{"ignore", "every", "", UnknownIgnore, UnknownIgnore, ""},
		{"", "", "true", UnknownDigest, UnknownDigest, ""},
		{"digest", "", "true", UnknownDigest, UnknownDigest, ""},
		{"alert", "", "true", UnknownAlert, UnknownAlert, ""},
		{"ignore", "", "true", "", "", "ENFORCE_UNKNOWN_USERS needs UNKNOWN_USER_POLICY=digest or alert"},
		{"both", "", "", "", "", `UNKNOWN_USER_POLICY must be digest, alert or ignore (got "both")`},
	}
	for _, tt := range tests {
		m := base()
		m["UNKNOWN_USER_POLICY"], m["ALERT_MODE"], m["ENFORCE_UNKNOWN_USERS"] = tt.policy, tt.mode, tt.enforce
		c, err := Load(env(m), Audit)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%+v: %v, want %q", tt, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%+v: %v", tt, err)
			continue
		}
		if c.Audit.UnknownUserPolicy != tt.want || c.Audit.UnknownUserMessages() != tt.inForce || c.Audit.Enforcement.UnknownUsers != (tt.enforce == "true") {
			t.Errorf("%+v: policy %q in force %q enforce %v", tt, c.Audit.UnknownUserPolicy, c.Audit.UnknownUserMessages(), c.Audit.Enforcement.UnknownUsers)
		}
	}
}

// The sync's heartbeat alarm (SyncHeartbeatAlarm) fires when no sync
// completed in two periods of SyncHeartbeatPeriodSeconds: a rate()
// SyncSchedule longer than the period leaves periods without a sync between
// two healthy ones, so the onboarding refuses it at start, naming both
// fields and their values (attack review of the deploy). Unset, a cron()
// or one that fits loads.
func TestSyncScheduleFitsItsHeartbeatPeriod(t *testing.T) {
	for _, tt := range []struct {
		schedule, period string
		ok               bool
	}{
		{"rate(15 minutes)", "3600", true}, // the defaults
		{"rate(1 hour)", "3600", true},
		{"rate(12 hours)", "43200", true},
		{"cron(0 3 * * ? *)", "900", true}, // its gaps are not computed: the parameter's description says so
		{"rate(2 hours)", "", true},        // no period given: nothing to hold it to
		{"rate(2 hours)", "3600", false},
		{"rate(61 minutes)", "3600", false},
		{"rate(1 day)", "43200", false}, // longer than any allowed period
	} {
		m := base()
		m["SYNC_SCHEDULE"], m["SYNC_HEARTBEAT_PERIOD_SECONDS"] = tt.schedule, tt.period
		_, err := Load(env(m), Onboard)
		if tt.ok {
			if err != nil {
				t.Errorf("%s with period %q: %v, want it to load", tt.schedule, tt.period, err)
			}
			continue
		}
		if ipguard.ErrorCode(err) != ipguard.EConfig {
			t.Fatalf("%s with period %s: err = %v, want EConfig", tt.schedule, tt.period, err)
		}
		for _, w := range []string{"SYNC_HEARTBEAT_PERIOD_SECONDS", `"` + tt.period + `"`, "SYNC_SCHEDULE " + tt.schedule, "SyncHeartbeatPeriodSeconds"} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s with period %s: error %q does not contain %q", tt.schedule, tt.period, err, w)
			}
		}
	}
}

// TestNameLengthsAreCheckedApartFromTheirLetters: the namespace, bus and
// bucket patterns hold their letters only (a counted repeat compiles into a
// program of that many steps at every cold start); the lengths are checked
// beside them, at the same bounds as before.
func TestNameLengthsAreCheckedApartFromTheirLetters(t *testing.T) {
	tests := []struct {
		name, key, value string
		fn               Function
		ok               bool
	}{
		{"namespace of 255", "METRICS_NAMESPACE", strings.Repeat("n", 255), Onboard, true},
		{"namespace of 256", "METRICS_NAMESPACE", strings.Repeat("n", 256), Onboard, false},
		{"bus of 256", "FINDINGS_BUS_NAME", strings.Repeat("b", 256), Audit, true},
		{"bus of 257", "FINDINGS_BUS_NAME", strings.Repeat("b", 257), Audit, false},
		{"bucket of 3", "ARCHIVE_BUCKET", "a-b", Audit, true},
		{"bucket of 2", "ARCHIVE_BUCKET", "ab", Audit, false},
		{"bucket of 63", "ARCHIVE_BUCKET", strings.Repeat("c", 63), Audit, true},
		{"bucket of 64", "ARCHIVE_BUCKET", strings.Repeat("c", 64), Audit, false},
		{"bucket ending in a dash", "ARCHIVE_BUCKET", "abc-", Audit, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := base()
			m[tt.key] = tt.value
			_, err := Load(env(m), tt.fn)
			if tt.ok && err != nil {
				t.Fatalf("%s of %d: %v, want it taken", tt.key, len(tt.value), err)
			}
			if !tt.ok && (err == nil || !strings.Contains(err.Error(), tt.key)) {
				t.Fatalf("%s of %d: err = %v, want one naming %s", tt.key, len(tt.value), err, tt.key)
			}
		})
	}
}
