package config

import (
	"slices"
	"strings"
	"testing"
)

func TestFindingsDestinations(t *testing.T) {
	base := map[string]string{"DOCSPACE_API_HOST": "https://portal.example.com", "DOCSPACE_API_KEY_SECRET_ID": "s", "ALLOWLIST_TABLE": "t",
		"ALERT_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:a"}
	tests := []struct {
		name    string
		env     map[string]string
		want    func(Findings) bool
		wantErr string
	}{
		{"defaults: everything off but the low digest at 8", nil, func(f Findings) bool {
			return f.BusName == "" && f.ChatTopicARN == "" && f.ArchiveBucket == "" && slices.Equal(f.DigestSeverities, []string{"low"}) && f.DigestHour == 8
		}, ""},
		{"every destination", map[string]string{"FINDINGS_BUS_NAME": "default", "CHAT_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:chat",
			"ARCHIVE_BUCKET": "ipguard-archive", "ARCHIVE_PREFIX": "logins/", "DIGEST_SEVERITIES": "low, medium", "DIGEST_HOUR": "0"}, func(f Findings) bool {
			return f.BusName == "default" && f.ArchiveBucket == "ipguard-archive" && f.ArchivePrefix == "logins/" && slices.Equal(f.DigestSeverities, []string{"low", "medium"}) && f.DigestHour == 0
		}, ""},
		{"digest off", map[string]string{"DIGEST_SEVERITIES": "none"}, func(f Findings) bool { return len(f.DigestSeverities) == 0 }, ""},
		{"a bus ARN", map[string]string{"FINDINGS_BUS_NAME": "arn:aws:events:us-east-1:123456789012:event-bus/sec"}, func(f Findings) bool { return f.BusName != "" }, ""},
		{"bad bus", map[string]string{"FINDINGS_BUS_NAME": "a bus"}, nil, `FINDINGS_BUS_NAME must be an EventBridge bus name`},
		{"bad chat topic", map[string]string{"CHAT_TOPIC_ARN": "chat"}, nil, `CHAT_TOPIC_ARN must be an SNS topic ARN`},
		{"bad bucket", map[string]string{"ARCHIVE_BUCKET": "Upper_Case"}, nil, `ARCHIVE_BUCKET must be an S3 bucket name (3-63 lower-case letters, digits, . and -) (got "Upper_Case")`},
		{"bad prefix", map[string]string{"ARCHIVE_PREFIX": "logins"}, nil, `ARCHIVE_PREFIX must end in /`},
		{"bad severity", map[string]string{"DIGEST_SEVERITIES": "low,info"}, nil, `DIGEST_SEVERITIES must be none or a comma-separated list`},
		{"bad hour", map[string]string{"DIGEST_HOUR": "24"}, nil, `DIGEST_HOUR must be a whole number from 0 to 23 (got "24")`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{}
			for k, v := range base {
				env[k] = v
			}
			for k, v := range tt.env {
				env[k] = v
			}
			c, err := Load(func(k string) string { return env[k] }, Audit)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || !tt.want(c.Findings) {
				t.Fatalf("Findings = %+v, %v", c.Findings, err)
			}
		})
	}
}
