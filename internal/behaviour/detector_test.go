package behaviour

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"ipguard/internal/audit"
	"ipguard/internal/ipguard"
)

type memStore struct {
	items  map[string]Baseline
	reads  int
	writes int
}

func newMemStore() *memStore { return &memStore{items: map[string]Baseline{}} }

func (m *memStore) Baselines(_ context.Context, ids []string) (map[string]Baseline, error) {
	m.reads++
	out := map[string]Baseline{}
	for _, id := range ids {
		if b, ok := m.items[id]; ok {
			out[id] = b
		}
	}
	return out, nil
}

func (m *memStore) SaveBaselines(_ context.Context, bs []Baseline) error {
	for _, b := range bs {
		m.writes++
		m.items[b.UserID] = b
	}
	return nil
}

func success(id int64, user string, d time.Duration, ip, country, city string) ipguard.LoginEvent {
	return ipguard.LoginEvent{ID: id, UserID: user, User: user, Login: user + "@example.com", ActionID: 1010, Action: "Login Success", Date: t0.Add(d),
		IP: ip, Country: country, City: city, Browser: "Firefox 126.0", Platform: "Windows 10"}
}

func failed(id int64, login string, d time.Duration, ip string) ipguard.LoginEvent {
	return ipguard.LoginEvent{ID: id, Login: login, ActionID: 1002, Action: "Login Fail", Date: t0.Add(d), IP: ip}
}

func piece(evs ...ipguard.LoginEvent) audit.Piece {
	return audit.Piece{Events: evs, Final: true, Done: t0.Add(-time.Hour), Declared: func(ev ipguard.LoginEvent) bool { return ev.IP == "203.0.113.10" }}
}

func judge(t *testing.T, d *Detector, p audit.Piece, fs ...audit.Finding) []audit.Finding {
	t.Helper()
	out, err := d.Judge(context.Background(), p, fs)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Settle(context.Background()); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestDetectorMergesIntoTheLoginsFindingAndAddsOthers(t *testing.T) {
	st := newMemStore()
	d := &Detector{Store: st}
	// alice: Berlin, then São Paulo 40 minutes later from outside her allowlist.
	// bob: Berlin, then New York 1 hour later from his own entry: a declared
	// login is a place and a time too (#21 §4), so travel is found.
	// carol: Berlin, then New York 1 hour later from an allowed address: a new finding.
	evs := []ipguard.LoginEvent{
		success(1, "alice", 0, "198.51.100.7", "Germany", "Berlin"), success(2, "alice", 40*time.Minute, "198.51.100.8", "Brazil", "São Paulo"),
		success(3, "bob", 0, "198.51.100.9", "Germany", "Berlin"), success(4, "bob", time.Hour, "203.0.113.10", "United States", "New York"),
		success(5, "carol", 0, "198.51.100.9", "Germany", "Berlin"), success(6, "carol", time.Hour, "198.51.100.11", "United States", "New York"),
	}
	allow := audit.Finding{EventID: 2, UserID: "alice", Kind: audit.KindIPNotAllowed, Severity: audit.SeverityHigh, Reason: "outside the allowlist"}
	fs := judge(t, d, piece(evs...), allow)
	if len(fs) != 3 {
		t.Fatalf("findings %+v", fs)
	}
	if b := fs[1]; b.EventID != 4 || b.Kind != audit.KindImpossibleTravel || !strings.Contains(b.Reasons[0].Text, "through one of the user's own allowlist entries") {
		t.Errorf("bob %+v", b)
	}
	fs = append(fs[:1], fs[2:]...)
	a := fs[0]
	if a.Kind != audit.KindIPNotAllowed || a.Severity != audit.SeverityHigh || len(a.Reasons) != 2 || a.Reasons[0].Kind != audit.KindIPNotAllowed ||
		a.Reasons[1].Kind != audit.KindImpossibleTravel || a.NotMessaged {
		t.Errorf("alice %+v", a)
	}
	c := fs[1]
	// Reason is shown unescaped: our text only; the portal's place names are in Reasons and Explanation.
	if c.EventID != 6 || c.Kind != audit.KindImpossibleTravel || c.Severity != audit.SeverityHigh || !strings.Contains(c.Explanation, "New York") ||
		c.Reason != "successful login unlike the user's normal: impossible_travel" {
		t.Errorf("carol %+v", c)
	}
	if st.reads != 1 || st.writes != 3 {
		t.Errorf("store reads %d writes %d: want one batched read and one write per changed baseline", st.reads, st.writes)
	}
	// The overlap reads the same logins again: nothing new, nothing written.
	fs = judge(t, d, piece(evs...))
	if len(fs) != 0 || st.writes != 3 {
		t.Errorf("re-read: findings %+v writes %d", fs, st.writes)
	}
}

func TestDetectorLowSeverityIsNotMessagedButKept(t *testing.T) {
	st := newMemStore()
	b := learned()
	b.UserID = "dave"
	st.items["dave"] = *b
	ev := success(1, "dave", 0, "198.51.100.7", "Germany", "Berlin")
	ev.Browser = "Edge 120"
	for _, c := range []struct {
		min    string
		digest []string
		quiet  bool
	}{{"", nil, true}, {audit.SeverityMedium, nil, true}, {audit.SeverityLow, nil, false},
		{"", []string{audit.SeverityLow}, false}, // published: the digest holds it back from the topic
		{audit.SeverityHigh, []string{audit.SeverityMedium}, true}} {
		d := &Detector{Store: st, Settings: Settings{MinSeverity: c.min, Digest: c.digest}}
		fs, _ := d.Judge(context.Background(), piece(ev), nil)
		if len(fs) != 1 || fs[0].Kind != audit.KindNewDevice || fs[0].Severity != audit.SeverityLow || fs[0].NotMessaged != c.quiet {
			t.Errorf("min %q: %+v", c.min, fs)
		}
	}
}

func TestDetectorLearningPeriodAndPiecesNewestFirst(t *testing.T) {
	st := newMemStore()
	d := &Detector{Store: st}
	// A new user: 3 logins from Germany, then one from Brazil a day later: still learning.
	var evs []ipguard.LoginEvent
	for i := 0; i < 3; i++ {
		evs = append(evs, success(int64(i+1), "erin", time.Duration(i)*time.Hour, "198.51.100.7", "Germany", "Berlin"))
	}
	evs = append(evs, success(9, "erin", 27*time.Hour, "198.51.100.8", "Brazil", "São Paulo"))
	if fs := judge(t, d, piece(evs...)); len(fs) != 0 {
		t.Errorf("learning user raised %+v", fs)
	}
	// Two pieces of one run, newest first: New York at 40h, then (older) Berlin at 39h.
	p1 := audit.Piece{Events: []ipguard.LoginEvent{success(11, "erin", 40*time.Hour, "198.51.100.9", "United States", "New York")}, Done: t0.Add(39*time.Hour + 30*time.Minute)}
	p2 := audit.Piece{Events: []ipguard.LoginEvent{success(10, "erin", 39*time.Hour, "198.51.100.7", "Germany", "Berlin")}, Done: t0.Add(38 * time.Hour), Final: true}
	fs1 := judge(t, d, p1)
	fs2 := judge(t, d, p2)
	// New York at 40h, read first, follows São Paulo (27h) as far as the
	// first piece knows: possible. Berlin at 39h follows São Paulo too:
	// possible; but it is New York's true predecessor, and Berlin at 39h
	// then New York at 40h is impossible: judged in time order whatever the
	// pieces (#21 §3), the pair is found when the older piece is read.
	if len(fs1) != 0 || len(fs2) != 1 || fs2[0].EventID != 11 || fs2[0].Kind != audit.KindImpossibleTravel {
		t.Errorf("pieces: %+v %+v; want impossible_travel on New York (11) with the older piece", fs1, fs2)
	}
	// erin was still learning when the run met her: her logins were held
	// for the run's last piece and learned in time order (both counted);
	// the last login never moves backwards.
	if got := st.items["erin"]; got.Last.EventID != 11 || got.Logins != 6 {
		t.Errorf("last login moved backwards or logins miscounted: %+v logins %d", got.Last, got.Logins)
	}
}

func TestPasswordSpray(t *testing.T) {
	spray := func(accounts int, spread time.Duration, ips int) []ipguard.LoginEvent {
		var evs []ipguard.LoginEvent
		for i := 0; i < accounts; i++ {
			at := time.Duration(0)
			if accounts > 1 {
				at = spread * time.Duration(i) / time.Duration(accounts-1)
			}
			evs = append(evs, failed(int64(100+i), fmt.Sprintf("user%d@example.com", i), at, fmt.Sprintf("192.0.2.%d", 1+i%ips)))
		}
		return evs
	}
	declaredFails := spray(10, 10*time.Minute, 1)
	for i := range declaredFails {
		declaredFails[i].IP = "203.0.113.10" // each account's own entry: forgotten passwords
	}
	withSuccess := append(spray(10, 10*time.Minute, 1), success(200, "u3", 20*time.Minute, "192.0.2.1", "Germany", "Berlin"))
	withSuccess[len(withSuccess)-1].Login = "user3@example.com"
	for _, c := range []struct {
		name string
		evs  []ipguard.LoginEvent
		min  int
		want string
	}{
		{"10 accounts from one address in 10 minutes", spray(10, 10*time.Minute, 1), 0, "high"},
		{"10 accounts from 10 addresses, one attempt each", spray(10, 20*time.Minute, 10), 0, "high"},
		{"9 accounts: below the threshold", spray(9, 10*time.Minute, 1), 0, ""},
		{"10 accounts over 2 hours: slower than the window", spray(10, 2*time.Hour, 10), 0, ""},
		{"SPRAY_MIN_ACCOUNTS 5", spray(5, 10*time.Minute, 1), 5, "high"},
		{"failures from the accounts' own entries do not count", declaredFails, 0, ""},
		{"an account that then logged in makes it critical", withSuccess, 0, "critical"},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := &Detector{Store: newMemStore(), Settings: Settings{SprayMinAccounts: c.min}}
			fs := judge(t, d, piece(c.evs...))
			got := ""
			for _, f := range fs {
				if f.Kind == audit.KindPasswordSpray {
					got = f.Severity
					if len(f.Logins) == 0 || len(f.IPs) == 0 || f.Addresses != len(f.IPs) || f.EventID == 0 {
						t.Errorf("spray finding lacks accounts, addresses or id: %+v", f)
					}
				}
			}
			if got != c.want {
				t.Errorf("spray severity %q, want %q (%+v)", got, c.want, fs)
			}
		})
	}
}

// A spray read over two pieces (newest first) is one finding.
func TestPasswordSprayAcrossPieces(t *testing.T) {
	d := &Detector{Store: newMemStore()}
	var newer, older []ipguard.LoginEvent
	for i := 0; i < 10; i++ {
		ev := failed(int64(100+i), fmt.Sprintf("user%d@example.com", i), time.Duration(i)*time.Minute, "192.0.2.1")
		if i >= 5 {
			newer = append(newer, ev)
		} else {
			older = append(older, ev)
		}
	}
	fs1 := judge(t, d, audit.Piece{Events: newer, Done: t0.Add(4*time.Minute + 30*time.Second)})
	fs2 := judge(t, d, audit.Piece{Events: older, Done: t0.Add(-time.Hour), Final: true})
	if len(fs1) != 0 || len(fs2) != 1 || fs2[0].Count != 10 {
		t.Errorf("pieces: %+v / %+v", fs1, fs2)
	}
}

func TestPlaces(t *testing.T) {
	for _, c := range []struct {
		country, city string
		code          string
		radius        float64
	}{
		{"Germany", "Berlin", "DE", CityRadiusKm},
		{"United Kingdom", "London", "GB", CityRadiusKm},
		{"Brazil", "São Paulo", "BR", CityRadiusKm},
		{"United States", "New York", "US", CityRadiusKm},
		{"Germany", "Bonn", "DE", CountryRadiusKm},
		{"DE", "", "DE", CountryRadiusKm},
		{"Côte d'Ivoire", "", "CI", CountryRadiusKm},
		{"South Korea", "Seoul", "KR", CityRadiusKm},
		{"", "", "", 0},
		{"Atlantis", "", "", 0},
	} {
		p := Locate(c.country, c.city)
		if p.Code != c.code || p.Radius != c.radius {
			t.Errorf("Locate(%q, %q) = %s r %v, want %s r %v", c.country, c.city, p.Code, p.Radius, c.code, c.radius)
		}
	}
	least, about := Apart(Locate("Germany", "Berlin"), Locate("United States", "New York"))
	if about < 6300 || about > 6500 || least != about-2*CityRadiusKm {
		t.Errorf("Berlin–New York %v (least %v)", about, least)
	}
	if least, _ := Apart(Locate("Germany", ""), Locate("France", "")); least != 0 {
		t.Errorf("neighbouring countries should be too close to judge, least %v", least)
	}
}

// A run whose alerts failed (judged, never settled) saves nothing: the next
// run reads the same logins and finds them again. A run stopped at its
// deadline after settling a piece keeps what that piece learned.
func TestDetectorSavesOnlyWhatWasSent(t *testing.T) {
	st := newMemStore()
	b := learned()
	b.UserID = "alice"
	st.items["alice"] = *b
	d := &Detector{Store: st}
	brazil := success(50, "alice", 0, "198.51.100.8", "Brazil", "São Paulo")
	// Run 1: its only piece is judged, then publishing fails (no Settle).
	fs, err := d.Judge(context.Background(), audit.Piece{Events: []ipguard.LoginEvent{brazil}, Done: t0.Add(-time.Hour), Final: true}, nil)
	if err != nil || len(fs) != 1 {
		t.Fatalf("run 1: %+v %v", fs, err)
	}
	// Run 2 reads it again: the same finding, and now it is sent.
	fs = judge(t, d, audit.Piece{Events: []ipguard.LoginEvent{brazil}, Done: t0.Add(-time.Hour), Final: true})
	if len(fs) != 1 || fs[0].Kind != audit.KindNewCountry {
		t.Fatalf("run 2 lost the finding: %+v", fs)
	}
	// Run 3 stops at its deadline after one settled piece (not final) ...
	japan := success(60, "alice", time.Hour, "198.51.100.9", "Japan", "Tokyo")
	judge(t, d, audit.Piece{Events: []ipguard.LoginEvent{japan}, Done: t0.Add(30 * time.Minute)})
	if got := st.items["alice"]; got.HasCountry("JP") {
		t.Fatal("a non-final piece wrote its baselines at once")
	}
	// ... and the next run saves what that piece learned before it starts.
	judge(t, d, audit.Piece{Events: nil, Done: t0.Add(2 * time.Hour), Final: true})
	if got := st.items["alice"]; !got.HasCountry("JP") {
		t.Error("what the settled piece learned was lost")
	}
}

// BenchmarkDetector100kEvents is the behaviour's own CPU cost on 100,000
// events (1,000 users, 10 countries, 4 devices, 1 % failed logins) in
// pieces of 2,000, against an in-memory store: what the rules add to an
// audit, without the walk.
func BenchmarkDetector100kEvents(b *testing.B) {
	countries := [][2]string{{"Germany", "Berlin"}, {"France", "Paris"}, {"United States", "New York"}, {"Brazil", "São Paulo"}, {"Japan", "Tokyo"},
		{"India", "Kolkata"}, {"Australia", "Sydney"}, {"United Kingdom", "London"}, {"Spain", "Madrid"}, {"Italy", "Rome"}}
	browsers := [][2]string{{"Firefox 126.0", "Windows 10"}, {"Chrome 125.0", "Mac OS X 10.15"}, {"Safari 17.4", "iOS 17.4"}, {"Edge 120", "Windows 11"}}
	evs := make([]ipguard.LoginEvent, 100_000)
	for i := range evs {
		u := i % 1000
		c := countries[(u+i/50_000)%len(countries)]
		br := browsers[(u+i/30_000)%len(browsers)]
		evs[i] = ipguard.LoginEvent{ID: int64(len(evs) - i), Date: t0.Add(-time.Duration(i) * time.Second), UserID: fmt.Sprintf("user-%04d", u),
			Login: fmt.Sprintf("user%04d@example.com", u), ActionID: 1010, IP: fmt.Sprintf("198.51.%d.%d", u/250, u%250), Country: c[0], City: c[1], Browser: br[0], Platform: br[1]}
		if i%100 == 0 {
			evs[i].ActionID, evs[i].IP = 1002, fmt.Sprintf("192.0.2.%d", i%200)
		}
	}
	for b.Loop() {
		d := &Detector{Store: newMemStore()}
		for p := 0; p < len(evs); p += 2000 {
			final := p+2000 >= len(evs)
			piece := audit.Piece{Events: evs[p : p+2000], Done: evs[p+1999].Date.Add(-time.Second), Final: final, Declared: func(ipguard.LoginEvent) bool { return false }}
			if _, err := d.Judge(context.Background(), piece, nil); err != nil {
				b.Fatal(err)
			}
			if err := d.Settle(context.Background()); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// Logins from whole addresses without a country say the portal has no
// GeoIP data; cut IPv6 addresses do not count either way.
func TestDetectorNoticesNoGeoIP(t *testing.T) {
	d := &Detector{Store: newMemStore()}
	var evs []ipguard.LoginEvent
	for i := 0; i < 12; i++ {
		evs = append(evs, success(int64(i+1), "gina", time.Duration(i)*time.Minute, "198.51.100.7", "", ""))
		evs = append(evs, success(int64(i+100), "gina", time.Duration(i)*time.Minute+time.Second, "2001", "Germany", "Berlin"))
	}
	if fs := judge(t, d, piece(evs...)); len(fs) != 0 || !d.Geo().NoGeoIP() {
		t.Errorf("findings %+v, geo %+v", fs, d.Geo())
	}
	judge(t, d, piece(success(500, "gina", time.Hour, "198.51.100.7", "Germany", "Berlin")))
	if d.Geo().NoGeoIP() {
		t.Error("one login with a country means the portal has GeoIP data")
	}
}

// A backlog read newest first over several pieces judges each login as in
// time order: an older login is not "new" because a newer one was learned
// first, nor because the learning period ended on logins after it.
func TestDetectorBacklogInPiecesNewestFirst(t *testing.T) {
	var newer, older []ipguard.LoginEvent
	for i := 0; i < 12; i++ {
		newer = append(newer, success(int64(100+i), "hank", time.Duration(100+i)*time.Hour, "198.51.100.7", "Spain", "Madrid"))
		older = append(older, success(int64(1+i), "hank", time.Duration(i)*time.Hour, "198.51.100.7", "Germany", "Berlin"))
	}
	run := func(st *memStore) []audit.Finding {
		d := &Detector{Store: st}
		fs := judge(t, d, audit.Piece{Events: newer, Done: t0.Add(99 * time.Hour)})
		return append(fs, judge(t, d, audit.Piece{Events: older, Done: t0.Add(-time.Hour), Final: true})...)
	}
	// A new user: the 12 older logins from Berlin end the learning period
	// before the first from Madrid, as in time order (the newer piece,
	// read first, is held for the run's last piece).
	if fs := run(newMemStore()); len(fs) != 1 || fs[0].EventID != 100 || fs[0].Kind != audit.KindNewCountry {
		t.Errorf("a new user's backlog: want one new_country for the first login from Spain, as in time order, got %+v", fs)
	}
	st := newMemStore()
	b := learned() // Germany, before the backlog
	b.UserID = "hank"
	st.items["hank"] = *b
	fs := run(st)
	if len(fs) != 1 || fs[0].EventID != 100 || fs[0].Kind != audit.KindNewCountry {
		t.Errorf("want one new_country for the first login from Spain, got %+v", fs)
	}
}

// A spray's alert lists the accounts, the addresses and its events.
func TestPasswordSprayAlertText(t *testing.T) {
	var evs []ipguard.LoginEvent
	for i := 0; i < 12; i++ {
		evs = append(evs, failed(int64(100+i), fmt.Sprintf("user%d@example.com", i), time.Duration(i)*time.Minute, fmt.Sprintf("192.0.2.%d", 1+i%3)))
	}
	fs := judge(t, &Detector{Store: newMemStore()}, piece(evs...))
	if len(fs) != 1 {
		t.Fatalf("findings %+v", fs)
	}
	batches, err := audit.RenderAlerts(audit.Meta{Portal: "https://p"}, fs, audit.MaxMessageBytes)
	if err != nil || len(batches) != 1 {
		t.Fatalf("%v %d", err, len(batches))
	}
	e := batches[0].Alert.Email
	for _, want := range []string{"12 failed logins against 12 distinct accounts within 30 minutes from 3 addresses (threshold 10 accounts)",
		"Tried: user0@example.com", "Addresses: 192.0.2.1, 192.0.2.2, 192.0.2.3", "Events: 12 failed logins, ids 100", "password spray"} {
		if !strings.Contains(e, want) {
			t.Errorf("e-mail lacks %q:\n%s", want, e)
		}
	}
}
