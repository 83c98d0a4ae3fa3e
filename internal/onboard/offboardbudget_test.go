package onboard

import (
	"context"
	"strings"
	"testing"
	"time"
)

// The blast radius holds across the rotation, not only within one sync.
// Each sync checks its share of the users (about 10 of 200 here), so a
// directory that makes every user look gone (a misrouted host, a
// directory sync gone wrong) never shows more than that share in one sync:
// a cap per sync alone let every sync offboard its share, and the whole
// store was gone within hours. At most max(5, OFFBOARD_MAX_PERCENT of the
// users) are offboarded per pass of the rotation (DefaultCheckWithin, 12
// hours); past that nobody more is, and an allowlist_users_left alert says
// so. (Before: 10 more users offboarded by every sync.)
func TestUsersLeftBlastRadiusHoldsAcrossTheRotation(t *testing.T) {
	const users = 200
	e := usersLeftEnvOf(t, users, users) // the directory lists nobody but the owner
	limit := max(OffboardMinUsers, users*10/100)
	var res Result
	for i := range 16 { // four hours of syncs every 15 minutes
		e.now = t0.Add(time.Duration(i+1) * 15 * time.Minute)
		res = e.do(t, `{"action":"sync"}`)
	}
	stored, _ := e.st.AllUsers(context.Background())
	if gone := users - len(stored); gone > limit {
		t.Errorf("%d users offboarded within four hours; want at most %d (OFFBOARD_MAX_PERCENT of %d) per pass of the rotation", gone, limit, users)
	}
	if !strings.Contains(strings.Join(res.Warnings, " "), "none was offboarded") || countKind(e.alerts, "allowlist_users_left") == 0 {
		t.Errorf("warnings %q, alerts %v; want the users past the limit named as not offboarded, and alerted", res.Warnings, e.alerts.kinds())
	}

	// A pass of the rotation later, the directory answers again but for
	// three users who did leave: the budget is back, and they go.
	dir := e.s.Directory.(*fakeDirectory)
	for _, u := range stored[3:] {
		dir.people[u.ID] = Person{ID: u.ID, Status: 1}
	}
	for i := range 2 {
		e.now = e.now.Add(DefaultCheckWithin / 2 * time.Duration(i+1))
		e.do(t, `{"action":"sync"}`)
	}
	if after, _ := e.st.AllUsers(context.Background()); len(after) != len(stored)-3 {
		t.Errorf("%d stored after the budget's window passed; want the 3 who left offboarded (%d)", len(after), len(stored)-3)
	}
}
