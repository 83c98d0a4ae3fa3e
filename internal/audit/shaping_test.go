package audit_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"ipguard/internal/allowlist"
	"ipguard/internal/audit"
	"ipguard/internal/audit/audittest"
	"ipguard/internal/behaviour"
	"ipguard/internal/behaviour/behaviourtest"
	"ipguard/internal/digest"
	"ipguard/internal/ipguard"
	"ipguard/internal/onboard"
)

// Issue #21 §2 end to end: the audit with the behaviour detector, the
// digest step and a counting alert topic.

var s0 = time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)

type shapingRig struct {
	src    *audittest.Source
	st     *audittest.Store
	topic  *audittest.Topic
	dstore *audittest.Revised
	dig    *digest.Publisher
	svc    *audit.Service
	now    time.Time
	res    audit.Result // sums of the runs
}

func newShapingRig(t *testing.T, grouped bool, baselines map[string]behaviour.Baseline) *shapingRig {
	t.Helper()
	r := &shapingRig{src: audittest.NewSource(), topic: &audittest.Topic{}, dstore: &audittest.Revised{}}
	r.st = audittest.NewStore(
		ipguard.User{ID: "alice", Email: "alice@example.com", Entries: []string{"203.0.113.10"}},
		ipguard.User{ID: "bob", Email: "bob@example.com", Entries: []string{"203.0.113.20"}})
	clock := func() time.Time { return r.now }
	r.dig = &digest.Publisher{Next: r.topic, Store: r.dstore, Severities: map[string]bool{audit.SeverityLow: true}, Hour: 8, Portal: "p.example.com", Now: clock}
	bs := behaviourtest.NewBaselines()
	for id, b := range baselines {
		bs.Items[id] = b
	}
	det := &behaviour.Detector{Store: bs, EpisodeStore: behaviourtest.NewEpisodes(),
		Settings: behaviour.Settings{Digest: []string{audit.SeverityLow}, Grouped: grouped, EpisodeHours: 24}}
	r.svc = &audit.Service{Source: r.src, Store: r.st, Publisher: r.dig, Leases: r.st, Behaviour: det, Now: clock,
		Settings: audit.Settings{Portal: "https://p.example.com", Overlap: 5 * time.Minute, Lookback: 15 * time.Minute, AlertRetention: 72 * time.Hour,
			Policy: audit.Policy{UnknownUsers: audit.UnknownAlert, FailedLoginThreshold: 5}}}
	return r
}

// login adds a successful login and runs the audit a minute after it.
func (r *shapingRig) login(t *testing.T, id int64, user string, at time.Duration, ip, country, city, browser, platform string) {
	t.Helper()
	ev := ipguard.LoginEvent{ID: id, UserID: user, User: user, Login: user + "@example.com", ActionID: 1010, Action: "Login Success",
		Date: s0.Add(at), IP: ip, Country: country, City: city, Browser: browser, Platform: platform}
	r.src.Add(ev)
	r.now = s0.Add(at + 2*time.Minute)
	res, err := r.svc.Run(context.Background(), audit.Trigger{To: s0.Add(at + time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	if r.res.Counts == nil {
		r.res.Counts, r.res.Severities = map[string]int{}, map[string]int{}
	}
	for k, v := range res.Counts {
		r.res.Counts[k] += v
	}
	for k, v := range res.Severities {
		r.res.Severities[k] += v
	}
	r.res.NotMessaged += res.NotMessaged
}

// digestOf returns the digest item of the day that gathers findings of now.
func (r *shapingRig) digestOf(t *testing.T) digest.Digest {
	t.Helper()
	var d digest.Digest
	if _, _, err := r.dstore.LoadRevised(context.Background(), digest.Prefix+digest.Day(r.now, 8), &d); err != nil {
		t.Fatal(err)
	}
	return d
}

// aliceBaseline: 43 logins from 80.187.12.0/24 in Berlin with Chrome on
// Android over 30 days.
func aliceBaseline() behaviour.Baseline {
	b := behaviour.Baseline{UserID: "alice"}
	for i := 0; i < 43; i++ {
		b.Learn(behaviour.Login{EventID: int64(1000 + i), UserID: "alice", At: s0.Add(-30*24*time.Hour + time.Duration(i)*16*time.Hour),
			IP: fmt.Sprintf("80.187.12.%d", 1+i%5), Whole: true, Country: "Germany", City: "Berlin", Browser: "Chrome 120.0", Platform: "Android 14"})
	}
	return b
}

// From a familiar place: one low finding, counted and recorded, in the
// digest with its line and a valid suggested onboarding event; no message.
// The same login with ALERT_MODE=every is today's high alert.
func TestFamiliarMissIsLowInTheDigestAndSendsNoMessage(t *testing.T) {
	for _, grouped := range []bool{true, false} {
		t.Run(fmt.Sprint("grouped=", grouped), func(t *testing.T) {
			r := newShapingRig(t, grouped, map[string]behaviour.Baseline{"alice": aliceBaseline()})
			r.login(t, 1, "alice", 0, "80.187.12.9", "Germany", "Berlin", "Chrome 121.0", "Android 14")
			if r.res.Counts[audit.KindIPNotAllowed] != 1 {
				t.Fatalf("findings %+v", r.res.Counts)
			}
			if ok, _ := r.st.Alerted(context.Background(), []int64{1}, r.now); !ok[1] {
				t.Errorf("the finding was not recorded as alerted")
			}
			if !grouped {
				if len(r.topic.Sent) != 1 || r.topic.Sent[0].Severity != audit.SeverityHigh || r.res.Severities[audit.SeverityHigh] != 1 {
					t.Fatalf("every: %d messages, severities %v", len(r.topic.Sent), r.res.Severities)
				}
				return
			}
			if len(r.topic.Sent) != 0 || r.res.Severities[audit.SeverityLow] != 1 {
				t.Fatalf("grouped: %d messages, severities %v", len(r.topic.Sent), r.res.Severities)
			}
			d := r.digestOf(t)
			if d.Total != 1 || len(d.Familiar) != 1 || !strings.Contains(d.Familiar[0], "80.187.12.9, Berlin, Germany, Chrome on Android, like 43 login(s) before") {
				t.Fatalf("digest %+v", d)
			}
			// The digest is sent at its hour with the suggestion.
			r.now = s0.Add(24 * time.Hour)
			if _, err := r.dig.SendDue(context.Background()); err != nil {
				t.Fatal(err)
			}
			if len(r.topic.Sent) != 1 {
				t.Fatalf("digest messages %d", len(r.topic.Sent))
			}
			mail := r.topic.Sent[0].Email
			if !strings.Contains(mail, "like 43 login(s) before") || !strings.Contains(mail, `{"action":"add","id":"alice","allowedIps":["80.187.12.0/24"]}`) {
				t.Errorf("digest mail:\n%s", mail)
			}
		})
	}
}

// A login outside the allowlist from a known place with a new device is one
// message with both reasons, at the highest severity; a learning user's
// miss is told at today's severity (high).
func TestMissWithNewEvidenceOrLearningUserIsToldAtOnce(t *testing.T) {
	r := newShapingRig(t, true, map[string]behaviour.Baseline{"alice": aliceBaseline()})
	r.login(t, 1, "alice", 0, "80.187.12.9", "Germany", "Berlin", "Firefox 126.0", "Windows 10")
	r.login(t, 2, "bob", time.Hour, "198.51.100.7", "Spain", "Madrid", "Firefox 126.0", "Windows 10")
	if len(r.topic.Sent) != 2 {
		t.Fatalf("messages %d, want 2", len(r.topic.Sent))
	}
	var p audit.Payload
	if err := json.Unmarshal([]byte(r.topic.Sent[0].Default), &p); err != nil {
		t.Fatal(err)
	}
	if len(p.Events) != 1 || p.Events[0].Kind != audit.KindIPNotAllowed || p.Events[0].Severity != audit.SeverityHigh || len(p.Events[0].Reasons) != 2 ||
		p.Events[0].Reasons[1].Kind != audit.KindNewDevice || p.Events[0].Familiar != nil {
		t.Errorf("alice's new device: %+v", p.Events)
	}
	if err := json.Unmarshal([]byte(r.topic.Sent[1].Default), &p); err != nil {
		t.Fatal(err)
	}
	if len(p.Events) != 1 || p.Events[0].UserID != "bob" || p.Events[0].Severity != audit.SeverityHigh || p.Events[0].Familiar != nil {
		t.Errorf("bob (learning): %+v", p.Events)
	}
}

// Four misses of a learning user (fewer than BASELINE_MIN_LOGINS, 5) from
// one network within EPISODE_HOURS: one message, every finding counted, the
// digest counts the episode's 4; a miss after EPISODE_HOURS without any is
// a new message (bob is still learning: his fifth login). With
// ALERT_MODE=every each miss is a message.
func TestEpisodeIsToldOnceAndCountedInTheDigest(t *testing.T) {
	for _, grouped := range []bool{true, false} {
		t.Run(fmt.Sprint("grouped=", grouped), func(t *testing.T) {
			r := newShapingRig(t, grouped, nil)
			for i := 0; i < 4; i++ {
				r.login(t, int64(10+i), "bob", time.Duration(i)*time.Hour, fmt.Sprintf("198.51.100.%d", 7+i), "Spain", "Madrid", "Firefox 126.0", "Windows 10")
			}
			if r.res.Counts[audit.KindIPNotAllowed] != 4 {
				t.Fatalf("findings %v, want 4 ip_not_allowed", r.res.Counts)
			}
			if !grouped {
				if len(r.topic.Sent) != 4 {
					t.Fatalf("every: %d messages, want 4", len(r.topic.Sent))
				}
				return
			}
			if len(r.topic.Sent) != 1 {
				t.Fatalf("grouped: %d messages, want 1", len(r.topic.Sent))
			}
			if !strings.Contains(r.topic.Sent[0].Email, "Episode: further logins of this user from 198.51.100.0/24 or Spain") {
				t.Errorf("the first message does not say the episode:\n%s", r.topic.Sent[0].Email)
			}
			ids := []int64{10, 11, 12, 13}
			if got, _ := r.st.Alerted(context.Background(), ids, r.now); len(got) != 4 {
				t.Errorf("recorded %v, want all 4", got)
			}
			d := r.digestOf(t)
			if d.Total != 3 || len(d.Episodes) != 1 {
				t.Fatalf("digest %+v", d)
			}
			for _, e := range d.Episodes {
				if e.Count != 4 || e.Repeats != 3 {
					t.Errorf("episode %+v, want 4 misses, 3 held back", e)
				}
			}
			// 25 hours after the last one: a new episode, a new message.
			r.login(t, 20, "bob", 3*time.Hour+25*time.Hour, "198.51.100.30", "Spain", "Madrid", "Firefox 126.0", "Windows 10")
			if len(r.topic.Sent) != 2 {
				t.Fatalf("after EPISODE_HOURS: %d messages, want 2", len(r.topic.Sent))
			}
		})
	}
}

// The suggested event merges adjacent networks and passes the onboarding
// validator (the request decoder, then the entries' parser).
func TestSuggestedEventIsAValidOnboardingPayload(t *testing.T) {
	tests := []struct {
		nets []string
		want []string
	}{
		{[]string{"80.187.12.0/24", "80.187.13.0/24"}, []string{"80.187.12.0/23"}},
		{[]string{"80.187.13.0/24", "80.187.14.0/24"}, []string{"80.187.13.0-80.187.14.255"}},
		{[]string{"80.187.12.0/24", "10.1.0.0/24", "2001:db8:1::/48", "2001:db8::/48"}, []string{"10.1.0.0/24", "80.187.12.0/24", "2001:db8::/47"}},
		{[]string{"80.187.12.0/24", "80.187.12.0/24"}, []string{"80.187.12.0/24"}},
	}
	for _, tt := range tests {
		ev, ok := digest.SuggestedEvent("3f2c9a1e-aaaa-bbbb-cccc-0123456789ab", tt.nets)
		if !ok {
			t.Fatalf("%v: no event", tt.nets)
		}
		req, err := onboard.DecodeRequest(ev)
		if err != nil {
			t.Fatalf("%s: %v", ev, err)
		}
		var got []string
		for _, e := range req.AllowedIPs {
			got = append(got, e.IP)
		}
		if req.Action != onboard.ActionAdd || req.ID != "3f2c9a1e-aaaa-bbbb-cccc-0123456789ab" || strings.Join(got, ",") != strings.Join(tt.want, ",") {
			t.Errorf("%v: %+v, want %v", tt.nets, req, tt.want)
		}
		if _, err := allowlist.ParseList("allowedIps", got, allowlist.Limits{}); err != nil {
			t.Errorf("%v: entries rejected: %v", got, err)
		}
	}
	if _, ok := digest.SuggestedEvent("u", nil); ok {
		t.Errorf("an event with nothing to add")
	}
}

// A run of the audit hands the behaviour hook each declared login's entry
// with its stored place (#21 §4): alice logs in from New York, and 45
// minutes later her credentials are used through the shared Berlin office
// address (GeoIP wrongly says New York for it): one impossible_travel
// message naming both logins and the Berlin office entry.
func TestAuditRunJudgesTravelThroughTheEntrysDeclaredPlace(t *testing.T) {
	end := time.Date(2026, 11, 2, 12, 0, 0, 0, time.UTC)
	ev := func(id int64, at time.Time, ip string) ipguard.LoginEvent {
		return ipguard.LoginEvent{ID: id, Date: at, UserID: "alice", User: "alice", Login: "alice@example.com", ActionID: 1010,
			Action: "Login Success", IP: ip, Country: "United States", City: "New York", Browser: "Firefox 126.0", Platform: "Windows 10"}
	}
	src := audittest.NewSource(ev(2, end.Add(-10*time.Minute), "203.0.113.40"), ev(1, end.Add(-55*time.Minute), "198.18.0.9"))
	st := audittest.NewStore(ipguard.User{ID: "alice", Email: "alice@example.com", Entries: []string{"203.0.113.0/24", "198.18.0.9"},
		Details: map[string]ipguard.EntryDetail{"203.0.113.0/24": {Note: "office", Place: "Berlin, DE"}}})
	pub := &audittest.Topic{}
	s := &audit.Service{Source: src, Store: st, Publisher: pub, Leases: st,
		Behaviour: &behaviour.Detector{Store: behaviourtest.NewBaselines()},
		Settings: audit.Settings{Portal: "https://portal.example.com", Overlap: 5 * time.Minute, Lookback: 2 * time.Hour,
			AlertRetention: 24 * time.Hour, Policy: audit.Policy{FailedLoginThreshold: 5}}}
	res, err := s.Run(context.Background(), audit.Trigger{To: end})
	if err != nil {
		t.Fatal(err)
	}
	if res.Counts[audit.KindImpossibleTravel] != 1 || len(pub.Sent) != 1 {
		t.Fatalf("result %+v, %d messages; want one impossible_travel", res.Counts, len(pub.Sent))
	}
	for _, want := range []string{"11:05 UTC from New York, United States (through the user's own entry 198.18.0.9), 11:50 UTC through the Berlin office entry 203.0.113.0/24",
		"one of the two is not alice"} {
		if !strings.Contains(pub.Sent[0].Email, want) {
			t.Errorf("message lacks %q:\n%s", want, pub.Sent[0].Email)
		}
	}
}
