package onboard

import (
	"strings"
	"testing"
	"time"

	"ipguard/internal/ipguard"
)

func ips(rs []ipguard.Restriction) string {
	var s []string
	for _, r := range rs {
		if r.ForAdmin {
			s = append(s, r.IP+"!")
		} else {
			s = append(s, r.IP)
		}
	}
	return strings.Join(s, ",")
}

func restr(spec string) []ipguard.Restriction {
	var out []ipguard.Restriction
	for _, p := range strings.Split(spec, ",") {
		if p == "" {
			continue
		}
		out = append(out, ipguard.Restriction{IP: strings.TrimSuffix(p, "!"), ForAdmin: strings.HasSuffix(p, "!")})
	}
	return out
}

func split(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

var t0 = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

func user(id string, entries ...string) ipguard.User {
	return ipguard.User{ID: id, Email: id + "@example.com", Entries: entries}
}

func TestPlanReconcile(t *testing.T) {
	rules := Settings{MaxRangeAddresses: 256, Enforce: true}
	travel := user("u3", "198.51.100.7", "203.0.113.99")
	travel.Details = map[string]ipguard.EntryDetail{"203.0.113.99": {ExpiresAt: t0.Add(-time.Minute), Note: "trip"}}
	tests := []struct {
		name                   string
		current                string
		enabled                bool
		owned                  string
		users                  []ipguard.User
		rules                  Settings
		en                     EnableRule
		wantList               string
		wantOwned              string
		wantAdded, wantRemoved string
		wantEnable, wantPut    bool
	}{
		{"adds after manual entries, keeps their flags", "192.0.2.1!,2001:DB8::9", false, "",
			[]ipguard.User{user("u1", "203.0.113.10")}, rules, EnableRule{Allowed: true},
			"192.0.2.1!,2001:DB8::9,203.0.113.10", "203.0.113.10", "203.0.113.10", "", true, true},
		{"expands a small range", "", true, "", []ipguard.User{user("u1", "198.51.100.1-198.51.100.3")}, rules, EnableRule{Allowed: true},
			"198.51.100.1,198.51.100.2,198.51.100.3", "198.51.100.1,198.51.100.2,198.51.100.3", "198.51.100.1,198.51.100.2,198.51.100.3", "", true, true},
		{"does not push a large block", "192.0.2.1", true, "", []ipguard.User{user("u1", "10.0.0.0/16")}, rules, EnableRule{Allowed: true},
			"192.0.2.1", "", "", "", true, false},
		{"an address already on the portal is not owned", "203.0.113.10", true, "", []ipguard.User{user("u1", "203.0.113.10")}, rules, EnableRule{Allowed: true},
			"203.0.113.10", "", "", "", true, false},
		{"a forAdmin-only address gets its own non-admin entry", "203.0.113.10!", true, "", []ipguard.User{user("u1", "203.0.113.10")}, rules, EnableRule{Allowed: true},
			"203.0.113.10!,203.0.113.10", "203.0.113.10", "203.0.113.10", "", true, true},
		{"offboarding removes owned addresses no one needs", "192.0.2.1,203.0.113.10,203.0.113.11", true, "203.0.113.10,203.0.113.11",
			[]ipguard.User{user("u2", "203.0.113.11")}, rules, EnableRule{Allowed: true},
			"192.0.2.1,203.0.113.11", "203.0.113.11", "", "203.0.113.10", true, true},
		{"a manual entry equal to a leaver's address stays", "203.0.113.10,203.0.113.10", true, "203.0.113.10",
			nil, rules, EnableRule{Allowed: true}, "203.0.113.10", "", "", "203.0.113.10", true, true},
		{"owned address deleted by hand is put back", "192.0.2.1", true, "203.0.113.10", []ipguard.User{user("u1", "203.0.113.10")}, rules, EnableRule{Allowed: true},
			"192.0.2.1,203.0.113.10", "203.0.113.10", "203.0.113.10", "", true, true},
		{"an expired entry leaves the portal", "198.51.100.7,203.0.113.99", true, "198.51.100.7,203.0.113.99", []ipguard.User{travel}, rules, EnableRule{Allowed: true},
			"198.51.100.7", "198.51.100.7", "", "203.0.113.99", true, true},
		{"breakglass always present", "", false, "", []ipguard.User{user("u1", "203.0.113.10")}, Settings{MaxRangeAddresses: 256, Enforce: true, Breakglass: []string{"192.0.2.50"}}, EnableRule{Allowed: true},
			"203.0.113.10,192.0.2.50", "203.0.113.10,192.0.2.50", "203.0.113.10,192.0.2.50", "", true, true},
		{"not enforcing keeps the setting", "", false, "", []ipguard.User{user("u1", "203.0.113.10")}, Settings{MaxRangeAddresses: 256}, EnableRule{Allowed: true},
			"203.0.113.10", "203.0.113.10", "203.0.113.10", "", false, true},
		{"lock-out preflight keeps restrictions off", "", false, "", []ipguard.User{user("u1", "203.0.113.10")}, rules, EnableRule{Why: "not the owner"},
			"203.0.113.10", "203.0.113.10", "203.0.113.10", "", false, true},
		{"switched off by hand stays off without drift repair", "203.0.113.10", false, "203.0.113.10", []ipguard.User{user("u1", "203.0.113.10")}, rules, EnableRule{Allowed: true, KeepOff: true},
			"203.0.113.10", "203.0.113.10", "", "", false, false},
		{"enforcing turns restrictions on without additions", "203.0.113.10", false, "", []ipguard.User{user("u1", "203.0.113.10")}, rules, EnableRule{Allowed: true},
			"203.0.113.10", "", "", "", true, true},
		{"an empty list is never sent with enable", "", false, "", []ipguard.User{user("u1", "10.0.0.0/16")}, rules, EnableRule{Allowed: true},
			"", "", "", "", false, false},
		{"the last owned entry leaving switches restrictions off", "203.0.113.10", true, "203.0.113.10", nil, rules, EnableRule{Allowed: true},
			"", "", "", "203.0.113.10", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cur := restr(tt.current)
			p, err := PlanReconcile(cur, tt.enabled, split(tt.owned), DesiredState(tt.users, tt.rules, t0), tt.rules, tt.en)
			if err != nil {
				t.Fatal(err)
			}
			if got := ips(p.List); got != tt.wantList {
				t.Errorf("list = %s, want %s", got, tt.wantList)
			}
			if got := strings.Join(p.Owned, ","); got != tt.wantOwned {
				t.Errorf("owned = %s, want %s", got, tt.wantOwned)
			}
			if got := strings.Join(p.Added, ","); got != tt.wantAdded {
				t.Errorf("added = %s, want %s", got, tt.wantAdded)
			}
			if got := strings.Join(p.Removed, ","); got != tt.wantRemoved {
				t.Errorf("removed = %s, want %s", got, tt.wantRemoved)
			}
			if p.Enable != tt.wantEnable || p.Put != tt.wantPut {
				t.Errorf("enable/put = %v/%v, want %v/%v", p.Enable, p.Put, tt.wantEnable, tt.wantPut)
			}
			if err := CheckKept(cur, p.List, split(tt.owned)); err != nil {
				t.Errorf("plan breaks the invariant: %v", err)
			}
			if p.Put && p.Enable && len(p.List) == 0 {
				t.Error("plans an empty list with enable=true")
			}
		})
	}
}

func TestPlanReconcileCap(t *testing.T) {
	rules := Settings{MaxRangeAddresses: 256, Enforce: true, MaxEntries: 3}
	_, err := PlanReconcile(restr("192.0.2.1,192.0.2.2"), true, nil, DesiredState([]ipguard.User{user("u1", "203.0.113.0/31")}, rules, t0), rules, EnableRule{Allowed: true})
	if ipguard.ErrorCode(err) != ipguard.EConfig || !strings.Contains(err.Error(), "PORTAL_MAX_ENTRIES") {
		t.Fatalf("err = %v, want EConfig naming PORTAL_MAX_ENTRIES", err)
	}
}

func TestCheckKept(t *testing.T) {
	tests := []struct {
		name, current, next, owned string
		ok                         bool
	}{
		{"unchanged", "192.0.2.1!,192.0.2.2", "192.0.2.2,192.0.2.1!", "", true},
		{"owned removed", "192.0.2.1,203.0.113.10", "192.0.2.1", "203.0.113.10", true},
		{"manual removed", "192.0.2.1,203.0.113.10", "203.0.113.10", "203.0.113.10", false},
		{"forAdmin flag changed", "192.0.2.1!", "192.0.2.1", "", false},
		{"forAdmin entry of an owned address is not owned", "203.0.113.10!", "", "203.0.113.10", false},
		{"duplicate manual entry kept", "203.0.113.10,203.0.113.10", "203.0.113.10", "203.0.113.10", true},
		{"duplicate manual entry dropped", "203.0.113.10,203.0.113.10", "", "203.0.113.10", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckKept(restr(tt.current), restr(tt.next), split(tt.owned))
			if (err == nil) != tt.ok {
				t.Fatalf("err = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && ipguard.ErrorCode(err) != ipguard.EInternal {
				t.Errorf("code = %s, want internal", ipguard.ErrorCode(err))
			}
		})
	}
}

// The expansion's bound before allocating counts the addresses an entry
// adds, not its size: users who share one office block (the common case)
// need its addresses once, so a list whose union fits the cap is no
// overflow, whatever order the users come in (attack review, #15 §4).
// Before, the bound added each block's whole size to the addresses so far,
// so the second user of a shared block near the cap made the state
// "overflow": the change was refused as passing PORTAL_MAX_ENTRIES, and a
// reconcile held every addition back, although the portal list would fit.
func TestDesiredStateCountsASharedBlockOnce(t *testing.T) {
	rules := Settings{MaxRangeAddresses: 256, MaxEntries: 300}
	for _, tc := range []struct {
		name         string
		users        []ipguard.User
		wantOverflow bool
		wantAddrs    int
	}{
		{"two users of one /24", []ipguard.User{user("a", "203.0.113.0/24"), user("b", "203.0.113.0/24")}, false, 256},
		{"a /25 inside another user's /24", []ipguard.User{user("a", "203.0.113.0/24"), user("b", "203.0.113.128/25")}, false, 256},
		{"a shared /24 and singles up to the cap", []ipguard.User{user("a", "203.0.113.0/24"), user("b", "198.51.100.1", "198.51.100.2"), user("c", "203.0.113.0/24")}, false, 258},
		{"two different /24s pass the cap", []ipguard.User{user("a", "203.0.113.0/24"), user("b", "198.51.100.0/24")}, true, 0},
		{"one block larger than the cap", []ipguard.User{user("a", "10.0.0.0/23")}, false, 0}, // not pushed: larger than MaxRangeAddresses
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := DesiredState(tc.users, rules, t0)
			if d.Overflow != tc.wantOverflow {
				t.Fatalf("overflow = %v (by %q, %d addresses); want %v", d.Overflow, d.OverflowBy, len(d.Addrs), tc.wantOverflow)
			}
			if !tc.wantOverflow && len(d.Addrs) != tc.wantAddrs {
				t.Errorf("%d addresses; want %d", len(d.Addrs), tc.wantAddrs)
			}
			if len(d.Addrs) > rules.MaxEntries {
				t.Errorf("%d addresses allocated, more than the cap %d", len(d.Addrs), rules.MaxEntries)
			}
		})
	}

	// The same through a change: the second user of the office block is
	// stored and reaches the portal.
	e := newEnv()
	e.s.Settings.MaxEntries = 300
	e.do(t, `{"id":"a","email":"a@example.com","allowedIps":["203.0.113.0/24"]}`)
	e.do(t, `{"id":"b","email":"b@example.com","allowedIps":["198.51.100.1","198.51.100.2"]}`)
	res, err := e.handle(`{"id":"c","email":"c@example.com","allowedIps":["203.0.113.0/24"]}`)
	if err != nil || !res.Stored || res.Portal != PortalApplied {
		t.Errorf("third user of a shared block: stored %v, portal %q, err %v; want stored and applied", res.Stored, res.Portal, err)
	}
}

// An entry too large to push says what that means for the user: while
// restrictions are on, the portal refuses their logins from it (unless
// another entry lets them in), and what to send instead. "Kept for the
// audit" alone reads as if the user were let in and only watched.
func TestNotPushedSaysThePortalRefusesItsLogins(t *testing.T) {
	for _, entry := range []string{"10.0.0.0/8", "10.0.0.0-10.1.0.0", "2001:db8::/64"} {
		d := DesiredState([]ipguard.User{user("a", entry)}, Settings{MaxRangeAddresses: 256, MaxEntries: 2000}, t0)
		np := d.NotPushed["a"]
		if len(np) != 1 || !strings.Contains(np[0].Reason, "refuses") || !strings.Contains(np[0].Reason, "at most 256") {
			t.Errorf("%s: notPushed = %+v; want the reason to say the portal refuses its logins and how large a block is pushed", entry, np)
		}
	}
}
