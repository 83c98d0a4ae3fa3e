package behaviour

import (
	"context"
	"errors"
	"fmt"
	"ipguard/internal/audit"
	"ipguard/internal/ipguard"
	"strings"
	"testing"
	"time"
)

// #21 §3: a user's learning status at a login is judged from the logins
// before it, whatever the cut into runs and pieces. ivy has 3 logins from
// Berlin before the audit (BASELINE_MIN_LOGINS 5 here); the audited day
// holds 3 more from Berlin and then two logins that are new only to a
// learned baseline: one from Madrid on her own device (new_country) and,
// outside her allowlist, one from a new laptop in Berlin. Judged one login
// per run, in time order, the sixth login ends her learning; a backfill
// read newest first in pieces, a backlog whose run stops at its deadline
// and is resumed, and one piece must find the same. A user learned before
// the run (ned) and one still learning after it (una) are judged alike too.
func TestLearningStatusDoesNotDependOnHowTheDayIsCut(t *testing.T) {
	settings := Settings{MinLogins: 5}
	const outside = "198.51.100.99"
	day := []ipguard.LoginEvent{
		success(11, "ivy", 1*time.Hour, "198.51.100.7", "Germany", "Berlin"),
		success(21, "ned", 1*time.Hour, "198.51.100.7", "Germany", "Berlin"),
		success(31, "una", 1*time.Hour, "198.51.100.7", "Germany", "Berlin"),
		success(12, "ivy", 2*time.Hour, "198.51.100.7", "Germany", "Berlin"),
		success(13, "ivy", 3*time.Hour, "198.51.100.7", "Germany", "Berlin"),
		success(14, "ivy", 30*time.Hour, "198.51.100.8", "Spain", "Madrid"),
		success(22, "ned", 30*time.Hour, "198.51.100.8", "Spain", "Madrid"),
		success(32, "una", 30*time.Hour, "198.51.100.8", "Spain", "Madrid"),
		success(15, "ivy", 60*time.Hour, outside, "Germany", "Berlin"),
	}
	day[8].Browser, day[8].Platform = "Safari 17", "macOS"
	miss := audit.Finding{EventID: 15, UserID: "ivy", Kind: audit.KindIPNotAllowed, Severity: audit.SeverityHigh, Reason: "outside the allowlist"}
	before := func() *memStore {
		st := newMemStore()
		for user, n := range map[string]int{"ivy": 3, "ned": 12, "una": 1} {
			b := berlinDaily(n, n) // ned learned, ivy and una learning (days too)
			b.UserID = user
			st.items[user] = *b
		}
		return st
	}
	findingsOf := func(evs []ipguard.LoginEvent) []audit.Finding {
		for _, ev := range evs {
			if ev.ID == miss.EventID {
				return []audit.Finding{miss}
			}
		}
		return nil
	}
	newestFirst := func(evs []ipguard.LoginEvent) []ipguard.LoginEvent {
		out := append([]ipguard.LoginEvent(nil), evs...)
		for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
			out[i], out[j] = out[j], out[i]
		}
		return out
	}
	// pieces judges one run's pieces (each oldest first in time, given newest
	// piece first); stop: the run stops after piece stop (Last) and a
	// resumed run judges the rest.
	pieces := func(d *Detector, ps [][]ipguard.LoginEvent, stop int) []audit.Finding {
		var out []audit.Finding
		for i, evs := range ps {
			final := i == len(ps)-1
			p := audit.Piece{Events: newestFirst(evs), Done: evs[0].Date.Add(-time.Second), Final: final, Last: final || i == stop}
			out = append(out, judge(t, d, p, findingsOf(evs)...)...)
		}
		return out
	}
	cuts := map[string]func() []audit.Finding{
		"one run per login": func() []audit.Finding {
			d := &Detector{Store: before(), Settings: settings}
			var out []audit.Finding
			for _, ev := range day {
				out = append(out, pieces(d, [][]ipguard.LoginEvent{{ev}}, -1)...)
			}
			return out
		},
		"one piece": func() []audit.Finding {
			return pieces(&Detector{Store: before(), Settings: settings}, [][]ipguard.LoginEvent{day}, -1)
		},
		"a backfill in pieces, newest first": func() []audit.Finding {
			return pieces(&Detector{Store: before(), Settings: settings}, [][]ipguard.LoginEvent{day[8:], day[5:8], day[3:5], day[:3]}, -1)
		},
		"a backlog in two pieces": func() []audit.Finding {
			return pieces(&Detector{Store: before(), Settings: settings}, [][]ipguard.LoginEvent{day[6:], day[:6]}, -1)
		},
	}
	key := func(fs []audit.Finding) string {
		out := ""
		for _, f := range fs {
			out += fmt.Sprintf("%d %s %s %v|", f.EventID, f.Kind, f.Severity, reasonKinds(f))
		}
		return out
	}
	want := key(sortedByEvent(cuts["one run per login"]()))
	if want != "14 new_country medium [new_country]|15 ip_not_allowed high [ip_not_allowed new_device]|22 new_country medium [new_country]|" {
		t.Fatalf("in time order: %s; want ivy's Madrid login new (her sixth: learned), her Berlin login from outside on a new laptop with new_device, ned's Madrid login new, nothing of una (learning)", want)
	}
	for name, cut := range cuts {
		if got := key(sortedByEvent(cut())); got != want {
			t.Errorf("%s: %s; want %s", name, got, want)
		}
	}
}

func reasonKinds(f audit.Finding) []string {
	var ks []string
	for _, r := range f.Reasons {
		ks = append(ks, r.Kind)
	}
	return ks
}

func sortedByEvent(fs []audit.Finding) []audit.Finding {
	out := append([]audit.Finding(nil), fs...)
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].EventID < out[j-1].EventID; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// The audit never moves its cursor below a held login (audit.Holder): a run
// that stops before its last piece judged them leaves them to be read
// again; a piece after which the run stops (Last) judges them as they stand.
func TestHeldLoginsAreJudgedByTheRunsLastPiece(t *testing.T) {
	st := newMemStore()
	d := &Detector{Store: st, Settings: Settings{MinLogins: 5}}
	newer := success(2, "una", 5*time.Hour, "198.51.100.8", "Spain", "Madrid")
	older := success(1, "una", time.Hour, "198.51.100.7", "Germany", "Berlin")
	miss := audit.Finding{EventID: 2, UserID: "una", Kind: audit.KindIPNotAllowed, Severity: audit.SeverityHigh}
	fs := judge(t, d, audit.Piece{Events: []ipguard.LoginEvent{newer}, Done: t0.Add(4 * time.Hour)}, miss)
	if len(fs) != 0 || !d.Holding().Equal(newer.Date) {
		t.Fatalf("a new user's login in a newer piece: findings %+v, holding %v; want held (the finding with it) until the run's last piece", fs, d.Holding())
	}
	// The run stops after the next piece (its deadline): judged there, as it stands.
	fs = judge(t, d, audit.Piece{Events: []ipguard.LoginEvent{older}, Done: t0, Last: true})
	if len(fs) != 1 || fs[0].EventID != 2 || fs[0].Kind != audit.KindIPNotAllowed || !d.Holding().IsZero() {
		t.Errorf("the run's last piece: %+v, holding %v; want the held login's finding, nothing held", fs, d.Holding())
	}
	// A new run after one that stopped holding logins (it failed): they are
	// above its cursor and read again, not judged from memory.
	d2 := &Detector{Store: newMemStore(), Settings: Settings{MinLogins: 5}}
	judge(t, d2, audit.Piece{Events: []ipguard.LoginEvent{newer}, Done: t0.Add(4 * time.Hour)}, miss)
	fs = judge(t, d2, audit.Piece{Events: []ipguard.LoginEvent{success(3, "una", 9*time.Hour, "198.51.100.7", "Germany", "Berlin")}, Done: t0.Add(8 * time.Hour), Final: true, First: true})
	for _, f := range fs {
		if f.EventID == 2 {
			t.Errorf("a new run judged the login the run before held: %+v", f)
		}
	}
}

// A run that stops at its deadline right after committing a piece gives
// the hook an empty last piece at that piece's Done (audit: the walk
// stopped between two pieces): it is the same run, so the held logins are
// judged there. Before, a Done not below the last one's always started a
// new run: the held logins were dropped and the cursor passed them, so
// their findings were never alerted.
func TestAnEmptyLastPieceAtTheSameDoneReleasesWhatIsHeld(t *testing.T) {
	d, newer, miss := unaLearning()
	if fs := judge(t, d, audit.Piece{Events: []ipguard.LoginEvent{newer}, Done: t0.Add(4 * time.Hour)}, miss); len(fs) != 0 {
		t.Fatalf("a new user's login in a newer piece: %+v; want it held", fs)
	}
	fs := judge(t, d, audit.Piece{Done: t0.Add(4 * time.Hour), Last: true})
	if len(fs) != 1 || fs[0].EventID != 2 || !d.Holding().IsZero() {
		t.Errorf("the run's empty last piece at the same Done: %+v, holding %v; want the held finding, nothing held", fs, d.Holding())
	}
}

// maxHeld bounds the logins held, not the piece: a piece with more than
// maxHeld successful logins (a default piece holds 2,000 events) still
// holds the logins of a user still learning. Before, such a piece judged
// every held login at once, so in a real backlog nothing was ever held and
// learning status depended again on how time was cut into pieces.
func TestABusyPieceStillHoldsALearningUsersLogins(t *testing.T) {
	st := learnedNed()
	d := &Detector{Store: st, Settings: Settings{MinLogins: 5}}
	var evs []ipguard.LoginEvent
	for i := 0; i < maxHeld+100; i++ {
		evs = append(evs, success(int64(100+i), "ned", 5*time.Hour+time.Duration(i)*time.Second, "198.51.100.7", "Germany", "Berlin"))
	}
	una := success(2, "una", 5*time.Hour, "198.51.100.8", "Spain", "Madrid")
	evs = append(evs, una)
	miss := audit.Finding{EventID: 2, UserID: "una", Kind: audit.KindIPNotAllowed, Severity: audit.SeverityHigh}
	fs := judge(t, d, audit.Piece{Events: evs, Done: t0.Add(4 * time.Hour)}, miss)
	for _, f := range fs {
		if f.EventID == 2 {
			t.Fatalf("a piece of %d logins judged a learning user's login at once: %+v; want it held for the run's last piece", len(evs), f)
		}
	}
	if !d.Holding().Equal(una.Date) {
		t.Fatalf("holding %v; want una's login (%v)", d.Holding(), una.Date)
	}
	fs = judge(t, d, audit.Piece{Events: []ipguard.LoginEvent{success(3, "una", time.Hour, "198.51.100.7", "Germany", "Berlin")}, Done: t0, Last: true})
	if len(fs) != 1 || fs[0].EventID != 2 {
		t.Errorf("the run's last piece: %+v; want the held finding", fs)
	}
}

// learnedNed is a store holding ned's learned baseline: twelve days of
// daily logins from Berlin (berlinDaily).
func learnedNed() *memStore {
	st := newMemStore()
	b := berlinDaily(12, 12)
	b.UserID = "ned"
	st.items["ned"] = *b
	return st
}

// A run starts where the audit says (Piece.First), not where piece dates
// suggest. A backlog run judges a newer piece, then an older one with
// ned's first login from Spain (new_country), stops at its deadline margin
// after it, and fails before that piece's alerts are recorded (no Settle). The next run, in the same warm
// process, reads from its saved cursor with a larger first piece whose Done
// is below the failed run's last Done. Before, a Done below the last one
// meant "the same run": the baselines the failed piece had learned stayed
// in memory (Spain known), and the retried login was no longer new: the
// finding was missed. Now the piece is the new run's First: the failed
// run's state is dropped and the baselines are read as they were.
func TestARunAfterAFailedOneInTheSameProcessStartsAnew(t *testing.T) {
	st := learnedNed()
	d := &Detector{Store: st}
	ctx := context.Background()
	home := success(2, "ned", 9*time.Hour, "198.51.100.7", "Germany", "Berlin")
	madrid := success(1, "ned", 5*time.Hour, "198.51.100.8", "Spain", "Madrid")

	// The failed run: two pieces newest first; it stops at its deadline
	// after the second (Last), whose alerts then fail.
	judge(t, d, audit.Piece{Events: []ipguard.LoginEvent{home}, Done: t0.Add(8 * time.Hour), First: true})
	fs, err := d.Judge(ctx, audit.Piece{Events: []ipguard.LoginEvent{madrid}, Done: t0.Add(4 * time.Hour), Last: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(fs) != 1 || fs[0].Kind != RuleNewCountry {
		t.Fatalf("the failed run's piece: %+v; want ned's Madrid login new_country", fs)
	}
	// (its alerts failed: no Settle; the run ends with an error)

	// The next run reads the window again from its cursor, in one piece
	// reaching below the failed run's last Done.
	fs = judge(t, d, audit.Piece{Events: []ipguard.LoginEvent{home, madrid}, Done: t0.Add(3 * time.Hour), First: true, Final: true, Last: true})
	var found bool
	for _, f := range fs {
		found = found || (f.EventID == madrid.ID && f.Kind == RuleNewCountry)
	}
	if !found {
		t.Errorf("the run after the failed one: %+v; want ned's Madrid login new_country again (the failed run's alerts were never sent)", fs)
	}
	if got := st.items["ned"]; !got.HasCountry(countryKey("Spain")) {
		t.Errorf("after the second run: ned's baseline has no Spain; want it learned once its finding was sent")
	}
}

// An empty last piece at the same Done as the run's piece before it (the
// run stopped between two pieces) belongs to that run: it is not First, and
// judges what the run holds. Before, the detector told this apart from a
// new run by comparing dates; a new run whose first piece is empty and at
// the same Done (it reads nothing new and stops at its margin) was taken
// for the old one. Now First says which it is.
func TestAnEmptyFirstPieceAtTheSameDoneIsANewRun(t *testing.T) {
	d, newer, miss := unaLearning()
	if fs := judge(t, d, audit.Piece{Events: []ipguard.LoginEvent{newer}, Done: t0.Add(4 * time.Hour), First: true}, miss); len(fs) != 0 {
		t.Fatalf("a new user's login in a newer piece: %+v; want it held", fs)
	}
	// The run fails here. The next run starts, reads nothing and stops at
	// its margin: an empty First piece at the same Done.
	fs := judge(t, d, audit.Piece{Done: t0.Add(4 * time.Hour), First: true, Last: true})
	if len(fs) != 0 || !d.Holding().IsZero() {
		t.Errorf("a new run's empty first piece: %+v, holding %v; want nothing: the failed run's held login is above its cursor and read again, not judged from memory", fs, d.Holding())
	}
}

// More than maxHeld logins held: they are judged at once, out of time
// order, and the run is told (Notes, a warning of its result): a learned
// user with a new device in a newer piece is held like a learning user.
func TestHeldLoginsPastTheBoundAreJudgedAtOnceAndSaidSo(t *testing.T) {
	st := learnedNed()
	d := &Detector{Store: st, Settings: Settings{MinLogins: 5}}
	laptop := success(1, "ned", 5*time.Hour, "198.51.100.7", "Germany", "Berlin")
	laptop.Browser, laptop.Platform = "Safari 17", "macOS"
	if fs := judge(t, d, audit.Piece{Events: []ipguard.LoginEvent{laptop}, Done: t0.Add(4 * time.Hour), First: true}); len(fs) != 0 || !d.Holding().Equal(laptop.Date) {
		t.Fatalf("a learned user's new device in a newer piece: %+v, holding %v; want it held for the run's last piece", fs, d.Holding())
	}
	if n := d.Notes(); len(n) != 0 {
		t.Fatalf("notes %v before the bound was passed", n)
	}
	var evs []ipguard.LoginEvent
	for i := 0; i < maxHeld; i++ { // new users (learning): held too
		evs = append(evs, success(int64(100+i), fmt.Sprintf("new%d", i), 3*time.Hour, "198.51.100.7", "Germany", "Berlin"))
	}
	fs := judge(t, d, audit.Piece{Events: evs, Done: t0.Add(2 * time.Hour)})
	var told bool
	for _, f := range fs {
		told = told || (f.EventID == laptop.ID && f.Kind == RuleNewDevice)
	}
	if !told || !d.Holding().IsZero() {
		t.Errorf("past the bound: %+v, holding %v; want every held login judged (ned's new device told)", fs, d.Holding())
	}
	if n := d.Notes(); len(n) != 1 || !strings.Contains(n[0], "judged at once") {
		t.Errorf("notes %q; want one saying the held logins were judged at once", n)
	}
	if n := d.Notes(); len(n) != 0 {
		t.Errorf("notes %q asked again; want each told once", n)
	}
}

// Past maxHeld, the users held without a reason (learned, nothing of
// theirs new so far) are judged first, with the piece that passed the
// bound, in time order with it; a learned user held for a reason (a new
// device) stays held for the run's last piece, and the run is told nothing
// (nothing was judged out of order).
func TestPastTheBoundUsersWithoutAReasonAreJudgedFirst(t *testing.T) {
	st := newMemStore()
	for _, u := range []string{"ned", "ann"} {
		b := berlinDaily(12, 12)
		b.UserID = u
		st.items[u] = *b
	}
	d := &Detector{Store: st, Settings: Settings{MinLogins: 5}}
	laptop := success(1, "ann", 9*time.Hour, "198.51.100.7", "Germany", "Berlin")
	laptop.Browser, laptop.Platform = "Safari 17", "macOS"
	judge(t, d, audit.Piece{Events: []ipguard.LoginEvent{laptop}, Done: t0.Add(8 * time.Hour), First: true})
	var evs []ipguard.LoginEvent
	for i := 0; i < maxHeld+1; i++ {
		evs = append(evs, success(int64(100+i), "ned", 5*time.Hour+time.Duration(i)*time.Second, "198.51.100.7", "Germany", "Berlin"))
	}
	if fs := judge(t, d, audit.Piece{Events: evs, Done: t0.Add(4 * time.Hour)}); len(fs) != 0 {
		t.Fatalf("ned's logins at home: %+v; want nothing", fs)
	}
	if !d.Holding().Equal(laptop.Date) {
		t.Errorf("holding %v; want ann's new laptop (%v) still held, ned's logins judged", d.Holding(), laptop.Date)
	}
	if n := d.Notes(); len(n) != 0 {
		t.Errorf("notes %q; want none: only users without a reason were judged early", n)
	}
	// ann's older login from the same laptop, in the run's last piece: the
	// older one is the new device, not the one held.
	older := laptop
	older.ID, older.Date = 2, t0.Add(time.Hour)
	fs := judge(t, d, audit.Piece{Events: []ipguard.LoginEvent{older}, Done: t0, Final: true, Last: true})
	if len(fs) != 1 || fs[0].EventID != 2 || fs[0].Kind != RuleNewDevice {
		t.Errorf("the run's last piece: %+v; want one new_device, on ann's older login", fs)
	}
}

// unaLearning is a detector (BASELINE_MIN_LOGINS 5) that has not met una,
// her login 2 from Madrid five hours after t0, and its finding outside her
// allowlist.
func unaLearning() (*Detector, ipguard.LoginEvent, audit.Finding) {
	d := &Detector{Store: newMemStore(), Settings: Settings{MinLogins: 5}}
	newer := success(2, "una", 5*time.Hour, "198.51.100.8", "Spain", "Madrid")
	miss := audit.Finding{EventID: 2, UserID: "una", Kind: audit.KindIPNotAllowed, Severity: audit.SeverityHigh}
	return d, newer, miss
}

// A login the walk hands again in a later piece of the same run (a second
// read whole twice at a piece's edge) while it is held, with its finding
// again: held once, and its finding released once.
func TestAHeldLoginHandedTwiceIsReleasedOnce(t *testing.T) {
	d, newer, miss := unaLearning()
	if fs := judge(t, d, audit.Piece{Events: []ipguard.LoginEvent{newer}, Done: t0.Add(5 * time.Hour), First: true}, miss); len(fs) != 0 {
		t.Fatalf("first piece: %+v; want una's login held", fs)
	}
	older := success(1, "una", time.Hour, "198.51.100.7", "Germany", "Berlin")
	if fs := judge(t, d, audit.Piece{Events: []ipguard.LoginEvent{newer, older}, Done: t0.Add(time.Hour)}, miss); len(fs) != 0 {
		t.Fatalf("second piece: %+v; want still held", fs)
	}
	fs := judge(t, d, audit.Piece{Done: t0, Final: true, Last: true})
	n := 0
	for _, f := range fs {
		if f.EventID == 2 {
			n++
		}
	}
	if n != 1 {
		t.Errorf("the run's last piece: %d findings for login 2 (%+v); want one", n, fs)
	}
}

// failingWindows fails every read of the spray window.
type failingWindows struct{}

func (failingWindows) SprayBuckets(context.Context, []time.Time) (map[int64]SprayBucket, error) {
	return nil, errors.New("spray window unreadable")
}
func (failingWindows) SaveSprayBuckets(context.Context, []SprayBucket, time.Duration) error {
	return nil
}

// A run whose piece passed maxHeld (a note: held logins judged at once)
// and then failed in the same Judge: the audit never asked for its notes,
// and nothing of that piece was sent. The next run in the same warm process
// starts anew (Piece.First) and must not report the failed run's note as
// its own.
func TestANoteOfAFailedRunIsNotTheNextRunsWarning(t *testing.T) {
	st := newMemStore()
	b := berlinDaily(12, 12)
	b.UserID = "ned"
	st.items["ned"] = *b
	d := &Detector{Store: st, Settings: Settings{MinLogins: 5}, Windows: failingWindows{}}
	laptop := success(1, "ned", 5*time.Hour, "198.51.100.7", "Germany", "Berlin")
	laptop.Browser, laptop.Platform = "Safari 17", "macOS"
	judge(t, d, audit.Piece{Events: []ipguard.LoginEvent{laptop}, Done: t0.Add(4 * time.Hour), First: true})
	var evs []ipguard.LoginEvent
	for i := 0; i < maxHeld; i++ {
		evs = append(evs, success(int64(100+i), fmt.Sprintf("new%d", i), 3*time.Hour, "198.51.100.7", "Germany", "Berlin"))
	}
	for i := 0; i < 3; i++ {
		evs = append(evs, failed(int64(900+i), fmt.Sprintf("x%d", i), 3*time.Hour, "203.0.113.9"))
	}
	if _, err := d.Judge(context.Background(), audit.Piece{Events: evs, Done: t0.Add(2 * time.Hour)}, nil); err == nil {
		t.Fatal("the piece that passed the bound did not fail: the test needs it to")
	}
	// The next run, same process.
	d.Windows = nil
	judge(t, d, audit.Piece{Events: []ipguard.LoginEvent{laptop}, Done: t0, First: true, Final: true, Last: true})
	if n := d.Notes(); len(n) != 0 {
		t.Errorf("notes of the next run %q; want none (it judged nothing out of order)", n)
	}
}
