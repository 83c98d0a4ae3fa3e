package docspace

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"ipguard/internal/ipguard"
)

const pathLoginEvents = "/api/2.0/security/audit/login/filter"

// fromLayout is how the portal wants a UTC instant in a query: "Z", no fraction.
const fromLayout = "2006-01-02T15:04:05Z"

// LoginEvents returns one page of the portal's login history, newest first:
// at most count (1..100) events, skipping startIndex (≥ 0) newer ones, and
// only events at or after from (truncated down to the second) unless from is
// zero. It sends no other filter (user, action, to), because the portal
// applies those inside the page window. Callers page with startIndex += count
// and stop at a short page.
//
// Each event keeps the JSON it came as in Raw; Date is the instant in UTC; IP
// is kept as text (IPv6 addresses arrive cut at the first colon). An event
// whose id or date cannot be read does not fail the call: it comes back in
// its place with Unreadable saying why and Raw holding its JSON, so that one
// bad row cannot stop every audit. A response that is not a list fails, and
// so does an answer without one (missing or null "response"): it is never
// taken for an empty page.
//
// Caution: on a plan without the audit feature the portal ignores paging and
// returns its 20 newest events.
func (c *Client) LoginEvents(ctx context.Context, from time.Time, startIndex, count int) ([]ipguard.LoginEvent, error) {
	if count < 1 || count > 100 {
		return nil, ipguard.Invalid("count", strconv.Itoa(count), "must be between 1 and 100")
	}
	if startIndex < 0 {
		return nil, ipguard.Invalid("startIndex", strconv.Itoa(startIndex), "must not be negative")
	}
	q := url.Values{}
	q.Set("count", strconv.Itoa(count))
	q.Set("startIndex", strconv.Itoa(startIndex))
	if !from.IsZero() {
		q.Set("from", from.UTC().Truncate(time.Second).Format(fromLayout))
	}
	var events []ipguard.LoginEvent
	err := c.do(ctx, call{
		op: "get login events", method: http.MethodGet, path: pathLoginEvents, query: q,
		decode: func(raw json.RawMessage) error {
			if raw == nil {
				// An empty page is "response": []; no list at all is
				// never taken for one (the walk would end there).
				return errors.New(`the answer has no "response" list`)
			}
			var items []json.RawMessage
			if err := json.Unmarshal(raw, &items); err != nil {
				return err
			}
			events = make([]ipguard.LoginEvent, 0, len(items))
			for i, item := range items {
				ev, err := decodeLoginEvent(item)
				if err != nil {
					ev.Raw = item
					ev.Unreadable = fmt.Sprintf("login event [%d] of the page at startIndex %d: %v", i, startIndex, err)
				}
				events = append(events, ev)
			}
			return nil
		},
	})
	if err != nil {
		return nil, err
	}
	if events == nil {
		events = []ipguard.LoginEvent{}
	}
	return events, nil
}

// wireLoginEvent is LoginEventDto as sent. Numbers may come as strings (the
// portal reads and may write them leniently).
type wireLoginEvent struct {
	wireRow
	Login string `json:"login"`
}

// wireRow is what a LoginEventDto and an AuditEventDto send alike.
type wireRow struct {
	ID       flexInt `json:"id"`
	Date     string  `json:"date"`
	User     string  `json:"user"`
	UserID   string  `json:"userId"`
	Action   string  `json:"action"`
	ActionID flexInt `json:"actionId"`
	IP       string  `json:"ip"`
	Country  string  `json:"country"`
	City     string  `json:"city"`
	Browser  string  `json:"browser"`
	Platform string  `json:"platform"`
	Page     string  `json:"page"`
}

// decodeRow reads raw into w (a wire event embedding row) and returns the
// row's date. A row without an id, or whose date cannot be read, is an
// error; dateOnly says the id was read and only the date failed.
func decodeRow(raw json.RawMessage, w any, row *wireRow) (date time.Time, dateOnly bool, err error) {
	if err := json.Unmarshal(raw, w); err != nil {
		return time.Time{}, false, err
	}
	if !row.ID.set {
		return time.Time{}, false, fmt.Errorf("event has no id")
	}
	date, err = parseDate(row.Date)
	if err != nil {
		return time.Time{}, true, fmt.Errorf("event %d: %w", row.ID.n, err)
	}
	return date, false, nil
}

// decodeLoginEvent reads one event; raw becomes its Raw. On error the
// returned event still holds the id and date when they could be read.
func decodeLoginEvent(raw json.RawMessage) (ipguard.LoginEvent, error) {
	var w wireLoginEvent
	date, dateOnly, err := decodeRow(raw, &w, &w.wireRow)
	if err != nil {
		if dateOnly {
			return ipguard.LoginEvent{ID: w.ID.n}, err
		}
		return ipguard.LoginEvent{}, err
	}
	return ipguard.LoginEvent{
		ID:       w.ID.n,
		Date:     date,
		User:     w.User,
		UserID:   w.UserID,
		Login:    w.Login,
		Action:   w.Action,
		ActionID: int(w.ActionID.n),
		IP:       w.IP,
		Country:  w.Country,
		City:     w.City,
		Browser:  w.Browser,
		Platform: w.Platform,
		Page:     w.Page,
		Raw:      raw,
	}, nil
}

// flexInt reads an integer sent as a JSON number or a numeric string.
type flexInt struct {
	n   int64
	set bool
}

func (f *flexInt) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if string(b) == "null" {
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		b = []byte(s)
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return fmt.Errorf("%q is not an integer", b)
	}
	f.n, f.set = n, true
	return nil
}
