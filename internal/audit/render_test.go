package audit

import (
	"encoding/json"
	"ipguard/internal/ipguard"
	"ipguard/internal/snsalert/snsmessage"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestRenderSingleAlert(t *testing.T) {
	w := Window{From: time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC), To: time.Date(2026, 11, 25, 9, 15, 0, 0, time.UTC)}
	fs := []Finding{
		{EventID: 7, Kind: KindIPNotAllowed, Severity: SeverityHigh, Reason: "outside", UserID: "u1", Email: "jane@example.com", User: "Jäne Röe", IP: "198.51.100.7", Date: "2026-11-25T09:03:00Z", Action: "Login success via API", ActionID: 1010, Raw: json.RawMessage(`{"id":7}`)},
		{EventID: 8, Kind: KindIPNotAllowed, Severity: SeverityHigh, Reason: "outside", UserID: "u1", IP: "198.51.100.8", Date: "2026-11-25T09:04:00Z", ActionID: 1010, Raw: json.RawMessage(`{"id":8}`)},
	}
	bs, err := RenderAlerts(Meta{Portal: "https://portal.example.com", Window: w}, fs, MaxMessageBytes)
	if err != nil || len(bs) != 1 {
		t.Fatalf("batches %d, err %v", len(bs), err)
	}
	a := bs[0].Alert
	if a.Subject != "DocSpace: 2 logins from non-allowlisted IPs" {
		t.Errorf("subject %q", a.Subject)
	}
	var p struct {
		Portal, From, To string
		Events           []map[string]any
	}
	if err := json.Unmarshal([]byte(a.Default), &p); err != nil {
		t.Fatal(err)
	}
	if p.Portal != "https://portal.example.com" || p.From != "2026-11-25T09:00:00Z" || p.To != "2026-11-25T09:15:00Z" || len(p.Events) != 2 {
		t.Errorf("payload %+v", p)
	}
	for _, k := range []string{"eventId", "kind", "severity", "userId", "email", "user", "ip", "date", "action", "actionId", "raw"} {
		if _, ok := p.Events[0][k]; !ok {
			t.Errorf("event lacks %q: %v", k, p.Events[0])
		}
	}
	if !strings.Contains(a.Email, "198.51.100.7") || !strings.Contains(a.Email, "jane@example.com") || !strings.Contains(a.Email, "What to do") {
		t.Errorf("email text:\n%s", a.Email)
	}
	if len(a.SMS) > MaxSMSBytes || strings.ContainsAny(a.SMS, "\n") {
		t.Errorf("sms %q", a.SMS)
	}
	for _, r := range a.SMS {
		if r > 0x7e || r < 0x20 {
			t.Errorf("sms has non-ASCII %q", a.SMS)
		}
	}
	if len(bs[0].EventIDs()) != 2 {
		t.Errorf("event ids %v", bs[0].EventIDs())
	}
}

func TestRenderLimits(t *testing.T) {
	w := Window{From: time.Now().Add(-time.Hour), To: time.Now()}
	raw := json.RawMessage(`{"page":"` + strings.Repeat("x", 2000) + `"}`)
	var fs []Finding
	for i := 0; i < 400; i++ {
		fs = append(fs, Finding{EventID: int64(i + 1), Kind: []string{KindIPNotAllowed, KindUnknownUser}[i%2], Severity: SeverityHigh,
			User: strings.Repeat("ü", 60), IP: "203.0.113.1", Date: "2026-11-25T09:03:00Z", Raw: raw})
	}
	bs, err := RenderAlerts(Meta{Portal: "https://portal.example.com", Window: w}, fs, MaxMessageBytes)
	if err != nil {
		t.Fatal(err)
	}
	if len(bs) < 2 {
		t.Fatalf("800 KB of findings fit in %d message(s)", len(bs))
	}
	total := 0
	for _, b := range bs {
		if n := size(b.Alert); n > MaxMessageBytes {
			t.Errorf("message of %d bytes", n)
		}
		if n := utf8.RuneCountInString(b.Alert.Subject); n > MaxSubjectRunes {
			t.Errorf("subject of %d runes", n)
		}
		if len(b.Alert.SMS) > MaxSMSBytes {
			t.Errorf("sms of %d bytes", len(b.Alert.SMS))
		}
		if !strings.Contains(b.Alert.Email, "more (the full list is in the JSON alert)") {
			t.Errorf("long e-mail list is not cut")
		}
		total += len(b.EventIDs())
	}
	if total != 400 {
		t.Errorf("%d events across messages, want 400", total)
	}
}

// A forged login name with line breaks and bidi controls is shown on one
// line, escaped, in the e-mail, the SMS and the subject; the JSON keeps it.
func TestRenderEscapesUntrustedText(t *testing.T) {
	forged := "eve@example.com\n\n2. [HIGH] all clear\u202Emoc.elgoog"
	w := Window{From: time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC), To: time.Date(2026, 11, 25, 9, 15, 0, 0, time.UTC)}
	fs := []Finding{
		{Kind: KindFailedLoginBurst, Severity: SeverityMedium, Reason: "burst", IP: "198.18.0.1", Logins: []string{forged}, Count: 5, EventIDs: []int64{1, 2, 3, 4, 5},
			Country: "Ex\u200Bample", Date: "2026-11-25T09:03:00Z", span: &ipguard.TimeSpan{}},
		{EventID: 9, Kind: KindUnknownUser, Severity: SeverityMedium, Reason: "unknown", User: forged, Login: forged, IP: "198.51.100.7\r\nX", Date: "2026-11-25T09:04:00Z"},
	}
	bs, err := RenderAlerts(Meta{Portal: "https://p", Window: w}, fs, MaxMessageBytes)
	if err != nil || len(bs) != 1 {
		t.Fatal(err)
	}
	a := bs[0].Alert
	for _, bad := range []string{"\u202E", "\u200B", "\r", "\n\n2. [HIGH] all clear"} {
		if strings.Contains(a.Email, bad) || strings.Contains(a.Subject, bad) || strings.Contains(a.SMS, bad) {
			t.Errorf("untrusted %q reached the text:\n%s", bad, a.Email)
		}
	}
	if !strings.Contains(a.Email, `Tried: eve@example.com\u000A\u000A2. [HIGH] all clear\u202Emoc.elgoog`) {
		t.Errorf("forged login not shown escaped on one line:\n%s", a.Email)
	}
	if !strings.Contains(a.Default, `\u202e`) && !strings.Contains(a.Default, "\u202E") {
		t.Errorf("the JSON lost the raw value: %s", a.Default)
	}
}

// A login whose fields are absurdly long (a hostile or broken portal) still
// makes an alert that fits: its raw event goes first, then its fields are cut.
func TestRenderHugeFieldsFit(t *testing.T) {
	huge := strings.Repeat("A", 400_000)
	w := Window{From: time.Now().Add(-time.Hour), To: time.Now()}
	fs := []Finding{{EventID: 1, Kind: KindUnknownUser, Severity: SeverityMedium, Reason: "r", User: huge, Login: huge, Browser: huge,
		IP: "203.0.113.1", Date: "2026-11-25T09:03:00Z", Raw: json.RawMessage(`{"login":"` + huge + `"}`)}}
	bs, err := RenderAlerts(Meta{Portal: "https://p", Window: w}, fs, MaxMessageBytes)
	if err != nil || len(bs) != 1 {
		t.Fatalf("batches %d, err %v", len(bs), err)
	}
	if n := size(bs[0].Alert); n > MaxMessageBytes {
		t.Errorf("message of %d bytes", n)
	}
}

// SNS counts the message attributes (names, data types and values) toward
// its 256 KiB limit: a message rendered to exactly the limit without them is
// refused, and since the same findings render the same way on every run, the
// audit would fail on it forever.
func TestRenderCountsMessageAttributesTowardTheLimit(t *testing.T) {
	w := Window{From: time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC), To: time.Date(2026, 11, 25, 9, 15, 0, 0, time.UTC)}
	var fs []Finding
	for i := 0; i < 40; i++ {
		fs = append(fs, Finding{EventID: int64(i + 1), Kind: []string{KindUnknownUser, KindUnverifiableIP, KindFailedLoginBurst}[i%3], Severity: SeverityMedium,
			User: strings.Repeat("u", 200), IP: "203.0.113.1", Date: "2026-11-25T09:03:00Z"})
	}
	m := Meta{Portal: "https://portal.example.com", Window: w}
	// A limit the structured message (even with part numbers) just meets,
	// the attributes not.
	worst, err := render(m, fs, 999, 999)
	if err != nil {
		t.Fatal(err)
	}
	limit := len(snsmessage.Structured(worst))
	bs, err := RenderAlerts(m, fs, limit)
	if err != nil {
		t.Fatal(err)
	}
	for i, b := range bs {
		if n := snsmessage.Size(b.Alert); n > limit {
			t.Errorf("message %d: %d bytes with its attributes, limit %d", i+1, n, limit)
		}
	}
}

// An SMS carries no user- or portal-supplied text: a login name is what the
// attacker typed (a phishing line in a text message). Counts, kinds, the
// severity and an address that parses as one only.
func TestSMSCarriesNoUserText(t *testing.T) {
	w := Window{From: time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC), To: time.Date(2026, 11, 25, 9, 15, 0, 0, time.UTC)}
	phish := "Reset now at evil.example/x"
	tests := []struct {
		name    string
		f       Finding
		wantIP  string
		wantSev string
	}{
		{"a login name", Finding{EventID: 1, Kind: KindIPNotAllowed, Severity: SeverityHigh, Reason: "r", Email: phish, User: phish, Login: phish, IP: "203.0.113.7", Date: "2026-11-25T09:04:00Z"}, "203.0.113.7", "high"},
		{"a burst's tried logins", Finding{Kind: KindFailedLoginBurst, Severity: SeverityMedium, Reason: "burst", IP: "198.18.0.1", Logins: []string{phish}, Count: 5, EventIDs: []int64{1, 2, 3, 4, 5}, Date: "2026-11-25T09:03:00Z", span: &ipguard.TimeSpan{}}, "198.18.0.1", "medium"},
		{"an address that is text", Finding{EventID: 2, Kind: KindUnknownUser, Severity: SeverityMedium, Reason: "r", User: "u", IP: phish, Date: "2026-11-25T09:04:00Z"}, "unknown", "medium"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bs, err := RenderAlerts(Meta{Portal: "https://p", Window: w}, []Finding{tt.f}, MaxMessageBytes)
			if err != nil || len(bs) != 1 {
				t.Fatal(err)
			}
			sms := bs[0].Alert.SMS
			if strings.Contains(sms, "evil") || strings.Contains(sms, "Reset") {
				t.Errorf("SMS carries user text: %q", sms)
			}
			if !strings.Contains(sms, "First: "+tt.wantSev+" from "+tt.wantIP+".") {
				t.Errorf("SMS %q lacks the severity %s and address %s", sms, tt.wantSev, tt.wantIP)
			}
		})
	}
}

// A login's finding whose reason pairs it with an earlier login (a trip of
// one login, then the next login from elsewhere; impossible travel) shows
// both event ids, and is recorded as alerted by its own login only.
func TestRenderAFindingNamingTwoLogins(t *testing.T) {
	w := Window{From: time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC), To: time.Date(2026, 11, 25, 9, 15, 0, 0, time.UTC)}
	f := Finding{EventID: 42, Kind: KindNewCountry, Severity: SeverityHigh, Reason: "successful login unlike the user's normal: new_country",
		UserID: "u1", IP: "198.51.100.7", Date: "2026-11-25T09:03:00Z", Action: "Login success", ActionID: 1010,
		Reasons: []Reason{{Kind: KindNewCountry, Severity: SeverityHigh, Text: "Sat 2026-11-21 15:00 UTC from Lagos, Nigeria (a new country, one login), then Mon 2026-11-23 08:30 UTC from Berlin, Germany: a trip of one login, or not jane", EventID: 17}}}
	bs, err := RenderAlerts(Meta{Portal: "https://portal.example.com", Window: w}, []Finding{f}, MaxMessageBytes)
	if err != nil || len(bs) != 1 {
		t.Fatalf("batches %d, err %v", len(bs), err)
	}
	email := bs[0].Alert.Email
	for _, want := range []string{"Event: 42 (Login success)", "With:  event 17", "a trip of one login, or not jane"} {
		if !strings.Contains(email, want) {
			t.Errorf("email lacks %q:\n%s", want, email)
		}
	}
	if ids := bs[0].EventIDs(); len(ids) != 1 || ids[0] != 42 {
		t.Errorf("recorded as alerted: %v, want [42]", ids)
	}
}

// An IPv6 address may carry a zone after '%', and a zone is any text: the
// SMS showed "fe80::1%Call +1 555 0100 to unlock" whole, because the
// address parses. The SMS shows the address without its zone.
func TestSMSDropsTheZoneTextOfAnAddress(t *testing.T) {
	w := Window{From: time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC), To: time.Date(2026, 11, 25, 9, 15, 0, 0, time.UTC)}
	f := Finding{EventID: 3, Kind: KindIPNotAllowed, Severity: SeverityHigh, Reason: "r", User: "u",
		IP: "fe80::1%Call +1 555 0100 to unlock", Date: "2026-11-25T09:04:00Z"}
	bs, err := RenderAlerts(Meta{Portal: "https://p", Window: w}, []Finding{f}, MaxMessageBytes)
	if err != nil || len(bs) != 1 {
		t.Fatal(err)
	}
	if sms := bs[0].Alert.SMS; strings.Contains(sms, "555") || !strings.Contains(sms, " from fe80::1.") {
		t.Errorf("SMS = %q, want the address fe80::1 without its zone text", sms)
	}
}
