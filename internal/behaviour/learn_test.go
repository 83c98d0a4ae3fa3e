package behaviour

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"ipguard/internal/audit/audittest"
	"ipguard/internal/ipguard"
)

type memLease struct{ holder string }

func (m *memLease) TryAcquireLease(_ context.Context, name, owner string, until, now time.Time) (bool, error) {
	if m.holder != "" && m.holder != owner {
		return false, nil
	}
	m.holder = owner
	return true, nil
}

func (m *memLease) ReleaseLease(_ context.Context, name, owner string) error {
	if m.holder == owner {
		m.holder = ""
	}
	return nil
}

// history: alice logs in from Berlin every day for 30 days, then once from
// São Paulo 40 minutes after Berlin; bob once a day from his declared office
// (203.0.113.10), then from Sydney through it.
func history() []ipguard.LoginEvent {
	var evs []ipguard.LoginEvent
	id := int64(1)
	for d := 30; d >= 1; d-- {
		evs = append(evs, success(id, "alice", -time.Duration(d)*24*time.Hour, "198.51.100.7", "Germany", "Berlin"))
		id++
		evs = append(evs, success(id, "bob", -time.Duration(d)*24*time.Hour+time.Hour, "203.0.113.10", "Germany", "Berlin"))
		id++
	}
	evs = append(evs, success(id, "alice", -24*time.Hour+40*time.Minute, "198.51.100.8", "Brazil", "São Paulo"))
	evs = append(evs, success(id+1, "bob", -24*time.Hour+90*time.Minute, "203.0.113.10", "Australia", "Sydney"))
	for i := 0; i < 12; i++ {
		evs = append(evs, failed(int64(1000+i), fmt.Sprintf("user%d@example.com", i), -48*time.Hour+time.Duration(i)*time.Minute, "192.0.2.66"))
	}
	return evs
}

func newLearner(src *audittest.Source, st *memStore, lk *memLease) *Learner {
	return &Learner{Source: src, Store: st, Leases: lk, Now: func() time.Time { return t0 },
		Users: func(_ context.Context, ids []string) (map[string]ipguard.User, error) {
			out := map[string]ipguard.User{}
			for _, id := range ids {
				if id == "bob" {
					out[id] = ipguard.User{ID: "bob", Entries: []string{"203.0.113.10"}}
				}
			}
			return out, nil
		}}
}

func TestLearnDryRunReportsAndChangesNothing(t *testing.T) {
	src, st := audittest.NewSource(history()...), newMemStore()
	res, err := newLearner(src, st, &memLease{}).Learn(context.Background(), LearnRequest{Days: 60, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if st.writes != 0 || len(st.items) != 0 {
		t.Errorf("a dry run wrote %d baselines", st.writes)
	}
	if res.EventsRead != 74 || res.Logins != 62 || res.Users != 2 || !res.Complete || res.Pages != 1 {
		t.Errorf("result %+v", res)
	}
	w := res.WouldAlert
	if w[RuleImpossibleTravel].Findings != 1 || w[RuleNewCountry].Findings != 1 || strings.Join(w[RuleNewCountry].Users, ",") != "alice" ||
		w[RuleNewDevice].Findings != 0 || w[RulePasswordSpray].Findings != 1 || w[RuleNewCountry].Messaged != 1 {
		for k, v := range w {
			t.Logf("%s: %+v", k, *v)
		}
		t.Error("dry run counts are wrong (bob's logins through his declared entry raise nothing)")
	}
}

func TestLearnWritesBaselinesOnceAndIsIdempotent(t *testing.T) {
	src, st := audittest.NewSource(history()...), newMemStore()
	l := newLearner(src, st, &memLease{})
	res, err := l.Learn(context.Background(), LearnRequest{Days: 60})
	if err != nil {
		t.Fatal(err)
	}
	alice := st.items["alice"]
	if res.BaselinesWritten != 2 || alice.Logins != 31 || !alice.HasCountry("BR") {
		t.Errorf("result %+v, alice %+v", res, st.items["alice"])
	}
	res, _ = l.Learn(context.Background(), LearnRequest{Days: 60})
	if res.BaselinesWritten != 0 {
		t.Errorf("learning the same days again wrote %d baselines", res.BaselinesWritten)
	}
}

func TestLearnWaitsForNoAuditRun(t *testing.T) {
	src := audittest.NewSource(history()...)
	res, err := newLearner(src, newMemStore(), &memLease{holder: "audit-run"}).Learn(context.Background(), LearnRequest{Days: 7})
	if err != nil || !res.Skipped || src.Calls() != 0 {
		t.Errorf("learn while the audit holds the lease: %+v %v, portal calls %d", res, err, src.Calls())
	}
}

func TestDecodeLearn(t *testing.T) {
	for _, c := range []struct {
		in      string
		isLearn bool
		want    LearnRequest
		err     string
	}{
		{`{"action":"learn","days":30}`, true, LearnRequest{Days: 30}, ""},
		{`{"action":"learn","days":7,"dryRun":true}`, true, LearnRequest{Days: 7, DryRun: true}, ""},
		{`{"action":"learn"}`, true, LearnRequest{}, "days"},
		{`{"action":"learn","days":181}`, true, LearnRequest{}, `days "181"`},
		{`{"action":"learn","days":"x"}`, true, LearnRequest{}, "days"},
		{`{"action":"learn","days":3,"dryRun":"yes"}`, true, LearnRequest{}, "dryRun"},
		{`{"action":"status"}`, false, LearnRequest{}, ""},
		{`{}`, false, LearnRequest{}, ""},
	} {
		got, ok, err := DecodeLearn([]byte(c.in))
		if ok != c.isLearn || (c.err == "" && (err != nil || got != c.want)) || (c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err))) {
			t.Errorf("%s: %+v %v %v", c.in, got, ok, err)
		}
	}
}

// Learning older history into a baseline a live audit started counts every
// older login once.
func TestLearnExtendsABaselineBackwards(t *testing.T) {
	st := newMemStore()
	b := Baseline{UserID: "alice"}
	b.Learn(Login{EventID: 900, At: t0.Add(-time.Hour), Whole: true, IP: "198.51.100.7", Country: "Germany"})
	st.items["alice"] = b
	src := audittest.NewSource(history()...)
	if _, err := newLearner(src, st, &memLease{}).Learn(context.Background(), LearnRequest{Days: 60}); err != nil {
		t.Fatal(err)
	}
	if got := st.items["alice"]; got.Logins != 32 || !got.Last.At.Equal(t0.Add(-time.Hour)) {
		t.Errorf("logins %d (want 1 + 31 older), last %+v", got.Logins, got.Last)
	}
}

// A learn with a field it does not know (a misspelt dryRun, an audit's
// "from") is InvalidInput naming that field, and nothing runs: a dry run
// asked for as "dry-run" must not learn for real.
func TestDecodeLearnRefusesAFieldItDoesNotKnow(t *testing.T) {
	for _, c := range []struct{ in, err string }{
		{`{"action":"learn","days":30,"dry-run":true}`, `dry-run: is not a field of learn`},
		{`{"action":"learn","days":30,"dry_run":true}`, `dry_run: is not a field of learn`},
		{`{"action":"learn","days":30,"preview":true}`, `preview: is not a field of learn`},
		{`{"action":"learn","days":30,"from":"2026-11-01T00:00:00Z"}`, `from: is not a field of learn`},
		{`{"action":"learn","days":30,"dryRun":true,"DryRun":false}`, `given twice`},
	} {
		got, ok, err := DecodeLearn([]byte(c.in))
		if !ok || ipguard.ErrorCode(err) != ipguard.EInvalid || !strings.Contains(err.Error(), c.err) {
			t.Errorf("%s: %+v %v %v, want InvalidInput containing %q", c.in, got, ok, err, c.err)
		}
	}
	// The known fields in any case still work.
	if got, ok, err := DecodeLearn([]byte(`{"Action":"learn","Days":7,"dryrun":true}`)); !ok || err != nil || got != (LearnRequest{Days: 7, DryRun: true}) {
		t.Errorf("known fields in another case: %+v %v %v", got, ok, err)
	}
}
