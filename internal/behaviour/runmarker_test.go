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
	st := newMemStore()
	b := berlinDaily(12, 12)
	b.UserID = "ned"
	st.items["ned"] = *b
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
	d := &Detector{Store: newMemStore(), Settings: Settings{MinLogins: 5}}
	newer := success(2, "una", 5*time.Hour, "198.51.100.8", "Spain", "Madrid")
	miss := audit.Finding{EventID: 2, UserID: "una", Kind: audit.KindIPNotAllowed, Severity: audit.SeverityHigh}
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
	st := newMemStore()
	b := berlinDaily(12, 12)
	b.UserID = "ned"
	st.items["ned"] = *b
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
