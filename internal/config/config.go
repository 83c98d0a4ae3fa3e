// Package config is the one typed configuration of both functions, read from
// the environment once at start and checked there: every problem is reported
// at once, each with the variable's name.
package config

import (
	"fmt"
	"log/slog"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"ipguard/internal/allowlist"
	"ipguard/internal/ipguard"
)

// Function names which Lambda function the configuration is for; each checks
// only the variables it uses.
type Function int

const (
	Onboard Function = iota
	Audit
)

// Config is the whole configuration.
type Config struct {
	DocSpace DocSpace
	// Table is ALLOWLIST_TABLE: the DynamoDB table (source of truth).
	Table    string
	LogLevel slog.Level
	Portal   Portal // onboarding only
	Audit    AuditConfig
}

// DocSpace says how to reach the portal's API.
type DocSpace struct {
	Host        string        // DOCSPACE_API_HOST, https unless AllowHTTP
	AllowHTTP   bool          // DOCSPACE_ALLOW_HTTP (default false): local use only
	KeySecretID string        // DOCSPACE_API_KEY_SECRET_ID: secret name or ARN
	KeyCacheTTL time.Duration // SECRET_CACHE_TTL (default 5m)
	Timeout     time.Duration // DOCSPACE_TIMEOUT per HTTP attempt (default 10s)
}

// Portal holds the onboarding rules for the portal allowlist.
type Portal struct {
	MaxRangeAddresses int              // PORTAL_MAX_RANGE_ADDRESSES (default 256): larger blocks are not pushed
	Breakglass        []string         // PORTAL_BREAKGLASS_IPS: canonical single addresses always kept on the portal
	Enforce           bool             // PORTAL_ENFORCE (default true): send enable=true
	Limits            allowlist.Limits // ALLOWLIST_MIN_PREFIX_V4 (8), ALLOWLIST_MIN_PREFIX_V6 (32); at most 100 entries
	LeaseWait         time.Duration    // LEASE_WAIT (default 20s): longest wait for another onboarding
	MaxEntries        int              // PORTAL_MAX_ENTRIES (default 2000): cap of the portal list
	DriftRepair       bool             // PORTAL_DRIFT_REPAIR (default false): switch restrictions back on when switched off by hand
	OffboardRemoved   bool             // OFFBOARD_REMOVED_USERS (default false): offboard users the portal deleted or terminated
	AlertTopicARN     string           // ALERT_TOPIC_ARN: drift and lock-out alerts
}

// AuditConfig holds the audit's settings.
type AuditConfig struct {
	TopicARN             string        // ALERT_TOPIC_ARN
	Overlap              time.Duration // AUDIT_OVERLAP (default 5m)
	Lookback             time.Duration // AUDIT_LOOKBACK (default 15m): first run's window
	FailedLoginThreshold int           // FAILED_LOGIN_THRESHOLD (default 5; 0 = off)
	AlertUnknownUsers    bool          // UNKNOWN_USER_POLICY: alert (default) or ignore
	AlertRetention       time.Duration // ALERT_RETENTION (default 168h): how long alerted event ids are remembered
	DeadlineMargin       time.Duration // AUDIT_DEADLINE_MARGIN (default 20s): stop fetching this long before the deadline
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
	c.Table = r.required("ALLOWLIST_TABLE")
	c.LogLevel = r.level("LOG_LEVEL")

	switch fn {
	case Onboard:
		c.Portal.MaxRangeAddresses = r.integer("PORTAL_MAX_RANGE_ADDRESSES", 256, 1, 65536)
		c.Portal.Breakglass = r.addresses("PORTAL_BREAKGLASS_IPS")
		c.Portal.Enforce = r.boolean("PORTAL_ENFORCE", true)
		c.Portal.Limits = allowlist.Limits{
			MinPrefixV4: r.integer("ALLOWLIST_MIN_PREFIX_V4", 8, 1, 32),
			MinPrefixV6: r.integer("ALLOWLIST_MIN_PREFIX_V6", 32, 1, 128),
			MaxEntries:  100,
		}
		c.Portal.LeaseWait = r.duration("LEASE_WAIT", 20*time.Second, 0)
		c.Portal.MaxEntries = r.integer("PORTAL_MAX_ENTRIES", 2000, 1, 100000)
		c.Portal.DriftRepair = r.boolean("PORTAL_DRIFT_REPAIR", false)
		c.Portal.OffboardRemoved = r.boolean("OFFBOARD_REMOVED_USERS", false)
		c.Portal.AlertTopicARN = r.topicARN("ALERT_TOPIC_ARN")
	case Audit:
		c.Audit.TopicARN = r.topicARN("ALERT_TOPIC_ARN")
		c.Audit.Overlap = r.duration("AUDIT_OVERLAP", 5*time.Minute, 0)
		c.Audit.Lookback = r.duration("AUDIT_LOOKBACK", 15*time.Minute, time.Second)
		c.Audit.FailedLoginThreshold = r.integer("FAILED_LOGIN_THRESHOLD", 5, 0, 1_000_000)
		switch p := strings.ToLower(strings.TrimSpace(getenv("UNKNOWN_USER_POLICY"))); p {
		case "", "alert":
			c.Audit.AlertUnknownUsers = true
		case "ignore":
		default:
			r.fail("UNKNOWN_USER_POLICY", p, "must be alert or ignore")
		}
		c.Audit.AlertRetention = r.duration("ALERT_RETENTION", 168*time.Hour, time.Hour)
		if c.Audit.AlertRetention != 0 && c.Audit.AlertRetention <= c.Audit.Overlap {
			r.fail("ALERT_RETENTION", getenv("ALERT_RETENTION"), "must be longer than AUDIT_OVERLAP, or overlapping windows would alert twice")
		}
		c.Audit.DeadlineMargin = r.duration("AUDIT_DEADLINE_MARGIN", 20*time.Second, 0)
	}
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
