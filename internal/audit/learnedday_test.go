package audit_test

import (
	"context"
	"fmt"
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
	"ipguard/internal/testbed/localaws"
)

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
		db := dynamodb.NewFromConfig(localaws.MotoConfigT(t))
		n := 0
		auditLearnedDayBothWays(t, true, func(t *testing.T) stores {
			n++
			table := fmt.Sprintf("learned-day-%d", n)
			localaws.TableT(t, db, table)
			s := dynamo.New(db, table)
			for _, u := range users {
				if err := s.PutUser(context.Background(), u); err != nil {
					t.Fatal(err)
				}
			}
			st := stores{audit: s, leases: s, baselines: s, windows: s}
			seed(t, st)
			return st
		})
	})
}

func auditLearnedDayBothWays(t *testing.T, grouped bool, newStores func(t *testing.T) stores) {
	day := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	evs, _, _, planted := learnedDay(day)
	newService := func(now *time.Time) (*audit.Service, *dayPublisher) {
		st := newStores(t)
		pub := &dayPublisher{}
		s := &audit.Service{Source: &daySource{evs: evs}, Store: st.audit, Publisher: pub, Leases: st.leases,
			Now: func() time.Time { return *now },
			Settings: audit.Settings{Portal: "https://p", Overlap: 5 * time.Minute, Lookback: 15 * time.Minute, AlertRetention: 48 * time.Hour,
				Policy: audit.Policy{UnknownUsers: audit.UnknownAlert, FailedLoginThreshold: 5}, PieceEvents: 12, GuessWindow: 15 * time.Minute},
			// Low findings (new_device) are published for the digest, so
			// the comparison sees them.
			Behaviour: &behaviour.Detector{Store: st.baselines, Windows: st.windows, EpisodeStore: episodes(st),
				Settings: behaviour.Settings{SprayWindow: 30 * time.Minute, Digest: []string{audit.SeverityLow}, Grouped: grouped}}}
		return s, pub
	}
	ctx := context.Background()
	var now time.Time
	runs, runsPub := newService(&now)
	for k := 1; k <= 288; k++ {
		to := day.Add(time.Duration(k) * 5 * time.Minute)
		now = to.Add(30 * time.Second)
		if res, err := runs.Run(ctx, audit.Trigger{To: to}); err != nil || !res.Complete {
			t.Fatalf("run %d: %+v, %v", k, res, err)
		}
	}
	var bnow time.Time
	back, backPub := newService(&bnow)
	bnow = day.Add(25 * time.Hour)
	res, err := back.Run(ctx, audit.Trigger{From: day, To: day.Add(24 * time.Hour), Backfill: true})
	if err != nil || !res.Complete {
		t.Fatalf("backfill: %+v, %v", res, err)
	}
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

	got, want := outcomeTold(runsPub.fs), outcomeTold(backPub.fs)
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
