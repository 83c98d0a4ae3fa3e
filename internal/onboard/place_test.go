package onboard

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"ipguard/internal/ipguard"
)

// An entry's optional place (#21 §4) is checked at onboarding and stored
// canonical with the entry; the portal gets the address only. A place that
// is not one is InvalidInput naming "allowedIps[i].place" and the value,
// and nothing is stored or sent.
func TestEntryPlaceIsCheckedAndStoredNeverSentToThePortal(t *testing.T) {
	for _, c := range []struct {
		name, place string
		want        string // canonical stored place; "" with wantErr
		wantErr     string // part of the error message
	}{
		{"a city of the table", `"Berlin"`, "Berlin, DE", ""},
		{"a city with its country", `"new york, United States"`, "New York, US", ""},
		{"accents and case", `"são paulo"`, "Sao Paulo, BR", ""},
		{"coordinates", `" 52.52 , 13.40501 "`, "52.52,13.405", ""},
		{"anywhere", `"Anywhere"`, "anywhere", ""},
		{"no place: the portal's GeoIP", `null`, "", ""},
		{"a city the table does not have", `"Atlantis"`, "", "is not a city of the place table"},
		{"latitude out of range", `"91,13.4"`, "", "latitude 91"},
		{"longitude out of range", `"52.5,-180.5"`, "", "longitude -180.5"},
		{"not coordinates", `"52.5,13,4"`, "", "is not coordinates"},
		{"empty", `""`, "", "is empty"},
		{"a city in another country", `"Berlin, France"`, "", "not in \"France\""},
		{"not a string", `52`, "", "must be a string"},
		{"unsafe characters", `"Ber\u202elin"`, "", "bidi"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv()
			_, _, writes, puts := snapshot(e)
			payload := `{"id":"u1","email":"a@example.com","allowedIps":["198.51.100.7",{"ip":"203.0.113.0/24","note":"office","place":` + c.place + `}]}`
			res, err := e.s.Handle(context.Background(), []byte(payload))
			if c.wantErr != "" {
				var ie *ipguard.Error
				if !errors.As(err, &ie) || ie.Code != ipguard.EInvalid || ie.Field != "allowedIps[1].place" || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("error %v, want InvalidInput naming allowedIps[1].place with %q", err, c.wantErr)
				}
				if v := strings.Trim(c.place, `"`); !strings.HasPrefix(v, `Ber\u`) && ie.Value != v {
					t.Errorf("error names value %q, want %q", ie.Value, v)
				}
				if users, _, w2, p2 := snapshot(e); len(users) != 0 || w2 != writes || p2 != puts {
					t.Errorf("a rejected place stored %d users (%d writes, %d PUTs)", len(users), w2-writes, p2-puts)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !res.Stored {
				t.Fatalf("not stored: %+v", res)
			}
			u := e.st.users["u1"]
			if got := u.Details["203.0.113.0/24"].Place; got != c.want {
				t.Errorf("stored place %q, want %q", got, c.want)
			}
			if u.Details["198.51.100.7"].Place != "" {
				t.Errorf("an entry without place got %q", u.Details["198.51.100.7"].Place)
			}
			e.p.mu.Lock()
			for _, r := range e.p.list {
				if strings.Contains(r.IP, "Berlin") || strings.Contains(r.IP, ",") || strings.Contains(r.IP, "anywhere") {
					t.Errorf("the portal got %q", r.IP)
				}
			}
			e.p.mu.Unlock()
			got := e.do(t, `{"action":"get","id":"u1"}`)
			if c.want != "" && !strings.Contains(string(mustJSON(t, got)), `"place":"`+c.want+`"`) {
				t.Errorf("get does not show the place: %s", mustJSON(t, got))
			}
		})
	}
}

// The same entry twice with different places is refused (which one is
// meant would be a guess); a remove names the entry only.
func TestEntryPlaceConflictsAndRemove(t *testing.T) {
	e := newEnv()
	_, err := e.s.Handle(context.Background(), []byte(`{"id":"u1","email":"a@example.com","allowedIps":[{"ip":"203.0.113.0/24","place":"Berlin"},{"ip":"203.0.113.0/24","place":"Paris"}]}`))
	if ipguard.ErrorCode(err) != ipguard.EInvalid || !strings.Contains(err.Error(), "place") {
		t.Errorf("two places for one entry: %v", err)
	}
	e.do(t, `{"id":"u1","email":"a@example.com","allowedIps":[{"ip":"203.0.113.0/24","place":"Berlin"}]}`)
	_, err = e.s.Handle(context.Background(), []byte(`{"action":"remove","id":"u1","allowedIps":[{"ip":"203.0.113.0/24","place":"Berlin"}]}`))
	var ie *ipguard.Error
	if !errors.As(err, &ie) || ie.Field != "allowedIps[0].place" {
		t.Errorf("remove with a place: %v", err)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Changing only an entry's place is a change (stored, no PUT: the portal's
// addresses are the same); sending the same place again changes nothing.
func TestEntryPlaceChangeIsStoredWithoutAPortalWrite(t *testing.T) {
	e := newEnv()
	e.do(t, `{"id":"u1","email":"a@example.com","allowedIps":[{"ip":"203.0.113.0/24","place":"Berlin"}]}`)
	_, _, writes, puts := snapshot(e)
	e.do(t, `{"action":"add","id":"u1","allowedIps":[{"ip":"203.0.113.0/24","place":"Paris"}]}`)
	_, _, w2, p2 := snapshot(e)
	if got := e.st.users["u1"].Details["203.0.113.0/24"].Place; got != "Paris, FR" || w2 == writes || p2 != puts {
		t.Errorf("place %q, %d writes, %d PUTs: want Paris stored without a PUT", got, w2-writes, p2-puts)
	}
	e.do(t, `{"action":"add","id":"u1","allowedIps":[{"ip":"203.0.113.0/24","place":"paris"}]}`)
	if _, _, w3, _ := snapshot(e); w3 != w2 {
		t.Errorf("the same place again wrote %d times", w3-w2)
	}
}
