package onboard

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"ipguard/internal/allowlist"
	"ipguard/internal/behaviour"
	"ipguard/internal/humantext"
	"ipguard/internal/ipguard"
)

// Any JSON payload gives a result or an InvalidInput naming the field (a
// no-op with a warning is a result); a rejected request changes nothing
// stored and sends nothing to the portal, checked against the in-memory
// store after each input. What is stored is canonical; every warning is one
// safe line (humantext).
func FuzzOnboardRequest(f *testing.F) {
	for _, s := range []string{
		`{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.1",{"ip":"10.0.0.0/24","expiresAt":"2027-01-01T00:00:00Z","note":"trip"}]}`,
		`{"action":"add","id":"u1","allowedIps":["2001:db8::/48"]}`,
		`{"action":"remove","id":"u1","allowedIps":["203.0.113.10"]}`,
		`{"action":"offboard","userId":"u1"}`, `{"action":"get","id":"u1"}`,
		`{"ID":"u1","Id":"u2","email":"a@example.com","allowedIps":["203.0.113.1"]}`,
		`{"id":"u1","email":"a@example.com","allowedIps":["::/80"]}`,
		`{"id":"u1","email":"a@example.com","allowedIps":[{"ip":"203.0.113.1","note":"\u202eliam"}]}`,
		`{"id":"u\u200b1","email":"a@example.com","allowedIps":["203.0.113.1"]}`,
		`{"id":"u1","email":"a@example.com","allowedIps":[{"ip":"203.0.113.0/24","note":"office","place":"Berlin"},{"ip":"198.51.100.0/24","place":"anywhere"}]}`,
		`{"id":"u1","email":"a@example.com","allowedIps":[{"ip":"203.0.113.1","place":"52.52,13.405"},{"ip":"203.0.113.2","place":"91,0"}]}`,
		`[]`, `null`, `"x"`, `{"action":"nope"}`, `{"action":"preview","days":3}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		req, derr := DecodeRequest(payload)
		if derr != nil {
			checkInvalid(t, payload, derr)
		} else if req.Action == ActionSync || req.Action == ActionPreview {
			return // no request data to reject: the reconciler's own tests hold these
		}
		e := newEnv()
		e.do(t, `{"id":"u1","email":"u1@example.com","allowedIps":["203.0.113.10","198.51.100.0/30"]}`)
		users, state, writes, puts := snapshot(e)
		res, err := e.s.Handle(context.Background(), payload)
		if derr != nil && err == nil {
			t.Fatalf("%q: decoding failed (%v) but Handle succeeded", payload, derr)
		}
		if err != nil {
			if ipguard.ErrorCode(err) != ipguard.EInvalid {
				t.Fatalf("%q: %v, want a result or InvalidInput", payload, err)
			}
			checkInvalid(t, payload, err)
			u2, s2, w2, p2 := snapshot(e)
			if w2 != writes || p2 != puts || !reflect.DeepEqual(u2, users) || !reflect.DeepEqual(s2, state) {
				t.Fatalf("%q was rejected (%v) but changed what is stored: %d→%d writes, %d→%d PUTs", payload, err, writes, w2, puts, p2)
			}
			return
		}
		for _, w := range res.Warnings {
			if len(w) > maxWarningBytes || !utf8.ValidString(w) || strings.IndexFunc(w, humantext.Unsafe) >= 0 {
				t.Fatalf("%q: warning %q is not one safe line", payload, w)
			}
		}
		for id, u := range e.st.users {
			if _, err := allowlist.ParseStored(u.Entries); err != nil {
				t.Fatalf("%q stored user %q with an entry that does not parse: %v", payload, id, err)
			}
			for ip, d := range u.Details {
				if d.Place == "" {
					continue
				}
				if p, err := behaviour.ParsePlace(d.Place); err != nil || p.Canonical != d.Place {
					t.Fatalf("%q stored the place %q of %s, not canonical", payload, d.Place, ip)
				}
			}
			for _, ip := range u.Entries {
				if en, err := allowlist.ParseEntry(ip, allowlist.Limits{MinPrefixV4: 1, MinPrefixV6: 1}); err != nil || en.String() != ip {
					t.Fatalf("%q stored %q, not canonical", payload, ip)
				}
			}
		}
	})
}

// checkInvalid holds err to the InvalidInput promise: it names a field.
func checkInvalid(t *testing.T, payload []byte, err error) {
	t.Helper()
	var ie *ipguard.Error
	if !errors.As(err, &ie) || ie.Code != ipguard.EInvalid || ie.Field == "" {
		t.Fatalf("%q: %v, want InvalidInput naming the field", payload, err)
	}
	if strings.IndexFunc(ie.Field, humantext.Unsafe) >= 0 || !utf8.ValidString(err.Error()) {
		t.Fatalf("%q: the error %q does not name its field safely", payload, err)
	}
}

func snapshot(e *env) (map[string]ipguard.User, ipguard.PortalState, int, int) {
	ctx := context.Background()
	all, _ := e.st.AllUsers(ctx) // the in-memory store never fails
	users := map[string]ipguard.User{}
	for _, u := range all {
		users[u.ID] = u
	}
	state, _ := e.st.PortalState(ctx)
	e.p.mu.Lock()
	defer e.p.mu.Unlock()
	return users, state, e.st.Writes, e.p.puts
}
