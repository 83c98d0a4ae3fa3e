package audit

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"ipguard/internal/allowlist"
	"ipguard/internal/ipguard"
)

const guest = "712d9ec3-5d2b-4b13-824f-71f00191dcca"

func ev(id int64, user string, action int, ip string) ipguard.LoginEvent {
	return ipguard.LoginEvent{ID: id, Date: time.Date(2026, 11, 25, 9, 0, int(id%60), 0, time.UTC), UserID: user, User: "name-" + user, ActionID: action, IP: ip,
		Raw: []byte(`{"id":` + itoa64(id) + `}`)}
}

func itoa64(n int64) string { return strconv.FormatInt(n, 10) }

func fmtInt(n int64) string { return strconv.FormatInt(n, 10) }

func lists(t *testing.T, users map[string][]string) Allowlists {
	t.Helper()
	m := map[string]ipguard.User{}
	var all []allowlist.Entry
	for id, raw := range users {
		m[id] = ipguard.User{ID: id, Email: id + "@example.com", Entries: raw}
		es, err := allowlist.ParseStored(raw)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, es...)
	}
	l, err := NewAllowlists(m, func() (allowlist.Set, error) { return allowlist.NewSet(all), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestEvaluate(t *testing.T) {
	l := lists(t, map[string][]string{
		"alice": {"203.0.113.10", "10.20.0.0/24", "198.51.100.0-198.51.100.255", "2001:db8::/32"},
		"bob":   {"192.0.2.7"},
	})
	events := []ipguard.LoginEvent{
		ev(1, "alice", 1010, "203.0.113.10"),     // exact: allowed
		ev(2, "alice", 1000, "10.20.0.99"),       // CIDR: allowed
		ev(3, "alice", 1029, "198.51.100.200"),   // range: allowed
		ev(4, "alice", 1010, "::ffff:10.20.0.1"), // mapped: allowed
		ev(5, "alice", 1010, "192.0.2.7"),        // bob's address: violation
		ev(6, "carol", 1010, "203.0.113.10"),     // no allowlist
		ev(7, "alice", 1010, "2001"),             // IPv6 cut by the API
		ev(8, "alice", 1006, "8.8.8.8"),          // logout: ignored
		ev(9, guest, 1013, "198.18.0.1"),         // failed x5 from an unknown address: burst
		ev(10, guest, 1013, "198.18.0.1"),
		ev(11, guest, 1005, "198.18.0.1"),
		ev(12, guest, 1023, "198.18.0.1"),
		ev(13, guest, 1013, "198.18.0.1"),
		ev(14, guest, 1013, "192.0.2.7"), // failed x5 from bob's address: not a burst
		ev(15, guest, 1013, "192.0.2.7"),
		ev(16, guest, 1013, "192.0.2.7"),
		ev(17, guest, 1013, "192.0.2.7"),
		ev(18, guest, 1013, "192.0.2.7"),
		ev(19, guest, 1013, "198.18.0.2"), // below threshold
		ev(20, "bob", 1000, ""),           // no address
		ev(21, "alice", 1001, "203.0.113.99"),
	}
	fs, err := Evaluate(events, l, Policy{AlertUnknownUsers: true, FailedLoginThreshold: 5})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range fs {
		if f.EventIDs != nil {
			got = append(got, f.Kind+":"+f.IP+":"+joinIDs(f.EventIDs, 100))
		} else {
			got = append(got, f.Kind+":"+fmtInt(f.EventID))
		}
	}
	want := []string{"ip_not_allowed:5", "unknown_user:6", "unverifiable_ip:7", "unverifiable_ip:20", "ip_not_allowed:21", "failed_login_burst:198.18.0.1:9, 10, 11, 12, 13"}
	if strings.Join(got, " | ") != strings.Join(want, " | ") {
		t.Errorf("findings:\n got %v\nwant %v", got, want)
	}
	for _, f := range fs {
		switch f.Kind {
		case KindIPNotAllowed:
			if f.Severity != SeverityHigh || f.Email != "alice@example.com" {
				t.Errorf("%+v", f)
			}
		case KindFailedLoginBurst:
			if f.Count != 5 || f.EventID != 0 {
				t.Errorf("burst %+v", f)
			}
		default:
			if f.Severity != SeverityMedium {
				t.Errorf("%+v", f)
			}
		}
	}

	quiet, _ := Evaluate(events, l, Policy{AlertUnknownUsers: false, FailedLoginThreshold: 0})
	for _, f := range quiet {
		if f.Kind == KindUnknownUser || f.Kind == KindFailedLoginBurst {
			t.Errorf("policy off but got %+v", f)
		}
	}
}

func TestDropAlerted(t *testing.T) {
	fs := []Finding{
		{Kind: KindIPNotAllowed, EventID: 1},
		{Kind: KindIPNotAllowed, EventID: 2},
		burst("198.18.0.1", []ipguard.LoginEvent{ev(3, guest, 1013, "198.18.0.1"), ev(4, guest, 1013, "198.18.0.1"), ev(5, guest, 1013, "198.18.0.1")}, 3),
		burst("198.18.0.2", []ipguard.LoginEvent{ev(6, guest, 1013, "198.18.0.2")}, 1),
	}
	kept, dropped := dropAlerted(fs, map[int64]bool{1: true, 3: true, 4: true, 6: true})
	if dropped != 2 || len(kept) != 2 || kept[0].EventID != 2 || kept[1].Count != 1 || kept[1].EventIDs[0] != 5 {
		t.Fatalf("kept %+v dropped %d", kept, dropped)
	}
	if !strings.Contains(string(kept[1].Raw), `"id":5`) || strings.Contains(string(kept[1].Raw), `"id":3`) {
		t.Errorf("burst raw not trimmed to fresh events: %s", kept[1].Raw)
	}
}

func TestEvaluateMatchesGUIDsWhateverTheirCase(t *testing.T) {
	const id = "6b2f7a1e-3c44-4a5b-9e0f-1d2c3b4a5f60"
	l := lists(t, map[string][]string{id: {"203.0.113.10"}})
	fs, err := Evaluate([]ipguard.LoginEvent{ev(1, strings.ToUpper(id), 1010, "203.0.113.10")}, l, Policy{AlertUnknownUsers: true})
	if err != nil || len(fs) != 0 {
		t.Fatalf("upper-case GUID not matched: %+v %v", fs, err)
	}
}
