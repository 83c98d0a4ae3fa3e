package digest_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"ipguard/internal/audit"
	"ipguard/internal/ipguard"
)

// A batch marked Digest goes to the digest whatever its severity (an
// episode's repeat is high); the digest counts the episode's misses, lists
// the familiar ones, and suggests one event per user over the last 7 days'
// familiar networks, adjacent ones merged; user text is cleaned.
func TestDigestCountsEpisodesAndSuggestsTheWeeksNetworks(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	p, _, out := newDigest(&now)
	familiar := func(id int64, ip, network string) audit.Finding {
		return audit.Finding{EventID: id, Kind: audit.KindIPNotAllowed, Severity: "low", UserID: "u-ann", Email: "ann\u202e@example.com", IP: ip, Digest: true,
			Familiar: &audit.Familiar{Network: network, Place: "Berlin, Germany", Device: "Chrome on Android", Logins: 43}}
	}
	publish := func(sev string, fs ...audit.Finding) {
		t.Helper()
		a := ipguard.Alert{Severity: sev, Digest: true}
		a.Default, _ = jsonPayload(fs)
		if id, err := p.Publish(ctx, a); err != nil || !strings.HasPrefix(id, "digest:") {
			t.Fatalf("Publish = %q, %v", id, err)
		}
	}
	publish("low", familiar(1, "80.187.12.9", "80.187.12.0/24")) // digest day 2026-12-02
	now = now.Add(3 * 24 * time.Hour)                            // 2026-12-04 09:00, digest day 2026-12-05
	publish("low", familiar(2, "80.187.13.9", "80.187.13.0/24"))
	for n := 2; n <= 5; n++ {
		publish("high", audit.Finding{EventID: int64(10 + n), Kind: audit.KindIPNotAllowed, Severity: "high", UserID: "u-bob", Email: "bob@example.com",
			IP: "198.51.100.7", Digest: true, Episode: &audit.Episode{Key: "u-bob|198.51.100.0/24", Network: "198.51.100.0/24", Country: "Spain",
				First: "2026-12-04T06:00:00Z", Count: n, Repeat: true, Hours: 24}})
	}
	if len(out.Sent) != 0 {
		t.Fatalf("%d messages went past the digest", len(out.Sent))
	}
	now = time.Date(2026, 12, 5, 8, 5, 0, 0, time.UTC)
	sent, err := p.SendDue(ctx)
	if err != nil || len(sent) != 2 || len(out.Sent) != 2 {
		t.Fatalf("sent %v, %v; %d messages", sent, err, len(out.Sent))
	}
	mail := out.Sent[1].Email // 2026-12-05's
	for _, want := range []string{
		"80.187.13.9, Berlin, Germany, Chrome on Android, like 43 login(s) before",
		"bob@example.com: 5 login(s) from 198.51.100.0/24, Spain since 2026-12-04T06:00:00Z (4 held back into this digest)",
		`{"action":"add","id":"u-ann","allowedIps":["80.187.12.0/23"]}`, // this day's network and 2026-12-02's, merged
	} {
		if !strings.Contains(mail, want) {
			t.Errorf("digest lacks %q:\n%s", want, mail)
		}
	}
	if strings.ContainsRune(mail, '\u202e') {
		t.Errorf("a bidi control reached the digest")
	}
}

// An episode opened by a familiar miss was never sent as an alert: the
// digest must not tell the operator that its first login was (they would
// look for a message that does not exist).
func TestDigestDoesNotClaimAFamiliarEpisodeWasAlerted(t *testing.T) {
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	p, _, out := newDigest(&now)
	f := audit.Finding{EventID: 1, Kind: audit.KindIPNotAllowed, Severity: "low", UserID: "u-ann", Email: "ann@example.com", IP: "80.187.12.9", Digest: true,
		Familiar: &audit.Familiar{Network: "80.187.12.0/24", Place: "Berlin, Germany", Device: "Chrome on Android", Logins: 43},
		Episode:  &audit.Episode{Key: "u-ann|80.187.12.0/24", Network: "80.187.12.0/24", Country: "Germany", First: "2026-12-01T08:00:00Z", Count: 1, Hours: 24}}
	mail := digestMail(t, p, out, &now, time.Date(2026, 12, 2, 8, 5, 0, 0, time.UTC), []audit.Finding{f})
	if strings.Contains(mail, "first login was sent as an alert") {
		t.Errorf("the digest claims an alert that was never sent:\n%s", mail)
	}
	if !strings.Contains(mail, "ann@example.com: 1 login(s) from 80.187.12.0/24, Germany") {
		t.Errorf("episode line missing:\n%s", mail)
	}
}

// A familiar miss whose network is new to the user or was told as an
// alert (Familiar.NoSuggestion) is listed, but never offered as a ready
// onboarding event: an attacker's network is not suggested as the user's own.
func TestDigestDoesNotSuggestToldOrNewNetworks(t *testing.T) {
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	p, _, out := newDigest(&now)
	fs := []audit.Finding{
		{EventID: 1, Kind: audit.KindIPNotAllowed, Severity: "low", UserID: "u-ann", Email: "ann@example.com", IP: "203.0.113.7", Digest: true,
			Familiar: &audit.Familiar{Network: "203.0.113.0/24", Place: "Paris, France", Device: "Firefox on Windows", Logins: 1, NoSuggestion: true}},
		{EventID: 2, Kind: audit.KindIPNotAllowed, Severity: "low", UserID: "u-ann", Email: "ann@example.com", IP: "80.187.12.9", Digest: true,
			Familiar: &audit.Familiar{Network: "80.187.12.0/24", Place: "Berlin, Germany", Device: "Chrome on Android", Logins: 43}},
	}
	mail := digestMail(t, p, out, &now, time.Date(2026, 12, 2, 8, 5, 0, 0, time.UTC), fs)
	if !strings.Contains(mail, "203.0.113.7, Paris, France") || !strings.Contains(mail, `{"action":"add","id":"u-ann","allowedIps":["80.187.12.0/24"]}`) {
		t.Errorf("digest lacks the familiar line or the good suggestion:\n%s", mail)
	}
	if strings.Contains(mail, "203.0.113.0/24") {
		t.Errorf("the digest suggests a told network:\n%s", mail)
	}
}

// A probable trip (a login from a new country told low until the user's
// next login decides) is listed in the digest as such, and its episode is
// not claimed to have been sent as an alert.
func TestDigestListsProbableTrips(t *testing.T) {
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	p, _, out := newDigest(&now)
	f := audit.Finding{EventID: 1, Kind: audit.KindIPNotAllowed, Severity: "low", UserID: "u-ann", Email: "ann@example.com", IP: "198.18.7.9", Digest: true,
		Trip:    &audit.ProbableTrip{Place: "Paris, France", Device: "Chrome on Android", Since: "from Berlin, Germany at 2026-11-30 19:00 UTC"},
		Episode: &audit.Episode{Key: "u-ann|198.18.7.0/24", Network: "198.18.7.0/24", Country: "France", First: "2026-12-01T08:00:00Z", Count: 1, Hours: 24}}
	mail := digestMail(t, p, out, &now, time.Date(2026, 12, 2, 8, 5, 0, 0, time.UTC), []audit.Finding{f})
	for _, want := range []string{"Probably trips", "ann@example.com: 198.18.7.9, Paris, France, Chrome on Android; last login from Berlin, Germany at 2026-11-30 19:00 UTC",
		"one from a familiar place or a probable trip was not"} {
		if !strings.Contains(mail, want) {
			t.Errorf("digest lacks %q:\n%s", want, mail)
		}
	}
}
