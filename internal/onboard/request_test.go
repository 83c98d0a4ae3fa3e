package onboard

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"ipguard/internal/allowlist"
	"ipguard/internal/behaviour"
	"ipguard/internal/eventbridge"
	"ipguard/internal/humantext"
	"ipguard/internal/ipguard"
)

// decode reads a payload as the Lambda handler does: envelope first.
func decode(payload []byte) (Request, error) {
	detail, _, err := eventbridge.Unwrap(payload)
	if err != nil {
		return Request{}, err
	}
	return DecodeRequest(detail)
}

func TestDecodeRequest(t *testing.T) {
	tests := []struct {
		name    string
		payload string
		want    Request
	}{
		{"direct", `{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.10"]}`,
			Request{ID: "u1", Email: "a@example.com", AllowedIPs: eis("203.0.113.10")}},
		{"userId alias", `{"userId":"u1","email":"a@example.com","allowedIps":["203.0.113.10"]}`,
			Request{ID: "u1", Email: "a@example.com", AllowedIPs: eis("203.0.113.10")}},
		{"both agree", `{"id":"u1","userId":"u1","email":"a@example.com","allowedIps":[]}`,
			Request{ID: "u1", Email: "a@example.com"}},
		{"eventbridge", `{"version":"0","id":"evt-123","detail-type":"UserOnboarded","source":"hr.pipeline","time":"2026-11-25T10:00:00Z","detail":{"id":"u2","email":"b@example.com","allowedIps":["10.0.0.0/24"]}}`,
			Request{ID: "u2", Email: "b@example.com", AllowedIPs: eis("10.0.0.0/24")}},
		{"eventbridge string detail", `{"version":"0","id":"evt-124","detail-type":"UserOnboarded","source":"x","time":"2026-11-25T10:00:00Z","detail":"{\"userId\":\"u3\",\"email\":\"c@example.com\",\"allowedIps\":[\"::1\"]}"}`,
			Request{ID: "u3", Email: "c@example.com", AllowedIPs: eis("::1")}},
		{"direct with a source field of its own", `{"source":"hr-system","id":"u5","email":"e@example.com","allowedIps":["203.0.113.5"]}`,
			Request{ID: "u5", Email: "e@example.com", AllowedIPs: eis("203.0.113.5")}},
		{"case-insensitive keys", `{"ID":"u4","Email":"d@example.com","AllowedIPs":["203.0.113.1"]}`,
			Request{ID: "u4", Email: "d@example.com", AllowedIPs: eis("203.0.113.1")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decode([]byte(tt.payload))
			if err != nil {
				t.Fatal(err)
			}
			if got.ID != tt.want.ID || got.Email != tt.want.Email || fmt.Sprint(got.AllowedIPs) != fmt.Sprint(tt.want.AllowedIPs) || got.Action != tt.want.Action || got.Days != tt.want.Days {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestDecodeRequestRejectsWrongShapes(t *testing.T) {
	tests := []struct {
		name, payload, field string
	}{
		{"not an object", `[1,2]`, "event"},
		{"not json", `hello`, "event"},
		{"allowedIps missing", `{"id":"u1","email":"a@example.com"}`, "allowedIps"},
		{"allowedIps null", `{"id":"u1","email":"a@example.com","allowedIps":null}`, "allowedIps"},
		{"allowedIps string", `{"id":"u1","email":"a@example.com","allowedIps":"203.0.113.1"}`, "allowedIps"},
		{"allowedIps object", `{"id":"u1","email":"a@example.com","allowedIps":{"a":1}}`, "allowedIps"},
		{"entry number", `{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.1", 7]}`, "allowedIps[1]"},
		{"id number", `{"id":42,"email":"a@example.com","allowedIps":["203.0.113.1"]}`, "id"},
		{"email number", `{"id":"u1","email":5,"allowedIps":["203.0.113.1"]}`, "email"},
		{"id and userId disagree", `{"id":"u1","userId":"u2","email":"a@example.com","allowedIps":["203.0.113.1"]}`, "userId"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decode([]byte(tt.payload))
			var e *ipguard.Error
			if !errors.As(err, &e) || e.Code != ipguard.EInvalid || e.Field != tt.field {
				t.Fatalf("err = %#v, want EInvalid on field %q", err, tt.field)
			}
		})
	}
}

func TestCanonicalIDAndEmail(t *testing.T) {
	if id, err := canonicalID(" 6B2F7A1E-3C44-4A5B-9E0F-1D2C3B4A5F60 "); err != nil || id != "6b2f7a1e-3c44-4a5b-9e0f-1d2c3b4a5f60" {
		t.Errorf("GUID id = %q, %v", id, err)
	}
	for _, bad := range []string{"", "  ", "a b", "x\ny", "u\u202Eser", "zero\u200Bwidth", "bom\uFEFF"} {
		if _, err := canonicalID(bad); ipguard.ErrorCode(err) != ipguard.EInvalid {
			t.Errorf("canonicalID(%q) err = %v", bad, err)
		}
	}
	for _, good := range []string{"user@example.com", "first.last+tag@sub.example.org"} {
		if _, err := canonicalEmail(good); err != nil {
			t.Errorf("canonicalEmail(%q): %v", good, err)
		}
	}
	for _, bad := range []string{"", "user", "user@", "@example.com", "Jane <jane@example.com>", "a@b@c", "user example.com", "user@localhost", "user@example.", "user@.example.com", "user@exa..mple.com",
		"ev\u202Ee@example.com", "eve\u200B@example.com", "eve@exam\u2028ple.com", "e\x7fve@example.com"} {
		if _, err := canonicalEmail(bad); ipguard.ErrorCode(err) != ipguard.EInvalid || !strings.Contains(err.Error(), "email") {
			t.Errorf("canonicalEmail(%q) err = %v", bad, err)
		}
	}
}

func eis(ips ...string) []EntryInput {
	var out []EntryInput
	for _, ip := range ips {
		out = append(out, EntryInput{IP: ip})
	}
	return out
}

func TestDecodeRequestActionsAndEntryObjects(t *testing.T) {
	exp := time.Date(2026, 12, 1, 18, 0, 0, 0, time.UTC)
	tests := []struct {
		name, payload string
		want          Request
	}{
		{"add", `{"action":"add","id":"u1","allowedIps":["203.0.113.1"]}`, Request{Action: ActionAdd, ID: "u1", AllowedIPs: eis("203.0.113.1")}},
		{"remove", `{"action":"remove","id":"u1","allowedIps":["203.0.113.1"]}`, Request{Action: ActionRemove, ID: "u1", AllowedIPs: eis("203.0.113.1")}},
		{"offboard", `{"action":"offboard","id":"u1"}`, Request{Action: ActionOffboard, ID: "u1"}},
		{"get", `{"action":"GET","userId":"u1"}`, Request{Action: ActionGet, ID: "u1"}},
		{"sync", `{"action":"sync"}`, Request{Action: ActionSync}},
		{"preview", `{"action":"preview","days":7}`, Request{Action: ActionPreview, Days: 7}},
		{"pipeline fields are ignored", `{"source":"hr-system","id":"u1","email":"a@example.com","allowedIps":["203.0.113.1"]}`,
			Request{ID: "u1", Email: "a@example.com", AllowedIPs: eis("203.0.113.1")}},
		{"travel-mode entry", `{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.1",{"ip":"198.51.100.7","expiresAt":"2026-12-01T19:00:00+01:00","note":"conference"}]}`,
			Request{ID: "u1", Email: "a@example.com", AllowedIPs: []EntryInput{{IP: "203.0.113.1"}, {IP: "198.51.100.7", ExpiresAt: exp, Note: "conference"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeRequest([]byte(tt.payload))
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestDecodeRequestRejects pins issue 11.3 (ambiguous duplicate keys are
// rejected naming both) and 11.10 (every string is length-capped), and the
// per-action field rules.
func TestDecodeRequestRejects(t *testing.T) {
	long := func(n int) string { return strings.Repeat("a", n) }
	tests := []struct {
		name, payload, field string
		mention              []string
	}{
		{"ID and Id", `{"ID":"u1","Id":"u2","email":"a@example.com","allowedIps":["203.0.113.1"]}`, "Id", []string{`"ID"`, `"Id"`}},
		{"allowedIps and AllowedIPs", `{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.1"],"AllowedIPs":["203.0.113.2"]}`, "AllowedIPs", []string{`"allowedIps"`, `"AllowedIPs"`}},
		{"the same key twice", `{"id":"u1","id":"u2","email":"a@example.com","allowedIps":["203.0.113.1"]}`, "id", []string{"twice"}},
		{"entry ip twice", `{"id":"u1","email":"a@example.com","allowedIps":[{"ip":"203.0.113.1","IP":"203.0.113.2"}]}`, "allowedIps[0].IP", []string{`"ip"`, `"IP"`}},
		{"long id", `{"id":"` + long(129) + `","email":"a@example.com","allowedIps":["203.0.113.1"]}`, "id", []string{"at most 128"}},
		{"long email", `{"id":"u1","email":"` + long(300) + `@example.com","allowedIps":["203.0.113.1"]}`, "email", []string{"at most 254"}},
		{"500 KB email", `{"id":"u1","email":"` + long(500_000) + `@example.com","allowedIps":["203.0.113.1"]}`, "email", []string{"at most 254"}},
		{"long entry", `{"id":"u1","email":"a@example.com","allowedIps":["` + long(101) + `"]}`, "allowedIps[0]", []string{"at most 100"}},
		{"long note", `{"id":"u1","email":"a@example.com","allowedIps":[{"ip":"203.0.113.1","note":"` + long(257) + `"}]}`, "allowedIps[0].note", []string{"at most 256"}},
		{"long action", `{"action":"` + long(33) + `"}`, "action", []string{"at most 32"}},
		{"bad expiresAt", `{"id":"u1","email":"a@example.com","allowedIps":[{"ip":"203.0.113.1","expiresAt":"tomorrow"}]}`, "allowedIps[0].expiresAt", []string{"RFC 3339"}},
		{"entry without ip", `{"id":"u1","email":"a@example.com","allowedIps":[{"note":"x"}]}`, "allowedIps[0].ip", nil},
		{"unknown entry field", `{"id":"u1","email":"a@example.com","allowedIps":[{"ip":"203.0.113.1","until":"x"}]}`, "allowedIps[0].until", nil},
		{"unknown action", `{"action":"delete","id":"u1"}`, "action", nil},
		{"email on remove", `{"action":"remove","id":"u1","email":"a@example.com","allowedIps":["203.0.113.1"]}`, "email", []string{"remove"}},
		{"allowedIps on offboard", `{"action":"offboard","id":"u1","allowedIps":["203.0.113.1"]}`, "allowedIps", nil},
		{"id on sync", `{"action":"sync","id":"u1"}`, "id", nil},
		{"days on add", `{"action":"add","id":"u1","allowedIps":["203.0.113.1"],"days":3}`, "days", nil},
		{"days out of range", `{"action":"preview","days":0}`, "days", nil},
		{"days not a number", `{"action":"preview","days":"7"}`, "days", nil},
		{"trailing data", `{"id":"u1"} {"id":"u2"}`, "event", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeRequest([]byte(tt.payload))
			var e *ipguard.Error
			if !errors.As(err, &e) || e.Code != ipguard.EInvalid || e.Field != tt.field {
				t.Fatalf("err = %v (%#v), want EInvalid on field %q", err, err, tt.field)
			}
			if len(err.Error()) > 400 {
				t.Errorf("error is %d bytes long", len(err.Error()))
			}
			for _, m := range tt.mention {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not mention %s", err, m)
				}
			}
		})
	}
}

func TestHandleEventDetailTypes(t *testing.T) {
	tests := []struct {
		detailType, detail string
		wantAction         string
		wantErr            bool
	}{
		{"UserOnboarded", `{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.1"]}`, "replace", false},
		{"UserOffboarded", `{"id":"u1"}`, "offboard", false},
		{"UserOffboarded", `{"id":"u1","allowedIps":["203.0.113.1"]}`, "", true},
		{"UserOffboarded", `{"action":"add","id":"u1","allowedIps":["203.0.113.1"]}`, "", true},
		{"UserAllowlistChanged", `{"action":"add","id":"u1","allowedIps":["203.0.113.1"]}`, "add", false},
		{"UserAllowlistChanged", `{"action":"offboard","id":"u1"}`, "", true},
		{"UserOnboarded", `{"action":"sync"}`, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.detailType+" "+tt.detail, func(t *testing.T) {
			e := newEnv()
			e.st.users["u1"] = ipguard.User{ID: "u1", Email: "a@example.com", Entries: []string{"203.0.113.9"}}
			res, err := e.s.HandleEvent(context.Background(), tt.detailType, []byte(tt.detail))
			if tt.wantErr {
				if ipguard.ErrorCode(err) != ipguard.EInvalid {
					t.Fatalf("err = %v, want EInvalid", err)
				}
				return
			}
			if err != nil || res.Action != tt.wantAction {
				t.Fatalf("res.Action = %q, err = %v; want %q", res.Action, err, tt.wantAction)
			}
		})
	}
}

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

// An EventBridge event whose time is far ahead (the producer's clock) is
// InvalidInput naming the event's "time", the field that holds it, not a
// "requestedAt" the payload does not have (attack review, #15 §5: a bad
// input's error names its field and value). A direct payload's requestedAt
// is still named so.
func TestEventTimeAheadNamesTheEventsTime(t *testing.T) {
	e := newEnv()
	ahead := t0.Add(time.Hour)
	_, err := e.s.HandleEventAt(context.Background(), "UserOnboarded", ahead, []byte(`{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.10"]}`))
	var ie *ipguard.Error
	if !errors.As(err, &ie) || ie.Code != ipguard.EInvalid || ie.Field != "time" || !strings.Contains(err.Error(), ahead.Format(time.RFC3339)) {
		t.Errorf("err = %v (field %q); want InvalidInput naming the event's time and its value", err, fieldOf(err))
	}
	_, err = e.s.HandleEventAt(context.Background(), "UserOnboarded", t0, []byte(`{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.10"],"requestedAt":"`+ahead.Format(time.RFC3339)+`"}`))
	if fieldOf(err) != "requestedAt" {
		t.Errorf("err = %v; want InvalidInput naming requestedAt", err)
	}
}

func fieldOf(err error) string {
	var ie *ipguard.Error
	if errors.As(err, &ie) {
		return ie.Field
	}
	return ""
}

// An EventBridge event of a detail-type the onboarding does not know, whose
// detail names no action, is InvalidInput naming the detail-type (and, for
// a schedule's event, the input a sync schedule sends), never a replace
// that then asks for allowedIps: a schedule wired to the function without
// its input must not read as a bad onboarding. A detail that names its
// action is run as it says.
func TestHandleEventNamesAnUnknownDetailType(t *testing.T) {
	tests := []struct {
		detailType, detail string
		mention            []string // the error mentions each; none: it runs
	}{
		{"Scheduled Event", `{}`, []string{`detail-type "Scheduled Event"`, `{"action": "sync"}`}},
		{"UserUpdated", `{"email":"a@example.com"}`, []string{`detail-type "UserUpdated"`, "UserOnboarded", "UserAllowlistChanged"}},
		// A detail that names a user is a change, whatever the detail-type
		// of a pipeline's own rule: it runs (a replace).
		{"UserUpdated", `{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.1"]}`, nil},
		{"Scheduled Event", `{"action":"sync"}`, nil},
		{"Ops", `{"action":"get","id":"u1"}`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.detailType+" "+tt.detail, func(t *testing.T) {
			e := newEnv()
			e.st.users["u1"] = ipguard.User{ID: "u1", Email: "a@example.com", Entries: []string{"203.0.113.9"}}
			_, err := e.s.HandleEvent(context.Background(), tt.detailType, []byte(tt.detail))
			if tt.mention == nil {
				if err != nil {
					t.Fatalf("err = %v; want it run", err)
				}
				return
			}
			if ipguard.ErrorCode(err) != ipguard.EInvalid {
				t.Fatalf("err = %v, want EInvalid", err)
			}
			for _, m := range tt.mention {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not mention %s", err, m)
				}
			}
			if e.st.Writes != 0 || e.p.puts != 0 {
				t.Errorf("wrote %d items and %d PUTs", e.st.Writes, e.p.puts)
			}
		})
	}
}

// An action of the audit function sent to this one says which function
// takes it, so the fix (invoke the other function) is named, not a list of
// this function's actions alone.
func TestDecodeRequestNamesTheFunctionOfAnAuditAction(t *testing.T) {
	for _, a := range []string{"status", "test-alert", "learn", "audit"} {
		_, err := DecodeRequest([]byte(`{"action":"` + a + `"}`))
		if ipguard.ErrorCode(err) != ipguard.EInvalid || !strings.Contains(err.Error(), "AuditFunction") {
			t.Errorf("%s: %v; want InvalidInput naming the AuditFunction", a, err)
		}
	}
}
