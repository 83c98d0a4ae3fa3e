package config

import (
	"regexp"
	"slices"
	"strings"
)

// Findings says where findings go besides the alert topic (README, "Where
// findings go"). Every destination is optional; empty means off.
type Findings struct {
	// BusName is FINDINGS_BUS_NAME: the EventBridge bus (name or ARN;
	// "default" is the account's default bus) that gets one event per
	// finding. Both functions.
	BusName string
	// ChatTopicARN is CHAT_TOPIC_ARN: the topic the chat integration
	// (Slack, Microsoft Teams) reads custom notifications from. Both functions.
	ChatTopicARN string
	// ArchiveBucket is ARCHIVE_BUCKET: the S3 bucket of the login archive
	// (audit only); ArchivePrefix is ARCHIVE_PREFIX, the key prefix ("" or
	// ending in "/").
	ArchiveBucket string
	ArchivePrefix string
	// DigestSeverities is DIGEST_SEVERITIES (default "low"; "none" turns the
	// digest off): findings of these severities go to the daily digest
	// instead of a message each (audit only).
	DigestSeverities []string
	// DigestHour is DIGEST_HOUR (UTC, default 8): the first scheduled run
	// from this hour on sends the day's digest.
	DigestHour int
}

// DigestableSeverities are the values DIGEST_SEVERITIES takes.
var DigestableSeverities = []string{"low", "medium", "high", "critical"}

// busName and bucketName are the names' letters; their lengths (1-256,
// 3-63) are checked apart, as namespacePattern's.
var (
	busName    = regexp.MustCompile(`^[A-Za-z0-9._\-/]+$`)
	bucketName = regexp.MustCompile(`^[a-z0-9][a-z0-9.\-]+[a-z0-9]$`)
)

// findings reads the destinations of fn's findings.
func (r *reader) findings(fn Function) Findings {
	var f Findings
	f.BusName = strings.TrimSpace(r.getenv("FINDINGS_BUS_NAME"))
	if f.BusName != "" && !strings.HasPrefix(f.BusName, "arn:") && (len(f.BusName) > 256 || !busName.MatchString(f.BusName)) {
		r.fail("FINDINGS_BUS_NAME", f.BusName, "must be an EventBridge bus name (letters, digits, . _ - /) or ARN; \"default\" is the account's default bus")
	}
	if v := strings.TrimSpace(r.getenv("CHAT_TOPIC_ARN")); v != "" {
		f.ChatTopicARN = r.topicARN("CHAT_TOPIC_ARN")
	}
	if fn != Audit {
		return f
	}
	f.ArchiveBucket = strings.TrimSpace(r.getenv("ARCHIVE_BUCKET"))
	if f.ArchiveBucket != "" && (len(f.ArchiveBucket) > 63 || !bucketName.MatchString(f.ArchiveBucket)) {
		r.fail("ARCHIVE_BUCKET", f.ArchiveBucket, "must be an S3 bucket name (3-63 lower-case letters, digits, . and -)")
	}
	f.ArchivePrefix = strings.TrimSpace(r.getenv("ARCHIVE_PREFIX"))
	if f.ArchivePrefix != "" && (!strings.HasSuffix(f.ArchivePrefix, "/") || strings.HasPrefix(f.ArchivePrefix, "/") || strings.Contains(f.ArchivePrefix, "=")) {
		r.fail("ARCHIVE_PREFIX", f.ArchivePrefix, "must end in / and neither start with / nor hold = (e.g. logins/)")
	}
	switch v := strings.ToLower(strings.TrimSpace(r.getenv("DIGEST_SEVERITIES"))); v {
	case "":
		f.DigestSeverities = []string{"low"}
	case "none":
	default:
		for _, s := range strings.Split(v, ",") {
			s = strings.TrimSpace(s)
			if !slices.Contains(DigestableSeverities, s) {
				r.fail("DIGEST_SEVERITIES", v, "must be none or a comma-separated list of low, medium, high, critical")
				break
			}
			if !slices.Contains(f.DigestSeverities, s) {
				f.DigestSeverities = append(f.DigestSeverities, s)
			}
		}
	}
	f.DigestHour = r.integer("DIGEST_HOUR", 8, 0, 23)
	return f
}
