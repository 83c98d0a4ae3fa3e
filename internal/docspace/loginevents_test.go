package docspace_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"ipguard/internal/ipguard"
)

func TestLoginEventsQuery(t *testing.T) {
	plus3 := time.FixedZone("+03:00", 3*60*60)
	tests := []struct {
		name       string
		from       time.Time
		startIndex int
		count      int
		want       url.Values
	}{
		{"from in UTC with Z, truncated to the second",
			time.Date(2026, 5, 4, 12, 15, 9, 999_999_999, plus3), 100, 100,
			url.Values{"count": {"100"}, "startIndex": {"100"}, "from": {"2026-05-04T09:15:09Z"}}},
		{"zero from is omitted", time.Time{}, 0, 20,
			url.Values{"count": {"20"}, "startIndex": {"0"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got url.Values
			var method, path string
			s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				got, method, path = r.URL.Query(), r.Method, r.URL.Path
				reply(w, 200, `{"response":[],"count":0,"status":0,"statusCode":200}`)
			})
			events, err := newClient(t, s.URL, nil).LoginEvents(context.Background(), tt.from, tt.startIndex, tt.count)
			if err != nil {
				t.Fatal(err)
			}
			if events == nil || len(events) != 0 {
				t.Errorf("events = %#v, want empty non-nil", events)
			}
			if method != "GET" || path != "/api/2.0/security/audit/login/filter" {
				t.Errorf("request = %s %s", method, path)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("query = %v, want exactly %v", got, tt.want)
			}
		})
	}
}

func TestLoginEventsRefusesBadPaging(t *testing.T) {
	c := newClient(t, "http://127.0.0.1:1", nil)
	for _, p := range []struct{ start, count int }{{0, 0}, {0, 101}, {-1, 100}} {
		_, err := c.LoginEvents(context.Background(), time.Time{}, p.start, p.count)
		if ipguard.ErrorCode(err) != ipguard.EInvalid {
			t.Errorf("startIndex %d, count %d: err = %v, want EInvalid", p.start, p.count, err)
		}
	}
}

func TestLoginEventsDecodingKeepsUnreadableEventsInPlace(t *testing.T) {
	const jane = `{"id":90211,"date":"2026-05-04T12:15:09.0000000+03:00","user":"Jane Roe","userId":"6b2f7a1e-3c44-4a5b-9e0f-1d2c3b4a5f60",` +
		`"login":"jane@example.com","action":"Login success via API","actionId":1010,"ip":"198.51.100.7","country":"Germany",` +
		`"city":"Berlin","browser":"Firefox 126.0","platform":"Linux","page":"https://portal.example.com/login"}`
	const guest = `{"id":"90212","date":"2026-05-04T09:20:00.1234567Z","user":"Guest","userId":"712d9ec3-5d2b-4b13-824f-71f00191dcca",` +
		`"login":"eve@example.com","action":"Login failed","actionId":"1013","ip":"2001"}`
	tests := []struct {
		name    string
		items   string
		want    []ipguard.LoginEvent
		wantErr []string
	}{
		{
			name:  "offset and Z dates, numeric strings, truncated IPv6",
			items: jane + "," + guest,
			want: []ipguard.LoginEvent{
				{ID: 90211, Date: time.Date(2026, 5, 4, 9, 15, 9, 0, time.UTC), User: "Jane Roe",
					UserID: "6b2f7a1e-3c44-4a5b-9e0f-1d2c3b4a5f60", Login: "jane@example.com",
					Action: "Login success via API", ActionID: 1010, IP: "198.51.100.7", Country: "Germany", City: "Berlin",
					Browser: "Firefox 126.0", Platform: "Linux", Page: "https://portal.example.com/login", Raw: json.RawMessage(jane)},
				{ID: 90212, Date: time.Date(2026, 5, 4, 9, 20, 0, 123456700, time.UTC), User: "Guest",
					UserID: "712d9ec3-5d2b-4b13-824f-71f00191dcca", Login: "eve@example.com",
					Action: "Login failed", ActionID: 1013, IP: "2001", Raw: json.RawMessage(guest)},
			},
		},
		{
			name:    "date without offset",
			items:   `{"id":7,"date":"2026-05-04T12:15:09.0000000","actionId":1000}`,
			wantErr: []string{"event 7", `"2026-05-04T12:15:09.0000000"`},
		},
		{
			name:    "missing date",
			items:   `{"id":8,"actionId":1000}`,
			wantErr: []string{"event 8", `date ""`},
		},
		{
			name:    "missing id",
			items:   `{"date":"2026-05-04T09:20:00Z"}`,
			wantErr: []string{"has no id"},
		},
		{
			name:    "id not a number",
			items:   `{"id":"abc","date":"2026-05-04T09:20:00Z"}`,
			wantErr: []string{`"abc" is not an integer`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				reply(w, 200, `{"response":[`+tt.items+`],"count":2,"status":0,"statusCode":200}`)
			})
			got, err := newClient(t, s.URL, nil).LoginEvents(context.Background(), time.Time{}, 0, 100)
			if tt.wantErr != nil {
				// One unreadable event never fails the page: it comes back in
				// its place, marked, with its raw JSON.
				if err != nil || len(got) != 1 {
					t.Fatalf("got %d events, err %v; want the unreadable event in its place", len(got), err)
				}
				if got[0].Unreadable == "" || string(got[0].Raw) != tt.items {
					t.Fatalf("event = %+v, want Unreadable set and Raw = %s", got[0], tt.items)
				}
				for _, m := range tt.wantErr {
					if !strings.Contains(got[0].Unreadable, m) {
						t.Errorf("Unreadable = %q, want it to contain %q", got[0].Unreadable, m)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d events, want %d", len(got), len(tt.want))
			}
			for i := range got {
				if string(got[i].Raw) != string(tt.want[i].Raw) {
					t.Errorf("event %d Raw = %s\nwant %s", i, got[i].Raw, tt.want[i].Raw)
				}
				if !got[i].Date.Equal(tt.want[i].Date) || got[i].Date.Location() != time.UTC {
					t.Errorf("event %d Date = %v, want %v in UTC", i, got[i].Date, tt.want[i].Date)
				}
				g, w := got[i], tt.want[i]
				g.Raw, w.Raw, g.Date, w.Date = nil, nil, time.Time{}, time.Time{}
				if !reflect.DeepEqual(g, w) {
					t.Errorf("event %d = %+v\nwant %+v", i, g, w)
				}
			}
		})
	}
}

// A 2xx answer whose "response" is missing or null is not an empty page: the
// walk would take it for the end of the list and the audit would mark the
// whole window done without reading it (docspace-api.md §4).
func TestLoginEventsWithoutResponseListFails(t *testing.T) {
	for _, body := range []string{
		`{"count":0,"status":0,"statusCode":200}`,
		`{"response":null,"count":0,"status":0,"statusCode":200}`,
		`{"response":{},"count":1,"status":0,"statusCode":200}`,
	} {
		t.Run(body, func(t *testing.T) {
			s := newServer(t, func(w http.ResponseWriter, r *http.Request) { reply(w, 200, body) })
			got, err := newClient(t, s.URL, nil).LoginEvents(context.Background(), time.Time{}, 0, 100)
			if err == nil {
				t.Fatalf("got %d events and no error; want an error, never an empty page", len(got))
			}
		})
	}
}

// The login history lifetime is read from security/audit/settings/lifetime
// (docspace-api.md §3.6): days, 180 when unset or out of 1..180; an answer
// without the settings, or a refusal (402 on a plan without the login
// history), is an error, never a guess.
func TestLoginHistoryLifetime(t *testing.T) {
	for _, tt := range []struct {
		status int
		body   string
		days   int // 0: an error
	}{
		{200, `{"response":{"loginHistoryLifeTime":90,"auditTrailLifeTime":180,"lastModified":"2026-05-04T09:12:33"},"count":1,"status":0,"statusCode":200}`, 90},
		{200, `{"response":{"loginHistoryLifeTime":"1"},"status":0,"statusCode":200}`, 1},
		{200, `{"response":{"auditTrailLifeTime":30},"status":0,"statusCode":200}`, 180},
		{200, `{"response":{"loginHistoryLifeTime":0},"status":0,"statusCode":200}`, 180},
		{200, `{"response":{"loginHistoryLifeTime":500},"status":0,"statusCode":200}`, 180},
		{200, `{"count":0,"status":0,"statusCode":200}`, 0},
		{402, `{"error":{"message":"Your pricing plan does not support this option"},"status":1,"statusCode":402}`, 0},
	} {
		t.Run(tt.body, func(t *testing.T) {
			var path string
			s := newServer(t, func(w http.ResponseWriter, r *http.Request) { path = r.URL.Path; reply(w, tt.status, tt.body) })
			got, err := newClient(t, s.URL, nil).LoginHistoryLifetime(context.Background())
			if path != "/api/2.0/security/audit/settings/lifetime" {
				t.Errorf("asked %s", path)
			}
			switch {
			case tt.days == 0 && err == nil:
				t.Fatalf("got %s and no error; want an error", got)
			case tt.days > 0 && (err != nil || got != time.Duration(tt.days)*24*time.Hour):
				t.Fatalf("got %s, %v; want %d days", got, err, tt.days)
			}
		})
	}
}
