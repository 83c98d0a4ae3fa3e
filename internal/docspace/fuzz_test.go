package docspace

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"ipguard/internal/ipguard"
)

// fuzzKey is the API key of the fuzzed client; no answer may echo it.
const fuzzKey = "sk-fuzz0123456789abcdef0123456789abcdef"

// canned answers every request with one status, content type and body, in
// process: nothing goes to the network.
type canned struct {
	status int
	ctype  string
	body   []byte
}

func (c canned) RoundTrip(r *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: c.status, Header: http.Header{"Content-Type": {c.ctype}},
		Body: io.NopCloser(bytes.NewReader(c.body)), Request: r}, nil
}

func cannedClient(t *testing.T, c canned) *Client {
	t.Helper()
	cl, err := New(Options{BaseURL: "https://portal.invalid", Keys: fuzzKeys{}, MaxAttempts: 1,
		HTTPClient: &http.Client{Transport: c}})
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

type fuzzKeys struct{}

func (fuzzKeys) Key(context.Context) (string, error) { return fuzzKey, nil }

// readers are the portal answers IP Guard decodes, each with what a whole
// value promises.
var readers = []struct {
	op   string
	read func(*Client) (value any, err error)
	ok   func(value any) error // the promises of a value read without error
}{
	{"get login events", func(c *Client) (any, error) { return c.LoginEvents(context.Background(), time.Time{}, 0, 100) },
		func(v any) error {
			evs := v.([]ipguard.LoginEvent)
			if evs == nil {
				return errors.New("a nil page")
			}
			for i, e := range evs {
				if e.Raw == nil {
					return fmt.Errorf("event [%d] lost its JSON", i)
				}
				if e.Unreadable == "" && e.Date.Location() != time.UTC {
					return fmt.Errorf("event [%d] dated %v, not in UTC", i, e.Date)
				}
			}
			return nil
		}},
	{"get audit events", func(c *Client) (any, error) {
		return c.AuditEvents(context.Background(), ActionIPRestrictionsUpdated, time.Time{}, 0, 100)
	}, func(v any) error {
		for i, e := range v.([]AuditEvent) {
			if e.Raw == nil || e.Date.Location() != time.UTC {
				return fmt.Errorf("event [%d] without its JSON or not in UTC: %+v", i, e)
			}
		}
		return nil
	}},
	{"get user", func(c *Client) (any, error) { return c.User(context.Background(), "u1") },
		func(v any) error {
			if v.(PortalUser).ID == "" {
				return errors.New("a user without an id")
			}
			return nil
		}},
	{"get current api key", func(c *Client) (any, error) { return c.CurrentKey(context.Background()) },
		func(v any) error {
			k := v.(APIKey)
			if k.CreatedBy.ID == "" || (!k.ExpiresAt.IsZero() && k.ExpiresAt.Location() != time.UTC) {
				return fmt.Errorf("a key without its user or with a zoned expiry: %+v", k)
			}
			return nil
		}},
	{"get ip restrictions", func(c *Client) (any, error) { return c.IPRestrictions(context.Background()) },
		func(v any) error {
			if v.([]ipguard.Restriction) == nil {
				return errors.New("a nil list")
			}
			return nil
		}},
	{"get ip restrictions settings", func(c *Client) (any, error) { return c.IPRestrictionsEnabled(context.Background()) },
		func(any) error { return nil }},
}

var statuses = []int{200, 200, 200, 201, 204, 400, 401, 402, 403, 404, 429, 500, 502, 503}

// Any bytes the portal answers give a value or an error that names the call
// and says what was wrong; never a panic, and never a value read halfway: a
// call that fails returns the zero value. The error is a classified
// ipguard.Error, its text valid UTF-8 with no control, bidi or invisible
// format character and without the key.
func FuzzPortalAnswer(f *testing.F) {
	for _, s := range []string{
		`{"response":[{"id":1,"date":"2026-05-04T12:15:09.0000000+03:00","user":"Jane","ip":"198.51.100.7","actionId":1010}],"count":1,"status":0,"statusCode":200}`,
		`{"response":[{"id":"2","date":"bad"}],"status":0,"statusCode":200}`,
		`{"response":[{"id":1,"date":"2026-01-21T10:00:00Z","actionId":6094,"target":["a",1]}],"status":0}`,
		`{"response":{"id":"u1","displayName":"Jane","email":"j@example.com","status":1,"isAdmin":true},"status":0}`,
		`{"response":{"id":"k","createBy":{"id":"u1"},"isActive":true,"expiresAt":"2026-12-01T00:00:00.0000000"},"status":0}`,
		`{"response":[{"ip":"203.0.113.10","forAdmin":false}],"status":0}`,
		`{"response":{"enable":true},"status":0}`,
		`{"error":{"message":"Access denied\u202e","type":"System.Security.SecurityException"},"status":1,"statusCode":403}`,
		`{"response":{"title":"One or more validation errors occurred.","errors":{"IpRestrictions":["required"]}},"status":1,"statusCode":400}`,
		`"IP security"`, `<html><body>Bad gateway</body></html>`, `{"response":null}`, `{}`, ``,
	} {
		f.Add([]byte(s), uint8(0), uint8(0), false)
	}
	f.Fuzz(func(t *testing.T, body []byte, which, status uint8, html bool) {
		r := readers[int(which)%len(readers)]
		c := canned{status: statuses[int(status)%len(statuses)], ctype: "application/json; charset=utf-8", body: body}
		if html {
			c.ctype = "text/html"
		}
		v, err := r.read(cannedClient(t, c))
		if err == nil {
			if c.status < 200 || c.status > 299 {
				t.Fatalf("%s: HTTP %d read as a value %v", r.op, c.status, v)
			}
			if perr := r.ok(v); perr != nil {
				t.Fatalf("%s: %v from %q", r.op, perr, body)
			}
			return
		}
		if !reflect.ValueOf(v).IsZero() {
			t.Fatalf("%s failed (%v) but returned a value: %#v", r.op, err, v)
		}
		var ie *ipguard.Error
		if !errors.As(err, &ie) || ie.Code == "" {
			t.Fatalf("%s: unclassified error %v", r.op, err)
		}
		msg := err.Error()
		if !strings.HasPrefix(msg, "docspace: "+r.op+": ") || len(msg) <= len("docspace: "+r.op+": GET ") {
			t.Fatalf("%s: the error does not name the call or what was wrong: %q", r.op, msg)
		}
		if bad := unsafeInError(msg); bad != "" || strings.Contains(msg, fuzzKey[:12]) {
			t.Fatalf("%s: the error %q carries %s or the key", r.op, msg, bad)
		}
	})
}

// unsafeInError names what an error text must not carry: bytes that are not
// UTF-8, control characters, format characters (bidi, zero width), line and
// paragraph separators.
func unsafeInError(s string) string {
	if !utf8.ValidString(s) {
		return "bytes that are not UTF-8"
	}
	for _, r := range s {
		if unicode.IsControl(r) || unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp) {
			return fmt.Sprintf("%U", r)
		}
	}
	return ""
}

// A login event as the portal writes it (any text fields, any instant in
// its seven-digit form, any offset) is read back exactly.
func FuzzLoginEventRoundTrip(f *testing.F) {
	f.Add(int64(90211), int64(1777886109), uint32(0), int16(180), "Jane Roe", "6b2f7a1e", "jane@example.com", "198.51.100.7", "Germany", "Firefox 126.0", uint16(1010))
	f.Add(int64(-1), int64(0), uint32(9999999), int16(-720), "", "", "", "2001", "", "", uint16(0))
	f.Fuzz(func(t *testing.T, id, sec int64, frac uint32, offMin int16, user, userID, login, ip, country, browser string, actionID uint16) {
		for _, s := range []string{user, userID, login, ip, country, browser} {
			if !utf8.ValidString(s) {
				return // json.Marshal would write U+FFFD: not the same text
			}
		}
		at := portalInstant(sec, frac)
		zone := time.FixedZone("", int(offMin%(14*60))*60)
		ev := map[string]any{"id": id, "date": portalDate(at, zone), "user": user, "userId": userID, "login": login,
			"action": "Login success", "actionId": actionID, "ip": ip, "country": country, "browser": browser}
		body, _ := json.Marshal(map[string]any{"response": []any{ev}, "count": 1, "status": 0, "statusCode": 200})
		evs, err := cannedClient(t, canned{status: 200, ctype: "application/json", body: body}).LoginEvents(context.Background(), time.Time{}, 0, 100)
		if err != nil || len(evs) != 1 {
			t.Fatalf("%s: %v, %d events", body, err, len(evs))
		}
		got := evs[0]
		if got.Unreadable != "" || got.ID != id || !got.Date.Equal(at) || got.User != user || got.UserID != userID ||
			got.Login != login || got.IP != ip || got.Country != country || got.Browser != browser || got.ActionID != int(actionID) {
			t.Fatalf("%s read back as %+v", body, got)
		}
	})
}

// Any text gives an instant or an error; an instant read re-reads as itself
// when written as RFC 3339, and what the portal writes (seven-digit or no
// fraction, Z or an offset, or no offset where UTC is meant) is read as the
// instant it means.
func FuzzParseDate(f *testing.F) {
	for _, s := range []string{"2026-05-04T12:15:09.0000000+03:00", "2026-05-04T09:15:09Z", "2026-05-04T09:15:09.123Z",
		"2026-12-01T00:00:00.0000000", "2026-05-04", "2026-05-04T12:15:09+24:00", "0000-01-01T00:00:00Z"} {
		f.Add(s, int64(1777886109), uint32(1234567), int16(180))
	}
	f.Fuzz(func(t *testing.T, s string, sec int64, frac uint32, offMin int16) {
		for _, parse := range []func(string) (time.Time, error){parseDate, parseDateOrUTC} {
			got, err := parse(s)
			if err != nil {
				if !strings.Contains(err.Error(), "date ") {
					t.Fatalf("%q: the error does not say what was wrong: %v", s, err)
				}
				continue
			}
			if got.Location() != time.UTC {
				t.Fatalf("%q read as %v, not UTC", s, got)
			}
			if again, err := parseDate(got.Format(time.RFC3339Nano)); err != nil || !again.Equal(got) {
				t.Fatalf("%q read as %v, which re-reads as %v (%v)", s, got, again, err)
			}
		}
		at := portalInstant(sec, frac)
		zone := time.FixedZone("", int(offMin%(14*60))*60)
		for _, w := range []string{portalDate(at, zone), at.Truncate(time.Second).In(zone).Format("2006-01-02T15:04:05Z07:00")} {
			want := at
			if !strings.Contains(w, ".") {
				want = at.Truncate(time.Second)
			}
			if got, err := parseDate(w); err != nil || !got.Equal(want) {
				t.Fatalf("the portal's %q read as %v (%v), want %v", w, got, err, want)
			}
		}
		bare := at.UTC().Format("2006-01-02T15:04:05.0000000")
		if got, err := parseDateOrUTC(bare); err != nil || !got.Equal(at) {
			t.Fatalf("%q (UTC meant) read as %v (%v), want %v", bare, got, err, at)
		}
	})
}

// portalInstant is an instant the portal can write: years 1 to 9999, in
// steps of 100 ns (seven fractional digits).
func portalInstant(sec int64, frac uint32) time.Time {
	const first, last int64 = -62135596800 + 15*3600, 253402300799 - 15*3600 // margin for any offset
	span := last - first
	sec = first + ((sec%span)+span)%span
	return time.Unix(sec, int64(frac%10_000_000)*100).UTC()
}

// portalDate writes t as the portal does: seven fractional digits, Z for a
// zero offset.
func portalDate(t time.Time, zone *time.Location) string {
	return t.In(zone).Format("2006-01-02T15:04:05.0000000Z07:00")
}

// The other documents IP Guard reads round-trip too: a user, the IP
// restrictions, an audit-trail event and the key's description, written as
// the portal writes them from any text, read back exactly.
func FuzzPortalDocumentsRoundTrip(f *testing.F) {
	f.Add("6b2f7a1e", "Jane Roe", "jane@example.com", "203.0.113.10", "2001:db8::/48", true, uint8(1), int64(1777886109), uint32(0), int16(180))
	f.Fuzz(func(t *testing.T, id, name, email, ip1, ip2 string, flag bool, status uint8, sec int64, frac uint32, offMin int16) {
		for _, s := range []string{id, name, email, ip1, ip2} {
			if !utf8.ValidString(s) {
				return // json.Marshal would write U+FFFD: not the same text
			}
		}
		at := portalInstant(sec, frac)
		date := portalDate(at, time.FixedZone("", int(offMin%(14*60))*60))
		serve := func(response any) *Client {
			body, _ := json.Marshal(map[string]any{"response": response, "status": 0, "statusCode": 200})
			return cannedClient(t, canned{status: 200, ctype: "application/json", body: body})
		}
		ctx := context.Background()

		u, err := serve(map[string]any{"id": id, "displayName": name, "email": email, "status": status, "isAdmin": flag, "isOwner": !flag}).User(ctx, "u1")
		want := PortalUser{ID: id, DisplayName: name, Email: email, Status: UserStatus(status), IsAdmin: flag, IsOwner: !flag, Type: TypeOwner}
		if flag {
			want.Type = TypeDocSpaceAdmin
		}
		if id == "" {
			if err == nil {
				t.Fatalf("a user without an id read as %+v", u)
			}
		} else if err != nil || u != want {
			t.Fatalf("user %+v read back as %+v (%v)", want, u, err)
		}

		list, err := serve([]any{map[string]any{"ip": ip1, "forAdmin": flag}, map[string]any{"ip": ip2}}).IPRestrictions(ctx)
		if err != nil || !reflect.DeepEqual(list, []ipguard.Restriction{{IP: ip1, ForAdmin: flag}, {IP: ip2}}) {
			t.Fatalf("restrictions %q, %q read back as %+v (%v)", ip1, ip2, list, err)
		}

		evs, err := serve([]any{map[string]any{"id": sec, "date": date, "user": name, "userId": id, "actionId": ActionIPRestrictionsUpdated,
			"ip": ip1, "target": []string{ip2}}}).AuditEvents(ctx, ActionIPRestrictionsUpdated, time.Time{}, 0, 100)
		if err != nil || len(evs) != 1 || evs[0].ID != sec || !evs[0].Date.Equal(at) || evs[0].User != name || evs[0].UserID != id ||
			evs[0].IP != ip1 || evs[0].ActionID != ActionIPRestrictionsUpdated || !reflect.DeepEqual(evs[0].Target, []string{ip2}) {
			t.Fatalf("audit event dated %s read back as %+v (%v)", date, evs, err)
		}

		k, err := serve(map[string]any{"id": id, "name": name, "keyPostfix": ip1, "createBy": map[string]any{"id": "c1", "displayName": email},
			"isActive": flag, "expiresAt": date, "createOn": at.UTC().Format("2006-01-02T15:04:05.0000000")}).CurrentKey(ctx)
		if err != nil || k.ID != id || k.Name != name || k.Postfix != ip1 || k.CreatedBy != (KeyCreator{ID: "c1", DisplayName: email}) ||
			k.IsActive != flag || !k.ExpiresAt.Equal(at) || !k.CreatedOn.Equal(at) {
			t.Fatalf("key expiring %s read back as %+v (%v)", date, k, err)
		}
	})
}
