package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"ipguard/internal/audit/audittest"
	"ipguard/internal/ipguard"
)

// DigestOnly findings travel in batches of their own, after every message
// a person reads, so that the digest step can take them whole.
func TestRenderAlertsKeepsDigestOnlyFindingsApart(t *testing.T) {
	f := func(id int64, kind, sev string, digestOnly bool) Finding {
		return Finding{EventID: id, Kind: kind, Severity: sev, DigestOnly: digestOnly, Reason: "r", Date: "2026-12-03T09:00:00Z"}
	}
	fs := []Finding{
		f(1, KindUnknownUser, SeverityMedium, true),
		f(2, KindUnverifiableIP, SeverityMedium, false),
		f(3, KindIPNotAllowed, SeverityHigh, false),
		f(4, KindUnknownUser, SeverityMedium, true),
		f(5, KindUnknownUser, SeverityMedium, false), // alerted: policy alert, or a behaviour reason
	}
	bs, err := RenderAlerts(Meta{Portal: "p"}, fs, MaxMessageBytes)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, b := range bs {
		var ids []string
		for _, x := range b.Findings {
			ids = append(ids, fmt.Sprintf("%d", x.EventID))
			if x.DigestOnly != b.Findings[0].DigestOnly {
				t.Errorf("batch mixes DigestOnly and messaged findings: %+v", b.Findings)
			}
		}
		got = append(got, b.Alert.Severity+":"+strings.Join(ids, ","))
	}
	if want := "high:3 medium:2,5 medium:1,4"; strings.Join(got, " ") != want {
		t.Errorf("batches %v, want %s", got, want)
	}
	var p Payload
	_ = json.Unmarshal([]byte(bs[2].Alert.Default), &p)
	if len(p.Events) != 2 || !p.Events[0].DigestOnly || strings.Join(bs[2].Alert.Kinds, ",") != KindUnknownUser {
		t.Errorf("digest batch JSON %+v, kinds %v", p.Events, bs[2].Alert.Kinds)
	}
}

// The user type is looked up only for DigestOnly findings, once per person
// per run, at most MaxUserTypeLookups people a run; a failed lookup is a
// warning and the person is listed without a type.
func TestUserTypeLookupsAreBoundedPerRun(t *testing.T) {
	var evs []ipguard.LoginEvent
	for i := int64(1); i <= MaxUserTypeLookups+5; i++ {
		user := fmt.Sprintf("person-%03d", i)
		evs = append(evs, at(2*i, user, 1010, "198.51.100.1", time.Duration(i)*time.Second), at(2*i+1, user, 1010, "198.51.100.1", time.Duration(i)*time.Second+time.Millisecond))
	}
	tests := []struct {
		name      string
		policy    string
		people    *audittest.People
		wantCalls int
		wantType  string
		wantWarn  string
	}{
		{"digest: one lookup per person, bounded", UnknownDigest, &audittest.People{Types: map[string]string{"person-001": UserGuest}}, MaxUserTypeLookups, UserGuest,
			fmt.Sprintf("more than %d people without an allowlist", MaxUserTypeLookups)},
		{"alert: no lookup", UnknownAlert, &audittest.People{}, 0, "", ""},
		{"a failing portal: listed without a type", UnknownDigest, &audittest.People{Err: errors.New("HTTP 503")}, MaxUserTypeLookups, "", "could not look up the user type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _, _, pub := newAudit(evs...)
			s.Settings.Policy.UnknownUsers = tt.policy
			s.People = tt.people
			res, err := s.Run(context.Background(), trig(15*time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			if tt.people.Lookups() != tt.wantCalls {
				t.Errorf("%d lookups, want %d", tt.people.Lookups(), tt.wantCalls)
			}
			if res.Counts[KindUnknownUser] != len(evs) {
				t.Errorf("counted %d unknown_user findings, want %d", res.Counts[KindUnknownUser], len(evs))
			}
			types := map[string]string{}
			for _, a := range pub.sent {
				for _, f := range findingsOf(t, a) {
					if f.DigestOnly != (tt.policy == UnknownDigest) {
						t.Fatalf("finding %d DigestOnly %v under %s", f.EventID, f.DigestOnly, tt.policy)
					}
					types[f.UserID] = f.UserType
				}
			}
			if types["person-001"] != tt.wantType {
				t.Errorf("person-001 type %q, want %q", types["person-001"], tt.wantType)
			}
			if joined := strings.Join(res.Warnings, "\n"); tt.wantWarn != "" && !strings.Contains(joined, tt.wantWarn) || tt.wantWarn == "" && joined != "" {
				t.Errorf("warnings %q, want %q", joined, tt.wantWarn)
			}
		})
	}
}

// slowPeople answers every lookup only after delay (a portal whose people
// endpoint times out: the client gives up after its timeout and retries),
// then fails.
type slowPeople struct {
	delay time.Duration
	calls int
}

func (p *slowPeople) UserType(ctx context.Context, _ string) (string, error) {
	p.calls++
	select {
	case <-time.After(p.delay):
		return "", ipguard.Errorf(ipguard.EUnavailable, "docspace: get people: no answer within the timeout")
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// Naming guests in the digest is a courtesy: a people endpoint that times
// out must not hold back the piece's alerts. The lookups (at most
// MaxUserTypeLookups, each as long as the client's timeout and retries)
// get a bounded share of the run's time; past it the rest are listed
// without a type. Before, 50 slow lookups took the run's whole time before
// its messages, so the high finding of the same piece was never sent, run
// after run (attack review of the audit path).
func TestSlowUserTypeLookupsDoNotHoldBackThePiecesAlerts(t *testing.T) {
	var evs []ipguard.LoginEvent
	for i := int64(1); i <= MaxUserTypeLookups; i++ {
		evs = append(evs, at(i, fmt.Sprintf("person-%03d", i), 1010, "198.51.100.1", time.Duration(i)*time.Second))
	}
	v := at(1000, "alice", 1010, "198.51.100.1", 2*time.Minute) // outside alice's allowlist: high
	evs = append(evs, v)
	s, _, _, pub := newAudit(evs...)
	s.Settings.Policy.UnknownUsers = UnknownDigest
	people := &slowPeople{delay: 200 * time.Millisecond}
	s.People = people
	s.Settings.DeadlineMargin = 300 * time.Millisecond
	res := runWithin(t, s, 3*time.Second)
	got := alertedIDs(t, pub.sent)
	if got[v.ID] != 1 {
		t.Errorf("the violation was alerted %d times; want once in this run (result: complete %v, %d lookups, warnings %q)", got[v.ID], res.Complete, people.calls, res.Warnings)
	}
}
