package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"ipguard/internal/audit"
	"ipguard/internal/behaviour"
	"ipguard/internal/testbed/devportal"
)

// janeFrom is a login of Jane's with the portal's GeoIP and User-Agent fields.
func janeFrom(at time.Time, ip, country, city string) devportal.LoginEvent {
	ev := janeLogin(at, ip)
	ev.Country, ev.City = country, city
	return ev
}

// Under the emulator, with the real bootstraps: a learn dry run reports and
// writes nothing; learn writes Jane's baseline; then a login from São Paulo
// 40 minutes after one from Berlin, outside her allowlist, is one
// ip_not_allowed finding with impossible_travel and new_country as its
// reasons, explained, and the e-mail says so.
func TestBehaviourLearnThenImpossibleTravel(t *testing.T) {
	ctx := context.Background()
	s := deployWithJane(t)
	now := time.Now()
	var history []devportal.LoginEvent
	for d := 20; d >= 1; d-- {
		history = append(history, janeFrom(now.Add(-time.Duration(d)*24*time.Hour), "198.51.100.7", "Germany", "Berlin"))
	}
	s.Portal.AddLoginEvents(history...)
	fn := startFunction(t, "audit", s.FunctionEnv())

	var dry behaviour.LearnResult
	fn.invoke(t, map[string]any{"action": "learn", "days": 30, "dryRun": true}).result(t, &dry)
	if !dry.DryRun || dry.Logins != 20 || dry.Users != 1 || dry.BaselinesWritten != 0 || dry.WouldAlert[audit.KindNewCountry] == nil {
		t.Fatalf("dry run = %s", jsonText(dry))
	}
	if got, _ := s.Store.Baselines(ctx, []string{janeID}); len(got) != 0 {
		t.Fatalf("a dry run wrote baselines: %+v", got)
	}
	var learned behaviour.LearnResult
	fn.invoke(t, map[string]any{"action": "learn", "days": 30}).result(t, &learned)
	if learned.BaselinesWritten != 1 || !learned.Complete {
		t.Fatalf("learn = %s", jsonText(learned))
	}

	ids := s.Portal.AddLoginEvents(
		janeFrom(now.Add(-2*time.Minute), "198.51.100.7", "Germany", "Berlin"),
		janeFrom(now.Add(-time.Minute), "192.0.2.77", "Brazil", "São Paulo"),
	)
	var res audit.Result
	fn.invoke(t, scheduledEvent(now)).result(t, &res)
	if res.Counts[audit.KindIPNotAllowed] != 1 || res.Counts[audit.KindImpossibleTravel] != 0 || res.AlertsPublished != 1 ||
		res.BehaviourReasons[audit.KindImpossibleTravel] != 1 || res.BehaviourReasons[audit.KindNewCountry] != 1 {
		t.Fatalf("audit = %s, want one ip_not_allowed finding carrying the behaviour reasons", jsonText(res))
	}
	pubs := s.Published()
	if len(pubs) != 1 {
		t.Fatalf("published %d messages", len(pubs))
	}
	p := pubs[0]
	for _, want := range []string{`"kind":"impossible_travel"`, `"kind":"new_country"`, `"explanation":"first login from Brazil; the last login was from Berlin, Germany (through the user's own entry 198.51.100.0/28) 1 minute earlier, about 10,200 km away`} {
		if !strings.Contains(p.Default, want) {
			t.Errorf("alert JSON lacks %s:\n%s", want, p.Default)
		}
	}
	if !strings.Contains(p.Email, "impossible_travel (high)") || !strings.Contains(p.Email, "Normal for this user (") {
		t.Errorf("e-mail does not explain:\n%s", p.Email)
	}
	if got := payloadEventIDs(t, p.Default); len(got) != 1 || got[0] != ids[1] {
		t.Errorf("alerted ids %v, want [%d]", got, ids[1])
	}
	b, _ := s.Store.Baselines(ctx, []string{janeID})
	if jb := b[janeID]; !jb.HasCountry("BR") || jb.Last == nil || jb.Last.EventID != ids[1] {
		t.Errorf("baseline after the run: %+v", jb)
	}
}
