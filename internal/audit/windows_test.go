package audit_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"ipguard/internal/audit"
	"ipguard/internal/audit/audittest"
	"ipguard/internal/behaviour"
	"ipguard/internal/behaviour/behaviourtest"
	"ipguard/internal/behaviour/windowtest"
	"ipguard/internal/dynamo"
	"ipguard/internal/ipguard"
	"ipguard/internal/lease"
	"ipguard/internal/testbed/localaws"
)

// messaged is every finding of every message the topic was sent.
func messaged(t *testing.T, top *audittest.Topic) []audit.Finding {
	t.Helper()
	var fs []audit.Finding
	for _, a := range top.Sent {
		var pl audit.Payload
		if err := json.Unmarshal([]byte(a.Default), &pl); err != nil {
			t.Fatal(err)
		}
		fs = append(fs, pl.Events...)
	}
	return fs
}

// dayOfLogins generates one day of a small portal, seeded, with the
// cross-run cases of #21 §3 planted in it; planted names what must be found.
func dayOfLogins(day time.Time) (evs []ipguard.LoginEvent, users []ipguard.User, planted map[string]int64, victims map[int64]bool) {
	rng := rand.New(rand.NewPCG(21, 3))
	id := int64(1000)
	add := func(e ipguard.LoginEvent) int64 {
		id++
		e.ID = id
		e.Raw = []byte(fmt.Sprintf(`{"id":%d}`, id))
		if e.Action == "" {
			e.Action = "Login"
		}
		evs = append(evs, e)
		return id
	}
	ok := func(user string, at time.Time, ip, country, city string) ipguard.LoginEvent {
		return ipguard.LoginEvent{UserID: user, User: user, Login: user + "@example.com", ActionID: 1010, Date: at, IP: ip,
			Country: country, City: city, Browser: "Firefox 126.0", Platform: "Windows 10"}
	}
	failed := func(login string, at time.Time, ip string) ipguard.LoginEvent {
		return ipguard.LoginEvent{Login: login, ActionID: 1013, Date: at, IP: ip, Browser: "Chrome 120.0", Platform: "Linux"}
	}
	for i := 1; i <= 20; i++ {
		u := fmt.Sprintf("u%02d", i)
		users = append(users, ipguard.User{ID: u, Email: u + "@example.com", Entries: []string{fmt.Sprintf("10.1.%d.0/24", i)}})
		for k := 0; k < 3+rng.IntN(4); k++ {
			at := day.Add(7*time.Hour + time.Duration(rng.IntN(12*3600))*time.Second)
			add(ok(u, at, fmt.Sprintf("10.1.%d.%d", i, 1+rng.IntN(200)), "Germany", "Berlin"))
		}
		if rng.IntN(2) == 0 { // a typo from the user's own address
			add(failed(u+"@example.com", day.Add(7*time.Hour+time.Duration(rng.IntN(12*3600))*time.Second), fmt.Sprintf("10.1.%d.7", i)))
		}
	}
	for h := 0; h < 24; h++ { // background noise: two stray failures an hour
		for k := 0; k < 2; k++ {
			add(failed(fmt.Sprintf("stray%d-%d@example.com", h, k), day.Add(time.Duration(h)*time.Hour+time.Duration(rng.IntN(3600))*time.Second),
				fmt.Sprintf("100.64.%d.%d", h, k)))
		}
	}
	planted, victims = map[string]int64{}, map[int64]bool{}
	// A distributed spray slower than a run: 12 accounts, one attempt each,
	// from 12 addresses over 25 minutes (with the stray failures around it,
	// the threshold of 10 accounts is reached a little before the 10th).
	for k := 0; k < 12; k++ {
		at := day.Add(10*time.Hour + 2*time.Minute + time.Duration(k)*(130*time.Second))
		victims[add(failed(fmt.Sprintf("victim%02d@example.com", k), at, fmt.Sprintf("192.0.2.%d", k+1)))] = true
	}
	// A guess split across runs: failures 13:03-13:05, the success at 13:11.
	for _, s := range []int{190, 260, 290} {
		add(failed("u03@example.com", day.Add(13*time.Hour+time.Duration(s)*time.Second), "198.51.100.77"))
	}
	planted["password_guess_succeeded"] = add(ok("u03", day.Add(13*time.Hour+11*time.Minute), "198.51.100.77", "Germany", "Berlin"))
	// A morning typo and an afternoon login from the same address: not a guess.
	add(failed("u04@example.com", day.Add(8*time.Hour), "198.51.100.88"))
	planted["ip_not_allowed"] = add(ok("u04", day.Add(14*time.Hour), "198.51.100.88", "Germany", "Berlin"))
	// Travel across runs: Berlin at 16:02 (allowed), New York at 16:09 from
	// an address outside the list: ip_not_allowed with impossible_travel
	// among its reasons.
	add(ok("u05", day.Add(16*time.Hour+2*time.Minute), "10.1.5.9", "Germany", "Berlin"))
	planted["impossible_travel"] = add(ok("u05", day.Add(16*time.Hour+9*time.Minute), "198.51.100.99", "United States", "New York"))
	// A burst within one run.
	for s := 0; s < 6; s++ {
		add(failed("nobody@example.com", day.Add(18*time.Hour+time.Minute+time.Duration(s*10)*time.Second), "203.0.113.99"))
	}
	// A burst over two runs: 12 tries in one run's last minutes, 12 in
	// the next one's first (told once), and one thinner than the
	// threshold (5) in each of two runs (found across them).
	for s := 0; s < 12; s++ {
		add(failed("nobody@example.com", day.Add(19*time.Hour+time.Minute+time.Duration(s*20)*time.Second), "203.0.113.98"))
		add(failed("nobody@example.com", day.Add(19*time.Hour+5*time.Minute+time.Duration(s*20)*time.Second), "203.0.113.98"))
	}
	for s := 0; s < 3; s++ {
		add(failed("nobody@example.com", day.Add(20*time.Hour+3*time.Minute+time.Duration(s*20)*time.Second), "203.0.113.97"))
		add(failed("nobody@example.com", day.Add(20*time.Hour+5*time.Minute+time.Duration(s*20)*time.Second), "203.0.113.97"))
	}
	// Typos at a shared NAT across a run boundary: u06 and u07 each fail
	// once or twice and then log in (outside their lists): no guess.
	add(failed("u06@example.com", day.Add(21*time.Hour+3*time.Minute), "198.51.100.50"))
	add(failed("u07@example.com", day.Add(21*time.Hour+4*time.Minute), "198.51.100.50"))
	add(failed("u06@example.com", day.Add(21*time.Hour+4*time.Minute+30*time.Second), "198.51.100.50"))
	planted["typo u06"] = add(ok("u06", day.Add(21*time.Hour+5*time.Minute+10*time.Second), "198.51.100.50", "Germany", "Berlin"))
	planted["typo u07"] = add(ok("u07", day.Add(21*time.Hour+6*time.Minute), "198.51.100.50", "Germany", "Berlin"))
	sort.SliceStable(evs, func(i, j int) bool {
		if !evs[i].Date.Equal(evs[j].Date) {
			return evs[i].Date.After(evs[j].Date)
		}
		return evs[i].ID > evs[j].ID
	})
	return evs, users, planted, victims
}

// findingKey is what the comparison holds equal: kind, user, the event
// that names the finding (a burst: its address and first event), severity.
type findingKey struct {
	Kind, User string
	Event      int64
	IP         string
	Severity   string
	Reasons    string // the kinds of its reasons
}

// outcome reduces the published findings to one per login (or spray,
// or burst): the last word on a login is its highest severity (a login
// first alerted at its own kind and raised later is the raised one).
func outcome(fs []audit.Finding) map[string]findingKey {
	out := map[string]findingKey{}
	for _, f := range fs {
		k := findingKey{Kind: f.Kind, User: f.UserID, Event: f.EventID, Severity: f.Severity}
		for _, r := range f.Reasons {
			k.Reasons += r.Kind + " "
		}
		name := fmt.Sprintf("event %d", f.EventID)
		if f.Kind == audit.KindFailedLoginBurst {
			// A burst is its address (the events listed depend on which
			// run told it: one across runs lists the telling run's).
			k.IP, k.Event = f.IP, 0
			name = "burst " + f.IP
		}
		if have, ok := out[name]; ok && audit.SeverityRank(have.Severity) >= audit.SeverityRank(k.Severity) {
			continue
		}
		out[name] = k
	}
	return out
}

// stores are the audit's stores for one audit of the day.
type stores struct {
	audit     audit.Store
	leases    lease.Backend
	baselines behaviour.Store
	windows   behaviour.WindowStore
}

// #21 §3: the same logins give the same findings whether they are audited
// by 288 five-minute runs or by one backfill of the day, through the audit
// service with its stores: the shared fakes (contract-tested against
// DynamoDB), and DynamoDB itself (moto). The day holds a spray slower than
// a run, a guess split across runs, travel across runs, a morning typo
// that is no guess, and a burst.
func TestADayGivesTheSameFindingsInRunsAndInOneBackfill(t *testing.T) {
	day := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	_, users, _, _ := dayOfLogins(day)
	// BASELINE_MIN_LOGINS 5: users of the day stop learning within it (a
	// backfill reads it newest first; their logins wait for its last piece).
	for _, minLogins := range []int{5, 10} {
		t.Run(fmt.Sprintf("shared fakes, BASELINE_MIN_LOGINS=%d", minLogins), func(t *testing.T) {
			auditDayBothWays(t, minLogins, func(t *testing.T) stores {
				st := audittest.NewStore(users...)
				return stores{audit: st, leases: st, baselines: behaviourtest.NewBaselines(), windows: windowtest.New()}
			})
		})
	}
	t.Run("DynamoDB (moto)", func(t *testing.T) {
		auditDayBothWays(t, 5, dynamoStores(t, "day", users))
	})
}

// dynamoStores makes, at each call, the stores of one audit of the day in
// a fresh DynamoDB table (moto) named after prefix, holding users.
func dynamoStores(t *testing.T, prefix string, users []ipguard.User) func(t *testing.T) stores {
	db := dynamodb.NewFromConfig(localaws.MotoConfigT(t))
	n := 0
	return func(t *testing.T) stores {
		n++
		table := fmt.Sprintf("%s-%d", prefix, n)
		localaws.TableT(t, db, table)
		s := dynamo.New(db, table)
		for _, u := range users {
			if err := s.PutUser(context.Background(), u); err != nil {
				t.Fatal(err)
			}
		}
		return stores{audit: s, leases: s, baselines: s, windows: s}
	}
}

// dayService is an audit of the day's logins evs on the stores st, in
// pieces of pieceEvents logins, with the behaviour rules det, on the clock
// *now; what it tells goes to the topic it returns.
func dayService(evs []ipguard.LoginEvent, st stores, pieceEvents int, det *behaviour.Detector, now *time.Time) (*audit.Service, *audittest.Topic) {
	pub := &audittest.Topic{}
	return &audit.Service{Source: audittest.NewSource(evs...), Store: st.audit, Publisher: pub, Leases: st.leases,
		Now: func() time.Time { return *now },
		Settings: audit.Settings{Portal: "https://p", Overlap: 5 * time.Minute, Lookback: 15 * time.Minute, AlertRetention: 48 * time.Hour,
			Policy: audit.Policy{UnknownUsers: audit.UnknownAlert, FailedLoginThreshold: 5}, PieceEvents: pieceEvents, GuessWindow: 15 * time.Minute},
		Behaviour: det}, pub
}

// bothWays audits the day from day on with two services newService makes:
// by 288 five-minute runs, then by one backfill of the day. It returns the
// findings each told and the backfill's result.
func bothWays(t *testing.T, day time.Time, newService func(now *time.Time) (*audit.Service, *audittest.Topic)) (runs, back []audit.Finding, res audit.Result) {
	t.Helper()
	ctx := context.Background()
	var now time.Time
	runSvc, runsPub := newService(&now)
	for k := 1; k <= 288; k++ {
		to := day.Add(time.Duration(k) * 5 * time.Minute)
		now = to.Add(30 * time.Second)
		res, err := runSvc.Run(ctx, audit.Trigger{To: to})
		if err != nil || !res.Complete {
			t.Fatalf("run %d: %+v, %v", k, res, err)
		}
	}
	var bnow time.Time
	backSvc, backPub := newService(&bnow)
	bnow = day.Add(25 * time.Hour)
	res, err := backSvc.Run(ctx, audit.Trigger{From: day, To: day.Add(24 * time.Hour), Backfill: true})
	if err != nil || !res.Complete {
		t.Fatalf("backfill: %+v, %v", res, err)
	}
	return messaged(t, runsPub), messaged(t, backPub), res
}

// sameBothWays reports every finding the runs (got) and the backfill
// (want) do not agree on.
func sameBothWays[K comparable](t *testing.T, got, want map[string]K) {
	t.Helper()
	for name, w := range want {
		if g, ok := got[name]; !ok || g != w {
			t.Errorf("%s: runs found %+v, the backfill %+v", name, g, w)
		}
	}
	for name, g := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("%s: runs found %+v, the backfill nothing", name, g)
		}
	}
}

func auditDayBothWays(t *testing.T, minLogins int, newStores func(t *testing.T) stores) {
	day := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	evs, _, planted, victims := dayOfLogins(day)
	newService := func(now *time.Time) (*audit.Service, *audittest.Topic) {
		st := newStores(t)
		return dayService(evs, st, 40, &behaviour.Detector{Store: st.baselines, Windows: st.windows,
			Settings: behaviour.Settings{SprayWindow: 30 * time.Minute, MinLogins: minLogins}}, now)
	}
	runsTold, backTold, _ := bothWays(t, day, newService)
	got, want := outcome(runsTold), outcome(backTold)
	sameBothWays(t, got, want)
	// The planted cases are there, as what they are.
	for kind, id := range planted {
		if strings.HasPrefix(kind, "typo ") {
			if g := got[fmt.Sprintf("event %d", id)]; g.Kind != audit.KindIPNotAllowed {
				t.Errorf("%s at a shared NAT (event %d): found %+v; want ip_not_allowed, no guess", kind, id, g)
			}
			continue
		}
		g := got[fmt.Sprintf("event %d", id)]
		if g.Kind != kind && !strings.Contains(g.Reasons, kind) {
			t.Errorf("planted %s (event %d): found %+v", kind, id, g)
		}
	}
	if g := got[fmt.Sprintf("event %d", planted["ip_not_allowed"])]; g.Kind != audit.KindIPNotAllowed || g.Severity != audit.SeverityHigh {
		t.Errorf("the morning typo made the afternoon login %+v; want ip_not_allowed, high (GUESS_WINDOW is 15 minutes)", g)
	}
	bursts, sprays := 0, 0
	for name, g := range got {
		if strings.HasPrefix(name, "burst ") {
			bursts++
		}
		if g.Kind == behaviour.RulePasswordSpray {
			sprays++
			if !victims[g.Event] {
				t.Errorf("a spray named by event %d, not one of the planted spray's", g.Event)
			}
		}
	}
	if bursts != 3 || sprays != 1 {
		t.Errorf("%d bursts, %d sprays; want the three bursts and the one spray planted", bursts, sprays)
	}
	// The burst over two runs is told once by the runs.
	told := 0
	for _, f := range runsTold {
		if f.Kind == audit.KindFailedLoginBurst && f.IP == "203.0.113.98" {
			told++
		}
	}
	if told != 1 {
		t.Errorf("the burst over two runs was told %d times by the runs; want once", told)
	}
	if t.Failed() {
		t.Logf("runs: %+v", got)
		t.Logf("backfill: %+v", want)
	}
}

// learnedDay is a day of users who HAVE a baseline (learned before the
// day), whose findings depend on the order their logins are judged in:
//   - lee: a new country (Spain) seen twice, from outside the allowlist,
//     hours apart; in time order the older login is "new", the newer not;
//   - lee: a new device (Safari on macOS) seen twice: the same;
//   - kim: last seen in New York just before the day, then twice in
//     Berlin: in time order only the older Berlin login is impossible
//     travel (the newer one's predecessor is the older, in Berlin);
//   - lee: two misses from one network (ALERT_MODE=grouped: episodes,
//     familiar places and probable trips are told in time order too);
//
// and filler users logging in at home between them, so that a backfill in
// small pieces reads each case's two logins in different pieces.
func learnedDay(day time.Time) (evs []ipguard.LoginEvent, users []ipguard.User, baselines []behaviour.Baseline, planted map[string][2]int64) {
	id := int64(5000)
	add := func(user string, at time.Time, ip, country, city, browser, platform string) int64 {
		id++
		evs = append(evs, ipguard.LoginEvent{ID: id, UserID: user, User: user, Login: user + "@example.com", ActionID: 1010, Action: "Login",
			Date: at, IP: ip, Country: country, City: city, Browser: browser, Platform: platform, Raw: []byte(fmt.Sprintf(`{"id":%d}`, id))})
		return id
	}
	const ff, win = "Firefox 126.0", "Windows 10"
	users = []ipguard.User{
		{ID: "lee", Email: "lee@example.com", Entries: []string{"10.9.1.0/24"}},
		{ID: "kim", Email: "kim@example.com", Entries: []string{"10.9.2.0/24"}},
	}
	// Learned before the day: 12 daily logins from Berlin on Firefox/Windows;
	// kim's last one from New York, just before midnight. The fillers too
	// (else they are learning, and their logins held: more than a run holds).
	for _, u := range []string{"lee", "kim", "f01", "f02", "f03", "f04", "f05", "f06", "f07", "f08"} {
		b := behaviour.Baseline{UserID: u}
		for i := 12; i >= 1; i-- {
			b.Learn(behaviour.Login{EventID: int64(100 + i), UserID: u, At: day.Add(-time.Duration(i) * 24 * time.Hour), IP: "10.9.9.9", Whole: true,
				Country: "Germany", City: "Berlin", Browser: ff, Platform: win})
		}
		if u == "kim" {
			b.Learn(behaviour.Login{EventID: 99, UserID: u, At: day.Add(-time.Hour), IP: "198.51.100.200", Whole: true,
				Country: "United States", City: "New York", Browser: ff, Platform: win})
		}
		baselines = append(baselines, b)
	}
	planted = map[string][2]int64{}
	at := func(h, m int) time.Time { return day.Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute) }
	add("lee", at(1, 0), "10.9.1.5", "Germany", "Berlin", ff, win)
	planted["new_country"] = [2]int64{
		add("lee", at(9, 10), "198.51.100.20", "Spain", "Madrid", ff, win),
		add("lee", at(17, 0), "198.51.100.21", "Spain", "Madrid", ff, win),
	}
	add("lee", at(23, 0), "10.9.1.5", "Germany", "Berlin", ff, win)
	planted["new_device"] = [2]int64{
		add("lee", at(11, 0), "198.51.100.22", "Spain", "Madrid", "Safari 17", "macOS"),
		add("lee", at(21, 0), "10.9.1.6", "Germany", "Berlin", "Safari 17", "macOS"),
	}
	// Two misses from one network outside the allowlist, in Berlin on
	// lee's own device (ALERT_MODE=grouped: how each is told depends on
	// the episode and the places learned before it, in time order).
	planted["episode"] = [2]int64{
		add("lee", at(13, 0), "203.0.113.40", "Germany", "Berlin", ff, win),
		add("lee", at(15, 0), "203.0.113.41", "Germany", "Berlin", ff, win),
	}
	planted["impossible_travel"] = [2]int64{
		add("kim", at(0, 30), "10.9.2.5", "Germany", "Berlin", ff, win),
		add("kim", at(3, 0), "10.9.2.5", "Germany", "Berlin", ff, win),
	}
	// Fillers: 8 users at home every 5 minutes, so that every two
	// planted logins are many pieces apart (nothing of theirs is found).
	for i := 1; i <= 8; i++ {
		u := fmt.Sprintf("f%02d", i)
		users = append(users, ipguard.User{ID: u, Email: u + "@example.com", Entries: []string{fmt.Sprintf("10.8.%d.0/24", i)}})
		for m := 0; m < 24*60; m += 5 {
			add(u, day.Add(time.Duration(m)*time.Minute+time.Duration(i)*20*time.Second), fmt.Sprintf("10.8.%d.1", i), "Germany", "Berlin", ff, win)
		}
	}
	sort.SliceStable(evs, func(i, j int) bool {
		if !evs[i].Date.Equal(evs[j].Date) {
			return evs[i].Date.After(evs[j].Date)
		}
		return evs[i].ID > evs[j].ID
	})
	return evs, users, baselines, planted
}

// #21 §3 for users who already have a baseline: a country or a device first
// seen twice inside the audited day is new at the OLDER login, and travel
// compares each login with its true predecessor, whether the day is
// audited by 288 five-minute runs or by one backfill read newest first in
// many pieces. Before, the backfill judged a newer piece's logins before
// the older ones of its window: "new" at the newer login, and kim's newer
// Berlin login compared with New York.
func TestALearnedUsersDayGivesTheSameFindingsInRunsAndInOneBackfill(t *testing.T) {
	day := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	_, users, baselines, _ := learnedDay(day)
	seed := func(t *testing.T, st stores) {
		if err := st.baselines.SaveBaselines(context.Background(), baselines); err != nil {
			t.Fatal(err)
		}
	}
	for _, grouped := range []bool{false, true} {
		t.Run(fmt.Sprintf("shared fakes, grouped %v", grouped), func(t *testing.T) {
			auditLearnedDayBothWays(t, grouped, func(t *testing.T) stores {
				st := audittest.NewStore(users...)
				s := stores{audit: st, leases: st, baselines: behaviourtest.NewBaselines(), windows: windowtest.New()}
				seed(t, s)
				return s
			})
		})
	}
	t.Run("DynamoDB (moto), grouped", func(t *testing.T) {
		fresh := dynamoStores(t, "learned-day", users)
		auditLearnedDayBothWays(t, true, func(t *testing.T) stores {
			st := fresh(t)
			seed(t, st)
			return st
		})
	})
}

func auditLearnedDayBothWays(t *testing.T, grouped bool, newStores func(t *testing.T) stores) {
	day := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	evs, _, _, planted := learnedDay(day)
	newService := func(now *time.Time) (*audit.Service, *audittest.Topic) {
		st := newStores(t)
		// Low findings (new_device) are published for the digest, so the
		// comparison sees them.
		return dayService(evs, st, 12, &behaviour.Detector{Store: st.baselines, Windows: st.windows, EpisodeStore: episodes(st),
			Settings: behaviour.Settings{SprayWindow: 30 * time.Minute, Digest: []string{audit.SeverityLow}, Grouped: grouped}}, now)
	}
	runsTold, backTold, res := bothWays(t, day, newService)
	// The fillers' logins (held without a reason) pass the bound of held
	// logins many times: they are judged first, and nothing is judged out
	// of order (no warning).
	for _, w := range res.Warnings {
		if strings.Contains(w, "judged at once") {
			t.Errorf("backfill warning %q; want the fillers judged first, nothing else at once", w)
		}
	}
	if res.EventsScanned < 10*12 {
		t.Fatalf("the backfill scanned %d events; want the whole day, in many pieces of 12", res.EventsScanned)
	}

	got, want := outcomeTold(runsTold), outcomeTold(backTold)
	sameBothWays(t, got, want)
	// In time order: the reason is on the older login of each pair, not on the newer.
	for kind, pair := range planted {
		if kind == "episode" {
			older, newer := got[fmt.Sprintf("event %d", pair[0])], got[fmt.Sprintf("event %d", pair[1])]
			if older.Kind != audit.KindIPNotAllowed || newer.Kind != audit.KindIPNotAllowed {
				t.Errorf("the two misses from one network: %+v, then %+v; want both ip_not_allowed (told alike both ways)", older, newer)
			}
			continue
		}
		older, newer := got[fmt.Sprintf("event %d", pair[0])], got[fmt.Sprintf("event %d", pair[1])]
		if older.Kind != kind && !containsWord(older.Reasons, kind) {
			t.Errorf("%s: the older login (event %d) was found %+v; want %s among its reasons", kind, pair[0], older, kind)
		}
		if newer.Kind == kind || containsWord(newer.Reasons, kind) {
			t.Errorf("%s: the newer login (event %d) was found %+v; want no %s (the older login had it first)", kind, pair[1], newer, kind)
		}
	}
	if t.Failed() {
		t.Logf("runs: %+v", got)
		t.Logf("backfill: %+v", want)
	}
}

func containsWord(s, w string) bool { return slices.Contains(strings.Fields(s), w) }

// episodes is the episode store of st: the DynamoDB store's own, else the
// shared fake.
func episodes(st stores) behaviour.EpisodeStore {
	if e, ok := st.baselines.(behaviour.EpisodeStore); ok {
		return e
	}
	return behaviourtest.NewEpisodes()
}

// toldKey is findingKey with how the finding is told: to the digest only,
// or a message.
type toldKey struct {
	findingKey
	Digest bool
}

// outcomeTold is outcome with how each finding was told.
func outcomeTold(fs []audit.Finding) map[string]toldKey {
	digest := map[int64]bool{}
	for _, f := range fs {
		digest[f.EventID] = f.Digest
	}
	out := map[string]toldKey{}
	for name, k := range outcome(fs) {
		out[name] = toldKey{findingKey: k, Digest: digest[k.Event]}
	}
	return out
}
