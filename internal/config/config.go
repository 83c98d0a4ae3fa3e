// Package config is the one typed configuration of both functions, read from
// the environment once at start and checked there: every problem is reported
// at once, each with the variable's name.
package config

import (
	"fmt"
	"log/slog"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"ipguard/internal/allowlist"
	"ipguard/internal/enforce"
	"ipguard/internal/ipguard"
)

// Function names which Lambda function the configuration is for; each checks
// only the variables it uses.
type Function int

const (
	Onboard Function = iota
	Audit
)

// MaxPortalEntries is the largest PORTAL_MAX_ENTRIES accepted: the tool
// keeps the list the portal holds and the addresses it owns in one DynamoDB
// item, and the list of a PUT in flight with the recent PUTs in another
// (each at most 400 KB). At this cap, with every entry at the portal's 50
// characters, each takes less than three quarters of its item (the size
// test in internal/dynamo fills every list), and a portal list that hand
// edits push to about 5,000 such entries still fits.
const MaxPortalEntries = 2500

// Config is the whole configuration.
type Config struct {
	DocSpace DocSpace
	// Table is ALLOWLIST_TABLE: the DynamoDB table (source of truth).
	Table    string
	LogLevel slog.Level
	// MetricsNamespace is METRICS_NAMESPACE (default DocSpaceIPGuard): the
	// CloudWatch namespace of the functions' EMF metrics.
	MetricsNamespace string
	// AlertTopicARN is ALERT_TOPIC_ARN: the SNS topic of every alert (the
	// audit's findings, onboarding's drift and lock-out alerts).
	AlertTopicARN string
	Onboard       OnboardSettings // onboarding only
	Audit         AuditSettings   // audit only
	// Findings are the destinations besides the alert topic: the findings
	// bus, chat, the login archive and the digest (config/findings.go).
	Findings Findings
}

// DefaultMetricsNamespace is the namespace when METRICS_NAMESPACE is unset.
const DefaultMetricsNamespace = "DocSpaceIPGuard"

// DocSpace says how to reach the portal's API.
type DocSpace struct {
	Host        string        // DOCSPACE_API_HOST, https unless AllowHTTP
	AllowHTTP   bool          // DOCSPACE_ALLOW_HTTP (default false): local use only
	KeySecretID string        // DOCSPACE_API_KEY_SECRET_ID: secret name or ARN
	KeyCacheTTL time.Duration // SECRET_CACHE_TTL (default 5m)
	Timeout     time.Duration // DOCSPACE_TIMEOUT per HTTP attempt (default 10s)
	// RequestsPerMinute is PORTAL_REQUESTS_PER_MINUTE (default 1200,
	// 1..1500): the ceiling on the requests one client starts per minute.
	RequestsPerMinute int
}

// OnboardSettings hold the onboarding rules for the portal allowlist.
type OnboardSettings struct {
	MaxRangeAddresses int              // PORTAL_MAX_RANGE_ADDRESSES (default 256): larger blocks are not pushed
	Breakglass        []string         // PORTAL_BREAKGLASS_IPS: canonical single addresses always kept on the portal
	Enforce           bool             // PORTAL_ENFORCE (default true): send enable=true
	Limits            allowlist.Limits // ALLOWLIST_MIN_PREFIX_V4 (8), ALLOWLIST_MIN_PREFIX_V6 (32); at most 100 entries
	LeaseWait         time.Duration    // LEASE_WAIT (default 20s): longest wait for another onboarding
	MaxEntries        int              // PORTAL_MAX_ENTRIES (default 2000): cap of the portal list
	DriftRepair       bool             // PORTAL_DRIFT_REPAIR (default false): switch restrictions back on when switched off by hand
	OffboardRemoved   bool             // OFFBOARD_REMOVED_USERS (default false): offboard users the portal deleted or terminated
	OffboardMaxPct    int              // OFFBOARD_MAX_PERCENT (1-100, default 10): at most this share of the stored users (and at least 5) offboarded by one sync
	// SyncEvery is the interval of SYNC_SCHEDULE (optional: the template
	// parameter SyncSchedule) when it is a rate(); 0 for a cron() or when
	// unset. It sizes the users-left rotation's share per sync.
	SyncEvery time.Duration
	// SyncHeartbeatPeriod is SYNC_HEARTBEAT_PERIOD_SECONDS (optional: the
	// template parameter SyncHeartbeatPeriodSeconds), the period of the
	// sync's heartbeat alarm, which fires when no sync completed in two of
	// them; 0 when unset. It must be at least SyncEvery: the sync's alarms
	// are sized for a sync in every period (a cron() is not checked).
	SyncHeartbeatPeriod time.Duration
}

// AuditSettings hold the audit's settings.
type AuditSettings struct {
	Overlap              time.Duration // AUDIT_OVERLAP (default 5m)
	Lookback             time.Duration // AUDIT_LOOKBACK (default 15m): first run's window
	FailedLoginThreshold int           // FAILED_LOGIN_THRESHOLD (default 5; 0 = off)
	// UnknownUserPolicy is UNKNOWN_USER_POLICY: how people are told of
	// successful logins by users without an allowlist: UnknownDigest
	// (default: listed in the daily digest), UnknownAlert (a message per
	// login) or UnknownIgnore (no unknown_user finding). See
	// UnknownUserMessages for the policy ALERT_MODE leaves in force.
	UnknownUserPolicy string
	AlertRetention    time.Duration // ALERT_RETENTION (default 168h): how long alerted event ids are remembered
	DeadlineMargin    time.Duration // AUDIT_DEADLINE_MARGIN (default 20s): stop fetching this long before the deadline
	Concurrency       int           // AUDIT_CONCURRENCY (default 4, 1..16): pages in flight at once
	// Schedule is AUDIT_SCHEDULE: the EventBridge schedule expression that
	// runs the audit (rate(...) or cron(...)), reported by the status
	// operation; empty when the function is only invoked by hand.
	Schedule string
	// HeartbeatMaxLag is HEARTBEAT_MAX_LAG_SECONDS (template parameter
	// HeartbeatMaxLagSeconds), the lag the heartbeat alarm tolerates; only
	// checked against a rate() Schedule: it must be at least twice its
	// interval, or the alarm fires between two healthy runs.
	HeartbeatMaxLag time.Duration
	// AlarmPeriod is ALARM_PERIOD_SECONDS (template parameter
	// AlarmPeriodSeconds), the period of the error and heartbeat alarms;
	// only checked against a rate() Schedule: it must be at least its
	// interval, or a period without a run is missing data, which the
	// heartbeat alarm counts as breaching.
	AlarmPeriod time.Duration
	Enforcement Enforcement
	// Behaviour is the behaviour detection (see behaviour.go).
	Behaviour Behaviour
}

// The values of UNKNOWN_USER_POLICY.
const (
	UnknownDigest = "digest"
	UnknownAlert  = "alert"
	UnknownIgnore = "ignore"
)

// UnknownUserMessages is the unknown-user policy in force: UNKNOWN_USER_POLICY,
// except that ALERT_MODE=every turns digest into alert (every switches
// grouping off: each login of a user without an allowlist is a message of
// its own). ignore stays ignore.
func (a AuditSettings) UnknownUserMessages() string {
	if a.UnknownUserPolicy == UnknownDigest && !a.Behaviour.Grouped() {
		return UnknownAlert
	}
	return a.UnknownUserPolicy
}

// Enforcement says how the audit responds to a violating login.
type Enforcement struct {
	// Mode is ENFORCEMENT_MODE: one of enforce.Modes, report by default.
	Mode enforce.Mode
	// UnknownUsers is ENFORCE_UNKNOWN_USERS (default false): also act on
	// logins by users without an allowlist (with UNKNOWN_USER_POLICY alert
	// or digest alike: how people are told never changes what is enforced).
	UnknownUsers bool
	// MaxPerRun is ENFORCEMENT_MAX_PER_RUN (default 10): a run that would act
	// on more logins acts on none.
	MaxPerRun int
	// DisableAfter is ENFORCEMENT_DISABLE_AFTER (default 0 = off): disable a
	// user with this many enforced violations within 24 hours.
	DisableAfter int
}

// Load reads and checks the configuration for fn. The error, an EConfig
// ipguard.Error, lists every problem with the variable's name.
func Load(getenv func(string) string, fn Function) (Config, error) {
	r := reader{getenv: getenv}
	var c Config
	c.DocSpace.Host = r.required("DOCSPACE_API_HOST")
	c.DocSpace.AllowHTTP = r.boolean("DOCSPACE_ALLOW_HTTP", false)
	if c.DocSpace.Host != "" {
		r.checkHost("DOCSPACE_API_HOST", c.DocSpace.Host, c.DocSpace.AllowHTTP)
	}
	c.DocSpace.KeySecretID = r.required("DOCSPACE_API_KEY_SECRET_ID")
	c.DocSpace.KeyCacheTTL = r.duration("SECRET_CACHE_TTL", 5*time.Minute, time.Second)
	c.DocSpace.Timeout = r.duration("DOCSPACE_TIMEOUT", 10*time.Second, 100*time.Millisecond)
	c.DocSpace.RequestsPerMinute = r.integer("PORTAL_REQUESTS_PER_MINUTE", 1200, 1, 1500)
	c.Table = r.required("ALLOWLIST_TABLE")
	c.LogLevel = r.level("LOG_LEVEL")
	c.MetricsNamespace = r.namespace("METRICS_NAMESPACE")
	c.AlertTopicARN = r.topicARN("ALERT_TOPIC_ARN")

	switch fn {
	case Onboard:
		c.Onboard.MaxRangeAddresses = r.integer("PORTAL_MAX_RANGE_ADDRESSES", 256, 1, 65536)
		c.Onboard.Breakglass = r.addresses("PORTAL_BREAKGLASS_IPS")
		c.Onboard.Enforce = r.boolean("PORTAL_ENFORCE", true)
		c.Onboard.Limits = allowlist.Limits{
			MinPrefixV4: r.integer("ALLOWLIST_MIN_PREFIX_V4", 8, 1, 32),
			MinPrefixV6: r.integer("ALLOWLIST_MIN_PREFIX_V6", 32, 1, 128),
			MaxEntries:  100,
		}
		c.Onboard.LeaseWait = r.duration("LEASE_WAIT", 20*time.Second, 0)
		c.Onboard.MaxEntries = r.integer("PORTAL_MAX_ENTRIES", 2000, 1, MaxPortalEntries)
		c.Onboard.DriftRepair = r.boolean("PORTAL_DRIFT_REPAIR", false)
		c.Onboard.OffboardRemoved = r.boolean("OFFBOARD_REMOVED_USERS", false)
		c.Onboard.OffboardMaxPct = r.integer("OFFBOARD_MAX_PERCENT", 10, 1, 100)
		if sched := strings.TrimSpace(getenv("SYNC_SCHEDULE")); sched != "" {
			if !ValidSchedule(sched) {
				r.fail("SYNC_SCHEDULE", sched, "must be an EventBridge schedule expression such as rate(15 minutes) or cron(0/15 * * * ? *)")
			} else if every, ok := ScheduleInterval(sched); ok {
				c.Onboard.SyncEvery = every
			}
		}
		if p := r.integer("SYNC_HEARTBEAT_PERIOD_SECONDS", 0, 0, 100*24*3600); p > 0 {
			c.Onboard.SyncHeartbeatPeriod = time.Duration(p) * time.Second
			if every := c.Onboard.SyncEvery; every > c.Onboard.SyncHeartbeatPeriod {
				r.fail("SYNC_HEARTBEAT_PERIOD_SECONDS", strconv.Itoa(p), "must be at least the interval of SYNC_SCHEDULE %s (%s): the sync's alarms are sized for a sync in every period (with a longer gap OnboardErrorsAlarm clears between two failed syncs, and from twice the period on SyncHeartbeatAlarm fires between two healthy ones): raise the template parameter SyncHeartbeatPeriodSeconds (at most 43200) or sync more often", getenv("SYNC_SCHEDULE"), every)
			}
		}
	case Audit:
		c.Audit.Overlap = r.duration("AUDIT_OVERLAP", 5*time.Minute, time.Minute)
		c.Audit.Lookback = r.duration("AUDIT_LOOKBACK", 15*time.Minute, time.Second)
		c.Audit.FailedLoginThreshold = r.integer("FAILED_LOGIN_THRESHOLD", 5, 0, 1_000_000)
		switch p := strings.ToLower(strings.TrimSpace(getenv("UNKNOWN_USER_POLICY"))); p {
		case "":
			c.Audit.UnknownUserPolicy = UnknownDigest
		case UnknownDigest, UnknownAlert, UnknownIgnore:
			c.Audit.UnknownUserPolicy = p
		default:
			r.fail("UNKNOWN_USER_POLICY", p, "must be digest, alert or ignore")
			c.Audit.UnknownUserPolicy = UnknownDigest
		}
		c.Audit.AlertRetention = r.duration("ALERT_RETENTION", 168*time.Hour, time.Hour)
		if c.Audit.AlertRetention != 0 && c.Audit.AlertRetention <= c.Audit.Overlap {
			r.fail("ALERT_RETENTION", getenv("ALERT_RETENTION"), "must be longer than AUDIT_OVERLAP, or overlapping windows would alert twice")
		}
		c.Audit.DeadlineMargin = r.duration("AUDIT_DEADLINE_MARGIN", 20*time.Second, 0)
		c.Audit.Concurrency = r.integer("AUDIT_CONCURRENCY", 4, 1, 16)
		c.Audit.Schedule = strings.TrimSpace(getenv("AUDIT_SCHEDULE"))
		if c.Audit.Schedule != "" && !ValidSchedule(c.Audit.Schedule) {
			r.fail("AUDIT_SCHEDULE", c.Audit.Schedule, "must be an EventBridge schedule expression such as rate(15 minutes) or cron(0/15 * * * ? *)")
		}
		if lag := r.integer("HEARTBEAT_MAX_LAG_SECONDS", 0, 0, 100*24*3600); lag > 0 {
			c.Audit.HeartbeatMaxLag = time.Duration(lag) * time.Second
			if every, ok := ScheduleInterval(c.Audit.Schedule); ok && c.Audit.HeartbeatMaxLag < 2*every {
				r.fail("HEARTBEAT_MAX_LAG_SECONDS", strconv.Itoa(lag), "must be at least twice the interval of AUDIT_SCHEDULE %s (%s), or the heartbeat alarm fires between two healthy runs: raise the template parameter HeartbeatMaxLagSeconds", c.Audit.Schedule, every)
			}
		}
		if p := r.integer("ALARM_PERIOD_SECONDS", 0, 0, 100*24*3600); p > 0 {
			c.Audit.AlarmPeriod = time.Duration(p) * time.Second
			// Only where an allowed AlarmPeriodSeconds (at most 12 hours) can
			// cover the interval: a longer schedule is never refused for it.
			if every, ok := ScheduleInterval(c.Audit.Schedule); ok && every <= 12*time.Hour && c.Audit.AlarmPeriod < every {
				r.fail("ALARM_PERIOD_SECONDS", strconv.Itoa(p), "must be at least the interval of AUDIT_SCHEDULE %s (%s), or the heartbeat alarm takes a period without a run for a missing heartbeat and fires between two healthy runs: raise the template parameter AlarmPeriodSeconds", c.Audit.Schedule, every)
			}
		}
		e := &c.Audit.Enforcement
		e.Mode = enforce.Mode(strings.ToLower(strings.TrimSpace(getenv("ENFORCEMENT_MODE"))))
		if e.Mode == "" {
			e.Mode = enforce.ModeReport
		} else if !slices.Contains(enforce.Modes, e.Mode) {
			r.fail("ENFORCEMENT_MODE", string(e.Mode), "must be %s", modeList())
		}
		e.UnknownUsers = r.boolean("ENFORCE_UNKNOWN_USERS", false)
		if e.UnknownUsers && c.Audit.UnknownUserPolicy == UnknownIgnore {
			r.fail("ENFORCE_UNKNOWN_USERS", "true", "needs UNKNOWN_USER_POLICY=digest or alert: with ignore, logins of unknown users are not even found")
		}
		e.MaxPerRun = r.integer("ENFORCEMENT_MAX_PER_RUN", 10, 1, 1000)
		e.DisableAfter = r.integer("ENFORCEMENT_DISABLE_AFTER", 0, 0, 1000)
		c.Audit.Behaviour = r.behaviour()
	}
	c.Findings = r.findings(fn)
	if len(r.problems) > 0 {
		return Config{}, &ipguard.Error{Code: ipguard.EConfig,
			Message: "configuration: " + strings.Join(r.problems, "; ")}
	}
	return c, nil
}

type reader struct {
	getenv   func(string) string
	problems []string
}

func (r *reader) fail(name, value, format string, args ...any) {
	msg := name + " " + fmt.Sprintf(format, args...)
	if value != "" {
		msg += fmt.Sprintf(" (got %q)", value)
	}
	r.problems = append(r.problems, msg)
}

func (r *reader) required(name string) string {
	v := strings.TrimSpace(r.getenv(name))
	if v == "" {
		r.fail(name, "", "is required")
	}
	return v
}

func (r *reader) topicARN(name string) string {
	v := r.required(name)
	if v != "" && !strings.HasPrefix(v, "arn:") {
		r.fail(name, v, "must be an SNS topic ARN (arn:aws:sns:...)")
	}
	return v
}

func (r *reader) boolean(name string, def bool) bool {
	v := strings.TrimSpace(r.getenv(name))
	if v == "" {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		r.fail(name, v, "must be true or false")
		return def
	}
	return b
}

func (r *reader) integer(name string, def, min, max int) int {
	v := strings.TrimSpace(r.getenv(name))
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < min || n > max {
		r.fail(name, v, "must be a whole number from %d to %d", min, max)
		return def
	}
	return n
}

func (r *reader) duration(name string, def, min time.Duration) time.Duration {
	v := strings.TrimSpace(r.getenv(name))
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < min {
		r.fail(name, v, "must be a duration such as 30s, 5m or 1h, at least %s", min)
		return def
	}
	return d
}

// namespacePattern is the namespace's letters; its length (1-255) is
// checked apart: a counted repeat of 255 compiles into a program of 255
// steps, built at every cold start.
var namespacePattern = regexp.MustCompile(`^[A-Za-z0-9.\-_/#:]+$`)

// MetricsNamespace returns METRICS_NAMESPACE as getenv has it, or
// DefaultMetricsNamespace when it is unset or not a namespace CloudWatch
// accepts: a function whose configuration failed to load still counts its
// failures where the alarms look.
func MetricsNamespace(getenv func(string) string) string {
	return (&reader{getenv: getenv}).namespace("METRICS_NAMESPACE")
}

// modeList is enforce.Modes for an error message: "report, end-session or
// end-all-sessions".
func modeList() string {
	var names []string
	for _, m := range enforce.Modes {
		names = append(names, string(m))
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// namespace reads a CloudWatch namespace: 1-255 of letters, digits and
// . - _ / # :, not starting with "AWS/" (reserved for AWS services).
func (r *reader) namespace(name string) string {
	v := strings.TrimSpace(r.getenv(name))
	if v == "" {
		return DefaultMetricsNamespace
	}
	if len(v) > 255 || !namespacePattern.MatchString(v) || strings.HasPrefix(v, "AWS/") {
		r.fail(name, v, "must be a CloudWatch namespace: 1-255 letters, digits or . - _ / # :, not starting with AWS/")
		return DefaultMetricsNamespace
	}
	return v
}

var (
	rateExpr = regexp.MustCompile(`^rate\(([1-9][0-9]*) (minute|minutes|hour|hours|day|days)\)$`)
	cronExpr = regexp.MustCompile(`^cron\(([^()]+)\)$`)
)

// ValidSchedule reports whether s is an EventBridge schedule expression:
// rate(N unit), with the singular unit exactly when N is 1, or cron() with six
// fields of which exactly one of day-of-month and day-of-week is "?". It does
// not check the cron fields' values.
func ValidSchedule(s string) bool {
	if m := rateExpr.FindStringSubmatch(s); m != nil {
		n, err := strconv.Atoi(m[1])
		return err == nil && (n == 1) == !strings.HasSuffix(m[2], "s")
	}
	if m := cronExpr.FindStringSubmatch(s); m != nil {
		f := strings.Fields(m[1])
		return len(f) == 6 && (f[2] == "?") != (f[4] == "?")
	}
	return false
}

// ScheduleInterval is the interval of a rate() expression; ok is false for
// cron() and anything else.
func ScheduleInterval(s string) (d time.Duration, ok bool) {
	m := rateExpr.FindStringSubmatch(s)
	if m == nil {
		return 0, false
	}
	n, _ := strconv.Atoi(m[1])
	unit := map[string]time.Duration{"minute": time.Minute, "hour": time.Hour, "day": 24 * time.Hour}[strings.TrimSuffix(m[2], "s")]
	return time.Duration(n) * unit, true
}

func (r *reader) level(name string) slog.Level {
	v := strings.TrimSpace(r.getenv(name))
	var l slog.Level
	if v == "" {
		return slog.LevelInfo
	}
	if err := l.UnmarshalText([]byte(v)); err != nil {
		r.fail(name, v, "must be debug, info, warn or error")
		return slog.LevelInfo
	}
	return l
}

// addresses reads a comma-separated list of single addresses, canonical.
func (r *reader) addresses(name string) []string {
	v := r.getenv(name)
	var out []string
	for _, part := range strings.Split(v, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		a, err := netip.ParseAddr(part)
		if err != nil || a.Zone() != "" {
			r.fail(name, part, "must list single IPv4/IPv6 addresses separated by commas (the portal stores only single addresses)")
			continue
		}
		out = append(out, a.Unmap().String())
	}
	return out
}

func (r *reader) checkHost(name, v string, allowHTTP bool) {
	u, err := url.Parse(v)
	if err != nil || u.Host == "" {
		r.fail(name, v, "must be the portal URL, e.g. https://yourportal.onlyoffice.com")
		return
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !allowHTTP {
			r.fail(name, v, "must use https (plain http only with DOCSPACE_ALLOW_HTTP=true, for local use)")
		}
	default:
		r.fail(name, v, "must start with https://")
	}
}
