package keywatch

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"ipguard/internal/ipguard"
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

// memStore is a Store in memory: the last key saved, and when.
type memStore struct {
	key  Key
	seen time.Time
	ok   bool
}

func (s *memStore) KeyAlertSent(context.Context, Key, int) (bool, error) { return false, nil }
func (s *memStore) RecordKeyAlert(context.Context, Key, int, time.Time) error {
	return nil
}
func (s *memStore) SaveKey(_ context.Context, k Key, seen time.Time) error {
	s.key, s.seen, s.ok = k, seen, true
	return nil
}
func (s *memStore) LastKey(context.Context) (Key, time.Time, bool, error) {
	return s.key, s.seen, s.ok, nil
}

// errSource answers every CurrentKey with err.
type errSource struct{ err error }

func (s errSource) CurrentKey(context.Context) (Key, error) { return Key{}, s.err }

// A portal that does not answer keys/@self now (429, 5xx, no answer in time:
// EUnavailable after the client's retries) is a warning of the run while a
// check succeeded within StaleAfter (a day): the next run checks again, and nothing
// is undelivered. Only when no check has succeeded for longer (or none ever
// did) is it an error, which the audit counts in AlertsUndelivered. A
// refusal stays a ConfigurationError naming the key. (Before: every passing
// unavailability was an error, counted undelivered, and paged.)
func TestAPassingUnavailabilityIsAWarningUntilTheCheckIsStale(t *testing.T) {
	now := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	unavailable := &ipguard.Error{Code: ipguard.EUnavailable, Message: "portal: 503"}
	key := Key{ID: "k1", Name: "audit", Postfix: "ab12", ExpiresAt: now.Add(60 * 24 * time.Hour), IsActive: true}
	tests := []struct {
		name     string
		err      error
		seen     time.Duration // how long ago the last check succeeded; 0: never
		wantErr  ipguard.Code  // "": no error, a warning
		wantText string
	}{
		{"checked an hour ago", unavailable, time.Hour, "", "the next run checks again"},
		{"checked just within the bound", unavailable, 24 * time.Hour, "", "the next run checks again"},
		{"no answer in time", context.DeadlineExceeded, time.Hour, "", "the next run checks again"},
		{"not checked for longer than the bound", unavailable, 24*time.Hour + time.Minute, ipguard.EUnavailable, "not been checked since"},
		{"never checked", unavailable, 0, ipguard.EUnavailable, "never been checked"},
		{"refused", &ipguard.Error{Code: ipguard.EConfig, Err: ErrRefused, Message: "portal: 401"}, time.Hour, ipguard.EConfig, "was refused by the portal"},
	}
	for _, tt := range tests {
		st := &memStore{}
		if tt.seen > 0 {
			st.key, st.seen, st.ok = key, now.Add(-tt.seen), true
		}
		w := &Watch{Source: errSource{tt.err}, Store: st, Now: func() time.Time { return now }}
		rep, err := w.Check(context.Background())
		switch {
		case tt.wantErr == "" && (err != nil || !strings.Contains(rep.Warning, tt.wantText)):
			t.Errorf("%s: report %+v, error %v; want a warning saying %q and no error", tt.name, rep, err, tt.wantText)
		case tt.wantErr != "" && (ipguard.ErrorCode(err) != tt.wantErr || !strings.Contains(err.Error(), tt.wantText)):
			t.Errorf("%s: error %v (%s); want %s saying %q", tt.name, err, ipguard.ErrorCode(err), tt.wantErr, tt.wantText)
		}
	}
}

// keySource answers every CurrentKey with key and err (the key in use by
// its last characters, as the portal adapter tells it when the portal does
// not answer).
type keySource struct {
	key Key
	err error
}

func (s keySource) CurrentKey(context.Context) (Key, error) { return s.key, s.err }

// A key check that succeeded lately was of another key than the one in use
// (the key was rotated: the secret holds a new key, whose last characters
// differ): a portal that does not answer about the new key is an error, as
// for a key never checked, since nothing alerted of the new key's expiry
// (it may expire within a day). (Before: a warning "last checked at ...",
// the old key's check, for up to a day.)
func TestAPassingUnavailabilityOfARotatedKeyIsAnError(t *testing.T) {
	tests := []struct {
		name    string
		inUse   string // the postfix of the key in use; "": unknown
		wantErr bool
	}{
		{"the key checked an hour ago", "ab12", false},
		{"the key in use unknown", "", false},
		{"another key than the one checked", "cd34", true},
	}
	now := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	for _, tt := range tests {
		checked := Key{ID: "k1", Name: "audit", Postfix: "ab12", ExpiresAt: now.AddDate(0, 2, 0), IsActive: true}
		st := &memStore{key: checked, seen: now.Add(-time.Hour), ok: true}
		w := &Watch{Source: keySource{Key{Postfix: tt.inUse}, &ipguard.Error{Code: ipguard.EUnavailable, Message: "portal: 429"}}, Store: st, Now: func() time.Time { return now }}
		rep, err := w.Check(context.Background())
		switch {
		case tt.wantErr && (ipguard.ErrorCode(err) != ipguard.EUnavailable || !strings.Contains(err.Error(), "never been checked") || !strings.Contains(err.Error(), "cd34")):
			t.Errorf("%s: report %+v, error %v; want EUnavailable saying the key ending in cd34 was never checked", tt.name, rep, err)
		case !tt.wantErr && (err != nil || rep.Warning == ""):
			t.Errorf("%s: report %+v, error %v; want a warning and no error", tt.name, rep, err)
		}
	}
}

// sentStore is a memStore whose KeyAlertSent answers sent (or err).
type sentStore struct {
	memStore
	sent bool
	err  error
}

func (s *sentStore) KeyAlertSent(context.Context, Key, int) (bool, error) { return s.sent, s.err }

// The last check that succeeded was lately, but the expiry alert it (or the
// time since) made due is not recorded as sent: that check's publish failed
// (SaveKey came before it), or a threshold came since. A portal that does
// not answer now is then an error (AlertsUndelivered), not a warning: the
// alert is due and cannot be sent. (Before: a warning for up to a day, and
// the one run that counted the failed publish could not fire the alarm of
// two periods in a row.)
func TestAPassingUnavailabilityWithAnExpiryAlertDueIsAnError(t *testing.T) {
	now := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	unavailable := &ipguard.Error{Code: ipguard.EUnavailable, Message: "portal: 503"}
	tests := []struct {
		name    string
		expires time.Duration // from now; 0: never
		sent    bool
		readErr error
		wantErr bool
	}{
		{"no threshold crossed", 20 * 24 * time.Hour, false, nil, false},
		{"never expires", 0, false, nil, false},
		{"alert sent", 10 * 24 * time.Hour, true, nil, false},
		{"alert not sent", 10 * 24 * time.Hour, false, nil, true},
		{"whether sent unreadable", 10 * 24 * time.Hour, false, &ipguard.Error{Code: ipguard.EUnavailable, Message: "dynamodb: table down"}, true},
	}
	for _, tt := range tests {
		k := Key{ID: "k1", Name: "audit", Postfix: "ab12", IsActive: true}
		if tt.expires > 0 {
			k.ExpiresAt = now.Add(tt.expires)
		}
		st := &sentStore{memStore: memStore{key: k, seen: now.Add(-time.Hour), ok: true}, sent: tt.sent, err: tt.readErr}
		w := &Watch{Source: errSource{unavailable}, Store: st, Now: func() time.Time { return now }}
		rep, err := w.Check(context.Background())
		switch {
		case tt.wantErr && (ipguard.ErrorCode(err) != ipguard.EUnavailable || !strings.Contains(err.Error(), "expiry alert")):
			t.Errorf("%s: report %+v, error %v; want EUnavailable saying the expiry alert is not sent", tt.name, rep, err)
		case !tt.wantErr && (err != nil || rep.Warning == ""):
			t.Errorf("%s: report %+v, error %v; want a warning and no error", tt.name, rep, err)
		}
	}
}
