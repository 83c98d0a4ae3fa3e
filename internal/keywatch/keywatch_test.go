package keywatch

import (
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"ipguard/internal/snsalert/snsmessage"
)

func TestThresholdsAndSeverity(t *testing.T) {
	now := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	tests := []struct {
		left     time.Duration
		crossed  []int
		severity string
		days     int
	}{
		{30 * day, nil, "medium", 30},
		{14*day + time.Minute, nil, "medium", 14},
		{14 * day, []int{14}, "medium", 14},
		{8 * day, []int{14}, "medium", 8},
		{7 * day, []int{14, 7}, "medium", 7},
		{2 * day, []int{14, 7}, "medium", 2},
		{day, []int{14, 7, 1}, "high", 1},
		{time.Hour, []int{14, 7, 1}, "high", 0},
	}
	for _, tt := range tests {
		exp := now.Add(tt.left)
		got := crossedThresholds(exp, now)
		if !slices.Equal(got, tt.crossed) {
			t.Errorf("%v left: crossed %v, want %v", tt.left, got, tt.crossed)
		}
		if s := Severity(exp, now); s != tt.severity {
			t.Errorf("%v left: severity %s, want %s", tt.left, s, tt.severity)
		}
		if d := DaysLeft(exp, now); d != tt.days {
			t.Errorf("%v left: %d days, want %d", tt.left, d, tt.days)
		}
	}
}

func TestAlertMakesPortalTextSafeAndFitsSNS(t *testing.T) {
	now := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	k := Key{ID: "k1", Name: "audit\x1b[31m key\u202e\u2028\u200b" + strings.Repeat("x", 200), Postfix: "ab12", ExpiresAt: now.Add(20 * time.Hour), IsActive: true}
	a := Alert("https://portal.example.com", k, now)
	for what, s := range map[string]string{"subject": a.Subject, "email": a.Email, "sms": a.SMS, "default": a.Default} {
		if strings.ContainsAny(s, "\x1b\u202e\u2028\u200b") { // issue #19 §2: U+2028 once passed
			t.Errorf("%s carries a control character: %q", what, s)
		}
	}
	if utf8.RuneCountInString(a.Subject) > snsmessage.MaxSubjectRunes || len(a.SMS) > snsmessage.MaxSMSBytes {
		t.Errorf("subject %d runes, SMS %d bytes", utf8.RuneCountInString(a.Subject), len(a.SMS))
	}
	if a.Severity != "high" || len(a.Kinds) != 1 || a.Kinds[0] != Kind {
		t.Errorf("message attributes severity %q, kinds %v", a.Severity, a.Kinds)
	}
	if !strings.Contains(a.Default, `"severity":"high"`) || !strings.Contains(a.Default, `"kind":"api_key_expiring"`) || !strings.HasPrefix(a.Subject, "[HIGH]") {
		t.Errorf("alert = %+v", a)
	}
}
