package evaluate

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"ipguard/internal/audit"
	"ipguard/internal/testbed/localaws"
)

// The small population (40 people, 3 weeks, seed fixed) at default
// settings, through the real functions against moto and the dev portal.
// It holds recall to issue #21's goal (at least 95 % of takeovers alerted)
// and false alerts to RatchetMaxFalsePer100Week, which is now the goal of
// at most 1 false alert per 100 users a week (README "Detection quality").
// The table and the first false findings are logged whatever the outcome.
func TestDetectionQualityAtDefaults(t *testing.T) {
	localaws.SkipShort(t, "moto_server")
	m := localaws.MotoT(t)
	pop := Generate(Options{Seed: Seed, People: SmallPeople, Start: DefaultStart(time.Now(), 21), Place: os.Getenv("EVALUATE_PLACE") != "false"})
	if bad := pop.CheckHonesty(); len(bad) > 0 {
		t.Fatalf("the population is not honest: %v", bad)
	}
	out, err := Run(context.Background(), pop, RunOptions{Moto: m, Setenv: t.Setenv})
	if err != nil {
		t.Fatal(err)
	}
	r := Score(pop, out)
	t.Logf("detection quality at default settings:\n%s", r.Table())
	detail := strings.Join(r.FalseDetail, "\n")
	if ok, why := r.GoalMet(); !ok {
		t.Logf("issue #21's goal is not met at default settings: %s\nthe first false findings in messages:\n%s", why, detail)
	}
	if rc := r.Recall(); rc < GoalMinRecall {
		t.Errorf("recall %.0f %% is below issue #21's goal of %.0f %%; missed: %v", 100*rc, 100*GoalMinRecall, r.Missed)
	}
	if f := r.FalsePer100Week(); f > RatchetMaxFalsePer100Week {
		t.Errorf("%.1f false alerts per 100 users a week: above %.1f\n%s", f, RatchetMaxFalsePer100Week, detail)
	}
}

// Scoring counts messages people receive: a takeover is alerted only when a
// message (never a digest) carries a finding of its logins or addresses; a
// message that carries no takeover is one false alert, and its findings are
// counted by kind and by the benign behaviour of their login.
func TestScoreCountsMessagesNotDigestLines(t *testing.T) {
	start := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	pop := Generate(Options{Seed: Seed, People: SmallPeople, Start: start})
	attack := func(typ string) Attack {
		for _, a := range pop.Attacks {
			if a.Type == typ {
				return a
			}
		}
		t.Fatalf("no %s", typ)
		return Attack{}
	}
	genuine := func(label string) Event {
		for _, e := range pop.Events {
			if e.Attack < 0 && e.Benign == label {
				return e
			}
		}
		t.Fatalf("no %s event", label)
		return Event{}
	}
	theft := pop.Events[attack(AttackNewCountry).Events[0]]
	spray := attack(AttackSprayMany)
	trip := genuine(BenignUndeclaredTrip)
	guest := genuine(BenignGuest)
	alert := func(fs ...audit.Finding) string {
		b, _ := json.Marshal(audit.Payload{Severity: "high", Events: fs})
		return string(b)
	}
	bodies := []string{
		alert(audit.Finding{EventID: theft.ID, Kind: audit.KindIPNotAllowed, IP: theft.IP}),
		alert(audit.Finding{Kind: audit.KindPasswordSpray, IP: spray.IPs[0], IPs: spray.IPs[:3]}, audit.Finding{EventID: trip.ID, Kind: audit.KindIPNotAllowed, IP: trip.IP}),
		alert(audit.Finding{EventID: trip.ID, Kind: audit.KindIPNotAllowed, IP: trip.IP}),
		alert(audit.Finding{EventID: guest.ID, Kind: audit.KindUnknownUser, IP: guest.IP}, audit.Finding{EventID: guest.ID + 100000, Kind: audit.KindUnknownUser, IP: guest.IP}),
		`{"kind": "digest", "total": 3}`,
		`{"test": true, "events": []}`,
	}
	var out Outcome
	for _, b := range bodies {
		m, digest, err := decodeMessage(b)
		if err != nil {
			t.Fatal(err)
		}
		if digest {
			out.Digests++
		} else if m != nil {
			out.Messages = append(out.Messages, *m)
		}
	}
	r := Score(pop, out)
	if r.Messages != 4 || r.FalseMessages != 2 || r.Digests != 1 {
		t.Errorf("messages %d, false %d, digests %d; want 4, 2, 1", r.Messages, r.FalseMessages, r.Digests)
	}
	if r.Alerted[AttackNewCountry] != 1 || r.Alerted[AttackSprayMany] != 1 || r.Alerted[AttackBurst] != 0 {
		t.Errorf("alerted %v", r.Alerted)
	}
	if r.FalseByBenign[BenignUndeclaredTrip] != 2 || r.FalseByBenign[BenignGuest] != 2 || r.FalseByKind[audit.KindUnknownUser] != 2 || r.FalseByKind[audit.KindIPNotAllowed] != 2 {
		t.Errorf("false by benign %v, by kind %v", r.FalseByBenign, r.FalseByKind)
	}
	if want := float64(2) / (float64(SmallPeople) / 100) / 2; r.FalsePer100Week() != want {
		t.Errorf("false per 100 users a week = %v, want %v", r.FalsePer100Week(), want)
	}
	if ok, _ := r.GoalMet(); ok {
		t.Error("the goal is met with 12 of 14 takeovers missed")
	}
}

// An impossible_travel finding on a genuine login names the other login of
// its pair (Reason.EventID): when that one is a takeover's (the victim's
// next login after the thief's), the message carries the takeover and is
// no false alert; a pair of two genuine logins stays false.
func TestScoreCountsTheOtherLoginOfAnImpossiblePair(t *testing.T) {
	start := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	pop := Generate(Options{Seed: Seed, People: SmallPeople, Start: start})
	var theft Event
	for _, a := range pop.Attacks {
		if a.Type == AttackNewCountry {
			theft = pop.Events[a.Events[0]]
			break
		}
	}
	var next, other Event
	for _, e := range pop.Events {
		if e.Attack < 0 && e.Succeeded() && e.Person == theft.Person && e.Date.After(theft.Date) && next.ID == 0 {
			next = e
		}
		if e.Attack < 0 && e.Succeeded() && e.Person != theft.Person && other.ID == 0 {
			other = e
		}
	}
	if theft.ID == 0 || next.ID == 0 || other.ID == 0 {
		t.Fatal("the population has no theft followed by its victim's login")
	}
	// Through the alert's JSON, as people (and the scoring) receive it.
	travel := func(on, with Event) Message {
		b, _ := json.Marshal(audit.Payload{Severity: "high", Events: []audit.Finding{{EventID: on.ID, Kind: audit.KindImpossibleTravel, IP: on.IP,
			Reasons: []audit.Reason{{Kind: audit.KindImpossibleTravel, Severity: "high", Text: "…", EventID: with.ID}}}}})
		m, _, err := decodeMessage(string(b))
		if err != nil || m == nil {
			t.Fatalf("decode %s: %v", b, err)
		}
		return *m
	}
	r := Score(pop, Outcome{Messages: []Message{travel(next, theft), travel(next, other)}})
	if r.Messages != 2 || r.FalseMessages != 1 || r.Alerted[AttackNewCountry] != 1 || r.FalseByKind[audit.KindImpossibleTravel] != 1 {
		t.Errorf("messages %d, false %d, alerted %v, false by kind %v; want 2, 1, one theft, one impossible_travel", r.Messages, r.FalseMessages, r.Alerted, r.FalseByKind)
	}
}

// A period's run is the first run time at or after the login (a window
// ends at its run's time, inclusive).
func TestPeriodEnd(t *testing.T) {
	from := time.Date(2026, 11, 16, 0, 0, 0, 0, time.UTC)
	for _, tt := range []struct{ at, want string }{
		{"00:00:01", "00:05:00"}, {"00:05:00", "00:05:00"}, {"00:05:01", "00:10:00"}, {"23:59:59", "24:00:00"},
	} {
		at, _ := time.Parse("15:04:05", tt.at)
		at = from.Add(time.Duration(at.Hour())*time.Hour + time.Duration(at.Minute())*time.Minute + time.Duration(at.Second())*time.Second)
		want := from.Add(5 * time.Minute)
		switch tt.want {
		case "00:10:00":
			want = from.Add(10 * time.Minute)
		case "24:00:00":
			want = from.Add(24 * time.Hour)
		}
		if got := periodEnd(at, from, 5*time.Minute); !got.Equal(want) {
			t.Errorf("periodEnd(%s) = %s, want %s", tt.at, got.Format(time.RFC3339), want.Format(time.RFC3339))
		}
	}
}
