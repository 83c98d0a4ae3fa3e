package audit

import (
	"context"
	"testing"
	"time"

	"ipguard/internal/ipguard"
)

// Issue 16 §7: a login is judged by the allowlist in force when it
// happened, not when the audit reads it (the overlap, a backlog, a
// backfill, a slow run): an offboarding, an entry removed or added between
// the login and the run, and a travel entry that expired meanwhile.
func TestLoginJudgedByTheAllowlistInForceWhenItHappened(t *testing.T) {
	at10 := t0.Add(10 * time.Minute) // the change, after the logins at +2..+3 min
	tests := []struct {
		name    string
		user    *ipguard.User // stored now (nil: none)
		history ipguard.AllowlistHistory
		logins  []ipguard.LoginEvent
		want    map[int64]string // event id → finding kind ("" none)
	}{
		{
			name:    "offboarded between the login and the run",
			history: ipguard.AllowlistHistory{UserID: "carol", Email: "carol@example.com", OffboardedAt: at10, Spans: []ipguard.EntrySpan{{Entry: "203.0.113.20", Until: at10}}},
			logins: []ipguard.LoginEvent{
				at(1, "carol", 1010, "203.0.113.20", 2*time.Minute),  // allowed then
				at(2, "carol", 1010, "198.51.100.1", 3*time.Minute),  // outside the list carol had then
				at(3, "carol", 1010, "203.0.113.20", 12*time.Minute), // after the offboarding: no allowlist
			},
			want: map[int64]string{1: "", 2: KindIPNotAllowed, 3: KindUnknownUser},
		},
		{
			name:    "an entry removed in between: the login is allowed",
			user:    &ipguard.User{ID: "dave", Email: "dave@example.com", Entries: []string{"203.0.113.30"}},
			history: ipguard.AllowlistHistory{UserID: "dave", Spans: []ipguard.EntrySpan{{Entry: "198.51.100.7", Until: at10}}},
			logins: []ipguard.LoginEvent{
				at(4, "dave", 1010, "198.51.100.7", 2*time.Minute),
				at(5, "dave", 1010, "198.51.100.7", 11*time.Minute), // after the removal
			},
			want: map[int64]string{4: "", 5: KindIPNotAllowed},
		},
		{
			name:    "an entry added in between: the login is a violation",
			user:    &ipguard.User{ID: "erin", Email: "erin@example.com", Entries: []string{"203.0.113.40", "198.51.100.8"}},
			history: ipguard.AllowlistHistory{UserID: "erin", Spans: []ipguard.EntrySpan{{Entry: "198.51.100.8", From: at10}}},
			logins: []ipguard.LoginEvent{
				at(6, "erin", 1010, "198.51.100.8", 2*time.Minute),
				at(7, "erin", 1010, "198.51.100.8", 11*time.Minute), // after it was added
				at(8, "erin", 1010, "203.0.113.40", 2*time.Minute),  // an entry without history counts
			},
			want: map[int64]string{6: KindIPNotAllowed, 7: "", 8: ""},
		},
		{
			name: "a travel entry a reconcile removed keeps working for logins before its expiry",
			user: &ipguard.User{ID: "fran", Email: "fran@example.com", Entries: []string{"203.0.113.50"},
				Expired: []ipguard.ExpiredEntry{{Entry: "198.51.100.9", ExpiresAt: at10, Note: "conference"}}},
			logins: []ipguard.LoginEvent{
				at(9, "fran", 1010, "198.51.100.9", 2*time.Minute),
				at(10, "fran", 1010, "198.51.100.9", 11*time.Minute),
			},
			want: map[int64]string{9: "", 10: KindIPNotAllowed},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _, st, _ := newAudit(tt.logins...)
			if tt.user != nil {
				st.users[tt.user.ID] = *tt.user
			}
			st.history[tt.history.UserID] = tt.history
			got := findingsOfRun(t, s)
			kinds := map[int64]string{}
			for _, f := range got {
				kinds[f.EventID] = f.Kind
			}
			for id, want := range tt.want {
				if kinds[id] != want {
					t.Errorf("event %d: %q, want %q (findings %v)", id, kinds[id], want, kinds)
				}
			}
		})
	}
}

// findingsOfRun runs s at +15m and returns the findings of every alert it
// sent.
func findingsOfRun(t *testing.T, s *Service) []Finding {
	t.Helper()
	var got []Finding
	s.Publisher = publisherFunc(func(a ipguard.Alert) { got = append(got, findingsOf(t, a)...) })
	if _, err := s.Run(context.Background(), trig(15*time.Minute)); err != nil {
		t.Fatal(err)
	}
	return got
}

// publisherFunc is a Publisher that hands each alert to f.
type publisherFunc func(ipguard.Alert)

func (f publisherFunc) Publish(_ context.Context, a ipguard.Alert) (string, error) {
	f(a)
	return "m", nil
}

// Attack review of the audit: under UNKNOWN_USER_POLICY=digest (the
// default) a login after the user's offboarding went only to the next
// daily digest, like a guest's who was never onboarded. An offboarded user
// is someone who left or was taken out on purpose: their account in use is
// a takeover signal, and a digest is not an alert (#21). It is a message of
// its own; a person never onboarded stays in the digest.
func TestALoginAfterOffboardingIsAMessageUnderDigest(t *testing.T) {
	at10 := t0.Add(10 * time.Minute)
	s, _, st, _ := newAudit(
		at(1, "carol", 1010, "203.0.113.20", 12*time.Minute), // after carol's offboarding
		at(2, "zed", 1010, "203.0.113.99", 12*time.Minute),   // never onboarded
	)
	s.Settings.Policy.UnknownUsers = UnknownDigest
	st.history["carol"] = ipguard.AllowlistHistory{UserID: "carol", Email: "carol@example.com", OffboardedAt: at10,
		Spans: []ipguard.EntrySpan{{Entry: "203.0.113.20", Until: at10}}}
	got := findingsOfRun(t, s)
	digestOnly := map[int64]bool{}
	for _, f := range got {
		if f.Kind != KindUnknownUser {
			t.Errorf("event %d: kind %s, want %s", f.EventID, f.Kind, KindUnknownUser)
		}
		digestOnly[f.EventID] = f.DigestOnly
	}
	if len(digestOnly) != 2 || digestOnly[1] || !digestOnly[2] {
		t.Errorf("digest only by event %v; want the offboarded user's login (1) messaged, the never-onboarded one's (2) in the digest", digestOnly)
	}
}
