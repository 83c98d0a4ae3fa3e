package behaviour

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"ipguard/internal/audit"
	"ipguard/internal/ipguard"
)

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
