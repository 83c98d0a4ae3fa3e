package onboard

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"ipguard/internal/ipguard"
)

// hangingDirectory answers people/{id} never: each call waits until its
// context ends (a proxy that holds the requests of one path).
type hangingDirectory struct{ fakeDirectory }

func (d *hangingDirectory) Person(ctx context.Context, _ string) (Person, bool, error) {
	<-ctx.Done()
	return Person{}, false, ipguard.Errorf(ipguard.EUnavailable, "no answer: %v", ctx.Err())
}

// A people/{id} that hangs lets the users-left check check nobody, sync
// after sync, without an error of its own (the check stops at its half of
// the time). Once the rotation has not moved for a pass (12 hours), that
// is alerted like any check that cannot run, once. (Before: only the
// result's "checked 0 of N" warning said so.)
func TestUsersLeftCheckThatChecksNobodyIsAlertedOnceItLasts(t *testing.T) {
	e := usersLeftEnvOf(t, 3, 0)
	e.do(t, `{"action":"sync"}`) // the rotation moves
	e.s.Directory = &hangingDirectory{fakeDirectory{creator: "o"}}
	sync := func(at time.Time) {
		t.Helper()
		e.now = at
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if _, err := e.s.Handle(ctx, []byte(`{"action":"sync"}`)); err != nil {
			t.Fatal(err)
		}
	}
	sync(t0.Add(time.Hour))
	if n := countCheckAlerts(e); n != 0 {
		t.Fatalf("%d alerts after an hour; a passing hang is not alerted yet", n)
	}
	sync(t0.Add(13 * time.Hour))
	sync(t0.Add(13*time.Hour + 15*time.Minute))
	if n := countCheckAlerts(e); n != 1 {
		t.Errorf("%d alerts about the users-left check after it checked nobody for 13 hours; want 1", n)
	}
}

func countCheckAlerts(e *env) int {
	n := 0
	for _, a := range e.alerts.sent {
		if strings.Contains(a.Default, "could not check for users who left") {
			n++
		}
	}
	return n
}

// An alert about more users offboarded than it lists says how many it left
// out and where they all are (the log line names every id), rather than
// leaving the rest unnamed without a word (attack review, #15 §4: the ids
// offboarded are in a log line and an alert).
func TestUsersLeftAlertSaysWhomItLeavesOut(t *testing.T) {
	e := newEnv()
	var ids []string
	for i := range MaxAlertList + 10 {
		ids = append(ids, fmt.Sprintf("u%03d", i))
	}
	a := e.s.usersLeftAlert("offboarded", ids)
	if !strings.Contains(a.Email, "and 10 more") || !strings.Contains(a.Email, "offboarded users who left the portal") {
		t.Errorf("email %q; want the 10 ids left out counted and the log line that names them", a.Email)
	}
}

// A people/{id} that answers every user with something that is no user
// (a proxy's JSON of another shape: "unexpected response", EInternal)
// finds nobody gone, sync after sync; each user is only a warning of the
// scheduled sync's result, which nobody reads. When not one user of a
// sync's share could be read, that is a failure of the check, alerted once
// per episode like any other (attack review, #15 §4: a proxy in front of
// the portal). Before, it counted as a check that worked: no alert, and
// with OFFBOARD_REMOVED_USERS=true nobody who left was ever offboarded.
func TestUsersLeftCheckThatReadsNoUserIsAlerted(t *testing.T) {
	e := usersLeftEnvOf(t, 3, 0)
	dir := e.s.Directory.(*fakeDirectory)
	dir.errs = map[string]error{}
	for _, id := range []string{"u00", "u01", "u02"} {
		dir.errs[id] = ipguard.Errorf(ipguard.EInternal, "docspace: get user: unexpected response: json: cannot unmarshal array into Go value")
	}
	e.do(t, `{"action":"sync"}`)
	e.now = t0.Add(15 * time.Minute)
	e.do(t, `{"action":"sync"}`)
	if n := countCheckAlerts(e); n != 1 {
		t.Errorf("%d alerts about a users-left check that read no user in two syncs; want 1", n)
	}
	// One user that cannot be read among others that can is a warning only.
	e = usersLeftEnvOf(t, 3, 0)
	e.s.Directory.(*fakeDirectory).errs = map[string]error{"u01": ipguard.Errorf(ipguard.EInternal, "unexpected response")}
	e.do(t, `{"action":"sync"}`)
	if n := countCheckAlerts(e); n != 0 {
		t.Errorf("%d alerts about one unreadable user among readable ones; want none (a warning)", n)
	}
}
