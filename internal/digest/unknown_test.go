package digest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"ipguard/internal/audit"
	"ipguard/internal/audit/audittest"
	"ipguard/internal/behaviour"
	"ipguard/internal/behaviour/behaviourtest"
	"ipguard/internal/digest"
	"ipguard/internal/ipguard"
)

// People without an allowlist (#21 §1): the audit's policy and the digest
// step of the publisher chain together, as the audit function wires them
// (findings bus ─► digest ─► alert topic; the sink here is the topic).

var u0 = time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)

const (
	carolID = "11111111-2222-4333-8444-555555555555" // a guest, never onboarded
	daveID  = "22222222-3333-4444-8555-666666666666" // a regular user, never onboarded
)

func success(id int64, user, email, ip, country, city string, d time.Duration) ipguard.LoginEvent {
	return ipguard.LoginEvent{ID: id, Date: u0.Add(d), UserID: user, User: email, Login: email, ActionID: 1010, IP: ip,
		Country: country, City: city, Browser: "Firefox 126.0", Platform: "Linux"}
}

func failedLogin(id int64, login, ip string, d time.Duration) ipguard.LoginEvent {
	return ipguard.LoginEvent{ID: id, Date: u0.Add(d), Login: login, ActionID: 1013, IP: ip}
}

// chain is one audit run's world: the audit with the given policy, the
// digest in front of the topic (sink), the guest lookup, and, when
// learned is set, behaviour rules with those baselines.
type chain struct {
	svc    *audit.Service
	store  *audittest.Store
	digest *digest.Publisher
	topic  *audittest.Topic
	people *audittest.People
}

func newChain(policy string, learned map[string]behaviour.Baseline, evs ...ipguard.LoginEvent) *chain {
	now := func() time.Time { return u0.Add(16 * time.Minute) }
	st := audittest.NewStore(ipguard.User{ID: "alice", Email: "alice@example.com", Entries: []string{"203.0.113.10"}})
	c := &chain{store: st, topic: &audittest.Topic{}, people: &audittest.People{Types: map[string]string{carolID: audit.UserGuest, daveID: audit.UserRegular}}}
	c.digest = &digest.Publisher{Next: c.topic, Store: &audittest.Revised{}, Severities: map[string]bool{"low": true}, Hour: 8, Portal: "portal.example.com", Now: now}
	c.svc = &audit.Service{Source: audittest.NewSource(evs...), Store: st, Publisher: c.digest, Leases: st, People: c.people, Now: now,
		Settings: audit.Settings{Portal: "portal.example.com", Overlap: 5 * time.Minute, Lookback: 15 * time.Minute, AlertRetention: 24 * time.Hour,
			Policy: audit.Policy{UnknownUsers: policy, FailedLoginThreshold: 5}}}
	if learned != nil {
		c.svc.Behaviour = &behaviour.Detector{Store: &behaviourtest.BaselineStore{Items: learned}, Settings: behaviour.Settings{MinSeverity: audit.SeverityMedium}}
	}
	return c
}

func (c *chain) run(t *testing.T) audit.Result {
	t.Helper()
	res, err := c.svc.Run(context.Background(), audit.Trigger{To: u0.Add(15 * time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// messaged lists "kind:eventId" of every finding the topic received.
func (c *chain) messaged(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, a := range c.topic.Sent {
		var p audit.Payload
		if err := json.Unmarshal([]byte(a.Default), &p); err != nil {
			t.Fatal(err)
		}
		for _, f := range p.Events {
			out = append(out, f.Kind+":"+itoa(f.EventID))
		}
	}
	sort.Strings(out)
	return out
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

// day is the digest that gathers this run's DigestOnly findings.
func (c *chain) day(t *testing.T) digest.Digest {
	t.Helper()
	var d digest.Digest
	if _, _, err := c.digest.Store.LoadRevised(context.Background(), digest.Prefix+"2026-12-04", &d); err != nil {
		t.Fatal(err)
	}
	return d
}

// The three policies on the same logins: two guest logins and one of a
// regular user, none onboarded, and alice outside her allowlist. With
// digest (the default) nobody is messaged per login, yet every finding is
// counted and recorded; alert messages each login; ignore finds nothing.
func TestUnknownUserPolicies(t *testing.T) {
	evs := []ipguard.LoginEvent{
		success(1, carolID, "carol@partner.example", "198.51.100.7", "", "", 1*time.Minute),
		success(2, carolID, "carol@partner.example", "198.51.100.7", "", "", 5*time.Minute),
		success(3, daveID, "dave@example.com", "192.0.2.44", "", "", 3*time.Minute),
		success(4, "alice", "alice@example.com", "192.0.2.99", "", "", 4*time.Minute), // outside her allowlist
	}
	tests := []struct {
		policy      string
		messaged    []string
		counted     int // unknown_user findings in the result
		people      int // people the digest lists
		lookups     int
		alertedIDs  []int64
		notAlerted  []int64
		wantInEmail []string
	}{
		{policy: audit.UnknownDigest, messaged: []string{"ip_not_allowed:4"}, counted: 3, people: 2, lookups: 2,
			alertedIDs: []int64{1, 2, 3, 4},
			wantInEmail: []string{"2 people logged in who have no allowlist: carol@partner.example, dave@example.com, first seen 2026-12-03T09:01:00Z, guests: carol@partner.example.",
				"  - carol@partner.example (guest): 2 logins, first seen 2026-12-03T09:01:00Z",
				"  - dave@example.com (user): 1 login, first seen 2026-12-03T09:03:00Z"}},
		{policy: audit.UnknownAlert, messaged: []string{"ip_not_allowed:4", "unknown_user:1", "unknown_user:2", "unknown_user:3"}, counted: 3,
			alertedIDs: []int64{1, 2, 3, 4}},
		{policy: audit.UnknownIgnore, messaged: []string{"ip_not_allowed:4"}, alertedIDs: []int64{4}, notAlerted: []int64{1, 2, 3}},
	}
	for _, tt := range tests {
		t.Run(tt.policy, func(t *testing.T) {
			c := newChain(tt.policy, nil, evs...)
			res := c.run(t)
			if got := c.messaged(t); strings.Join(got, " ") != strings.Join(tt.messaged, " ") {
				t.Errorf("messaged %v, want %v", got, tt.messaged)
			}
			if res.Counts[audit.KindUnknownUser] != tt.counted {
				t.Errorf("counted %d unknown_user findings, want %d (result %+v)", res.Counts[audit.KindUnknownUser], tt.counted, res)
			}
			for _, id := range tt.alertedIDs {
				if _, ok := c.store.AlertedUntil[id]; !ok {
					t.Errorf("event %d not recorded as alerted (a later run would find it again)", id)
				}
			}
			for _, id := range tt.notAlerted {
				if _, ok := c.store.AlertedUntil[id]; ok {
					t.Errorf("event %d recorded under policy %s", id, tt.policy)
				}
			}
			if n := c.people.Lookups(); n != tt.lookups {
				t.Errorf("%d user type lookups, want %d (one per person, only for the digest): %v", n, tt.lookups, c.people.Calls())
			}
			d := c.day(t)
			if len(d.People) != tt.people {
				t.Fatalf("digest lists %d people, want %d: %+v", len(d.People), tt.people, d.People)
			}
			if tt.people == 0 {
				return
			}
			if _, err := c.digest.SendDue(context.Background()); err != nil {
				t.Fatal(err)
			}
			// The digest is sent by the first run after 08:00 UTC.
			c.digest.Now = func() time.Time { return time.Date(2026, 12, 4, 8, 5, 0, 0, time.UTC) }
			c.topic.Sent = nil
			if days, err := c.digest.SendDue(context.Background()); err != nil || len(days) != 1 || len(c.topic.Sent) != 1 {
				t.Fatalf("SendDue = %v, %v; %d sent", days, err, len(c.topic.Sent))
			}
			a := c.topic.Sent[0]
			for _, w := range tt.wantInEmail {
				if !strings.Contains(a.Email, w) {
					t.Errorf("digest e-mail lacks %q:\n%s", w, a.Email)
				}
			}
			var body struct {
				People []digest.Person `json:"people"`
				Count  int             `json:"peopleWithoutAllowlist"`
			}
			if err := json.Unmarshal([]byte(a.Default), &body); err != nil || body.Count != 2 || len(body.People) != 2 || body.People[0].Type != audit.UserGuest {
				t.Errorf("digest JSON people %+v (%v)", body, err)
			}
			if !strings.Contains(a.SMS, "2 people without allowlist") {
				t.Errorf("SMS %q", a.SMS)
			}
		})
	}
}

// A person without an allowlist is judged by behaviour like everyone
// (#21 §1): under the digest policy, a login that breaks new_country or
// impossible_travel is a message; one that breaks nothing stays in the
// digest. Failed attempts before the login make it password_guess_succeeded
// under every policy, ignore included.
func TestUnknownUsersAreJudgedByBehaviourAndGuessing(t *testing.T) {
	berlin := func() behaviour.Baseline {
		b := behaviour.Baseline{UserID: carolID}
		for i := 0; i < 20; i++ {
			at := u0.Add(-time.Duration(20-i) * 24 * time.Hour)
			b.Learn(behaviour.Login{EventID: int64(100 + i), UserID: carolID, At: at, IP: "198.51.100.7", Whole: true,
				Country: "Germany", City: "Berlin", Browser: "Firefox 126.0", Platform: "Linux"})
		}
		return b
	}
	var guessing []ipguard.LoginEvent
	for i := int64(0); i < 3; i++ {
		guessing = append(guessing, failedLogin(20+i, "carol@partner.example", "203.0.113.66", time.Duration(i+1)*time.Minute))
	}
	tests := []struct {
		name     string
		policy   string
		evs      []ipguard.LoginEvent
		messaged []string
		reason   string // a reason kind the messaged finding carries
		people   int
	}{
		{name: "familiar login stays in the digest", policy: audit.UnknownDigest,
			evs:    []ipguard.LoginEvent{success(1, carolID, "carol@partner.example", "198.51.100.7", "Germany", "Berlin", 2*time.Minute)},
			people: 1},
		{name: "new country is a message", policy: audit.UnknownDigest,
			evs:      []ipguard.LoginEvent{success(1, carolID, "carol@partner.example", "203.0.113.9", "Brazil", "São Paulo", 2*time.Minute)},
			messaged: []string{"unknown_user:1"}, reason: audit.KindNewCountry},
		{name: "impossible travel is a message", policy: audit.UnknownDigest,
			evs: []ipguard.LoginEvent{
				success(1, carolID, "carol@partner.example", "198.51.100.7", "Germany", "Berlin", 1*time.Minute),
				success(2, carolID, "carol@partner.example", "203.0.113.9", "United States", "New York", 10*time.Minute)},
			messaged: []string{"unknown_user:2"}, reason: audit.KindImpossibleTravel, people: 1},
		{name: "a guessed password is a message under digest", policy: audit.UnknownDigest,
			evs:      append(append([]ipguard.LoginEvent(nil), guessing...), success(1, carolID, "carol@partner.example", "203.0.113.66", "Germany", "Berlin", 5*time.Minute)),
			messaged: []string{"password_guess_succeeded:1"}},
		{name: "a guessed password is a message under ignore", policy: audit.UnknownIgnore,
			evs:      append(append([]ipguard.LoginEvent(nil), guessing...), success(1, carolID, "carol@partner.example", "203.0.113.66", "Germany", "Berlin", 5*time.Minute)),
			messaged: []string{"password_guess_succeeded:1"}},
		{name: "new country under ignore is the behaviour finding", policy: audit.UnknownIgnore,
			evs:      []ipguard.LoginEvent{success(1, carolID, "carol@partner.example", "203.0.113.9", "Brazil", "São Paulo", 2*time.Minute)},
			messaged: []string{"new_country:1"}, reason: audit.KindNewCountry},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newChain(tt.policy, map[string]behaviour.Baseline{carolID: berlin()}, tt.evs...)
			c.run(t)
			if got := c.messaged(t); strings.Join(got, " ") != strings.Join(tt.messaged, " ") {
				t.Fatalf("messaged %v, want %v", got, tt.messaged)
			}
			if tt.reason != "" && !strings.Contains(c.topic.Sent[0].Default, `"kind":"`+tt.reason+`"`) {
				t.Errorf("the message lacks the reason %s:\n%s", tt.reason, c.topic.Sent[0].Default)
			}
			if d := c.day(t); len(d.People) != tt.people {
				t.Errorf("digest lists %d people, want %d", len(d.People), tt.people)
			}
		})
	}
}

// Learn builds the baselines of people without an allowlist too: their
// logins are learned like everyone's (#21 §1).
func TestLearnBuildsBaselinesOfPeopleWithoutAllowlist(t *testing.T) {
	var evs []ipguard.LoginEvent
	for i := int64(0); i < 12; i++ {
		e := success(i+1, carolID, "carol@partner.example", "198.51.100.7", "Germany", "Berlin", -time.Duration(i)*time.Hour)
		evs = append(evs, e)
	}
	st := audittest.NewStore() // nobody is onboarded
	bs := behaviourtest.NewBaselines()
	l := &behaviour.Learner{Source: audittest.NewSource(evs...), Store: bs, Leases: st,
		Users: st.Users, Now: func() time.Time { return u0.Add(time.Minute) }}
	res, err := l.Learn(context.Background(), behaviour.LearnRequest{Days: 2})
	if err != nil {
		t.Fatal(err)
	}
	b, ok := bs.Items[carolID]
	if !ok || b.Logins != 12 || res.BaselinesWritten != 1 || !b.HasCountry(behaviour.CountryCode("Germany")) {
		t.Fatalf("baseline of a person without an allowlist: %+v (ok %v), result %+v", b, ok, res)
	}
}

// The digest step takes an alert whose findings are all DigestOnly whatever
// its severity (also with no DIGEST_SEVERITIES at all), and passes an
// unknown_user alert that is not DigestOnly (UNKNOWN_USER_POLICY=alert).
// Names from the portal are cleaned; beyond the listed 25 the rest are
// counted.
func TestDigestOnlyAlertsAreGatheredWhateverTheirSeverity(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
	top := &audittest.Topic{}
	p := &digest.Publisher{Next: top, Store: &audittest.Revised{}, Severities: map[string]bool{}, Hour: 8, Portal: "portal.example.com", Now: func() time.Time { return now }}
	alertOf := func(digestOnly bool, fs ...audit.Finding) ipguard.Alert {
		for i := range fs {
			fs[i].DigestOnly = digestOnly
		}
		b, _ := json.Marshal(audit.Payload{Portal: "portal.example.com", Severity: "medium", Events: fs})
		return ipguard.Alert{Severity: "medium", Kinds: []string{audit.KindUnknownUser}, Default: string(b)}
	}
	var fs []audit.Finding
	for i := 0; i < 30; i++ {
		fs = append(fs, audit.Finding{EventID: int64(i + 1), Kind: audit.KindUnknownUser, Severity: "medium", UserID: fmt.Sprintf("u-%02d", i),
			Email: fmt.Sprintf("p%02d@example.com", i), Date: now.Add(time.Duration(i) * time.Minute).Format(time.RFC3339)})
	}
	fs[0].Email, fs[0].UserType = "eve\u202e@example.com", audit.UserGuest
	if id, err := p.Publish(ctx, alertOf(true, fs...)); err != nil || id != "digest:2026-12-05" || len(top.Sent) != 0 {
		t.Fatalf("DigestOnly alert: %q, %v, %d sent; want it gathered", id, err, len(top.Sent))
	}
	if _, err := p.Publish(ctx, alertOf(false, fs[0])); err != nil || len(top.Sent) != 1 {
		t.Fatalf("an alerted unknown user: %v, %d sent; want it passed on", err, len(top.Sent))
	}
	p.Now = func() time.Time { return time.Date(2026, 12, 5, 8, 1, 0, 0, time.UTC) }
	top.Sent = nil
	if _, err := p.SendDue(ctx); err != nil || len(top.Sent) != 1 {
		t.Fatalf("SendDue: %v, %d sent", err, len(top.Sent))
	}
	e := top.Sent[0].Email
	for _, want := range []string{"30 people logged in who have no allowlist: eve\\u202E@example.com, p01@example.com", "(and 5 more)", "guests: eve\\u202E@example.com.",
		"  - eve\\u202E@example.com (guest): 1 login, first seen 2026-12-04T09:00:00Z"} {
		if !strings.Contains(e, want) {
			t.Errorf("digest lacks %q:\n%s", want, e)
		}
	}
	if strings.Contains(e, "\u202e") {
		t.Error("a bidi control reached the e-mail")
	}
}
